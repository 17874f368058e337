-- Platform core: organizations, users, memberships, API keys, sessions, audit log.
-- Objects are created unqualified, in the first schema of the search_path.

CREATE TABLE organizations (
    id         UUID NOT NULL,
    name       TEXT NOT NULL,
    name_norm  TEXT NOT NULL,
    plan       TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'professional', 'enterprise')),
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_name_norm_key UNIQUE (name_norm)
);
CREATE INDEX organizations_created_idx ON organizations (created_at, id);

CREATE TABLE users (
    id            UUID NOT NULL,
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_norm_key UNIQUE (email_norm)
);

CREATE TABLE memberships (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id, org_id);
CREATE INDEX memberships_org_created_idx ON memberships (org_id, created_at, user_id);

CREATE TABLE api_keys (
    id           UUID NOT NULL,
    org_id       UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BYTEA NOT NULL CHECK (octet_length(key_hash) = 32),
    scopes       JSONB NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_org_created_idx ON api_keys (org_id, created_at, id);

CREATE TABLE sessions (
    id         UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL CHECK (octet_length(token_hash) = 32),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Append-only: no foreign keys (history outlives what it talks about), and a trigger refuses
-- every UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id          UUID NOT NULL,
    org_id      UUID,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id    UUID,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_log_org_created_idx ON audit_log (org_id, created_at, id);
CREATE INDEX audit_log_org_action_idx ON audit_log (org_id, action, created_at);
CREATE INDEX audit_log_org_actor_idx ON audit_log (org_id, actor_id, created_at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
