//! Seed 002's security routes: key status with the rotation schedule, forced rotation, and
//! the security audit (the platform audit filtered to security events).

use axum::extract::{Query, State};
use axum::Json;
use qrlp_fleet::rotation::{version_label, KeyVersion};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::authz::need;
use crate::fleet::{rfc3339, Channel, FleetError, SeedErrorBody};
use crate::state::AppState;
use crate::views::{AuditView, PageQuery, Pagination};

/// One key version of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// `dev_…`.
    pub device_id: String,
    /// `v1`, `v2`, ...
    pub key_version: String,
    /// Registration time.
    pub created_at: String,
    /// Rotation due date (current key) or end of grace (replaced key).
    pub expires_at: String,
    /// `ML-KEM-768` (the key encapsulation; formerly CRYSTALS-Kyber). Each version also
    /// holds the device's Ed25519 request-signing key.
    pub algorithm: &'static str,
    /// `active`, `rotation_due`, `grace` or `expired`.
    pub status: &'static str,
}

/// The seed's `rotation_schedule`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationSchedule {
    /// When the oldest current key of the organization is due.
    pub next_rotation: String,
    /// `fleet.rotation_interval_days`.
    pub interval_days: u32,
    /// `fleet.rotation_grace_secs`.
    pub grace_period_secs: i64,
}

/// `GET /security/keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Key versions of the organization's devices.
    pub keys: Vec<KeyView>,
    /// Scheduled rotation.
    pub rotation_schedule: RotationSchedule,
    /// Paging.
    pub pagination: Pagination,
}

/// Key status of the organization's devices, and the rotation schedule.
#[utoipa::path(
    get,
    path = "/api/v1/security/keys",
    tag = "security",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Keys", body = KeyList))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Auth<need::SecurityRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<KeyList>, FleetError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let store = state.store();
    let p = store
        .list_device_keys(org, page)
        .await
        .map_err(FleetError::store)?;
    let (_, oldest) = store.fleet_counts(org).await.map_err(FleetError::store)?;
    let policy = state.fleet().policy();
    let now = OffsetDateTime::now_utc();
    let keys = p
        .items
        .iter()
        .map(|k| {
            let v = KeyVersion {
                version: k.version,
                created_at: k.created_at,
                superseded_at: k.superseded_at,
            };
            KeyView {
                device_id: k.device_id.clone(),
                key_version: version_label(k.version),
                created_at: rfc3339(k.created_at),
                expires_at: rfc3339(policy.expires_at(&v)),
                algorithm: "ML-KEM-768",
                status: policy.status(&v, now).as_str(),
            }
        })
        .collect();
    Ok(Json(KeyList {
        keys,
        rotation_schedule: RotationSchedule {
            next_rotation: rfc3339(policy.next_rotation(oldest, now)),
            interval_days: policy.interval_days,
            grace_period_secs: policy.grace.whole_seconds(),
        },
        pagination: Pagination::of(&p),
    }))
}

/// Body of `POST /security/keys/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// One device; omit to rotate every device of the organization.
    pub device_id: Option<String>,
}

/// Answer of `POST /security/keys/rotate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationRequested {
    /// The devices asked to rotate at their next heartbeat.
    pub devices: Vec<String>,
    /// When it was asked.
    pub requested_at: String,
}

/// Force key rotation: the devices pick it up at their next heartbeat, make new keys and
/// register them, signed with their current key; the old version stays valid for the grace
/// period.
#[utoipa::path(
    post,
    path = "/api/v1/security/keys/rotate",
    tag = "security",
    request_body = RotateRequest,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "Asked", body = RotationRequested),
        (status = 404, description = "`DEVICE_NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    auth: Auth<need::SecurityWrite>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<RotationRequested>), FleetError> {
    let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| FleetError::validation("body", e))?
    };
    let org = auth.org()?.organization.id;
    let ids = state
        .store()
        .request_key_rotation(&auth.audit(), org, req.device_id.as_deref())
        .await
        .map_err(|e| match e {
            qrlp_store::StoreError::NotFound => {
                FleetError::device_not_found(req.device_id.as_deref().unwrap_or(""))
            }
            e => FleetError::store(e),
        })?;
    let now = OffsetDateTime::now_utc();
    state.fleet().publish(
        org,
        None,
        &[Channel::Security],
        "key_rotation_requested",
        serde_json::json!({ "devices": ids, "requested_at": rfc3339(now) }),
    );
    state.fleet().log(
        "info",
        "security",
        Some(org),
        format!("key rotation asked of {} device(s)", ids.len()),
    );
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(RotationRequested {
            devices: ids,
            requested_at: rfc3339(now),
        }),
    ))
}

/// `GET /security/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityAudit {
    /// Newest first.
    pub events: Vec<AuditView>,
    /// Paging.
    pub pagination: Pagination,
}

/// Security audit: the platform audit log filtered to security events (`security.*`,
/// `device.*`, `enrollment_token.*`, `auth.*`, `api_key.*`, `member.*`).
#[utoipa::path(
    get,
    path = "/api/v1/security/audit",
    tag = "security",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Events", body = SecurityAudit))
)]
pub async fn audit(
    State(state): State<AppState>,
    auth: Auth<need::SecurityRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<SecurityAudit>, FleetError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let p = state
        .store()
        .list_security_audit(org, page)
        .await
        .map_err(FleetError::store)?;
    Ok(Json(SecurityAudit {
        events: p.items.iter().map(AuditView::from).collect(),
        pagination: Pagination::of(&p),
    }))
}
