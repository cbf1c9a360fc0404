#!/usr/bin/env bash
# Engine overhead per step with run tracing on and off, in the same run, on private servers with
# Postgres fsync on: `cairn dev` and the SDK stub of cairn-bench, as bench/steps.sh.
#
#   bench/tracing.sh   4 rounds per mode of 200 runs of a 10-step no-op function, each round on a
#                      new `cairn dev`: without tracing, or exporting its run traces over
#                      OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, the exporter's defaults otherwise)
#                      to bench/otlp_sink.py on loopback, which counts the spans and discards
#                      them. The modes alternate, and their order swaps every round (off-on,
#                      on-off, …), so a drift of the machine weighs on both alike; each mode has
#                      its own database. Figures: the median of the rounds' p50 and p99 per mode.
#                      Goal: tracing on costs <= +10 % per step.
#   BENCH_SMOKE=1 …    1 round per mode of 5 runs (proves the harness runs)
#
# Spans received are counted by the sink once each traced `cairn dev` has stopped (it sends what
# it still holds as it stops); spans dropped are cairn_trace_spans_dropped_total on its /metrics,
# scraped just before. Prints the figures as name=value lines (bench/report.py) and, unless
# BENCH_SMOKE=1, writes the tracing block of bench/RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN_DIR:-$(cd "$root" && swift build -c release --show-bin-path)}
rounds=4 runs=200
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

# one_round MODE: a new `cairn dev`, traced (on) or not (off), drives the runs; appends one JSON
# object to the array results: the stub's figures, the CPU ticks of `cairn dev` and of the sink
# during the runs, the spans the sink received and the spans `cairn dev` counted as dropped.
one_round() {
  local mode=$1 steps dev_before dev_after sink_before sink_after spans_before spans_after dropped
  spans_before=$(sink_spans)
  if [ "$mode" = on ]; then
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" start_dev "$bin" tracing_on
  else
    start_dev "$bin" tracing_off
  fi
  dev_before=$(process_ticks "$dev_pid") sink_before=$(process_ticks "$sink_pid")
  steps=$("$bin/cairn-bench" steps --api "http://127.0.0.1:$port" --runs "$runs" --steps 10 --sleeps 0 --json)
  dev_after=$(process_ticks "$dev_pid") sink_after=$(process_ticks "$sink_pid")
  # Absent (null) when the process has no exporter.
  dropped=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "cairn_trace_spans_dropped_total" { print $2 }')
  stop_dev
  spans_after=$(sink_spans)
  results+=("{\"mode\": \"$mode\", \"steps\": $steps, \"dev_ticks\": $((dev_after - dev_before)), \"sink_ticks\": $((sink_after - sink_before)), \"spans\": $((spans_after - spans_before)), \"dropped\": ${dropped:-null}}")
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
            f"p99 {s['overhead_per_step_p99_ms']} ms  {s['runs_per_second']} runs/s  cairn dev CPU {r['dev_ticks'] * 1000 / tick / steps:.3f} ms/step")
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
off_cpu, on_cpu, sink_cpu = cpu(off, "dev_ticks"), cpu(on, "dev_ticks"), cpu(on, "sink_ticks")
print(f"  {len(on)} rounds per mode of {runs} runs x 10 no-op steps, alternating: engine overhead per step "
      f"p50 tracing on {on50:.3f} ms vs off {off50:.3f} ms ({pct50:+.1f} %), p99 {on99:.3f} vs {off99:.3f} ms ({pct99:+.1f} %)")
print(f"  spans received by the sink: {received:,} ({received / (runs * len(on)):.1f} per run, {received / (steps * len(on)):.2f} per step); "
      f"dropped: {dropped}" + (f" ({unscraped} rounds without the counter on /metrics)" if unscraped else ""))
print(f"  CPU of cairn dev per step: tracing on {on_cpu:.3f} ms vs off {off_cpu:.3f} ms; the sink's {sink_cpu:.3f} ms per step")
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
    "median of each mode's rounds; goal <= +10 % |",
    f"| Engine overhead per step with tracing on vs off, p99 | {on99:.3f} vs {off99:.3f} ms ({pct99:+.1f} %) | the same rounds; "
    "median of each mode's p99 |",
    f"| Spans received by the sink / dropped | {received:,} / {dropped} | {received / (runs * len(on)):.1f} per run, "
    f"{received / (steps * len(on)):.2f} per step; counted after each traced `cairn dev` stopped; dropped: "
    "`cairn_trace_spans_dropped_total`, scraped before it stopped |",
    f"| CPU of `cairn dev` per step, tracing on vs off | {on_cpu:.3f} vs {off_cpu:.3f} ms | user + system during the runs, "
    f"median of the rounds; the sink used {sink_cpu:.3f} ms per step |",
])
PY
