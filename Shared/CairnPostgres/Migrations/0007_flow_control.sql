-- Flow control (docs/flow-control.md): skipped runs, singleton, rate limits, debounce,
-- batches, crons and timeouts.

-- A run an event did not start is recorded `Skipped`, with why (`skip_reason`: rate_limited,
-- idempotent, debounced, singleton) and what it points at (`skip_run_id`: the run that took
-- the event, or the singleton's holder). A skipped run has ended when it is written.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('Queued', 'Running', 'Completed', 'Failed', 'Cancelled', 'Skipped'));
ALTER TABLE runs ADD COLUMN skip_reason text;
ALTER TABLE runs ADD COLUMN skip_run_id text;
-- The batch a run was started for.
ALTER TABLE runs ADD COLUMN batch_id text;
-- Singleton: at most one unfinished run per (function, key). The index is the lock: a run
-- that ends releases it.
ALTER TABLE runs ADD COLUMN singleton_key text;
CREATE UNIQUE INDEX runs_singleton ON runs (function_id, singleton_key)
    WHERE singleton_key IS NOT NULL AND status IN ('Queued', 'Running');
DROP INDEX runs_ended;
CREATE INDEX runs_ended ON runs (ended_at) WHERE status IN ('Completed', 'Failed', 'Cancelled', 'Skipped');

-- Lossy rate limits (and `idempotency`, a limit of 1 per 24 h): the GCRA's theoretical
-- arrival time per (function, key). A row whose time has passed is the same as no row.
CREATE TABLE rate_limits (
    function_id   uuid        NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    key           text        NOT NULL,
    tat           timestamptz NOT NULL,
    PRIMARY KEY (function_id, key)
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);

-- Open debounces: the last event per (function, key) and when the run starts. `run_id` is
-- chosen when the debounce opens, so that the events it replaces can point at it.
CREATE TABLE debounces (
    function_id   uuid        NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    key           text        NOT NULL,
    run_id        text        NOT NULL,
    event_id      text        NOT NULL REFERENCES events (id),
    event_key     text        NOT NULL,
    event_ts      bigint      NOT NULL,
    opened_at     timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    PRIMARY KEY (function_id, key)
);
CREATE INDEX debounces_due ON debounces (due_at);
CREATE INDEX debounces_event ON debounces (event_id);

-- Event batches. An open batch per (function, key) collects events until it is full (size or
-- bytes) or due; closing it starts its run (`run_id`, chosen when it opens).
CREATE TABLE batches (
    id            text        PRIMARY KEY,
    function_id   uuid        NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    key           text        NOT NULL,
    run_id        text        NOT NULL,
    size          integer     NOT NULL DEFAULT 0,
    bytes         bigint      NOT NULL DEFAULT 0,
    opened_at     timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    closed_at     timestamptz
);
CREATE UNIQUE INDEX batches_open ON batches (function_id, key) WHERE closed_at IS NULL;
CREATE INDEX batches_due ON batches (due_at) WHERE closed_at IS NULL;
CREATE INDEX batches_closed ON batches (closed_at) WHERE closed_at IS NOT NULL;
-- An event joins a function's batches once.
CREATE TABLE batch_events (
    batch_id      text        NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    function_id   uuid        NOT NULL,
    event_id      text        NOT NULL,
    position      integer     NOT NULL,
    PRIMARY KEY (function_id, event_id)
);
CREATE INDEX batch_events_batch ON batch_events (batch_id, position);
CREATE INDEX batch_events_event ON batch_events (event_id);

-- Cron chains: per (function, expression), the next tick and when it fires (the tick plus
-- its jitter). Firing a tick starts its run and moves the chain on, in one transaction.
CREATE TABLE crons (
    function_id   uuid        NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    expression    text        NOT NULL,
    tick          timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    PRIMARY KEY (function_id, expression)
);
CREATE INDEX crons_due ON crons (due_at);
