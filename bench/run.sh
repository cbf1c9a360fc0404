#!/usr/bin/env bash
# Runs Cairn's benchmarks against private servers and prints each figure with its reference.
#
#   bench/run.sh              release build, full counts (make bench)
#   BENCH_SMOKE=1 bench/run.sh  debug build, tiny counts: proves the harness runs (make bench-smoke)
#
# Timings are never asserted; numbers are for reading. The full run writes bench/RESULTS.md and
# bench/results.json; the smoke run writes them under bench/out/ (not kept).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Each benchmark's output goes to the terminal and to the log the report reads, then how long
# it took (to the terminal only), to keep an eye on the smoke's share of `make test`.
measure() {
  local started=$SECONDS
  "$@" 2>&1 | tee -a "$log"
  echo "  ($1: $((SECONDS - started)) s)"
}

products="cairn-bench cairn cairn-api cairn-event-api cairn-scheduler cairn-executor cairn-gateway"
if [ -n "${BENCH_SMOKE:-}" ]; then
  for product in $products; do swift build --product "$product" >/dev/null; done
  export BENCH_BIN_DIR=${BENCH_BIN_DIR:-$(swift build --show-bin-path)}
else
  echo "building release binaries (first time: several minutes)"
  for product in $products; do swift build -c release --product "$product" >/dev/null; done
  export BENCH_BIN_DIR=${BENCH_BIN_DIR:-$(swift build -c release --show-bin-path)}
fi

echo "== Limits of this machine: HTTP round trip, Redis XADD, Postgres commit"
measure bench/limits.sh

echo "== Redis: pipelined XADD, CairnRedis vs redis-benchmark"
measure bench/redis-xadd.sh

echo "== Event API: ingest throughput and latency (one cairn-event-api)"
measure bench/ingest.sh

echo "== Retention: ingest latency while a backlog of expired events is deleted"
measure bench/retention.sh

echo "== Engine: overhead per step and timer lag (cairn dev, SDK stub)"
measure bench/steps.sh

echo "== Flow control: debounce, batch and cron fire lags, exactness (cairn dev, SDK stub)"
measure bench/flow.sh

echo "== Work queue: another function behind a concurrency backlog, the maximum in flight, overhead without limits"
measure bench/queue.sh

echo "== Tracing: engine overhead per step with run traces exported over OTLP/HTTP vs none (cairn dev, SDK stub)"
measure bench/tracing.sh

echo "== Engine: overhead per step on the official Python SDK app"
make --no-print-directory venv >/dev/null
measure bench/python-steps.sh

echo "== Connect: overhead per step against HTTP, idle workers on one gateway"
measure bench/connect.sh

echo "== Bulk cancel and replay (cairn dev, Python SDK)"
measure bench/bulk.sh

echo "== Dashboard: runs page, filtered count, expression search and a 1,000-step run over 1,000,000 runs (headless Chromium)"
measure bench/dashboard.sh

echo "== Throughput: 3-step workflows/s with one and two executors (roles in separate processes)"
measure bench/throughput.sh

echo "== Peer: DBOS on the same Postgres, the same 3-step no-op workflow"
measure bench/peer-dbos.sh

echo "== Report"
if [ -n "${BENCH_SMOKE:-}" ]; then python3 bench/report.py "$log" bench/out; else python3 bench/report.py "$log" bench; fi
