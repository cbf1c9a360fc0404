-- A run's idempotency key is claimed before the run row is written, in the same transaction
-- (a lost claim writes no run at all), so the key's reference to the run is checked at commit.
ALTER TABLE run_idempotency
    ALTER CONSTRAINT run_idempotency_run_id_fkey DEFERRABLE INITIALLY DEFERRED;
