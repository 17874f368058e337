//! Seed 002's users and permissions: `GET /users` (the caller's organization, paginated)
//! and `PUT /users/{user_id}/permissions` (a member's role), within the platform's
//! delegation rules: `members:write` changes roles, and only an owner grants or takes away
//! the owner role; the last owner stays.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use qrlp_store::{Role, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::fleet::{FleetError, SeedErrorBody};
use crate::state::AppState;
use crate::views::{MemberView, PageQuery, Pagination};

/// `GET /users`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// Members of the organization with their roles.
    pub users: Vec<MemberView>,
    /// Paging.
    pub pagination: Pagination,
}

/// List the users of the caller's organization.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Users", body = UserList))
)]
pub async fn list_users(
    State(state): State<AppState>,
    auth: Auth<need::MembersRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<UserList>, FleetError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let p = state
        .store()
        .list_members(org, page)
        .await
        .map_err(FleetError::store)?;
    Ok(Json(UserList {
        users: p.items.iter().map(MemberView::from).collect(),
        pagination: Pagination::of(&p),
    }))
}

/// Body of `PUT /users/{user_id}/permissions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermissions {
    /// `owner`, `admin`, `member` or `viewer`: the role's permissions (see the role matrix
    /// in `docs/platform.md`).
    pub role: String,
}

/// Change a member's permissions (their role in the caller's organization).
#[utoipa::path(
    put,
    path = "/api/v1/users/{user_id}/permissions",
    tag = "users",
    params(("user_id" = Uuid, Path, description = "User id")),
    request_body = SetPermissions,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 403, description = "`INSUFFICIENT_PERMISSIONS`", body = SeedErrorBody),
        (status = 404, description = "Not a member of your organization", body = SeedErrorBody),
        (status = 409, description = "It would leave no owner", body = SeedErrorBody)
    )
)]
pub async fn set_permissions(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<MemberView>, FleetError> {
    let user_id = Uuid::parse_str(&user_id).map_err(|_| FleetError::not_found("User"))?;
    let req: SetPermissions =
        serde_json::from_slice(&body).map_err(|e| FleetError::validation("role", e))?;
    let role: Role = req
        .role
        .parse()
        .map_err(|_| FleetError::validation("role", "must be owner, admin, member or viewer"))?;
    let org = auth.org()?.organization.id;
    // The owner rule is checked by the store inside the transaction, as for
    // `PATCH /organizations/{org_id}/members/{user_id}`.
    let member = state
        .store()
        .update_member_role(
            &auth.audit(),
            org,
            user_id,
            role,
            crate::routes::orgs::owner_rule(&auth),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FleetError::not_found("User"),
            e => FleetError::store(e),
        })?;
    Ok(Json(MemberView::from(&member)))
}
