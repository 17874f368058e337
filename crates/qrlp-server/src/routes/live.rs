//! Live channels of the request's organization (`live:read`, `live:write`): create, list,
//! get, update, delete; and per channel the live server's routes in the seed's shapes
//! (status, current frame, verify, user data, keys). A channel of another organization
//! answers 404. The public pages and read routes of a channel live under its unguessable
//! token: [`public_routes`].

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qrlp_live_server::pages::PageContext;
use qrlp_live_server::rest::{self, ReqId};
use qrlp_store::{LiveChannelPatch, LiveChannelRecord};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::state::AppState;
use crate::store_error;
use crate::views::{PageQuery, Pagination};

/// Body of `POST /api/v1/live/channels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// Seconds between frames, 0.1 to 3600 (default 2).
    pub interval_secs: Option<f64>,
    /// Frame validity in seconds, at least the interval, at most 86400 (default: five
    /// intervals, at least 10 s).
    pub ttl_secs: Option<f64>,
    /// `live` (default), `professional` or `minimal`.
    pub style: Option<String>,
    /// `json` (default, the seed's QRData) or `compact`.
    pub frame_format: Option<String>,
}

/// Body of `PATCH /api/v1/live/channels/{channel_id}`: fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    /// New name.
    pub name: Option<String>,
    /// New interval, seconds.
    pub interval_secs: Option<f64>,
    /// New ttl, seconds.
    pub ttl_secs: Option<f64>,
    /// New style.
    pub style: Option<String>,
    /// New frame format.
    pub frame_format: Option<String>,
}

/// A live channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Seconds between frames.
    pub interval_secs: f64,
    /// Frame validity, seconds.
    pub ttl_secs: f64,
    /// Image style.
    pub style: String,
    /// `json` or `compact`.
    pub frame_format: String,
    /// Key id of the channel's signing identity.
    pub key_id: Option<String>,
    /// The public viewer page (anyone with this URL can watch).
    pub viewer_url: String,
    /// The public stream view, for an OBS browser source.
    pub stream_url: String,
    /// The public verify page.
    pub verify_url: String,
    /// The public key set for offline verifiers.
    pub keys_url: String,
    /// Socket.IO: namespace `/live`, `auth: {"channel": "<public token>"}`.
    pub socket_auth: serde_json::Value,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
}

/// A page of channels.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    /// The channels.
    pub channels: Vec<ChannelView>,
    /// Paging.
    pub pagination: Pagination,
}

