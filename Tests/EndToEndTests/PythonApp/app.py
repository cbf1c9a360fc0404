"""An app on the official Inngest Python SDK, as a user would write it, for Cairn's
end-to-end tests.

Environment: APP_PORT (required); INNGEST_DEV=1 for dev mode, or INNGEST_SIGNING_KEY for
cloud mode; INNGEST_BASE_URL points the SDK at Cairn. APP_VARIANT=v2 serves a changed
function set (one function removed, one changed, one added) to exercise re-syncs.
APP_MODE=connect runs the functions as a connect worker (inngest.connect) instead of serving
them over HTTP; the helper routes (/counts, /send, ...) stay on APP_PORT. APP_INSTANCE names
the worker instance and INNGEST_CONNECT_MAX_WORKER_CONCURRENCY caps its concurrency.
"""

import asyncio
import collections
import datetime
import os
import threading
import time

import flask
import inngest
import inngest.flask
from inngest.experimental import ai

variant = os.environ.get("APP_VARIANT", "v1")

# Milliseconds the SDK spent on each run's requests, from the moment it took a request to its
# answer, measured by a middleware so that HTTP and connect are timed alike (for the benchmarks).
sdk_timings: dict[str, float] = collections.defaultdict(float)
sdk_timings_lock = threading.Lock()


class SDKTimer(inngest.MiddlewareSync):
    def __init__(self, client: inngest.Inngest, raw_request: object) -> None:
        super().__init__(client, raw_request)
        self.started = time.perf_counter()
        self.run_id: str | None = None

    def transform_input(self, ctx, function, steps) -> None:  # noqa: ANN001 - the SDK's types
        self.run_id = ctx.run_id

    def before_response(self) -> None:
        if self.run_id:
            with sdk_timings_lock:
                sdk_timings[self.run_id] += (time.perf_counter() - self.started) * 1000


client = inngest.Inngest(
    app_id="cairn-e2e",
    is_production=os.environ.get("INNGEST_DEV") is None,
    middleware=[SDKTimer],
)


@client.create_function(
    fn_id="hello",
    name="Hello",
    trigger=inngest.TriggerEvent(event="test/hello"),
    retries=2 if variant == "v1" else 3,
)
def hello(ctx: inngest.ContextSync) -> str:
    name = ctx.step.run("greet", lambda: ctx.event.data.get("name", "world"))
    return f"hello {name}"


def full_config_failed(ctx: inngest.ContextSync) -> None:
    ctx.step.run("note-failure", lambda: None)


@client.create_function(
    fn_id="full-config",
    name="Full config",
    trigger=[
        inngest.TriggerEvent(event="app/user.created", expression="event.data.plan == 'pro'"),
        inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * 1-5"),
    ],
    retries=7,
    concurrency=[inngest.Concurrency(limit=5, key="event.data.user_id", scope="fn")],
    throttle=inngest.Throttle(limit=10, period=datetime.timedelta(minutes=1), burst=2, key="event.data.user_id"),
    debounce=inngest.Debounce(period=datetime.timedelta(seconds=30), key="event.data.user_id",
                              timeout=datetime.timedelta(minutes=5)),
    cancel=[inngest.Cancel(event="app/user.deleted", if_exp="event.data.user_id == async.data.user_id",
                           timeout=datetime.timedelta(days=1))],
    idempotency="event.data.user_id",
    priority=inngest.Priority(run="event.data.plan == 'pro' ? 120 : 0"),
    timeouts=inngest.Timeouts(start=datetime.timedelta(seconds=10), finish=datetime.timedelta(minutes=30)),
    singleton=inngest.Singleton(key="event.data.user_id", mode="skip"),
    on_failure=full_config_failed,
)
def full_config(ctx: inngest.ContextSync) -> None:
    ctx.step.run("work", lambda: None)


@client.create_function(
    fn_id="batched",
    trigger=inngest.TriggerEvent(event="app/batch.item"),
    batch_events=inngest.Batch(max_size=10, timeout=datetime.timedelta(seconds=5), key="event.data.k"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1), key="event.data.k"),
)
def batched(ctx: inngest.ContextSync) -> int:
    return len(ctx.events)


# How often each step body ran, by name: the tests read it at GET /counts.
counts: collections.Counter[str] = collections.Counter()
counts_lock = threading.Lock()


