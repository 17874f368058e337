//! Extractors that reject with [`ApiError`]s, so that every route answers bad input with
//! the same envelope.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The message of every unparsable JSON body, as the qr-api seed documents it.
pub const INVALID_JSON: &str = "Invalid JSON body";

/// A JSON request body: `Content-Type: application/json` (415 otherwise), at most
/// `server.body_limit_bytes` (413 otherwise, before reading when `Content-Length` says so),
/// and parsable as `T` (400 "Invalid JSON body" otherwise).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = AppState::from_ref(state).config().server.body_limit_bytes;
        if content_length(req.headers()).is_some_and(|n| n > limit) {
            return Err(ApiError::payload_too_large(limit));
        }
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::payload_too_large(limit))
            }
            Err(rejection) => {
                return Err(ApiError::invalid_input(format!(
                    "Could not read the request body: {}",
                    rejection.body_text()
                )))
            }
        };
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|_| ApiError::invalid_input(INVALID_JSON))
    }
}

/// A JSON request body for the platform API: like [`JsonBody`], but a body that is JSON yet
/// does not fit `T` gets a 400 naming the field, e.g. `email: missing field` or
/// `role: unknown variant "root"`, with `details.field`.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<T, S> FromRequest<S> for Input<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = AppState::from_ref(state).config().server.body_limit_bytes;
        if content_length(req.headers()).is_some_and(|n| n > limit) {
            return Err(ApiError::payload_too_large(limit));
        }
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::payload_too_large(limit))
            }
            Err(rejection) => {
                return Err(ApiError::invalid_input(format!(
                    "Could not read the request body: {}",
                    rejection.body_text()
                )))
            }
        };
        parse_input(&bytes).map(Input)
    }
}

/// Parses a platform request body; see [`Input`].
///
/// # Errors
/// 400 `Invalid JSON body` for text that is not JSON; 400 naming the field otherwise.
pub fn parse_input<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|_| ApiError::invalid_input(INVALID_JSON))?;
            Ok(v)
        }
        Err(e) => {
            let inner = e.inner();
            if !inner.is_data() {
                return Err(ApiError::invalid_input(INVALID_JSON));
            }
            let mut message = inner.to_string();
            if let Some(at) = message.find(" at line ") {
                message.truncate(at);
            }
            let path = e.path().to_string();
            // A missing field is reported on its parent; name the field itself.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                Some(name) if path == "." => name.to_string(),
                Some(name) => format!("{path}.{name}"),
                None if path == "." => "body".to_string(),
                None => path,
            };
            Err(ApiError::invalid_field(&field, message))
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .get(subtype.len().saturating_sub(5)..)
                .is_some_and(|end| end.eq_ignore_ascii_case("+json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        email: String,
        count: u32,
    }

    #[test]
    fn input_errors_name_the_field() {
        let e = parse_input::<Probe>(br#"{"count":1}"#).unwrap_err();
        assert_eq!(e.message(), "email: missing field `email`");
        let e = parse_input::<Probe>(br#"{"email":"a","count":"x"}"#).unwrap_err();
        assert!(
            e.message().starts_with("count: invalid type"),
            "{}",
            e.message()
        );
        let e = parse_input::<Probe>(b"{nope").unwrap_err();
        assert_eq!(e.message(), INVALID_JSON);
        assert!(parse_input::<Probe>(br#"{"email":"a","count":2}"#).is_ok());
    }
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json(&h)
        };
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(check(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "json",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!check(bad), "{bad}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
