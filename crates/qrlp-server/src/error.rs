//! The one error type of the HTTP API and the JSON envelope every error response uses:
//!
//! ```json
//! {"code": "INVALID_INPUT", "message": "border must be between 1 and 10",
//!  "error": "border must be between 1 and 10", "request_id": "…"}
//! ```
//!
//! `error` repeats `message` for clients written against the seeds' `{"error": …}` shape.
//! An internal cause is logged with the request id and never shown to the client.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id::RequestId;

/// Machine-readable error codes. Each has one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: a field, parameter or body is not acceptable.
    InvalidInput,
    /// 401: credentials are missing or not valid.
    Unauthorized,
    /// 403: authenticated, but the role or organization does not allow it.
    Forbidden,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 413: the request body is over the limit.
    PayloadTooLarge,
    /// 409: the resource already exists or the change conflicts with its state.
    Conflict,
    /// 415: the body is not of the content type the route takes.
    UnsupportedMediaType,
    /// 429: over the rate limit; `Retry-After` says when to try again.
    RateLimited,
    /// 500: a bug or an unexpected failure; details are in the log only.
    Internal,
    /// 503: a dependency is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code as it appears in the body, e.g. `INVALID_INPUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The code for an error status produced outside [`ApiError`] (by axum or a layer), and
    /// the message to send with it.
    pub(crate) fn for_status(status: StatusCode) -> (ErrorCode, &'static str) {
        match status {
            StatusCode::NOT_FOUND => (ErrorCode::NotFound, "Not found"),
            StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "Method not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => {
                (ErrorCode::PayloadTooLarge, "Request body is too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (ErrorCode::UnsupportedMediaType, "Unsupported content type")
            }
            StatusCode::SERVICE_UNAVAILABLE => (ErrorCode::Unavailable, "Service unavailable"),
            StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "Authentication required"),
            StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "Forbidden"),
            StatusCode::CONFLICT => (ErrorCode::Conflict, "Conflict"),
            StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "Rate limit exceeded"),
            s if s.is_client_error() => (ErrorCode::InvalidInput, "Invalid request"),
            _ => (ErrorCode::Internal, INTERNAL_MESSAGE),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client sees of every 500.
pub const INTERNAL_MESSAGE: &str = "Internal server error";

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "code": "INVALID_INPUT",
    "message": "Field 'url' is required",
    "error": "Field 'url' is required",
    "request_id": "550e8400-e29b-41d4-a716-446655440000"
}))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable description.
    pub message: String,
    /// The same text as `message`, for clients of the `{"error": ...}` shape.
    pub error: String,
    /// The request id, as in the `X-Request-ID` response header.
    pub request_id: String,
    /// Structured detail, when the error has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An error a handler returns; it becomes a JSON envelope response.
///
/// ```
/// use qrlp_server::{ApiError, ErrorCode};
/// let e = ApiError::invalid_input("border must be between 1 and 10");
/// assert_eq!(e.code(), ErrorCode::InvalidInput);
/// assert_eq!(e.message(), "border must be between 1 and 10");
/// ```
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// An error with any code and message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            cause: None,
        }
    }

    /// 400 `INVALID_INPUT`.
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::InvalidInput, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "Not found")
    }

    /// 401 `UNAUTHORIZED`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    /// 400 `INVALID_INPUT` about one field, named in the message and in
    /// `details.field`.
    pub fn invalid_field(field: &str, message: impl fmt::Display) -> ApiError {
        ApiError::invalid_input(format!("{field}: {message}"))
            .with_details(serde_json::json!({ "field": field }))
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(ErrorCode::MethodNotAllowed, "Method not allowed")
    }

    /// 413 `PAYLOAD_TOO_LARGE`, naming the limit.
    pub fn payload_too_large(limit_bytes: u64) -> ApiError {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("Request body is too large (max {limit_bytes} bytes)"),
        )
        .with_details(serde_json::json!({ "limit_bytes": limit_bytes }))
    }

    /// 415 `UNSUPPORTED_MEDIA_TYPE`, naming the type the route takes.
    pub fn unsupported_media_type(expected: &str) -> ApiError {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type must be {expected}"),
        )
    }

    /// 500 `INTERNAL`. The cause is logged with the request id; the client sees only
    /// "Internal server error".
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ApiError {
        ApiError {
            cause: Some(cause.into()),
            ..ApiError::new(ErrorCode::Internal, INTERNAL_MESSAGE)
        }
    }

    /// Adds structured detail to the body.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Adds a `Retry-After` header (seconds) to the response.
    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response, with the id of the current request (or a new one outside a request).
    fn to_response(&self) -> Response {
        let request_id = RequestId::current().unwrap_or_else(RequestId::generate);
        let body = ErrorBody {
            code: self.code,
            message: self.message.to_string(),
            error: self.message.to_string(),
            request_id: request_id.to_string(),
            details: self.details.clone(),
        };
        let json = serde_json::to_vec(&body).expect("the error body serializes");
        let mut response = (self.code.status(), json).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("cause", &self.cause.as_ref().map(|c| c.to_string()))
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %ErrorChain(cause.as_ref()), "internal error");
        }
        self.to_response()
    }
}