def count(name: str) -> int:
    with counts_lock:
        counts[name] += 1
        return counts[name]


@client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event="test/three"))
def three_steps(ctx: inngest.ContextSync) -> dict:
    key = ctx.event.data["key"]
    a = ctx.step.run("one", lambda: count(f"{key}:one") and 1)
    b = ctx.step.run("two", lambda: count(f"{key}:two") and a + 1)
    c = ctx.step.run("three", lambda: count(f"{key}:three") and b + 1)
    return {"sum": a + b + c}


@client.create_function(fn_id="five-steps", trigger=inngest.TriggerEvent(event="test/five"), retries=0)
def five_steps(ctx: inngest.ContextSync) -> dict:
    key = ctx.event.data["key"]
    total = ctx.event.data.get("base", 0)
    for name in ["s1", "s2", "s3", "s4", "s5"]:
        total = ctx.step.run(name, lambda name=name, total=total: count(f"{key}:{name}") and total + 1)
    return {"total": total}


@client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="test/flaky"), retries=3)
def flaky(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]

    def unreliable() -> str:
        if count(f"{key}:unreliable") <= 2:
            raise RuntimeError("not yet")
        return "finally"

    return ctx.step.run("unreliable", unreliable)


def fails_once(key: str, name: str):
    def body() -> str:
        if count(f"{key}:{name}") == 1:
            raise RuntimeError(f"{name} fails once")
        return name

    return body


@client.create_function(fn_id="fails-twice", trigger=inngest.TriggerEvent(event="test/fails-twice"), retries=3)
def fails_twice(ctx: inngest.ContextSync) -> dict:
    """Two steps that each fail once: two failures, two retries, in one run."""
    key = ctx.event.data["key"]
    a = ctx.step.run("a", fails_once(key, "a"))
    b = ctx.step.run("b", fails_once(key, "b"))
    return {"a": a, "b": b}


@client.create_function(fn_id="raises-around", trigger=inngest.TriggerEvent(event="test/raises-around"), retries=3)
def raises_around(ctx: inngest.ContextSync) -> str:
    """Raises outside any step once before its first step, and once after it."""
    key = ctx.event.data["key"]
    if count(f"{key}:raise-before") == 1:
        raise RuntimeError("before the first step")
    value = ctx.step.run("only", lambda: count(f"{key}:only") and "ran")
    if count(f"{key}:raise-after") == 1:
        raise RuntimeError("after the first step")
    return value


@client.create_function(fn_id="group-of-everything", trigger=inngest.TriggerEvent(event="test/group"), retries=0)
def group_of_everything(ctx: inngest.ContextSync) -> dict:
    """A parallel group holding an invoke, a sleep, a wait and two steps; then one more step."""
    key = ctx.event.data["key"]
    invoked, slept, approval, one, two = ctx.group.parallel((
        lambda: ctx.step.invoke("call", function=child_ok, data={"n": 5}),
        lambda: ctx.step.sleep("nap", datetime.timedelta(seconds=1)),
        lambda: ctx.step.wait_for_event(
            "approval", event="test/group-approved", if_exp="event.data.key == async.data.key",
            timeout=datetime.timedelta(seconds=30)),
        lambda: ctx.step.run("one", lambda: count(f"{key}:one") and 1),
        lambda: ctx.step.run("two", lambda: count(f"{key}:two") and 2),
    ))
    after = ctx.step.run("after", lambda: count(f"{key}:after") and "after")
    return {"invoked": invoked, "slept": slept, "by": approval.data["by"] if approval else None, "sum": one + two, "after": after}


# The order step bodies of a race ran in, by key.
race_order: dict[str, list[str]] = collections.defaultdict(list)


@client.create_function(fn_id="race", trigger=inngest.TriggerEvent(event="test/race"), retries=0)
def race(ctx: inngest.ContextSync) -> None:
    """Two sequences raced: the fast one's second step runs before the slow one's first ends."""
    key = ctx.event.data["key"]

    def body(name: str, delay: float):
        def run() -> str:
            time.sleep(delay)
            with counts_lock:
                race_order[key].append(name)
            return name

        return run

    ctx.group.parallel(
        (
            lambda: (ctx.step.run("a1", body("a1", 0)), ctx.step.run("a2", body("a2", 0))),
            lambda: (ctx.step.run("b1", body("b1", 1.5)), ctx.step.run("b2", body("b2", 0))),
        ),
        parallel_mode=inngest.ParallelMode.RACE,
    )


