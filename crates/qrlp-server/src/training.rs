//! Federated learning's adapter: a job's settings as stored, model (de)serialisation, the
//! aggregation of a round over the stored updates, and the background task that moves
//! rounds through their lifecycle (deadlines, quorum, aggregation, the next round).
//!
//! The arithmetic is `qrlp-federated`'s; SQL and the exactly-once transitions are
//! `qrlp_store::fl`'s; the routes are `routes::fl`. Every transition is made by whichever
//! server wins the store's conditional update, so several servers may run this task.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::time::Duration;

use qrlp_federated::aggregate::{Sampling, TrainConfig, UpdateSource};
use qrlp_federated::train::{Activation, FeatureStats, LogisticRegression, Mlp, Model as _};
use qrlp_federated::{
    Accountant, DpFedAvg, FedAdam, FedAvg, Median, ModelShape, Parameters, Strategy as _,
    StreamingStrategy, TrimmedMean,
};
use qrlp_fleet::transport::RoundKey;
use qrlp_store::secret::DataKey;
use qrlp_store::{FlJob, FlRound, FlRoundStatus, NewFlRound, RoundCompletion};
use qrlp_webhook::Payload;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::fleet::{rfc3339, Channel};
use crate::state::AppState;

/// How often the background task looks for rounds to start, fail or aggregate.
pub const TICK: Duration = Duration::from_millis(250);
/// An aggregation claimed longer ago than this is taken over (its server stopped).
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// Largest model, in parameters.
pub const MAX_PARAMETERS: usize = 16_000_000;
/// Largest submission body (`POST /fl/rounds/{id}/submit`): a base64 envelope of the
/// largest model and its JSON.
pub const SUBMIT_BODY_LIMIT: usize = 96 * 1024 * 1024;

/// Submissions read, opened and stored at the same time per server. A submission's body is
/// read only once it holds a place, so memory stays bounded by this many bodies however
/// many devices submit at once (the others wait, their bytes in the kernel's socket
/// buffers); two keep both cores busy.
pub const SUBMISSIONS_AT_ONCE: usize = 2;
/// Bytes of encoded models kept in memory for `GET /fl/models/{version}` (the newest one
/// is kept whatever its size).
const MODEL_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Federated learning's per-server state.
pub struct Training {
    gate: tokio::sync::Semaphore,
    models:
        std::sync::Mutex<std::collections::VecDeque<(String, u32, std::sync::Arc<EncodedModel>)>>,
    filling: tokio::sync::Mutex<()>,
    sums: tokio::sync::Mutex<std::collections::HashMap<String, RunningSum>>,
    wake: tokio::sync::Notify,
}

impl Default for Training {
    fn default() -> Training {
        Training::new()
    }
}

