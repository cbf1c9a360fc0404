"""The set-and-count checker of a chaos run: Postgres (read with psql) and the app's step-body
counters against the workload's expectations, plus reconciler heals from the roles' logs.

Every count listed in MUST_BE_ZERO must be 0; extra step-body executions must stay within a
bound derived from the faults injected. Tables read: events, runs, steps, functions, apps
(Shared/CairnPostgres/Migrations/*.sql).
"""

import collections
import glob
import json
import os
import re
import subprocess

import httpx

from workload import APP_ID, MAX_BODIES_PER_DRIVE, Expected, expected_runs, spec, step_id

ENDED = ("Completed", "Failed", "Cancelled")


def psql_json(url: str, sql: str) -> list[dict]:
    """Rows of `sql` as dicts: one row_to_json per line."""
    out = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c",
                          f"SELECT row_to_json(q)::text FROM ({sql}) q"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


APP_RUNS = f"""
    SELECT r.id, r.status, r.output::text AS output, r.error::text AS error, f.slug,
           e.payload->'data'->>'key' AS key, extract(epoch FROM r.ended_at)::float8 AS ended_at
    FROM runs r JOIN functions f ON f.id = r.function_id JOIN apps a ON a.id = f.app_id
    LEFT JOIN events e ON e.id = r.event_id
    WHERE a.name = '{APP_ID}'"""


def progress(url: str) -> tuple[int, int] | None:
    """(runs of the app, runs not ended yet), or None while Postgres does not answer."""
    try:
        row = psql_json(url, f"SELECT count(*) AS total, count(*) FILTER (WHERE status NOT IN {ENDED}) AS open "
                             f"FROM ({APP_RUNS}) x")[0]
        return row["total"], row["open"]
    except (subprocess.SubprocessError, IndexError, json.JSONDecodeError):
        return None


HEAL = re.compile(r"reconciler healed")
FIELD = re.compile(r"""\b(kind|count)[=:]\s*"?([\w.-]+)"?""")


def heals(log_dir: str) -> dict[str, int]:
    """Heals logged by the reconciler (`reconciler healed` with kind=… count=…) in every role's
    log, summed by kind. Logs, not /metrics: the processes get killed, so counters reset."""
    total: collections.Counter[str] = collections.Counter()
    for path in glob.glob(os.path.join(log_dir, "*.log")):
        with open(path, errors="replace") as log:
            for line in log:
                if HEAL.search(line):
                    fields = dict(FIELD.findall(line))
                    try:
                        total[fields.get("kind", "?")] += int(fields.get("count", "1"))
                    except ValueError:
                        total[fields.get("kind", "?")] += 1
    return dict(total)


METRIC = re.compile(r'^cairn_reconciler_healed_total\{[^}]*kind="([^"]*)"[^}]*\}\s+([0-9.e+]+)', re.M)


