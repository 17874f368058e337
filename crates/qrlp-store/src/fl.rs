//! Federated learning: training jobs, their rounds, the devices taking part in each round
//! (with their decrypted updates until the round is aggregated) and the global model of
//! every version.
//!
//! Invariants, besides the crate's:
//! - **One transition, one winner.** Every change of a round's status is an `UPDATE … WHERE
//!   status = …` (the fleet's offline sweep does the same): with several server processes a
//!   round starts once, is claimed for aggregation by one process, and is completed once —
//!   [`Store::fl_complete_round`] commits only while its claim holds, in the transaction
//!   that writes the next model version, so no round is aggregated twice.
//! - **One submission per device and round.** The update is written by an `UPDATE … WHERE
//!   submitted_at IS NULL` on the participant's row, after locking the round row, so a
//!   duplicate is refused and a submission never lands after the round was claimed.
//! - **Updates do not outlive their round.** Completing or failing a round clears its
//!   update blobs; the models stay (they are what the job releases).
//! - **Isolation.** Lookups for an API caller take the organization.
//! - The store does no arithmetic on models: parameters, shapes, accountant and strategy
//!   state are opaque blobs and JSON written by the server.

use serde_json::json;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, Page, PageRequest};
use crate::{page_of, to_u64, Store};

/// A round's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlRoundStatus {
    /// Waiting for `min_participants` devices to join.
    Pending,
    /// Enough devices joined; they train and submit.
    InProgress,
    /// Claimed by a server for aggregation.
    Aggregating,
    /// Aggregated: the next model version exists.
    Completed,
    /// Not aggregated (below the quorum at the deadline); `reason` says why.
    Failed,
}

impl FlRoundStatus {
    /// Every status.
    pub const ALL: [FlRoundStatus; 5] = [
        FlRoundStatus::Pending,
        FlRoundStatus::InProgress,
        FlRoundStatus::Aggregating,
        FlRoundStatus::Completed,
        FlRoundStatus::Failed,
    ];

