//! Seed 002's health, status and monitoring routes: `GET /health` (public), `GET /status`,
//! `GET /monitoring/metrics` (the Prometheus text of `/metrics` plus the fleet's gauges),
//! `GET /monitoring/alerts` and `GET /monitoring/logs` (the fleet's bounded ring of recent
//! log events, [`crate::fleet::LOG_RING_CAPACITY`] entries).

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::authz::need;
use crate::fleet::{rfc3339, FleetError, LogEvent, SeedErrorBody};
use crate::state::AppState;

/// `GET /health`, in the seed's shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "healthy", "timestamp": "2024-01-15T10:30:00Z",
  "version": "0.1.0", "components": {"database": "healthy", "redis": "healthy",
  "quantum_keys": "healthy"}, "uptime": 86400}))]
pub struct HealthView {
    /// `healthy`, or `degraded` when a component is not.
    pub status: &'static str,
    /// Now.
    pub timestamp: String,
    /// The server's version.
    pub version: &'static str,
    /// `database`, `redis` (`not_configured` without Redis) and `quantum_keys`.
    pub components: Components,
    /// Seconds since start.
    pub uptime: u64,
}

/// The components of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Components {
    /// `healthy` or `unhealthy`.
    pub database: &'static str,
    /// `healthy`, `unhealthy` or `not_configured`.
    pub redis: &'static str,
    /// `healthy` when ML-KEM-768 and FN-DSA-512 work in this process.
    pub quantum_keys: &'static str,
}

async fn components(state: &AppState) -> Components {
    let database = match state.store().ping().await {
        Ok(()) => "healthy",
        Err(_) => "unhealthy",
    };
    let redis = if state.config().redis.url.is_empty() {
        "not_configured"
    } else {
        match state.readiness().check().await {
            Ok(()) => "healthy",
            Err(_) => "unhealthy",
        }
    };
    let quantum_keys = if quantum_self_test() {
        "healthy"
    } else {
        "unhealthy"
    };
    Components {
        database,
        redis,
        quantum_keys,
    }
}

/// An ML-KEM-768 round trip with a fresh key pair (well under a millisecond).
fn quantum_self_test() -> bool {
    let kp = qrlp_fleet::pq::KemKeyPair::generate();
    qrlp_fleet::pq::encapsulate(&kp.public_key())
        .ok()
        .and_then(|(ct, k)| kp.decapsulate(&ct).ok().map(|k2| *k == *k2))
        .unwrap_or(false)
}

/// System health (public).
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "monitoring",
    responses(
        (status = 200, description = "Healthy", body = HealthView),
        (status = 503, description = "Degraded", body = HealthView)
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let c = components(&state).await;
    let ok = c.database == "healthy" && c.redis != "unhealthy" && c.quantum_keys == "healthy";
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(HealthView {
            status: if ok { "healthy" } else { "degraded" },
            timestamp: rfc3339(OffsetDateTime::now_utc()),
            version: env!("CARGO_PKG_VERSION"),
            components: c,
            uptime: state.fleet().uptime_secs(),
        }),
    )
}

/// `GET /status`, in the seed's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// Devices and rounds.
    pub federated_learning: FlStatus,
    /// Keys.
    pub security: SecurityStatus,
    /// This process.
    pub performance: Performance,
}

/// The seed's `federated_learning` block.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlStatus {
    /// Rounds in progress (learning rounds arrive with the next issue: 0 until then).
    pub active_rounds: u64,
    /// Registered devices.
    pub total_devices: u64,
    /// Online or training.
    pub online_devices: u64,
    /// Training.
    pub training_devices: u64,
}

/// The seed's `security` block.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityStatus {
    /// The next scheduled key rotation.
    pub quantum_keys_rotation: String,
    /// When this server last ran its sweep (offline devices, due rotations).
    pub last_security_scan: Option<String>,
    /// Devices asked to rotate that have not yet.
    pub rotations_pending: u64,
}