def metric_heals(urls: list[str]) -> dict[str, int]:
    """cairn_reconciler_healed_total{kind} summed over the processes' /metrics: heals since each
    one's last start only (a cross-check of the logs, which cover every incarnation)."""
    total: collections.Counter[str] = collections.Counter()
    for url in urls:
        try:
            text = httpx.get(url + "/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for kind, value in METRIC.findall(text):
            total[kind] += int(float(value))
    return dict(total)


def slug_of(function: str) -> str:
    return f"{APP_ID}-{function}"


class Report:
    """Counts by name, with example runs for each failing count."""

    def __init__(self):
        self.last_ended_at: float | None = None  # epoch seconds of the last expected run's end
        self.heals: dict[str, int] = {}          # reconciler heals in the logs, by kind
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self.by_function: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def add(self, name: str, amount: int = 1, example: str | None = None) -> None:
        """Adds to a count; keeps one example per function (an example starts with its name)."""
        self.counts[name] = self.counts.get(name, 0) + amount
        if example is not None:
            function = example.split(" ", 1)[0]
            if all(e.split(" ", 1)[0] != function for e in self.examples[name]):
                self.examples[name].append(example)


# The correctness counts: any non-zero one fails the run.
MUST_BE_ZERO = [
    "lost events", "events stored twice", "sends never acknowledged", "sends refused", "missing runs", "duplicate runs",
    "unexpected runs", "stranded runs", "wrong status", "wrong output", "step rows recorded twice",
    "runs with wrong step rows", "step bodies run fewer times than planned",
]


def check(postgres_url: str, acks: list[dict], counts: dict, sent_runs: int, never_acknowledged: int,
          refusals: list[str], bound: int, log_dir: str) -> Report:
    report = Report()
    for name in MUST_BE_ZERO:
        report.counts[name] = 0

    # Events: every acknowledged id is stored, and no event `id` field is stored twice.
    stored = psql_json(postgres_url, "SELECT id, name, external_id FROM events")
    stored_ids = {row["id"] for row in stored}
    report.add("acknowledged events", len({a["event_id"] for a in acks}))
    for ack in {a["event_id"]: a for a in acks}.values():
        if ack["event_id"] not in stored_ids:
            report.add("lost events", 1, f"{ack['name']} {ack['external_id']} ({ack['event_id']})")
    ours = {a["external_id"] for a in acks}
    by_external = collections.Counter(row["external_id"] for row in stored if row["external_id"] in ours)
    for external_id, n in by_external.items():
        if n > 1:
            report.add("events stored twice", n - 1, external_id)
    report.add("sends never acknowledged", never_acknowledged)
    for refusal in refusals:
        report.add("sends refused", 1, refusal)

    # Runs: exactly one per expected (function, key), with the expected end.
    acked_keys = {a["key"] for a in acks if a["role"] == "trigger"}
    expected: dict[tuple[str, str], Expected] = {}
    for i in range(sent_runs):
        s = spec(i)
        if s.key in acked_keys:
            for e in expected_runs(s):
                expected[(slug_of(e.function), e.key)] = e
    report.add("expected runs", len(expected))
    runs = psql_json(postgres_url, APP_RUNS)
    found: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for run in runs:
        found[(run["slug"], run["key"])].append(run)
    for ident, rows in found.items():
        if ident not in expected:
            report.add("unexpected runs", len(rows), f"{ident[0]} {ident[1]}")
        elif len(rows) > 1:
            report.add("duplicate runs", len(rows) - 1, f"{ident[0]} {ident[1]}")

    steps = psql_json(postgres_url, f"""
        SELECT s.run_id, s.step_id, s.op, s.name FROM steps s JOIN ({APP_RUNS}) r ON r.id = s.run_id""")
    steps_by_run: dict[str, list[dict]] = collections.defaultdict(list)
    for row in steps:
        steps_by_run[row["run_id"]].append(row)

    ended_at = []
    extra = 0
    for ident, e in expected.items():
        function = e.function
        tally = report.by_function[function]
        tally["expected"] += 1
        # Extra executions count in every run, ended or not: a body run twice is run twice.
        ran = counts.get(e.key, {})
        extra += sum(max(0, ran.get(step, 0) - minimum) for step, minimum in e.bodies.items())
        rows = found.get(ident, [])
        if not rows:
            report.add("missing runs", 1, f"{function} {e.key}")
            tally["missing"] += 1
            continue
        run = rows[0]
        # A step's result is recorded once, whatever became of the run.
        rows_by_id = collections.Counter(row["step_id"] for row in steps_by_run[run["id"]])
        twice = sum(n - 1 for n in rows_by_id.values() if n > 1)
        if twice:
            report.add("step rows recorded twice", twice, f"{function} {e.key} run {run['id']}")
        want = {step_id(name): op for name, op in e.steps.items()}
        have = {row["step_id"]: row["op"] for row in steps_by_run[run["id"]]}
        if any(want.get(i) != op for i, op in have.items()):
            # Even a run that has not ended must hold only steps it can reach, with their ops.
            wrong_steps(report, function, e, have, steps_by_run[run["id"]])
        elif run["status"] == e.status and run["status"] in ENDED and want != have:
            # An ended run holds exactly its steps (a cancelled one: those before the cancel).
            wrong_steps(report, function, e, have, steps_by_run[run["id"]])
        if run["ended_at"]:
            ended_at.append(run["ended_at"])
        if run["status"] not in ENDED:
            report.add("stranded runs", 1, f"{function} {e.key} {run['status']} run {run['id']}")
            tally["stranded"] += 1
            continue
        if run["status"] != e.status:
            report.add("wrong status", 1, f"{function} {e.key}: {run['status']}, expected {e.status}; error {run['error']}")
            tally["wrong status"] += 1
            continue
        output = None if run["output"] is None else json.loads(run["output"])
        if output != e.output:
            report.add("wrong output", 1, f"{function} {e.key}: {run['output']}, expected {json.dumps(e.output)}")
            tally["wrong output"] += 1
            continue
        tally["as expected"] += 1
        # Step bodies of a run that ended as expected: each ran at least as often as planned.
        for step, minimum in e.bodies.items():
            if ran.get(step, 0) < minimum:
                report.add("step bodies run fewer times than planned", 1, f"{function} {e.key} {step}: {ran.get(step, 0)} of {minimum}")
    report.add("extra step executions", extra)
    report.add("extra step executions allowed", bound)
    report.add("runs ended", sum(1 for rows in found.values() for r in rows if r["status"] in ENDED))
    report.last_ended_at = max(ended_at) if ended_at else None

    found_heals = heals(log_dir)
    report.heals = found_heals
    report.add("reconciler heals", sum(found_heals.values()))
    return report


def wrong_steps(report: Report, function: str, e: Expected, have: dict[str, str], rows: list[dict]) -> None:
    names = {step_id(name): name for name in e.steps}
    stored = {r["step_id"]: r["name"] or r["step_id"][:8] for r in rows}
    shown = sorted(f"{names.get(i, stored.get(i))}:{op}" for i, op in have.items())
    report.add("runs with wrong step rows", 1,
               f"{function} {e.key}: {shown}, expected {sorted(f'{n}:{o}' for n, o in e.steps.items())}")


def failures(report: Report, control: bool) -> list[str]:
    failed = [name for name in MUST_BE_ZERO if report.counts.get(name, 0)]
    if report.counts["extra step executions"] > report.counts["extra step executions allowed"]:
        failed.append("extra step executions")
    if control and report.counts["reconciler heals"]:
        failed.append("reconciler heals")
    return failed


def table(report: Report, control: bool) -> list[tuple[str, str, str]]:
    """(check, count, what it must be) rows, in reading order."""
    rows = [("acknowledged events", str(report.counts["acknowledged events"]), ""),
            ("expected runs", str(report.counts["expected runs"]), ""),
            ("runs ended", str(report.counts["runs ended"]), "")]
    rows += [(name, str(report.counts[name]), "0") for name in MUST_BE_ZERO]
    rows.append(("extra step executions", str(report.counts["extra step executions"]),
                 f"<= {report.counts['extra step executions allowed']}"))
    kinds = ", ".join(f"{k}={n}" for k, n in sorted(report.heals.items()))
    rows.append(("reconciler heals", f"{report.counts['reconciler heals']}" + (f" ({kinds})" if kinds else ""),
                 "0" if control else "any"))
    return rows


def extra_bound(faults, executors: int, concurrency: int) -> int:
    """The most step bodies the injected faults can make run again: each executor kill can cut
    short every drive of that executor (at most `concurrency`), each Postgres restart every drive
    of every executor, and a drive has at most MAX_BODIES_PER_DRIVE bodies in flight (a parallel
    group). Without faults the bound is 0. Kills of the other roles and FLUSHALLs interrupt no
    drive: work is redelivered, but a recorded step is never run again."""
    executor_kills = sum(1 for f in faults if f.kind == "kill" and f.target.startswith("executor"))
    restarts = sum(1 for f in faults if f.kind == "postgres-restart")
    return (executor_kills + restarts * executors) * concurrency * MAX_BODIES_PER_DRIVE
