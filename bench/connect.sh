#!/usr/bin/env bash
# Connect workers (docs/connect.md), on private servers with fsync on:
#
# 1. Engine overhead per step over connect against HTTP, in the same run: one `cairn dev`, the
#    end-to-end app on the official Python SDK (venv from `make venv`) served over HTTP, then run
#    as a connect worker, alternating for 8 rounds of 25 runs of a 10-step no-op function each
#    (BENCH_SMOKE=1: 1 round of 3). Per run: (wall time - the SDK's own time on each request,
#    measured by a middleware the same way in both modes) / 10. Goal: connect no slower.
# 2. Idle workers on one gateway: cairn-api and one cairn-gateway, each its own process;
#    bench/connect_idle.py connects 1,000 workers (BENCH_SMOKE=1: 20) through /v0/connect/start
#    and holds them, each heartbeating every 10 s. The gateway's resident memory with every
#    worker connected, and the share of one core it spends over 60 s of heartbeats
#    (BENCH_SMOKE=1: 4 s). Goals: RSS <= 150 MB, heartbeats <= 5 % of a core.
#
# Prints the figures as name=value lines (bench/report.py) and, unless BENCH_SMOKE=1, writes
# the connect block of bench/RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
rounds=8 runs=25 workers=1000 window=60
[ -z "${BENCH_SMOKE:-}" ] || { rounds=1 runs=3 workers=20 window=4; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
python=$root/.venv/bin/python
pids=()
out=$(mktemp)
trap '[ ${#pids[@]} -eq 0 ] || stop_processes "${pids[@]}"; rm -f "$out"' EXIT

# ---- 1. HTTP against connect --------------------------------------------------------------------
start_dev "$bin" connect_steps
pids+=("$dev_pid")
app_port=$(free_port)
# start_app MODE: the app over HTTP (synced) or as a connect worker (ready); sets app_pid.
start_app() {
  APP_MODE=$1 APP_PORT=$app_port INNGEST_DEV=1 INNGEST_BASE_URL="http://127.0.0.1:$port" \
    "$python" "$root/Tests/EndToEndTests/PythonApp/app.py" >/dev/null 2>&1 &
  app_pid=$!
  wait_for_http "http://127.0.0.1:$app_port/counts" 30
  if [ "$1" = http ]; then
    "$bin/cairn" sync "http://127.0.0.1:$app_port/api/inngest" --api "http://127.0.0.1:$port" >/dev/null
  else
    # The worker syncs the app again, its steps at wss:// URLs, when it connects.
    for ((i = 0; i < 300; i++)); do
      curl -fsS "http://127.0.0.1:$port/v1/apps/cairn-e2e/workers" | grep -q '"status":"ready"' && return 0
      sleep 0.1
    done
    echo "the connect worker was not ready within 30 s" >&2
    return 1
  fi
}
http_runs=() connect_runs=()
for round in $(seq 1 "$rounds"); do
  for mode in http connect; do
    start_app "$mode"
    result=$("$python" "$root/bench/python_steps.py" "http://127.0.0.1:$port" "http://127.0.0.1:$app_port" "$runs")
    stop_processes "$app_pid"
    if [ "$mode" = http ]; then http_runs+=("$result"); else connect_runs+=("$result"); fi
  done
done
stop_dev

# ---- 2. Idle workers on one gateway -------------------------------------------------------------
(
  export CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-connect-idle:
  export CAIRN_POSTGRES_URL=$(bench_database connect_idle)
  "$bin/cairn" migrate >/dev/null
  pids=()
  trap '[ ${#pids[@]} -eq 0 ] || stop_processes "${pids[@]}"' EXIT
  start_role api; api_port=$role_port
  start_role gateway; gateway_pid=$role_pid
  idle_rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$gateway_pid/status")
  # Held a little longer than the window, so that it sees only steady heartbeats.
  "$python" "$root/bench/connect_idle.py" "http://127.0.0.1:$api_port" "$workers" $((window + 15)) >"$out" &
  pids+=("$!")
  for ((i = 0; i < 1200; i++)); do
    grep -q '"connected"' "$out" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$out" >&2; echo "the idle workers failed to connect" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '"connected"' "$out" || { echo "the idle workers did not connect within 120 s" >&2; exit 1; }
  listed=$(curl -fsS "http://127.0.0.1:$api_port/v1/apps/bench-idle/workers" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["workers"]))')
  [ "$listed" = "$workers" ] || { echo "GET /v1/apps/bench-idle/workers lists $listed workers, expected $workers" >&2; exit 1; }
  sleep 5
  ticks_before=$(process_ticks "$gateway_pid")
  sleep "$window"
  ticks_after=$(process_ticks "$gateway_pid")
  rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$gateway_pid/status")
  wait "${pids[-1]}"
  echo "{\"idle_rss\": $idle_rss, \"rss\": $rss, \"ticks\": $((ticks_after - ticks_before)), \"held\": $(tail -n 1 "$out"), \"connect\": $(head -n 1 "$out")}" >"$out.idle"
)
idle=$(cat "$out.idle")
rm -f "$out.idle"

