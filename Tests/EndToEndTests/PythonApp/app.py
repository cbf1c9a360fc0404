"""An app on the official Inngest Python SDK, as a user would write it, for Cairn's
end-to-end tests.

Environment: APP_PORT (required); INNGEST_DEV=1 for dev mode, or INNGEST_SIGNING_KEY for
cloud mode; INNGEST_BASE_URL points the SDK at Cairn. APP_VARIANT=v2 serves a changed
function set (one function removed, one changed, one added) to exercise re-syncs.
"""

import datetime
import os

import flask
import inngest
import inngest.flask

variant = os.environ.get("APP_VARIANT", "v1")
client = inngest.Inngest(
    app_id="cairn-e2e",
    is_production=os.environ.get("INNGEST_DEV") is None,
)


@client.create_function(
    fn_id="hello",
    name="Hello",
    trigger=inngest.TriggerEvent(event="test/hello"),
    retries=2 if variant == "v1" else 3,
)
def hello(ctx: inngest.Context, step: inngest.StepSync) -> str:
    name = step.run("greet", lambda: ctx.event.data.get("name", "world"))
    return f"hello {name}"


def full_config_failed(ctx: inngest.Context, step: inngest.StepSync) -> None:
    step.run("note-failure", lambda: None)


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
def full_config(ctx: inngest.Context, step: inngest.StepSync) -> None:
    step.run("work", lambda: None)


@client.create_function(
    fn_id="batched",
    trigger=inngest.TriggerEvent(event="app/batch.item"),
    batch_events=inngest.Batch(max_size=10, timeout=datetime.timedelta(seconds=5), key="event.data.k"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1), key="event.data.k"),
)
def batched(ctx: inngest.Context, step: inngest.StepSync) -> int:
    return len(ctx.events)


functions = [hello, full_config]
if variant == "v1":
    functions.append(batched)
else:

    @client.create_function(fn_id="added-later", trigger=inngest.TriggerEvent(event="app/*"))
    def added_later(ctx: inngest.Context, step: inngest.StepSync) -> None:
        return None

    functions.append(added_later)

app = flask.Flask(__name__)
inngest.flask.serve(app, client, functions)

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["APP_PORT"]), threaded=True)
