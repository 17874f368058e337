//! # qrlp-webhook: the pure parts of webhook delivery
//!
//! Everything here is a function of its inputs: no sockets, no clock, no randomness of its
//! own (callers pass times and random numbers). The delivery worker in `qrlp-server` and the
//! outbox in `qrlp-store` are the adapters around it.
//!
//! - [`catalogue`]: the one list of event types; later capabilities append to it.
//! - [`body`]: the compact JSON body, written so that Node's
//!   `JSON.stringify(JSON.parse(body))` gives back exactly the same bytes (the seed's
//!   verifier re-serializes the parsed body before computing its HMAC).
//! - [`sign`]: the seed's `X-Webhook-Signature` (hex HMAC-SHA256 of the body keyed with the
//!   secret string as shown, `whsec_…`) and the Standard Webhooks headers
//!   (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`).
//! - [`retry`]: the Standard Webhooks retry schedule with jitter, a time scale for tests,
//!   `Retry-After`, and what an HTTP status means for a delivery.
//! - [`target`]: which URLs and which connected addresses a delivery may use (SSRF rules).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod catalogue;
pub mod retry;
pub mod sign;
pub mod target;

pub use body::Payload;
pub use catalogue::{EventKind, CATALOGUE};
pub use retry::{Outcome, Schedule};
pub use sign::{Secret, SignedHeaders};
pub use target::{classify, AddressClass, TargetError};
