"""Turns the `name=value` lines the bench scripts print into results.json and RESULTS.md.

Usage: report.py LOG OUT_DIR — every figure with its unit, the conditions it was measured
under, and where it has one, its ratio to the reference measured in the same run. The chaos,
retention, flow-control, queue, tracing, connect, bulk and dashboard sections of an existing RESULTS.md
(written by `make chaos`, bench/retention.sh, bench/flow.sh, bench/queue.sh, bench/tracing.sh,
bench/connect.sh, bench/bulk.sh and bench/dashboard.sh) are kept."""

import datetime
import json
import os
import platform
import sys

# name: (what, unit, conditions)
FIGURES = {
    "limit_http_roundtrip_p50_ms": ("HTTP round trip, kept-alive, trivial route (p50)", "ms", "wrk, 1 connection, Hummingbird /healthz"),
    "limit_http_trivial_requests_per_second": ("HTTP trivial route rate", "req/s", "wrk, 64 connections"),
    "limit_redis_xadd_pipelined_per_second": ("Redis XADD, pipelined", "entries/s", "redis-benchmark -P 64 -c 50"),
    "limit_redis_xadd_unpipelined_per_second": ("Redis XADD, no pipeline", "entries/s", "redis-benchmark -c 50"),
    "limit_pg_commit_ms": ("Postgres one-row insert commit", "ms", "pgbench, 1 client, fsync on"),
    "limit_pg_commits_per_second": ("Postgres one-row insert commits", "commits/s", "pgbench, 1 client, fsync on"),
    "limit_pg_event_rows_per_second": ("Postgres inserts into Cairn's events table", "rows/s", "pgbench, 100 rows per insert, 4 clients, fsync on"),
    "cairn_redis_xadd_pipelined_per_second": ("CairnRedis XADD, pipelined", "entries/s", "pipeline 64, 50 clients"),
    "ingest_single_events_per_second": ("Ingest, 1 event per request", "events/s", "one cairn-event-api, 64 connections, closed loop, fsync on"),
    "ingest_batch_events_per_second": ("Ingest, 100 events per request", "events/s", "one cairn-event-api, 64 connections, closed loop, fsync on"),
    **{f"ingest_cpu_us_per_request_{name}": (f"CPU per request at the ingest peak: {label}", "us", "1 event per request, 64 connections")
       for name, label in [("event_api", "cairn-event-api"), ("postgres", "Postgres"), ("redis", "Redis"),
                           ("load_generator", "load generator")]},
    "ingest_half_load_p99_ms": ("Ingest latency p99 at half of peak", "ms", "1 event per request, open loop, 64 connections"),
    "steps_overhead_per_step_p50_ms": ("Engine overhead per step, p50", "ms", "cairn dev, Swift SDK stub, 10 no-op steps per run, one run at a time"),
    "steps_overhead_per_step_p99_ms": ("Engine overhead per step, p99", "ms", "same"),
    "steps_timer_lag_p50_ms": ("Timer lag (1 s sleeps), p50", "ms", "fire + resume, measured at the stub, sleeps 20 ms apart"),
    "steps_timer_lag_p99_ms": ("Timer lag (1 s sleeps), p99", "ms", "same"),
    "steps_delayed_lag_p50_ms": ("Delayed-event lag (`ts` 2 s ahead), p50", "ms", "first call of the run, measured at the stub, events 20 ms apart"),
    "steps_delayed_lag_p99_ms": ("Delayed-event lag (`ts` 2 s ahead), p99", "ms", "same"),
    "rss_peak_event_api_mb": ("Peak RSS of cairn-event-api", "MiB", "during the ingest figures"),
    "rss_peak_cairn_dev_mb": ("Peak RSS of cairn dev (all roles in one process)", "MiB", "during the step and timer figures"),
    "rss_peak_role_api_mb": ("Peak RSS of cairn-api", "MiB", "own process, during the throughput figures"),
    "rss_peak_role_event_api_mb": ("Peak RSS of cairn-event-api", "MiB", "own process, during the throughput figures"),
    "rss_peak_role_scheduler_mb": ("Peak RSS of cairn-scheduler", "MiB", "own process, during the throughput figures"),
    "rss_peak_role_executor_mb": ("Peak RSS of cairn-executor", "MiB", "own process, during the throughput figures"),
    "rss_peak_role_gateway_mb": ("Peak RSS of cairn-gateway", "MiB", "own process, idle (no connect workers) during the throughput figures"),
    "throughput_one_executor_workflows_per_second": ("3-step workflows completed, one executor", "workflows/s", "roles in separate processes, Swift SDK stub, 1000 runs sent at once, fsync on"),
    "throughput_one_executor_cpu_busy_percent": ("Machine CPU busy during the one-executor figure", "%", "all processes, from /proc/stat"),
    "throughput_two_executors_workflows_per_second": ("3-step workflows completed, two executors", "workflows/s", "same, a second cairn-executor process"),
    **{f"throughput_cpu_ms_per_workflow_{name}": (f"CPU per workflow: {label}", "ms", "one-executor figure, user + system time / workflows")
       for name, label in [("postgres", "Postgres"), ("executor", "cairn-executor"), ("scheduler", "cairn-scheduler"),
                           ("event_api", "cairn-event-api"), ("api", "cairn-api"), ("redis", "Redis"),
                           ("stub_and_load", "SDK stub and event sender")]},
    "throughput_slow_steps_one_executor_workflows_per_second": ("3-step workflows completed, steps taking 200 ms in the app, one executor", "workflows/s", "500 runs sent at once; an executor drives 64 runs at a time"),
    "throughput_slow_steps_two_executors_workflows_per_second": ("3-step workflows completed, steps taking 200 ms in the app, two executors", "workflows/s", "same, a second cairn-executor process"),
    "peer_dbos_workflows_per_second": ("DBOS: 3-step workflows completed", "workflows/s", "same Postgres, 2000 workflows, 32 at a time"),
    "peer_dbos_step_p50_ms": ("DBOS: time per step, p50", "ms", "3 no-op steps, one workflow at a time, workflow wall time / 3"),
    "peer_dbos_step_p99_ms": ("DBOS: time per step, p99", "ms", "same"),
    "tracing_off_overhead_per_step_p50_ms": ("Engine overhead per step, tracing off, p50", "ms", "bench/tracing.sh: cairn dev, Swift SDK stub, 10 no-op steps per run, median of the rounds"),
    "tracing_on_overhead_per_step_p50_ms": ("Engine overhead per step, tracing on, p50", "ms", "the same, spans exported over OTLP/HTTP to a sink on loopback, rounds alternating with tracing off"),
    "tracing_off_overhead_per_step_p99_ms": ("Engine overhead per step, tracing off, p99", "ms", "same"),
    "tracing_on_overhead_per_step_p99_ms": ("Engine overhead per step, tracing on, p99", "ms", "same"),
    "tracing_spans_received": ("Spans received by the OTLP sink", "spans", "every traced round"),
    "tracing_spans_dropped": ("Spans dropped by the exporter", "spans", "cairn_trace_spans_dropped_total, every traced round"),
    "tracing_off_cpu_ms_per_step": ("CPU of cairn dev per step, tracing off", "ms", "user + system during the runs"),
    "tracing_on_cpu_ms_per_step": ("CPU of cairn dev per step, tracing on", "ms", "same"),
    "python_overhead_per_step_p50_ms": ("Engine overhead per step on the Python SDK, p50", "ms", "official SDK 0.5.19 on Flask's dev server, 10 no-op steps"),
    "python_overhead_per_step_p99_ms": ("Engine overhead per step on the Python SDK, p99", "ms", "same"),
    "python_http_overhead_per_step_p50_ms": ("Engine overhead per step on the Python SDK over HTTP, by the SDK's own clock, p50", "ms", "bench/connect.sh: cairn dev, the SDK's time per request (a middleware) subtracted"),
    "python_connect_overhead_per_step_p50_ms": ("Engine overhead per step on the Python SDK over connect, p50", "ms", "the same cairn dev and app as a connect worker, rounds alternating with HTTP, measured the same way"),
    "python_connect_overhead_per_step_p99_ms": ("Engine overhead per step on the Python SDK over connect, p99", "ms", "same"),
    "connect_idle_workers": ("Idle connect workers held by one gateway", "workers", "bench/connect_idle.py, heartbeats every 10 s"),
    "connect_idle_gateway_rss_mb": ("RSS of cairn-gateway holding them", "MB", "own process, every worker connected"),
    "connect_idle_gateway_cpu_percent": ("CPU of cairn-gateway on their heartbeats", "% of a core", "60 s window, user + system time"),
    "bulk_runs": ("Runs in the bulk cancel and replay figures", "runs", "bench/bulk.sh: sleeping runs of the Python app on cairn dev"),
    "bulk_cancel_seconds": ("Bulk cancel of them all", "s", "from the request to the job's end"),
    "bulk_replay_seconds": ("Bulk replay of them all", "s", "from the request to the job's end (replays created and queued)"),
    "dashboard_runs_first_rows_ms": ("Dashboard runs page, navigation to first rows", "ms", "bench/dashboard.sh: headless Chromium, 1,000,000 runs (goal < 500)"),
    "dashboard_failed_filter_ms": ("Dashboard runs filtered by status=Failed, last 24 h", "ms", "same"),
    "dashboard_failed_count_exact": ("Dashboard filtered count equals the fixture's", "1 = yes", "same"),
    "dashboard_search_matches": ("Dashboard expression search: matches found of 17", "runs", "event.data.userId == \"u-42\", every page followed, at most 120 s"),
    "dashboard_search_ms": ("Dashboard expression search: time to the last match", "ms", "same (goal < 1,000)"),
    "dashboard_big_run_ms": ("Dashboard run of 1,000 steps, navigation to its waterfall", "ms", "same (goal < 1,000)"),
}


