//! Invitations and "forgot password".
//!
//! No admin ever sets another person's password. `POST /api/v1/users` and
//! `POST .../members` make an invitation of the organization: a single-use token that
//! expires (`auth.invitation_ttl_secs`). The answer is the same whether or not an account
//! with that email exists anywhere on the platform.
//!
//! - With `mail.smtp_url` set, the link is mailed to the invitee and never returned.
//! - Without it, the link is returned to the inviting admin (`invite_url`, `invite_token`),
//!   who passes it on: the organization then trusts its admins with its invitations, and an
//!   admin who redeems an invitation for a new account picks that account's first password.
//!   Such an account holds only that organization's membership; another organization's
//!   invitation for the same email needs that organization's token, which the planting
//!   admin never sees.
//!
//! `POST /api/v1/auth/invitations/redeem` takes the token: with no account for the email, it
//! creates one with the password the redeemer chooses; with an account, the request must
//! carry that account's session (cookie and CSRF token).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use qrlp_store::{Actor, Invitation, NewInvitation, Redeemer, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::cookies::check_csrf;
use crate::auth::credentials::{password_length_ok, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use crate::auth::{cookie, Auth, AuthContext, RequestMeta, SESSION_COOKIE};
use crate::authz::{need, Permission};
use crate::client::ClientInfo;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::routes::orgs::parse_role;
use crate::state::AppState;
use crate::store_error;
use crate::views::{ts, MemberView, PageQuery, Pagination};

/// An invitation as its organization's admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Invitation id.
    pub id: Uuid,
    /// The organization it admits to.
    pub organization_id: Uuid,
    /// The address invited.
    pub email: String,
    /// The role the invitee gets.
    pub role: String,
    /// `pending`, `accepted` or `expired`.
    pub status: String,
    /// When it was made.
    pub created_at: String,
    /// After this it cannot be redeemed.
    pub expires_at: String,
    /// When it was redeemed.
    pub accepted_at: Option<String>,
}

impl From<&Invitation> for InvitationView {
    fn from(i: &Invitation) -> Self {
        let status = if i.accepted_at.is_some() {
            "accepted"
        } else if i.expires_at <= OffsetDateTime::now_utc() {
            "expired"
        } else {
            "pending"
        };
        InvitationView {
            id: i.id,
            organization_id: i.org_id,
            email: i.email.clone(),
            role: i.role.as_str().to_string(),
            status: status.into(),
            created_at: ts(i.created_at),
            expires_at: ts(i.expires_at),
            accepted_at: i.accepted_at.map(ts),
        }
    }
}

/// Answer to an invitation: identical whether or not the email has an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationCreated {
    /// The invitation.
    pub invitation: InvitationView,
    /// `email` (sent to the invitee; no link here) or `link` (no mail configured: pass the
    /// link on yourself).
    pub delivery: String,
    /// The link to pass on, only when `delivery` is `link`. It works once.
    pub invite_url: Option<String>,
    /// The token of that link, only when `delivery` is `link`.
    pub invite_token: Option<String>,
}

/// A page of invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    /// The invitations, oldest first.
    pub invitations: Vec<InvitationView>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// Body of `POST /api/v1/users`: invite a person into the organization of the request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email address to invite.
    pub email: String,
    /// A display name suggested for a new account, 1 to 200 characters.
    pub name: Option<String>,
    /// Role in the organization: `member` (default), `viewer`, `admin` or `owner`
    /// (owners only).
    pub role: Option<String>,
}

/// Body of `POST .../members`: invite a person, by email or by the id of a user who shares
/// an organization with you.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's id (someone you already share an organization with).
    pub user_id: Option<Uuid>,
    /// Or an email address.
    pub email: Option<String>,
    /// `owner` (owners only), `admin`, `member` (default) or `viewer`.
    pub role: Option<String>,
}

/// Body of `POST /api/v1/auth/invitations/redeem`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The invitation's token.
    pub token: String,
    /// For a new account: its password, 12 to 1024 characters. Not used when the request
    /// carries the session of the invited account.
    pub password: Option<String>,
    /// For a new account: its display name (default: the one suggested in the invitation).
    pub name: Option<String>,
}

/// Body of `POST /api/v1/auth/forgot-password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    /// The account's email.
    pub email: String,
}

/// Body of `POST /api/v1/auth/reset-password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The token from the mailed link.
    pub token: String,
    /// The new password, 12 to 1024 characters.
    pub password: String,
}

/// Answer of `POST /api/v1/auth/forgot-password`: always the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
}

fn password_rule() -> ApiError {
    ApiError::invalid_field(
        "password",
        format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
    )
}

fn bad_token() -> ApiError {
    ApiError::invalid_field("token", "unknown, already used or expired")
}

/// A token's hash, when the text has the shape of one of ours.
fn token_hash(token: &str) -> Option<[u8; 32]> {
    crate::auth::session_hash(token.trim())
}

