#!/usr/bin/env bash
# Engine overhead per step with run tracing on and off, in the same run, on private servers with
# Postgres fsync on: `cairn dev` and the SDK stub of cairn-bench, as bench/steps.sh.
#
#   bench/tracing.sh   8 rounds per mode of 100 runs of a 10-step no-op function, each round on a
#                      new `cairn dev`: without tracing, or exporting its run traces over
#                      OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, the exporter's defaults otherwise)
#                      to bench/otlp_sink.py on loopback, which counts the spans and discards
#                      them. The modes alternate, and their order swaps every round (off-on,
#                      on-off, …), so a drift of the machine weighs on both alike; each mode has
#                      its own database. Many short rounds rather than a few long ones: on this
#                      kind of machine the speed drifts by tens of percent over tens of seconds.
#                      Figures: the median of the rounds' p50 and p99 per mode, and the on/off
#                      ratio of each round's pair. Goal: tracing on costs <= +10 % per step.
#   BENCH_SMOKE=1 …    1 round per mode of 5 runs (proves the harness runs)
#
# Spans received are counted by the sink once each traced `cairn dev` has stopped (it sends what
# it still holds as it stops); spans dropped are cairn_trace_spans_dropped_total on its /metrics,
# scraped just before. The CPU time the hypervisor stole during each round's runs (/proc/stat) is
# reported too: it slows a round whichever its mode. Prints the figures as name=value lines
# (bench/report.py) and, unless BENCH_SMOKE=1, writes the tracing block of bench/RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
rounds=8 runs=100
[ -z "${BENCH_SMOKE:-}" ] || { rounds=1 runs=5; }

source "$root/bench/lib.sh"
with_private_servers "$0" "$@"
# "Off" must be off: no OpenTelemetry variable from the caller reaches either mode.
for variable in $(compgen -e); do
  case $variable in OTEL_*) unset "$variable" ;; esac
done

# The sink stops with this script, or after an hour at most.
sink_port=$(free_port)
python3 "$root/bench/otlp_sink.py" "$sink_port" $$ 3600 &
sink_pid=$!
trap 'stop_dev; stop_processes "$sink_pid"' EXIT
wait_for_http "http://127.0.0.1:$sink_port/" 10
sink_spans() { json_field "$(curl -fsS "http://127.0.0.1:$sink_port/")" spans; }
# cpu_times: the machine's CPU jiffies so far, all and stolen by the hypervisor ("TOTAL STEAL").
cpu_times() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat; }

# one_round MODE: a new `cairn dev`, traced (on) or not (off), drives the runs; appends one JSON
# object to the array results: the stub's figures, the CPU ticks of `cairn dev` and of the sink
# during the runs, the share of the machine's CPU time the hypervisor stole meanwhile, the spans
# the sink received and the spans `cairn dev` counted as dropped.
one_round() {
  local mode=$1 steps dev_before dev_after sink_before sink_after spans_before spans_after dropped cpu_before cpu_after steal
  spans_before=$(sink_spans)
  if [ "$mode" = on ]; then
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" start_dev "$bin" tracing_on
  else
    start_dev "$bin" tracing_off
  fi
  dev_before=$(process_ticks "$dev_pid") sink_before=$(process_ticks "$sink_pid") cpu_before=$(cpu_times)
  steps=$("$bin/cairn-bench" steps --api "http://127.0.0.1:$port" --runs "$runs" --steps 10 --sleeps 0 --json)
  dev_after=$(process_ticks "$dev_pid") sink_after=$(process_ticks "$sink_pid") cpu_after=$(cpu_times)
  # Absent (null) when the process has no exporter.
  dropped=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "cairn_trace_spans_dropped_total" { print $2 }')
  stop_dev
  spans_after=$(sink_spans)
  steal=$(awk -v a="$cpu_before" -v b="$cpu_after" \
    'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; printf "%.1f", (t > 0 ? (y[2] - x[2]) * 100 / t : 0) }')
  results+=("{\"mode\": \"$mode\", \"steps\": $steps, \"dev_ticks\": $((dev_after - dev_before)), \"sink_ticks\": $((sink_after - sink_before)), \"steal_percent\": $steal, \"spans\": $((spans_after - spans_before)), \"dropped\": ${dropped:-null}}")
}

results=()
for round in $(seq 1 "$rounds"); do
  order="off on"
  [ $((round % 2)) -eq 1 ] || order="on off"
  for mode in $order; do
    one_round "$mode"
  done
done

python3 - "$root/bench/RESULTS.md" "$(getconf CLK_TCK)" "${results[@]}" <<'PY'
import json, os, statistics, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
results, tick = sys.argv[1], int(sys.argv[2])
rounds = [json.loads(x) for x in sys.argv[3:]]
off = [r for r in rounds if r["mode"] == "off"]
on = [r for r in rounds if r["mode"] == "on"]
runs = on[0]["steps"]["runs"]
steps = runs * on[0]["steps"]["steps_per_run"]
for number, r in enumerate(rounds):
    s = r["steps"]
    line = (f"  round {number // 2 + 1}, tracing {r['mode']:>3}: overhead per step p50 {s['overhead_per_step_p50_ms']} ms  "
            f"p99 {s['overhead_per_step_p99_ms']} ms  {s['runs_per_second']} runs/s  cairn dev CPU {r['dev_ticks'] * 1000 / tick / steps:.3f} ms/step  "
            f"steal {r['steal_percent']} %")
    if r["mode"] == "on":
        line += f"  {r['spans']} spans received, {r['dropped']} dropped"
    print(line)

