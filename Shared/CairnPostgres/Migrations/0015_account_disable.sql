-- Disabled accounts (CairnEngine's `AccountStore.disableAccount`): an admin disables an account
-- rather than deleting it, so that the audit log still names it. A disabled account signs
-- nothing in: the engine reads `disabled_at` with every session and with every API token's
-- creator (`api_tokens.created_by` is the creator's email), so nothing else changes here.
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;
