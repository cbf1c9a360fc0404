-- Run-level concurrency limits (`concurrency.fn`, docs/queue.md): a slot with no fencing
-- token is held by its run from its start until it ends, sleeping and waiting included; a
-- slot with a token counts only while the run holds the lease it was taken under.
ALTER TABLE concurrency_slots ALTER COLUMN fencing_token DROP NOT NULL;
