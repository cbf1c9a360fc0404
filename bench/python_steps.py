"""Engine overhead per step on the official Python SDK: runs a 10-step no-op function on the
end-to-end app (Tests/EndToEndTests/PythonApp) one run at a time, and reports, per run,
(run wall time - time inside the app) / 10, from Cairn's run timestamps and the app's own
per-run timings: as Flask saw them (`app`, HTTP only) and as the SDK did (`sdk`, from the
moment it takes a request to its answer, the same for HTTP and connect).
Usage: python_steps.py CAIRN_ORIGIN APP_ORIGIN RUNS"""

import json
import sys
import time
import urllib.request


def call(url: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def millis(text: str) -> float:
    # 2026-11-30T12:00:00.123Z
    seconds = time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return seconds * 1000 + int(text[20:23])


def percentiles(values: list[float]) -> dict:
    values = sorted(values)

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, max(0, int(p * len(values) + 0.999999) - 1))], 3)

    return {"p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def main() -> None:
    cairn, app, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    by_app, by_sdk = [], []
    for index in range(runs):
        event_id = call(f"{app}/send", [{"name": "bench/ten-noop", "data": {"i": index}}])["ids"][0]
        deadline = time.time() + 30
        while True:
            found = call(f"{cairn}/v1/events/{event_id}/runs")["data"]
            if found and found[0]["status"] in ("Completed", "Failed"):
                break
            if time.time() > deadline:
                raise SystemExit(f"run of {event_id} did not end")
            time.sleep(0.005)
        run = found[0]
        wall = millis(run["ended_at"]) - millis(run["run_started_at"])
        by_app.append((wall - call(f"{app}/timings").get(run["run_id"], 0.0)) / 10)
        by_sdk.append((wall - call(f"{app}/timings?source=sdk").get(run["run_id"], 0.0)) / 10)
    print(json.dumps({"runs": runs, "app": percentiles(by_app), "sdk": percentiles(by_sdk)}))


main()
