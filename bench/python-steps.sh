#!/usr/bin/env bash
# Engine overhead per step on the official Python SDK app: `cairn dev` on private servers with
# fsync on, the end-to-end app from Tests/EndToEndTests/PythonApp (venv from `make venv`), 50
# runs of a 10-step no-op function one at a time (BENCH_SMOKE=1: 5).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
runs=50
[ -z "${BENCH_SMOKE:-}" ] || runs=5

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
port=$(free_port) gateway=$(free_port) app_port=$(free_port)

CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-py: "$bin/cairn" dev --port "$port" --gateway-port "$gateway" >/dev/null &
dev_pid=$!
APP_PORT=$app_port INNGEST_DEV=1 INNGEST_BASE_URL="http://127.0.0.1:$port" \
  "$root/.venv/bin/python" "$root/Tests/EndToEndTests/PythonApp/app.py" >/dev/null 2>&1 &
app_pid=$!
trap 'kill $app_pid $dev_pid 2>/dev/null; wait $app_pid $dev_pid 2>/dev/null || true' EXIT
wait_for_http "http://127.0.0.1:$port/readyz" 60
wait_for_http "http://127.0.0.1:$app_port/counts" 30
"$bin/cairn" sync "http://127.0.0.1:$app_port/api/inngest" --api "http://127.0.0.1:$port" >/dev/null

result=$("$root/.venv/bin/python" "$root/bench/python_steps.py" "http://127.0.0.1:$port" "http://127.0.0.1:$app_port" "$runs")
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])["app"] | {"runs": json.loads(sys.argv[1])["runs"]}
print(f"  Python SDK, {r['runs']} runs x 10 no-op steps: engine overhead per step p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms")
print(f"python_overhead_per_step_p50_ms={r['p50_ms']}")
print(f"python_overhead_per_step_p99_ms={r['p99_ms']}")
PY
