#!/usr/bin/env bash
# Ingest latency while retention deletes a backlog: one cairn-event-api on private servers
# (Postgres with fsync on), driven at a fixed request rate by cairn-bench.
#
#   bench/retention.sh       1,000,000 expired events, 4 windows of 15 s
#   BENCH_SMOKE=1 …          20,000 expired events, 1 s windows (proves the harness runs)
#
# In one run: seed the expired events; measure ingest at a fixed rate in windows that
# alternate between a scheduler whose retention keeps events for ever
# (CAIRN_RETENTION_EVENTS_DAYS=0), so the same processes run, and one with the default
# retention, which deletes (checked: rows remain after the measurement); then time the whole
# deletion (from the first deleting window, the second "without" window included).
# The full run writes its block of bench/RESULTS.md (between the retention markers).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
rows=1000000 seconds=15 rate=400
[ -z "${BENCH_SMOKE:-}" ] || { rows=20000 seconds=1 rate=100; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"

psql_q() { psql "$CAIRN_POSTGRES_URL" -Atqc "$1"; }
CAIRN_LOG_LEVEL=warning "$bin/cairn" migrate >/dev/null
echo "  seeding $rows events received 40 days ago"
psql_q "INSERT INTO events (id, name, ts, payload, received_at, routed_at, published_at)
        SELECT 'EXPIRED' || lpad(g::text, 19, '0'), 'bench/expired', 0, '{}'::json,
               now() - interval '40 days', now() - interval '40 days', now() - interval '40 days'
        FROM generate_series(1, $rows) g"
psql_q "VACUUM ANALYZE events"
psql_q "CHECKPOINT"

export CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-retention:
port=$(free_port)
CAIRN_PORT=$port "$bin/cairn-event-api" &
api_pid=$!
scheduler_pid=
stop_all() {
  kill "$api_pid" $scheduler_pid 2>/dev/null || true
  wait "$api_pid" $scheduler_pid 2>/dev/null || true
}
trap stop_all EXIT
wait_for_http "http://127.0.0.1:$port/readyz" 30
start_scheduler() {
  CAIRN_PORT=$(free_port) CAIRN_RETENTION_EVENTS_DAYS=$1 "$bin/cairn-scheduler" &
  scheduler_pid=$!
}
stop_scheduler() {
  kill "$scheduler_pid"
  wait "$scheduler_pid" 2>/dev/null || true
}
work=$(mktemp -d)
trap 'stop_all; rm -rf "$work"' EXIT
# One measurement window: its summary on stdout, its latencies in $work/$1.
load() {
  "$bin/cairn-bench" ingest --url "http://127.0.0.1:$port/e/bench" --duration "$seconds" --warmup 1 --json \
    --connections 64 --events-per-request 1 --rate "$rate" --latencies-file "$work/$1"
}
expired() { psql_q "SELECT count(*) FROM events WHERE name = 'bench/expired'"; }

# Windows alternate, so that a drift of the machine (a checkpoint, autovacuum after the seed)
# weighs on both sides alike: without, during, without, during. "Without" runs a scheduler
# that keeps events for ever, "during" one that deletes them.
started=
summaries=()
for round in 1 2; do
  start_scheduler 0
  sleep 2
  summaries+=("$(load "without-$round")")
  stop_scheduler
  [ "$(expired)" -gt 0 ] || { echo "retention: nothing left to delete" >&2; exit 1; }
  [ -n "$started" ] || started=$(date +%s.%N)
  start_scheduler 30
  sleep 1
  summaries+=("$(load "during-$round")")
  [ "$round" = 2 ] || stop_scheduler
done
left=$(expired)
[ "$left" -gt 0 ] || { echo "retention: the deletion ended before the measurement did; nothing was measured during it" >&2; exit 1; }
# The full run times the whole deletion; the smoke stops here.
if [ -z "${BENCH_SMOKE:-}" ]; then
  for _ in $(seq 1 2400); do
    [ "$(expired)" = 0 ] && break
    sleep 0.5
  done
  [ "$(expired)" = 0 ] || { echo "retention: expired events were not all deleted within 20 minutes" >&2; exit 1; }
fi
finished=$(date +%s.%N)
deleted=$((rows - $(expired)))

for run in "${summaries[@]}"; do
  [ "$(json_field "$run" errors)" = 0 ] || { echo "retention: requests failed: $run" >&2; exit 1; }
done
PYTHONPATH="$root/bench" python3 - "$work" "$rows" "$started" "$finished" "$left" "$rate" "$seconds" "${BENCH_SMOKE:-}" "$root/bench/RESULTS.md" "$deleted" <<'PY'
import math, os, sys
work = sys.argv[1]
rows, started, finished, left, rate, seconds = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
smoke, results = sys.argv[8], sys.argv[9]
def pooled(kind):
    values = []
    for name in sorted(os.listdir(work)):
        if name.startswith(kind + "-"):
            values += [int(line) for line in open(os.path.join(work, name)) if line.strip()]
    values.sort()
    def percentile(p):
        return round(values[max(0, math.ceil(p * len(values)) - 1)] / 1000, 3) if values else 0
    return {"p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "requests": len(values)}
without, during = pooled("without"), pooled("during")
ratio = during["p99_ms"] / without["p99_ms"] if without["p99_ms"] else float("inf")
deleted = int(sys.argv[10])
deleted_per_second = deleted / (finished - started)
print(f"  ingest at {rate} req/s, without deletion: p50 {without['p50_ms']} ms, p99 {without['p99_ms']} ms")
print(f"  ingest at {rate} req/s, while deleting:   p50 {during['p50_ms']} ms, p99 {during['p99_ms']} ms "
      f"({ratio:.2f} x; {left:,} of {rows:,} rows still to delete when it ended)")
print(f"  deleted {deleted:,} of {rows:,} expired events in {finished - started:.1f} s ({deleted_per_second:,.0f} rows/s)")
print(f"retention_ingest_p99_without_gc_ms={without['p99_ms']}")
print(f"retention_ingest_p99_during_gc_ms={during['p99_ms']}")
print(f"retention_ingest_p99_ratio={ratio:.2f}")
print(f"retention_deleted_rows_per_second={deleted_per_second:.0f}")
if smoke:
    sys.exit(0)
import results_block
results_block.write(results, "retention", [
    "## Retention: ingest while a backlog is deleted",
    "",
    f"Written by `bench/retention.sh`, {results_block.stamp()}. One cairn-event-api and one cairn-scheduler on private "
    f"servers (fsync on); {rows:,} expired events; ingest driven at {rate} requests/s (1 event each, 64 connections, "
    f"open loop) in four windows of {seconds:g} s that alternate: retention keeping events for ever, then the "
    "scheduler deleting them in small paced batches, twice. Percentiles pool each side's windows.",
    "",
    "| Figure | Value |",
    "|---|---:|",
    f"| Ingest p99 without deletion | {without['p99_ms']} ms |",
    f"| Ingest p99 while deleting | {during['p99_ms']} ms |",
    f"| Ratio (goal <= 1.2) | {ratio:.2f} |",
    f"| Rows still to delete when the measurement ended | {left:,} |",
    f"| Deletion rate | {deleted_per_second:,.0f} rows/s |",
])
PY
