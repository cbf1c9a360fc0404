-- Cairn's first schema. Postgres is the record: everything acknowledged to anyone is here first.
-- Payloads that an SDK sees again (event data, step outputs, run output) are stored as `json`,
-- which keeps the exact text: key order, integers beyond 2^53 and number spelling survive.

-- Apps and the functions they registered. A function row is versioned; a re-sync that drops a
-- function archives it (runs keep pointing at it), and a live slug is unique.
CREATE TABLE apps (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    url           text        NOT NULL,
    sdk_language  text        NOT NULL DEFAULT '',
    sdk_version   text        NOT NULL DEFAULT '',
    framework     text        NOT NULL DEFAULT '',
    checksum      text        NOT NULL,
    config        json        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    synced_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE functions (
    id            uuid        PRIMARY KEY,
    app_id        uuid        NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    slug          text        NOT NULL,
    name          text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    config        json        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    archived_at   timestamptz
);
CREATE UNIQUE INDEX functions_live_slug ON functions (slug) WHERE archived_at IS NULL;
CREATE INDEX functions_app ON functions (app_id) WHERE archived_at IS NULL;

-- Events, keyed by the internal ULID. `published_at` is the outbox marker: NULL until the
-- event's stream entry is known to be written; the relay republishes what stays NULL.
CREATE TABLE events (
    id            text        PRIMARY KEY CHECK (length(id) = 26),
    name          text        NOT NULL,
    external_id   text,
    ts            bigint      NOT NULL,
    payload       json        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX events_name_id ON events (name, id DESC);
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL;

-- 24-hour dedupe by the event's own `id`: one live row per key; an expired row may be
-- replaced by a new event with the same key. The key is claimed before the event row is
-- written in the same transaction, hence the deferred foreign key.
CREATE TABLE event_dedupe (
    external_id   text        PRIMARY KEY,
    event_id      text        NOT NULL REFERENCES events (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX event_dedupe_expiry ON event_dedupe (expires_at);

-- Runs. `fencing_token` grows by one each time a lease is granted; every write an executor
-- makes for the run is conditioned on the token it holds, so a stale holder changes nothing.
CREATE TABLE runs (
    id               text        PRIMARY KEY CHECK (length(id) = 26),
    function_id      uuid        NOT NULL REFERENCES functions (id),
    function_version integer     NOT NULL,
    event_id         text        REFERENCES events (id),
    event_ids        text[]      NOT NULL DEFAULT '{}',
    status           text        NOT NULL DEFAULT 'Queued'
                                 CHECK (status IN ('Queued', 'Running', 'Completed', 'Failed', 'Cancelled')),
    output           json,
    error            json,
    fencing_token    bigint      NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    ended_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_event ON runs (event_id);
CREATE INDEX runs_function_created ON runs (function_id, id DESC);
CREATE INDEX runs_unfinished ON runs (id) WHERE status IN ('Queued', 'Running');

-- One run per (function, idempotency key) within the key's window: the scheduler's
-- (event id, function id) rule and a function's `idempotency` expression both land here.
CREATE TABLE run_idempotency (
    function_id   uuid        NOT NULL REFERENCES functions (id),
    key           text        NOT NULL,
    run_id        text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (function_id, key)
);
CREATE INDEX run_idempotency_expiry ON run_idempotency (expires_at);

-- Recorded step results: first write wins, a late duplicate is ignored. `result` is the memo
-- value exactly as sent back to the SDK in `steps` ({"data":..}, {"error":..}, an event, null).
CREATE TABLE steps (
    run_id        text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id       text        NOT NULL,
    position      integer     NOT NULL,
    name          text        NOT NULL DEFAULT '',
    op            text        NOT NULL,
    result        json,
    attempts      integer     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT steps_once UNIQUE (run_id, step_id),
    CONSTRAINT steps_position UNIQUE (run_id, position)
);

-- Append-only history of a run: what happened, in order, for the dashboard and debugging.
CREATE TABLE run_history (
    run_id        text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    kind          text        NOT NULL,
    step_id       text,
    attempt       integer,
    detail        json,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

-- Durable timers: sleeps, retry backoffs, wait timeouts, delayed events, cron ticks. The id is
-- deterministic (e.g. run id + step id + attempt) so scheduling twice is a no-op, and a timer
-- fires once: the firing write sets `fired_at` only where it is still NULL.
CREATE TABLE timers (
    id            text        PRIMARY KEY,
    kind          text        NOT NULL,
    run_id        text        REFERENCES runs (id) ON DELETE CASCADE,
    due_at        timestamptz NOT NULL,
    payload       json        NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    fired_at      timestamptz
);
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL;

-- Pauses: a run waiting for an event (waitForEvent, invoke's finished event) or watching for
-- one that cancels it. A pause is consumed once: `consumed_at` is set only where it is NULL.
CREATE TABLE pauses (
    id            text        PRIMARY KEY,
    run_id        text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id       text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('wait', 'invoke', 'cancel')),
    event_name    text        NOT NULL,
    expression    text,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    consumed_at   timestamptz,
    consumed_by   text,
    CONSTRAINT pauses_once UNIQUE (run_id, step_id, kind)
);
CREATE INDEX pauses_open_by_event ON pauses (event_name) WHERE consumed_at IS NULL;

-- Transactional outbox for stream entries other than events: a state change and the entry it
-- implies commit together; the relay publishes and deletes. (stream, entry_id) is the
-- deterministic id consumers dedupe on.
CREATE TABLE outbox (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream        text        NOT NULL,
    entry_id      text        NOT NULL,
    fields        json        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_entry_once UNIQUE (stream, entry_id)
);
