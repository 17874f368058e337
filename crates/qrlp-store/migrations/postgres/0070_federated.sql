-- Federated learning (seed 002, part 2): training jobs of N rounds, their rounds, the
-- devices taking part in each round with their (decrypted) updates, and the global model
-- of every version. Round transitions are conditional UPDATEs on `status`, so several
-- server processes never aggregate a round twice.

CREATE TABLE fl_jobs (
    id              TEXT NOT NULL,
    org_id          UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    config          JSONB NOT NULL,
    rounds_total    BIGINT NOT NULL CHECK (rounds_total > 0),
    rounds_done     BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    reason          TEXT,
    accountant      JSONB,
    strategy_state  JSONB,
    feature_stats   JSONB,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT fl_jobs_pkey PRIMARY KEY (id)
);
CREATE INDEX fl_jobs_org_idx ON fl_jobs (org_id, status);
-- One running job per organization (a second POST answers TRAINING_IN_PROGRESS).
CREATE UNIQUE INDEX fl_jobs_one_running ON fl_jobs (org_id) WHERE status = 'running';

CREATE TABLE fl_rounds (
    id               TEXT NOT NULL,
    job_id           TEXT NOT NULL REFERENCES fl_jobs (id) ON DELETE CASCADE,
    org_id           UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number           BIGINT NOT NULL CHECK (number > 0),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'in_progress', 'aggregating', 'completed', 'failed')),
    reason           TEXT,
    model_version    BIGINT NOT NULL,
    min_participants BIGINT NOT NULL CHECK (min_participants > 0),
    max_participants BIGINT NOT NULL CHECK (max_participants >= min_participants),
    deadline         TIMESTAMPTZ NOT NULL,
    x25519_public    BYTEA NOT NULL CHECK (octet_length(x25519_public) = 32),
    x25519_sealed    BYTEA NOT NULL,
    claim            UUID,
    claimed_at       TIMESTAMPTZ,
    epsilon          DOUBLE PRECISION,
    convergence      DOUBLE PRECISION,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    CONSTRAINT fl_rounds_pkey PRIMARY KEY (id),
    CONSTRAINT fl_rounds_job_number_key UNIQUE (job_id, number)
);
CREATE INDEX fl_rounds_org_idx ON fl_rounds (org_id, created_at, id);
CREATE INDEX fl_rounds_open_idx ON fl_rounds (status, deadline);

CREATE TABLE fl_participants (
    round_id      TEXT NOT NULL REFERENCES fl_rounds (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    joined_at     TIMESTAMPTZ NOT NULL,
    feature_stats JSONB,
    submitted_at  TIMESTAMPTZ,
    num_samples   BIGINT,
    metrics       JSONB,
    update_blob   BYTEA,
    CONSTRAINT fl_participants_pkey PRIMARY KEY (round_id, device_id)
);

CREATE TABLE fl_models (
    job_id     TEXT NOT NULL REFERENCES fl_jobs (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL CHECK (version >= 0),
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    shape      JSONB NOT NULL,
    parameters BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT fl_models_pkey PRIMARY KEY (job_id, version)
);
