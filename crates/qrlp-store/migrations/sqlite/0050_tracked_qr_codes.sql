-- Tracked QR codes (issue 13): codes with short links, the business card, per-organization
-- tracking settings, scans and their roll-ups, the daily visitor salt, and the change log
-- servers poll to keep their slug caches current.

CREATE TABLE qr_codes (
    id              BLOB NOT NULL,
    org_id          BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    label           TEXT NOT NULL,
    target_url      TEXT NOT NULL,
    utm             TEXT NOT NULL CHECK (json_valid(utm)),
    fill_color      TEXT NOT NULL,
    back_color      TEXT NOT NULL,
    ecc             TEXT NOT NULL CHECK (ecc IN ('L', 'M', 'Q', 'H')),
    border          INTEGER NOT NULL,
    archived_at     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by_type TEXT NOT NULL CHECK (updated_by_type IN ('user', 'api_key', 'system')),
    updated_by      BLOB,
    CONSTRAINT qr_codes_pkey PRIMARY KEY (id),
    CONSTRAINT qr_codes_slug_key UNIQUE (slug)
);
CREATE INDEX qr_codes_org_created_idx ON qr_codes (org_id, created_at, id);

-- Totals per code, kept by the scan recorder.
CREATE TABLE qr_code_stats (
    qr_code_id      BLOB NOT NULL REFERENCES qr_codes (id) ON DELETE CASCADE,
    scans           INTEGER NOT NULL,
    unique_visitors INTEGER NOT NULL,
    bots            INTEGER NOT NULL,
    last_scan_at    TEXT,
    CONSTRAINT qr_code_stats_pkey PRIMARY KEY (qr_code_id)
);

CREATE TABLE qr_tracking_settings (
    org_id            BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tracking_enabled  INTEGER NOT NULL,
    record_referrer   INTEGER NOT NULL,
    record_user_agent INTEGER NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT qr_tracking_settings_pkey PRIMARY KEY (org_id)
);

CREATE TABLE qr_business_cards (
    org_id     BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    phone      TEXT,
    email      TEXT,
    website    TEXT,
    address    TEXT,
    updated_at TEXT NOT NULL,
    CONSTRAINT qr_business_cards_pkey PRIMARY KEY (org_id)
);

-- One row per counted scan (bots are only counted, in the roll-ups). The address is the
-- anonymised one; visitor is the 16-byte salted hash; first_visit marks the visitor's
-- first scan of the code in its UTC day. Clustered by code and time: one B-tree, the
-- export's order, and the id in the key makes a stored scan unique.
CREATE TABLE qr_scans (
    qr_code_id  BLOB NOT NULL REFERENCES qr_codes (id) ON DELETE CASCADE,
    scanned_at  TEXT NOT NULL,
    id          BLOB NOT NULL,
    address     TEXT NOT NULL,
    device      TEXT NOT NULL,
    os          TEXT NOT NULL,
    browser     TEXT NOT NULL,
    referrer    TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('qr', 'link')),
    visitor     BLOB NOT NULL,
    first_visit INTEGER NOT NULL,
    CONSTRAINT qr_scans_pkey PRIMARY KEY (qr_code_id, scanned_at, id)
) WITHOUT ROWID;

-- Quarter-hour roll-up (Unix seconds), for timelines in any time zone.
CREATE TABLE qr_scan_buckets (
    qr_code_id   BLOB NOT NULL,
    bucket_start INTEGER NOT NULL,
    scans        INTEGER NOT NULL,
    visitors     INTEGER NOT NULL,
    bots         INTEGER NOT NULL,
    CONSTRAINT qr_scan_buckets_pkey PRIMARY KEY (qr_code_id, bucket_start)
) WITHOUT ROWID;

-- Daily roll-up (UTC day numbers): scans per combination of the breakdown dimensions
-- (referrer '' when none), and bot requests by name.
CREATE TABLE qr_scan_daily (
    qr_code_id BLOB NOT NULL,
    day        INTEGER NOT NULL,
    device     TEXT NOT NULL,
    os         TEXT NOT NULL,
    browser    TEXT NOT NULL,
    referrer   TEXT NOT NULL,
    source     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    CONSTRAINT qr_scan_daily_pkey PRIMARY KEY (qr_code_id, day, device, os, browser, referrer, source)
) WITHOUT ROWID;

CREATE TABLE qr_bot_daily (
    qr_code_id BLOB NOT NULL,
    day        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    count      INTEGER NOT NULL,
    CONSTRAINT qr_bot_daily_pkey PRIMARY KEY (qr_code_id, day, name)
) WITHOUT ROWID;

-- Visitors seen per code and UTC day; rows of past days are deleted.
CREATE TABLE qr_scan_visitors (
    qr_code_id BLOB NOT NULL,
    day        INTEGER NOT NULL,
    visitor    BLOB NOT NULL,
    CONSTRAINT qr_scan_visitors_pkey PRIMARY KEY (qr_code_id, day, visitor)
) WITHOUT ROWID;

-- The visitor salt of the current UTC day; earlier rows are deleted.
CREATE TABLE tracking_salts (
    day  INTEGER NOT NULL,
    salt BLOB NOT NULL CHECK (length(salt) = 32),
    CONSTRAINT tracking_salts_pkey PRIMARY KEY (day)
);

-- Every change that can alter a redirect: a slug, or (slug NULL) all codes of an
-- organization. Servers poll it to drop cached entries.
CREATE TABLE qr_code_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    slug       TEXT,
    org_id     BLOB NOT NULL,
    changed_at TEXT NOT NULL
);
