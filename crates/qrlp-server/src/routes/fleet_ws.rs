//! Seed 002's WebSocket channels, `/api/v1/ws/{dashboard|training|security}` and
//! `/api/v1/ws/device/{device_id}`. Every message is `{"type", "timestamp", "data"}`.
//!
//! The first three take the platform's credentials (API key or session) and carry the
//! events of the caller's organization. The device channel takes an API key of the
//! device's organization or the device's own signature on the upgrade request (a signed
//! `GET`, empty body). Events come from this server's bus, which also carries the other
//! servers' events when Redis is configured (see `docs/fleet.md`).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::{api_key_of, Auth};
use crate::authz::{need, role_grants, scopes_allow, Permission};
use crate::fleet::{Channel, FleetError, SeedErrorBody, WsMessage};
use crate::state::AppState;

/// What one connection receives.
#[derive(Debug, Clone)]
enum Filter {
    Channel(Channel),
    Device(String),
}

async fn serve(mut socket: WebSocket, state: AppState, org: Uuid, filter: Filter) {
    let mut rx = state.fleet().subscribe();
    let name = match &filter {
        Filter::Channel(Channel::Dashboard) => "dashboard".to_string(),
        Filter::Channel(Channel::Security) => "security".to_string(),
        Filter::Channel(Channel::Training) => "training".to_string(),
        Filter::Device(id) => format!("device/{id}"),
    };
    let hello = serde_json::json!({
        "type": "connected",
        "timestamp": crate::fleet::rfc3339(time::OffsetDateTime::now_utc()),
        "data": {"channel": name, "organization_id": org},
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if ev.org_id != org {
                        continue;
                    }
                    let wanted = match &filter {
                        Filter::Channel(c) => ev.channels.contains(c),
                        Filter::Device(id) => ev.device_id.as_deref() == Some(id.as_str()),
                    };
                    if wanted && socket.send(Message::Text(ev.json.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "websocket client too slow; events skipped");
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn channel_route(
    ws: WebSocketUpgrade,
    state: AppState,
    auth: &crate::auth::AuthContext,
    channel: Channel,
) -> Result<Response, FleetError> {
    let org = auth.org()?.organization.id;
    Ok(ws.on_upgrade(move |socket| serve(socket, state, org, Filter::Channel(channel))))
}

/// Dashboard channel: every device event of the organization (registrations, heartbeats,
/// status changes, rotations).
#[utoipa::path(
    get,
    path = "/api/v1/ws/dashboard",
    tag = "websocket",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 101, description = "WebSocket of `{type, timestamp, data}` messages", body = WsMessage))
)]
pub async fn dashboard(
    State(state): State<AppState>,
    auth: Auth<need::DevicesRead>,
    ws: WebSocketUpgrade,
) -> Result<Response, FleetError> {
    channel_route(ws, state, &auth, Channel::Dashboard)
}

/// Training channel: learning progress of the organization's rounds.
#[utoipa::path(
    get,
    path = "/api/v1/ws/training",
    tag = "websocket",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 101, description = "WebSocket of `{type, timestamp, data}` messages", body = WsMessage))
)]
pub async fn training(
    State(state): State<AppState>,
    auth: Auth<need::TrainingRead>,
    ws: WebSocketUpgrade,
) -> Result<Response, FleetError> {
    channel_route(ws, state, &auth, Channel::Training)
}

/// Security channel: registrations, deregistrations, key rotations.
#[utoipa::path(
    get,
    path = "/api/v1/ws/security",
    tag = "websocket",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 101, description = "WebSocket of `{type, timestamp, data}` messages", body = WsMessage))
)]
pub async fn security(
    State(state): State<AppState>,
    auth: Auth<need::SecurityRead>,
    ws: WebSocketUpgrade,
) -> Result<Response, FleetError> {
    channel_route(ws, state, &auth, Channel::Security)
}

/// One device's channel: its heartbeats, status changes and rotations. An API key of the
/// device's organization (`devices:read`), or the device's signature on this request.
#[utoipa::path(
    get,
    path = "/api/v1/ws/device/{device_id}",
    tag = "websocket",
    params(("device_id" = String, Path, description = "`dev_…`")),
    security(("api_key" = []), ("device_signature" = [])),
    responses(
        (status = 101, description = "WebSocket of `{type, timestamp, data}` messages", body = WsMessage),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody),
        (status = 404, description = "`DEVICE_NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn device(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, FleetError> {
    // Credentials first: a request that is not an upgrade learns nothing before them.
    let org = if headers.contains_key(qrlp_fleet::signing::HEADER_SIGNATURE) {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let (auth, h) = state
            .fleet()
            .authenticate(&state, "GET", pq, &headers, b"")
            .await?;
        if h.device_id != device_id {
            return Err(FleetError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                "A device may only watch itself",
            ));
        }
        auth.device.org_id
    } else {
        let key = api_key_of(&headers).ok_or_else(|| {
            FleetError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "An API key or a device signature is required",
            )
        })?;
        let p = state.auth().api_key(key).await?;
        let allowed = role_grants(p.role, Permission::DevicesRead)
            && scopes_allow(&p.key.scopes, Permission::DevicesRead);
        if !allowed {
            let role = p.role.as_str();
            return Err(FleetError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                format!(
                    "This needs the devices:read permission, which your role ({role}) or key scopes do not grant"
                ),
            )
            .with("required", Permission::DevicesRead.scope())
            .with("role", role));
        }
        let org = p.organization.id;
        state
            .store()
            .get_device(org, &device_id)
            .await
            .map_err(|_| FleetError::device_not_found(&device_id))?;
        org
    };
    let ws = ws.map_err(|r| {
        FleetError::new(
            r.status(),
            "VALIDATION_ERROR",
            format!("Not a WebSocket upgrade: {}", r.body_text()),
        )
    })?;
    Ok(ws.on_upgrade(move |socket| serve(socket, state, org, Filter::Device(device_id))))
}
