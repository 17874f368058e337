//! API keys of the request's organization: list, create (the secret is shown once),
//! get and revoke. A key of another organization answers 404.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use qrlp_store::NewApiKey;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Auth, Principal};
use crate::authz::{need, scope_covered, validate_scopes};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::state::AppState;
use crate::store_error;
use crate::views::{ApiKeyList, ApiKeyView, PageQuery, Pagination};

/// Body of `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, 1 to 100 characters.
    pub name: String,
    /// What it may do: `*`, `read`, or permission names such as `audit:read`. Each must be
    /// within the caller's own scopes (403 otherwise). Default: the calling key's scopes, or
    /// `["*"]` (everything the role allows) for a user session.
    pub scopes: Option<Vec<String>>,
    /// When it stops working, RFC 3339; must be in the future.
    pub expires_at: Option<String>,
}

/// Answer of `POST /api/v1/api-keys`: the key and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The secret, `qrlp_…`. It is shown only here: store it now.
    pub key: String,
    /// The key's record.
    #[serde(flatten)]
    pub api_key: ApiKeyView,
}

/// List the organization's API keys.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The keys, without secrets", body = ApiKeyList),
        (status = 403, description = "The role does not allow it", body = ErrorBody)
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    auth: Auth<need::ApiKeysRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let result = state
        .store()
        .list_api_keys(org, page)
        .await
        .map_err(store_error)?;
    Ok(Json(ApiKeyList {
        api_keys: result.items.iter().map(ApiKeyView::from).collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Create an API key. It acts with your role, narrowed by its scopes.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = CreateApiKey,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created; the secret is in `key`, shown this once", body = CreatedApiKey),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "The role does not allow it, or a scope is wider than the caller's", body = ErrorBody)
    )
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: Auth<need::ApiKeysWrite>,
    Input(body): Input<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let name = qrlp_store::valid_name("name", &body.name).map_err(store_error)?;
    // Finding 1: delegation never escalates. A key's new key gets at most its scopes; a
    // session holds every scope its role allows, `organizations:create` included.
    let held: Vec<String> = match &auth.principal {
        Principal::ApiKey(k) => k.key.scopes.clone(),
        Principal::Session { .. } => vec!["*".into(), "organizations:create".into()],
    };
    let scopes = match body.scopes {
        Some(s) => s,
        None => match &auth.principal {
            Principal::ApiKey(k) => k.key.scopes.clone(),
            Principal::Session { .. } => vec!["*".to_string()],
        },
    };
    if scopes.is_empty() || scopes.len() > 32 {
        return Err(ApiError::invalid_field("scopes", "give 1 to 32 scopes"));
    }
    validate_scopes(&scopes).map_err(|m| ApiError::invalid_field("scopes", m))?;
    if let Some(wider) = scopes.iter().find(|s| !scope_covered(&held, s)) {
        return Err(ApiError::forbidden(format!(
            "A key cannot get the scope {wider:?}, which the caller does not hold"
        ))
        .with_details(serde_json::json!({ "scope": wider, "held": held })));
    }
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(text) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                ApiError::invalid_field(
                    "expires_at",
                    "must be an RFC 3339 time such as 2030-01-01T00:00:00Z",
                )
            })?;
            if t <= OffsetDateTime::now_utc() {
                return Err(ApiError::invalid_field(
                    "expires_at",
                    "must be in the future",
                ));
            }
            Some(t)
        }
    };
    let org = auth.org()?.organization.id;
    let generated = qrlp_store::secret::generate_api_key();
    let key = state
        .store()
        .create_api_key(
            &auth.audit(),
            NewApiKey {
                org_id: org,
                name,
                scopes,
                created_by: auth.principal.user_id(),
                expires_at,
                prefix: generated.prefix.clone(),
                hash: generated.hash,
            },
        )
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: generated.secret.clone(),
            api_key: ApiKeyView::from(&key),
        }),
    ))
}

/// Get one API key of the organization.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys/{key_id}",
    tag = "api-keys",
    params(("key_id" = Uuid, Path, description = "API key id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The key, without its secret", body = ApiKeyView),
        (status = 404, description = "No such key in your organization", body = ErrorBody)
    )
)]
pub async fn get_api_key(
    State(state): State<AppState>,
    auth: Auth<need::ApiKeysRead>,
    Path(key_id): Path<Uuid>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let org = auth.org()?.organization.id;
    let key = state
        .store()
        .get_api_key(org, key_id)
        .await
        .map_err(store_error)?;
    Ok(Json(ApiKeyView::from(&key)))
}

/// Revoke an API key. Every server stops accepting it within `auth.key_cache_ttl_ms`
/// (2 s by default, at most 5 s).
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{key_id}",
    tag = "api-keys",
    params(("key_id" = Uuid, Path, description = "API key id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Revoked (revoking again changes nothing)", body = ApiKeyView),
        (status = 404, description = "No such key in your organization", body = ErrorBody)
    )
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    auth: Auth<need::ApiKeysWrite>,
    Path(key_id): Path<Uuid>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let org = auth.org()?.organization.id;
    let key = state
        .store()
        .revoke_api_key(&auth.audit(), org, key_id)
        .await
        .map_err(store_error)?;
    Ok(Json(ApiKeyView::from(&key)))
}