# What the fake AI provider below received, newest last.
provider_requests: list[dict] = []


@client.create_function(fn_id="ai-infer", trigger=inngest.TriggerEvent(event="test/ai"), retries=0)
def ai_infer(ctx: inngest.ContextSync) -> object:
    """step.ai.infer against the fake provider this app serves: Cairn makes the request."""
    adapter = ai.anthropic.Adapter(
        auth_key="sk-test-key",
        base_url=f"http://127.0.0.1:{os.environ['APP_PORT']}/fake-provider/v1",
        headers={"x-my-header": "my-value"},
        model="claude-test",
    )
    return ctx.step.ai.infer("ask", adapter=adapter, body={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10})


@client.create_function(fn_id="non-retriable", trigger=inngest.TriggerEvent(event="test/non-retriable"), retries=3)
def non_retriable(ctx: inngest.ContextSync) -> None:
    count(f"{ctx.event.data['key']}:non-retriable")
    raise inngest.NonRetriableError("this cannot work")


@client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="test/sleep"))
def sleeper(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("before", lambda: count(f"{key}:before"))
    ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    ctx.step.run("after", lambda: count(f"{key}:after"))
    return "rested"


@client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="test/nap"), retries=0)
def napper(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("first", lambda: count(f"{key}:first"))
    ctx.step.sleep("long-nap", datetime.timedelta(hours=1))
    return "woke"


@client.create_function(
    fn_id="filtered",
    trigger=inngest.TriggerEvent(event="test/filtered", expression="event.data.plan == 'pro'"),
)
def filtered(ctx: inngest.ContextSync) -> str:
    return ctx.event.data["plan"]


@client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="test/echo"))
def echo(ctx: inngest.ContextSync) -> object:
    return ctx.step.run("echo", lambda: ctx.event.data["value"])


def on_failure_handler(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["event"]["data"]["key"]
    ctx.step.run("note", lambda: count(f"{key}:on-failure"))
    return key


@client.create_function(
    fn_id="fails-with-handler",
    trigger=inngest.TriggerEvent(event="test/fail"),
    retries=0,
    on_failure=on_failure_handler,
)
def fails_with_handler(ctx: inngest.ContextSync) -> None:
    ctx.step.run("doomed", lambda: count(f"{ctx.event.data['key']}:doomed"))
    raise RuntimeError("it had to fail")


def fan(letter: str):
    @client.create_function(fn_id=f"fan-{letter}", trigger=inngest.TriggerEvent(event="test/fan"))
    def fan_out(ctx: inngest.ContextSync) -> str:
        ctx.step.run("note", lambda: count(f"{ctx.event.data['key']}:fan-{letter}"))
        return letter

    return fan_out


@client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="test/send"))
def sender(ctx: inngest.ContextSync) -> list:
    key = ctx.event.data["key"]
    return ctx.step.send_event("send", [inngest.Event(name="test/three", data={"key": f"{key}-sent"})])


@client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/wait"))
def waiter(ctx: inngest.ContextSync) -> object:
    key = ctx.event.data["key"]
    seconds = ctx.event.data.get("timeout", 30)
    approval = ctx.step.wait_for_event(
        "approval", event="test/approved", if_exp="event.data.key == async.data.key",
        timeout=datetime.timedelta(seconds=seconds),
    )
    ctx.step.run("after-wait", lambda: count(f"{key}:after-wait"))
    return None if approval is None else {"approved_by": approval.data["by"], "event_id": approval.id}


@client.create_function(fn_id="child-ok", trigger=inngest.TriggerEvent(event="test/child-ok-unused"))
def child_ok(ctx: inngest.ContextSync) -> dict:
    return ctx.step.run("double", lambda: {"doubled": ctx.event.data["n"] * 2})


@client.create_function(fn_id="child-fails", trigger=inngest.TriggerEvent(event="test/child-fails-unused"), retries=0)
def child_fails(ctx: inngest.ContextSync) -> None:
    raise RuntimeError("the child gave up")


