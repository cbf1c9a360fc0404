-- Concurrency limits (docs/queue.md): the slots drives hold and the work that waits.

-- A slot a run's drive holds on a counter (`key`). It counts only while the run holds the
-- lease it was taken under (same fencing token, lease live), so a drive that ends or dies
-- frees it without another write; rows left behind are cleared by the next acquirer.
CREATE TABLE concurrency_slots (
    key            text        NOT NULL,
    run_id         text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    fencing_token  bigint      NOT NULL,
    PRIMARY KEY (key, run_id)
);
CREATE INDEX concurrency_slots_by_run ON concurrency_slots (run_id);

-- Work whose counter was full: its outbox row stays (published), its stream entry is gone.
-- Promoted lowest score first (run creation time less priority) when a slot frees.
CREATE TABLE concurrency_backlog (
    entry_id     text        PRIMARY KEY,
    key          text        NOT NULL,
    key_limit    int         NOT NULL,
    score        bigint      NOT NULL,
    run_id       text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    function_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX concurrency_backlog_order ON concurrency_backlog (key, score);
CREATE INDEX concurrency_backlog_by_run ON concurrency_backlog (run_id);