impl Training {
    /// Nothing cached, the gate open.
    pub fn new() -> Training {
        Training {
            gate: tokio::sync::Semaphore::new(SUBMISSIONS_AT_ONCE),
            models: std::sync::Mutex::new(std::collections::VecDeque::new()),
            filling: tokio::sync::Mutex::new(()),
            sums: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Wakes the background task now (a round's last device submitted).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for a place to handle a submission; the place is held until the guard drops.
    pub async fn submission_place(&self) -> tokio::sync::SemaphorePermit<'_> {
        #[allow(clippy::expect_used)]
        self.gate
            .acquire()
            .await
            .expect("the submission gate is never closed")
    }

    fn cached(&self, job: &str, version: u32) -> Option<std::sync::Arc<EncodedModel>> {
        let m = self.models.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .find(|(j, v, _)| j == job && *v == version)
            .map(|(_, _, b)| b.clone())
    }

    /// Model `version` of `job` with its parameters in base64, shared by every request that
    /// pulls it: when a fleet pulls a new model at once, it is read and encoded once and
    /// held once. Versions never change once written, so a cached copy is always current.
    ///
    /// # Errors
    /// The store's, when the model is missing or the database fails.
    pub async fn model(
        &self,
        store: &qrlp_store::Store,
        job: &str,
        version: u32,
    ) -> Result<std::sync::Arc<EncodedModel>, qrlp_store::StoreError> {
        if let Some(b) = self.cached(job, version) {
            return Ok(b);
        }
        // One fill at a time: the requests that missed together wait for the first.
        let _filling = self.filling.lock().await;
        if let Some(b) = self.cached(job, version) {
            return Ok(b);
        }
        let m = store.get_fl_model(job, version).await?;
        let encoded = std::sync::Arc::new(EncodedModel {
            org_id: m.org_id,
            parameter_count: m.parameters.len() / 4,
            parameters: axum::body::Bytes::from(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &m.parameters,
            )),
            shape: m.shape,
            created_at: m.created_at,
        });
        let mut cache = self.models.lock().unwrap_or_else(|e| e.into_inner());
        cache.push_back((job.to_string(), version, encoded.clone()));
        let mut total: usize = cache.iter().map(|(_, _, b)| b.parameters.len()).sum();
        while total > MODEL_CACHE_BYTES && cache.len() > 1 {
            if let Some((_, _, b)) = cache.pop_front() {
                total -= b.parameters.len();
            }
        }
        Ok(encoded)
    }
}

/// A stored model version ready to send.
#[derive(Debug)]
pub struct EncodedModel {
    /// Its organization.
    pub org_id: Uuid,
    /// The tensors.
    pub shape: serde_json::Value,
    /// Parameters.
    pub parameter_count: usize,
    /// Little-endian `f32` values, base64.
    pub parameters: axum::body::Bytes,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// The strategies a job can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Sample-weighted mean (streamed).
    Fedavg,
    /// FedAdam: an Adam step on the server along the FedAvg pseudo-gradient (streamed).
    Fedadam,
    /// Coordinate-wise trimmed mean (robust to poisoned updates).
    TrimmedMean,
    /// Coordinate-wise median (robust to poisoned updates).
    Median,
}

impl StrategyKind {
    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Fedavg => "fedavg",
            StrategyKind::Fedadam => "fedadam",
            StrategyKind::TrimmedMean => "trimmed_mean",
            StrategyKind::Median => "median",
        }
    }
}

/// A job's settings as stored (normalised: every default filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    /// `logistic_regression`, `mlp` or any other name with `parameters`.
    pub architecture: String,
    /// Features (logistic regression, MLP).
    pub input_dim: Option<u32>,
    /// Hidden units (MLP).
    pub hidden_units: Option<u32>,
    /// `relu` or `tanh` (MLP).
    pub activation: Option<String>,
    /// Parameters of the model.
    pub parameters: u32,
    /// Local step size.
    pub learning_rate: f32,
    /// Local batch size.
    pub batch_size: u32,
    /// Local epochs per round.
    pub epochs: u32,
    /// L2 penalty of local training.
    pub l2: f32,
    /// Quorum per round.
    pub min_participants: u32,
    /// Most devices per round.
    pub max_participants: u32,
    /// Capability floors a device must meet to join.
    pub device_capabilities: Option<serde_json::Value>,
    /// Rounds.
    pub rounds: u32,
    /// Seconds from a round's creation to its deadline.
    pub deadline_secs: u64,
    /// Aggregation.
    pub strategy: StrategyKind,
    /// Trimmed share per side (trimmed mean).
    pub trim_fraction: f64,
    /// DP-FedAvg settings, when differential privacy is on.
    pub privacy: Option<PrivacyConfig>,
}

/// DP-FedAvg settings of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyConfig {
    /// Noise multiplier `z` (seed 002's `noise_level`).
    pub noise_multiplier: f64,
    /// Clipping norm `S`.
    pub clipping_norm: f64,
    /// δ at which ε is reported.
    pub target_delta: f64,
    /// The job stops before a round would take ε past this.
    pub budget_epsilon: Option<f64>,
    /// The fixed denominator `m`.
    pub expected_participants: f64,
}

impl JobConfig {
    /// The config stored with `job`.
    ///
    /// # Errors
    /// When the stored JSON is not a config (a bug or a foreign row).
    pub fn of(job: &FlJob) -> Result<JobConfig, String> {
        serde_json::from_value(job.config.clone()).map_err(|e| format!("job config: {e}"))
    }

