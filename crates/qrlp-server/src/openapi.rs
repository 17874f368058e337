//! The OpenAPI 3.1 document, generated from the handlers' annotations when the router is
//! built (see [`mod@crate::app`]), so that it always lists exactly the routes served.
//!
//! `tests/openapi.rs` compares it with the checked-in `tests/snapshots/openapi.json`; an
//! accidental API change fails that test (`UPDATE_SNAPSHOTS=1` rewrites the file).

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorCode};

/// The document's fixed parts: info, tags, shared schemas. Paths come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "qrlp",
        description = "qrlp HTTP API: QR code generation (qr-api compatible), health, readiness and metrics. Every error response has the JSON shape of ErrorBody."
    ),
    tags(
        (name = "qr", description = "QR code images: POST /v1/qr as the qr-api seed documents it, GET for <img src>"),
        (name = "operations", description = "Liveness, readiness, metrics and this document")
    ),
    components(schemas(ErrorBody, ErrorCode))
)]
pub struct ApiDoc;

/// The serialized document, shared with the handler.
#[derive(Clone)]
pub struct OpenApiJson(pub Bytes);

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    let mut r = doc.0.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
