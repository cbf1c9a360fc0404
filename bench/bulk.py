"""Times a bulk cancel, then a bulk replay, of N sleeping runs (bench/bulk.sh).

    bulk.py CAIRN_ORIGIN APP_ORIGIN N

Sends N `test/nap` events (the end-to-end app's `napper`: one step, then an hour's sleep),
waits until every run has taken its first step, then asks for a bulk cancel of them all and
times it from the request to the job's end; then a bulk replay of the cancelled runs, timed the
same way (the replayed runs are created by then; they run afterwards). Prints one JSON line.
"""

import json
import sys
import time
import urllib.request

cairn, app, count = sys.argv[1], sys.argv[2], int(sys.argv[3])


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait(what, ready, limit):
    deadline = time.monotonic() + limit
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"bulk bench: {what} did not happen within {limit} s")
        time.sleep(0.2)


for start in range(0, count, 1000):
    events = [{"name": "test/nap", "data": {"key": f"bulk{n}"}} for n in range(start, min(start + 1000, count))]
    call("POST", f"{cairn}/e/bench", events)
wait(f"{count} runs starting", lambda: len(call("GET", f"{app}/counts")) >= count, 900)


def timed(path, body):
    started = time.monotonic()
    job = call("POST", f"{cairn}{path}", body)["data"]
    while job["status"] == "Running":
        time.sleep(0.05)
        job = call("GET", f"{cairn}/v1/bulk/{job['bulk_id']}")["data"]
    seconds = time.monotonic() - started
    if job["status"] != "Completed" or job["done"] != count:
        raise SystemExit(f"bulk bench: {path} ended {job['status']} having done {job['done']} of {count}: {job}")
    return round(seconds, 3)


cancel = timed("/v1/cancellations", {"function_id": "cairn-e2e-napper"})
replay = timed("/v1/replays", {"function_id": "cairn-e2e-napper", "statuses": ["Cancelled"]})
print(json.dumps({"runs": count, "cancel_seconds": cancel, "replay_seconds": replay}))
