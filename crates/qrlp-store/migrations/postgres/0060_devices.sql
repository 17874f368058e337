-- Device fleet (seed 002): each organization's device CA, enrollment tokens, devices and
-- their key versions. Secrets (the CA key, the organization's FN-DSA key, the server's
-- ML-KEM seed per device) are stored sealed with the data key, never in the clear;
-- enrollment tokens only as SHA-256.

CREATE TABLE device_cas (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    cert_pem   TEXT NOT NULL,
    key_sealed BYTEA NOT NULL,
    pq_public  BYTEA NOT NULL,
    pq_sealed  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT device_cas_pkey PRIMARY KEY (org_id)
);

CREATE TABLE device_enrollment_tokens (
    id           UUID NOT NULL,
    org_id       UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL CHECK (octet_length(token_hash) = 32),
    name_pattern TEXT,
    capabilities JSONB,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    device_id    TEXT,
    CONSTRAINT device_enrollment_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT device_enrollment_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX device_enrollment_tokens_org_idx ON device_enrollment_tokens (org_id, created_at, id);

CREATE TABLE devices (
    id                    TEXT NOT NULL,
    org_id                UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    device_type           TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('online', 'offline', 'training')),
    capabilities          JSONB NOT NULL,
    config                JSONB NOT NULL,
    training              JSONB NOT NULL,
    update_interval       BIGINT NOT NULL CHECK (update_interval > 0),
    certificate_pem       TEXT NOT NULL,
    certificate_expiry    TIMESTAMPTZ NOT NULL,
    kem_public            BYTEA NOT NULL,
    kem_sealed            BYTEA NOT NULL,
    key_version           BIGINT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    last_seen             TIMESTAMPTZ,
    offline_after         TIMESTAMPTZ,
    rotation_requested_at TIMESTAMPTZ,
    revoked_at            TIMESTAMPTZ,
    CONSTRAINT devices_pkey PRIMARY KEY (id)
);
CREATE INDEX devices_org_idx ON devices (org_id, created_at, id);
CREATE INDEX devices_offline_idx ON devices (offline_after) WHERE status <> 'offline';

CREATE TABLE device_keys (
    device_id      TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    version        BIGINT NOT NULL CHECK (version > 0),
    ed25519_public BYTEA NOT NULL CHECK (octet_length(ed25519_public) = 32),
    kem_public     BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    superseded_at  TIMESTAMPTZ,
    CONSTRAINT device_keys_pkey PRIMARY KEY (device_id, version)
);
