//! Web UI sessions: `POST /api/v1/auth/login` and `POST /api/v1/auth/logout`.
//!
//! Login sets the `qrlp_session` cookie: HttpOnly, SameSite=Lax, Path=/, and Secure when the
//! request came over HTTPS as [`ClientInfo`] derives it (only a trusted proxy can say so), or
//! `auth.secure_cookies = "always"`. The answer carries the
//! session's `csrf_token`; mutating requests authenticated by the cookie must send it in
//! `X-CSRF-Token` and come from an allowed `Origin`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use qrlp_store::{Actor, UserCredentials};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::credentials::password_checkable;
use crate::auth::{cookie, session_cookie, session_hash, RequestMeta, SESSION_COOKIE};
use crate::client::ClientInfo;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::state::AppState;
use crate::store_error;
use crate::views::{ts, UserView};

/// Body of `POST /api/v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user's email.
    pub email: String,
    /// The user's password.
    pub password: String,
}

/// Answer of a successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    /// The user.
    pub user: UserView,
    /// Send this in `X-CSRF-Token` with every mutating request made with the cookie.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: String,
}

/// Log in to the web UI.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = LoggedIn,
            headers(("Set-Cookie" = String, description = "qrlp_session=…; HttpOnly; SameSite=Lax"))),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
        (status = 503, description = "Too many password checks at once; retry after Retry-After", body = ErrorBody)
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Input(body): Input<Login>,
) -> Result<Response, ApiError> {
    // Longer passwords cannot belong to any account (the same rule as at creation).
    if body.email.len() > 254 || !password_checkable(&body.password) {
        return Err(ApiError::unauthorized("Wrong email or password"));
    }
    let store = state.store();
    let found = store
        .find_user_by_email(body.email.trim())
        .await
        .map_err(store_error)?;
    let (user, hash) = match found {
        Some(UserCredentials {
            user,
            password_hash: Some(h),
        }) => (Some(user), Some(h)),
        _ => (None, None),
    };
    let matches = state.passwords().verify(body.password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(ApiError::unauthorized("Wrong email or password"));
    };
    let (token, token_hash) = qrlp_store::secret::generate_token();
    let csrf = qrlp_store::secret::generate_csrf_token();
    let ttl = state.config().auth.session_ttl_secs;
    let expires = OffsetDateTime::now_utc() + Duration::from_secs(ttl);
    let meta = RequestMeta::of(&headers, &client);
    let session = store
        .create_session(
            &meta.audit(None, Actor::User(user.id)),
            user.id,
            &token_hash,
            &csrf,
            expires,
        )
        .await
        .map_err(store_error)?;
    let mut response = Json(LoggedIn {
        user: UserView::from(&user),
        csrf_token: csrf,
        expires_at: ts(session.expires_at),
    })
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, &client, &token, ttl),
    );
    Ok(response)
}

/// End the web UI session of the cookie, if any, and clear the cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared")
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(hash) = cookie(&headers, SESSION_COOKIE).and_then(session_hash) {
        let meta = RequestMeta::of(&headers, &client);
        state
            .store()
            .end_session(&meta.audit(None, Actor::System), &hash)
            .await
            .map_err(store_error)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, &client, "", 0));
    Ok(response)
}
