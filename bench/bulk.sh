#!/usr/bin/env bash
# Bulk operations (docs/operations.md), on private servers with fsync on: one `cairn dev` and
# the end-to-end app on the official Python SDK (venv from `make venv`). 10,000 runs
# (BENCH_SMOKE=1: 50) sleep after their first step; bench/bulk.py times a bulk cancel of all of
# them, from the request to the job's end, then a bulk replay of the cancelled runs.
#
# Prints the figures as name=value lines (bench/report.py) and, unless BENCH_SMOKE=1, writes
# the bulk block of bench/RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
runs=10000
[ -z "${BENCH_SMOKE:-}" ] || runs=50

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
python=$root/.venv/bin/python
pids=()
trap '[ ${#pids[@]} -eq 0 ] || stop_processes "${pids[@]}"' EXIT

start_dev "$bin" bulk
pids+=("$dev_pid")
app_port=$(free_port)
APP_PORT=$app_port INNGEST_DEV=1 INNGEST_BASE_URL="http://127.0.0.1:$port" \
  "$python" "$root/Tests/EndToEndTests/PythonApp/app.py" >/dev/null 2>&1 &
pids+=("$!")
wait_for_http "http://127.0.0.1:$app_port/counts" 30
"$bin/cairn" sync "http://127.0.0.1:$app_port/api/inngest" --api "http://127.0.0.1:$port" >/dev/null
result=$("$python" "$root/bench/bulk.py" "http://127.0.0.1:$port" "http://127.0.0.1:$app_port" "$runs")

python3 - "$root/bench/RESULTS.md" "$result" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
results, figures = sys.argv[1], json.loads(sys.argv[2])
runs, cancel, replay = figures["runs"], figures["cancel_seconds"], figures["replay_seconds"]
print(f"  {runs} sleeping runs: bulk cancel {cancel} s ({runs / cancel:.0f} runs/s), bulk replay {replay} s ({runs / replay:.0f} runs/s)")
print(f"bulk_runs={runs}")
print(f"bulk_cancel_seconds={cancel}")
print(f"bulk_replay_seconds={replay}")
if os.environ.get("BENCH_SMOKE"):
    sys.exit(0)
import results_block
results_block.write(results, "bulk", [
    "## Bulk cancel and replay",
    "",
    f"Written by `bench/bulk.sh`, {results_block.stamp()}. Private servers (fsync on); `cairn dev` and the official Python SDK "
    "(docs/operations.md).",
    "",
    "| Figure | Value | Conditions |",
    "|---|---:|---|",
    f"| Bulk cancel of {runs:,} runs | {cancel} s ({runs / cancel:,.0f} runs/s) | every run sleeping after its first step; from the "
    "request to the job's end, pages of 200 |",
    f"| Bulk replay of the {runs:,} cancelled runs | {replay} s ({runs / replay:,.0f} runs/s) | from the request to the job's end "
    "(every replayed run created and queued); the replays then run |",
])
PY
