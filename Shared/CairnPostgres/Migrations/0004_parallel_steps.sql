-- Parallel steps: the planned steps of a run still to complete before it continues, and
-- whether the SDK must plan (not run inline) new steps meanwhile. Only written when a planned
-- step has to wait for a retry; steps that complete within one lease never touch them.
ALTER TABLE runs ADD COLUMN pending_steps text[] NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN force_step_plan boolean NOT NULL DEFAULT false;
