//! # qrlp-server: the HTTP application of qrlp
//!
//! One axum application that every API of the product lives in. This crate owns what all
//! routes share:
//! - the error envelope `{"code","message","error","request_id"}` ([`ApiError`]);
//! - request ids (`X-Request-ID`), one log line per request, panics turned into 500s, and
//!   JSON for 404, 405, 413 and 415 ([`middleware`]);
//! - Prometheus metrics ([`metrics`]), the OpenAPI document generated from the handlers
//!   ([`openapi`]), `/healthz` and `/readyz`;
//! - configuration-driven CORS and body limit, and graceful shutdown ([`Server`]).
//!
//! Routes are grouped by the seed system they serve under [`routes`]; `POST /v1/qr` is
//! [`routes::qr`]. A later API adds a module there and one line to [`app::api_routes`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = qrlp_config::Config::default();
//! let _log_writer = qrlp_server::init_logging(&config.log)?;
//! // Signal handlers before binding, so a signal during start-up shuts down cleanly.
//! let signal = qrlp_server::shutdown_signal();
//! let server = qrlp_server::Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(signal).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod authz;
pub mod client;
pub mod delivery;
pub mod error;
pub mod extract;
pub mod fleet;
pub mod fleet_webhooks;
pub mod limits;
pub mod live;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod qr;
pub mod readiness;
pub mod request_id;
pub mod routes;
mod server;
pub mod state;
pub mod tracking;
pub mod training;
pub mod views;

pub use app::{app, app_with};
pub use error::{store_error, ApiError, ErrorBody, ErrorCode};
pub use logging::init_logging;
pub use request_id::RequestId;
pub use server::{open_store, shutdown_signal, store_config, ServeError, Server};
pub use state::AppState;
