//! One-time "morphing" QR chains, exactly as seed 003 documents them (`/api/v1/chains`,
//! camelCase fields, its messages), plus `PATCH` and `DELETE`.
//!
//! Refused scans answer inside the platform envelope, whose `error` field carries the
//! seed's text: 409 `"QR code already scanned"` for a value accepted before, 400
//! `"Invalid QR code"` for anything else, 409 `CHAIN_EXHAUSTED` once every value is used.
//! An unknown chain, or another organization's, is 404 `"Chain not found"`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use qrlp_store::{Chain, ChainPatch, NewChain, ScanRecord, ScanSource, ScanVerdict};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Auth, Principal};
use crate::authz::need;
use crate::error::{store_error, ApiError, ErrorBody, ErrorCode};
use crate::extract::Input;
use crate::state::AppState;

/// The seed's message for an unknown chain.
pub const CHAIN_NOT_FOUND: &str = "Chain not found";
/// The seed's message for a value accepted before.
pub const ALREADY_SCANNED: &str = "QR code already scanned";
/// The seed's message for any other refused value.
pub const INVALID_QR: &str = "Invalid QR code";
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// A chain as the seed lists it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainView {
    /// Integer id.
    #[schema(example = 42)]
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Number of values.
    #[schema(example = 500)]
    pub chain_length: i64,
    /// Index of the value shown now (counts down; -1 once exhausted).
    #[schema(example = 499)]
    pub current_index: i64,
    /// Values not used yet.
    #[schema(example = 500)]
    pub remaining: i64,
    /// Whether scans are accepted.
    pub is_active: bool,
    /// Created, `2025-01-15T10:00:00Z`.
    pub created_at: String,
    /// Last changed (every scan changes it).
    pub updated_at: String,
}

impl From<&Chain> for ChainView {
    fn from(c: &Chain) -> Self {
        ChainView {
            id: c.id,
            name: c.name.clone(),
            description: c.description.clone(),
            chain_length: c.chain_length,
            current_index: c.current_index,
            remaining: c.remaining(),
            is_active: c.is_active,
            created_at: qrlp_store::chains::seed_timestamp(c.created_at),
            updated_at: qrlp_store::chains::seed_timestamp(c.updated_at),
        }
    }
}

/// `GET /api/v1/chains`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainList {
    /// Every chain of the organization.
    pub chains: Vec<ChainView>,
}

/// Body of `POST /api/v1/chains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChain {
    /// 1 to 255 characters.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// 10 to 10,000 (default 100).
    pub chain_length: Option<i64>,
}

/// Answer of `POST /api/v1/chains`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainCreated {
    /// The new chain's id.
    pub chain_id: i64,
    /// Its name.
    pub name: String,
    /// Its length.
    pub chain_length: i64,
    /// `Chain created successfully`.
    pub message: String,
}

/// Body of `PATCH /api/v1/chains/{chainId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateChain {
    /// New name, 1 to 255 characters.
    pub name: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Accept scans or not (an exhausted chain stays inactive).
    pub is_active: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `GET /api/v1/chains/{chainId}/current`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentCode {
    /// Chain id.
    pub chain_id: i64,
    /// Chain name.
    pub chain_name: String,
    /// Index of this value.
    pub current_index: i64,
    /// The value, 64 lowercase hex digits.
    pub hash_value: String,
    /// `data:image/png;base64,…`: the code to show.
    pub qr_code: String,
    /// Values not used yet, this one included.
    pub remaining: i64,
    /// The chain's length.
    pub total_length: i64,
    /// Whether scans are accepted.
    pub is_active: bool,
    /// What the code encodes: the scan page URL, or the raw value with `?content=raw`.
    pub content: String,
}

/// Query of `GET /api/v1/chains/{chainId}/current`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CurrentQuery {
    /// `url` (default): the code opens `{public_base_url}/s/{chainId}/{hashValue}`;
    /// `raw`: the code holds the bare `hashValue`.
    pub content: Option<String>,
}

/// Body of `POST /api/v1/chains/{chainId}/scan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanRequest {
    /// The scanned value.
    pub hash_value: String,
}

/// A successful scan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanSuccess {
    /// `true`.
    pub success: bool,
    /// `QR code scanned successfully`.
    pub message: String,
    /// Chain id.
    pub chain_id: i64,
    /// The index now current (-1 when exhausted).
    pub new_index: i64,
    /// Values left.
    pub remaining: i64,
    /// Whether that was the last value.
    pub chain_exhausted: bool,
}