python3 - "$root/bench/RESULTS.md" "$workers" "$window" "$idle" "${http_runs[*]}" "${connect_runs[*]}" <<'PY'
import json, os, statistics, sys
sys.path.insert(0, os.path.join(os.path.dirname(sys.argv[1])))
results, workers, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle = json.loads(sys.argv[4])
decoder = json.JSONDecoder()
def runs(text):
    found, at = [], 0
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at] == " ":
            at += 1
    return found
http, connect = runs(sys.argv[5]), runs(sys.argv[6])
h50 = statistics.median(r["sdk"]["p50_ms"] for r in http)
c50 = statistics.median(r["sdk"]["p50_ms"] for r in connect)
c99 = statistics.median(r["sdk"]["p99_ms"] for r in connect)
cpu = round(idle["ticks"] / os.sysconf("SC_CLK_TCK") / window * 100, 2)
print(f"  Python SDK, {len(http)} x {http[0]['runs']} runs x 10 no-op steps per mode, alternating: engine overhead per step p50 "
      f"HTTP {h50:.3f} ms, connect {c50:.3f} ms ({c50 / h50:.2f} x)")
print(f"  {workers} idle connect workers on one cairn-gateway: RSS {idle['rss']} MB ({idle['idle_rss']} MB before they connected), "
      f"CPU {cpu} % of a core over {window} s of heartbeats; {idle['connect']['seconds']} s to connect them all; {json.dumps(idle['held'])}")
print(f"python_http_overhead_per_step_p50_ms={h50:.3f}")
print(f"python_connect_overhead_per_step_p50_ms={c50:.3f}")
print(f"python_connect_overhead_per_step_p99_ms={c99:.3f}")
print(f"connect_idle_workers={workers}")
print(f"connect_idle_gateway_rss_mb={idle['rss']}")
print(f"connect_idle_gateway_cpu_percent={cpu}")
if os.environ.get("BENCH_SMOKE"):
    sys.exit(0)
import results_block
results_block.write(results, "connect", [
    "## Connect: workers on a WebSocket instead of an HTTP endpoint",
    "",
    f"Written by `bench/connect.sh`, {results_block.stamp()}. Private servers (fsync on); the official Python SDK 0.5.19 "
    "(docs/connect.md).",
    "",
    "| Figure | Value | Conditions |",
    "|---|---:|---|",
    f"| Engine overhead per step over HTTP, p50 | {h50:.3f} ms | `cairn dev`, {http[0]['runs']} runs x 10 no-op steps, median of "
    f"{len(http)} rounds; the SDK's own time per request (a middleware) subtracted |",
    f"| Engine overhead per step over connect, p50 / p99 | {c50:.3f} / {c99:.3f} ms | the same `cairn dev` and app, as a connect "
    f"worker, rounds alternating with HTTP; {c50 / h50:.2f} x HTTP (goal <= 1) |",
    f"| Idle connect workers on one gateway | {workers:,} | each heartbeating every 10 s; all connected in {idle['connect']['seconds']} s |",
    f"| cairn-gateway RSS with them connected | {idle['rss']} MB | {idle['idle_rss']} MB before; goal <= 150 MB |",
    f"| cairn-gateway CPU on their heartbeats | {cpu} % of a core | user + system over {window} s; goal <= 5 % |",
])
PY