/// The seed's `performance` block.
#[derive(Debug, Serialize, ToSchema)]
pub struct Performance {
    /// Mean response time of this process since start, in milliseconds.
    pub avg_response_time: f64,
    /// Resident memory of this process, MiB.
    pub memory_usage: f64,
    /// CPU time of this process over its lifetime, as a percentage of one core.
    pub cpu_usage: f64,
}

/// Detailed status of the organization's fleet and this server.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "monitoring",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Status", body = StatusView))
)]
pub async fn status(
    State(state): State<AppState>,
    auth: Auth<need::DevicesRead>,
) -> Result<Json<StatusView>, FleetError> {
    let org = auth.org()?.organization.id;
    let (c, oldest) = state
        .store()
        .fleet_counts(org)
        .await
        .map_err(FleetError::store)?;
    let fleet = state.fleet();
    let now = OffsetDateTime::now_utc();
    Ok(Json(StatusView {
        federated_learning: FlStatus {
            active_rounds: 0,
            total_devices: c.total,
            online_devices: c.online + c.training,
            training_devices: c.training,
        },
        security: SecurityStatus {
            quantum_keys_rotation: rfc3339(fleet.policy().next_rotation(oldest, now)),
            last_security_scan: fleet.last_sweep().map(rfc3339),
            rotations_pending: c.rotation_pending,
        },
        performance: process_figures(&state, fleet.uptime_secs()),
    }))
}

fn process_figures(state: &AppState, uptime: u64) -> Performance {
    let text = state.metrics().render();
    let sum = metric(&text, "qrlp_http_request_duration_seconds_sum");
    let count = metric(&text, "qrlp_http_request_duration_seconds_count");
    let rss = metric(&text, "process_resident_memory_bytes");
    let cpu = cpu_seconds();
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    Performance {
        avg_response_time: if count > 0.0 {
            round1(sum / count * 1000.0)
        } else {
            0.0
        },
        memory_usage: round1(rss / 1_048_576.0),
        cpu_usage: if uptime > 0 {
            round1(cpu / uptime as f64 * 100.0)
        } else {
            0.0
        },
    }
}

/// CPU time (user + system) of this process, from `/proc/self/stat` (0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every common configuration.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sum of every sample of `name` (over its labels) in a Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Prometheus metrics: the server's `/metrics` text plus the organization's fleet gauges.
#[utoipa::path(
    get,
    path = "/api/v1/monitoring/metrics",
    tag = "monitoring",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics(
    State(state): State<AppState>,
    auth: Auth<need::MonitoringRead>,
) -> Result<Response, FleetError> {
    let org = auth.org()?.organization.id;
    let (c, _) = state
        .store()
        .fleet_counts(org)
        .await
        .map_err(FleetError::store)?;
    let mut text = state.metrics().render();
    text.push_str("# HELP qrlp_fleet_devices Registered devices of the organization by status.\n");
    text.push_str("# TYPE qrlp_fleet_devices gauge\n");
    for (s, n) in [
        ("online", c.online),
        ("offline", c.offline),
        ("training", c.training),
    ] {
        text.push_str(&format!("qrlp_fleet_devices{{status=\"{s}\"}} {n}\n"));
    }
    text.push_str(
        "# HELP qrlp_fleet_rotations_pending Devices asked to rotate keys that have not yet.\n",
    );
    text.push_str("# TYPE qrlp_fleet_rotations_pending gauge\n");
    text.push_str(&format!(
        "qrlp_fleet_rotations_pending {}\n",
        c.rotation_pending
    ));
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

/// One active alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    /// `devices_offline`, `keys_near_expiry`, `certificates_near_expiry`,
    /// `database_degraded`, `redis_degraded`.
    pub id: &'static str,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// What is wrong.
    pub message: String,
    /// Figures.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /monitoring/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Active alerts; empty when all is well.
    pub alerts: Vec<Alert>,
    /// Now.
    pub timestamp: String,
}

