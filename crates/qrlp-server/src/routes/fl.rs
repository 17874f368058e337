//! Seed 002's federated learning under `/api/v1/fl`: training jobs started as rounds
//! (`POST /fl/rounds` starts a job of `rounds` rounds and answers its first round), the
//! rounds' state and progress, the signed device endpoints `join` and `submit`, and the
//! global model of each version.
//!
//! A round of another organization answers 404 `NOT_FOUND`, to API keys and devices
//! alike. Errors use seed 002's shape ([`crate::fleet::FleetError`]). The lifecycle after
//! join and submit (deadlines, aggregation, the next round) is [`crate::training`]'s.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse as _;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use qrlp_federated::train::{FeatureStats, Standardizer};
use qrlp_fleet::pq::KemKeyPair;
use qrlp_fleet::transport::{open_update_in_place, Binding};
use qrlp_store::{FlJob, FlRound, FlRoundStatus, JoinOutcome, NewFlJob, StoreError, SubmitOutcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::authz::{need, role_grants, scopes_allow, Permission};
use crate::fleet::{rfc3339, FleetError, SeedErrorBody};
use crate::routes::devices::{
    decode_b64, identified_device_request, json_body, kem_aad, signed_device_request,
};
use crate::state::AppState;
use crate::training::{
    self, epsilon_after, JobConfig, PrivacyConfig, StrategyKind, MAX_PARAMETERS,
};
use crate::views::{PageQuery, Pagination};

// ----- requests ---------------------------------------------------------------------------

/// `model_config` of `POST /fl/rounds`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ModelConfig {
    /// `logistic_regression` or `mlp` (trained by `qrlp device agent`), or any other name
    /// together with `parameters` (a flat vector the server aggregates without knowing the
    /// model).
    pub architecture: String,
    /// Features per example (`logistic_regression`, `mlp`).
    pub input_dim: Option<u32>,
    /// Hidden units (`mlp`, default 16).
    pub hidden_units: Option<u32>,
    /// `relu` (default) or `tanh` (`mlp`).
    pub activation: Option<String>,
    /// Parameters of another architecture.
    pub parameters: Option<u32>,
    /// Local training settings sent to devices.
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
}

/// Local training settings.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Hyperparameters {
    /// Step size (default 0.1).
    pub learning_rate: Option<f32>,
    /// Examples per step (default 32; 0 = full batch).
    pub batch_size: Option<u32>,
    /// Local epochs per round (default 1).
    pub epochs: Option<u32>,
    /// L2 penalty on weights (default 0).
    pub l2: Option<f32>,
}

/// `participant_criteria`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ParticipantCriteria {
    /// Quorum of each round (default 2).
    pub min_participants: Option<u32>,
    /// Most devices per round (default 100).
    pub max_participants: Option<u32>,
    /// Capability floors a device must meet to join (as enrollment tokens' `capabilities`).
    #[schema(value_type = Option<Object>)]
    pub device_capabilities: Option<serde_json::Value>,
}

/// `privacy_settings`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PrivacySettings {
    /// DP-FedAvg on (strategy `fedavg` only).
    #[serde(default)]
    pub differential_privacy: bool,
    /// The noise multiplier `z`: noise standard deviation over the clipping norm (> 0).
    pub noise_level: Option<f64>,
    /// Clipping norm `S` of each update (default 1).
    pub clipping_norm: Option<f64>,
    /// δ at which ε is reported (default 1e-5).
    pub target_delta: Option<f64>,
    /// Stop the job before a round would spend more than this ε.
    pub budget_epsilon: Option<f64>,
    /// Fixed denominator `m` of DP-FedAvg (default `max_participants`).
    pub expected_participants: Option<f64>,
}

/// Body of `POST /fl/rounds`: seed 002's fields plus the job's length, strategy, deadline.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
  "model_config": {"architecture": "logistic_regression", "input_dim": 30,
    "hyperparameters": {"learning_rate": 0.1, "batch_size": 32, "epochs": 1}},
  "participant_criteria": {"min_participants": 3, "max_participants": 5},
  "privacy_settings": {"differential_privacy": true, "noise_level": 1.0, "clipping_norm": 0.5},
  "rounds": 20, "strategy": "fedavg", "deadline_secs": 120
}))]
pub struct CreateRounds {
    /// The model.
    pub model_config: ModelConfig,
    /// Who takes part.
    #[serde(default)]
    pub participant_criteria: ParticipantCriteria,
    /// Differential privacy.
    #[serde(default)]
    pub privacy_settings: PrivacySettings,
    /// Rounds of the job (default 1, at most 10,000).
    pub rounds: Option<u32>,
    /// `fedavg` (default), `fedadam`, `trimmed_mean` or `median`.
    pub strategy: Option<StrategyKind>,
    /// Share trimmed at each end by `trimmed_mean` (default 0.2, below 0.5).
    pub trim_fraction: Option<f64>,
    /// Seconds from a round's creation to its deadline (default 300, at most 86,400).
    pub deadline_secs: Option<u64>,
}

