"""The chaos workload: which events are sent, what each run must end as, and the driver that
sends them to Cairn's event API the way an SDK does.

A run's key, function, final status, output, recorded steps and step-body executions all
follow from its index (`spec(i)`), independently of app.py, which implements the same rules as
an SDK app. The checker compares Postgres and the app's counters against these expectations.
"""

import base64
import dataclasses
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

KINDS = ["seq", "twofail", "outer", "sleep", "wait", "invoke", "cancel", "parallel"]
EVENT_NAMES = {kind: f"chaos/{kind}" for kind in KINDS}
FUNCTIONS = {"seq": "seq", "twofail": "twofail", "outer": "outer", "sleep": "sleeper", "wait": "waiter",
             "invoke": "invoker", "cancel": "cancellable", "parallel": "parallel"}
APP_ID = "cairn-chaos"


def step_id(name: str) -> str:
    """The id inngest-py gives a step whose name is used once in its function: sha1 of the name."""
    return hashlib.sha1(name.encode()).hexdigest()


@dataclasses.dataclass
class Expected:
    """One run's expected end. `steps`: step name -> op of its recorded row; `bodies`: step
    name -> how often its body must run (planned failures included) when nothing goes wrong."""
    function: str
    key: str
    status: str
    output: object
    steps: dict[str, str]
    bodies: dict[str, int]


@dataclasses.dataclass
class Spec:
    key: str
    kind: str
    data: dict

    @property
    def event_name(self) -> str:
        return EVENT_NAMES[self.kind]


