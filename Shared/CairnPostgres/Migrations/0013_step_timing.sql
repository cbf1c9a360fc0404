-- Timing of attempts, for the waterfall of a run's attempts (docs/operations.md, "One run").
--
-- A step keeps its final attempt's times: when that attempt became ready to send (`queued_at`,
-- the publication of the work item its drive took up, or the moment a drive decided a later
-- call) and when its request went to the SDK (`started_at`); `recorded_at` ends it. Both are
-- NULL for steps no SDK call produced (sleeps, matched events, timeouts) and for rows written
-- before this migration.
ALTER TABLE steps ADD COLUMN queued_at timestamptz, ADD COLUMN started_at timestamptz;

-- Failed attempts go into `run_history` (0001) as kind `attempt_failed`: `attempt` from 1,
-- `detail` = {"error": <the SDK's error>, "queued_at": <RFC 3339 ms or null>, "started_at": …},
-- `at` = when the failure was handled. They are written by the park (or the finish) that
-- follows them, in its transaction, and read by run, oldest first: the primary key
-- (run_id, seq) serves that read, so no index is added.