fn normalise(req: CreateRounds) -> Result<JobConfig, FleetError> {
    let m = &req.model_config;
    let h = &m.hyperparameters;
    let arch = m.architecture.trim().to_string();
    if arch.is_empty() || arch.len() > 64 || arch.chars().any(char::is_control) {
        return Err(FleetError::validation(
            "model_config.architecture",
            "must be 1 to 64 characters",
        ));
    }
    let known = matches!(arch.as_str(), "logistic_regression" | "mlp");
    let dim = m.input_dim.unwrap_or(0);
    let hidden = m.hidden_units.unwrap_or(16);
    let parameters: u64 = match arch.as_str() {
        "logistic_regression" => u64::from(dim) + 1,
        "mlp" => u64::from(hidden) * (u64::from(dim) + 2) + 1,
        _ => u64::from(m.parameters.ok_or_else(|| {
            FleetError::validation(
                "model_config.parameters",
                "is required for an architecture other than logistic_regression or mlp",
            )
        })?),
    };
    if known && !(1..=1_000_000).contains(&dim) {
        return Err(FleetError::validation(
            "model_config.input_dim",
            "must be between 1 and 1000000",
        ));
    }
    if arch == "mlp" && !(1..=4096).contains(&hidden) {
        return Err(FleetError::validation(
            "model_config.hidden_units",
            "must be between 1 and 4096",
        ));
    }
    if arch == "mlp" && !matches!(m.activation.as_deref(), None | Some("relu" | "tanh")) {
        return Err(FleetError::validation(
            "model_config.activation",
            "must be relu or tanh",
        ));
    }
    if parameters == 0 || parameters > MAX_PARAMETERS as u64 {
        return Err(FleetError::validation(
            "model_config",
            format!("the model must have 1 to {MAX_PARAMETERS} parameters"),
        ));
    }
    let lr = h.learning_rate.unwrap_or(0.1);
    if !(lr.is_finite() && lr > 0.0 && lr <= 100.0) {
        return Err(FleetError::validation(
            "model_config.hyperparameters.learning_rate",
            "must be in (0, 100]",
        ));
    }
    let l2 = h.l2.unwrap_or(0.0);
    if !(l2.is_finite() && (0.0..=100.0).contains(&l2)) {
        return Err(FleetError::validation(
            "model_config.hyperparameters.l2",
            "must be in [0, 100]",
        ));
    }
    let epochs = h.epochs.unwrap_or(1);
    if !(1..=1000).contains(&epochs) {
        return Err(FleetError::validation(
            "model_config.hyperparameters.epochs",
            "must be between 1 and 1000",
        ));
    }
    let c = &req.participant_criteria;
    let min = c.min_participants.unwrap_or(2);
    let max = c.max_participants.unwrap_or(100.max(min));
    if !(1..=10_000).contains(&min) {
        return Err(FleetError::validation(
            "participant_criteria.min_participants",
            "must be between 1 and 10000",
        ));
    }
    if max < min || max > 10_000 {
        return Err(FleetError::validation(
            "participant_criteria.max_participants",
            "must be between min_participants and 10000",
        ));
    }
    if let Some(caps) = &c.device_capabilities {
        if !caps.is_object() {
            return Err(FleetError::validation(
                "participant_criteria.device_capabilities",
                "must be an object",
            ));
        }
    }
    let rounds = req.rounds.unwrap_or(1);
    if !(1..=10_000).contains(&rounds) {
        return Err(FleetError::validation(
            "rounds",
            "must be between 1 and 10000",
        ));
    }
    let deadline_secs = req.deadline_secs.unwrap_or(300);
    if !(1..=86_400).contains(&deadline_secs) {
        return Err(FleetError::validation(
            "deadline_secs",
            "must be between 1 and 86400",
        ));
    }
    let strategy = req.strategy.unwrap_or(StrategyKind::Fedavg);
    let trim = req.trim_fraction.unwrap_or(0.2);
    if !(trim.is_finite() && (0.0..0.5).contains(&trim)) {
        return Err(FleetError::validation(
            "trim_fraction",
            "must be in [0, 0.5)",
        ));
    }
    let p = &req.privacy_settings;
    let privacy = if p.differential_privacy {
        if strategy != StrategyKind::Fedavg {
            return Err(FleetError::validation(
                "strategy",
                "differential privacy runs as DP-FedAvg: use fedavg",
            ));
        }
        let z = p.noise_level.ok_or_else(|| {
            FleetError::validation(
                "privacy_settings.noise_level",
                "is required with differential_privacy (the noise multiplier z)",
            )
        })?;
        if !(z.is_finite() && z > 0.0 && z <= 1000.0) {
            return Err(FleetError::validation(
                "privacy_settings.noise_level",
                "must be in (0, 1000]",
            ));
        }
        let s = p.clipping_norm.unwrap_or(1.0);
        if !(s.is_finite() && s > 0.0) {
            return Err(FleetError::validation(
                "privacy_settings.clipping_norm",
                "must be positive",
            ));
        }
        let delta = p
            .target_delta
            .unwrap_or(qrlp_federated::accountant::DEFAULT_DELTA);
        if !(delta.is_finite() && delta > 0.0 && delta < 1.0) {
            return Err(FleetError::validation(
                "privacy_settings.target_delta",
                "must be in (0, 1)",
            ));
        }
        let m = p.expected_participants.unwrap_or(f64::from(max));
        if !(m.is_finite() && m >= 1.0) {
            return Err(FleetError::validation(
                "privacy_settings.expected_participants",
                "must be at least 1",
            ));
        }
        let cfg = PrivacyConfig {
            noise_multiplier: z,
            clipping_norm: s,
            target_delta: delta,
            budget_epsilon: p.budget_epsilon,
            expected_participants: m,
        };
        if let Some(b) = p.budget_epsilon {
            let first = epsilon_after(&cfg, 1).unwrap_or(f64::INFINITY);
            if !(b.is_finite() && b > 0.0) || first > b {
                return Err(FleetError::validation(
                    "privacy_settings.budget_epsilon",
                    format!("must be positive and at least one round's ε ({first:.4})"),
                ));
            }
        }
        Some(cfg)
    } else {
        None
    };
    Ok(JobConfig {
        architecture: arch,
        input_dim: known.then_some(dim),
        hidden_units: (m.architecture.trim() == "mlp").then_some(hidden),
        activation: (m.architecture.trim() == "mlp")
            .then(|| m.activation.clone().unwrap_or_else(|| "relu".into())),
        parameters: u32::try_from(parameters).unwrap_or(u32::MAX),
        learning_rate: lr,
        batch_size: h.batch_size.unwrap_or(32),
        epochs,
        l2,
        min_participants: min,
        max_participants: max,
        device_capabilities: c.device_capabilities.clone(),
        rounds,
        deadline_secs,
        strategy,
        trim_fraction: trim,
        privacy,
    })
}