@client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="test/invoke"))
def parent(ctx: inngest.ContextSync) -> dict:
    ok = ctx.step.invoke("call-ok", function=child_ok, data={"n": 21})
    try:
        ctx.step.invoke("call-fails", function=child_fails, data={})
        failed = None
    except Exception as error:  # the SDK raises the child's error into the parent
        failed = str(error)
    return {"ok": ok, "failed": failed}


@client.create_function(
    fn_id="cancellable",
    trigger=inngest.TriggerEvent(event="test/cancellable"),
    cancel=[inngest.Cancel(event="test/stop", if_exp="event.data.key == async.data.key")],
)
def cancellable(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("before", lambda: count(f"{key}:before"))
    ctx.step.sleep("long-nap", datetime.timedelta(seconds=60))
    ctx.step.run("after", lambda: count(f"{key}:after"))
    return "woke"


@client.create_function(fn_id="parallel", trigger=inngest.TriggerEvent(event="test/parallel"), retries=2)
def parallel(ctx: inngest.ContextSync) -> dict:
    key = ctx.event.data["key"]

    def shaky() -> str:
        if count(f"{key}:shaky") == 1:
            raise RuntimeError("first try fails")
        return "c"

    results = ctx.group.parallel((
        lambda: ctx.step.run("a", lambda: count(f"{key}:a") and "a"),
        lambda: ctx.step.run("b", lambda: count(f"{key}:b") and "b"),
        lambda: ctx.step.run("c", shaky),
    ))
    after = ctx.step.run("after", lambda: count(f"{key}:after") and "done")
    return {"results": list(results), "after": after}


@client.create_function(fn_id="retry-after", trigger=inngest.TriggerEvent(event="test/retry-after"), retries=2)
def retry_after(ctx: inngest.ContextSync) -> str:
    if count(f"{ctx.event.data['key']}:retry-after") == 1:
        raise inngest.RetryAfterError("come back later", retry_after=datetime.timedelta(seconds=2))
    return "ok"


@client.create_function(fn_id="big-state", trigger=inngest.TriggerEvent(event="test/big-state"))
def big_state(ctx: inngest.ContextSync) -> int:
    key = ctx.event.data["key"]
    a = ctx.step.run("a", lambda: count(f"{key}:a") and "x" * 2_500_000)
    b = ctx.step.run("b", lambda: count(f"{key}:b") and "y" * 2_500_000)
    return ctx.step.run("sum", lambda: count(f"{key}:sum") and len(a) + len(b))


@client.create_function(fn_id="too-big", trigger=inngest.TriggerEvent(event="test/too-big"), retries=0)
def too_big(ctx: inngest.ContextSync) -> int:
    return len(ctx.step.run("huge", lambda: "z" * (4 * 1024 * 1024 + 1)))


@client.create_function(fn_id="too-big-parallel", trigger=inngest.TriggerEvent(event="test/too-big-parallel"), retries=0)
def too_big_parallel(ctx: inngest.ContextSync) -> int:
    small, huge = ctx.group.parallel((
        lambda: ctx.step.run("small", lambda: "s"),
        lambda: ctx.step.run("huge", lambda: "z" * (4 * 1024 * 1024 + 1)),
    ))
    return len(huge)


@client.create_function(fn_id="many-steps", trigger=inngest.TriggerEvent(event="test/many-steps"), retries=0)
def many_steps(ctx: inngest.ContextSync) -> int:
    for i in range(1_001):
        ctx.step.run(f"s{i}", lambda: None)
    return 1_001


@client.create_function(fn_id="slow-step", trigger=inngest.TriggerEvent(event="test/slow"))
def slow_step(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("first", lambda: count(f"{key}:first"))

    def slow() -> str:
        count(f"{key}:slow")
        import time
        time.sleep(3)
        return "slow done"

    ctx.step.run("slow", slow)
    ctx.step.run("last", lambda: count(f"{key}:last"))
    return "survived"


# Flow control (docs/flow-control.md): each function records what it saw.
@client.create_function(
    fn_id="debounced",
    trigger=inngest.TriggerEvent(event="test/debounce"),
    debounce=inngest.Debounce(period=datetime.timedelta(seconds=2), key="event.data.key"),
)
def debounced(ctx: inngest.ContextSync) -> object:
    count(f"{ctx.event.data['key']}:debounced")
    return ctx.event.data["n"]


def singleton_body(ctx: inngest.ContextSync) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("start", lambda: count(f"{key}:{ctx.event.data['n']}:start"))
    ctx.step.sleep("hold", datetime.timedelta(seconds=3))
    return ctx.event.data["n"]


singleton_skip = client.create_function(
    fn_id="singleton-skip",
    trigger=inngest.TriggerEvent(event="test/singleton-skip"),
    singleton=inngest.Singleton(key="event.data.key", mode="skip"),
)(singleton_body)
singleton_cancel = client.create_function(
    fn_id="singleton-cancel",
    trigger=inngest.TriggerEvent(event="test/singleton-cancel"),
    singleton=inngest.Singleton(key="event.data.key", mode="cancel"),
)(singleton_body)


@client.create_function(fn_id="idempotent", trigger=inngest.TriggerEvent(event="test/idempotent"), idempotency="event.data.order")
def idempotent(ctx: inngest.ContextSync) -> object:
    return ctx.event.data["order"]


@client.create_function(
    fn_id="rate-limited",
    trigger=inngest.TriggerEvent(event="test/rate-limited"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=1), key="event.data.key"),
)
def rate_limited(ctx: inngest.ContextSync) -> object:
    return ctx.event.data["n"]


@client.create_function(
    fn_id="throttled",
    trigger=inngest.TriggerEvent(event="test/throttled"),
    # The SDK sends burst 1 by default: 2 starts at once, then one every 2 s.
    throttle=inngest.Throttle(limit=1, period=datetime.timedelta(seconds=2), key="event.data.key"),
)
def throttled(ctx: inngest.ContextSync) -> object:
    return ctx.event.data["n"]


# Step bodies of `limited` in flight now, by key; the most ever seen is counted as "<key>:max".
in_flight: collections.Counter[str] = collections.Counter()


def occupy(key: str, seconds: float = 0.3) -> None:
    with counts_lock:
        in_flight[key] += 1
        counts[f"{key}:max"] = max(counts[f"{key}:max"], in_flight[key])
    time.sleep(seconds)
    with counts_lock:
        in_flight[key] -= 1


@client.create_function(
    fn_id="limited",
    trigger=inngest.TriggerEvent(event="test/limited"),
    concurrency=[inngest.Concurrency(limit=2, key="event.data.key")],
)
def limited(ctx: inngest.ContextSync) -> object:
    key = ctx.event.data["key"]
    ctx.step.run("a", lambda: occupy(key))
    ctx.step.run("b", lambda: occupy(key))
    return ctx.event.data["n"]


@client.create_function(fn_id="occupied", trigger=inngest.TriggerEvent(event="test/occupied"))
def occupied(ctx: inngest.ContextSync) -> object:
    """No limit of its own: what bounds it is the worker's maximum concurrency (connect)."""
    ctx.step.run("hold", lambda: occupy(ctx.event.data["key"], 0.5))
    return ctx.event.data["n"]


@client.create_function(
    fn_id="prioritized",
    trigger=inngest.TriggerEvent(event="test/prioritized"),
    concurrency=[inngest.Concurrency(limit=1)],
    priority=inngest.Priority(run="event.data.p"),
)
def prioritized(ctx: inngest.ContextSync) -> object:
    ctx.step.run("work", lambda: occupy("P", ctx.event.data.get("hold", 0.1)))
    return ctx.event.data["n"]


@client.create_function(
    fn_id="batcher",
    trigger=inngest.TriggerEvent(event="test/batch"),
    batch_events=inngest.Batch(max_size=3, timeout=datetime.timedelta(seconds=2), key="event.data.key"),
)
def batcher(ctx: inngest.ContextSync) -> list:
    return [event.data["n"] for event in ctx.events]


@client.create_function(
    fn_id="finish-timeout",
    trigger=inngest.TriggerEvent(event="test/finish-timeout"),
    timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=2)),
)
def finish_timeout(ctx: inngest.ContextSync) -> str:
    ctx.step.run("begin", lambda: count(f"{ctx.event.data['key']}:begin"))
    ctx.step.sleep("long", datetime.timedelta(seconds=30))
    ctx.step.run("never", lambda: count(f"{ctx.event.data['key']}:never"))
    return "too late"


