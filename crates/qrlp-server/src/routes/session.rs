//! Web UI sessions: `POST /api/v1/auth/login` and `POST /api/v1/auth/logout`.
//!
//! Login sets the `qrlp_session` cookie: HttpOnly, SameSite=Lax, Path=/, and Secure when the
//! request came over HTTPS (or `auth.secure_cookies = "always"`). The answer carries the
//! session's `csrf_token`; mutating requests authenticated by the cookie must send it in
//! `X-CSRF-Token` and come from an allowed `Origin`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use qrlp_config::SecureCookies;
use qrlp_store::{Actor, UserCredentials};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::{cookie, is_https, session_hash, PeerAddr, RequestMeta, SESSION_COOKIE};
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

/// A hash to check passwords against when the email is unknown, so that the answer takes
/// as long as for a known email.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        qrlp_store::secret::hash_password("decoy password that matches nothing").unwrap_or_default()
    })
}

fn cookie_header(state: &AppState, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let secure = match state.config().auth.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => is_https(headers),
    };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
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
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)
    )
)]
pub async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Input(body): Input<Login>,
) -> Result<Response, ApiError> {
    if body.email.len() > 254 || body.password.len() > 1024 {
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
        }) => (Some(user), h),
        _ => (None, decoy_hash().to_string()),
    };
    let password = body.password;
    let matches =
        tokio::task::spawn_blocking(move || qrlp_store::secret::verify_password(&password, &hash))
            .await
            .map_err(ApiError::internal)?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(ApiError::unauthorized("Wrong email or password"));
    };
    let (token, token_hash) = qrlp_store::secret::generate_token();
    let csrf = qrlp_store::secret::generate_csrf_token();
    let ttl = state.config().auth.session_ttl_secs;
    let expires = OffsetDateTime::now_utc() + Duration::from_secs(ttl);
    let session = store
        .create_session(user.id, &token_hash, &csrf, expires)
        .await
        .map_err(store_error)?;
    let meta = RequestMeta::of(&headers, peer);
    store
        .record_audit(
            &meta.audit(None, Actor::User(user.id)),
            "auth.login",
            "session",
            Some(&session.id.to_string()),
            serde_json::json!({}),
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
        cookie_header(&state, &headers, &token, ttl),
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
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(hash) = cookie(&headers, SESSION_COOKIE).and_then(session_hash) {
        let store = state.store();
        if let Some((session, user)) = store.find_session(&hash).await.map_err(store_error)? {
            store.delete_session(&hash).await.map_err(store_error)?;
            let meta = RequestMeta::of(&headers, peer);
            store
                .record_audit(
                    &meta.audit(None, Actor::User(user.id)),
                    "auth.logout",
                    "session",
                    Some(&session.id.to_string()),
                    serde_json::json!({}),
                )
                .await
                .map_err(store_error)?;
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_header(&state, &headers, "", 0));
    Ok(response)
}