// ----- views ------------------------------------------------------------------------------

/// `progress` of a round.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    /// Devices that submitted.
    pub completed_devices: u32,
    /// Sample-weighted mean of the accuracy devices reported (on their local data).
    pub avg_accuracy: Option<f64>,
    /// ‖new − old‖ / max(‖old‖, 1) of the model this round produced (completed rounds).
    pub convergence_metric: Option<f64>,
}

/// Privacy spent by a DP job.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyView {
    /// Always true here (absent for jobs without DP).
    pub differential_privacy: bool,
    /// `z`.
    pub noise_multiplier: f64,
    /// `S`.
    pub clipping_norm: f64,
    /// δ.
    pub target_delta: f64,
    /// Sampling rate assumed by the accountant (1: no amplification claimed).
    pub sampling_rate: f64,
    /// Cumulative ε of the job after this round (after the rounds completed so far, for
    /// a round not completed yet).
    pub epsilon: Option<f64>,
    /// Rounds the ε covers.
    pub rounds_accounted: u32,
    /// The budget, if any.
    pub budget_epsilon: Option<f64>,
}

/// The job a round belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// `job_…`.
    pub id: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// Rounds asked.
    pub rounds: u32,
    /// Rounds completed.
    pub completed_rounds: u32,
    /// Why it ended early.
    pub reason: Option<String>,
    /// The job's latest round.
    pub current_round_id: Option<String>,
    /// The latest model version, `job_….vN`.
    pub latest_model_version: String,
    /// `fedavg`, `fedadam`, `trimmed_mean` or `median`.
    pub strategy: StrategyKind,
    /// `logistic_regression`, `mlp`, ...
    pub architecture: String,
}

/// A round in seed 002's shape, with its job and privacy.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
  "id": "round_8f0c2a1b3d4e5f60", "status": "in_progress", "started_at": "2024-01-15T10:00:00Z",
  "participants": 5, "target_participants": 5, "model_version": "job_1a2b3c4d5e6f7a8b.v4",
  "progress": {"completed_devices": 3, "avg_accuracy": 0.962, "convergence_metric": null}
}))]
pub struct RoundView {
    /// `round_…`.
    pub id: String,
    /// `pending`, `in_progress`, `aggregating`, `completed` or `failed`.
    #[schema(value_type = String)]
    pub status: FlRoundStatus,
    /// When the quorum joined.
    pub started_at: Option<String>,
    /// Devices joined.
    pub participants: u32,
    /// `max_participants`.
    pub target_participants: u32,
    /// The model version the round starts from (`GET /fl/models/{version}`).
    pub model_version: String,
    /// Submissions and figures.
    pub progress: ProgressView,
    /// Its job.
    pub job_id: String,
    /// 1-based position in the job.
    pub round_number: u32,
    /// Quorum.
    pub min_participants: u32,
    /// Deadline.
    pub deadline: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// When it completed or failed.
    pub completed_at: Option<String>,
    /// Privacy spent (DP jobs).
    pub privacy: Option<PrivacyView>,
    /// The job.
    pub job: JobView,
}

/// `GET /fl/rounds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoundList {
    /// This page, newest first.
    pub rounds: Vec<RoundView>,
    /// Paging.
    pub pagination: Pagination,
}

async fn round_view(
    state: &AppState,
    r: &FlRound,
    job: &FlJob,
    current: Option<String>,
) -> Result<RoundView, FleetError> {
    let cfg = JobConfig::of(job).map_err(FleetError::internal)?;
    let participants = state
        .store()
        .fl_participants(&r.id)
        .await
        .map_err(FleetError::store)?;
    let privacy = cfg.privacy.as_ref().map(|p| {
        let rounds = if r.status == FlRoundStatus::Completed {
            r.number
        } else {
            r.number.saturating_sub(1).min(job.rounds_done)
        };
        PrivacyView {
            differential_privacy: true,
            noise_multiplier: p.noise_multiplier,
            clipping_norm: p.clipping_norm,
            target_delta: p.target_delta,
            sampling_rate: 1.0,
            epsilon: r.epsilon.or_else(|| {
                if rounds == 0 {
                    Some(0.0)
                } else {
                    epsilon_after(p, u64::from(rounds))
                }
            }),
            rounds_accounted: rounds,
            budget_epsilon: p.budget_epsilon,
        }
    });
    Ok(RoundView {
        id: r.id.clone(),
        status: r.status,
        started_at: r.started_at.map(rfc3339),
        participants: r.joined,
        target_participants: r.max_participants,
        model_version: format!("{}.v{}", r.job_id, r.model_version),
        progress: ProgressView {
            completed_devices: r.submitted,
            avg_accuracy: training::avg_accuracy(&participants),
            convergence_metric: r.convergence,
        },
        job_id: r.job_id.clone(),
        round_number: r.number,
        min_participants: r.min_participants,
        deadline: rfc3339(r.deadline),
        reason: r.reason.clone(),
        created_at: rfc3339(r.created_at),
        completed_at: r.completed_at.map(rfc3339),
        privacy,
        job: JobView {
            id: job.id.clone(),
            status: job.status.clone(),
            rounds: job.rounds_total,
            completed_rounds: job.rounds_done,
            reason: job.reason.clone(),
            current_round_id: current,
            latest_model_version: format!("{}.v{}", job.id, job.rounds_done),
            strategy: cfg.strategy,
            architecture: cfg.architecture,
        },
    })
}