@client.create_function(fn_id="ten-noop", trigger=inngest.TriggerEvent(event="bench/ten-noop"))
def ten_noop(ctx: inngest.ContextSync) -> int:
    for i in range(10):
        ctx.step.run(f"s{i}", lambda: None)
    return 10


@client.create_function(fn_id="patient", trigger=inngest.TriggerEvent(event="test/patient"), retries=0)
def patient(ctx: inngest.ContextSync) -> str:
    """No retries: a call that reached no worker must not spend its only attempt."""
    ctx.step.run("only", lambda: count(f"{ctx.event.data['key']}:only"))
    return "waited"


functions = [
    ten_noop,
    patient,
    slow_step,
    too_big,
    too_big_parallel,
    many_steps,
    big_state,
    retry_after,
    parallel,
    hello, full_config, three_steps, five_steps, napper, flaky, fails_twice, raises_around, non_retriable, sleeper, filtered, echo,
    fails_with_handler, sender, group_of_everything, race, ai_infer,
    fan("a"), fan("b"), fan("c"), waiter, child_ok, child_fails, parent, cancellable,
    debounced, singleton_skip, singleton_cancel, idempotent, rate_limited, throttled, limited, occupied, prioritized, batcher, finish_timeout,
]
if variant == "v1":
    functions.append(batched)
