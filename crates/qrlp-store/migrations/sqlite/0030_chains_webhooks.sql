-- One-time morphing QR chains (seed 003) and the webhook outbox.
-- Integer ids as in the seed. A chain keeps only the last accepted value in the clear;
-- the checkpoints that produce future values are sealed with the data key (`secret`).

CREATE TABLE chains (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    chain_length  INTEGER NOT NULL CHECK (chain_length BETWEEN 10 AND 10000),
    current_index INTEGER NOT NULL CHECK (current_index >= -1 AND current_index < chain_length),
    last_value    BLOB NOT NULL CHECK (length(last_value) = 32),
    secret        BLOB NOT NULL,
    is_active     INTEGER NOT NULL,
    valid_scans   INTEGER NOT NULL DEFAULT 0,
    invalid_scans INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX chains_org_idx ON chains (org_id, id);

-- Every accepted value, once: the unique (chain, index) makes a second acceptance of one
-- position impossible whatever the application does.
CREATE TABLE chain_used_values (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id    INTEGER NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
    chain_index INTEGER NOT NULL,
    hash_value  BLOB NOT NULL CHECK (length(hash_value) = 32),
    used_at     TEXT NOT NULL,
    CONSTRAINT chain_used_values_index_key UNIQUE (chain_id, chain_index),
    CONSTRAINT chain_used_values_value_key UNIQUE (chain_id, hash_value)
);

-- Every scan attempt, valid or not.
CREATE TABLE chain_scans (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id      INTEGER NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
    hash_id       INTEGER,
    hash_value    TEXT NOT NULL,
    chain_index   INTEGER,
    is_valid      INTEGER NOT NULL,
    scanned_by    TEXT,
    ip_address    TEXT,
    user_agent    TEXT,
    error_message TEXT,
    scanned_at    TEXT NOT NULL
);
CREATE INDEX chain_scans_chain_idx ON chain_scans (chain_id, id);

CREATE TABLE webhook_endpoints (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT,
    events          TEXT NOT NULL CHECK (json_valid(events)),
    secret          BLOB NOT NULL,
    is_active       INTEGER NOT NULL,
    disabled_reason TEXT,
    failing_since   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, id);

CREATE TABLE webhook_subscriptions (
    endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    org_id      BLOB NOT NULL,
    event_type  TEXT NOT NULL,
    CONSTRAINT webhook_subscriptions_pkey PRIMARY KEY (endpoint_id, event_type)
);
CREATE INDEX webhook_subscriptions_org_idx ON webhook_subscriptions (org_id, event_type);

-- The outbox: written in the transaction of the change it reports.
CREATE TABLE webhook_events (
    id         BLOB NOT NULL,
    org_id     BLOB NOT NULL,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (id)
);

-- One row per (event, endpoint); claimed by workers with a lease.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        BLOB NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    org_id          BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until    TEXT,
    claim_token     BLOB,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_claim_idx ON webhook_deliveries (claim_token);

CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    error         TEXT,
    response_body TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempt);