fn round_not_found(id: &str) -> FleetError {
    let shown: String = id.chars().take(80).collect();
    FleetError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Training round '{shown}' not found"),
    )
    .with("round_id", shown)
}

fn store_round(id: &str) -> impl Fn(StoreError) -> FleetError + '_ {
    move |e| match e {
        StoreError::NotFound => round_not_found(id),
        e => FleetError::store(e),
    }
}

// ----- API-key routes ---------------------------------------------------------------------

/// Query of `GET /fl/rounds`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RoundQuery {
    /// `pending`, `in_progress`, `aggregating`, `completed` or `failed`.
    pub status: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    pub size: Option<u32>,
}

/// List the organization's training rounds, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/fl/rounds",
    tag = "federated",
    params(RoundQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of rounds", body = RoundList),
        (status = 422, description = "Invalid parameter", body = SeedErrorBody)
    )
)]
pub async fn list_rounds(
    State(state): State<AppState>,
    auth: Auth<need::TrainingRead>,
    Query(q): Query<RoundQuery>,
) -> Result<Json<RoundList>, FleetError> {
    let page = PageQuery {
        page: q.page,
        size: q.size,
    }
    .request()?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(FlRoundStatus::parse(s).ok_or_else(|| {
            FleetError::validation(
                "status",
                "must be pending, in_progress, aggregating, completed or failed",
            )
        })?),
    };
    let org = auth.org()?.organization.id;
    let p = state
        .store()
        .list_fl_rounds(org, status, page)
        .await
        .map_err(FleetError::store)?;
    let mut rounds = Vec::with_capacity(p.items.len());
    for r in &p.items {
        let job = state
            .store()
            .get_fl_job(&r.job_id)
            .await
            .map_err(FleetError::store)?;
        rounds.push(round_view(&state, r, &job, None).await?);
    }
    Ok(Json(RoundList {
        rounds,
        pagination: Pagination::of(&p),
    }))
}

/// Start a training job of `rounds` rounds; answers its first round (pending until
/// `min_participants` devices join). One job runs at a time per organization.
#[utoipa::path(
    post,
    path = "/api/v1/fl/rounds",
    tag = "federated",
    request_body = CreateRounds,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "The job's first round", body = RoundView),
        (status = 409, description = "`TRAINING_IN_PROGRESS`: the organization has a running job", body = SeedErrorBody),
        (status = 422, description = "`VALIDATION_ERROR`", body = SeedErrorBody)
    )
)]
pub async fn create_rounds(
    State(state): State<AppState>,
    auth: Auth<need::TrainingWrite>,
    body: Bytes,
) -> Result<(StatusCode, Json<RoundView>), FleetError> {
    let org = auth.org()?.organization.id;
    let req: CreateRounds = json_body(&body)?;
    let cfg = normalise(req)?;
    let initial = cfg.initial_model().map_err(FleetError::internal)?;
    let job_id = format!("job_{}", training::random_id());
    let first = training::new_round(state.data_key(), &cfg, 1, 0);
    let ctx = auth.audit();
    let (job, round) = state
        .store()
        .create_fl_job(
            &ctx,
            NewFlJob {
                id: job_id.clone(),
                org_id: org,
                config: serde_json::to_value(&cfg).map_err(FleetError::internal)?,
                rounds_total: cfg.rounds,
                accountant: None,
                shape: serde_json::to_value(initial.shape()).map_err(FleetError::internal)?,
                parameters: training::encode_values(initial.values()),
                first_round: first,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => FleetError::new(
                StatusCode::CONFLICT,
                "TRAINING_IN_PROGRESS",
                "The organization has a training job running; wait for it to end",
            ),
            e => FleetError::store(e),
        })?;
    state.fleet().log(
        "info",
        "training",
        Some(org),
        format!("training job {job_id} started: {} rounds", cfg.rounds),
    );
    training::publish_progress(&state, &round);
    let view = round_view(&state, &round, &job, Some(round.id.clone())).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Get a training round: state, progress, privacy spent, and its job.
#[utoipa::path(
    get,
    path = "/api/v1/fl/rounds/{round_id}",
    tag = "federated",
    params(("round_id" = String, Path, description = "`round_…`")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The round", body = RoundView),
        (status = 404, description = "`NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn get_round(
    State(state): State<AppState>,
    auth: Auth<need::TrainingRead>,
    Path(round_id): Path<String>,
) -> Result<Json<RoundView>, FleetError> {
    let org = auth.org()?.organization.id;
    let r = state
        .store()
        .get_fl_round(org, &round_id)
        .await
        .map_err(store_round(&round_id))?;
    let job = state
        .store()
        .get_fl_job(&r.job_id)
        .await
        .map_err(FleetError::store)?;
    let current = state
        .store()
        .latest_fl_round(&job.id)
        .await
        .ok()
        .map(|l| l.id);
    Ok(Json(round_view(&state, &r, &job, current).await?))
}

// ----- device routes ----------------------------------------------------------------------

/// Body of a join (every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The device's feature count, `Σx` and `Σx²` (no example leaves the device); summed
    /// over the first round's participants into the job's standardisation.
    #[schema(value_type = Option<Object>)]
    pub feature_stats: Option<serde_json::Value>,
}

/// Local training settings in a join answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingSettings {
    /// `logistic_regression`, `mlp`, ...
    pub architecture: String,
    /// Features.
    pub input_dim: Option<u32>,
    /// Hidden units (MLP).
    pub hidden_units: Option<u32>,
    /// `relu` or `tanh` (MLP).
    pub activation: Option<String>,
    /// Step size.
    pub learning_rate: f32,
    /// Examples per step.
    pub batch_size: u32,
    /// Local epochs.
    pub epochs: u32,
    /// L2 penalty.
    pub l2: f32,
    /// Clip the update (new − global) to this L2 norm before sending (DP jobs).
    pub clipping_norm: Option<f64>,
}

