//! The seed's REST routes over a [`LiveChannel`], in the seed's shapes exactly. Each route is
//! a plain function of the channel, so `qrlp live` (one channel at `/api/...`) and the
//! platform (many channels, looked up per request) answer the same way.
//!
//! Errors answer in the seed's shape, `{"error", "message"|"details"}`, plus the
//! `request_id` of the request ([`ReqId`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::hub::{now_iso, LiveChannel, UserTextError};
use crate::image::{decode_qr, ImageError};

/// Largest request body of `POST /api/verify`: a phone photo.
pub const MAX_UPLOAD_BYTES: usize = 12 * 1024 * 1024;

/// The request id of the request being answered: the platform's (set by its middleware as
/// a request extension), else the client's `X-Request-ID` (1 to 128 visible ASCII
/// characters), else a new UUID v4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqId(pub Arc<str>);

impl ReqId {
    /// The id for a request's headers.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> ReqId {
        headers
            .get("x-request-id")
            .map(HeaderValue::as_bytes)
            .filter(|b| !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic))
            .and_then(|b| std::str::from_utf8(b).ok())
            .map_or_else(
                || ReqId(Arc::from(uuid::Uuid::new_v4().to_string())),
                |s| ReqId(Arc::from(s)),
            )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ReqId, Self::Rejection> {
        if let Some(id) = parts.extensions.get::<ReqId>() {
            return Ok(id.clone());
        }
        let id = ReqId::from_headers(&parts.headers);
        parts.extensions.insert(id.clone());
        Ok(id)
    }
}

/// An error in the seed's shape.
#[derive(Debug)]
pub struct SeedError {
    status: StatusCode,
    body: Value,
}

impl SeedError {
    /// `{"error": error, "message": message}`.
    pub fn message(status: StatusCode, error: &str, message: &str) -> SeedError {
        SeedError {
            status,
            body: json!({ "error": error, "message": message }),
        }
    }

    /// `{"error": error, "details": details}`.
    pub fn details(status: StatusCode, error: &str, details: impl Into<Value>) -> SeedError {
        SeedError {
            status,
            body: json!({ "error": error, "details": details.into() }),
        }
    }

    /// `{"error": error}` (the seed's user data error has nothing else).
    pub fn bare(status: StatusCode, error: &str) -> SeedError {
        SeedError {
            status,
            body: json!({ "error": error }),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response, with the request id in the body and the `X-Request-ID` header.
    pub fn respond(mut self, id: &ReqId) -> Response {
        if let Value::Object(m) = &mut self.body {
            m.insert("request_id".into(), Value::String(id.0.to_string()));
        }
        with_id((self.status, Json(self.body)).into_response(), id)
    }
}

fn with_id(mut r: Response, id: &ReqId) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

fn json_ok(body: Value, id: &ReqId) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_id(r, id)
}

/// `GET /api/status`.
pub fn status(channel: &LiveChannel, id: &ReqId) -> Response {
    json_ok(channel.status(), id)
}

/// `GET /api/qr/current`: `qr_data`, `qr_image`, `timestamp` (and the payload's extra
/// keys); 404 `{"error": "No QR data available", "message": "QR generation not started"}`
/// before the first frame.
pub fn current(channel: &LiveChannel, id: &ReqId) -> Response {
    match channel.current() {
        Some(payload) => {
            let mut body = (*payload).clone();
            if let Value::Object(m) = &mut body {
                m.insert("timestamp".into(), Value::String(now_iso()));
            }
            json_ok(body, id)
        }
        None => SeedError::message(
            StatusCode::NOT_FOUND,
            "No QR data available",
            "QR generation not started",
        )
        .respond(id),
    }
}

/// `GET /api/user-data`: `{"user_data": text}`.
pub fn get_user_data(channel: &LiveChannel, id: &ReqId) -> Response {
    json_ok(json!({ "user_data": channel.user_text() }), id)
}

/// `POST /api/user-data` with `{"user_text": ...}`.
pub fn post_user_data(channel: &LiveChannel, body: &Bytes, id: &ReqId) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return SeedError::details(
                StatusCode::BAD_REQUEST,
                "Invalid user data format",
                format!("JSON parsing failed: {e}"),
            )
            .respond(id)
        }
    };
    match channel.set_user_text(&value) {
        Ok(text) => json_ok(
            json!({
                "success": true,
                "message": "User data updated successfully",
                "user_data": text,
            }),
            id,
        ),
        Err(UserTextError::TooLong) => {
            SeedError::bare(StatusCode::BAD_REQUEST, crate::hub::USER_TEXT_TOO_LONG).respond(id)
        }
        Err(UserTextError::Invalid) => SeedError::details(
            StatusCode::BAD_REQUEST,
            "Invalid user data format",
            "expected {\"user_text\": \"...\"} with a string",
        )
        .respond(id),
    }
}

