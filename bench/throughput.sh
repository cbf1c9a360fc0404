#!/usr/bin/env bash
# Throughput: completed 3-step workflows per second, every role in its own process
# (cairn-api, cairn-event-api, cairn-scheduler, an idle cairn-gateway, then one and two
# cairn-executor) on private
# servers with Postgres fsync on; the Swift SDK stub in cairn-bench answers the calls, and every
# run's event is sent at once, as fast as the event API takes them.
#
#   bench/throughput.sh     1000 runs with one executor, then 1000 with two (BENCH_SMOKE=1: 20);
#                           then 500 runs whose steps take 200 ms in the app, with one executor
#                           and with two (BENCH_SMOKE=1: 20)
#
# With no-op steps one executor keeps both cores of this machine busy, so the second adds
# nothing; with steps that wait on the app (I/O-bound, as real steps are) an executor is bound
# by how many runs it drives at once (CAIRN_EXECUTOR_CONCURRENCY, 64), and a second one adds
# as many again.
#
# Also reports the peak RSS of each role process, and with one executor, the CPU each process
# spent per completed workflow (Postgres and Redis too when the servers are the private ones).
# Needs built cairn, cairn-api, cairn-event-api, cairn-scheduler, cairn-executor, cairn-gateway
# and cairn-bench in BENCH_BIN_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
runs=1000 warmup=100 slow_runs=500 slow_ms=200
[ -z "${BENCH_SMOKE:-}" ] || { runs=20 warmup=5 slow_runs=20; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
export CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-throughput:
"$bin/cairn" migrate >/dev/null

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true' EXIT
start_role api; api_port=$role_port api_pid=$role_pid
start_role event-api; event_port=$role_port event_pid=$role_pid
start_role scheduler; scheduler_pid=$role_pid
start_role gateway; gateway_pid=$role_pid
start_role executor; executor_pids=("$role_pid"); executor_pid=$role_pid

# cpu_ticks: busy and total jiffies of the whole machine so far.
cpu_ticks() {
  awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print total - $5 - $6, total }' /proc/stat
}
# workflows RUNS [STEP_MS]: completes RUNS 3-step runs, all sent at once, each step taking
# STEP_MS in the app (default 0). Prints the stub's JSON report, with the machine's CPU use
# during the run and each process's CPU per workflow added.
workflows() {
  local before after report groups name group_pids
  groups=$(server_pids; echo "api $api_pid"; echo "event_api $event_pid"; echo "scheduler $scheduler_pid"; echo "executor ${executor_pids[*]}")
  declare -A start
  while read -r name group_pids; do start[$name]=$(process_ticks $group_pids); done <<<"$groups"
  before=$(cpu_ticks)
  report=$("$bin/cairn-bench" steps --api "http://127.0.0.1:$api_port" --event-api "http://127.0.0.1:$event_port" \
    --runs "$1" --steps 3 --concurrency "$1" --sleeps 0 --step-latency-ms "${2:-0}" --json)
  after=$(cpu_ticks)
  local used=""
  while read -r name group_pids; do used+="$name=$(( $(process_ticks $group_pids) - ${start[$name]} )) "; done <<<"$groups"
  python3 -c 'import json, os, sys
r = json.loads(sys.argv[1]); b0, t0 = map(int, sys.argv[2].split()); b1, t1 = map(int, sys.argv[3].split())
r["cpu_busy_percent"] = round(100 * (b1 - b0) / max(1, t1 - t0))
hz = os.sysconf("SC_CLK_TCK")
r["cpu_ms_per_workflow"] = {name: round(int(ticks) * 1000 / hz / r["runs"], 2) for name, ticks in (pair.split("=") for pair in sys.argv[4].split())}
r["cpu_ms_per_workflow"]["stub_and_load"] = round(r["cpu_seconds"] * 1000 / r["runs"], 2)
print(json.dumps(r))' "$report" "$before" "$after" "$used"
}
workflows "$warmup" >/dev/null
one=$(workflows "$runs")
slow_one=$(workflows "$slow_runs" "$slow_ms")
start_role executor; executor_pids+=("$role_pid")
workflows "$warmup" >/dev/null
two=$(workflows "$runs")
slow_two=$(workflows "$slow_runs" "$slow_ms")

for role in api:$api_pid event_api:$event_pid scheduler:$scheduler_pid executor:$executor_pid gateway:$gateway_pid; do
  rss=$(peak_rss_mb "${role#*:}")
  echo "  peak RSS of cairn-${role%%:*} (own process): $rss MiB" | tr _ -
  echo "rss_peak_role_${role%%:*}_mb=$rss"
done
python3 - "$runs" "$one" "$two" "$slow_runs" "$slow_ms" "$slow_one" "$slow_two" <<'PY'
import json, sys
runs, slow_runs, slow_ms = sys.argv[1], sys.argv[4], sys.argv[5]
one, two, slow_one, slow_two = (json.loads(text) for text in sys.argv[2:4] + sys.argv[6:8])
ratio = two["runs_per_second"] / one["runs_per_second"] if one["runs_per_second"] else 0
print(f"  {runs} runs of 3 no-op steps, all sent at once, roles in separate processes:")
print(f"    one executor:  {one['runs_per_second']} workflows/s, machine CPU {one['cpu_busy_percent']} % busy")
print(f"    two executors: {two['runs_per_second']} workflows/s, machine CPU {two['cpu_busy_percent']} % busy  ({ratio:.2f} x one)")
slow_ratio = slow_two["runs_per_second"] / slow_one["runs_per_second"] if slow_one["runs_per_second"] else 0
print(f"  {slow_runs} runs whose 3 steps take {slow_ms} ms each in the app:")
print(f"    one executor:  {slow_one['runs_per_second']} workflows/s, machine CPU {slow_one['cpu_busy_percent']} % busy")
print(f"    two executors: {slow_two['runs_per_second']} workflows/s, machine CPU {slow_two['cpu_busy_percent']} % busy  ({slow_ratio:.2f} x one)")
print(f"throughput_slow_steps_one_executor_workflows_per_second={slow_one['runs_per_second']}")
print(f"throughput_slow_steps_two_executors_workflows_per_second={slow_two['runs_per_second']}")
print(f"throughput_one_executor_workflows_per_second={one['runs_per_second']}")
print(f"throughput_two_executors_workflows_per_second={two['runs_per_second']}")
print(f"throughput_one_executor_cpu_busy_percent={one['cpu_busy_percent']}")
shares = sorted(one["cpu_ms_per_workflow"].items(), key=lambda item: -item[1])
print("    CPU per workflow with one executor: " + ", ".join(f"{name.replace('_', '-')} {ms} ms" for name, ms in shares)
      + f" (sum {sum(ms for _, ms in shares):.2f} ms)")
for name, ms in shares:
    print(f"throughput_cpu_ms_per_workflow_{name}={ms}")
PY