def ratio(name, values):
    """The figure's reference in this run, as (ratio, text), or None."""
    if name == "cairn_redis_xadd_pipelined_per_second" and "limit_redis_xadd_pipelined_per_second" in values:
        return values[name] / values["limit_redis_xadd_pipelined_per_second"], "x redis-benchmark XADD (goal >= 0.5)"
    if name == "ingest_batch_events_per_second" and "limit_redis_xadd_pipelined_per_second" in values:
        text = "x redis XADD rate (goal >= 0.5)"
        if values.get("limit_pg_event_rows_per_second"):
            text += f"; {values[name] / values['limit_pg_event_rows_per_second']:.2f} x what Postgres alone inserts"
        return values[name] / values["limit_redis_xadd_pipelined_per_second"], text
    if name == "throughput_two_executors_workflows_per_second" and values.get("throughput_one_executor_workflows_per_second"):
        return values[name] / values["throughput_one_executor_workflows_per_second"], "x one executor (goal >= 1.7)"
    if name == "throughput_slow_steps_two_executors_workflows_per_second" and values.get("throughput_slow_steps_one_executor_workflows_per_second"):
        return values[name] / values["throughput_slow_steps_one_executor_workflows_per_second"], "x one executor (goal >= 1.7)"
    if name == "throughput_one_executor_workflows_per_second" and values.get("peer_dbos_workflows_per_second"):
        return values[name] / values["peer_dbos_workflows_per_second"], "x DBOS workflows/s (goal >= 1)"
    if name == "peer_dbos_step_p50_ms" and values.get("steps_overhead_per_step_p50_ms"):
        return values[name] / values["steps_overhead_per_step_p50_ms"], "x Cairn's engine overhead per step (p50)"
    if name == "python_connect_overhead_per_step_p50_ms" and values.get("python_http_overhead_per_step_p50_ms"):
        return values[name] / values["python_http_overhead_per_step_p50_ms"], "x over HTTP in the same run (goal <= 1)"
    if name == "tracing_on_overhead_per_step_p50_ms" and values.get("tracing_off_overhead_per_step_p50_ms"):
        return values[name] / values["tracing_off_overhead_per_step_p50_ms"], "x tracing off in the same run (goal <= 1.1)"
    if name == "tracing_on_overhead_per_step_p99_ms" and values.get("tracing_off_overhead_per_step_p99_ms"):
        return values[name] / values["tracing_off_overhead_per_step_p99_ms"], "x tracing off in the same run"
    if name == "tracing_on_cpu_ms_per_step" and values.get("tracing_off_cpu_ms_per_step"):
        return values[name] / values["tracing_off_cpu_ms_per_step"], "x tracing off in the same run"
    if name == "connect_idle_gateway_rss_mb":
        return values[name] / 150, "x the 150 MB goal for 1,000 workers (goal <= 1)"
    if name == "connect_idle_gateway_cpu_percent":
        return values[name] / 5, "x the 5 % goal (goal <= 1)"
    floor = values.get("limit_http_roundtrip_p50_ms", 0) + values.get("limit_pg_commit_ms", 0)
    if name.startswith(("steps_overhead", "python_overhead")) and floor > 0:
        return values[name] / floor, "x (HTTP round trip + one commit)"
    return None


