"""The app the chaos harness drives: functions on the official Inngest Python SDK, unmodified.

Each function's final status, output and recorded steps follow from its event payload alone
(workload.py states the same rules independently, and the checker compares the two). Every
step body counts its executions per (run key, step) in this process, which the harness never
kills, so the checker knows how often each body ran. Code outside steps posts "signals" the
driver polls: a run armed for a cancel or parked on a wait, and a wait resolved.

Environment: APP_PORT (required); INNGEST_API_BASE_URL (Cairn's API: registration) and
INNGEST_EVENT_API_BASE_URL (Cairn's event API: sends), read by inngest-py 0.5.19.

HTTP, besides the SDK's /api/inngest:
  GET /counts           {"<key>": {"<step>": executions}}
  POST /send            {"events": [...]}: sent with the SDK's client.send_sync; {"ids": [...]}
  GET /signals?after=N  {"next": M, "signals": [[kind, key], ...]} with kind armed-wait,
                        wait-resolved or armed-cancel; each (kind, key) is posted once;
                        waits up to 1 s for one
"""

import collections
import datetime
import logging
import os
import threading

import flask
import inngest
import inngest.flask

# Dev mode: Cairn runs without a signing key here.
client = inngest.Inngest(app_id="cairn-chaos", is_production=False, logger=logging.getLogger("chaos-app"))

lock = threading.Lock()
posted = threading.Condition(lock)
bodies: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
signals: list[tuple[str, str]] = []
signalled: set[tuple[str, str]] = set()


def body(key: str, step: str) -> int:
    """Counts one execution of a step body; returns how many there have been, this one included."""
    with lock:
        bodies[key][step] += 1
        return bodies[key][step]


def once(key: str, name: str) -> bool:
    """True the first time (key, name) is seen. For planned failures outside steps, whose code
    runs again on every call the SDK gets for the run."""
    with lock:
        bodies[key]["~" + name] += 1  # "~": not a step body; the checker ignores these
        return bodies[key]["~" + name] == 1


def signal(kind: str, key: str) -> None:
    with lock:
        if (kind, key) not in signalled:
            signalled.add((kind, key))
            signals.append((kind, key))
            posted.notify_all()


def fail_first(key: str, step: str, value: object) -> object:
    """A step body that raises on its first execution and returns `value` after."""
    if body(key, step) == 1:
        raise RuntimeError(f"chaos: planned failure of {step}")
    return value


def plain(key: str, step: str, value: object) -> object:
    body(key, step)
    return value


