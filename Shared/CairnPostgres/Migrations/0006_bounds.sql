-- Open pauses are read in pages of an event name, in id order.
CREATE INDEX pauses_open_by_event_id ON pauses (event_name, id) WHERE consumed_at IS NULL;
DROP INDEX pauses_open_by_event;
