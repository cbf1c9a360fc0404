#!/usr/bin/env bash
# Pipelined XADD: CairnRedis against redis-benchmark, same server, same run, same shape
# (pipeline depth 64, 50 connections, one short field/value pair per entry).
#
#   bench/redis-xadd.sh [COUNT]       default 1,000,000 commands each (BENCH_SMOKE=1: 20,000)
#
# Needs a built cairn-bench: BENCH_BIN_DIR (default: the release build's bin directory).
# Starts private servers with deploy/local/servers.sh unless CAIRN_REDIS_URL is set. Prints a
# line per measurement and, last, `redis_xadd_ratio=<cairn/redis-benchmark>`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
count=${1:-1000000}
[ -z "${BENCH_SMOKE:-}" ] || count=20000
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
port=$(redis_port)

reference_rate=$(redis_xadd_reference "$port" "$count")
echo "redis-benchmark XADD -P 64 -c 50: $reference_rate per second"
echo "limit_redis_xadd_pipelined_per_second=$reference_rate"

cairn=$("$bin/cairn-bench" redis-xadd --redis-url "$CAIRN_REDIS_URL" --count "$count" --pipeline 64 --clients 50 --json)
cairn_rate=$(json_field "$cairn" per_second)
echo "cairn-redis XADD pipeline 64, 50 clients: $cairn_rate per second"
echo "cairn_redis_xadd_pipelined_per_second=$cairn_rate"
python3 -c 'import sys; print(f"redis_xadd_ratio={float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$cairn_rate" "$reference_rate"
