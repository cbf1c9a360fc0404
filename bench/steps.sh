#!/usr/bin/env bash
# Engine overhead per step and timer lag: `cairn dev` (every role in one process) on private
# servers with Postgres fsync on, driving a fast SDK stub built into cairn-bench.
#
#   bench/steps.sh          200 runs of a 10-step no-op function, 50 one-second sleeps, 50 events
#                           with a `ts` 2 s ahead (BENCH_SMOKE=1: 10 runs, 3 sleeps, 3 events)
# Needs built cairn and cairn-bench in BENCH_BIN_DIR (default: release).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
runs=200 sleeps=50 delayed=50
[ -z "${BENCH_SMOKE:-}" ] || { runs=10 sleeps=3 delayed=3; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"

port=$(free_port)
gateway=$(free_port)
CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-steps: "$bin/cairn" dev --port "$port" --gateway-port "$gateway" >/dev/null &
dev_pid=$!
trap 'kill $dev_pid 2>/dev/null; wait $dev_pid 2>/dev/null || true' EXIT
wait_for_http "http://127.0.0.1:$port/readyz" 60

result=$("$bin/cairn-bench" steps --api "http://127.0.0.1:$port" --runs "$runs" --steps 10 --sleeps "$sleeps" --delayed "$delayed" --json)
rss=$(peak_rss_mb "$dev_pid")
echo "  peak RSS of cairn dev (every role in one process): $rss MiB"
echo "rss_peak_cairn_dev_mb=$rss"
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"  {r['runs']} runs x {r['steps_per_run']} no-op steps, one at a time: {r['runs_per_second']} runs/s")
print(f"  engine overhead per step  p50 {r['overhead_per_step_p50_ms']} ms  p95 {r['overhead_per_step_p95_ms']} ms  p99 {r['overhead_per_step_p99_ms']} ms")
print(f"  gap between SDK calls     p50 {r['gap_between_calls_p50_ms']} ms  p99 {r['gap_between_calls_p99_ms']} ms")
print(f"  timer lag ({r['sleeps']} x 1 s sleeps)  p50 {r['timer_lag_p50_ms']} ms  p99 {r['timer_lag_p99_ms']} ms")
print(f"  delayed-event lag ({r['delayed']} events, ts 2 s ahead)  p50 {r['delayed_lag_p50_ms']} ms  p99 {r['delayed_lag_p99_ms']} ms")
for key in ("overhead_per_step_p50_ms", "overhead_per_step_p99_ms", "timer_lag_p50_ms", "timer_lag_p99_ms",
            "delayed_lag_p50_ms", "delayed_lag_p99_ms"):
    print(f"steps_{key}={r[key]}")
PY
