//! Users: who am I, and look one up. Creating a user is an invitation
//! ([`crate::routes::invitations::create_user`]).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Auth, Principal};
use crate::authz::need;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store_error;
use crate::views::{ApiKeyView, OrganizationView, UserView};

/// Body of `GET /api/v1/users/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user acting: the session's, or the API key's creator.
    pub user: Option<UserView>,
    /// The organization the request acts in, with the role.
    pub organization: Option<OrganizationView>,
    /// The API key, when the request used one.
    pub api_key: Option<ApiKeyView>,
}

/// Who is calling.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid credentials", body = ErrorBody)
    )
)]
pub async fn me(
    State(state): State<AppState>,
    auth: Auth<need::Authenticated>,
) -> Result<Json<Me>, ApiError> {
    let organization = auth.org.as_ref().map(|o| OrganizationView {
        role: Some(o.role.as_str().to_string()),
        ..OrganizationView::from(&o.organization)
    });
    let (user, api_key) = match &auth.principal {
        Principal::Session { user, .. } => (Some(UserView::from(user)), None),
        Principal::ApiKey(k) => {
            let user = match k.key.created_by {
                Some(id) => Some(UserView::from(
                    &state.store().get_user(id).await.map_err(store_error)?,
                )),
                None => None,
            };
            (user, Some(ApiKeyView::from(&k.key)))
        }
    };
    Ok(Json(Me {
        user,
        organization,
        api_key,
    }))
}

/// Get a user who shares the request's organization.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    params(("user_id" = Uuid, Path, description = "User id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in your organization", body = ErrorBody)
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    auth: Auth<need::MembersRead>,
    Path(user_id): Path<Uuid>,
) -> Result<Json<UserView>, ApiError> {
    let org = auth.org()?.organization.id;
    let store = state.store();
    // Another organization's user answers 404, as if it did not exist.
    store
        .get_role(org, user_id)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    let user = store.get_user(user_id).await.map_err(store_error)?;
    Ok(Json(UserView::from(&user)))
}