/// How to encrypt the update (`docs/federated.md`, Transport).
#[derive(Debug, Serialize, ToSchema)]
pub struct TransportView {
    /// `ML-KEM-768+X25519/HKDF-SHA256/ChaCha20-Poly1305`.
    pub algorithm: &'static str,
    /// The round's X25519 public key, base64.
    pub round_key: String,
    /// The server's ML-KEM-768 encapsulation key for this device, base64 (as given at
    /// registration).
    pub kem_key: String,
}

/// Answer of a join.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinAnswer {
    /// `round_…`.
    pub round_id: String,
    /// The round's state.
    #[schema(value_type = String)]
    pub status: FlRoundStatus,
    /// True when the device may train now (`in_progress` and the standardisation known).
    pub ready: bool,
    /// The model to start from (`GET /fl/models/{version}`).
    pub model_version: String,
    /// Position in the job.
    pub round_number: u32,
    /// Rounds of the job.
    pub total_rounds: u32,
    /// Deadline for the submission.
    pub deadline: String,
    /// Local training.
    pub training: TrainingSettings,
    /// Mean and standard deviation per feature, from the federation's summed statistics.
    #[schema(value_type = Option<Object>)]
    pub standardization: Option<Standardizer>,
    /// Encryption of the update.
    pub transport: TransportView,
}

fn conflict(reason: &'static str, message: &str) -> FleetError {
    FleetError::new(StatusCode::CONFLICT, "CONFLICT", message).with("reason", reason)
}

/// The job's standardisation once round 1 started (computed then, from the sums the
/// first round's participants shared).
async fn standardization(
    state: &AppState,
    job: &FlJob,
    r: &FlRound,
) -> Result<(bool, Option<Standardizer>), FleetError> {
    let stats = match &job.feature_stats {
        Some(s) => Some(s.clone()),
        None if r.number == 1 && r.status != FlRoundStatus::Pending => {
            let ps = state
                .store()
                .fl_participants(&r.id)
                .await
                .map_err(FleetError::store)?;
            let merged = training::merged_stats(&ps);
            state
                .store()
                .set_fl_feature_stats(&job.id, &merged)
                .await
                .map_err(FleetError::store)?
        }
        None => None,
    };
    let known = stats.is_some();
    let s = stats
        .and_then(|v| serde_json::from_value::<FeatureStats>(v).ok())
        .and_then(|f| f.standardizer().ok());
    Ok((known, s))
}