/// Active alerts: devices offline, keys at or near their rotation date, certificates near
/// expiry, database or Redis degraded. (Disabled webhook endpoints join once the webhook
/// engine is wired in.)
#[utoipa::path(
    get,
    path = "/api/v1/monitoring/alerts",
    tag = "monitoring",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Alerts", body = AlertList))
)]
pub async fn alerts(
    State(state): State<AppState>,
    auth: Auth<need::MonitoringRead>,
) -> Result<Json<AlertList>, FleetError> {
    let org = auth.org()?.organization.id;
    let mut alerts = Vec::new();
    let comps = components(&state).await;
    if comps.database != "healthy" {
        alerts.push(Alert {
            id: "database_degraded",
            severity: "critical",
            message: "The database does not answer".into(),
            details: serde_json::json!({}),
        });
    }
    if comps.redis == "unhealthy" {
        alerts.push(Alert {
            id: "redis_degraded",
            severity: "warning",
            message: "Redis does not answer: limits and fan-out run degraded".into(),
            details: serde_json::json!({}),
        });
    }
    if comps.database == "healthy" {
        let store = state.store();
        let (c, oldest) = store.fleet_counts(org).await.map_err(FleetError::store)?;
        if c.offline > 0 {
            alerts.push(Alert {
                id: "devices_offline",
                severity: "warning",
                message: format!("{} of {} devices are offline", c.offline, c.total),
                details: serde_json::json!({"offline": c.offline, "total": c.total}),
            });
        }
        let policy = state.fleet().policy();
        let now = OffsetDateTime::now_utc();
        if let Some(t) = oldest {
            let due = t + policy.interval();
            if due - now <= time::Duration::days(7) {
                alerts.push(Alert {
                    id: "keys_near_expiry",
                    severity: if due <= now { "critical" } else { "warning" },
                    message: format!("A device key is due for rotation at {}", rfc3339(due)),
                    details: serde_json::json!({"next_rotation": rfc3339(due),
                        "rotations_pending": c.rotation_pending}),
                });
            }
        }
    }
    Ok(Json(AlertList {
        alerts,
        timestamp: rfc3339(OffsetDateTime::now_utc()),
    }))
}

/// Query of `GET /monitoring/logs`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// `info`, `warning` or `error`.
    pub level: Option<String>,
    /// `devices`, `heartbeat`, `security`.
    pub component: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
}

/// `GET /monitoring/logs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogList {
    /// Oldest first.
    pub logs: Vec<LogEvent>,
    /// How many events the ring keeps at most (older ones are gone).
    pub ring_capacity: usize,
}

/// Recent fleet log events of this server (a bounded in-memory ring: the last 1,000
/// events; older ones are gone, and each server process has its own).
#[utoipa::path(
    get,
    path = "/api/v1/monitoring/logs",
    tag = "monitoring",
    params(LogQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Events", body = LogList),
        (status = 422, description = "Invalid parameter", body = SeedErrorBody)
    )
)]
pub async fn logs(
    State(state): State<AppState>,
    auth: Auth<need::MonitoringRead>,
    Query(q): Query<LogQuery>,
) -> Result<Json<LogList>, FleetError> {
    let org = auth.org()?.organization.id;
    if let Some(l) = q.level.as_deref() {
        if !["info", "warning", "error"].contains(&l) {
            return Err(FleetError::validation(
                "level",
                "must be info, warning or error",
            ));
        }
    }
    let time = |field: &str, v: &Option<String>| -> Result<Option<OffsetDateTime>, FleetError> {
        v.as_deref()
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|_| FleetError::validation(field, "must be an RFC 3339 time"))
            })
            .transpose()
    };
    let since = time("since", &q.since)?;
    let until = time("until", &q.until)?;
    Ok(Json(LogList {
        logs: state.fleet().logs(
            org,
            q.level.as_deref(),
            q.component.as_deref(),
            since,
            until,
        ),
        ring_capacity: crate::fleet::LOG_RING_CAPACITY,
    }))
}
