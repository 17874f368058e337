//! Users: who am I, create a user (admins), and look one up.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use qrlp_store::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Auth, Principal};
use crate::authz::{need, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::routes::orgs::parse_role;
use crate::state::AppState;
use crate::store_error;
use crate::views::{ApiKeyView, MemberView, OrganizationView, UserView};

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

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email address; unique regardless of case.
    pub email: String,
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Initial password for the web UI, 12 to 1024 characters; omit for an API-only user.
    pub password: Option<String>,
    /// Role in the organization of the request: `member` (default), `viewer`, `admin` or
    /// `owner`.
    pub role: Option<String>,
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

/// Create a user and add them to the organization of the request.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUser,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created and added", body = MemberView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody)
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Input(body): Input<CreateUser>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    // The store's rules, checked before the password is hashed.
    let email = qrlp_store::valid_email(&body.email).map_err(store_error)?;
    let name = qrlp_store::valid_name("name", &body.name).map_err(store_error)?;
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::Member);
    if role == Role::Owner {
        auth.require(Permission::OrganizationOwner)?;
    }
    let hash = match body.password.as_deref() {
        Some(p) if !(12..=1024).contains(&p.chars().count()) => {
            return Err(ApiError::invalid_field(
                "password",
                "must be 12 to 1024 characters",
            ))
        }
        Some(p) => {
            let p = p.to_string();
            Some(
                tokio::task::spawn_blocking(move || qrlp_store::secret::hash_password(&p))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(store_error)?,
            )
        }
        None => None,
    };
    let org = auth.org()?.organization.id;
    let store = state.store();
    let audit = auth.audit();
    let user = store
        .create_user(&audit, &email, &name, hash.as_deref())
        .await
        .map_err(store_error)?;
    let member = store
        .add_member(&audit, org, user.id, role)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(MemberView::from(&member))))
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
