#!/usr/bin/env bash
# The limits of this machine, measured in the same run as Cairn's figures: a loopback HTTP
# round trip on a kept-alive connection (wrk against a trivial Hummingbird route, /healthz of a
# cairn-event-api), Redis XADD without pipelining, and a one-row Postgres insert commit
# (pgbench) with the settings Cairn runs with (fsync on), and how many rows of Cairn's own
# events table Postgres inserts per second, 100 per statement from 4 clients: the ceiling for
# durable ingest on this machine, whatever the event API does.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
seconds=5 count=200000
[ -z "${BENCH_SMOKE:-}" ] || { seconds=1 count=5000; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
command -v wrk >/dev/null || { echo "wrk not found: make deps installs it" >&2; exit 1; }
redis_port=$(redis_port)

# HTTP: one connection for the round trip, 64 for the rate.
port=$(free_port)
CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_PORT=$port CAIRN_LOG_LEVEL=critical CAIRN_STREAM_PREFIX=cairn-bench-limits: \
  "$bin/cairn-event-api" >/dev/null 2>&1 &
api_pid=$!
trap 'kill $api_pid 2>/dev/null; wait $api_pid 2>/dev/null || true' EXIT
wait_for_http "http://127.0.0.1:$port/healthz" 30
one=$(wrk -t1 -c1 -d"${seconds}s" --latency "http://127.0.0.1:$port/healthz")
many=$(wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$port/healthz")
python3 - "$one" "$many" <<'PY'
import re, sys
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
one, many = sys.argv[1], sys.argv[2]
p50 = ms(re.search(r"50%\s+(\S+)", one).group(1))
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", many).group(1))
print(f"  HTTP round trip on a kept-alive connection (trivial route): p50 {p50:.3f} ms; 64 connections: {rate:,.0f} req/s")
print(f"limit_http_roundtrip_p50_ms={p50:.3f}")
print(f"limit_http_trivial_requests_per_second={rate:.0f}")
PY

# Redis: XADD without a pipeline, 50 clients.
line=$(redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 -n "$count" -q XADD cairn-bench:limits '*' field value \
  | tr '\r' '\n' | grep 'requests per second' | tail -n 1)
redis-cli -p "$redis_port" DEL cairn-bench:limits >/dev/null
rate=$(sed -E 's/.*: ([0-9.]+) requests per second.*/\1/' <<<"$line")
echo "  redis-benchmark XADD, no pipeline, 50 clients: ${rate%.*} per second"
echo "limit_redis_xadd_unpipelined_per_second=${rate%.*}"

# Postgres: one-row insert, one client, each its own commit.
psql "$CAIRN_POSTGRES_URL" -qc "CREATE TABLE IF NOT EXISTS bench_limits (id bigserial PRIMARY KEY, v text)"
script=$(mktemp)
printf "INSERT INTO bench_limits (v) VALUES ('x');\n" >"$script"
pgbench_bin=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
out=$("$pgbench_bin" -n -c 1 -T "$seconds" -f "$script" "$CAIRN_POSTGRES_URL" 2>&1)
rm -f "$script"
latency=$(sed -nE 's/latency average = ([0-9.]+) ms/\1/p' <<<"$out")
tps=$(sed -nE 's/tps = ([0-9.]+).*/\1/p' <<<"$out")
echo "  Postgres one-row insert commit (pgbench, 1 client, fsync on): ${latency} ms, ${tps%.*} commits/s"
echo "limit_pg_commit_ms=${latency}"
echo "limit_pg_commits_per_second=${tps%.*}"

# Postgres: rows of Cairn's events table (its indexes included), 100 per insert, 4 clients.
CAIRN_LOG_LEVEL=warning "$bin/cairn" migrate >/dev/null
script=$(mktemp)
cat >"$script" <<'SQL'
INSERT INTO events (id, name, ts, payload)
SELECT upper(substr(md5(random()::text) || md5(random()::text), 1, 26)), 'bench/ingest', 1800000000000,
  '{"name": "bench/ingest", "data": {"user": "u-1234", "plan": "pro", "amount": 42, "tags": ["a", "b"]}, "ts": 1800000000000}'::json
FROM generate_series(1, 100);
SQL
out=$("$pgbench_bin" -n -c 4 -j 2 -T "$seconds" -f "$script" "$CAIRN_POSTGRES_URL" 2>&1)
rm -f "$script"
psql "$CAIRN_POSTGRES_URL" -qc "SET client_min_messages = warning; TRUNCATE events CASCADE"
tps=$(sed -nE 's/tps = ([0-9.]+).*/\1/p' <<<"$out")
rows=$(python3 -c "print(round(float('$tps') * 100))")
echo "  Postgres inserts into Cairn's events table (pgbench, 100 rows per insert, 4 clients, fsync on): $rows rows/s"
echo "limit_pg_event_rows_per_second=$rows"
