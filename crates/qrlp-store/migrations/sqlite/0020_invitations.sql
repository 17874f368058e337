-- Invitations: the only way into an organization besides creating it. A single-use token
-- (stored as its SHA-256) that expires; redeeming it creates the account (the invitee sets
-- the password) or, for an existing account, needs that account's session.
CREATE TABLE invitations (
    id          BLOB NOT NULL,
    org_id      BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    email_norm  TEXT NOT NULL,
    name        TEXT,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash  BLOB NOT NULL CHECK (length(token_hash) = 32),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    accepted_by BLOB REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT invitations_pkey PRIMARY KEY (id),
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invitations_org_created_idx ON invitations (org_id, created_at, id);
CREATE INDEX invitations_expires_idx ON invitations (expires_at);

-- "Forgot password": single-use tokens (SHA-256), deleted when used.
CREATE TABLE password_resets (
    token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    CONSTRAINT password_resets_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