/// Makes the invitation and delivers it: by mail, or back to the caller.
async fn invite(
    state: &AppState,
    auth: &AuthContext,
    org_id: Uuid,
    email: &str,
    name: Option<String>,
    role: Role,
) -> Result<InvitationCreated, ApiError> {
    if role == Role::Owner {
        auth.require(Permission::OrganizationOwner)?;
    }
    let email = qrlp_store::valid_email(email).map_err(store_error)?;
    let (token, hash) = qrlp_store::secret::generate_token();
    let ttl = Duration::from_secs(state.config().auth.invitation_ttl_secs);
    let invitation = state
        .store()
        .create_invitation(
            &auth.audit(),
            NewInvitation {
                org_id,
                email: email.clone(),
                name,
                role,
                token_hash: hash,
                expires_at: OffsetDateTime::now_utc() + ttl,
            },
        )
        .await
        .map_err(store_error)?;
    let link = format!(
        "{}/invite#token={token}",
        state.config().server.public_base_url()
    );
    let org_name = auth
        .org
        .as_ref()
        .map_or_else(String::new, |o| o.organization.name.clone());
    if let Some(mailer) = state.mailer() {
        let body = format!(
            "You are invited to join the organization \"{org_name}\" on qrlp as {role}.\n\n\
             Open this link to accept (it works once, until {expires}):\n{link}\n\n\
             With no account yet, you choose your password there. With an account, log in \
             first and accept while logged in.\n\nIf you did not expect this, ignore it.\n",
            role = role.as_str(),
            expires = ts(invitation.expires_at),
        );
        mailer
            .send(&email, "Invitation to qrlp", body)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, invitation = %invitation.id, "invitation mail not sent");
                ApiError::new(
                    crate::error::ErrorCode::Unavailable,
                    "The invitation was made but its mail could not be sent; try again",
                )
            })?;
        return Ok(InvitationCreated {
            invitation: InvitationView::from(&invitation),
            delivery: "email".into(),
            invite_url: None,
            invite_token: None,
        });
    }
    Ok(InvitationCreated {
        invitation: InvitationView::from(&invitation),
        delivery: "link".into(),
        invite_url: Some(link),
        invite_token: Some(token),
    })
}

/// Invite a person into the organization of the request. No password is set here: the
/// invitee chooses it when redeeming.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUser,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "Invited; the same answer whether or not the email has an account", body = InvitationCreated),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 503, description = "The invitation mail could not be sent", body = ErrorBody)
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Input(body): Input<CreateUser>,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    let name = body
        .name
        .as_deref()
        .map(|n| qrlp_store::valid_name("name", n))
        .transpose()
        .map_err(store_error)?;
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::Member);
    let org = auth.org()?.organization.id;
    let created = invite(&state, &auth, org, &body.email, name, role).await?;
    Ok((StatusCode::ACCEPTED, Json(created)))
}

/// Invite a person into an organization, by email or by the id of a user you share an
/// organization with.
#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/members",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = AddMember,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "Invited; the same answer whether or not the email has an account", body = InvitationCreated),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such user among the people you share an organization with", body = ErrorBody),
        (status = 503, description = "The invitation mail could not be sent", body = ErrorBody)
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Path(org_id): Path<Uuid>,
    Input(body): Input<AddMember>,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::Member);
    let store = state.store();
    let email = match (body.user_id, body.email) {
        (Some(id), _) => {
            // Only someone the caller already shares an organization with: ids of other
            // people answer 404, as if they did not exist.
            let caller = auth.principal.user_id().ok_or_else(ApiError::not_found)?;
            if !store
                .shares_organization(caller, id)
                .await
                .map_err(store_error)?
            {
                return Err(ApiError::not_found());
            }
            store.get_user(id).await.map_err(store_error)?.email
        }
        (None, Some(email)) => email,
        (None, None) => return Err(ApiError::invalid_field("email", "give email or user_id")),
    };
    let created = invite(&state, &auth, org_id, &email, None, role).await?;
    Ok((StatusCode::ACCEPTED, Json(created)))
}

