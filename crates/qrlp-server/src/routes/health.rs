//! `/healthz` (liveness) and `/readyz` (readiness), as the qr-api seed documents them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Body of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Body of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "degraded", "reason": "redis-unavailable"}))]
pub struct Readiness {
    /// `ready` or `degraded`.
    pub status: &'static str,
    /// Why the node is degraded, e.g. `redis-unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Liveness probe: the process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness probe: 503 while a configured dependency (Redis) cannot be reached.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness,
            example = json!({"status": "ready"})),
        (status = 503, description = "A dependency is unavailable", body = Readiness,
            example = json!({"status": "degraded", "reason": "redis-unavailable"}))
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    match state.readiness().check().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                reason: None,
            }),
        ),
        Err(not_ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "degraded",
                reason: Some(not_ready.reason()),
            }),
        ),
    }
}