/// Join a training round (signed device request). Idempotent: a device that joined gets
/// the same answer again, with `ready` once the quorum joined; poll it until then.
#[utoipa::path(
    post,
    path = "/api/v1/fl/rounds/{round_id}/join",
    tag = "federated",
    params(("round_id" = String, Path, description = "`round_…`")),
    request_body = JoinRequest,
    security(("device_signature" = [])),
    responses(
        (status = 200, description = "Joined", body = JoinAnswer),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody),
        (status = 403, description = "`INSUFFICIENT_PERMISSIONS`: the device lacks the round's capabilities", body = SeedErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = SeedErrorBody),
        (status = 409, description = "`CONFLICT`: `round_full` or `round_closed`", body = SeedErrorBody)
    )
)]
pub async fn join(
    State(state): State<AppState>,
    Path(round_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<JoinAnswer>, FleetError> {
    let (auth, _) = signed_device_request(&state, &method, &uri, &headers, &body).await?;
    let device = &auth.device;
    let req: JoinRequest = if body.is_empty() {
        JoinRequest::default()
    } else {
        json_body(&body)?
    };
    let r = state
        .store()
        .get_fl_round(device.org_id, &round_id)
        .await
        .map_err(store_round(&round_id))?;
    let job = state
        .store()
        .get_fl_job(&r.job_id)
        .await
        .map_err(FleetError::store)?;
    let cfg = JobConfig::of(&job).map_err(FleetError::internal)?;
    if let Some(caps) = &cfg.device_capabilities {
        qrlp_fleet::enroll::capabilities_satisfy(caps, &device.capabilities).map_err(|m| {
            FleetError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                format!("The device does not meet the round's capabilities: {m}"),
            )
            .with("reason", "capabilities")
        })?;
    }
    if let Some(s) = &req.feature_stats {
        let f: FeatureStats = serde_json::from_value(s.clone())
            .map_err(|e| FleetError::validation("feature_stats", e))?;
        let dim = cfg.input_dim.unwrap_or(0) as usize;
        let finite = f.sum.iter().chain(&f.sum_sq).all(|x| x.is_finite());
        if f.sum.len() != dim || f.sum_sq.len() != dim || !finite {
            return Err(FleetError::validation(
                "feature_stats",
                format!("needs count and {dim} finite sums and sums of squares"),
            ));
        }
    }
    let started = round_event(&r);
    let outcome = state
        .store()
        .fl_join(
            &r.id,
            &device.id,
            req.feature_stats.as_ref(),
            Some(&started),
        )
        .await
        .map_err(FleetError::store)?;
    let r = match outcome {
        JoinOutcome::Joined { round, started } => {
            if started {
                state.fleet().log(
                    "info",
                    "training",
                    Some(round.org_id),
                    format!("round {} started with {} devices", round.id, round.joined),
                );
            }
            training::publish_progress(&state, &round);
            round
        }
        JoinOutcome::Already(round) => round,
        JoinOutcome::Full(_) => {
            return Err(conflict(
                "round_full",
                "The round has its maximum number of participants",
            ))
        }
        JoinOutcome::Closed(_) => {
            return Err(conflict(
                "round_closed",
                "The round no longer accepts devices",
            ))
        }
    };
    let (known, standardization) = standardization(&state, &job, &r).await?;
    Ok(Json(JoinAnswer {
        round_id: r.id.clone(),
        status: r.status,
        ready: r.status == FlRoundStatus::InProgress && known,
        model_version: format!("{}.v{}", r.job_id, r.model_version),
        round_number: r.number,
        total_rounds: job.rounds_total,
        deadline: rfc3339(r.deadline),
        training: TrainingSettings {
            architecture: cfg.architecture.clone(),
            input_dim: cfg.input_dim,
            hidden_units: cfg.hidden_units,
            activation: cfg.activation.clone(),
            learning_rate: cfg.learning_rate,
            batch_size: cfg.batch_size,
            epochs: cfg.epochs,
            l2: cfg.l2,
            clipping_norm: cfg.privacy.as_ref().map(|p| p.clipping_norm),
        },
        standardization,
        transport: TransportView {
            algorithm: "ML-KEM-768+X25519/HKDF-SHA256/ChaCha20-Poly1305",
            round_key: B64.encode(&r.x25519_public),
            kem_key: B64.encode(&device.kem_public),
        },
    }))
}

fn round_event(r: &FlRound) -> qrlp_webhook::Payload {
    training::round_event(
        qrlp_webhook::catalogue::TRAINING_ROUND_STARTED,
        r,
        serde_json::json!({"min_participants": r.min_participants,
            "max_participants": r.max_participants, "deadline": rfc3339(r.deadline)}),
    )
}

/// Body of a submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Base64 envelope: the new parameters (little-endian `f32`) sealed to the server
    /// (`docs/federated.md`, Transport).
    pub update: String,
    /// Training examples behind the update (FedAvg weight), at least 1.
    pub num_samples: u64,
    /// What the device measured on its data (`accuracy`, `loss`, ...), at most 4 KiB.
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Value>,
}

/// [`SubmitRequest`] as parsed: the base64 update borrowed from the body, not copied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody<'a> {
    #[serde(borrow)]
    update: std::borrow::Cow<'a, str>,
    num_samples: u64,
    metrics: Option<serde_json::Value>,
}

/// The body of `request` in one buffer sized by its `Content-Length`: at most `limit`
/// bytes, else 413 `PAYLOAD_TOO_LARGE`.
async fn read_body(request: axum::extract::Request, limit: usize) -> Result<Vec<u8>, FleetError> {
    use futures_util::StreamExt as _;
    let too_large = || {
        FleetError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("Request body is too large (max {limit} bytes)"),
        )
        .with("limit_bytes", limit)
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0));
    let mut chunks = request.into_body().into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| FleetError::validation("body", "could not be read"))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Answer of a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitAnswer {
    /// `round_…`.
    pub round_id: String,
    /// True.
    pub accepted: bool,
    /// Devices that submitted so far.
    pub completed_devices: u32,
    /// Devices joined.
    pub total_devices: u32,
}