def median(group, key):
    return statistics.median(r["steps"][key] for r in group)

def cpu(group, key):
    return statistics.median(r[key] for r in group) * 1000 / tick / steps

off50, on50 = median(off, "overhead_per_step_p50_ms"), median(on, "overhead_per_step_p50_ms")
off99, on99 = median(off, "overhead_per_step_p99_ms"), median(on, "overhead_per_step_p99_ms")
pct50, pct99 = (on50 / off50 - 1) * 100, (on99 / off99 - 1) * 100
received = sum(r["spans"] for r in on)
dropped = sum(r["dropped"] or 0 for r in on)
unscraped = sum(1 for r in on if r["dropped"] is None)
off_cpu, on_cpu = cpu(off, "dev_ticks"), cpu(on, "dev_ticks")
sink_ms = sum(r["sink_ticks"] for r in on) * 1000 / tick
tail = sum(1 for a, b in zip(off, on) if b["steps"]["overhead_per_step_p99_ms"] > a["steps"]["overhead_per_step_p99_ms"])
pairs = sorted(b["steps"]["overhead_per_step_p50_ms"] / a["steps"]["overhead_per_step_p50_ms"]
               for a, b in zip(off, on))
print(f"  {len(on)} rounds per mode of {runs} runs x 10 no-op steps, alternating: engine overhead per step "
      f"p50 tracing on {on50:.3f} ms vs off {off50:.3f} ms ({pct50:+.1f} %), p99 {on99:.3f} vs {off99:.3f} ms ({pct99:+.1f} %; "
      f"higher with tracing on in {tail} of {len(on)} rounds)")
print(f"  p50 on/off within each round: {', '.join(f'{(x - 1) * 100:+.0f} %' for x in pairs)} "
      f"(median {(statistics.median(pairs) - 1) * 100:+.1f} %)")
print(f"  spans received by the sink: {received:,} ({received / (runs * len(on)):.1f} per run, {received / (steps * len(on)):.2f} per step); "
      f"dropped: {dropped}" + (f" ({unscraped} rounds without the counter on /metrics)" if unscraped else ""))
steal = max(r["steal_percent"] for r in rounds)
print(f"  CPU of cairn dev per step: tracing on {on_cpu:.3f} ms vs off {off_cpu:.3f} ms; the sink's, all traced rounds: {sink_ms:.0f} ms")
print(f"  CPU time stolen by the hypervisor during a round's runs: at most {steal} %")
print(f"tracing_off_overhead_per_step_p50_ms={off50:.3f}")
print(f"tracing_on_overhead_per_step_p50_ms={on50:.3f}")
print(f"tracing_off_overhead_per_step_p99_ms={off99:.3f}")
print(f"tracing_on_overhead_per_step_p99_ms={on99:.3f}")
print(f"tracing_spans_received={received}")
print(f"tracing_spans_dropped={dropped}")
print(f"tracing_off_cpu_ms_per_step={off_cpu:.3f}")
print(f"tracing_on_cpu_ms_per_step={on_cpu:.3f}")
if os.environ.get("BENCH_SMOKE"):
    sys.exit(0)
import results_block
conditions = (f"`cairn dev`, Swift SDK stub, {runs} runs x 10 no-op steps per round, a new `cairn dev` per round, "
              f"{len(on)} rounds per mode alternating (off-on, on-off, …)")
results_block.write(results, "tracing", [
    "## Tracing: engine overhead per step with run traces exported",
    "",
    f"Written by `bench/tracing.sh`, {results_block.stamp()}. Private servers (fsync on); `cairn dev` without tracing, or exporting "
    "its run traces over OTLP/HTTP JSON with the exporter's defaults (batches of 512 spans, every 5 s at most, a queue of 8,192) "
    "to `bench/otlp_sink.py` on loopback, which counts the spans and discards them, on the same machine.",
    "",
    "| Figure | Value | Conditions |",
    "|---|---:|---|",
    f"| Engine overhead per step with tracing on vs off, p50 | {on50:.3f} vs {off50:.3f} ms ({pct50:+.1f} %) | {conditions}; "
    f"median of each mode's rounds (within a round: {(pairs[0] - 1) * 100:+.0f} % to {(pairs[-1] - 1) * 100:+.0f} %, median "
    f"{(statistics.median(pairs) - 1) * 100:+.1f} %); goal <= +10 % |",
    f"| Engine overhead per step with tracing on vs off, p99 | {on99:.3f} vs {off99:.3f} ms ({pct99:+.1f} %) | the same rounds; "
    f"median of each mode's p99; higher with tracing on in {tail} of {len(on)} rounds |",
    f"| Spans received by the sink / dropped | {received:,} / {dropped} | {received / (runs * len(on)):.1f} per run, "
    f"{received / (steps * len(on)):.2f} per step; counted after each traced `cairn dev` stopped; dropped: "
    "`cairn_trace_spans_dropped_total`, scraped before it stopped |",
    f"| CPU of `cairn dev` per step, tracing on vs off | {on_cpu:.3f} vs {off_cpu:.3f} ms | user + system during the runs, "
    f"median of the rounds; the sink used {sink_ms:.0f} ms in all the traced rounds together |",
    f"| CPU time stolen by the hypervisor during a round's runs, at most | {steal} % | from /proc/stat; a round with much "
    "stolen time is slow in either mode |",
])
PY
