"""Seeds a Cairn database with the dashboard benchmark's fixture, straight into Postgres.

Usage: dashboard_fixture.py DATABASE_URL FUNCTION_ID... --runs N

Writes, with psql's \\copy:
  - N / 20 events named bench/order, each `{"data": {"userId": "u-<k>", "n": <i>}}`; exactly one
    has userId "u-42";
  - N runs of the given functions (round robin) over the last 7 days, newest last: 8 % Failed
    (with an error and a stack), 2 % Cancelled, the rest Completed (with an output); exactly 17 of
    them triggered by the u-42 event, spread over the 7 days;
  - one more run, the newest, of 1,000 recorded steps, each with its queue and send times.

Prints one JSON object: {"runs", "events", "u42_runs", "big_run", "failed_last_24h"}.
Ids are ULIDs whose time part is the row's creation time, as Cairn's own are.
"""

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(milliseconds: int, rng: random.Random) -> str:
    value = (milliseconds << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def stamp(milliseconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(milliseconds / 1000)) + f".{milliseconds % 1000:03d}+00"


def copy(url: str, table: str, columns: list[str], rows) -> None:
    with tempfile.NamedTemporaryFile("w", newline="", suffix=".csv", delete=False) as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(row)
        path = handle.name
    try:
        command = f"\\copy {table} ({', '.join(columns)}) FROM '{path}' WITH (FORMAT csv, NULL '')"
        subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True)
    finally:
        os.unlink(path)


def main() -> None:
    arguments = sys.argv[1:]
    runs = int(arguments[arguments.index("--runs") + 1])
    url, functions = arguments[0], [a for a in arguments[1:arguments.index("--runs")]]
    rng = random.Random(42)
    now = int(time.time() * 1000)
    span = 7 * 86_400_000
    start = now - span

    event_count = max(20, runs // 20)
    u42_index = event_count // 2
    events = []
    for i in range(event_count):
        at = start + i * span // event_count
        user = "u-42" if i == u42_index else f"u-{1000 + i}"
        payload = {"name": "bench/order", "data": {"userId": user, "n": i}, "ts": at}
        events.append((ulid(at, rng), "bench/order", at, json.dumps(payload), stamp(at), stamp(at), stamp(at)))
    # History: published to the stream and routed long ago, so Cairn's relays leave them be.
    copy(url, "events", ["id", "name", "ts", "payload", "received_at", "published_at", "routed_at"], events)

    # The 17 runs of the u-42 event, at even intervals through the runs.
    u42_positions = {round(k * (runs - 1) / 16) for k in range(17)}
    failed_since = (now - 86_400_000) // 1000 * 1000
    failed_last_24h = 0

    def run_rows():
        nonlocal failed_last_24h
        for i in range(runs):
            at = start + i * (span - 60_000) // runs
            event = events[u42_index] if i in u42_positions else events[(i * 7919) % event_count]
            if event[0] == events[u42_index][0] and i not in u42_positions:
                event = events[(u42_index + 1) % event_count]
            roll = rng.random()
            started, ended = at + 15, at + 40 + rng.randrange(400)
            if roll < 0.08:
                status, output = "Failed", ""
                error = json.dumps({"name": "ValueError", "message": f"order {i} declined",
                                    "stack": f'Traceback (most recent call last):\n  File "app.py", line 42, in charge\nValueError: order {i} declined'})
                if at >= failed_since:
                    failed_last_24h += 1
            elif roll < 0.10:
                status, output, error = "Cancelled", "", ""
            else:
                status, output, error = "Completed", json.dumps({"total": i % 500, "items": i % 7}), ""
            yield (ulid(at, rng), functions[i % len(functions)], 1, event[0], "{" + event[0] + "}", status,
                   output, error, stamp(at), stamp(started), stamp(ended), stamp(ended))

    copy(url, "runs", ["id", "function_id", "function_version", "event_id", "event_ids", "status", "output", "error",
                       "created_at", "started_at", "ended_at", "updated_at"], run_rows())

    big_at = now - 30_000
    big = ulid(big_at, rng)
    copy(url, "runs", ["id", "function_id", "function_version", "event_id", "event_ids", "status", "output",
                       "created_at", "started_at", "ended_at", "updated_at"],
         [(big, functions[0], 1, events[-1][0], "{" + events[-1][0] + "}", "Completed", json.dumps({"steps": 1000}),
           stamp(big_at), stamp(big_at + 5), stamp(big_at + 20_000), stamp(big_at + 20_000))])

    def step_rows():
        for position in range(1000):
            queued = big_at + 10 + position * 20
            yield (big, f"step-{position:04d}", position, f"step {position}", "StepRun",
                   json.dumps({"data": {"n": position}}), 1, stamp(queued + 15), stamp(queued), stamp(queued + 2))

    copy(url, "steps", ["run_id", "step_id", "position", "name", "op", "result", "attempts", "recorded_at", "queued_at", "started_at"],
         step_rows())
    print(json.dumps({"runs": runs + 1, "events": event_count, "u42_runs": 17, "big_run": big,
                      "failed_last_24h": failed_last_24h,
                      "failed_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failed_since / 1000))}))


if __name__ == "__main__":
    main()