def spec(i: int) -> Spec:
    """The i-th run of the workload: kinds in turn; cancellable and parallel alternate their flag."""
    kind = KINDS[i % len(KINDS)]
    key = f"{kind}-{i:05d}"
    data: dict = {"key": key, "n": i}
    if kind == "cancel":
        data["cancel"] = (i // len(KINDS)) % 2 == 0
    if kind == "parallel":
        data["flaky"] = (i // len(KINDS)) % 2 == 0
    return Spec(key, kind, data)


def expected_runs(s: Spec) -> list[Expected]:
    """The runs one event must produce: its own, plus the child an invoker starts."""
    n, key = s.data["n"], s.key
    run = "StepRun"

    def done(output, steps, bodies, function=FUNCTIONS[s.kind]):
        return Expected(function, key, "Completed", output, steps, bodies)

    if s.kind == "seq":
        return [done({"total": (n + 1) * 2 + 3}, {"s1": run, "s2": run, "s3": run}, {"s1": 1, "s2": 1, "s3": 1})]
    if s.kind == "twofail":
        return [done({"total": n * 10 + 1}, {"f1": run, "f2": run}, {"f1": 2, "f2": 2})]
    if s.kind == "outer":
        return [done({"total": n + 7}, {"o1": run}, {"o1": 1})]
    if s.kind == "sleep":
        return [done({"total": n + 1}, {"z1": run, "nap": "Sleep", "z2": run}, {"z1": 1, "z2": 1})]
    if s.kind == "wait":
        return [done({"total": n, "by": f"approver-{key}"}, {"w1": run, "approval": "WaitForEvent", "w2": run},
                     {"w1": 1, "w2": 1})]
    if s.kind == "invoke":
        return [done({"total": n * 2 + 1}, {"i1": run, "call-child": "InvokeFunction", "i2": run}, {"i1": 1, "i2": 1}),
                done({"doubled": n * 2}, {"c1": run}, {"c1": 1}, function="child")]
    if s.kind == "cancel":
        if s.data["cancel"]:
            # k2 must never run: its body is listed with 0 so any execution counts as extra.
            return [Expected(FUNCTIONS[s.kind], key, "Cancelled", None, {"k1": run}, {"k1": 1, "k2": 0})]
        return [done({"total": n + 1}, {"k1": run, "hold": "Sleep", "k2": run}, {"k1": 1, "k2": 1})]
    if s.kind == "parallel":
        return [done({"total": n * 6}, {"p1": run, "p2": run, "p3": run, "p4": run},
                     {"p1": 1, "p2": 1, "p3": 2 if s.data["flaky"] else 1, "p4": 1})]
    raise ValueError(s.kind)


# The most step bodies one drive can have in flight at once (the parallel group's three).
MAX_BODIES_PER_DRIVE = 3


def new_seed() -> str:
    """An `x-inngest-event-id-seed` value as SDKs make it: `<millis>,<base64 of 10 random bytes>`.
    Cairn derives the event's ULID from it, so a retried request yields the same id."""
    return f"{int(time.time() * 1000)},{base64.b64encode(os.urandom(10)).decode()}"


class Driver:
    """Sends the workload's events at a steady rate with bounded concurrency, and the events
    runs ask for (approvals for waits, stops for cancels) as the app signals them.

    Triggers and approvals go straight to the event API; stops go through the app's SDK client.
    Every send is retried until acknowledged (or the driver is stopped), keeping the event `id`
    (and, when sent directly, the seed header), as SDKs do; every acknowledged id is recorded."""

    def __init__(self, event_api: str, app: str, runs: int, send_seconds: float, concurrency: int, out_dir: str):
        self.url = f"{event_api}/e/chaos-key"
        self.app = app
        self.runs = runs
        self.send_seconds = send_seconds
        self.concurrency = concurrency
        self.http = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=concurrency + 16))
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acks: list[dict] = []
        self.acks_file = open(os.path.join(out_dir, "acks.jsonl"), "a")
        self.stats = {"send_attempts": 0, "send_failures": 0, "triggers_acked": 0, "approvals_acked": 0,
                      "stops_acked": 0, "never_acknowledged": 0, "refused": 0}
        self.triggers_done = threading.Event()
        self.threads: list[threading.Thread] = []
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="send")
        self.side_pool = ThreadPoolExecutor(8, thread_name_prefix="side")
        self.approve_after: dict[str, tuple[float, float]] = {}  # wait key -> (next approval due, interval)
        self.refusals: list[str] = []  # 4xx answers: the harness built a bad event

    def start(self) -> None:
        for target in (self.send_triggers, self.follow_signals):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.side_pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            self.acks_file.close()

    def send(self, role: str, key: str, event: dict, via_sdk: bool = False) -> bool:
        """Sends one event until acknowledged; False if the driver stopped first or it was refused.

        Directly: POST /e/{key} on the event API, every retry with the same body, event `id` and
        seed header. Via the SDK: the app's POST /send, i.e. inngest-py's own send_sync (which
        retries with one seed); when it gives up, the retry is a new send_sync with the same
        event `id`, which Cairn dedupes."""
        url = f"{self.app}/send" if via_sdk else self.url
        body = json.dumps({"events": [event]} if via_sdk else [event])
        headers = {"content-type": "application/json"}
        if not via_sdk:
            headers["x-inngest-event-id-seed"] = new_seed()
        delay = 0.1
        while not self.stopping.is_set():
            with self.lock:
                self.stats["send_attempts"] += 1
            try:
                response = self.http.post(url, content=body, headers=headers, timeout=30 if via_sdk else 10)
                if 200 <= response.status_code < 300:
                    reply = response.json()
                    ack = {"role": role, "key": key, "name": event["name"], "external_id": event["id"],
                           "event_id": reply["ids"][0], "duplicate": bool(reply.get("duplicates")), "at": time.time()}
                    with self.lock:
                        self.acks.append(ack)
                        if not self.acks_file.closed:  # a late ack after stop() is still counted in memory
                            self.acks_file.write(json.dumps(ack) + "\n")
                        self.stats[f"{role}s_acked"] += 1
                    return True
                if 400 <= response.status_code < 500:  # (the app answers 502 when the SDK gave up)
                    # The harness built a bad event: retrying cannot help, and it is a harness bug.
                    with self.lock:
                        self.stats["refused"] += 1
                        self.refusals.append(f"{event['id']}: HTTP {response.status_code} {response.text[:200]}")
                    return False
            except (httpx.HTTPError, ValueError, KeyError, IndexError):
                pass  # the event API is down or restarting: retry with the same seed and id
            with self.lock:
                self.stats["send_failures"] += 1
            self.stopping.wait(delay)
            delay = min(delay * 2, 2.0)
        # Stopped before an acknowledgement. Approvals are repeated anyway, so only a trigger or
        # a stop left unacknowledged makes the expectations unsure.
        if role != "approval":
            with self.lock:
                self.stats["never_acknowledged"] += 1
        return False

    def send_triggers(self) -> None:
        """Spreads the runs' events evenly over `send_seconds`, at most `concurrency` in flight."""
        slots = threading.Semaphore(self.concurrency)
        started = time.monotonic()
        futures = []
        for i in range(self.runs):
            due = started + i * self.send_seconds / max(1, self.runs)
            if self.stopping.wait(max(0.0, due - time.monotonic())):
                break
            while not slots.acquire(timeout=0.5):
                if self.stopping.is_set():
                    break
            if self.stopping.is_set():
                break
            s = spec(i)
            event = {"name": s.event_name, "id": s.key, "data": s.data, "ts": int(time.time() * 1000)}

            def one(s=s, event=event):
                try:
                    self.send("trigger", s.key, event)
                finally:
                    slots.release()

            futures.append(self.pool.submit(one))
        for future in futures:
            try:
                future.result()
            except Exception:  # cancelled at stop
                pass
        self.triggers_done.set()

    def follow_signals(self) -> None:
        """Polls the app's signals: stops a run armed for cancel once; approves a parked wait at
        once and again after 2 s, 4 s … until the run reports the wait resolved."""
        after = 0
        stops_sent: set[str] = set()
        while not self.stopping.is_set():
            try:
                # A long poll: returns at once when a signal is posted, else after 1 s.
                reply = self.http.get(f"{self.app}/signals", params={"after": after}).json()
            except (httpx.HTTPError, ValueError):
                self.stopping.wait(0.1)
                continue
            after = reply["next"]
            now = time.monotonic()
            for kind, key in reply["signals"]:
                if kind == "armed-cancel" and key not in stops_sent:
                    stops_sent.add(key)
                    # Stops go through the SDK's own client: its event API URL and retries.
                    self.side_pool.submit(self.send, "stop", key, {"name": "chaos/stop", "id": f"stop-{key}", "data": {"key": key}},
                                          True)
                elif kind == "armed-wait":
                    self.approve_after.setdefault(key, (now, 2.0))
                elif kind == "wait-resolved":
                    self.approve_after.pop(key, None)
            for key, (due, interval) in list(self.approve_after.items()):
                if due <= now:
                    # Again after 2 s, then 4, 8 … 30: a stalled engine is not flooded.
                    self.approve_after[key] = (now + interval, min(30.0, interval * 2))
                    # A fresh id each time: an approval that landed before the wait existed must
                    # not dedupe the one that can match.
                    event = {"name": "chaos/approve", "id": f"approve-{key}-{int(now * 1000)}",
                             "data": {"key": key, "by": f"approver-{key}"}}
                    self.side_pool.submit(self.send, "approval", key, event)

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.stats)

    def trigger_acks(self) -> list[dict]:
        with self.lock:
            return [ack for ack in self.acks if ack["role"] == "trigger"]

    def all_acks(self) -> list[dict]:
        with self.lock:
            return list(self.acks)
