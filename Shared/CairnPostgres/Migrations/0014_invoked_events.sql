-- The runs an invoke step started, for the dashboard's link from a run's invoke step to its
-- child run (docs/dashboard.md). An invoke sends `inngest/function.invoked` with
-- `data._inngest.correlation_id` = `<run id>.<step id>`; this finds those events by it. Partial:
-- only invoked events pay for the index, not every event ingested.
CREATE INDEX events_invoked ON events ((payload #>> '{data,_inngest,correlation_id}'))
    WHERE name = 'inngest/function.invoked';
