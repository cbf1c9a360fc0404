"""The chaos harness: proves Cairn loses nothing while its processes are killed, Redis is
flushed and Postgres restarts (make chaos, make chaos-smoke; bench/chaos/run.sh picks binaries).

One run: private Redis + Postgres, `cairn migrate`, the roles as separate processes (1 event
API, 1 API, 2 schedulers, 2 executors), the SDK app (app.py), synced; then the workload
(workload.py) while faults are injected (faults.py); after the last fault, a wait for every
run to end, bounded by lease + 60 s; then the checker (check.py). Exits 1 when a correctness
count is not 0. Everything it starts is stopped on any exit.

Each run keeps its data and evidence in .data/chaos/<mode>-<time>/ (the newest five are kept):
logs/<process>.log (appended across restarts), acks.jsonl (every acknowledged event),
counts.json (step-body executions), result.json (faults, counts, time to heal), servers/ (start
it again with deploy/local/servers.sh start DIR to query what was left). The full run and its
control also write their block of the chaos section of bench/RESULTS.md.

Options (also from the environment, as make passes them):
  --smoke            CHAOS_SMOKE=1     a few hundred runs, a handful of faults, well under 3 min
  --faults 0|1       CHAOS_FAULTS      0: control run, same workload, no faults (heals must be 0)
  --runs N           CHAOS_RUNS        runs to start (default 5000; smoke 240)
  --fault-seconds S  CHAOS_FAULT_SECONDS  how long faults go on (default 180; smoke 35)
  --seed N           CHAOS_SEED        the fault plan's random seed (default 1)
  --bin-dir DIR      CHAOS_BIN_DIR     directory of cairn, cairn-api, … (required)
  --results FILE     where the full run writes its section (default bench/RESULTS.md)
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import sys
import time

import httpx

import check
import faults as faultlib
from cluster import ROOT, Cluster, Servers
from workload import Driver

LEASE_SECONDS = 5
HEAL_GRACE_SECONDS = 60
EXECUTOR_CONCURRENCY = 64  # Cairn's default CAIRN_EXECUTOR_CONCURRENCY, used by the bound
SEND_CONCURRENCY = 16
FAULT_INTERVAL = 5.0


def log(message: str) -> None:
    print(message, flush=True)


def options() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", default=env("CHAOS_SMOKE", "") not in ("", "0"))
    parser.add_argument("--faults", type=int, choices=(0, 1), default=int(env("CHAOS_FAULTS") or 1))
    parser.add_argument("--runs", type=int, default=int(env("CHAOS_RUNS") or 0))
    parser.add_argument("--fault-seconds", type=float, default=float(env("CHAOS_FAULT_SECONDS") or 0))
    parser.add_argument("--seed", type=int, default=int(env("CHAOS_SEED") or 1))
    parser.add_argument("--bin-dir", default=env("CHAOS_BIN_DIR"))
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = parser.parse_args()
    args.runs = args.runs or (240 if args.smoke else 5000)
    args.fault_seconds = args.fault_seconds or (35.0 if args.smoke else 180.0)
    if not args.bin_dir:
        parser.error("--bin-dir or CHAOS_BIN_DIR is required")
    return args


def main() -> int:
    args = options()
    wall_started = time.monotonic()
    mode = ("smoke" if args.smoke else "full") + ("" if args.faults else "-control")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(ROOT, ".data", "chaos")
    run_dir = os.path.join(base, f"{mode}-{stamp}")
    os.makedirs(run_dir)
    prune(base, keep=5)
    log(f"chaos {mode}: {args.runs} runs, {'faults for %.0f s (seed %d)' % (args.fault_seconds, args.seed) if args.faults else 'no faults (control)'}; "
        f"binaries {args.bin_dir}; logs and data in {os.path.relpath(run_dir, ROOT)}")

    # Ctrl-C, SIGTERM and SIGHUP end the run through the `finally` below. So does SIGALRM, the
    # backstop that bounds the whole run whatever hangs.
    def interrupted(number, _frame):
        log(f"chaos: {signal.Signals(number).name}; stopping every process and the servers")
        sys.exit(128 + number)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, interrupted)
    signal.alarm(int(args.fault_seconds + LEASE_SECONDS + HEAL_GRACE_SECONDS + 600))

    servers = Servers(os.path.join(run_dir, "servers"))
    cluster = driver = None
    try:
        servers.start()
        cluster = Cluster(args.bin_dir, servers, run_dir, LEASE_SECONDS, sys.executable)
        cluster.migrate()
        cluster.start()
        functions = cluster.sync_app()
        log(f"started {', '.join(p.name for p in cluster.roles)} and the app; synced {functions} functions "
            f"({time.monotonic() - wall_started:.0f} s)")

        # Faults run for fault_seconds; sends are spread over the first 80 % of it, so the last
        # faults also hit runs in flight and the tail of the workload.
        window = args.fault_seconds
        driver = Driver(cluster.role("event-api").url, cluster.app.url, args.runs, 0.8 * window, SEND_CONCURRENCY, run_dir)
        rng = random.Random(args.seed)
        plan = faultlib.plan(window, FAULT_INTERVAL, cluster, rng) if args.faults else []
        injector = faultlib.Injector(cluster, servers, log)
        started = time.monotonic()
        driver.start()
        ticker = Ticker(driver, servers, started)
        if plan:
            log(f"injecting {len(plan)} faults:")
        injector.run(plan, started, ticker.tick)
        while time.monotonic() < started + window:  # the window's tail, and all of it without faults
            ticker.tick()
            time.sleep(0.5)
        injector.revive()
        faults_stopped = time.time()
        faults_stopped_mono = time.monotonic()
        log(f"faults stopped at t={faults_stopped_mono - started:.1f}s; waiting up to {LEASE_SECONDS + HEAL_GRACE_SECONDS} s for every run to end")

        # Heal: until every acknowledged run has a run row and none is open, or the deadline.
        deadline = faults_stopped_mono + LEASE_SECONDS + HEAL_GRACE_SECONDS
        healed = False
        while time.monotonic() < deadline:
            ticker.tick()
            injector.revive()
            if driver.triggers_done.is_set():
                expected = expected_count(driver)
                state = check.progress(servers.postgres_url)
                if state and state[0] >= expected and state[1] == 0:
                    healed = True
                    break
            time.sleep(1)
        log(f"{'every run ended' if healed else 'deadline reached with runs not ended'} "
            f"{time.monotonic() - faults_stopped_mono:.1f} s after the faults stopped")

        metric_heals = check.metric_heals([p.url for p in cluster.roles])
        driver.stop()
        counts = httpx.get(cluster.app.url + "/counts", timeout=30).json()
        with open(os.path.join(run_dir, "counts.json"), "w") as file:
            json.dump(counts, file)
        stats = driver.snapshot()
        bound = check.extra_bound(injector.done, len(cluster.of_kind("executor")), EXECUTOR_CONCURRENCY)
        report = check.check(servers.postgres_url, driver.all_acks(), counts, args.runs, stats["never_acknowledged"],
                             driver.refusals, bound, cluster.logs)
        heal_seconds = None
        if healed and report.last_ended_at is not None:
            heal_seconds = max(0.0, report.last_ended_at - faults_stopped)
        wall = time.monotonic() - wall_started
        result = summary(args, mode, injector, report, stats, driver.all_acks(), metric_heals, heal_seconds, wall, run_dir)
        with open(os.path.join(run_dir, "result.json"), "w") as file:
            json.dump(result, file, indent=2)
        print_report(result, report)
        if mode == "full" or mode == "full-control":
            write_results(args.results, result)
        return 1 if result["failed"] else 0
    finally:
        if driver is not None:
            driver.stopping.set()
        if cluster is not None:
            cluster.stop()
        servers.stop()


def expected_count(driver: Driver) -> int:
    """Runs the acknowledged triggers must create: one each, two for an invoker (its child)."""
    keys = {ack["key"] for ack in driver.trigger_acks()}
    return len(keys) + sum(1 for key in keys if key.startswith("invoke-"))


class Ticker:
    """Prints progress every 5 s: sends, acknowledgements, runs created and still open."""

    def __init__(self, driver: Driver, servers: Servers, started: float):
        self.driver, self.servers, self.started, self.last = driver, servers, started, 0.0

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last < 5:
            return
        self.last = now
        stats = self.driver.snapshot()
        state = check.progress(self.servers.postgres_url)
        runs = "Postgres down" if state is None else f"runs {state[0]} created, {state[1]} open"
        log(f"    t={now - self.started:6.1f}s  triggers acked {stats['triggers_acked']}, "
            f"send failures {stats['send_failures']}, approvals {stats['approvals_acked']}, stops {stats['stops_acked']}; {runs}")


def summary(args, mode, injector, report, stats, acks, metric_heals, heal_seconds, wall, run_dir) -> dict:
    by_kind: dict[str, int] = {}
    for fault in injector.done:
        label = f"kill -9 {re.sub(r'-[0-9]+$', '', fault.target)}" if fault.kind == "kill" else fault.kind
        by_kind[label] = by_kind.get(label, 0) + 1
    control = not args.faults
    waits = {ack["key"] for ack in acks if ack["role"] == "approval"}
    stats["approvals_resent"] = stats["approvals_acked"] - len(waits)
    return {
        "mode": mode,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "bin_dir": args.bin_dir,
        "runs": args.runs,
        "fault_seconds": args.fault_seconds if args.faults else 0,
        "seed": args.seed,
        "lease_seconds": LEASE_SECONDS,
        "faults_injected": len(injector.done),
        "faults_by_kind": by_kind,
        "faults": [{"at": round(f.injected_at, 1), "fault": f.label(), "down": f.down, "leased_runs": f.leased_runs,
                    "note": f.note} for f in injector.done],
        "unplanned_exits": injector.unplanned_exits,
        "time_to_heal_seconds": None if heal_seconds is None else round(heal_seconds, 1),
        "wall_seconds": round(wall, 1),
        "sends": stats,
        "checks": check.table(report, control),
        "by_function": {name: dict(tally) for name, tally in sorted(report.by_function.items())},
        "examples": {name: keys for name, keys in report.examples.items() if keys},
        "heals": report.heals,
        "heals_in_metrics_since_last_start": metric_heals,
        "failed": check.failures(report, control),
        "run_dir": os.path.relpath(run_dir, ROOT),
    }


def print_report(result: dict, report) -> None:
    log("")
    log(f"chaos {result['mode']}: {result['runs']} runs, {result['faults_injected']} faults "
        f"({', '.join(f'{k} x{n}' for k, n in result['faults_by_kind'].items()) or 'none'})")
    width = max(len(row[0]) for row in result["checks"])
    log(f"  {'check':<{width}}  {'count':>8}  bound")
    for name, count, must in result["checks"]:
        mark = "  FAIL" if name in result["failed"] else ""
        log(f"  {name:<{width}}  {count:>8}  {must}{mark}")
    log("  by function: " + "; ".join(
        f"{name} " + " ".join(f"{k}={v}" for k, v in tally.items()) for name, tally in result["by_function"].items()))
    for name, examples in result["examples"].items():
        log(f"  e.g. {name}:")
        for example in examples:
            log(f"      {example}")
    if result["unplanned_exits"]:
        log(f"  roles that exited by themselves (restarted): {', '.join(result['unplanned_exits'])}")
    heal = result["time_to_heal_seconds"]
    log(f"  time to heal: {'not healed within the deadline' if heal is None else f'{heal} s'} after the faults stopped; "
        f"wall time {result['wall_seconds']} s")
    in_metrics = result["heals_in_metrics_since_last_start"]
    log(f"  reconciler heals in /metrics (since each process's last start): "
        f"{sum(in_metrics.values())}{' (' + ', '.join(f'{k}={n}' for k, n in sorted(in_metrics.items())) + ')' if in_metrics else ''}")
    sends = result["sends"]
    log(f"  sends: {sends['send_attempts']} attempts, {sends['send_failures']} failed and retried; "
        f"{sends['approvals_resent']} approvals resent (the first landed before its wait existed, or was lost)")
    log(f"  {'PASS' if not result['failed'] else 'FAIL: ' + ', '.join(result['failed'])}")


BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
TITLES = {"faults": "### With faults", "control": "### Control: same workload, no faults"}


def write_results(path: str, result: dict) -> None:
    """Replaces (or appends) the chaos section of RESULTS.md: this run's block, and the other
    mode's block (faults or control) as the section already held it."""
    mine = "control" if result["mode"].endswith("control") else "faults"
    text = open(path).read() if os.path.exists(path) else ""
    blocks = {mine: render(result, TITLES[mine])}
    if BEGIN in text and END in text:
        old = text.split(BEGIN, 1)[1].split(END, 1)[0]
        for name, title in TITLES.items():
            if name != mine and title in old:
                block = title + old.split(title, 1)[1]
                blocks[name] = block.split("\n### ", 1)[0].rstrip("\n")
    section = "\n".join([
        BEGIN, "## Chaos: nothing lost under faults", "",
        "Written by `make chaos` (bench/chaos/); `make bench` keeps this section. Roles in separate processes "
        "(1 event API, 1 API, 2 schedulers, 2 executors), the official Python SDK app, private Redis + Postgres "
        "(fsync on). Counts whose bound is 0 must be 0.", ""]
        + ["\n\n".join(blocks[name] for name in TITLES if name in blocks), END])
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    with open(path, "w") as file:
        file.write(text)
    log(f"wrote the chaos section of {os.path.relpath(path, ROOT)}")


def render(r: dict, title: str) -> str:
    faults = ", ".join(f"{k} x{n}" for k, n in r["faults_by_kind"].items()) or "none"
    heal = r["time_to_heal_seconds"]
    injected = (f"{r['faults_injected']} faults in {r['fault_seconds']:.0f} s ({faults})" if r["faults_injected"]
                else "no faults")
    lines = [title, "",
             f"Measured {r['measured_at']} on {r['machine']}: {r['runs']} runs; {injected}; "
             f"executor lease {r['lease_seconds']} s. Time to heal (end of the fault window to last run ended): "
             f"{'not healed within lease + 60 s' if heal is None else f'{heal} s'}. Wall time {r['wall_seconds']} s. "
             f"Result: {'pass' if not r['failed'] else 'FAIL (' + ', '.join(r['failed']) + ')'}.", "",
             "| Check | Count | Bound |", "|---|---:|---|"]
    lines += [f"| {name} | {count} | {must} |" for name, count, must in r["checks"]]
    return "\n".join(lines)


def prune(base: str, keep: int) -> None:
    """Keeps the newest `keep` run directories under .data/chaos (a run is a few hundred MB at most)."""
    runs = sorted((os.path.join(base, d) for d in os.listdir(base)), key=os.path.getmtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
