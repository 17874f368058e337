//! The OpenAPI 3.1 document, generated from the handlers' annotations when the router is
//! built (see [`mod@crate::app`]), so that it always lists exactly the routes served.
//!
//! `tests/openapi.rs` compares it with the checked-in `tests/snapshots/openapi.json`; an
//! accidental API change fails that test (`UPDATE_SNAPSHOTS=1` rewrites the file).

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode};

/// The document's fixed parts: info, tags, shared schemas. Paths come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "qrlp",
        description = "qrlp HTTP API: QR code generation (qr-api compatible); organizations, users, memberships, API keys and the audit log; health, readiness and metrics. Every error response has the JSON shape of ErrorBody. Authenticated responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset; over the limit the answer is 429 RATE_LIMITED with Retry-After."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "organizations", description = "Organizations and their members. Under /api/v1/organizations/{org_id} (and seed 004's /api/organizations/{org_id}) non-members get 403."),
        (name = "users", description = "Users: who am I, create, look up"),
        (name = "api-keys", description = "API keys: the secret is shown once, at creation; a key of another organization is 404"),
        (name = "audit", description = "The audit log, read-only"),
        (name = "auth", description = "Web UI sessions: cookie login and logout"),
        (name = "qr", description = "QR code images: POST /v1/qr as the qr-api seed documents it, GET for <img src>"),
        (name = "operations", description = "Liveness, readiness, metrics and this document")
    ),
    components(schemas(ErrorBody, ErrorCode))
)]
pub struct ApiDoc;

/// Adds the three ways to authenticate: `X-API-Key`, `Authorization: Bearer` and the
/// session cookie.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("qrlp_session"))),
        );
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Device-Signature",
                "A device's signed request: X-Device-Id, X-Device-Key-Version, X-Device-Timestamp, \
                 X-Device-Nonce and X-Device-Signature (Ed25519; see docs/fleet.md)",
            ))),
        );
    }
}

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
