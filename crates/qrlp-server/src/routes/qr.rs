//! `POST /v1/qr` and `GET /v1/qr`: a QR image of a URL or any text (seed 001, with the
//! image parameters of seed 004).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;

use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::qr::image::{image_response, IfNoneMatch};
use crate::qr::{messages, parse, QrParams, QrQuery, QrRequest};
use crate::state::AppState;

/// Generate a QR code image from a JSON body.
///
/// The image is PNG unless `format` says `svg`. Responses carry a strong `ETag` computed
/// from the normalized request; `If-None-Match` with it gives 304.
#[utoipa::path(
    post,
    path = "/v1/qr",
    tag = "qr",
    request_body(content = QrRequest, content_type = "application/json"),
    params(
        ("X-Request-ID" = Option<String>, Header, description = "Correlation id (1 to 128 visible ASCII characters); generated when absent or invalid"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier response")
    ),
    responses(
        (status = 200, description = "The QR code image", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml")
        ), headers(
            ("ETag" = String, description = "Strong entity tag of the normalized request"),
            ("Cache-Control" = String, description = "public, max-age=86400"),
            ("Content-Disposition" = String, description = "inline; filename=\"qr.png\" or \"qr.svg\""),
            ("X-Request-ID" = String, description = "The request id")
        )),
        (status = 304, description = "Not modified: the If-None-Match tag matches"),
        (status = 400, description = "Invalid input or JSON", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
pub async fn post_qr(
    State(state): State<AppState>,
    if_none_match: IfNoneMatch,
    JsonBody(body): JsonBody<QrRequest>,
) -> Result<Response, ApiError> {
    let params = parse(body.fields(), &state.config().qr)?;
    respond(&state, &if_none_match, params)
}

/// Generate a QR code image from query parameters, for `<img src>`.
///
/// Same fields, defaults and errors as `POST /v1/qr`.
#[utoipa::path(
    get,
    path = "/v1/qr",
    tag = "qr",
    params(
        QrQuery,
        ("X-Request-ID" = Option<String>, Header, description = "Correlation id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier response")
    ),
    responses(
        (status = 200, description = "The QR code image", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml")
        ), headers(
            ("ETag" = String, description = "Strong entity tag of the normalized request"),
            ("Cache-Control" = String, description = "public, max-age=86400"),
            ("Content-Disposition" = String, description = "inline; filename=\"qr.png\" or \"qr.svg\""),
            ("X-Request-ID" = String, description = "The request id")
        )),
        (status = 304, description = "Not modified: the If-None-Match tag matches"),
        (status = 400, description = "Invalid input or query string", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
pub async fn get_qr(
    State(state): State<AppState>,
    if_none_match: IfNoneMatch,
    query: Result<Query<QrQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::invalid_input(messages::INVALID_QUERY))?;
    let params = parse(query.fields(), &state.config().qr)?;
    respond(&state, &if_none_match, params)
}

fn respond(
    state: &AppState,
    if_none_match: &IfNoneMatch,
    params: QrParams,
) -> Result<Response, ApiError> {
    let QrParams { payload, spec } = params;
    let etag = spec.etag(&payload);
    image_response(
        if_none_match,
        spec.format,
        etag,
        state.config().qr.cache_max_age_secs,
        || {
            let image = spec.render(&payload)?;
            state.metrics().observe_qr(spec.format);
            Ok(image)
        },
    )
}
