#!/usr/bin/env bash
# The event API under load: one cairn-event-api process on private servers (Postgres with
# fsync on, as in production), driven by cairn-bench over kept-alive connections.
#
#   bench/ingest.sh          10 s per measurement (BENCH_SMOKE=1: 1 s, tiny reference)
#
# Measures, in one run on one machine:
#   1. peak events/s with one event per request on 64 connections (closed loop), and in a
#      second pass at that peak, the CPU per request of the event API, Postgres, Redis and the
#      load generator, which share this machine's cores;
#   2. latency p50/p99 at half of (1)'s request rate (open loop, 64 connections), after a
#      checkpoint, so that it measures the steady state and not Postgres writing back (1);
#   3. peak events/s with 100 events per request on 64 connections, and its ratio to
#      redis-benchmark's pipelined XADD rate on the same Redis. It runs last: a burst of
#      ~400,000 rows leaves Postgres flushing and vacuuming for many seconds after.
# Needs built cairn, cairn-event-api and cairn-bench in BENCH_BIN_DIR (default: release).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
seconds=10 warmup=2 reference_count=1000000
[ -z "${BENCH_SMOKE:-}" ] || { seconds=1 warmup=0.2 reference_count=20000; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
redis_port=$(redis_port)

CAIRN_LOG_LEVEL=warning "$bin/cairn" migrate >/dev/null
port=$(free_port)
CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_PORT=$port CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench: \
  "$bin/cairn-event-api" &
api_pid=$!
trap 'kill $api_pid 2>/dev/null; wait $api_pid 2>/dev/null || true' EXIT
wait_for_http "http://127.0.0.1:$port/readyz" 30

load() {
  "$bin/cairn-bench" ingest --url "http://127.0.0.1:$port/e/bench" --duration "$seconds" --warmup "$warmup" --json "$@"
}

reference=$(redis_xadd_reference "$redis_port" "$reference_count")
single=$(load --connections 64 --events-per-request 1)
# The CPU each process spends per request at that peak: a second pass, once every pool
# connection (and so every Postgres backend) exists.
servers=$(server_pids)
pg_pids=$(sed -n 's/^postgres //p' <<<"$servers") redis_pid=$(sed -n 's/^redis //p' <<<"$servers")
ticks_before="$(process_ticks $api_pid) $(process_ticks $pg_pids) $(process_ticks $redis_pid)"
accounted=$(load --connections 64 --events-per-request 1 --warmup 0)
ticks_after="$(process_ticks $api_pid) $(process_ticks $pg_pids) $(process_ticks $redis_pid)"
half_rate=$(( $(json_field "$single" requests_per_second) / 2 ))
psql "$CAIRN_POSTGRES_URL" -qc "CHECKPOINT"
paced=$(load --connections 64 --events-per-request 1 --rate "$(( half_rate > 0 ? half_rate : 1 ))")
batch=$(load --connections 64 --events-per-request 100)

rss=$(peak_rss_mb "$api_pid")
echo "  peak RSS of cairn-event-api: $rss MiB"
echo "rss_peak_event_api_mb=$rss"
for run in "$single" "$accounted" "$batch" "$paced"; do
  errors=$(json_field "$run" errors)
  [ "$errors" = 0 ] || { echo "ingest: $errors requests failed: $run" >&2; exit 1; }
done
python3 - "$reference" "$single" "$batch" "$paced" "$accounted" "$ticks_before" "$ticks_after" <<'PY'
import json, os, sys
reference = float(sys.argv[1])
single, batch, paced, accounted = (json.loads(text) for text in sys.argv[2:6])
hz = os.sysconf("SC_CLK_TCK")
used = [(after - before) / hz for before, after in zip(map(int, sys.argv[6].split()), map(int, sys.argv[7].split()))]
rows = [
    ("redis-benchmark XADD -P 64 -c 50", f"{reference:,.0f} entries/s", "reference"),
    ("1 event/request, 64 conns, closed loop", f"{single['events_per_second']:,} events/s",
     f"p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms"),
    ("100 events/request, 64 conns, closed loop", f"{batch['events_per_second']:,} events/s",
     f"{batch['events_per_second'] / reference:.2f} x redis XADD"),
    (f"1 event/request at {paced['target_requests_per_second']:,} req/s (half of peak)",
     f"{paced['events_per_second']:,} events/s", f"p50 {paced['p50_ms']} ms, p99 {paced['p99_ms']} ms"),
]
width = max(len(r[0]) for r in rows)
for name, value, note in rows:
    print(f"  {name:<{width}}  {value:>18}  {note}")
requests = max(1, accounted["requests"])
cpu = dict(zip(["event_api", "postgres", "redis"], used), load_generator=accounted["load_generator_cpu_seconds"])
print("  CPU per request at the one-event peak: " + ", ".join(f"{name.replace('_', '-')} {seconds * 1e6 / requests:.0f} us" for name, seconds in cpu.items()))
for name, seconds in cpu.items():
    print(f"ingest_cpu_us_per_request_{name}={seconds * 1e6 / requests:.0f}")
print(f"ingest_single_events_per_second={single['events_per_second']}")
print(f"ingest_batch_events_per_second={batch['events_per_second']}")
print(f"ingest_batch_to_xadd_ratio={batch['events_per_second'] / reference:.2f}")
print(f"ingest_half_load_p99_ms={paced['p99_ms']}")
PY
