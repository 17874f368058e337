//! Assembly of the application: routes, fallbacks and the layers every route shares.
//!
//! Request flow, outermost first: [`middleware::track`] (request id, log line, metrics,
//! panics, JSON for any bare error) → CORS when enabled → body limit → the route's handler.
//! Unknown paths get a 404 `NOT_FOUND` envelope; known paths with another method a 405
//! `METHOD_NOT_ALLOWED` envelope.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::{Extension, Router};
use qrlp_config::{Config, CorsConfig};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{ApiDoc, OpenApiJson};
use crate::routes::{health, qr};
use crate::state::AppState;
use crate::{error, metrics, middleware, openapi};

/// Every documented route of the product. A new API adds its `.routes(...)` here.
pub fn api_routes(config: &Config) -> OpenApiRouter<AppState> {
    let mut r = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(qr::post_qr, qr::get_qr))
        .routes(routes!(openapi::openapi_json));
    if config.metrics.enabled {
        r = r.routes(routes!(metrics::metrics_handler));
    }
    r
}

/// The OpenAPI document of the routes `config` enables.
pub fn openapi(config: &Config) -> utoipa::openapi::OpenApi {
    api_routes(config).split_for_parts().1
}

/// The application for `state`.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The application with `extra` routes merged in, under the same layers. For tests and
/// embedding; `extra` routes are not in the OpenAPI document.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = state.config();
    let (api, doc) = api_routes(config).split_for_parts();
    let doc_json = Bytes::from(
        doc.to_pretty_json()
            .expect("the OpenAPI document serializes"),
    );
    let limit = usize::try_from(config.server.body_limit_bytes).unwrap_or(usize::MAX);

    let mut router = api
        .merge(extra)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(Extension(OpenApiJson(doc_json)))
        .layer(DefaultBodyLimit::max(limit));
    if let Some(cors) = cors_layer(&config.cors) {
        router = router.layer(cors);
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .with_state(state)
}

/// The CORS layer, or `None` when CORS is off. Values were checked by
/// [`Config::validate`]; any that still do not parse are skipped.
fn cors_layer(c: &CorsConfig) -> Option<CorsLayer> {
    if !c.enabled {
        return None;
    }
    let origins = if c.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            c.allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let methods: Vec<Method> = c
        .allowed_methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
        .collect();
    let names = |list: &[String]| -> Vec<HeaderName> {
        list.iter()
            .filter_map(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok())
            .collect()
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(methods)
            .allow_headers(names(&c.allowed_headers))
            .expose_headers(names(&c.expose_headers))
            .max_age(Duration::from_secs(c.max_age_secs)),
    )
}
