//! Assembly of the application: routes, fallbacks and the layers every route shares.
//!
//! Request flow, outermost first: [`middleware::track`] (request id, log line, metrics,
//! panics, JSON for any bare error) → CORS when enabled → body limit → routing → for
//! platform routes [`auth::authenticate`] (credentials, CSRF, organization, plan rate
//! limit), for login/logout (and `/v1/qr` when configured) [`limits::per_address`] → the
//! route's handler, whose [`auth::Auth`] extractor checks the permission it declares.
//! Unknown paths get a 404 `NOT_FOUND` envelope; known paths with another method a 405
//! `METHOD_NOT_ALLOWED` envelope.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::get;
use axum::{Extension, Router};
use qrlp_config::{Config, CorsConfig};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{ApiDoc, OpenApiJson};
use crate::routes::{
    api_keys, audit, chains, devices, fl, fleet_users, fleet_ws, health, invitations, live,
    monitoring, orgs, qr, qr_business, qr_codes, redirect, scan_page, security, session, users,
    webhooks,
};
use crate::state::AppState;
use crate::{auth, error, fleet, limits, metrics, middleware, openapi};

/// Every documented route of the product. A new API adds its `.routes(...)` here: protected
/// routes to `protected`, which authenticates them.
pub fn api_routes(config: &Config) -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .routes(routes!(users::me))
        .routes(routes!(invitations::create_user))
        .routes(routes!(users::get_user))
        .routes(routes!(orgs::list_organizations, orgs::create_organization))
        .routes(routes!(
            orgs::get_organization,
            orgs::update_organization,
            orgs::put_organization
        ))
        .routes(routes!(orgs::list_members, invitations::add_member))
        .routes(routes!(invitations::list_invitations))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(orgs::change_role, orgs::remove_member))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::get_api_key, api_keys::revoke_api_key))
        .routes(routes!(audit::list_audit))
        .routes(routes!(chains::list_chains, chains::create_chain))
        .routes(routes!(
            chains::get_chain,
            chains::update_chain,
            chains::delete_chain
        ))
        .routes(routes!(chains::current))
        .routes(routes!(chains::scan))
        .routes(routes!(chains::list_scans))
        .routes(routes!(chains::stats))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(qr_codes::list_qr_codes, qr_codes::create_qr_code))
        .routes(routes!(qr_codes::get_qr_code, qr_codes::update_qr_code))
        .routes(routes!(qr_codes::archive_qr_code))
        .routes(routes!(qr_codes::restore_qr_code))
        .routes(routes!(qr_codes::qr_code_image))
        .routes(routes!(qr_codes::timeline))
        .routes(routes!(qr_codes::breakdown))
        .routes(routes!(qr_codes::scans_csv))
        .routes(routes!(qr_codes::get_tracking, qr_codes::put_tracking))
        .routes(routes!(
            qr_business::get_business,
            qr_business::put_business
        ))
        .routes(routes!(qr_business::business_image))
        .routes(routes!(live::list_channels, live::create_channel))
        .routes(routes!(
            live::get_channel,
            live::update_channel,
            live::delete_channel
        ))
        .routes(routes!(live::channel_status))
        .routes(routes!(live::channel_current))
        .routes(routes!(live::channel_verify))
        .routes(routes!(
            live::channel_get_user_data,
            live::channel_post_user_data
        ))
        .route_layer(axum::middleware::from_fn(auth::authenticate));
    let by_address = OpenApiRouter::new()
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(invitations::redeem))
        .routes(routes!(invitations::forgot_password))
        .routes(routes!(invitations::reset_password))
        .route_layer(axum::middleware::from_fn(limits::per_address));
    let mut qr_routes = OpenApiRouter::new().routes(routes!(qr::post_qr, qr::get_qr));
    if config.rate_limit.ip_limit_qr {
        qr_routes = qr_routes.route_layer(axum::middleware::from_fn(limits::per_address));
    }
    let mut r = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .merge(qr_routes)
        .merge(protected)
        .merge(by_address)
        .routes(routes!(redirect::redirect))
        .merge(fleet_routes())
        .routes(routes!(openapi::openapi_json));
    // Off the public router unless a bearer token guards it (`metrics.listen` serves it
    // on an address of its own instead).
    if config.metrics.enabled && !config.metrics.token.is_empty() {
        r = r.routes(routes!(metrics::metrics_handler));
    }
    r
}

