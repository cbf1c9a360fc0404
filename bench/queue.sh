#!/usr/bin/env bash
# The work queue (docs/queue.md), on private servers with Postgres fsync on.
#
#   bench/queue.sh   roles in separate processes with two cairn-executor: a function with
#                    concurrency 5 and a line of 10,000 runs, and another function's
#                    schedule-to-start latency with the line empty and behind it; the limited
#                    function's requests in flight sampled at every request, across both
#                    executors (the probe waits up to 120 s for the line to form). Then the
#                    engine overhead per step of a function without limits
#                    (cairn dev, 10-step runs).
#   BENCH_SMOKE=1 …  small counts (proves the harness runs)
#
# With BENCH_BASELINE_BIN_DIR (binaries built from an earlier commit), the overhead per step is
# also measured on those, in the same run: rounds alternate between the two builds, each on
# its own database, and the figures pool each build's rounds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
queue_args=(--limit 5 --backlog 10000 --hold-ms 100 --probes 200 --line-seconds 120 --sample-seconds 40)
rounds=3 step_runs=100
[ -z "${BENCH_SMOKE:-}" ] || { queue_args=(--limit 2 --backlog 30 --hold-ms 200 --probes 10 --line-seconds 30 --sample-seconds 1); rounds=1 step_runs=5; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"

pids=()
stop_all() {
  [ ${#pids[@]} -eq 0 ] || stop_processes "${pids[@]}"
  pids=()
}

# The line, with every role in its own process and two executors.
(
  export CAIRN_DEV=1 CAIRN_HOST=127.0.0.1 CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX=cairn-bench-queue:
  export CAIRN_POSTGRES_URL=$(bench_database queue)
  "$bin/cairn" migrate >/dev/null
  trap stop_all EXIT
  start_role api; api_port=$role_port
  start_role event-api; event_port=$role_port
  start_role scheduler
  start_role executor
  start_role executor
  "$bin/cairn-bench" queue --api "http://127.0.0.1:$api_port" --event-api "http://127.0.0.1:$event_port" "${queue_args[@]}" --json
) > "${TMPDIR:-/tmp}/cairn-bench-queue.$$"
line=$(cat "${TMPDIR:-/tmp}/cairn-bench-queue.$$")
rm -f "${TMPDIR:-/tmp}/cairn-bench-queue.$$"

trap stop_dev EXIT
steps() {
  "$bin/cairn-bench" steps --api "http://127.0.0.1:$port" --runs "$step_runs" --steps 10 --sleeps 0 --json
}
alternate_builds "$rounds" steps steps

PYTHONPATH="$root/bench" python3 - "${BENCH_SMOKE:-}" "$root/bench/RESULTS.md" "$line" "${#current_runs[@]}" "${current_runs[@]}" "${baseline_runs[@]}" <<'PY'
import json, statistics, sys
smoke, results = sys.argv[1], sys.argv[2]
q = json.loads(sys.argv[3])
n = int(sys.argv[4])
current = [json.loads(x) for x in sys.argv[5:5 + n]]
baseline = [json.loads(x) for x in sys.argv[5 + n:]]
print(f"  another function's schedule-to-start, line empty:  p50 {q['free_alone_p50_ms']} ms  p99 {q['free_alone_p99_ms']} ms")
print(f"  the same behind a line of {q['backlog_at_probe']:,}, {q['line_seconds']} s after sending {q['backlog']:,} (concurrency {q['limit']}):  "
      f"p50 {q['free_behind_backlog_p50_ms']} ms  p99 {q['free_behind_backlog_p99_ms']} ms")
print(f"  limited requests in flight, sampled at each of {q['executor_requests_sampled']:,} requests over two executors: "
      f"max {q['max_in_flight']} (limit {q['limit']})")
c = statistics.median(x["overhead_per_step_p50_ms"] for x in current)
print(f"  engine overhead per step without limits, p50 (median of {len(current)} rounds): this build {c:.3f} ms")
print(f"queue_free_alone_p99_ms={q['free_alone_p99_ms']}")
print(f"queue_free_behind_backlog_p99_ms={q['free_behind_backlog_p99_ms']}")
print(f"queue_max_in_flight={q['max_in_flight']}")
print(f"queue_steps_p50_current_ms={c:.3f}")
if baseline:
    b = statistics.median(x["overhead_per_step_p50_ms"] for x in baseline)
    print(f"  baseline build {b:.3f} ms ({c - b:+.3f} ms)")
    print(f"queue_steps_p50_baseline_ms={b:.3f}")
if smoke:
    sys.exit(0)
rows = [
    ("Another function's schedule-to-start, line empty, p50 / p99", f"{q['free_alone_p50_ms']} / {q['free_alone_p99_ms']} ms",
     f"{q['free_alone_count']} events 20 ms apart, measured at the stub from the send"),
    ("Another function's schedule-to-start behind a concurrency backlog, p50 / p99",
     f"{q['free_behind_backlog_p50_ms']} / {q['free_behind_backlog_p99_ms']} ms",
     f"function A: concurrency {q['limit']}, {q['backlog']:,} runs sent at once, {q['backlog_at_probe']:,} in its line when the probe began "
     f"({q['backlog_after_probe']:,} after), {q['line_seconds']} s after the send; function B: no limit, {q['free_behind_backlog_count']} events 20 ms apart; goal p99 <= 50 ms"),
    ("Function A's requests in flight, sampled maximum", f"{q['max_in_flight']}",
     f"sampled at each of {q['executor_requests_sampled']:,} requests, two cairn-executor processes, each request {q['hold_ms']} ms; "
     f"goal exactly {q['limit']}, never more"),
]
if baseline:
    rows.append(("Engine overhead per step without limits, p50: this build vs the baseline build", f"{c:.3f} vs {b:.3f} ms ({c - b:+.3f} ms)",
                 f"cairn dev, Swift SDK stub, {current[0]['runs']} runs x 10 no-op steps, median of {len(current)} alternating rounds; goal <= +0.2 ms"))
else:
    rows.append(("Engine overhead per step without limits, p50", f"{c:.3f} ms",
                 f"cairn dev, Swift SDK stub, {current[0]['runs']} runs x 10 no-op steps, median of {len(current)} rounds"))
import results_block
results_block.write(results, "queue", [
    "## Work queue: concurrency limits without head-of-line blocking",
    "",
    f"Written by `bench/queue.sh`, {results_block.stamp()}. Private servers (fsync on), roles in separate processes with two "
    "executors for the line, `cairn dev` for the overhead per step; an SDK stub that answers at once (docs/queue.md).",
    "",
    "| Figure | Value | Conditions |",
    "|---|---:|---|",
    *[f"| {a} | {b} | {c} |" for a, b, c in rows],
])
PY
