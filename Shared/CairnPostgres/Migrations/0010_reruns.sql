-- Reruns (docs/operations.md): a run started again from another keeps that run's id in
-- `original_run_id`. Its memoized steps (a rerun from a step) are copied rows of `steps`.
ALTER TABLE runs ADD COLUMN original_run_id text;
CREATE INDEX runs_original ON runs (original_run_id) WHERE original_run_id IS NOT NULL;
