-- Durability (docs/durability.md).

-- A work item stays in the outbox until the drive that handles it ends (the write that parks,
-- finishes or releases the run deletes it): its row is what makes a delivery live, and what a
-- rebuilt `work` stream and the reconciler are derived from. `published_at` marks the items
-- known to be on the stream; the relay publishes the others.
ALTER TABLE outbox ADD COLUMN run_id text;
ALTER TABLE outbox ADD COLUMN published_at timestamptz;
UPDATE outbox SET run_id = fields->>'run';
CREATE INDEX outbox_run ON outbox (run_id);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Events the scheduler has finished routing (runs, resumes and cancels committed). A rebuilt
-- `events` stream carries the others. Events stored before this migration count as routed.
ALTER TABLE events ADD COLUMN routed_at timestamptz;
UPDATE events SET routed_at = received_at;
CREATE INDEX events_unrouted ON events (id) WHERE routed_at IS NULL;

-- A pause with a lower bound looks back, once stored, over the events stored since that bound
-- (one routed while the pause was being written matched nothing). NULL until it has.
ALTER TABLE pauses ADD COLUMN looked_back_at timestamptz;
UPDATE pauses SET looked_back_at = created_at;
CREATE INDEX pauses_to_look_back ON pauses (created_at) WHERE looked_back_at IS NULL AND consumed_at IS NULL;
CREATE INDEX pauses_run_open ON pauses (run_id) WHERE consumed_at IS NULL;
CREATE INDEX timers_run_unfired ON timers (run_id) WHERE fired_at IS NULL;

-- Every version of every function's config: a run keeps the version it started with when a
-- re-sync changes the function.
CREATE TABLE function_versions (
    function_id   uuid        NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version       integer     NOT NULL CHECK (version >= 1),
    config        json        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (function_id, version)
);
INSERT INTO function_versions (function_id, version, config, created_at)
SELECT id, version, config, updated_at FROM functions;

-- The transport (Redis) as of the last complete rebuild: the epoch token written into it and
-- the server's id. Redis holding another token, or being another server, means its streams
-- may have lost entries, and the reconciler rebuilds them from Postgres.
CREATE TABLE transport_epoch (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    token         text        NOT NULL,
    server_id     text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
