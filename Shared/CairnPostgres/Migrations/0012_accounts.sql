-- Accounts for the dashboard and the API (CairnEngine's `AccountStore`): people who sign in
-- with a password, their sessions, API tokens, and the audit log of what was done by whom.
--
-- No secret is stored in a form that signs anyone in: passwords as PBKDF2 hashes, session and
-- API tokens as the SHA-256 digests of their text.

-- An email is stored trimmed and lower-cased (by the engine), and is unique in lower case.
CREATE TABLE accounts (
    id                   uuid        PRIMARY KEY,
    email                text        NOT NULL CHECK (email <> ''),
    role                 text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash        text        NOT NULL,
    must_change_password boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));

-- A session is found by its token's digest; expired ones are swept by `expires_at`.
CREATE TABLE account_sessions (
    token_hash  bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id  uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX account_sessions_account ON account_sessions (account_id);
CREATE INDEX account_sessions_expiry ON account_sessions (expires_at);

-- A token is found by its digest; a live token's name is unique, a revoked one's name may be
-- reused.
CREATE TABLE api_tokens (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL CHECK (name <> ''),
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash    bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Newest first by id (a ULID), a page at a time below the last id seen. The "C" collation
-- makes text order the ULIDs' order whatever the database's default collation is.
CREATE TABLE audit_log (
    id      text        COLLATE "C" PRIMARY KEY CHECK (length(id) = 26),
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    detail  json        NOT NULL DEFAULT '{}'
);