# Three sequential steps, each feeding the next.
@client.create_function(fn_id="seq", trigger=inngest.TriggerEvent(event="chaos/seq"), retries=4)
def seq(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    s1 = ctx.step.run("s1", lambda: plain(key, "s1", n + 1))
    s2 = ctx.step.run("s2", lambda: plain(key, "s2", s1 * 2))
    s3 = ctx.step.run("s3", lambda: plain(key, "s3", s2 + 3))
    return {"total": s3}


# Two steps that each fail once: two retries in one run.
@client.create_function(fn_id="twofail", trigger=inngest.TriggerEvent(event="chaos/twofail"), retries=4)
def twofail(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    f1 = ctx.step.run("f1", lambda: fail_first(key, "f1", n * 10))
    f2 = ctx.step.run("f2", lambda: fail_first(key, "f2", f1 + 1))
    return {"total": f2}


# Fails outside any step: once before its first step, once after it.
@client.create_function(fn_id="outer", trigger=inngest.TriggerEvent(event="chaos/outer"), retries=4)
def outer(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    if once(key, "before"):
        raise RuntimeError("chaos: planned failure before the first step")
    o1 = ctx.step.run("o1", lambda: plain(key, "o1", n + 7))
    if once(key, "after"):
        raise RuntimeError("chaos: planned failure after the first step")
    return {"total": o1}


# A durable sleep between two steps.
@client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="chaos/sleep"), retries=4)
def sleeper(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    z1 = ctx.step.run("z1", lambda: plain(key, "z1", n))
    ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    z2 = ctx.step.run("z2", lambda: plain(key, "z2", z1 + 1))
    return {"total": z2}


# Waits for chaos/approve with the same key. The driver sends it as soon as this run posts
# armed-wait, i.e. while the executor is parking the run: that first event may land just
# before the wait exists (and then must not match), so the driver repeats it after 2 s, 4 s …
# until the run posts wait-resolved. Every approval carries the same data, so the output is fixed.
# The timeout is far beyond the harness's deadline: a run that never resumes stays Running.
@client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="chaos/wait"), retries=4)
def waiter(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    w1 = ctx.step.run("w1", lambda: plain(key, "w1", n))
    # Reached only once w1 is recorded (the SDK replays it from Cairn's memo).
    signal("armed-wait", key)
    approval = ctx.step.wait_for_event(
        "approval", event="chaos/approve", if_exp="event.data.key == async.data.key",
        timeout=datetime.timedelta(minutes=30))
    signal("wait-resolved", key)
    by = None if approval is None else approval.data.get("by")
    w2 = ctx.step.run("w2", lambda: plain(key, "w2", {"by": by, "w1": w1}))
    return {"total": w2["w1"], "by": w2["by"]}


@client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="chaos/child-never-sent"), retries=4)
def child(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    return ctx.step.run("c1", lambda: plain(key, "c1", {"doubled": n * 2}))


# Invokes `child` and uses its result.
@client.create_function(fn_id="invoker", trigger=inngest.TriggerEvent(event="chaos/invoke"), retries=4)
def invoker(ctx: inngest.ContextSync) -> dict:
    key, n = ctx.event.data["key"], ctx.event.data["n"]
    i1 = ctx.step.run("i1", lambda: plain(key, "i1", n))
    result = ctx.step.invoke("call-child", function=child, data={"key": key, "n": i1})
    i2 = ctx.step.run("i2", lambda: plain(key, "i2", result["doubled"] + 1))
    return {"total": i2}


# Cancelled by chaos/stop with the same key when the payload says so: the driver sends it once
# this run posts armed-cancel (so the event is newer than the run, as cancelOn requires), and
# the hour-long sleep guarantees the run is still parked then. Otherwise it sleeps 1 s.
@client.create_function(
    fn_id="cancellable",
    trigger=inngest.TriggerEvent(event="chaos/cancel"),
    cancel=[inngest.Cancel(event="chaos/stop", if_exp="event.data.key == async.data.key")],
    retries=4,
)
def cancellable(ctx: inngest.ContextSync) -> dict:
    key, n, cancel = ctx.event.data["key"], ctx.event.data["n"], ctx.event.data["cancel"]
    k1 = ctx.step.run("k1", lambda: plain(key, "k1", n))
    if cancel:
        # Reached only once k1 is recorded, so the run's step rows are exactly {k1}.
        signal("armed-cancel", key)
    ctx.step.sleep("hold", datetime.timedelta(hours=1) if cancel else datetime.timedelta(seconds=1))
    k2 = ctx.step.run("k2", lambda: plain(key, "k2", k1 + 1))
    return {"total": k2}


# Three parallel steps (one fails once when the payload says so), then one that sums them.
@client.create_function(fn_id="parallel", trigger=inngest.TriggerEvent(event="chaos/parallel"), retries=4)
def parallel(ctx: inngest.ContextSync) -> dict:
    key, n, flaky = ctx.event.data["key"], ctx.event.data["n"], ctx.event.data["flaky"]
    p3 = (lambda: fail_first(key, "p3", n * 3)) if flaky else (lambda: plain(key, "p3", n * 3))
    results = ctx.group.parallel((
        lambda: ctx.step.run("p1", lambda: plain(key, "p1", n)),
        lambda: ctx.step.run("p2", lambda: plain(key, "p2", n * 2)),
        lambda: ctx.step.run("p3", p3),
    ))
    p4 = ctx.step.run("p4", lambda: plain(key, "p4", sum(results)))
    return {"total": p4}


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [seq, twofail, outer, sleeper, waiter, child, invoker, cancellable, parallel])


@app.get("/counts")
def get_counts() -> dict:
    with lock:
        return {key: {step: n for step, n in steps.items() if not step.startswith("~")} for key, steps in bodies.items()}


@app.get("/signals")
def get_signals() -> dict:
    """Long poll: answers as soon as there is a signal after `after`, or after 1 s. The driver
    learns of an armed wait within a millisecond or two, while the executor is still parking
    the run: its first approval races the wait's creation."""
    after = int(flask.request.args.get("after", "0"))
    with lock:
        posted.wait_for(lambda: len(signals) > after, timeout=1.0)
        return {"next": len(signals), "signals": signals[after:]}


@app.post("/send")
def send() -> tuple[dict, int]:
    """Sends the posted events with the SDK's own client (to INNGEST_EVENT_API_BASE_URL; it
    retries a failed request itself, with the same seed header). 502 when it gave up."""
    events = [inngest.Event(name=e["name"], id=e["id"], data=e["data"]) for e in flask.request.json["events"]]
    try:
        return {"ids": client.send_sync(events)}, 200
    except Exception as error:  # the SDK's SendEventsError, or a transport error it re-raised
        return {"error": str(error)}, 502


if __name__ == "__main__":
    # One line per request would cost more than the requests; planned failures are still logged.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=int(os.environ["APP_PORT"]), threaded=True)
