#!/usr/bin/env bash
# Flow control: `cairn dev` on private servers (Postgres fsync on) driving the flow stub built
# into cairn-bench (docs/flow-control.md).
#
#   bench/flow.sh        debounce and batch fire lags, 10,000 events over 1,000 debounce keys,
#                        10,000 events in batches of 100, 20 every-minute crons over 2 ticks,
#                        and the event-to-first-call latency of a function without options
#   BENCH_SMOKE=1 …      small counts, no crons (proves the harness runs)
#
# With BENCH_BASELINE_BIN_DIR (binaries built from an earlier commit), the plain function's
# latency is also measured on those, in the same run: rounds alternate between the two builds,
# each on its own database, and the figures pool each build's rounds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
args=(--plain 200 --debounce-lag 100 --debounce-events 10000 --debounce-keys 1000 --batch-events 10000 --batch-lag 100 --crons 20 --cron-ticks 2)
rounds=3 plain=200
[ -z "${BENCH_SMOKE:-}" ] || { args=(--plain 10 --debounce-lag 5 --debounce-events 200 --debounce-keys 20 --batch-events 200 --batch-lag 5 --crons 0); rounds=1 plain=10; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"

trap stop_dev EXIT
start_dev "$bin" flow
result=$("$bin/cairn-bench" flow --api "http://127.0.0.1:$port" "${args[@]}" --json)
stop_dev

current_runs=() baseline_runs=()
plain_latency() { "$bin/cairn-bench" flow --api "http://127.0.0.1:$port" --plain "$plain" --plain-only --json; }
if [ -n "${BENCH_BASELINE_BIN_DIR:-}" ]; then
  alternate_builds "$rounds" plain plain_latency
fi

PYTHONPATH="$root/bench" python3 - "${BENCH_SMOKE:-}" "$root/bench/RESULTS.md" "$result" "${#current_runs[@]}" "${current_runs[@]}" "${baseline_runs[@]}" <<'PY'
import json, os, statistics, sys
smoke, results = sys.argv[1], sys.argv[2]
r = json.loads(sys.argv[3])
n = int(sys.argv[4])
current = [json.loads(x) for x in sys.argv[5:5 + n]]
baseline = [json.loads(x) for x in sys.argv[5 + n:]]
print(f"  event to first call, no options:  p50 {r['plain_first_call_p50_ms']} ms  p99 {r['plain_first_call_p99_ms']} ms")
print(f"  debounce fire lag ({r['debounce_fire_lag_count']} keys, 1 s):  p50 {r['debounce_fire_lag_p50_ms']} ms  p99 {r['debounce_fire_lag_p99_ms']} ms")
print(f"  {r['debounce_events']:,} events over {r['debounce_keys']:,} debounce keys: {r['debounce_runs']:,} runs, "
      f"the last {r['debounce_seconds_to_last_run']} s after the first event was sent")
print(f"  {r['batch_events']:,} events, maxSize 100: {r['batch_runs']:,} runs of {r['batch_events_per_run_min']}-{r['batch_events_per_run_max']} events")
print(f"  batch flush lag ({r['batch_flush_lag_count']} batches, 1 s timeout):  p50 {r['batch_flush_lag_p50_ms']} ms  p99 {r['batch_flush_lag_p99_ms']} ms")
if "cron_fire_lag_count" in r:
    print(f"  cron fire lag ({r['cron_ticks']} ticks):  p50 {r['cron_fire_lag_p50_ms']} ms  p99 {r['cron_fire_lag_p99_ms']} ms")
keys = ["plain_first_call_p50_ms", "plain_first_call_p99_ms", "debounce_fire_lag_p99_ms", "debounce_runs",
        "batch_runs", "batch_flush_lag_p99_ms", "cron_fire_lag_p99_ms"]
for key in keys:
    if key in r:
        print(f"flow_{key}={r[key]}")
if current and baseline:
    c = statistics.median(x["plain_first_call_p50_ms"] for x in current)
    b = statistics.median(x["plain_first_call_p50_ms"] for x in baseline)
    print(f"  event to first call, no options, p50 (median of {len(current)} alternating rounds): "
          f"this build {c:.3f} ms, baseline {b:.3f} ms ({c / b:.3f} x)")
    print(f"flow_plain_p50_current_ms={c:.3f}")
    print(f"flow_plain_p50_baseline_ms={b:.3f}")
    print(f"flow_plain_p50_ratio={c / b:.3f}")
if smoke:
    sys.exit(0)
rows = [
    ("Event to first call, function without options, p50 / p99", f"{r['plain_first_call_p50_ms']} / {r['plain_first_call_p99_ms']} ms", ""),
    ("Debounce fire lag, p50 / p99", f"{r['debounce_fire_lag_p50_ms']} / {r['debounce_fire_lag_p99_ms']} ms",
     f"{r['debounce_fire_lag_count']} keys, 1 s period, events 20 ms apart; goal p99 <= 50 ms"),
    ("Debounce exactness", f"{r['debounce_runs']:,} runs",
     f"{r['debounce_events']:,} events round-robin over {r['debounce_keys']:,} keys, 10 s period, sent in requests of 500; "
     f"last run {r['debounce_seconds_to_last_run']} s after the first send; goal exactly {r['debounce_keys']:,}"),
    ("Batch exactness", f"{r['batch_runs']:,} runs of {r['batch_events_per_run_min']}-{r['batch_events_per_run_max']} events",
     f"{r['batch_events']:,} events, maxSize 100, 1 m timeout, sent in requests of 500; goal exactly {r['batch_events'] // 100:,}"),
    ("Batch flush lag after the timeout, p50 / p99", f"{r['batch_flush_lag_p50_ms']} / {r['batch_flush_lag_p99_ms']} ms",
     f"{r['batch_flush_lag_count']} batches, 1 s timeout; goal p99 <= 50 ms"),
]
if "cron_fire_lag_count" in r:
    rows.append(("Cron fire lag, p50 / p99", f"{r['cron_fire_lag_p50_ms']} / {r['cron_fire_lag_p99_ms']} ms",
                 f"{r['cron_ticks']} ticks of 20 every-minute crons firing together, measured from the tick; goal p99 <= 50 ms"))
if current and baseline:
    rows.append(("Event to first call without options, p50: this build vs the baseline build", f"{c:.3f} vs {b:.3f} ms ({c / b:.3f} x)",
                 f"median of {len(current)} alternating rounds of {current[0]['plain_first_call_count']} events; goal <= 1.05 x"))
import results_block
results_block.write(results, "flow", [
    "## Flow control: fire lags and exactness",
    "",
    f"Written by `bench/flow.sh`, {results_block.stamp()}. `cairn dev` on private servers (fsync on), with an SDK stub that "
    "answers at once. Lags are measured at the stub from when the event was sent (routing included) to the run's first call.",
    "",
    "| Figure | Value | Conditions |",
    "|---|---:|---|",
    *[f"| {a} | {b} | {c} |" for a, b, c in rows],
])
PY