    /// The initial model (version 0): zeros, or Glorot-initialised for an MLP.
    ///
    /// # Errors
    /// When the shape cannot be built.
    pub fn initial_model(&self) -> Result<Parameters, String> {
        let dim = self.input_dim.unwrap_or(0) as usize;
        let p = match self.architecture.as_str() {
            "logistic_regression" => LogisticRegression::new(dim)
                .and_then(|m| m.parameters())
                .map_err(|e| e.to_string())?,
            "mlp" => {
                let act = match self.activation.as_deref() {
                    Some("tanh") => Activation::Tanh,
                    _ => Activation::Relu,
                };
                let hidden = self.hidden_units.unwrap_or(16) as usize;
                Mlp::new(dim, hidden, act, &mut OsRng)
                    .and_then(|m| m.parameters())
                    .map_err(|e| e.to_string())?
            }
            _ => Parameters::zeros(
                ModelShape::flat(self.parameters as usize).map_err(|e| e.to_string())?,
            ),
        };
        Ok(p)
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            learning_rate: self.learning_rate,
            local_epochs: self.epochs,
            batch_size: self.batch_size,
            clipping_norm: self.privacy.as_ref().map(|p| p.clipping_norm as f32),
        }
    }
}

/// Little-endian `f32` bytes of `values`.
pub fn encode_values(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The `f32` values of little-endian bytes; `None` when the length is not a multiple of 4.
pub fn decode_values(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The stored model `version` of `job` as parameters.
///
/// # Errors
/// A message when it is missing or does not decode.
pub async fn load_model(state: &AppState, job: &str, version: u32) -> Result<Parameters, String> {
    let m = state
        .store()
        .get_fl_model(job, version)
        .await
        .map_err(|e| format!("model {job}.v{version}: {e}"))?;
    let shape: ModelShape =
        serde_json::from_value(m.shape).map_err(|e| format!("model shape: {e}"))?;
    let values = decode_values(&m.parameters).ok_or("model bytes")?;
    Parameters::new(shape, values).map_err(|e| e.to_string())
}

/// The AAD of a round's sealed X25519 secret.
fn round_key_aad(round: &str) -> String {
    format!("qrlp-fl-round-x25519:{round}")
}

/// A new round: a fresh id, X25519 key (sealed) and deadline.
pub fn new_round(key: &DataKey, cfg: &JobConfig, number: u32, model_version: u32) -> NewFlRound {
    let id = format!("round_{}", random_id());
    let rk = RoundKey::generate();
    let deadline_secs = i64::try_from(cfg.deadline_secs).unwrap_or(86_400);
    NewFlRound {
        x25519_public: rk.public_key(),
        x25519_sealed: key.seal(round_key_aad(&id).as_bytes(), rk.secret()),
        id,
        number,
        model_version,
        min_participants: cfg.min_participants,
        max_participants: cfg.max_participants,
        deadline: OffsetDateTime::now_utc() + time::Duration::seconds(deadline_secs),
    }
}

/// The round's X25519 key, unsealed.
///
/// # Errors
/// When it does not open (another data key).
pub fn round_key(key: &DataKey, round: &FlRound) -> Result<RoundKey, String> {
    let secret = key
        .open(round_key_aad(&round.id).as_bytes(), &round.x25519_sealed)
        .map_err(|e| e.to_string())?;
    RoundKey::from_secret(&secret).map_err(|e| e.to_string())
}

/// 16 lowercase hex characters from the operating system's random source.
pub fn random_id() -> String {
    let mut b = [0u8; 8];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The accountant of a DP job, as stored (a new one before the first round).
fn accountant_of(job: &FlJob) -> Result<Accountant, String> {
    match &job.accountant {
        None | Some(serde_json::Value::Null) => Ok(Accountant::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("accountant: {e}")),
    }
}

/// ε spent after `rounds` DP rounds of `p` (q = 1: every device may take part in every
/// round, so no amplification by sampling is claimed).
pub fn epsilon_after(p: &PrivacyConfig, rounds: u64) -> Option<f64> {
    qrlp_federated::accountant::epsilon_for(1.0, p.noise_multiplier, rounds, p.target_delta).ok()
}

/// Summed feature statistics of a round's participants (`{}` when none shared any).
pub fn merged_stats(participants: &[qrlp_store::FlParticipant]) -> serde_json::Value {
    let mut total: Option<FeatureStats> = None;
    for p in participants {
        let Some(s) = p
            .feature_stats
            .as_ref()
            .and_then(|v| serde_json::from_value::<FeatureStats>(v.clone()).ok())
        else {
            continue;
        };
        match &mut total {
            None => total = Some(s),
            Some(t) => {
                // Statistics of another width are left out (the device is misconfigured).
                let _ = t.merge(&s);
            }
        }
    }
    total
        .filter(|t| t.count > 0)
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| serde_json::json!({}))
}

/// Publishes a `training_progress` message for `round`.
pub fn publish_progress(state: &AppState, round: &FlRound) {
    let total = round.joined.max(round.min_participants);
    let pct = if total == 0 {
        0
    } else {
        (u64::from(round.submitted) * 100 / u64::from(total)).min(100)
    };
    state.fleet().publish(
        round.org_id,
        None,
        &[Channel::Training],
        "training_progress",
        serde_json::json!({
            "round_id": round.id, "job_id": round.job_id, "round_number": round.number,
            "status": round.status.as_str(), "completed_devices": round.submitted,
            "total_devices": total, "progress_percentage": pct,
        }),
    );
}

/// The webhook event of a round's start or end.
pub fn round_event(kind: &str, round: &FlRound, extra: serde_json::Value) -> Payload {
    let mut data = serde_json::json!({
        "round_id": round.id, "job_id": round.job_id, "organization_id": round.org_id,
        "round_number": round.number, "participants": round.joined,
        "model_version": format!("{}.v{}", round.job_id, round.model_version),
    });
    if let (Some(d), serde_json::Value::Object(e)) = (data.as_object_mut(), extra) {
        d.extend(e);
    }
    Payload::new(kind)
        .with("timestamp", rfc3339(OffsetDateTime::now_utc()))
        .with("data", data)
}

/// Runs [`tick`] every [`TICK`] until aborted.
pub fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(TICK);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = t.tick() => {}
                () = state.training().wake.notified() => {}
            }
            tick(&state).await;
        }
    })
}

