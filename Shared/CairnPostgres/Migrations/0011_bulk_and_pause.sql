-- Bulk cancel and replay, and pausing functions (docs/operations.md).
--
-- A bulk job walks the runs its filter matches in id order, a page at a time; `cursor` is the
-- last run id it handled, so a job taken over after a crash goes on from there. Cancelling an
-- ended run changes nothing and a replay's run is claimed under `bulk:<job>:<run>`, so a page
-- handled twice does nothing twice. One process works a job at a time (`owner` while
-- `lease_expires_at` is ahead).
CREATE TABLE bulk_jobs (
    id               text        PRIMARY KEY CHECK (length(id) = 26),
    kind             text        NOT NULL CHECK (kind IN ('cancel', 'replay')),
    idempotency_key  text        UNIQUE,
    function_id      uuid        NOT NULL REFERENCES functions (id),
    function_slug    text        NOT NULL,
    statuses         text[]      NOT NULL,
    created_from     timestamptz,
    created_until    timestamptz NOT NULL,
    skip_reason      text,
    expression       text,
    status           text        NOT NULL DEFAULT 'Running' CHECK (status IN ('Running', 'Completed', 'Failed')),
    cursor           text,
    total            bigint      NOT NULL DEFAULT 0,
    scanned          bigint      NOT NULL DEFAULT 0,
    matched          bigint      NOT NULL DEFAULT 0,
    done             bigint      NOT NULL DEFAULT 0,
    error            text,
    owner            text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
CREATE INDEX bulk_jobs_running ON bulk_jobs (id) WHERE status = 'Running';

-- A replayed run carries the id of the bulk job that started it.
ALTER TABLE runs ADD COLUMN bulk_id text;
CREATE INDEX runs_bulk ON runs (bulk_id, id) WHERE bulk_id IS NOT NULL;

-- A paused function starts no run: its events are recorded and its runs `Skipped` (`paused`).
ALTER TABLE functions ADD COLUMN paused_at timestamptz;
