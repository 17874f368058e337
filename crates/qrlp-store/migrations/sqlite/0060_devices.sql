-- Device fleet (seed 002): each organization's device CA, enrollment tokens, devices and
-- their key versions. Secrets (the CA key, the organization's FN-DSA key, the server's
-- ML-KEM seed per device) are stored sealed with the data key, never in the clear;
-- enrollment tokens only as SHA-256.

CREATE TABLE device_cas (
    org_id     BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    cert_pem   TEXT NOT NULL,
    key_sealed BLOB NOT NULL,
    pq_public  BLOB NOT NULL,
    pq_sealed  BLOB NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT device_cas_pkey PRIMARY KEY (org_id)
);

CREATE TABLE device_enrollment_tokens (
    id           BLOB NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL CHECK (length(token_hash) = 32),
    name_pattern TEXT,
    capabilities TEXT CHECK (capabilities IS NULL OR json_valid(capabilities)),
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    device_id    TEXT,
    CONSTRAINT device_enrollment_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT device_enrollment_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX device_enrollment_tokens_org_idx ON device_enrollment_tokens (org_id, created_at, id);

CREATE TABLE devices (
    id                    TEXT NOT NULL,
    org_id                BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    device_type           TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('online', 'offline', 'training')),
    capabilities          TEXT NOT NULL CHECK (json_valid(capabilities)),
    config                TEXT NOT NULL CHECK (json_valid(config)),
    training              TEXT NOT NULL CHECK (json_valid(training)),
    update_interval       INTEGER NOT NULL CHECK (update_interval > 0),
    certificate_pem       TEXT NOT NULL,
    certificate_expiry    TEXT NOT NULL,
    kem_public            BLOB NOT NULL,
    kem_sealed            BLOB NOT NULL,
    key_version           INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    last_seen             TEXT,
    offline_after         TEXT,
    rotation_requested_at TEXT,
    revoked_at            TEXT,
    CONSTRAINT devices_pkey PRIMARY KEY (id)
);
CREATE INDEX devices_org_idx ON devices (org_id, created_at, id);
CREATE INDEX devices_offline_idx ON devices (offline_after) WHERE status <> 'offline';

CREATE TABLE device_keys (
    device_id      TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    version        INTEGER NOT NULL CHECK (version > 0),
    ed25519_public BLOB NOT NULL CHECK (length(ed25519_public) = 32),
    kem_public     BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    superseded_at  TEXT,
    CONSTRAINT device_keys_pkey PRIMARY KEY (device_id, version)
);
