-- Federated learning (seed 002, part 2): training jobs of N rounds, their rounds, the
-- devices taking part in each round with their (decrypted) updates, and the global model
-- of every version. Round transitions are conditional UPDATEs on `status`, so several
-- server processes never aggregate a round twice.

CREATE TABLE fl_jobs (
    id              TEXT NOT NULL,
    org_id          BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    config          TEXT NOT NULL CHECK (json_valid(config)),
    rounds_total    INTEGER NOT NULL CHECK (rounds_total > 0),
    rounds_done     INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    reason          TEXT,
    accountant      TEXT CHECK (accountant IS NULL OR json_valid(accountant)),
    strategy_state  TEXT CHECK (strategy_state IS NULL OR json_valid(strategy_state)),
    feature_stats   TEXT CHECK (feature_stats IS NULL OR json_valid(feature_stats)),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT fl_jobs_pkey PRIMARY KEY (id)
);
CREATE INDEX fl_jobs_org_idx ON fl_jobs (org_id, status);
-- One running job per organization (a second POST answers TRAINING_IN_PROGRESS).
CREATE UNIQUE INDEX fl_jobs_one_running ON fl_jobs (org_id) WHERE status = 'running';

CREATE TABLE fl_rounds (
    id               TEXT NOT NULL,
    job_id           TEXT NOT NULL REFERENCES fl_jobs (id) ON DELETE CASCADE,
    org_id           BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL CHECK (number > 0),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'in_progress', 'aggregating', 'completed', 'failed')),
    reason           TEXT,
    model_version    INTEGER NOT NULL,
    min_participants INTEGER NOT NULL CHECK (min_participants > 0),
    max_participants INTEGER NOT NULL CHECK (max_participants >= min_participants),
    deadline         TEXT NOT NULL,
    x25519_public    BLOB NOT NULL CHECK (length(x25519_public) = 32),
    x25519_sealed    BLOB NOT NULL,
    claim            BLOB,
    claimed_at       TEXT,
    epsilon          REAL,
    convergence      REAL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    CONSTRAINT fl_rounds_pkey PRIMARY KEY (id),
    CONSTRAINT fl_rounds_job_number_key UNIQUE (job_id, number)
);
CREATE INDEX fl_rounds_org_idx ON fl_rounds (org_id, created_at, id);
CREATE INDEX fl_rounds_open_idx ON fl_rounds (status, deadline);

CREATE TABLE fl_participants (
    round_id      TEXT NOT NULL REFERENCES fl_rounds (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    joined_at     TEXT NOT NULL,
    feature_stats TEXT CHECK (feature_stats IS NULL OR json_valid(feature_stats)),
    submitted_at  TEXT,
    num_samples   INTEGER,
    metrics       TEXT CHECK (metrics IS NULL OR json_valid(metrics)),
    update_blob   BLOB,
    CONSTRAINT fl_participants_pkey PRIMARY KEY (round_id, device_id)
);

CREATE TABLE fl_models (
    job_id     TEXT NOT NULL REFERENCES fl_jobs (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version >= 0),
    org_id     BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    shape      TEXT NOT NULL CHECK (json_valid(shape)),
    parameters BLOB NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT fl_models_pkey PRIMARY KEY (job_id, version)
);
