-- What a pause needs to be matched without reading the run: the run's trigger event (for
-- `event.*` in the expression), the newest event id that may NOT match (events up to and
-- including it are older than the pause, or are the trigger itself), and the work item that
-- times it out, so a match can disarm that timer.
ALTER TABLE pauses ADD COLUMN trigger_event json NOT NULL DEFAULT '{}';
ALTER TABLE pauses ADD COLUMN events_after text NOT NULL DEFAULT '';
ALTER TABLE pauses ADD COLUMN timeout_timer text;
