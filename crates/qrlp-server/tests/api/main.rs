//! Integration tests: a real server on an ephemeral 127.0.0.1 port, driven over TCP.
//!
//! One test binary (modules below) so that the workspace links it once.

mod chains;
mod common;
mod envelope;
mod fl;
mod fleet;
mod hardening;
mod lifecycle;
mod live;
mod openapi;
mod platform;
mod qr;
mod tracked;
mod webhooks;
