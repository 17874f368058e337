//! The middleware every request passes through first.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::UNMATCHED_ROUTE;
use crate::request_id::{self, RequestId};
use crate::state::AppState;

/// For each request:
/// - picks the request id ([`RequestId::from_headers`]), makes it current for
///   [`crate::ApiError`], puts it in a `request` span (so every log line of the request
///   carries it) and in the `X-Request-ID` response header;
/// - turns a panic in the handler into a 500 `INTERNAL` envelope, so the connection stays
///   up;
/// - turns any error response that is not JSON (axum's own rejections, layers) into the
///   envelope;
/// - counts the request in the metrics and writes one log line: route, method, status,
///   latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = RequestId::from_headers(req.headers());
    // The template, not the raw path: bounded label values. (A cheap `Arc` clone.)
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched
        .as_ref()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
    );
    let _in_flight = state.metrics().in_flight();

    let handled = id
        .clone()
        .scope(AssertUnwindSafe(next.run(req)).catch_unwind())
        .instrument(span.clone())
        .await;
    let mut response = match handled {
        Ok(r) => r,
        // The panic hook (see `logging`) has logged the message and location in the span.
        Err(_panic) => id.clone().sync_scope(|| {
            ApiError::new(ErrorCode::Internal, crate::error::INTERNAL_MESSAGE).into_response()
        }),
    };
    if needs_envelope(&response) {
        let (code, message) = ErrorCode::for_status(response.status());
        let mut envelope = id
            .clone()
            .sync_scope(|| ApiError::new(code, message).into_response());
        // Keep what the original said beyond its body, e.g. `Allow` on a 405.
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                envelope.headers_mut().insert(name.clone(), value.clone());
            }
        }
        *envelope.status_mut() = response.status();
        response = envelope;
    }
    response
        .headers_mut()
        .insert(&request_id::HEADER, id.header_value());

    let status = response.status();
    let latency = start.elapsed();
    state
        .metrics()
        .observe_request(route, &method, status, latency);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            // Whole microseconds: `0.023605`, not `0.023604999999999998`.
            latency_ms = latency.as_micros() as f64 / 1000.0,
            "request"
        );
    });
    response
}

/// An error status whose body is not JSON: something other than an [`ApiError`] made it.
/// HTML pages meant for people (the chains' scan page) keep their own body.
fn needs_envelope(response: &Response) -> bool {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_json = content_type.is_some_and(|v| v.starts_with("application/json"));
    // Pages made on purpose for people (the short link's 404 and 410) stay pages.
    let is_page = content_type.is_some_and(|v| v.starts_with("text/html"));
    !(is_json || is_page)
}

/// Answers 503 `UNAVAILABLE` when the handler has not produced its response head within
/// `limit` (`server.request_timeout_secs`). A streaming body is not limited once its head is
/// sent: the timer stops when the handler returns the response.
pub async fn request_timeout(limit: std::time::Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "The request took longer than {} s; try again",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}