/// One scan attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanView {
    /// Scan id.
    pub id: i64,
    /// Chain id.
    pub chain_id: i64,
    /// Id of the used value it matched (accepted or already scanned), else null.
    pub hash_id: Option<i64>,
    /// The value submitted.
    pub hash_value: String,
    /// Index of the value matched; the current index for an invalid value.
    pub chain_index: Option<i64>,
    /// Whether it was accepted.
    pub is_valid: bool,
    /// `api_key:<id>`, `user:<id>` or `public` (the scan page).
    pub scanned_by: Option<String>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Why it was refused.
    pub error_message: Option<String>,
    /// When.
    pub scanned_at: String,
}

impl From<&ScanRecord> for ScanView {
    fn from(s: &ScanRecord) -> Self {
        ScanView {
            id: s.id,
            chain_id: s.chain_id,
            hash_id: s.hash_id,
            hash_value: s.hash_value.clone(),
            chain_index: s.chain_index,
            is_valid: s.is_valid,
            scanned_by: s.scanned_by.clone(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            error_message: s.error_message.clone(),
            scanned_at: qrlp_store::chains::seed_timestamp(s.scanned_at),
        }
    }
}

/// `GET /api/v1/chains/{chainId}/scans`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanList {
    /// Newest first.
    pub scans: Vec<ScanView>,
}

/// Query of `GET /api/v1/chains/{chainId}/scans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScansQuery {
    /// 1 to 1000 (default 100).
    pub limit: Option<String>,
}

/// `GET /api/v1/chains/{chainId}/stats`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainStats {
    /// Every scan attempt.
    pub total_scans: i64,
    /// Accepted.
    pub valid_scans: i64,
    /// Refused.
    pub invalid_scans: i64,
    /// Length.
    pub chain_length: i64,
    /// Current index.
    pub current_index: i64,
    /// Values left.
    pub remaining: i64,
    /// Values used.
    pub scanned: i64,
    /// `scanned / chainLength × 100` with one decimal, as a string: `"0.2"`.
    pub percent_complete: String,
}

/// `DELETE /api/v1/chains/{chainId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainDeleted {
    /// The deleted chain's id.
    pub chain_id: i64,
    /// `Chain deleted successfully`.
    pub message: String,
}

/// A chain id from the path: a positive integer, else the chain cannot exist (404).
pub(crate) fn chain_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, CHAIN_NOT_FOUND)
}

fn chain_error(e: qrlp_store::StoreError) -> ApiError {
    match e {
        qrlp_store::StoreError::NotFound => not_found(),
        qrlp_store::StoreError::Conflict(what) if what == "exhausted" => ApiError::new(
            ErrorCode::ChainExhausted,
            "Chain exhausted: every value has been used; it cannot be reactivated",
        ),
        other => store_error(other),
    }
}

fn exhausted(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ChainExhausted,
        "Chain exhausted: every value has been used",
    )
    .with_details(serde_json::json!({ "chainId": id }))
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > 255 {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1 to 255 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

fn valid_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::invalid_field(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(d) if d.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// List the organization's chains.
#[utoipa::path(
    get,
    path = "/api/v1/chains",
    tag = "chains",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Every chain", body = ChainList))
)]
pub async fn list_chains(
    State(state): State<AppState>,
    auth: Auth<need::ChainsRead>,
) -> Result<Json<ChainList>, ApiError> {
    let org = auth.org()?.organization.id;
    let chains = state.store().list_chains(org).await.map_err(store_error)?;
    Ok(Json(ChainList {
        chains: chains.iter().map(ChainView::from).collect(),
    }))
}

/// Create a chain of one-time values.
#[utoipa::path(
    post,
    path = "/api/v1/chains",
    tag = "chains",
    request_body = CreateChain,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created", body = ChainCreated),
        (status = 400, description = "Invalid field", body = ErrorBody)
    )
)]
pub async fn create_chain(
    State(state): State<AppState>,
    auth: Auth<need::ChainsWrite>,
    Input(body): Input<CreateChain>,
) -> Result<(StatusCode, Json<ChainCreated>), ApiError> {
    let name = valid_name(&body.name)?;
    let description = valid_description(body.description)?;
    let length = body.chain_length.unwrap_or(100);
    let length = u32::try_from(length)
        .ok()
        .filter(|l| (qrlp_chain::MIN_LENGTH..=qrlp_chain::MAX_LENGTH).contains(l))
        .ok_or_else(|| {
            ApiError::invalid_field("chainLength", "must be an integer between 10 and 10000")
        })?;
    let org = auth.org()?.organization.id;
    let chain = state
        .store()
        .create_chain(
            &auth.audit(),
            state.data_key(),
            NewChain {
                org_id: org,
                name,
                description,
                chain_length: length,
            },
        )
        .await
        .map_err(store_error)?;
    state.wake_webhooks();
    Ok((
        StatusCode::CREATED,
        Json(ChainCreated {
            chain_id: chain.id,
            name: chain.name,
            chain_length: chain.chain_length,
            message: "Chain created successfully".into(),
        }),
    ))
}

