//! Routes, grouped by the system they serve. Each module exposes its handlers, annotated
//! for the OpenAPI document; [`crate::app::api_routes`] mounts them.

pub mod api_keys;
pub mod audit;
pub mod chains;
pub mod devices;
pub mod fl;
pub mod fleet_users;
pub mod fleet_ws;
pub mod health;
pub mod invitations;
pub mod live;
pub mod monitoring;
pub mod orgs;
pub mod qr;
pub mod qr_business;
pub mod qr_codes;
pub mod redirect;
pub mod scan_page;
pub mod security;
pub mod session;
pub mod users;
pub mod webhooks;