fn view(state: &AppState, c: &LiveChannelRecord) -> ChannelView {
    let base = format!(
        "{}/live/{}",
        state.config().server.public_base_url(),
        c.public_token
    );
    let key_id = state.live().get(c.org_id, c.id).and_then(|ch| {
        ch.protocol().statistics()["identity_stats"]["key_id"]
            .as_str()
            .map(String::from)
    });
    ChannelView {
        id: c.id,
        name: c.name.clone(),
        interval_secs: c.interval_secs,
        ttl_secs: c.ttl_secs,
        style: c.style.clone(),
        frame_format: c.frame_format.clone(),
        key_id,
        viewer_url: format!("{base}/"),
        stream_url: format!("{base}/?mode=stream"),
        verify_url: format!("{base}/verify"),
        keys_url: format!("{base}/.well-known/qrlp-keys.json"),
        socket_auth: serde_json::json!({ "channel": c.public_token }),
        created_at: c.created_at.format(&Rfc3339).unwrap_or_default(),
        updated_at: c.updated_at.format(&Rfc3339).unwrap_or_default(),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    while s.len() < bytes * 2 {
        s.push_str(&Uuid::new_v4().simple().to_string());
    }
    s.truncate(bytes * 2);
    s
}

fn started(state: &AppState, record: LiveChannelRecord) -> Result<(), ApiError> {
    state.live().upsert(record).map_err(|e| {
        tracing::error!(error = %e, "live channel could not start");
        ApiError::new(crate::ErrorCode::Internal, crate::error::INTERNAL_MESSAGE)
    })?;
    Ok(())
}

/// List the organization's live channels.
#[utoipa::path(
    get,
    path = "/api/v1/live/channels",
    tag = "live",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The channels", body = ChannelList),
        (status = 403, description = "The role or key scope does not allow it", body = ErrorBody)
    )
)]
pub async fn list_channels(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ChannelList>, ApiError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let result = state
        .store()
        .list_live_channels(org, page)
        .await
        .map_err(store_error)?;
    Ok(Json(ChannelList {
        channels: result.items.iter().map(|c| view(&state, c)).collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Create a live channel: a new signing identity, frames start at once.
#[utoipa::path(
    post,
    path = "/api/v1/live/channels",
    tag = "live",
    request_body = CreateChannel,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created and generating", body = ChannelView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "The role or key scope does not allow it", body = ErrorBody)
    )
)]
pub async fn create_channel(
    State(state): State<AppState>,
    auth: Auth<need::LiveWrite>,
    Input(body): Input<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let org = auth.org()?.organization.id;
    let interval = body.interval_secs.unwrap_or(2.0);
    let seed = zeroize::Zeroizing::new(qrlp_store::secret::random_32());
    let public_token = random_hex(32);
    let secrets_sealed =
        crate::live::seal_secrets(state.data_key(), org, &public_token, &seed, &random_hex(32));
    let record = LiveChannelRecord {
        id: Uuid::nil(),
        org_id: org,
        name: body.name,
        public_token,
        interval_secs: interval,
        ttl_secs: body
            .ttl_secs
            .unwrap_or_else(|| (interval * 5.0).clamp(10.0, 86_400.0)),
        style: body.style.unwrap_or_else(|| "live".into()),
        frame_format: body.frame_format.unwrap_or_else(|| "json".into()),
        secrets_sealed,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    let record = state
        .store()
        .create_live_channel(&auth.audit(), record)
        .await
        .map_err(store_error)?;
    started(&state, record.clone())?;
    Ok((StatusCode::CREATED, Json(view(&state, &record))))
}

/// Get a live channel.
#[utoipa::path(
    get,
    path = "/api/v1/live/channels/{channel_id}",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn get_channel(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Path(id): Path<Uuid>,
) -> Result<Json<ChannelView>, ApiError> {
    let org = auth.org()?.organization.id;
    let c = state
        .store()
        .get_live_channel(org, id)
        .await
        .map_err(store_error)?;
    Ok(Json(view(&state, &c)))
}

/// Change a live channel's settings; generation restarts with them (same identity).
#[utoipa::path(
    patch,
    path = "/api/v1/live/channels/{channel_id}",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    request_body = UpdateChannel,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn update_channel(
    State(state): State<AppState>,
    auth: Auth<need::LiveWrite>,
    Path(id): Path<Uuid>,
    Input(body): Input<UpdateChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    let org = auth.org()?.organization.id;
    let c = state
        .store()
        .update_live_channel(
            &auth.audit(),
            org,
            id,
            LiveChannelPatch {
                name: body.name,
                interval_secs: body.interval_secs,
                ttl_secs: body.ttl_secs,
                style: body.style,
                frame_format: body.frame_format,
            },
        )
        .await
        .map_err(store_error)?;
    started(&state, c.clone())?;
    Ok(Json(view(&state, &c)))
}

/// Delete a live channel: generation stops, its pages and key set go away.
#[utoipa::path(
    delete,
    path = "/api/v1/live/channels/{channel_id}",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn delete_channel(
    State(state): State<AppState>,
    auth: Auth<need::LiveWrite>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let org = auth.org()?.organization.id;
    state
        .store()
        .delete_live_channel(&auth.audit(), org, id)
        .await
        .map_err(store_error)?;
    state.live().remove(id);
    Ok(StatusCode::NO_CONTENT)
}

fn channel_of(
    state: &AppState,
    org: Uuid,
    id: Uuid,
) -> Result<std::sync::Arc<qrlp_live_server::LiveChannel>, ApiError> {
    state.live().get(org, id).ok_or_else(ApiError::not_found)
}

fn req_id() -> ReqId {
    ReqId(std::sync::Arc::from(
        crate::RequestId::current()
            .map(|r| r.to_string())
            .unwrap_or_default(),
    ))
}

/// The channel's status in the seed's `/api/status` shape.
#[utoipa::path(
    get,
    path = "/api/v1/live/channels/{channel_id}/status",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "is_running, page_views, websocket_connections, qr_updates_sent, server_url, current_qr_available, statistics", body = Object),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn channel_status(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let ch = channel_of(&state, auth.org()?.organization.id, id)?;
    Ok(rest::status(&ch, &req_id()))
}

/// The channel's current frame in the seed's `/api/qr/current` shape (404 in the seed's
/// shape before the first frame).
#[utoipa::path(
    get,
    path = "/api/v1/live/channels/{channel_id}/qr/current",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "qr_data, qr_image (PNG data URL), timestamp", body = Object),
        (status = 404, description = "No such channel, or no frame yet", body = Object)
    )
)]
pub async fn channel_current(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let ch = channel_of(&state, auth.org()?.organization.id, id)?;
    Ok(rest::current(&ch, &req_id()))
}

