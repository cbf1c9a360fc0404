"""Fault plans and their injection: kill -9 of a role process (restarted after a moment),
FLUSHALL on Redis, and a Postgres crash-restart on the same port and data directory.

A plan is a list of faults at fixed offsets from the start of the workload, drawn from a seeded
random generator, so a run is repeatable; faults are injected one at a time, and a killed
process is back (or given up on, and reported) before the next fault. Faults stop at a known
time: the offset of the last fault plus its recovery.
"""

import dataclasses
import random
import subprocess
import time

from cluster import Cluster, Servers

ROLE_KINDS = ["event-api", "api", "scheduler", "executor"]


@dataclasses.dataclass
class Fault:
    at: float          # seconds after the workload started
    kind: str          # kill | flushall | postgres-restart
    target: str = ""   # the killed process's name (kill only)
    down: float = 0.0  # seconds the process (or Postgres) stays down
    # Filled in when injected:
    injected_at: float = 0.0
    recovered_at: float = 0.0
    leased_runs: int | None = None  # runs leased at that moment (executor kills, Postgres restarts)
    note: str = ""

    def label(self) -> str:
        return f"kill -9 {self.target}" if self.kind == "kill" else self.kind


def plan(seconds: float, interval: float, cluster: Cluster, rng: random.Random) -> list[Fault]:
    """Faults every `interval` s (±20 %) during `seconds`: two FLUSHALLs (at about 1/3 and 2/3)
    and one Postgres restart (at about 1/2) when there is room, kills otherwise. Kill targets
    cycle through the role kinds in shuffled rounds, so every kind is hit once before any twice."""
    count = max(1, int(seconds // interval))
    offsets = [min(seconds - 1, max(1.0, (i + 0.5) * interval + rng.uniform(-0.2, 0.2) * interval)) for i in range(count)]
    kinds = ["kill"] * count
    specials = []
    if count >= 5:
        specials = [(1 / 3, "flushall"), (1 / 2, "postgres-restart"), (2 / 3, "flushall")]
    elif count >= 3:
        specials = [(1 / 2, "flushall")]
    for fraction, kind in specials:
        i = min(count - 1, int(fraction * count))
        while kinds[i] != "kill":
            i = (i + 1) % count
        kinds[i] = kind
    faults, round_ = [], []
    for at, kind in zip(offsets, kinds):
        if kind != "kill":
            faults.append(Fault(at, kind, down=2.0 if kind == "postgres-restart" else 0.0))
            continue
        if not round_:
            round_ = ROLE_KINDS[:]
            rng.shuffle(round_)
        target = rng.choice(cluster.of_kind(round_.pop())).name
        faults.append(Fault(at, kind, target, down=round(rng.uniform(0.5, 3.0), 1)))
    return faults


def leased_runs(servers: Servers) -> int | None:
    """Runs holding a live executor lease now: the drives a kill can interrupt."""
    try:
        out = subprocess.run(
            ["psql", "-X", "-qAt", servers.postgres_url, "-c",
             "SELECT count(*) FROM runs WHERE status = 'Running' AND lease_expires_at > now()"],
            capture_output=True, text=True, timeout=5)
        return int(out.stdout.strip()) if out.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


class Injector:
    """Injects a plan on the calling (main) thread; restarts roles that exit by themselves."""

    def __init__(self, cluster: Cluster, servers: Servers, log):
        self.cluster, self.servers, self.log = cluster, servers, log
        self.done: list[Fault] = []
        self.unplanned_exits: list[str] = []

    def revive(self) -> None:
        """Restarts any role that exited without being killed by the harness (as an orchestrator
        would), and notes it: a role should not die from a fault elsewhere."""
        for p in self.cluster.roles:
            if p.proc is not None and not p.alive():
                self.unplanned_exits.append(f"{p.name} (exit {p.proc.returncode})")
                self.log(f"  {p.name} exited by itself (exit {p.proc.returncode}); restarting it")
                p.start()
                if not p.ready(30):
                    self.log(f"  {p.name} is not ready 30 s after its restart")

    def run(self, faults: list[Fault], started: float, on_tick) -> None:
        for fault in faults:
            while time.monotonic() < started + fault.at:
                on_tick()
                time.sleep(min(0.5, max(0.0, started + fault.at - time.monotonic())))
            self.revive()
            self.inject(fault, started)
            self.done.append(fault)

    def inject(self, fault: Fault, started: float) -> None:
        fault.injected_at = time.monotonic() - started
        if fault.kind == "kill":
            process = next(p for p in self.cluster.roles if p.name == fault.target)
            if process.name.startswith("executor"):
                fault.leased_runs = leased_runs(self.servers)
            process.kill()
            process.planned_kills += 1
            time.sleep(fault.down)
            process.start()
            if not process.ready(30):
                fault.note = "not ready 30 s after restart"
        elif fault.kind == "flushall":
            self.servers.flushall()
        elif fault.kind == "postgres-restart":
            fault.leased_runs = leased_runs(self.servers)
            self.servers.stop_postgres()
            time.sleep(fault.down)
            self.servers.start_postgres()
        fault.recovered_at = time.monotonic() - started
        leased = "" if fault.leased_runs is None else f", {fault.leased_runs} runs leased"
        self.log(f"  t={fault.injected_at:6.1f}s  {fault.label():<28} down {fault.down:.1f}s{leased}"
                 f"{'  (' + fault.note + ')' if fault.note else ''}")