/// Submit training results (signed device request): the new parameters encrypted to the
/// server, once per device and round, while the round is in progress.
#[utoipa::path(
    post,
    path = "/api/v1/fl/rounds/{round_id}/submit",
    tag = "federated",
    params(("round_id" = String, Path, description = "`round_…`")),
    request_body = SubmitRequest,
    security(("device_signature" = [])),
    responses(
        (status = 200, description = "Accepted", body = SubmitAnswer),
        (status = 400, description = "`INVALID_QUANTUM_KEY`: the envelope does not open for this round and device (replayed, another round, altered)", body = SeedErrorBody),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = SeedErrorBody),
        (status = 409, description = "`CONFLICT`: `not_started`, `round_closed` (late), `deadline_passed`, `not_joined` or `duplicate`", body = SeedErrorBody),
        (status = 422, description = "`VALIDATION_ERROR`: wrong shape, non-finite values, bad fields", body = SeedErrorBody)
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    Path(round_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Json<SubmitAnswer>, FleetError> {
    // The device is known before its body is read, and the body is read only with a place
    // in the submission gate: memory holds a bounded number of updates, however many
    // devices submit at once.
    let identified = state.fleet().identify(&state, &headers).await?;
    let _place = state.training().submission_place().await;
    let body = read_body(request, training::SUBMIT_BODY_LIMIT).await?;
    let (auth, _) = identified_device_request(&state, identified, &method, &uri, &body).await?;
    let device = &auth.device;
    let SubmitBody {
        update,
        num_samples,
        metrics,
    } = json_body(&body)?;
    let r = state
        .store()
        .get_fl_round(device.org_id, &round_id)
        .await
        .map_err(store_round(&round_id))?;
    match r.status {
        FlRoundStatus::Pending => {
            return Err(conflict(
                "not_started",
                "The round waits for its quorum; submit once it is in progress",
            ))
        }
        FlRoundStatus::InProgress => {}
        _ => {
            return Err(conflict(
                "round_closed",
                "The round no longer accepts submissions",
            ))
        }
    }
    if time::OffsetDateTime::now_utc() > r.deadline {
        return Err(conflict(
            "deadline_passed",
            "The round's deadline has passed",
        ));
    }
    if num_samples == 0 || num_samples > 1_000_000_000_000 {
        return Err(FleetError::validation(
            "num_samples",
            "must be between 1 and 10^12",
        ));
    }
    let metrics = metrics.unwrap_or_else(|| serde_json::json!({}));
    let mlen = serde_json::to_vec(&metrics)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if !metrics.is_object() || mlen > 4096 {
        return Err(FleetError::validation(
            "metrics",
            "must be an object of at most 4 KiB",
        ));
    }
    let envelope = decode_b64("update", &update, training::SUBMIT_BODY_LIMIT)?;
    drop(update);
    drop(body);
    let seed = state
        .data_key()
        .open(kem_aad(&device.id).as_bytes(), &auth.kem_sealed)
        .map_err(FleetError::internal)?;
    let kem = KemKeyPair::from_seed(&seed).map_err(FleetError::internal)?;
    let round_key = training::round_key(state.data_key(), &r).map_err(FleetError::internal)?;
    let binding = Binding {
        round_id: &r.id,
        device_id: &device.id,
        model_version: r.model_version,
    };
    let plain = open_update_in_place(&kem, &round_key, &binding, envelope).map_err(|_| {
        FleetError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUANTUM_KEY",
            "The update does not open with this round's keys for this device",
        )
        .with("reason", "envelope")
    })?;
    let job = state
        .store()
        .get_fl_job(&r.job_id)
        .await
        .map_err(FleetError::store)?;
    let cfg = JobConfig::of(&job).map_err(FleetError::internal)?;
    let expected = cfg.parameters as usize;
    if plain.len() != expected * 4 {
        let actual = plain.len() as f64 / 4.0;
        return Err(FleetError::validation(
            "update",
            format!("has {actual} values, the model has {expected}"),
        )
        .with("expected", expected)
        .with("actual", actual));
    }
    if let Some(i) = plain
        .chunks_exact(4)
        .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(
            FleetError::validation("update", "holds a NaN or an infinity").with("index", i),
        );
    }
    let outcome = state
        .store()
        .fl_submit(&r.id, &device.id, num_samples, &metrics, &plain)
        .await
        .map_err(FleetError::store)?;
    match outcome {
        SubmitOutcome::Accepted { submitted, joined } => {
            training::add_to_running_sum(&state, &r, &job, &cfg, &device.id, &plain, num_samples)
                .await;
            if submitted >= joined {
                // Everyone joined has submitted: aggregate now, not at the next tick.
                state.training().wake();
            }
            if let Ok(now_r) = state.store().fl_round(&r.id).await {
                training::publish_progress(&state, &now_r);
            }
            Ok(Json(SubmitAnswer {
                round_id: r.id,
                accepted: true,
                completed_devices: submitted,
                total_devices: joined,
            }))
        }
        SubmitOutcome::NotJoined => {
            Err(conflict("not_joined", "The device did not join this round"))
        }
        SubmitOutcome::Duplicate => Err(conflict(
            "duplicate",
            "The device already submitted in this round",
        )),
        SubmitOutcome::NotInProgress(_) => Err(conflict(
            "round_closed",
            "The round no longer accepts submissions",
        )),
    }
}

// ----- models -----------------------------------------------------------------------------

/// A global model version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// `job_….vN`.
    pub version: String,
    /// Its job.
    pub job_id: String,
    /// N: 0 for the initial model, `n` after round `n`.
    pub version_number: u32,
    /// The tensors (`name`, `dims`) in storage order.
    #[schema(value_type = Object)]
    pub shape: serde_json::Value,
    /// Parameters, little-endian `f32`, base64.
    pub parameters: String,
    /// Parameter count.
    pub parameter_count: usize,
    /// The job's architecture.
    pub architecture: String,
    /// The MLP's hidden activation (`relu` or `tanh`); absent for other architectures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    /// The job's feature standardisation, if any.
    #[schema(value_type = Option<Object>)]
    pub standardization: Option<Standardizer>,
    /// Creation time.
    pub created_at: String,
}