/// One pass: fails rounds below the quorum at their deadline; claims and aggregates rounds
/// whose devices all submitted, rounds past the deadline with a quorum of submissions, and
/// aggregations abandoned by a stopped server.
pub async fn tick(state: &AppState) {
    let now = OffsetDateTime::now_utc();
    let stale = now - CLAIM_LEASE;
    let due = match state.store().fl_due_rounds(now, stale).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "federated rounds unavailable");
            return;
        }
    };
    for r in due {
        let past = r.deadline < now;
        match r.status {
            FlRoundStatus::Pending => {
                let why = format!(
                    "quorum not reached: {} of {} devices joined by the deadline",
                    r.joined, r.min_participants
                );
                fail(state, &r, None, &why).await;
            }
            FlRoundStatus::InProgress if past && r.submitted < r.min_participants => {
                let why = format!(
                    "quorum not reached: {} of {} devices submitted by the deadline",
                    r.submitted, r.min_participants
                );
                fail(state, &r, None, &why).await;
            }
            FlRoundStatus::InProgress | FlRoundStatus::Aggregating => {
                let claim = Uuid::new_v4();
                match state.store().fl_claim_round(&r.id, claim, stale).await {
                    Ok(true) => {
                        if let Ok(now_r) = state.store().fl_round(&r.id).await {
                            publish_progress(state, &now_r);
                        }
                        if let Err(why) = aggregate(state, &r, claim).await {
                            fail(state, &r, Some(claim), &why).await;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, round = %r.id, "claim failed"),
                }
            }
            _ => {}
        }
    }
}

