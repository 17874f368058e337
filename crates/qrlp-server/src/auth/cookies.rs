//! The session cookie and the CSRF defence of cookie-authenticated mutations.

use axum::http::{header, HeaderMap, HeaderValue, Method};
use qrlp_config::SecureCookies;
use qrlp_store::Session;
use subtle::ConstantTimeEq;

use super::CSRF_HEADER;
use crate::client::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "qrlp_session";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Whether a method changes state (and so needs the CSRF check with a cookie).
pub(crate) fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// CSRF defence for a cookie-authenticated mutating request: the origin must be the
/// server's own (or allowed by CORS), and `X-CSRF-Token` must equal the session's token.
/// The scheme is the one [`ClientInfo`] derives: a client cannot claim HTTPS unless a
/// trusted proxy says so.
pub(crate) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientInfo,
    session: &Session,
) -> Result<(), ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let after_scheme = referer.find("://")? + 3;
            let end = referer[after_scheme..]
                .find('/')
                .map_or(referer.len(), |i| after_scheme + i);
            Some(referer[..end].to_string())
        })
        .ok_or_else(|| {
            ApiError::forbidden("CSRF check failed: the request has no Origin or Referer header")
        })?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let scheme = client.scheme();
    let own = format!("{scheme}://{host}");
    let cors = &state.config().cors;
    let allowed = origin.eq_ignore_ascii_case(&own)
        || (cors.enabled
            && cors
                .allowed_origins
                .iter()
                .any(|o| o != "*" && o.eq_ignore_ascii_case(&origin)));
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "CSRF check failed: origin {origin:?} is not allowed"
        )));
    }
    let token = headers
        .get(&CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if token.is_empty() || !bool::from(token.ct_eq(session.csrf_token.as_bytes())) {
        return Err(ApiError::forbidden(
            "CSRF check failed: send the session's csrf_token in the X-CSRF-Token header",
        ));
    }
    Ok(())
}

/// The `Set-Cookie` value for the session cookie: HttpOnly, SameSite=Lax, and Secure when
/// the client came over HTTPS (as [`ClientInfo`] derives it) or the configuration says
/// always.
pub fn session_cookie(
    state: &AppState,
    client: &ClientInfo,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = match state.config().auth.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => client.https,
    };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; qrlp_session=tok_en; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok_en"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
