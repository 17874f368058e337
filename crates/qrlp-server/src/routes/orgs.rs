//! Organizations and their members (seed 002's `/organizations`, under `/api/v1`).
//!
//! Routes under `/api/v1/organizations/{org_id}` (also served as
//! `/api/organizations/{org_id}`, seed 004's prefix) answer 403 to anyone who is not a
//! member of that organization, whether or not it exists.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use qrlp_store::{OwnerRule, Plan, Role};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Auth, AuthContext};
use crate::authz::{need, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::state::AppState;
use crate::store_error;
use crate::views::{
    MemberList, MemberView, OrganizationList, OrganizationView, PageQuery, Pagination,
};

/// Body of `POST /api/v1/organizations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// 1 to 100 characters, unique regardless of case.
    pub name: String,
    /// Only `free` (the default) is accepted: an operator changes plans
    /// (`qrlp admin set-plan`).
    pub plan: Option<String>,
}

/// Body of `PATCH`/`PUT /api/v1/organizations/{org_id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// A new name.
    pub name: Option<String>,
    /// Refused (403): an operator changes plans (`qrlp admin set-plan`).
    pub plan: Option<String>,
}

/// Body of `PATCH .../members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// Checks an organization name with the store's rule, before any work is done.
pub(crate) fn org_name(name: &str) -> Result<String, ApiError> {
    qrlp_store::valid_name("name", name).map_err(store_error)
}

pub(crate) fn parse_plan(plan: &str) -> Result<Plan, ApiError> {
    plan.parse::<Plan>().map_err(|_| {
        ApiError::invalid_field("plan", "must be free, starter, professional or enterprise")
    })
}

/// Whether the caller may touch owners (the conditional rule of the member routes).
pub(crate) fn owner_rule(auth: &AuthContext) -> OwnerRule {
    if auth.allows(Permission::OrganizationOwner) {
        OwnerRule::MayManageOwners
    } else {
        OwnerRule::OwnersUntouchable
    }
}

pub(crate) fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse::<Role>()
        .map_err(|_| ApiError::invalid_field("role", "must be owner, admin, member or viewer"))
}

/// List the organizations you belong to.
#[utoipa::path(
    get,
    path = "/api/v1/organizations",
    tag = "organizations",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Your organizations, with your role in each", body = OrganizationList),
        (status = 400, description = "Bad page or size", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 429, description = "Over the plan's rate limit", body = ErrorBody)
    )
)]
pub async fn list_organizations(
    State(state): State<AppState>,
    auth: Auth<need::Authenticated>,
    Query(q): Query<PageQuery>,
) -> Result<Json<OrganizationList>, ApiError> {
    let page = q.request()?;
    if let crate::auth::Principal::ApiKey(k) = &auth.principal {
        // A key belongs to one organization.
        let view = OrganizationView {
            role: Some(k.role.as_str().to_string()),
            ..OrganizationView::from(&k.organization)
        };
        let total = 1;
        let items = if page.page == 1 {
            vec![view]
        } else {
            Vec::new()
        };
        return Ok(Json(OrganizationList {
            organizations: items,
            pagination: Pagination {
                page: page.page,
                size: page.size,
                total,
                pages: 1,
            },
        }));
    }
    let user = auth.principal.user_id().unwrap_or_default();
    let result = state
        .store()
        .list_organizations_for_user(user, page)
        .await
        .map_err(store_error)?;
    Ok(Json(OrganizationList {
        organizations: result.items.iter().map(OrganizationView::from).collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Create an organization on the free plan; you become its owner. Needs a user session or
/// an API key whose scopes name `organizations:create`.
#[utoipa::path(
    post,
    path = "/api/v1/organizations",
    tag = "organizations",
    request_body = CreateOrganization,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created", body = OrganizationView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Needs a user session or a key whose scopes name organizations:create (and a creating user)", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)
    )
)]
pub async fn create_organization(
    State(state): State<AppState>,
    auth: Auth<need::OrganizationsCreate>,
    Input(body): Input<CreateOrganization>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let name = org_name(&body.name)?;
    // Finding 3: the plan came from the body, so anyone could pick a paid plan.
    let plan = body
        .plan
        .as_deref()
        .map(parse_plan)
        .transpose()?
        .unwrap_or(Plan::Free);
    if plan != Plan::Free {
        return Err(ApiError::invalid_field(
            "plan",
            "new organizations start on the free plan; an operator changes plans (qrlp admin set-plan)",
        ));
    }
    let owner = auth.principal.user_id().ok_or_else(|| {
        ApiError::forbidden("This key was not created by a user, so it cannot own an organization")
    })?;
    let org = state
        .store()
        .create_organization(
            &auth.meta.audit(None, auth.principal.actor()),
            &name,
            plan,
            owner,
        )
        .await
        .map_err(store_error)?;
    let mut view = OrganizationView::from(&org);
    view.role = Some("owner".into());
    Ok((StatusCode::CREATED, Json(view)))
}

