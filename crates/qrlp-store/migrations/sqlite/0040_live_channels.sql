-- Issue 12: live channels of organizations. One signing identity per channel (sealed); the
-- public token names its public viewer and verify pages.
CREATE TABLE live_channels (
    id            BLOB NOT NULL,
    org_id        BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    public_token  TEXT NOT NULL,
    interval_secs REAL NOT NULL CHECK (interval_secs >= 0.1 AND interval_secs <= 3600),
    ttl_secs      REAL NOT NULL CHECK (ttl_secs >= interval_secs AND ttl_secs <= 86400),
    style         TEXT NOT NULL,
    frame_format  TEXT NOT NULL,
    -- The identity seed and HMAC secret, sealed with the platform's data key.
    secrets_sealed BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CONSTRAINT live_channels_pkey PRIMARY KEY (id),
    CONSTRAINT live_channels_public_token_key UNIQUE (public_token)
);
CREATE INDEX live_channels_org_created_idx ON live_channels (org_id, created_at, id);