async fn fail(state: &AppState, r: &FlRound, claim: Option<Uuid>, why: &str) {
    let event = round_event(
        qrlp_webhook::catalogue::TRAINING_ROUND_COMPLETED,
        r,
        serde_json::json!({"status": "failed", "reason": why}),
    );
    match state
        .store()
        .fl_fail_round(&r.id, claim, why, Some(&event))
        .await
    {
        Ok(true) => {
            state.fleet().log(
                "warning",
                "training",
                Some(r.org_id),
                format!("round {} failed: {why}", r.id),
            );
            if let Ok(now_r) = state.store().fl_round(&r.id).await {
                publish_progress(state, &now_r);
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, round = %r.id, "could not fail the round"),
    }
}

/// A job's streaming strategy: its sums can be built as the updates arrive. The robust
/// strategies (trimmed mean, median) need every update at once and are not one.
enum Streaming {
    Dp(DpFedAvg),
    Avg(FedAvg),
    Adam(FedAdam),
}

impl Streaming {
    fn of(cfg: &JobConfig, job: &FlJob) -> Result<Option<Streaming>, String> {
        if let Some(p) = &cfg.privacy {
            return Ok(Some(Streaming::Dp(DpFedAvg {
                expected_participants: p.expected_participants,
                noise_multiplier: p.noise_multiplier,
                clipping_norm: p.clipping_norm,
                server_learning_rate: 1.0,
                train: cfg.train_config(),
            })));
        }
        Ok(match cfg.strategy {
            StrategyKind::Fedavg => Some(Streaming::Avg(FedAvg {
                sampling: Sampling::default(),
                train: cfg.train_config(),
            })),
            StrategyKind::Fedadam => {
                let mut s = FedAdam {
                    train: cfg.train_config(),
                    ..FedAdam::default()
                };
                if let Some(v) = &job.strategy_state {
                    s.state = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
                }
                Some(Streaming::Adam(s))
            }
            StrategyKind::TrimmedMean | StrategyKind::Median => None,
        })
    }

    fn begin_round(&self, global: &Parameters) -> Result<qrlp_federated::RoundAccumulator, String> {
        match self {
            Streaming::Dp(s) => s.begin_round(global),
            Streaming::Avg(s) => s.begin_round(global),
            Streaming::Adam(s) => s.begin_round(global),
        }
        .map_err(|e| e.to_string())
    }

    fn finish_round(
        &mut self,
        global: &Parameters,
        acc: qrlp_federated::RoundAccumulator,
        rng: &mut OsRng,
    ) -> Result<Parameters, qrlp_federated::AggregateError> {
        match self {
            Streaming::Dp(s) => s.finish_round(global, acc, rng),
            Streaming::Avg(s) => s.finish_round(global, acc, rng),
            Streaming::Adam(s) => s.finish_round(global, acc, rng),
        }
    }
}

/// This server's running sum of a round: the updates it accepted, added as they arrived,
/// so that the aggregation only reads the updates other servers accepted.
pub struct RunningSum {
    model_version: u32,
    acc: qrlp_federated::RoundAccumulator,
    devices: std::collections::HashSet<String>,
    /// Dropped after this (a round that failed, or that another server aggregated).
    expires: OffsetDateTime,
}

/// Adds an accepted update (`plain`, little-endian `f32`) to this server's running sum of
/// round `r`, for streaming strategies. Best effort: whatever is not added here is read
/// from the store when the round is aggregated.
#[allow(clippy::too_many_arguments)]
pub async fn add_to_running_sum(
    state: &AppState,
    r: &FlRound,
    job: &FlJob,
    cfg: &JobConfig,
    device: &str,
    plain: &[u8],
    num_samples: u64,
) {
    let Ok(Some(s)) = Streaming::of(cfg, job) else {
        return;
    };
    let mut sums = state.training().sums.lock().await;
    let now = OffsetDateTime::now_utc();
    sums.retain(|_, p| p.expires > now);
    if !sums.contains_key(&r.id) {
        // Not for a round already being aggregated (its sum was taken).
        match state.store().fl_round(&r.id).await {
            Ok(now_r) if now_r.status == FlRoundStatus::InProgress => {}
            _ => return,
        }
        let Ok(global) = load_model(state, &r.job_id, r.model_version).await else {
            return;
        };
        let Ok(acc) = s.begin_round(&global) else {
            return;
        };
        sums.insert(
            r.id.clone(),
            RunningSum {
                model_version: r.model_version,
                acc,
                devices: std::collections::HashSet::new(),
                expires: r.deadline + CLAIM_LEASE * 2,
            },
        );
    }
    let Some(sum) = sums.get_mut(&r.id) else {
        return;
    };
    let Some(values) = decode_values(plain) else {
        sums.remove(&r.id);
        return;
    };
    if sum.devices.insert(device.to_string()) {
        if let Err(e) = sum.acc.add(&values, num_samples) {
            // As when read from the store: left out, and counted as offered.
            tracing::warn!(error = %e, device, "update left out");
        }
    }
}

/// The sums of a claimed round: this server's running sum, if it covers only submitted
/// devices, plus the other submitted updates read from the store.
async fn sums(
    state: &AppState,
    r: &FlRound,
    submitted: &[qrlp_store::FlParticipant],
    s: &Streaming,
    global: &Parameters,
) -> Result<qrlp_federated::RoundAccumulator, String> {
    let ids: std::collections::HashSet<&str> =
        submitted.iter().map(|p| p.device_id.as_str()).collect();
    let running = state
        .training()
        .sums
        .lock()
        .await
        .remove(&r.id)
        .filter(|p| {
            p.model_version == r.model_version && p.devices.iter().all(|d| ids.contains(d.as_str()))
        });
    let (mut acc, done) = match running {
        Some(p) => (p.acc, p.devices),
        None => (s.begin_round(global)?, std::collections::HashSet::new()),
    };
    let missing: Vec<qrlp_store::FlParticipant> = submitted
        .iter()
        .filter(|p| !done.contains(&p.device_id))
        .cloned()
        .collect();
    stream(state, r, &missing, &mut acc).await?;
    Ok(acc)
}

/// Submitted updates of a round staged in temporary files, read by coordinate range.
struct StagedUpdates {
    files: Vec<(std::fs::File, u64)>,
    len: usize,
}

impl UpdateSource for StagedUpdates {
    fn participants(&self) -> usize {
        self.files.len()
    }
    fn len(&self, _i: usize) -> usize {
        self.len
    }
    fn num_samples(&self, i: usize) -> u64 {
        self.files[i].1
    }
    fn read(
        &mut self,
        i: usize,
        range: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let f = &mut self.files[i].0;
        f.seek(SeekFrom::Start(range.start as u64 * 4))?;
        let mut buf = vec![0u8; range.len() * 4];
        f.read_exact(&mut buf)?;
        for (o, c) in out.iter_mut().zip(buf.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }
}

fn l2(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// Aggregates a claimed round and completes it (the next round in the same transaction).
async fn aggregate(state: &AppState, r: &FlRound, claim: Uuid) -> Result<(), String> {
    let store = state.store();
    let job = store
        .get_fl_job(&r.job_id)
        .await
        .map_err(|e| e.to_string())?;
    let cfg = JobConfig::of(&job)?;
    let global = load_model(state, &r.job_id, r.model_version).await?;
    let submitted: Vec<_> = store
        .fl_participants(&r.id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.submitted_at.is_some())
        .collect();
    if (submitted.len() as u64) < u64::from(r.min_participants) {
        return Err(format!(
            "quorum not reached: {} of {} devices submitted",
            submitted.len(),
            r.min_participants
        ));
    }
    let mut accountant = accountant_of(&job)?;
    let mut strategy_state = job.strategy_state.clone();
    let mut epsilon = None;
    let next = if let Some(mut s) = Streaming::of(&cfg, &job)? {
        let acc = sums(state, r, &submitted, &s, &global).await?;
        let next = s
            .finish_round(&global, acc, &mut OsRng)
            .map_err(|e| e.to_string())?;
        if let Streaming::Adam(a) = &s {
            strategy_state = serde_json::to_value(&a.state).ok();
        }
        if let Some(p) = &cfg.privacy {
            accountant
                .record(1.0, p.noise_multiplier, 1)
                .map_err(|e| e.to_string())?;
            epsilon = Some(
                accountant
                    .epsilon(p.target_delta)
                    .map_err(|e| e.to_string())?
                    .epsilon,
            );
        }
        next
    } else {
        match cfg.strategy {
            StrategyKind::Fedavg | StrategyKind::Fedadam => {
                return Err("a streaming strategy reached the robust path".into())
            }
            StrategyKind::TrimmedMean | StrategyKind::Median => {
                let mut staged = StagedUpdates {
                    files: Vec::with_capacity(submitted.len()),
                    len: global.values().len(),
                };
                let dir = std::path::Path::new(&state.config().storage.data_dir).join("fl-tmp");
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                for p in &submitted {
                    let blob = store
                        .fl_update(&r.id, &p.device_id)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("an update is missing")?;
                    let mut f = tempfile_in(&dir)?;
                    f.write_all(&blob).map_err(|e| e.to_string())?;
                    staged.files.push((f, p.num_samples.unwrap_or(0)));
                }
                let kind = cfg.strategy;
                let beta = cfg.trim_fraction;
                let g = global.clone();
                let train = cfg.train_config();
                tokio::task::spawn_blocking(move || {
                    let result = if kind == StrategyKind::Median {
                        Median {
                            train,
                            ..Median::default()
                        }
                        .aggregate_train(0, &g, &mut staged, &mut OsRng)
                    } else {
                        TrimmedMean {
                            train,
                            beta,
                            ..TrimmedMean::default()
                        }
                        .aggregate_train(0, &g, &mut staged, &mut OsRng)
                    };
                    result.map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())??
            }
        }
    };
    let change = l2(next
        .values()
        .iter()
        .zip(global.values())
        .map(|(&a, &b)| f64::from(a) - f64::from(b)));
    let base = l2(global.values().iter().map(|&x| f64::from(x))).max(1.0);
    let done = job.rounds_done + 1;
    let mut end_reason = None;
    let more = done < cfg.rounds && {
        match (&cfg.privacy, epsilon) {
            (Some(p), Some(_)) => match p.budget_epsilon {
                Some(b) => {
                    let after = epsilon_after(p, accountant.steps() + 1).unwrap_or(f64::INFINITY);
                    if after > b {
                        end_reason = Some(format!(
                            "privacy budget: another round would spend ε = {after:.4} > {b}"
                        ));
                        false
                    } else {
                        true
                    }
                }
                None => true,
            },
            _ => true,
        }
    };
    let next_round =
        more.then(|| new_round(state.data_key(), &cfg, r.number + 1, r.model_version + 1));
    let accuracy = avg_accuracy(&submitted);
    let event = round_event(
        qrlp_webhook::catalogue::TRAINING_ROUND_COMPLETED,
        r,
        serde_json::json!({
            "status": "completed", "submissions": submitted.len(),
            "new_model_version": format!("{}.v{}", r.job_id, r.model_version + 1),
            "avg_accuracy": accuracy, "epsilon": epsilon,
            "next_round_id": next_round.as_ref().map(|n| n.id.clone()),
        }),
    );
    let shape = serde_json::to_value(next.shape()).map_err(|e| e.to_string())?;
    let completion = RoundCompletion {
        round_id: r.id.clone(),
        claim,
        job_id: r.job_id.clone(),
        version: r.model_version + 1,
        shape,
        parameters: encode_values(next.values()),
        accountant: cfg
            .privacy
            .as_ref()
            .and_then(|_| serde_json::to_value(&accountant).ok()),
        strategy_state,
        epsilon,
        convergence: Some(change / base),
        next: next_round,
        end_reason,
        event: Some(event),
    };
    if store
        .fl_complete_round(&completion)
        .await
        .map_err(|e| e.to_string())?
    {
        state.fleet().log(
            "info",
            "training",
            Some(r.org_id),
            format!(
                "round {} of job {} aggregated from {} updates",
                r.number,
                r.job_id,
                submitted.len()
            ),
        );
        if let Ok(now_r) = store.fl_round(&r.id).await {
            publish_progress(state, &now_r);
        }
    }
    Ok(())
}

fn tempfile_in(dir: &std::path::Path) -> Result<std::fs::File, String> {
    let path = dir.join(format!("update-{}", random_id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    // Unlinked at once: the data lives as long as the handle.
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

/// Streams each submitted update from the store into a FedAvg-like accumulator: one
/// update in memory at a time.
async fn stream(
    state: &AppState,
    r: &FlRound,
    submitted: &[qrlp_store::FlParticipant],
    acc: &mut qrlp_federated::RoundAccumulator,
) -> Result<(), String> {
    for p in submitted {
        let blob = state
            .store()
            .fl_update(&r.id, &p.device_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("an update is missing")?;
        let values = decode_values(&blob).ok_or("a stored update is not f32 values")?;
        drop(blob);
        if let Err(e) = acc.add(&values, p.num_samples.unwrap_or(0)) {
            // Checked at submission; a refusal here leaves the sum untouched.
            tracing::warn!(error = %e, device = %p.device_id, "update left out");
        }
    }
    Ok(())
}

/// Sample-weighted mean of the `accuracy` the participants reported.
pub fn avg_accuracy(participants: &[qrlp_store::FlParticipant]) -> Option<f64> {
    let (mut n, mut sum) = (0f64, 0f64);
    for p in participants {
        let (Some(samples), Some(acc)) = (
            p.num_samples,
            p.metrics
                .as_ref()
                .and_then(|m| m.get("accuracy"))
                .and_then(serde_json::Value::as_f64),
        ) else {
            continue;
        };
        if acc.is_finite() {
            n += samples as f64;
            sum += acc * samples as f64;
        }
    }
    (n > 0.0).then(|| sum / n)
}