/// Get an organization.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody)
    )
)]
pub async fn get_organization(
    auth: Auth<need::OrganizationRead>,
    Path(_org_id): Path<Uuid>,
) -> Result<Json<OrganizationView>, ApiError> {
    let org = auth.org()?;
    let mut view = OrganizationView::from(&org.organization);
    view.role = Some(org.role.as_str().to_string());
    Ok(Json(view))
}

/// Rename an organization. Plans are changed by an operator, not through the API.
#[utoipa::path(
    patch,
    path = "/api/v1/organizations/{org_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = UpdateOrganization,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Updated", body = OrganizationView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)
    )
)]
pub async fn update_organization(
    State(state): State<AppState>,
    auth: Auth<need::OrganizationWrite>,
    Path(org_id): Path<Uuid>,
    Input(body): Input<UpdateOrganization>,
) -> Result<Json<OrganizationView>, ApiError> {
    let name = body.name.as_deref().map(org_name).transpose()?;
    let plan = body.plan.as_deref().map(parse_plan).transpose()?;
    if plan.is_some() {
        return Err(ApiError::forbidden(
            "Only an operator changes plans (qrlp admin set-plan)",
        ));
    }
    if name.is_none() && plan.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "give name or plan to change",
        ));
    }
    let org = state
        .store()
        .update_organization(&auth.audit(), org_id, name.as_deref(), plan)
        .await
        .map_err(store_error)?;
    Ok(Json(OrganizationView::from(&org)))
}

/// Same as `PATCH`: seed 002 updates organizations with `PUT`.
#[utoipa::path(
    put,
    path = "/api/v1/organizations/{org_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = UpdateOrganization,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Updated", body = OrganizationView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)
    )
)]
pub async fn put_organization(
    state: State<AppState>,
    auth: Auth<need::OrganizationWrite>,
    path: Path<Uuid>,
    body: Input<UpdateOrganization>,
) -> Result<Json<OrganizationView>, ApiError> {
    update_organization(state, auth, path, body).await
}

/// List the members of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/members",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Members", body = MemberList),
        (status = 403, description = "Not a member", body = ErrorBody)
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    _auth: Auth<need::MembersRead>,
    Path(org_id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Json<MemberList>, ApiError> {
    let page = q.request()?;
    let result = state
        .store()
        .list_members(org_id, page)
        .await
        .map_err(store_error)?;
    Ok(Json(MemberList {
        members: result.items.iter().map(MemberView::from).collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Change a member's role.
#[utoipa::path(
    patch,
    path = "/api/v1/organizations/{org_id}/members/{user_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id"), ("user_id" = Uuid, Path, description = "User id")),
    request_body = ChangeRole,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Changed", body = MemberView),
        (status = 400, description = "Invalid role", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "Not a member of this organization", body = ErrorBody),
        (status = 409, description = "It would leave no owner", body = ErrorBody)
    )
)]
pub async fn change_role(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
    Input(body): Input<ChangeRole>,
) -> Result<Json<MemberView>, ApiError> {
    let role = parse_role(&body.role)?;
    // The owner rule is decided by the store on the role the target has inside the
    // transaction, so a concurrent promotion cannot slip past it.
    let member = state
        .store()
        .update_member_role(&auth.audit(), org_id, user_id, role, owner_rule(&auth))
        .await
        .map_err(store_error)?;
    Ok(Json(MemberView::from(&member)))
}

/// Remove a member.
#[utoipa::path(
    delete,
    path = "/api/v1/organizations/{org_id}/members/{user_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id"), ("user_id" = Uuid, Path, description = "User id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "Not a member of this organization", body = ErrorBody),
        (status = 409, description = "It would leave no owner", body = ErrorBody)
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .remove_member(&auth.audit(), org_id, user_id, owner_rule(&auth))
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}