/// Seed 002's device fleet under `/api/v1`: errors in that seed's shape
/// ([`fleet::seed_errors`]); admin routes behind the platform's authentication, the
/// registration, CA, health and signed device routes without it.
fn fleet_routes() -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .routes(routes!(devices::list_devices))
        .routes(routes!(
            devices::create_enrollment_token,
            devices::list_enrollment_tokens
        ))
        .routes(routes!(devices::delete_enrollment_token))
        .routes(routes!(
            devices::get_device,
            devices::update_device,
            devices::delete_device
        ))
        .routes(routes!(security::list_keys))
        .routes(routes!(security::rotate))
        .routes(routes!(security::audit))
        .routes(routes!(monitoring::status))
        .routes(routes!(monitoring::metrics))
        .routes(routes!(monitoring::alerts))
        .routes(routes!(monitoring::logs))
        .routes(routes!(fleet_users::list_users))
        .routes(routes!(fleet_users::set_permissions))
        .routes(routes!(fleet_ws::dashboard))
        .routes(routes!(fleet_ws::training))
        .routes(routes!(fleet_ws::security))
        .routes(routes!(fl::list_rounds, fl::create_rounds))
        .routes(routes!(fl::get_round))
        .route_layer(axum::middleware::from_fn(auth::authenticate))
        .route_layer(axum::middleware::from_fn(fleet::seed_errors));
    let open = OpenApiRouter::new()
        .routes(routes!(devices::register))
        .routes(routes!(devices::get_ca))
        .routes(routes!(monitoring::health))
        .routes(routes!(devices::heartbeat))
        .routes(routes!(devices::rotate_keys))
        .routes(routes!(devices::key_exchange))
        .routes(routes!(fleet_ws::device))
        .routes(routes!(fl::join))
        .routes(routes!(fl::get_model))
        .routes(routes!(fl::open_rounds))
        .route_layer(axum::middleware::from_fn(fleet::seed_errors));
    // Updates are larger than other bodies: their own limit.
    let submit = OpenApiRouter::new()
        .routes(routes!(fl::submit))
        .route_layer(DefaultBodyLimit::max(crate::training::SUBMIT_BODY_LIMIT))
        .route_layer(axum::middleware::from_fn(fleet::seed_errors));
    protected.merge(open).merge(submit)
}

/// The application of the separate metrics listener (`metrics.listen`): `GET /metrics`
/// without a token, nothing else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics_text))
        .fallback(error::not_found)
        .with_state(state)
}

/// Seed 004's organization paths, `/api/organizations/{org_id}/...`: the same handlers as
/// under `/api/v1/organizations/{org_id}`, undocumented twins.
fn seed_org_aliases() -> Router<AppState> {
    Router::new()
        .route(
            "/api/organizations/{org_id}",
            get(orgs::get_organization)
                .patch(orgs::update_organization)
                .put(orgs::put_organization),
        )
        .route(
            "/api/organizations/{org_id}/members",
            get(orgs::list_members).post(invitations::add_member),
        )
        .route(
            "/api/organizations/{org_id}/members/{user_id}",
            axum::routing::patch(orgs::change_role).delete(orgs::remove_member),
        )
        .merge(seed_qr_aliases())
        .route_layer(axum::middleware::from_fn(auth::authenticate))
}

/// Seed 004's tracked-code paths under `/api/organizations/{org_id}` (authenticated by the
/// caller's layer).
fn seed_qr_aliases() -> Router<AppState> {
    use axum::routing::post;
    let base = "/api/organizations/{org_id}";
    Router::new()
        .route(
            &format!("{base}/qr-codes"),
            get(qr_codes::list_qr_codes).post(qr_codes::create_qr_code),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}"),
            get(qr_codes::get_qr_code).patch(qr_codes::update_qr_code),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/archive"),
            post(qr_codes::archive_qr_code),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/restore"),
            post(qr_codes::restore_qr_code),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/image"),
            get(qr_codes::qr_code_image),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/timeline"),
            get(qr_codes::timeline),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/breakdown"),
            get(qr_codes::breakdown),
        )
        .route(
            &format!("{base}/qr-codes/{{qr_code_id}}/scans.csv"),
            get(qr_codes::scans_csv),
        )
        .route(
            &format!("{base}/qr-tracking"),
            get(qr_codes::get_tracking).put(qr_codes::put_tracking),
        )
        .route(
            &format!("{base}/qr-business"),
            get(qr_business::get_business).put(qr_business::put_business),
        )
        .route(
            &format!("{base}/qr-business/image"),
            get(qr_business::business_image),
        )
}

/// The OpenAPI document of the routes `config` enables.
pub fn openapi(config: &Config) -> utoipa::openapi::OpenApi {
    let mut doc = api_routes(config).split_for_parts().1;
    openapi::complete(&mut doc, &seed002_operations());
    doc
}

/// The operations that answer errors in seed 002's shape (`{"error": {"code", ...}}`, 422
/// for validation): every route of [`fleet_routes`], as `(method, path)`.
pub fn seed002_operations() -> Vec<(String, String)> {
    let doc = fleet_routes().split_for_parts().1;
    let mut ops = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (method, present) in methods {
            if present {
                ops.push((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// The application for `state`.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The application with `extra` routes merged in, under the same layers. For tests and
/// embedding; `extra` routes are not in the OpenAPI document.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = state.config();
    let (api, mut doc) = api_routes(config).split_for_parts();
    openapi::complete(&mut doc, &seed002_operations());
    let doc_json = Bytes::from(
        doc.to_pretty_json()
            .expect("the OpenAPI document serializes"),
    );
    let limit = usize::try_from(config.server.body_limit_bytes).unwrap_or(usize::MAX);

    let timeout = Duration::from_secs(config.server.request_timeout_secs);
    // One stack, applied once: `Router::layer` wraps every route in each layer separately,
    // and each layer then clones the boxed routes below it on every request (a few dozen
    // allocations per request for this many layers). In a single stack only the route
    // itself is boxed. Outermost first, as a request meets them.
    let shared = ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .option_layer(cors_layer(&config.cors))
        // Socket.IO of the live channels (`/socket.io/`, namespace `/live`).
        .layer(qrlp_live_server::socket::detach_layer())
        .layer(state.live().layer())
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(state.clone()))
        .layer(Extension(OpenApiJson(doc_json)))
        .layer(axum::middleware::from_fn(move |req, next| {
            middleware::request_timeout(timeout, req, next)
        }));
    api.merge(seed_org_aliases())
        .merge(scan_page::router())
        .merge(live::public_routes())
        .merge(extra)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(shared)
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