/// Pull a global model version: a signed device request of the organization, or an API
/// key with `training:read`.
#[utoipa::path(
    get,
    path = "/api/v1/fl/models/{version}",
    tag = "federated",
    params(("version" = String, Path, description = "`job_….vN`")),
    security(("api_key" = []), ("device_signature" = [])),
    responses(
        (status = 200, description = "The model", body = ModelView),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody),
        (status = 403, description = "`INSUFFICIENT_PERMISSIONS`", body = SeedErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn get_model(
    State(state): State<AppState>,
    Path(version): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<axum::response::Response, FleetError> {
    let org = if headers.contains_key(qrlp_fleet::signing::HEADER_SIGNATURE) {
        signed_device_request(&state, &method, &uri, &headers, b"")
            .await?
            .0
            .device
            .org_id
    } else {
        let key = crate::auth::api_key_of(&headers).ok_or_else(|| {
            FleetError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "An API key or a device signature is required",
            )
        })?;
        let p = state.auth().api_key(key).await?;
        let perm = Permission::TrainingRead;
        if !(role_grants(p.role, perm) && scopes_allow(&p.key.scopes, perm)) {
            let role = p.role.as_str();
            return Err(FleetError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                format!(
                    "This needs the training:read permission, which your role ({role}) or key scopes do not grant"
                ),
            )
            .with("required", perm.scope())
            .with("role", role));
        }
        p.organization.id
    };
    let not_found = || {
        let shown: String = version.chars().take(80).collect();
        FleetError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Model version '{shown}' not found"),
        )
        .with("version", shown)
    };
    let (job_id, n) = version.rsplit_once(".v").ok_or_else(not_found)?;
    let n: u32 = n.parse().map_err(|_| not_found())?;
    let job = match state.store().get_fl_job(job_id).await {
        Ok(j) if j.org_id == org => j,
        Ok(_) | Err(StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(FleetError::store(e)),
    };
    let m = match state.training().model(state.store(), job_id, n).await {
        Ok(m) if m.org_id == org => m,
        Ok(_) | Err(StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(FleetError::store(e)),
    };
    let cfg = JobConfig::of(&job).map_err(FleetError::internal)?;
    let standardization = job
        .feature_stats
        .and_then(|v| serde_json::from_value::<FeatureStats>(v).ok())
        .and_then(|f| f.standardizer().ok());
    let view = ModelView {
        version: format!("{job_id}.v{n}"),
        job_id: job_id.to_string(),
        version_number: n,
        parameter_count: m.parameter_count,
        parameters: String::new(),
        shape: m.shape.clone(),
        architecture: cfg.architecture,
        activation: cfg.activation,
        standardization,
        created_at: rfc3339(m.created_at),
    };
    // The parameters are the cached base64 itself, not a copy per request: the answer is
    // `{"parameters":"…",` followed by the other fields.
    let mut rest = serde_json::to_value(&view).map_err(FleetError::internal)?;
    if let Some(o) = rest.as_object_mut() {
        o.remove("parameters");
    }
    let rest = serde_json::to_vec(&rest).map_err(FleetError::internal)?;
    let mut tail = Vec::with_capacity(rest.len() + 1);
    tail.extend_from_slice(b"\",");
    tail.extend_from_slice(rest.get(1..).unwrap_or(&b"}"[..]));
    let head = Bytes::from_static(b"{\"parameters\":\"");
    let len = head.len() + m.parameters.len() + tail.len();
    let chunks = [head, m.parameters.clone(), Bytes::from(tail)];
    let body = axum::body::Body::from_stream(futures_util::stream::iter(
        chunks.map(Ok::<_, std::convert::Infallible>),
    ));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        body,
    )
        .into_response())
}

// ----- discovery --------------------------------------------------------------------------

/// An open round as a device sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenRound {
    /// `round_…`.
    pub round_id: String,
    /// `pending` or `in_progress`.
    #[schema(value_type = String)]
    pub status: FlRoundStatus,
    /// Its job.
    pub job_id: String,
    /// Position in the job.
    pub round_number: u32,
    /// Whether this device joined it.
    pub joined: bool,
    /// Whether this device submitted.
    pub submitted: bool,
    /// Deadline.
    pub deadline: String,
}

/// `GET /fl/open-rounds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenRounds {
    /// Open rounds of the device's organization, oldest first.
    pub rounds: Vec<OpenRound>,
}

/// The organization's rounds a device may join or submit to (signed device request): how
/// an agent finds work.
#[utoipa::path(
    get,
    path = "/api/v1/fl/open-rounds",
    tag = "federated",
    security(("device_signature" = [])),
    responses(
        (status = 200, description = "Open rounds", body = OpenRounds),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody)
    )
)]
pub async fn open_rounds(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<OpenRounds>, FleetError> {
    let (auth, _) = signed_device_request(&state, &method, &uri, &headers, b"").await?;
    let device = &auth.device;
    let mut rounds = Vec::new();
    for status in [FlRoundStatus::Pending, FlRoundStatus::InProgress] {
        let page = state
            .store()
            .list_fl_rounds(
                device.org_id,
                Some(status),
                qrlp_store::PageRequest { page: 1, size: 100 },
            )
            .await
            .map_err(FleetError::store)?;
        for r in page.items {
            let me = state
                .store()
                .fl_participants(&r.id)
                .await
                .map_err(FleetError::store)?
                .into_iter()
                .find(|p| p.device_id == device.id);
            rounds.push(OpenRound {
                round_id: r.id,
                status: r.status,
                job_id: r.job_id,
                round_number: r.number,
                joined: me.is_some(),
                submitted: me.is_some_and(|p| p.submitted_at.is_some()),
                deadline: rfc3339(r.deadline),
            });
        }
    }
    rounds.reverse();
    Ok(Json(OpenRounds { rounds }))
}