/// Verify a frame of this channel: `{"qr_data": "<frame text>"}`, or a multipart upload
/// (field `image`) of a PNG or JPEG with the code in it.
#[utoipa::path(
    post,
    path = "/api/v1/live/channels/{channel_id}/verify",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    request_body(content = Object, description = "{\"qr_data\": \"...\"} or multipart/form-data with an image"),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "valid, timestamp, message, details", body = Object),
        (status = 400, description = "{\"error\": \"Invalid QR data format\", \"details\": ...}", body = Object),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn channel_verify(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Path(id): Path<Uuid>,
    req: Request,
) -> Result<Response, ApiError> {
    let ch = channel_of(&state, auth.org()?.organization.id, id)?;
    let rid = req_id();
    Ok(match rest::verify_input(req).await {
        Ok(input) => rest::verify(&ch, input, &rid),
        Err(e) => e.respond(&rid),
    })
}

/// The user text that goes into the channel's next frame.
#[utoipa::path(
    get,
    path = "/api/v1/live/channels/{channel_id}/user-data",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "{\"user_data\": text}", body = Object),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn channel_get_user_data(
    State(state): State<AppState>,
    auth: Auth<need::LiveRead>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let ch = channel_of(&state, auth.org()?.organization.id, id)?;
    Ok(rest::get_user_data(&ch, &req_id()))
}

/// Set the user text of the channel's next frames: `{"user_text": ...}`, at most 500
/// characters.
#[utoipa::path(
    post,
    path = "/api/v1/live/channels/{channel_id}/user-data",
    tag = "live",
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    request_body(content = Object, description = "{\"user_text\": \"...\"}"),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "success, message, user_data", body = Object),
        (status = 400, description = "{\"error\": \"User data too long (max 500 characters)\"}", body = Object),
        (status = 404, description = "No such channel in this organization", body = ErrorBody)
    )
)]
pub async fn channel_post_user_data(
    State(state): State<AppState>,
    auth: Auth<need::LiveWrite>,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ch = channel_of(&state, auth.org()?.organization.id, id)?;
    let response = rest::post_user_data(&ch, &body, &req_id());
    if response.status().is_success() {
        state.live().share_user_text(id, ch.user_text());
    }
    Ok(response)
}

/// Public routes of channels, by token: pages and read-only routes.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/live/static/{file}", get(public_asset))
        .route("/live/{token}/", get(public_viewer))
        .route("/live/{token}/verify", get(public_verify_page))
        .route("/live/{token}/api/qr/current", get(public_current))
        .route("/live/{token}/api/status", get(public_status))
        .route(
            "/live/{token}/api/verify",
            post(public_verify).layer(axum::extract::DefaultBodyLimit::max(rest::MAX_UPLOAD_BYTES)),
        )
        .route("/live/{token}/.well-known/qrlp-keys.json", get(public_keys))
}

fn page_context(token: &str) -> PageContext {
    PageContext {
        api: format!("/live/{token}"),
        static_prefix: "/live/static".into(),
        namespace: crate::live::NAMESPACE.into(),
        auth: serde_json::json!({ "channel": token }),
        viewer: format!("/live/{token}/"),
        verify: format!("/live/{token}/verify"),
        user_text: false,
    }
}

#[derive(Deserialize)]
struct ViewerQuery {
    mode: Option<String>,
}

async fn public_asset(Path(file): Path<String>) -> Response {
    qrlp_live_server::pages::asset(&file).unwrap_or_else(|| ApiError::not_found().into_response())
}

fn public(
    state: &AppState,
    token: &str,
) -> Result<std::sync::Arc<qrlp_live_server::LiveChannel>, ApiError> {
    state.live().by_token(token).ok_or_else(ApiError::not_found)
}

async fn public_viewer(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<ViewerQuery>,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    ch.count_page_view();
    Ok(qrlp_live_server::pages::viewer(
        &page_context(&token),
        q.mode.as_deref() == Some("stream"),
    ))
}

async fn public_verify_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    ch.count_page_view();
    Ok(qrlp_live_server::pages::verify(&page_context(&token)))
}

async fn public_current(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    Ok(rest::current(&ch, &req_id()))
}

async fn public_status(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    Ok(rest::status(&ch, &req_id()))
}

async fn public_keys(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    Ok(rest::keys(&ch, &req_id()))
}

async fn public_verify(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let ch = public(&state, &token)?;
    let rid = req_id();
    Ok(match rest::verify_input(req).await {
        Ok(input) => rest::verify(&ch, input, &rid),
        Err(e) => e.respond(&rid),
    })
}