def kept_section(path, name):
    """A section another harness writes into RESULTS.md between its markers (`make chaos`:
    chaos; bench/retention.sh: retention; bench/flow.sh: flow; bench/queue.sh: queue;
    bench/tracing.sh: tracing; bench/connect.sh: connect; bench/bulk.sh: bulk; bench/dashboard.sh:
    dashboard), to write
    back as is."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    try:
        with open(path) as file:
            text = file.read()
    except FileNotFoundError:
        return ""
    if begin not in text or end not in text:
        return ""
    return begin + text.split(begin, 1)[1].split(end, 1)[0] + end


def main():
    log, out = sys.argv[1], sys.argv[2]
    values = {}
    with open(log) as lines:
        for line in lines:
            name, sep, value = line.strip().partition("=")
            if sep and name in FIGURES:
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
    os.makedirs(out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
    results = {
        "measured_at": stamp, "machine": machine,
        "figures": [
            {"name": name, "what": FIGURES[name][0], "value": values[name], "unit": FIGURES[name][1],
             "conditions": FIGURES[name][2],
             **({"ratio": round(r[0], 3), "ratio_to": r[1]} if (r := ratio(name, values)) else {})}
            for name in FIGURES if name in values
        ],
    }
    with open(os.path.join(out, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    rows = ["| Figure | Value | Unit | Conditions | Ratio to reference |", "|---|---:|---|---|---|"]
    for figure in results["figures"]:
        shown = f"{figure['value']:,.3f}".rstrip("0").rstrip(".")
        reference = f"{figure['ratio']:.2f} {figure['ratio_to']}" if "ratio" in figure else ""
        rows.append(f"| {figure['what']} | {shown} | {figure['unit']} | {figure['conditions']} | {reference} |")
    path = os.path.join(out, "RESULTS.md")
    kept = [section for name in ("retention", "flow", "queue", "tracing", "connect", "bulk", "dashboard", "chaos") if (section := kept_section(path, name))]
    with open(path, "w") as file:
        file.write(f"# Cairn benchmark results\n\nMeasured {stamp} on {machine}, all in one run of `make bench`: "
                   "the machine's limits first, then Cairn against them. No figure is asserted anywhere.\n\n")
        file.write("\n".join(rows) + "\n")
        for section in kept:
            file.write("\n" + section + "\n")
    print(f"wrote {os.path.join(out, 'RESULTS.md')} and results.json ({len(results['figures'])} figures)")


main()
