//! Routes, grouped by the system they serve. Each module exposes its handlers, annotated
//! for the OpenAPI document; [`crate::app::api_routes`] mounts them.

pub mod api_keys;
pub mod audit;
pub mod devices;
pub mod fleet_users;
pub mod fleet_ws;
pub mod health;
pub mod invitations;
pub mod monitoring;
pub mod orgs;
pub mod qr;
pub mod security;
pub mod session;
pub mod users;