else:

    @client.create_function(fn_id="added-later", trigger=inngest.TriggerEvent(event="app/*"))
    def added_later(ctx: inngest.ContextSync) -> None:
        return None

    functions.append(added_later)

mode = os.environ.get("APP_MODE", "http")
app = flask.Flask(__name__)
if mode == "http":
    inngest.flask.serve(app, client, functions)


# Time spent inside the app per run (the x-run-id header Cairn sends), for the benchmarks.
timings: dict[str, float] = {}


# The W3C traceparent header of every call Cairn made, by run (x-run-id), in order.
traceparents: dict[str, list] = collections.defaultdict(list)


@app.before_request
def start_timer() -> None:
    flask.g.started = time.perf_counter()
    run_id = flask.request.headers.get("x-run-id")
    if run_id and flask.request.method == "POST":
        with counts_lock:
            traceparents[run_id].append(flask.request.headers.get("traceparent"))


@app.after_request
def stop_timer(response: flask.Response) -> flask.Response:
    run_id = flask.request.headers.get("x-run-id")
    if run_id:
        with counts_lock:
            timings[run_id] = timings.get(run_id, 0.0) + (time.perf_counter() - flask.g.started) * 1000
    return response


@app.get("/timings")
def get_timings() -> dict:
    """Per run: time inside the app as Flask saw it, or with ?source=sdk as the SDK did."""
    if flask.request.args.get("source") == "sdk":
        with sdk_timings_lock:
            return dict(sdk_timings)
    with counts_lock:
        return dict(timings)


@app.post("/fake-provider/v1/messages")
def fake_provider() -> dict:
    provider_requests.append({"headers": dict(flask.request.headers), "body": flask.request.get_json()})
    return {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "hello from the fake provider"}]}


@app.get("/provider-requests")
def get_provider_requests() -> list:
    return provider_requests


@app.get("/race-order")
def get_race_order() -> dict:
    with counts_lock:
        return dict(race_order)


@app.get("/traceparents")
def get_traceparents() -> dict:
    with counts_lock:
        return dict(traceparents)


@app.get("/counts")
def get_counts() -> dict:
    with counts_lock:
        return dict(counts)


@app.post("/send")
def send() -> dict:
    """Sends the posted events with the SDK's own client, as an app would."""
    events = [
        inngest.Event(name=e["name"], data=e.get("data", {}), id=e.get("id", ""), ts=e.get("ts", 0))
        for e in flask.request.json
    ]
    return {"ids": client.send_sync(events)}

if __name__ == "__main__":
    if mode == "connect":
        from inngest.connect import connect

        threading.Thread(
            target=lambda: app.run(host="127.0.0.1", port=int(os.environ["APP_PORT"]), threaded=True), daemon=True
        ).start()
        asyncio.run(connect([(client, functions)], instance_id=os.environ.get("APP_INSTANCE")).start())
    else:
        app.run(host="127.0.0.1", port=int(os.environ["APP_PORT"]), threaded=True)