/// One chain's details.
#[utoipa::path(
    get,
    path = "/api/v1/chains/{chainId}",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The chain", body = ChainView),
        (status = 404, description = "Chain not found", body = ErrorBody)
    )
)]
pub async fn get_chain(
    State(state): State<AppState>,
    auth: Auth<need::ChainsRead>,
    Path(id): Path<String>,
) -> Result<Json<ChainView>, ApiError> {
    let id = chain_id(&id)?;
    let org = auth.org()?.organization.id;
    let chain = state
        .store()
        .get_chain(org, id)
        .await
        .map_err(chain_error)?;
    Ok(Json(ChainView::from(&chain)))
}

/// Rename, re-describe, deactivate or reactivate a chain.
#[utoipa::path(
    patch,
    path = "/api/v1/chains/{chainId}",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id")),
    request_body = UpdateChain,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The chain after the change", body = ChainView),
        (status = 404, description = "Chain not found", body = ErrorBody),
        (status = 409, description = "CHAIN_EXHAUSTED: an exhausted chain cannot be reactivated", body = ErrorBody)
    )
)]
pub async fn update_chain(
    State(state): State<AppState>,
    auth: Auth<need::ChainsWrite>,
    Path(id): Path<String>,
    Input(body): Input<UpdateChain>,
) -> Result<Json<ChainView>, ApiError> {
    let id = chain_id(&id)?;
    let name = body.name.as_deref().map(valid_name).transpose()?;
    let description = match body.description {
        Some(d) => Some(valid_description(d)?),
        None => None,
    };
    let org = auth.org()?.organization.id;
    let chain = state
        .store()
        .update_chain(
            &auth.audit(),
            org,
            id,
            ChainPatch {
                name,
                description,
                is_active: body.is_active,
            },
        )
        .await
        .map_err(chain_error)?;
    Ok(Json(ChainView::from(&chain)))
}

/// Delete a chain, its secret and its scans.
#[utoipa::path(
    delete,
    path = "/api/v1/chains/{chainId}",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Deleted", body = ChainDeleted),
        (status = 404, description = "Chain not found", body = ErrorBody)
    )
)]
pub async fn delete_chain(
    State(state): State<AppState>,
    auth: Auth<need::ChainsWrite>,
    Path(id): Path<String>,
) -> Result<Json<ChainDeleted>, ApiError> {
    let id = chain_id(&id)?;
    let org = auth.org()?.organization.id;
    state
        .store()
        .delete_chain(&auth.audit(), org, id)
        .await
        .map_err(chain_error)?;
    Ok(Json(ChainDeleted {
        chain_id: id,
        message: "Chain deleted successfully".into(),
    }))
}

/// What the code of chain `id` encodes for `value`.
pub(crate) fn scan_url(state: &AppState, id: i64, value: &str) -> String {
    format!("{}/s/{id}/{value}", state.config().server.public_base_url())
}

/// The current code. Reading it never moves the chain.
#[utoipa::path(
    get,
    path = "/api/v1/chains/{chainId}/current",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id"), CurrentQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The value to show and its QR code", body = CurrentCode),
        (status = 404, description = "Chain not found", body = ErrorBody),
        (status = 409, description = "CHAIN_EXHAUSTED", body = ErrorBody)
    )
)]
pub async fn current(
    State(state): State<AppState>,
    auth: Auth<need::ChainsRead>,
    Path(id): Path<String>,
    Query(q): Query<CurrentQuery>,
) -> Result<Json<CurrentCode>, ApiError> {
    let id = chain_id(&id)?;
    let raw = match q.content.as_deref() {
        None | Some("url") => false,
        Some("raw") => true,
        Some(_) => return Err(ApiError::invalid_field("content", "must be url or raw")),
    };
    let org = auth.org()?.organization.id;
    let (chain, value) = state
        .store()
        .current_chain_value(state.data_key(), org, id)
        .await
        .map_err(chain_error)?;
    let value = value.ok_or_else(|| exhausted(id))?;
    let hash_value = qrlp_chain::to_hex(&value);
    let content = if raw {
        hash_value.clone()
    } else {
        scan_url(&state, id, &hash_value)
    };
    let png = qr_png(&content)?;
    Ok(Json(CurrentCode {
        chain_id: chain.id,
        chain_name: chain.name.clone(),
        current_index: chain.current_index,
        hash_value,
        qr_code: format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ),
        remaining: chain.remaining(),
        total_length: chain.chain_length,
        is_active: chain.is_active,
        content,
    }))
}

