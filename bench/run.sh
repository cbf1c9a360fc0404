#!/usr/bin/env bash
# Runs Cairn's benchmarks against private servers and prints each figure with its reference.
#
#   bench/run.sh              release build, full counts (make bench)
#   BENCH_SMOKE=1 bench/run.sh  debug build, tiny counts: proves the harness runs (make bench-smoke)
#
# Timings are never asserted; numbers are for reading and for the issue notes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ -n "${BENCH_SMOKE:-}" ]; then
  for product in cairn-bench cairn cairn-event-api; do swift build --product "$product" >/dev/null; done
  export BENCH_BIN_DIR=${BENCH_BIN_DIR:-$(swift build --show-bin-path)}
else
  echo "building release binaries (first time: several minutes)"
  for product in cairn-bench cairn cairn-event-api; do swift build -c release --product "$product" >/dev/null; done
  export BENCH_BIN_DIR=${BENCH_BIN_DIR:-$(swift build -c release --show-bin-path)}
fi

echo "== Redis: pipelined XADD, CairnRedis vs redis-benchmark"
bench/redis-xadd.sh

echo "== Event API: ingest throughput and latency (one cairn-event-api)"
bench/ingest.sh

echo "== Engine: overhead per step and timer lag (cairn dev, SDK stub)"
bench/steps.sh

echo "== Engine: overhead per step on the official Python SDK app"
make --no-print-directory venv >/dev/null
bench/python-steps.sh
