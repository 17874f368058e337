//! `GET /api/v1/audit`: the organization's audit log, read-only (no route changes it).

use axum::extract::{Query, State};
use axum::Json;
use qrlp_store::AuditFilter;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store_error;
use crate::views::{AuditList, AuditView, PageQuery, Pagination};

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action, e.g. `api_key.revoke`.
    pub action: Option<String>,
    /// Only this actor (a user's or an API key's id).
    pub actor: Option<String>,
    /// From this time on, RFC 3339.
    pub since: Option<String>,
    /// Before this time, RFC 3339.
    pub until: Option<String>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    pub size: Option<u32>,
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                ApiError::invalid_field(
                    name,
                    "must be an RFC 3339 time such as 2025-01-15T10:30:00Z",
                )
            })
        })
        .transpose()
}

/// The organization's audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Audit records", body = AuditList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody)
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    auth: Auth<need::AuditRead>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let page = PageQuery {
        page: q.page,
        size: q.size,
    }
    .request()?;
    let actor_id = q
        .actor
        .as_deref()
        .map(|a| {
            Uuid::parse_str(a)
                .map_err(|_| ApiError::invalid_field("actor", "must be a user or API key id"))
        })
        .transpose()?;
    let filter = AuditFilter {
        action: q.action.clone(),
        actor_id,
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
    };
    let org = auth.org()?.organization.id;
    let result = state
        .store()
        .list_audit(org, &filter, page)
        .await
        .map_err(store_error)?;
    Ok(Json(AuditList {
        audit_logs: result.items.iter().map(AuditView::from).collect(),
        pagination: Pagination::of(&result),
    }))
}
