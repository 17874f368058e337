-- Tracked QR codes (issue 13): codes with short links, the business card, per-organization
-- tracking settings, scans and their roll-ups, the daily visitor salt, and the change log
-- servers poll to keep their slug caches current.

CREATE TABLE qr_codes (
    id              UUID NOT NULL,
    org_id          UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    label           TEXT NOT NULL,
    target_url      TEXT NOT NULL,
    utm             JSONB NOT NULL,
    fill_color      TEXT NOT NULL,
    back_color      TEXT NOT NULL,
    ecc             TEXT NOT NULL CHECK (ecc IN ('L', 'M', 'Q', 'H')),
    border          INTEGER NOT NULL,
    archived_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    updated_by_type TEXT NOT NULL CHECK (updated_by_type IN ('user', 'api_key', 'system')),
    updated_by      UUID,
    CONSTRAINT qr_codes_pkey PRIMARY KEY (id),
    CONSTRAINT qr_codes_slug_key UNIQUE (slug)
);
CREATE INDEX qr_codes_org_created_idx ON qr_codes (org_id, created_at, id);

CREATE TABLE qr_code_stats (
    qr_code_id      UUID NOT NULL REFERENCES qr_codes (id) ON DELETE CASCADE,
    scans           BIGINT NOT NULL,
    unique_visitors BIGINT NOT NULL,
    bots            BIGINT NOT NULL,
    last_scan_at    TIMESTAMPTZ,
    CONSTRAINT qr_code_stats_pkey PRIMARY KEY (qr_code_id)
);

CREATE TABLE qr_tracking_settings (
    org_id            UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tracking_enabled  BOOLEAN NOT NULL,
    record_referrer   BOOLEAN NOT NULL,
    record_user_agent BOOLEAN NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT qr_tracking_settings_pkey PRIMARY KEY (org_id)
);

CREATE TABLE qr_business_cards (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    phone      TEXT,
    email      TEXT,
    website    TEXT,
    address    TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT qr_business_cards_pkey PRIMARY KEY (org_id)
);

CREATE TABLE qr_scans (
    qr_code_id  UUID NOT NULL REFERENCES qr_codes (id) ON DELETE CASCADE,
    scanned_at  TIMESTAMPTZ NOT NULL,
    id          UUID NOT NULL,
    address     TEXT NOT NULL,
    device      TEXT NOT NULL,
    os          TEXT NOT NULL,
    browser     TEXT NOT NULL,
    referrer    TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('qr', 'link')),
    visitor     BYTEA NOT NULL,
    first_visit BOOLEAN NOT NULL,
    CONSTRAINT qr_scans_pkey PRIMARY KEY (qr_code_id, scanned_at, id)
);

CREATE TABLE qr_scan_buckets (
    qr_code_id   UUID NOT NULL,
    bucket_start BIGINT NOT NULL,
    scans        BIGINT NOT NULL,
    visitors     BIGINT NOT NULL,
    bots         BIGINT NOT NULL,
    CONSTRAINT qr_scan_buckets_pkey PRIMARY KEY (qr_code_id, bucket_start)
);

CREATE TABLE qr_scan_daily (
    qr_code_id UUID NOT NULL,
    day        BIGINT NOT NULL,
    device     TEXT NOT NULL,
    os         TEXT NOT NULL,
    browser    TEXT NOT NULL,
    referrer   TEXT NOT NULL,
    source     TEXT NOT NULL,
    count      BIGINT NOT NULL,
    CONSTRAINT qr_scan_daily_pkey PRIMARY KEY (qr_code_id, day, device, os, browser, referrer, source)
);

CREATE TABLE qr_bot_daily (
    qr_code_id UUID NOT NULL,
    day        BIGINT NOT NULL,
    name       TEXT NOT NULL,
    count      BIGINT NOT NULL,
    CONSTRAINT qr_bot_daily_pkey PRIMARY KEY (qr_code_id, day, name)
);

CREATE TABLE qr_scan_visitors (
    qr_code_id UUID NOT NULL,
    day        BIGINT NOT NULL,
    visitor    BYTEA NOT NULL,
    CONSTRAINT qr_scan_visitors_pkey PRIMARY KEY (qr_code_id, day, visitor)
);

CREATE TABLE tracking_salts (
    day  BIGINT NOT NULL,
    salt BYTEA NOT NULL CHECK (length(salt) = 32),
    CONSTRAINT tracking_salts_pkey PRIMARY KEY (day)
);

CREATE TABLE qr_code_changes (
    seq        BIGSERIAL PRIMARY KEY,
    slug       TEXT,
    org_id     UUID NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);