    /// `pending`, `in_progress`, `aggregating`, `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlRoundStatus::Pending => "pending",
            FlRoundStatus::InProgress => "in_progress",
            FlRoundStatus::Aggregating => "aggregating",
            FlRoundStatus::Completed => "completed",
            FlRoundStatus::Failed => "failed",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<FlRoundStatus> {
        FlRoundStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether devices may still join (and, in progress, submit).
    pub fn is_open(self) -> bool {
        matches!(self, FlRoundStatus::Pending | FlRoundStatus::InProgress)
    }
}

/// A round to create (the first of a job, or the next one).
#[derive(Clone)]
pub struct NewFlRound {
    /// `round_…`.
    pub id: String,
    /// 1-based position in the job.
    pub number: u32,
    /// The global model version participants start from.
    pub model_version: u32,
    /// Quorum.
    pub min_participants: u32,
    /// Most devices accepted.
    pub max_participants: u32,
    /// After it: aggregate what arrived (if the quorum submitted) or fail.
    pub deadline: OffsetDateTime,
    /// The round's X25519 public key (transport).
    pub x25519_public: [u8; 32],
    /// Its secret, sealed by the caller.
    pub x25519_sealed: Vec<u8>,
}

impl std::fmt::Debug for NewFlRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFlRound")
            .field("id", &self.id)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// A job to create, with its initial model (version 0) and first round.
#[derive(Debug, Clone)]
pub struct NewFlJob {
    /// `job_…`.
    pub id: String,
    /// The organization.
    pub org_id: Uuid,
    /// The job's settings as the API received them (normalised by the caller).
    pub config: serde_json::Value,
    /// Rounds to run.
    pub rounds_total: u32,
    /// Privacy accountant state, for DP jobs.
    pub accountant: Option<serde_json::Value>,
    /// Shape of the model (opaque JSON).
    pub shape: serde_json::Value,
    /// Initial parameters (little-endian `f32`).
    pub parameters: Vec<u8>,
    /// Round 1.
    pub first_round: NewFlRound,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct FlJob {
    /// `job_…`.
    pub id: String,
    /// The organization.
    pub org_id: Uuid,
    /// Settings.
    pub config: serde_json::Value,
    /// Rounds to run.
    pub rounds_total: u32,
    /// Rounds completed.
    pub rounds_done: u32,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// Why it ended (failed, or stopped at the privacy budget).
    pub reason: Option<String>,
    /// Privacy accountant state.
    pub accountant: Option<serde_json::Value>,
    /// Strategy state (FedAdam's moments).
    pub strategy_state: Option<serde_json::Value>,
    /// Summed feature statistics for standardisation (set when round 1 starts).
    pub feature_stats: Option<serde_json::Value>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A stored round with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct FlRound {
    /// `round_…`.
    pub id: String,
    /// Its job.
    pub job_id: String,
    /// The organization.
    pub org_id: Uuid,
    /// 1-based position in the job.
    pub number: u32,
    /// State.
    pub status: FlRoundStatus,
    /// Why it failed.
    pub reason: Option<String>,
    /// The model version participants start from (the round produces `model_version + 1`).
    pub model_version: u32,
    /// Quorum.
    pub min_participants: u32,
    /// Most devices accepted.
    pub max_participants: u32,
    /// Deadline.
    pub deadline: OffsetDateTime,
    /// The round's X25519 public key.
    pub x25519_public: Vec<u8>,
    /// Its secret, sealed.
    pub x25519_sealed: Vec<u8>,
    /// Cumulative ε of the job after this round (DP jobs, once completed).
    pub epsilon: Option<f64>,
    /// Relative change of the model made by this round.
    pub convergence: Option<f64>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When the quorum joined.
    pub started_at: Option<OffsetDateTime>,
    /// When it completed or failed.
    pub completed_at: Option<OffsetDateTime>,
    /// Devices joined.
    pub joined: u32,
    /// Devices that submitted.
    pub submitted: u32,
}

/// A device in a round (without its update).
#[derive(Debug, Clone, PartialEq)]
pub struct FlParticipant {
    /// `dev_…`.
    pub device_id: String,
    /// When it joined.
    pub joined_at: OffsetDateTime,
    /// The statistics it shared at join.
    pub feature_stats: Option<serde_json::Value>,
    /// When it submitted.
    pub submitted_at: Option<OffsetDateTime>,
    /// Training examples behind its update.
    pub num_samples: Option<u64>,
    /// What it reported (`accuracy`, `loss`, ...).
    pub metrics: Option<serde_json::Value>,
}

/// A stored model version.
#[derive(Debug, Clone, PartialEq)]
pub struct FlModel {
    /// Its job.
    pub job_id: String,
    /// 0 for the initial model, `n` after round `n`.
    pub version: u32,
    /// The organization.
    pub org_id: Uuid,
    /// Shape (opaque JSON).
    pub shape: serde_json::Value,
    /// Little-endian `f32`.
    pub parameters: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// What a join did.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinOutcome {
    /// Joined now; `started` when this join reached the quorum.
    Joined {
        /// The round after the join.
        round: FlRound,
        /// This join moved the round to `in_progress`.
        started: bool,
    },
    /// The device had joined before (joining is idempotent).
    Already(FlRound),
    /// `max_participants` devices joined already.
    Full(FlRound),
    /// The round no longer accepts devices.
    Closed(FlRound),
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Stored; counts after it.
    Accepted {
        /// Devices that submitted.
        submitted: u32,
        /// Devices joined.
        joined: u32,
    },
    /// The device did not join this round.
    NotJoined,
    /// The device submitted already.
    Duplicate,
    /// The round is not in progress (not started, or closed).
    NotInProgress(FlRoundStatus),
}

/// What completing a round writes, in one transaction.
#[derive(Debug, Clone)]
pub struct RoundCompletion {
    /// The round.
    pub round_id: String,
    /// The claim under which it was aggregated.
    pub claim: Uuid,
    /// Its job.
    pub job_id: String,
    /// The new model version (`round.model_version + 1`).
    pub version: u32,
    /// Its shape.
    pub shape: serde_json::Value,
    /// Its parameters.
    pub parameters: Vec<u8>,
    /// Accountant state after the round.
    pub accountant: Option<serde_json::Value>,
    /// Strategy state after the round.
    pub strategy_state: Option<serde_json::Value>,
    /// Cumulative ε after the round.
    pub epsilon: Option<f64>,
    /// Relative model change.
    pub convergence: Option<f64>,
    /// The next round, or `None` when the job ends.
    pub next: Option<NewFlRound>,
    /// Why the job ends early (privacy budget), when `next` is `None`.
    pub end_reason: Option<String>,
    /// Webhook event to write with the change.
    pub event: Option<qrlp_webhook::Payload>,
}

macro_rules! round_select {
    () => {
        "SELECT r.id, r.job_id, r.org_id, r.number, r.status, r.reason, r.model_version, \
         r.min_participants, r.max_participants, r.deadline, r.x25519_public, r.x25519_sealed, \
         r.epsilon, r.convergence, r.created_at, r.started_at, r.completed_at, \
         (SELECT COUNT(*) FROM fl_participants p WHERE p.round_id = r.id) AS joined, \
         (SELECT COUNT(*) FROM fl_participants p WHERE p.round_id = r.id \
            AND p.submitted_at IS NOT NULL) AS submitted \
         FROM fl_rounds r"
    };
}
macro_rules! job_select {
    () => {
        "SELECT id, org_id, config, rounds_total, rounds_done, status, reason, accountant, \
         strategy_state, feature_stats, created_at FROM fl_jobs"
    };
}

#[derive(sqlx::FromRow)]
struct RoundRow {
    id: String,
    job_id: String,
    org_id: Uuid,
    number: i64,
    status: String,
    reason: Option<String>,
    model_version: i64,
    min_participants: i64,
    max_participants: i64,
    deadline: Ts,
    x25519_public: Vec<u8>,
    x25519_sealed: Vec<u8>,
    epsilon: Option<f64>,
    convergence: Option<f64>,
    created_at: Ts,
    started_at: Option<Ts>,
    completed_at: Option<Ts>,
    joined: i64,
    submitted: i64,
}

fn small(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl TryFrom<RoundRow> for FlRound {
    type Error = StoreError;
    fn try_from(r: RoundRow) -> Result<Self, StoreError> {
        Ok(FlRound {
            status: FlRoundStatus::parse(&r.status)
                .ok_or_else(|| StoreError::internal("stored round status is not known"))?,
            id: r.id,
            job_id: r.job_id,
            org_id: r.org_id,
            number: small(r.number),
            reason: r.reason,
            model_version: small(r.model_version),
            min_participants: small(r.min_participants),
            max_participants: small(r.max_participants),
            deadline: r.deadline.0,
            x25519_public: r.x25519_public,
            x25519_sealed: r.x25519_sealed,
            epsilon: r.epsilon,
            convergence: r.convergence,
            created_at: r.created_at.0,
            started_at: r.started_at.map(|t| t.0),
            completed_at: r.completed_at.map(|t| t.0),
            joined: small(r.joined),
            submitted: small(r.submitted),
        })
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    org_id: Uuid,
    config: Json<serde_json::Value>,
    rounds_total: i64,
    rounds_done: i64,
    status: String,
    reason: Option<String>,
    accountant: Option<Json<serde_json::Value>>,
    strategy_state: Option<Json<serde_json::Value>>,
    feature_stats: Option<Json<serde_json::Value>>,
    created_at: Ts,
}

impl From<JobRow> for FlJob {
    fn from(r: JobRow) -> Self {
        FlJob {
            id: r.id,
            org_id: r.org_id,
            config: r.config.0,
            rounds_total: small(r.rounds_total),
            rounds_done: small(r.rounds_done),
            status: r.status,
            reason: r.reason,
            accountant: r.accountant.map(|j| j.0),
            strategy_state: r.strategy_state.map(|j| j.0),
            feature_stats: r.feature_stats.map(|j| j.0),
            created_at: r.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ParticipantRow {
    device_id: String,
    joined_at: Ts,
    feature_stats: Option<Json<serde_json::Value>>,
    submitted_at: Option<Ts>,
    num_samples: Option<i64>,
    metrics: Option<Json<serde_json::Value>>,
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    job_id: String,
    version: i64,
    org_id: Uuid,
    shape: Json<serde_json::Value>,
    parameters: Vec<u8>,
    created_at: Ts,
}

const INSERT_ROUND: &str = "INSERT INTO fl_rounds (id, job_id, org_id, number, status, \
     model_version, min_participants, max_participants, deadline, x25519_public, x25519_sealed, \
     created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11)";
const INSERT_MODEL: &str = "INSERT INTO fl_models (job_id, version, org_id, shape, parameters, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6)";

macro_rules! insert_round {
    ($tx:ident, $job:expr, $org:expr, $r:expr, $at:expr) => {{
        let r: &NewFlRound = $r;
        sqlx::query(INSERT_ROUND)
            .bind(&r.id)
            .bind($job)
            .bind($org)
            .bind(i64::from(r.number))
            .bind(i64::from(r.model_version))
            .bind(i64::from(r.min_participants))
            .bind(i64::from(r.max_participants))
            .bind(Ts(r.deadline))
            .bind(&r.x25519_public[..])
            .bind(&r.x25519_sealed)
            .bind(Ts($at))
            .execute(&mut *$tx)
            .await
    }};
}

fn check_round(r: &NewFlRound) -> Result<(), StoreError> {
    if r.min_participants == 0 || r.max_participants < r.min_participants {
        return Err(StoreError::invalid(
            "participant_criteria",
            "need 1 <= min_participants <= max_participants",
        ));
    }
    checked_time("deadline", r.deadline)?;
    Ok(())
}

impl Store {
    /// Creates a job with its model version 0 and its first round (pending). `Conflict(
    /// "training_in_progress")` when the organization has a running job. Audit:
    /// `training.job_created`.
    pub async fn create_fl_job(
        &self,
        ctx: &AuditContext,
        job: NewFlJob,
    ) -> Result<(FlJob, FlRound), StoreError> {
        check_round(&job.first_round)?;
        let at = now();
        let insert_job = "INSERT INTO fl_jobs (id, org_id, config, rounds_total, rounds_done, \
             status, accountant, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, 'running', $5, $6, $6)";
        let audit = AuditEntry {
            org_id: Some(job.org_id),
            ctx,
            action: "training.job_created",
            target_type: "training_job",
            target_id: Some(job.id.clone()),
            details: json!({ "rounds": job.rounds_total, "first_round": job.first_round.id }),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(insert_job)
                .bind(&job.id)
                .bind(job.org_id)
                .bind(Json(&job.config))
                .bind(i64::from(job.rounds_total))
                .bind(job.accountant.as_ref().map(Json))
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_MODEL)
                .bind(&job.id)
                .bind(0i64)
                .bind(job.org_id)
                .bind(Json(&job.shape))
                .bind(&job.parameters)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            insert_round!(tx, &job.id, job.org_id, &job.first_round, at)?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        let j = self.get_fl_job(&job.id).await?;
        let r = self.fl_round(&job.first_round.id).await?;
        Ok((j, r))
    }

    /// The job `id` (any organization: callers check).
    pub async fn get_fl_job(&self, id: &str) -> Result<FlJob, StoreError> {
        let sql = concat!(job_select!(), " WHERE id = $1");
        let row: Option<JobRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    /// The running jobs of every organization (the background task's list).
    pub async fn running_fl_jobs(&self) -> Result<Vec<FlJob>, StoreError> {
        let sql = concat!(job_select!(), " WHERE status = 'running'");
        let rows: Vec<JobRow> = on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(FlJob::from).collect())
    }

    /// Sets the job's summed feature statistics, unless set already. Returns the ones
    /// that stay.
    pub async fn set_fl_feature_stats(
        &self,
        job: &str,
        stats: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let sql = "UPDATE fl_jobs SET feature_stats = $2 WHERE id = $1 AND feature_stats IS NULL";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(job)
                .bind(Json(stats))
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(self.get_fl_job(job).await?.feature_stats)
    }

    /// The round `id` of any organization.
    pub async fn fl_round(&self, id: &str) -> Result<FlRound, StoreError> {
        let sql = concat!(round_select!(), " WHERE r.id = $1");
        let row: Option<RoundRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The round `id` of `org`; `NotFound` for another organization's.
    pub async fn get_fl_round(&self, org: Uuid, id: &str) -> Result<FlRound, StoreError> {
        let r = self.fl_round(id).await?;
        if r.org_id != org {
            return Err(StoreError::NotFound);
        }
        Ok(r)
    }

    /// The organization's rounds, newest first, optionally of one status.
    pub async fn list_fl_rounds(
        &self,
        org: Uuid,
        status: Option<FlRoundStatus>,
        page: PageRequest,
    ) -> Result<Page<FlRound>, StoreError> {
        let (limit, offset) = page.limit_offset()?;
        let count = "SELECT COUNT(*) FROM fl_rounds r WHERE r.org_id = $1 \
                     AND ($2 IS NULL OR r.status = $2)";
        let list = concat!(
            round_select!(),
            " WHERE r.org_id = $1 AND ($2 IS NULL OR r.status = $2) \
             ORDER BY r.created_at DESC, r.number DESC LIMIT $3 OFFSET $4"
        );
        let status = status.map(FlRoundStatus::as_str);
        let (total, rows): (i64, Vec<RoundRow>) = on_pool!(self, |pool| {
            let total = sqlx::query_scalar(count)
                .bind(org)
                .bind(status)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query_as(list)
                .bind(org)
                .bind(status)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        let items = rows
            .into_iter()
            .map(FlRound::try_from)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// The latest round of a job.
    pub async fn latest_fl_round(&self, job: &str) -> Result<FlRound, StoreError> {
        let sql = concat!(
            round_select!(),
            " WHERE r.job_id = $1 ORDER BY r.number DESC LIMIT 1"
        );
        let row: Option<RoundRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(job).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The devices of a round, in join order (no updates).
    pub async fn fl_participants(&self, round: &str) -> Result<Vec<FlParticipant>, StoreError> {
        let sql = "SELECT device_id, joined_at, feature_stats, submitted_at, num_samples, metrics \
                   FROM fl_participants WHERE round_id = $1 ORDER BY joined_at, device_id";
        let rows: Vec<ParticipantRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(round).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| FlParticipant {
                device_id: r.device_id,
                joined_at: r.joined_at.0,
                feature_stats: r.feature_stats.map(|j| j.0),
                submitted_at: r.submitted_at.map(|t| t.0),
                num_samples: r.num_samples.map(to_u64),
                metrics: r.metrics.map(|j| j.0),
            })
            .collect())
    }

    /// One device's stored update in a round (`None` when it has none).
    pub async fn fl_update(
        &self,
        round: &str,
        device: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = "SELECT update_blob FROM fl_participants WHERE round_id = $1 AND device_id = $2";
        let blob: Option<Option<Vec<u8>>> = on_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(round)
                .bind(device)
                .fetch_optional(pool)
                .await
        })?;
        Ok(blob.flatten())
    }

    /// Joins `device` to the round, idempotently, up to `max_participants`. The join that
    /// reaches `min_participants` moves the round to `in_progress` and writes `on_start`
    /// (the `training.round_started` event, its `data.participants` set to the count with
    /// this join) in the same transaction.
    pub async fn fl_join(
        &self,
        round: &str,
        device: &str,
        feature_stats: Option<&serde_json::Value>,
        on_start: Option<&qrlp_webhook::Payload>,
    ) -> Result<JoinOutcome, StoreError> {
        let at = now();
        // Touching the row locks it (PostgreSQL) for the rest of the transaction; SQLite's
        // BEGIN IMMEDIATE serialises writers anyway.
        let lock = "UPDATE fl_rounds SET status = status WHERE id = $1 \
                    AND status IN ('pending', 'in_progress')";
        let exists = "SELECT COUNT(*) FROM fl_participants WHERE round_id = $1 AND device_id = $2";
        let count = "SELECT COUNT(*) FROM fl_participants WHERE round_id = $1";
        let limits = "SELECT min_participants, max_participants, status, org_id FROM fl_rounds \
                      WHERE id = $1";
        let insert = "INSERT INTO fl_participants (round_id, device_id, joined_at, feature_stats) \
                      VALUES ($1, $2, $3, $4)";
        let start = "UPDATE fl_rounds SET status = 'in_progress', started_at = $2 \
                     WHERE id = $1 AND status = 'pending'";
        enum Step {
            Closed,
            Already,
            Full,
            Joined(bool),
        }
        let step = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let locked = sqlx::query(lock)
                .bind(round)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let step = if locked == 0 {
                Step::Closed
            } else {
                let n: i64 = sqlx::query_scalar(exists)
                    .bind(round)
                    .bind(device)
                    .fetch_one(&mut *tx)
                    .await?;
                if n > 0 {
                    Step::Already
                } else {
                    let joined: i64 = sqlx::query_scalar(count)
                        .bind(round)
                        .fetch_one(&mut *tx)
                        .await?;
                    let (min, max, status, org): (i64, i64, String, Uuid) = sqlx::query_as(limits)
                        .bind(round)
                        .fetch_one(&mut *tx)
                        .await?;
                    if joined >= max {
                        Step::Full
                    } else {
                        sqlx::query(insert)
                            .bind(round)
                            .bind(device)
                            .bind(Ts(at))
                            .bind(feature_stats.map(Json))
                            .execute(&mut *tx)
                            .await?;
                        let started = status == "pending" && joined + 1 >= min;
                        if started {
                            sqlx::query(start)
                                .bind(round)
                                .bind(Ts(at))
                                .execute(&mut *tx)
                                .await?;
                            if let Some(p) = on_start {
                                // The count as the round starts, this join included.
                                let p = match p.field("data") {
                                    Some(serde_json::Value::Object(d)) => {
                                        let mut d = d.clone();
                                        d.insert("participants".into(), (joined + 1).into());
                                        p.clone().with("data", d)
                                    }
                                    _ => p.clone(),
                                };
                                enqueue_event!(tx, org, &p, at)?;
                            }
                        }
                        Step::Joined(started)
                    }
                }
            };
            tx.commit().await?;
            step
        });
        let r = self.fl_round(round).await?;
        Ok(match step {
            Step::Closed => JoinOutcome::Closed(r),
            Step::Already => JoinOutcome::Already(r),
            Step::Full => JoinOutcome::Full(r),
            Step::Joined(started) => JoinOutcome::Joined { round: r, started },
        })
    }

    /// Stores a device's decrypted update, once, while the round is in progress.
    pub async fn fl_submit(
        &self,
        round: &str,
        device: &str,
        num_samples: u64,
        metrics: &serde_json::Value,
        update: &[u8],
    ) -> Result<SubmitOutcome, StoreError> {
        let at = now();
        let lock = "UPDATE fl_rounds SET status = status WHERE id = $1 AND status = 'in_progress'";
        let write = "UPDATE fl_participants SET submitted_at = $3, num_samples = $4, \
                     metrics = $5, update_blob = $6 \
                     WHERE round_id = $1 AND device_id = $2 AND submitted_at IS NULL";
        let joined_sql =
            "SELECT COUNT(*) FROM fl_participants WHERE round_id = $1 AND device_id = $2";
        let counts = "SELECT COUNT(*), COUNT(submitted_at) FROM fl_participants \
                      WHERE round_id = $1";
        let samples = i64::try_from(num_samples)
            .map_err(|_| StoreError::invalid("num_samples", "is too large"))?;
        let outcome = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let locked = sqlx::query(lock)
                .bind(round)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                tx.rollback().await?;
                None
            } else {
                let n = sqlx::query(write)
                    .bind(round)
                    .bind(device)
                    .bind(Ts(at))
                    .bind(samples)
                    .bind(Json(metrics))
                    .bind(update)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let out = if n == 1 {
                    let (joined, submitted): (i64, i64) = sqlx::query_as(counts)
                        .bind(round)
                        .fetch_one(&mut *tx)
                        .await?;
                    SubmitOutcome::Accepted {
                        submitted: small(submitted),
                        joined: small(joined),
                    }
                } else {
                    let j: i64 = sqlx::query_scalar(joined_sql)
                        .bind(round)
                        .bind(device)
                        .fetch_one(&mut *tx)
                        .await?;
                    if j == 0 {
                        SubmitOutcome::NotJoined
                    } else {
                        SubmitOutcome::Duplicate
                    }
                };
                tx.commit().await?;
                Some(out)
            }
        });
        match outcome {
            Some(o) => Ok(o),
            None => Ok(SubmitOutcome::NotInProgress(
                self.fl_round(round).await?.status,
            )),
        }
    }

    /// Rounds the background task must look at: open rounds past their deadline, rounds in
    /// progress where every device joined has submitted, and aggregations whose claim is
    /// older than `stale_before` (the server that claimed them stopped).
    pub async fn fl_due_rounds(
        &self,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<Vec<FlRound>, StoreError> {
        let sql = concat!(
            round_select!(),
            " WHERE (r.status IN ('pending', 'in_progress') AND r.deadline < $1) \
             OR (r.status = 'in_progress' \
                 AND (SELECT COUNT(*) FROM fl_participants p WHERE p.round_id = r.id) \
                     >= r.min_participants \
                 AND NOT EXISTS (SELECT 1 FROM fl_participants p WHERE p.round_id = r.id \
                     AND p.submitted_at IS NULL)) \
             OR (r.status = 'aggregating' AND r.claimed_at < $2) \
             ORDER BY r.created_at LIMIT 100"
        );
        let rows: Vec<RoundRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(Ts(checked_time("now", now)?))
                .bind(Ts(checked_time("stale_before", stale_before)?))
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(FlRound::try_from).collect()
    }

    /// Claims a round for aggregation: from `in_progress`, or from a stale claim. `true`
    /// for exactly one caller.
    pub async fn fl_claim_round(
        &self,
        round: &str,
        claim: Uuid,
        stale_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE fl_rounds SET status = 'aggregating', claim = $2, claimed_at = $3 \
                   WHERE id = $1 AND (status = 'in_progress' \
                   OR (status = 'aggregating' AND claimed_at < $4))";
        let n = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(round)
                .bind(claim)
                .bind(Ts(now()))
                .bind(Ts(checked_time("stale_before", stale_before)?))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Fails a round that is open, or aggregating under `claim`, with `reason`; the job
    /// fails with it. Clears the round's updates. `event` is written in the same
    /// transaction. `true` for the caller that made the change.
    pub async fn fl_fail_round(
        &self,
        round: &str,
        claim: Option<Uuid>,
        reason: &str,
        event: Option<&qrlp_webhook::Payload>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let fail = "UPDATE fl_rounds SET status = 'failed', reason = $2, completed_at = $3, \
                    claim = NULL WHERE id = $1 AND (status IN ('pending', 'in_progress') \
                    OR (status = 'aggregating' AND claim = $4))";
        let job = "UPDATE fl_jobs SET status = 'failed', reason = $2, updated_at = $3 \
                   WHERE id = (SELECT job_id FROM fl_rounds WHERE id = $1) AND status = 'running'";
        let clear = "UPDATE fl_participants SET update_blob = NULL WHERE round_id = $1";
        let org = "SELECT org_id FROM fl_rounds WHERE id = $1";
        let done = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(fail)
                .bind(round)
                .bind(reason)
                .bind(Ts(at))
                .bind(claim)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                let why = format!("round failed: {reason}");
                sqlx::query(job)
                    .bind(round)
                    .bind(&why)
                    .bind(Ts(at))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(clear).bind(round).execute(&mut *tx).await?;
                if let Some(p) = event {
                    let org: Uuid = sqlx::query_scalar(org)
                        .bind(round)
                        .fetch_one(&mut *tx)
                        .await?;
                    enqueue_event!(tx, org, p, at)?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n == 1
        });
        Ok(done)
    }

    /// Completes a round aggregated under `c.claim`: the new model version, the job's
    /// progress and state, the next round (or the job's end) and the event, in one
    /// transaction. `false` (nothing written) when the claim no longer holds.
    pub async fn fl_complete_round(&self, c: &RoundCompletion) -> Result<bool, StoreError> {
        if let Some(n) = &c.next {
            check_round(n)?;
        }
        let at = now();
        let done = "UPDATE fl_rounds SET status = 'completed', completed_at = $3, claim = NULL, \
                    epsilon = $4, convergence = $5 \
                    WHERE id = $1 AND status = 'aggregating' AND claim = $2";
        let job = "UPDATE fl_jobs SET rounds_done = rounds_done + 1, accountant = $2, \
                   strategy_state = $3, updated_at = $4, \
                   status = CASE WHEN $5 THEN 'running' ELSE 'completed' END, reason = $6 \
                   WHERE id = $1 AND status = 'running'";
        let clear = "UPDATE fl_participants SET update_blob = NULL WHERE round_id = $1";
        let org = "SELECT org_id FROM fl_jobs WHERE id = $1";
        let ok = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(done)
                .bind(&c.round_id)
                .bind(c.claim)
                .bind(Ts(at))
                .bind(c.epsilon)
                .bind(c.convergence)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                tx.rollback().await?;
                false
            } else {
                let org: Uuid = sqlx::query_scalar(org)
                    .bind(&c.job_id)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(INSERT_MODEL)
                    .bind(&c.job_id)
                    .bind(i64::from(c.version))
                    .bind(org)
                    .bind(Json(&c.shape))
                    .bind(&c.parameters)
                    .bind(Ts(at))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(job)
                    .bind(&c.job_id)
                    .bind(c.accountant.as_ref().map(Json))
                    .bind(c.strategy_state.as_ref().map(Json))
                    .bind(Ts(at))
                    .bind(c.next.is_some())
                    .bind(c.end_reason.as_deref())
                    .execute(&mut *tx)
                    .await?;
                if let Some(next) = &c.next {
                    insert_round!(tx, &c.job_id, org, next, at)?;
                }
                sqlx::query(clear)
                    .bind(&c.round_id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(p) = &c.event {
                    enqueue_event!(tx, org, p, at)?;
                }
                tx.commit().await?;
                true
            }
        });
        Ok(ok)
    }

    /// Model `version` of `job`.
    pub async fn get_fl_model(&self, job: &str, version: u32) -> Result<FlModel, StoreError> {
        let sql = "SELECT job_id, version, org_id, shape, parameters, created_at FROM fl_models \
                   WHERE job_id = $1 AND version = $2";
        let row: Option<ModelRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(job)
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await
        })?;
        let r = row.ok_or(StoreError::NotFound)?;
        Ok(FlModel {
            job_id: r.job_id,
            version: small(r.version),
            org_id: r.org_id,
            shape: r.shape.0,
            parameters: r.parameters,
            created_at: r.created_at.0,
        })
    }
}
