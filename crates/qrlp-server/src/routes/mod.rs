//! Routes, grouped by the system they serve. Each module exposes its handlers, annotated
//! for the OpenAPI document; [`crate::app::api_routes`] mounts them.

pub mod health;
pub mod qr;