/// `GET /.well-known/qrlp-keys.json`: the public key set, cacheable for five minutes.
pub fn keys(channel: &LiveChannel, id: &ReqId) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "application/json")],
        channel.protocol().key_set().to_json(),
    )
        .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    with_id(r, id)
}

/// What `POST /api/verify` was given.
pub enum VerifyInput {
    /// Frame text (from `{"qr_data": "..."}`).
    Text(String),
    /// A decoded image's text.
    Image(String),
}

/// Reads the body of `POST /api/verify`: JSON `{"qr_data": "<frame>"}` (an object there is
/// taken as the frame's JSON), or a multipart form whose first file field is a PNG or JPEG
/// with a QR code in it.
///
/// # Errors
/// The seed's 400 shapes.
pub async fn verify_input(req: Request) -> Result<VerifyInput, SeedError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
            SeedError::details(
                StatusCode::BAD_REQUEST,
                "Invalid image upload",
                e.body_text(),
            )
        })?;
        loop {
            let field = form.next_field().await.map_err(|e| {
                SeedError::details(
                    StatusCode::BAD_REQUEST,
                    "Invalid image upload",
                    e.body_text(),
                )
            })?;
            let Some(field) = field else {
                return Err(SeedError::details(
                    StatusCode::BAD_REQUEST,
                    "Invalid image upload",
                    "no image file in the form (send it as the field \"image\")",
                ));
            };
            if field.file_name().is_none() && field.name() != Some("image") {
                continue;
            }
            let bytes = field.bytes().await.map_err(|e| {
                SeedError::details(
                    StatusCode::BAD_REQUEST,
                    "Invalid image upload",
                    e.body_text(),
                )
            })?;
            let decoded = tokio::task::spawn_blocking(move || decode_qr(&bytes))
                .await
                .map_err(|_| {
                    SeedError::details(
                        StatusCode::BAD_REQUEST,
                        "Invalid image upload",
                        "the image could not be decoded",
                    )
                })?;
            return match decoded {
                Ok(text) => Ok(VerifyInput::Image(text)),
                Err(e @ ImageError::NoCode) => Err(SeedError::details(
                    StatusCode::BAD_REQUEST,
                    "No QR code found in image",
                    e.to_string(),
                )),
                Err(e) => Err(SeedError::details(
                    StatusCode::BAD_REQUEST,
                    "Invalid image upload",
                    e.to_string(),
                )),
            };
        }
    }
    let body = Bytes::from_request(req, &()).await.map_err(|e| {
        SeedError::details(
            StatusCode::BAD_REQUEST,
            "Invalid QR data format",
            e.body_text(),
        )
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        SeedError::details(
            StatusCode::BAD_REQUEST,
            "Invalid QR data format",
            "JSON parsing failed",
        )
    })?;
    match value.get("qr_data") {
        Some(Value::String(s)) => Ok(VerifyInput::Text(s.clone())),
        Some(v @ Value::Object(_)) => Ok(VerifyInput::Text(v.to_string())),
        _ => Err(SeedError::details(
            StatusCode::BAD_REQUEST,
            "Invalid QR data format",
            "expected {\"qr_data\": \"<frame text>\"}",
        )),
    }
}

/// `POST /api/verify` for an input: `{valid, timestamp, message, details}`; 400 `{"error":
/// "Invalid QR data format", "details": ...}` when the text is not a frame.
pub fn verify(channel: &LiveChannel, input: VerifyInput, id: &ReqId) -> Response {
    let (text, from_image) = match input {
        VerifyInput::Text(t) => (t, false),
        VerifyInput::Image(t) => (t, true),
    };
    let report = channel.protocol().verify(&text);
    if !report.valid_json {
        let mut e = SeedError::details(
            StatusCode::BAD_REQUEST,
            "Invalid QR data format",
            report.error.clone().unwrap_or_default(),
        );
        if from_image {
            if let Value::Object(m) = &mut e.body {
                m.insert("decoded_text".into(), Value::String(text));
            }
        }
        return e.respond(id);
    }
    let valid = report.is_valid();
    let message = if valid {
        "QR data verification successful".to_string()
    } else {
        format!("QR data verification failed: {}", report.reason.message)
    };
    let details = serde_json::to_value(&report).unwrap_or(Value::Null);
    let mut body = json!({
        "valid": valid,
        "timestamp": now_iso(),
        "message": message,
        "details": details,
    });
    if from_image {
        if let Value::Object(m) = &mut body {
            m.insert("decoded_text".into(), Value::String(text));
        }
    }
    json_ok(body, id)
}

/// The seed's 404 for paths that are not routes.
pub fn not_found(id: &ReqId) -> Response {
    SeedError::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such route on this live server",
    )
    .respond(id)
}
