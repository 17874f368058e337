//! # qrlp-live-server: the QR Live Protocol on the web
//!
//! What `qrlp live` serves, and what the platform mounts per organization channel: the
//! seed's REST routes in the seed's shapes ([`rest`]), its Socket.IO events ([`socket`],
//! socketioxide, protocol v5), the viewer and verify pages ([`pages`]), and image upload
//! verification ([`image`]). A [`LiveChannel`] ties them to one
//! [`qrlp_protocol::QrLiveProtocol`], which makes the frames; nothing here signs or
//! verifies by itself.
//!
//! | seed | here |
//! |---|---|
//! | `GET /api/status` | [`rest::status`] ([`LiveChannel::status`]) |
//! | `GET /api/qr/current` | [`rest::current`] |
//! | `POST /api/verify` | [`rest::verify_input`] + [`rest::verify`] |
//! | `GET`/`POST /api/user-data` | [`rest::get_user_data`] / [`rest::post_user_data`] |
//! | `qr_update`, `request_qr_update`, `update_user_data` | [`socket::attach`], [`socket::forward`] |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod hub;
pub mod image;
pub mod pages;
pub mod rest;
pub mod socket;

pub use app::standalone;
pub use hub::{HubEvent, LiveChannel};
