#!/usr/bin/env bash
# Peer benchmark: DBOS (Python durable workflows, bench/requirements-peer.txt) on the same
# private Postgres that Cairn's benchmarks use, fsync on. One workflow of 3 no-op steps:
# 200 workflows one at a time for per-step latency, then 2000 workflows 32 at a time for
# throughput (BENCH_SMOKE=1: 5 and 20). DBOS keeps its state in its own database, dbos_bench.
# The venv lives in .venv-bench and is rebuilt when the requirements file changes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sequential=200 throughput=2000 concurrency=32
[ -z "${BENCH_SMOKE:-}" ] || { sequential=5 throughput=20; }

venv=$root/.venv-bench
requirements=$root/bench/requirements-peer.txt
if [ ! -f "$venv/.installed" ] || [ "$requirements" -nt "$venv/.installed" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$venv/.installed"
fi

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"

result=$("$venv/bin/python" "$root/bench/peer_dbos.py" "$CAIRN_POSTGRES_URL" "$sequential" "$throughput" "$concurrency")
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"  DBOS {r['dbos_version']}, {r['steps_per_workflow']} no-op steps: {r['workflows_per_second']} workflows/s "
      f"({r['throughput_workflows']} workflows, {r['concurrency']} at a time); "
      f"per step p50 {r['step_p50_ms']} ms p95 {r['step_p95_ms']} ms p99 {r['step_p99_ms']} ms")
print(f"  ({r['sequential_workflows']} workflows one at a time for latency: workflow p50 {r['workflow_p50_ms']} ms)")
print(f"peer_dbos_workflows_per_second={r['workflows_per_second']}")
print(f"peer_dbos_step_p50_ms={r['step_p50_ms']}")
print(f"peer_dbos_step_p99_ms={r['step_p99_ms']}")
PY