/// A PNG of `text` at error correction M, 10 px per module, quiet zone 4.
pub(crate) fn qr_png(text: &str) -> Result<Vec<u8>, ApiError> {
    let code =
        qrlp_qr::QrCode::encode_text(text, qrlp_qr::EcLevel::M).map_err(ApiError::internal)?;
    qrlp_render::render_png(&code, &qrlp_render::RenderOptions::default())
        .map_err(ApiError::internal)
}

/// The error answer of a refused scan.
pub(crate) fn refusal(verdict: ScanVerdict, id: i64) -> ApiError {
    match verdict {
        ScanVerdict::AlreadyScanned => ApiError::new(ErrorCode::Conflict, ALREADY_SCANNED),
        ScanVerdict::Invalid => ApiError::new(ErrorCode::InvalidInput, INVALID_QR),
        ScanVerdict::Exhausted => exhausted(id),
        ScanVerdict::Inactive | ScanVerdict::Accepted => {
            ApiError::new(ErrorCode::Conflict, "Chain is inactive")
        }
    }
}

/// Submit a scanned value: accepted once, then the chain moves to its next value.
#[utoipa::path(
    post,
    path = "/api/v1/chains/{chainId}/scan",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id")),
    request_body = ScanRequest,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Accepted", body = ScanSuccess),
        (status = 400, description = "`Invalid QR code`", body = ErrorBody),
        (status = 404, description = "Chain not found", body = ErrorBody),
        (status = 409, description = "`QR code already scanned`; `CHAIN_EXHAUSTED`; inactive chain", body = ErrorBody)
    )
)]
pub async fn scan(
    State(state): State<AppState>,
    auth: Auth<need::ChainsScan>,
    Path(id): Path<String>,
    Input(body): Input<ScanRequest>,
) -> Result<Json<ScanSuccess>, ApiError> {
    let id = chain_id(&id)?;
    let org = auth.org()?.organization.id;
    let scanned_by = match &auth.principal {
        Principal::ApiKey(k) => format!("api_key:{}", k.key.id),
        Principal::Session { user, .. } => format!("user:{}", user.id),
    };
    let source = ScanSource {
        scanned_by: Some(scanned_by),
        ip_address: auth.meta.ip.clone(),
        user_agent: auth.meta.user_agent.clone(),
    };
    let outcome = state
        .store()
        .scan_chain(Some(org), id, &body.hash_value, &source)
        .await
        .map_err(chain_error)?;
    state.wake_webhooks();
    if outcome.verdict != ScanVerdict::Accepted {
        return Err(refusal(outcome.verdict, id));
    }
    Ok(Json(ScanSuccess {
        success: true,
        message: "QR code scanned successfully".into(),
        chain_id: id,
        new_index: outcome.chain.current_index,
        remaining: outcome.chain.remaining(),
        chain_exhausted: outcome.chain.exhausted(),
    }))
}

/// Scan history, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/chains/{chainId}/scans",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id"), ScansQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Scan attempts", body = ScanList),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 404, description = "Chain not found", body = ErrorBody)
    )
)]
pub async fn list_scans(
    State(state): State<AppState>,
    auth: Auth<need::ChainsRead>,
    Path(id): Path<String>,
    Query(q): Query<ScansQuery>,
) -> Result<Json<ScanList>, ApiError> {
    let id = chain_id(&id)?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field("limit", "must be an integer between 1 and 1000")
            })?,
    };
    let org = auth.org()?.organization.id;
    let scans = state
        .store()
        .list_scans(org, id, limit)
        .await
        .map_err(chain_error)?;
    Ok(Json(ScanList {
        scans: scans.iter().map(ScanView::from).collect(),
    }))
}

/// Counts and progress.
#[utoipa::path(
    get,
    path = "/api/v1/chains/{chainId}/stats",
    tag = "chains",
    params(("chainId" = i64, Path, description = "Chain id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Statistics", body = ChainStats),
        (status = 404, description = "Chain not found", body = ErrorBody)
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    auth: Auth<need::ChainsRead>,
    Path(id): Path<String>,
) -> Result<Json<ChainStats>, ApiError> {
    let id = chain_id(&id)?;
    let org = auth.org()?.organization.id;
    let c = state
        .store()
        .get_chain(org, id)
        .await
        .map_err(chain_error)?;
    Ok(Json(ChainStats {
        total_scans: c.valid_scans + c.invalid_scans,
        valid_scans: c.valid_scans,
        invalid_scans: c.invalid_scans,
        chain_length: c.chain_length,
        current_index: c.current_index,
        remaining: c.remaining(),
        scanned: qrlp_chain::progress::scanned(c.chain_length, c.current_index),
        percent_complete: qrlp_chain::progress::percent_complete(c.chain_length, c.current_index),
    }))
}
