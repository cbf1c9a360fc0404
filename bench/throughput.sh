#!/usr/bin/env bash
# Throughput: completed 3-step workflows per second, every role in its own process
# (cairn-api, cairn-event-api, cairn-scheduler, then one and two cairn-executor) on private
# servers with Postgres fsync on; the Swift SDK stub in cairn-bench answers the calls, and every
# run's event is sent at once, as fast as the event API takes them.
#
#   bench/throughput.sh     1000 runs with one executor, then 1000 with two (BENCH_SMOKE=1: 20)
#
# Also reports the peak RSS of each role process. Needs built cairn, cairn-api,
# cairn-event-api, cairn-scheduler, cairn-executor and cairn-bench in BENCH_BIN_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
runs=1000 warmup=100
[ -z "${BENCH_SMOKE:-}" ] || { runs=20 warmup=5; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
export CAIRN_HOST=127.0.0.1 CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-throughput:
"$bin/cairn" migrate >/dev/null

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true' EXIT
# start_role ROLE: starts cairn-ROLE on a free port; sets role_port and role_pid.
start_role() {
  role_port=$(free_port)
  CAIRN_PORT=$role_port "$bin/cairn-$1" >/dev/null &
  role_pid=$!
  pids+=("$role_pid")
  wait_for_http "http://127.0.0.1:$role_port/readyz" 60
}
start_role api; api_port=$role_port api_pid=$role_pid
start_role event-api; event_port=$role_port event_pid=$role_pid
start_role scheduler; scheduler_pid=$role_pid
start_role executor; executor_pid=$role_pid

# cpu_ticks: busy and total jiffies of the whole machine so far.
cpu_ticks() {
  awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print total - $5 - $6, total }' /proc/stat
}
# workflows RUNS: completes RUNS 3-step runs, all sent at once; prints the stub's JSON report
# with the machine's CPU use during the run added.
workflows() {
  local before after report
  before=$(cpu_ticks)
  report=$("$bin/cairn-bench" steps --api "http://127.0.0.1:$api_port" --event-api "http://127.0.0.1:$event_port" \
    --runs "$1" --steps 3 --concurrency "$1" --sleeps 0 --json)
  after=$(cpu_ticks)
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); b0, t0 = map(int, sys.argv[2].split()); b1, t1 = map(int, sys.argv[3].split())
r["cpu_busy_percent"] = round(100 * (b1 - b0) / max(1, t1 - t0)); print(json.dumps(r))' "$report" "$before" "$after"
}
workflows "$warmup" >/dev/null
one=$(workflows "$runs")
start_role executor
workflows "$warmup" >/dev/null
two=$(workflows "$runs")

for role in api:$api_pid event_api:$event_pid scheduler:$scheduler_pid executor:$executor_pid; do
  rss=$(peak_rss_mb "${role#*:}")
  echo "  peak RSS of cairn-${role%%:*} (own process): $rss MiB" | tr _ -
  echo "rss_peak_role_${role%%:*}_mb=$rss"
done
python3 - "$runs" "$one" "$two" <<'PY'
import json, sys
runs = sys.argv[1]
one, two = (json.loads(text) for text in sys.argv[2:])
ratio = two["runs_per_second"] / one["runs_per_second"] if one["runs_per_second"] else 0
print(f"  {runs} runs of 3 no-op steps, all sent at once, roles in separate processes:")
print(f"    one executor:  {one['runs_per_second']} workflows/s, machine CPU {one['cpu_busy_percent']} % busy")
print(f"    two executors: {two['runs_per_second']} workflows/s, machine CPU {two['cpu_busy_percent']} % busy  ({ratio:.2f} x one)")
print(f"throughput_one_executor_workflows_per_second={one['runs_per_second']}")
print(f"throughput_two_executors_workflows_per_second={two['runs_per_second']}")
print(f"throughput_one_executor_cpu_busy_percent={one['cpu_busy_percent']}")
PY
