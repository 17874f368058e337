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

/// Completes the generated document with what holds for every operation rather than being
/// written on each handler: the error answers the shared layers give (400 for a bad path or
/// query, 401/403 on protected routes, 413/415 for bodies, 429 budgets, 503 timeouts and
/// unavailable dependencies), and for each protected operation its permission as
/// `x-permission` (and, in its description, the conditional rules), taken from
/// [`crate::authz::ROUTE_PERMISSIONS`] and [`crate::authz::CONDITIONAL_RULES`], the one
/// declaration the role matrix is also generated from.
pub fn complete(doc: &mut utoipa::openapi::OpenApi, seed002: &[(String, String)]) {
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |schema: &str, description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let is_api = path.starts_with("/api/") || path.starts_with("/v1/");
        let with_path_params = path.contains('{');
        let operations = [
            ("GET", item.get.as_mut()),
            ("PUT", item.put.as_mut()),
            ("POST", item.post.as_mut()),
            ("DELETE", item.delete.as_mut()),
            ("PATCH", item.patch.as_mut()),
        ];
        for (method, op) in operations {
            let Some(op) = op else { continue };
            let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
            // Seed 002's routes answer in its error shape, with 422 for validation.
            let seed_shape = seed002.iter().any(|(m, p)| m == method && p == path);
            let schema = if seed_shape {
                "SeedErrorBody"
            } else {
                "ErrorBody"
            };
            let mut add = |code: &str, description: &str| {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(schema, description).into());
            };
            if seed_shape {
                add("422", "VALIDATION_ERROR: a path, query or body field");
            }
            if is_api {
                add("400", "Invalid input: a path, query or body field");
                add("429", "Over a rate limit; see Retry-After");
            }
            if protected {
                add("401", "No valid credentials");
                add(
                    "403",
                    "The role, the key's scopes or the organization do not allow it",
                );
            }
            if with_path_params && protected {
                add("404", "Not found in your organization");
            }
            if op.request_body.is_some() {
                add("413", "The body is larger than server.body_limit_bytes");
                add("415", "The body is not application/json");
            }
            add(
                "503",
                "Unavailable: a dependency is down, the server is busy, or the request took longer than server.request_timeout_secs",
            );
            if let Some((_, _, permission)) = crate::authz::ROUTE_PERMISSIONS
                .iter()
                .find(|(m, p, _)| *m == method && p == path)
            {
                let rules: Vec<&str> = crate::authz::CONDITIONAL_RULES
                    .iter()
                    .filter(|(m, p, _)| *m == method && p == path)
                    .map(|(_, _, r)| *r)
                    .collect();
                // One extension key only: the extensions map has no fixed order.
                let ext = ExtensionsBuilder::new()
                    .add("x-permission", permission.scope())
                    .build();
                let mut line = format!("Permission: `{}`.", permission.scope());
                if !rules.is_empty() {
                    line.push_str(&format!(" Also: {}.", rules.join("; ")));
                }
                op.description = Some(match op.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{line}"),
                    _ => line,
                });
                match op.extensions.as_mut() {
                    Some(existing) => existing.merge(ext),
                    None => op.extensions = Some(ext),
                }
            }
        }
    }
}
