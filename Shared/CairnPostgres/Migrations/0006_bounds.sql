-- Open pauses are read in pages of an event name, in id order.
CREATE INDEX pauses_open_by_event_id ON pauses (event_name, id) WHERE consumed_at IS NULL;
DROP INDEX pauses_open_by_event;

-- Retention: what the collector deletes is found by age, oldest first.
CREATE INDEX runs_ended ON runs (ended_at) WHERE status IN ('Completed', 'Failed', 'Cancelled');
CREATE INDEX events_received ON events (received_at);
CREATE INDEX timers_fired ON timers (fired_at) WHERE fired_at IS NOT NULL;
CREATE INDEX pauses_consumed ON pauses (consumed_at) WHERE consumed_at IS NOT NULL;
-- Deleting an event deletes its dedupe claim (ON DELETE CASCADE), found by event.
CREATE INDEX event_dedupe_event ON event_dedupe (event_id);