/// Displays an error and its sources, `outer: inner: innermost`.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The answer for a storage error: 404, 409 or 400 naming the field, or 503 when the
/// database cannot be reached; anything else is a logged 500.
pub fn store_error(e: qrlp_store::StoreError) -> ApiError {
    use qrlp_store::StoreError;
    match e {
        StoreError::NotFound => ApiError::not_found(),
        StoreError::Conflict(what) => {
            let message = match what.as_str() {
                "email" => "A user with this email already exists".to_string(),
                "name" => "An organization with this name already exists".to_string(),
                "member" => "This user is already a member of the organization".to_string(),
                "last_owner" => "An organization must keep at least one owner".to_string(),
                "account" => "An account with this email exists: log in as it, then redeem the invitation with that session".to_string(),
                other => format!("Conflict on {other}"),
            };
            ApiError::conflict(message).with_details(serde_json::json!({ "field": what }))
        }
        // The store's messages start with the field they are about: `email: ...`.
        StoreError::Invalid(m) => match m.split_once(':') {
            Some((field, _)) if !field.contains(' ') => {
                let field = field.to_string();
                ApiError::invalid_input(m).with_details(serde_json::json!({ "field": field }))
            }
            _ => ApiError::invalid_input(m),
        },
        StoreError::Forbidden(rule) => {
            let message = match rule.as_str() {
                "owner" => "Only owners grant the owner role or change or remove an owner",
                "account" => "This invitation is for another account",
                _ => "Not allowed",
            };
            let required = (rule == "owner").then_some("organization:owner");
            ApiError::forbidden(message)
                .with_details(serde_json::json!({ "rule": rule, "required": required }))
        }
        e @ StoreError::Unavailable(..) => {
            tracing::error!(error = %ErrorChain(&e), "database unavailable");
            ApiError::new(
                ErrorCode::Unavailable,
                "Database unavailable; try again shortly",
            )
        }
        e => ApiError::internal(e),
    }
}

/// Answer for a path no route matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Answer for a route that exists without the request's method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status_and_name() {
        for (code, status, name) in [
            (ErrorCode::InvalidInput, 400, "INVALID_INPUT"),
            (ErrorCode::Unauthorized, 401, "UNAUTHORIZED"),
            (ErrorCode::Forbidden, 403, "FORBIDDEN"),
            (ErrorCode::Conflict, 409, "CONFLICT"),
            (ErrorCode::RateLimited, 429, "RATE_LIMITED"),
            (ErrorCode::NotFound, 404, "NOT_FOUND"),
            (ErrorCode::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
            (ErrorCode::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (
                ErrorCode::UnsupportedMediaType,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (ErrorCode::Internal, 500, "INTERNAL"),
            (ErrorCode::Unavailable, 503, "UNAVAILABLE"),
        ] {
            assert_eq!(code.status().as_u16(), status);
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal("database password is hunter2");
        let response = RequestId::parse(b"t-1")
            .unwrap()
            .sync_scope(|| e.to_response());
        assert_eq!(response.status(), 500);
        assert_eq!(e.message(), INTERNAL_MESSAGE);
        assert!(!format!("{e}").contains("hunter2"));
    }
}
