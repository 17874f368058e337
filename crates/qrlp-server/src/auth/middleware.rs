//! The middleware of protected routes: credential, CSRF, organization, plan budget.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::context::{AuthContext, Principal, RequestMeta};
use super::cookies::{check_csrf, cookie, is_mutating, SESSION_COOKIE};
use super::credentials::api_key_of;
use super::org::{org_id_param, resolve_org};
use crate::client::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;

/// The middleware of protected routes; see the module documentation.
pub async fn authenticate(
    Extension(state): Extension<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = ClientInfo::of(req.headers(), req.extensions(), &state);
    let meta = RequestMeta::of(req.headers(), &client);
    let principal = match principal_of(&state, req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            // Failed credentials spend the caller's per-address budget, so guessing keys
            // is as limited as any other unauthenticated use.
            if let Err(limited) = crate::limits::charge_ip(&state, client.ip).await {
                return limited;
            }
            return e.into_response();
        }
    };
    if let Principal::Session { session, .. } = &principal {
        if is_mutating(req.method()) {
            if let Err(e) = check_csrf(&state, req.headers(), &client, session) {
                return e.into_response();
            }
        }
    }
    let org = match resolve_org(&state, &principal, org_id_param(&req), req.headers()).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let bucket = match (&org, &principal) {
        (Some(o), _) => crate::limits::Bucket::Organization(&o.organization),
        (None, p) => crate::limits::Bucket::User(p.user_id().unwrap_or_default()),
    };
    let decision = match crate::limits::charge(&state, bucket).await {
        Ok(d) => d,
        Err(response) => return response,
    };
    req.extensions_mut().insert(Arc::new(AuthContext {
        principal,
        org,
        meta,
    }));
    let mut response = next.run(req).await;
    if let Some(d) = &decision {
        crate::limits::set_headers(response.headers_mut(), d);
    }
    response
}

async fn principal_of(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    if let Some(secret) = api_key_of(headers) {
        return Ok(Principal::ApiKey(state.auth().api_key(secret).await?));
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        let (user, session) = state.auth().session(token).await?;
        return Ok(Principal::Session { user, session });
    }
    Err(ApiError::unauthorized(
        "Authentication required: send an API key in X-API-Key or Authorization: Bearer",
    ))
}