/// List the organization's invitations.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/invitations",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Invitations, without their tokens", body = InvitationList),
        (status = 400, description = "Bad page or size", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody)
    )
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    _auth: Auth<need::MembersWrite>,
    Path(org_id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Json<InvitationList>, ApiError> {
    let page = q.request()?;
    let result = state
        .store()
        .list_invitations(org_id, page)
        .await
        .map_err(store_error)?;
    Ok(Json(InvitationList {
        invitations: result.items.iter().map(InvitationView::from).collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Withdraw an invitation that is still pending.
#[utoipa::path(
    delete,
    path = "/api/v1/organizations/{org_id}/invitations/{invitation_id}",
    tag = "organizations",
    params(("org_id" = Uuid, Path, description = "Organization id"), ("invitation_id" = Uuid, Path, description = "Invitation id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No pending invitation with this id in the organization", body = ErrorBody)
    )
)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    auth: Auth<need::MembersWrite>,
    Path((org_id, invitation_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .revoke_invitation(&auth.audit(), org_id, invitation_id)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Redeem an invitation: join its organization. With no account for the invited email, the
/// account is created with the password given here; with one, send this request with that
/// account's session cookie and CSRF token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/invitations/redeem",
    tag = "auth",
    request_body = Redeem,
    responses(
        (status = 201, description = "Joined", body = MemberView),
        (status = 400, description = "Invalid field, or the token is unknown, used or expired", body = ErrorBody),
        (status = 401, description = "The session cookie is not valid", body = ErrorBody),
        (status = 403, description = "The session is another account's, or fails the CSRF check", body = ErrorBody),
        (status = 409, description = "The email has an account (log in as it first), or it is a member already", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
        (status = 503, description = "Too many password checks at once", body = ErrorBody)
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Input(body): Input<Redeem>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let hash = token_hash(&body.token).ok_or_else(bad_token)?;
    let meta = RequestMeta::of(&headers, &client);
    let redeemer = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => {
            let (user, session) = state.auth().session(token).await?;
            check_csrf(&state, &headers, &client, &session)?;
            Redeemer::SignedIn(user.id)
        }
        None => {
            let password = body.password.ok_or_else(|| {
                ApiError::invalid_field(
                    "password",
                    "required to create the account (or send the invited account's session)",
                )
            })?;
            if !password_length_ok(&password) {
                return Err(password_rule());
            }
            let name = body
                .name
                .as_deref()
                .map(|n| qrlp_store::valid_name("name", n))
                .transpose()
                .map_err(store_error)?;
            Redeemer::NewAccount {
                name,
                password_hash: state.passwords().hash(password).await?,
            }
        }
    };
    let member = state
        .store()
        .redeem_invitation(&meta.audit(None, Actor::System), &hash, redeemer)
        .await
        .map_err(|e| match e {
            qrlp_store::StoreError::NotFound => bad_token(),
            e => store_error(e),
        })?;
    Ok((StatusCode::CREATED, Json(MemberView::from(&member))))
}

/// Ask for a password reset link by mail. The answer is the same whether or not the email
/// has an account; without `mail.smtp_url` nothing is sent.
#[utoipa::path(
    post,
    path = "/api/v1/auth/forgot-password",
    tag = "auth",
    request_body = ForgotPassword,
    responses(
        (status = 202, description = "If the email has an account and mail is configured, a link is on its way", body = Accepted),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)
    )
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Input(body): Input<ForgotPassword>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let email = qrlp_store::valid_email(&body.email).map_err(store_error)?;
    let meta = RequestMeta::of(&headers, &client);
    // In the background, so that the answer takes as long whether or not the account exists.
    let state = state.clone();
    tokio::spawn(async move {
        let Some(mailer) = state.mailer() else {
            tracing::info!("password reset asked for, but no mail is configured: nothing sent");
            return;
        };
        let (token, hash) = qrlp_store::secret::generate_token();
        let ttl = Duration::from_secs(state.config().auth.password_reset_ttl_secs);
        let found = state
            .store()
            .create_password_reset(
                &meta.audit(None, Actor::System),
                &email,
                &hash,
                OffsetDateTime::now_utc() + ttl,
            )
            .await;
        let user = match found {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "password reset not stored");
                return;
            }
        };
        let link = format!(
            "{}/reset-password#token={token}",
            state.config().server.public_base_url()
        );
        let text = format!(
            "Someone asked to reset the password of your qrlp account.\n\n\
             Open this link to choose a new one (it works once, for {} minutes):\n{link}\n\n\
             If it was not you, ignore this mail: your password stays as it is.\n",
            ttl.as_secs() / 60
        );
        if let Err(e) = mailer
            .send(&user.email, "Reset your qrlp password", text)
            .await
        {
            tracing::error!(error = %e, "password reset mail not sent");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted".into(),
        }),
    ))
}

/// Set a new password with a reset token; every session of the account ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/reset-password",
    tag = "auth",
    request_body = ResetPassword,
    responses(
        (status = 204, description = "Password changed; log in again"),
        (status = 400, description = "Invalid field, or the token is unknown, used or expired", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
        (status = 503, description = "Too many password checks at once", body = ErrorBody)
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Input(body): Input<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    let hash = token_hash(&body.token).ok_or_else(bad_token)?;
    if !password_length_ok(&body.password) {
        return Err(password_rule());
    }
    let password_hash = state.passwords().hash(body.password).await?;
    let meta = RequestMeta::of(&headers, &client);
    state
        .store()
        .reset_password(&meta.audit(None, Actor::System), &hash, &password_hash)
        .await
        .map_err(|e| match e {
            qrlp_store::StoreError::NotFound => bad_token(),
            e => store_error(e),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
