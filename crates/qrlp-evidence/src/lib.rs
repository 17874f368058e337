//! Evidence of time for qrlp frames: how far the local clock is from network time, and
//! which blocks the public chains have just mined.
//!
//! This is an I/O adapter (tokio, UDP, HTTP). It does not depend on the protocol core; the
//! core consumes [`TimeEvidence`], [`ChainHead`] and [`AnchorStatus`] through a thin adapter.
//!
//! # What the evidence means
//!
//! - **SNTP is advisory.** [`SntpClient`] asks several servers (RFC 4330) and takes the
//!   median offset. Any one server can lie or be impersonated (SNTP is unauthenticated);
//!   the median of several resists one liar, and a server further than `max_drift` from the
//!   median is flagged as an outlier and left out. A frame's timestamp is still whatever the
//!   issuer's clock says: the evidence tells a verifier how that clock compared with the
//!   servers the issuer chose, not that it is correct. [`TimeSource::SystemFallback`] means
//!   nothing was checked at all.
//! - **A block hash proves "after".** A frame that carries (a prefix of) a block hash can
//!   only have been made after that block was mined, because the hash cannot be predicted.
//!   [`ChainHeads::classify`] tells a verifier whether the anchored block is the newest it
//!   knows ([`AnchorStatus::Current`]), an older one first seen within `recent_window`
//!   ([`AnchorStatus::Recent`]), older still ([`AnchorStatus::Stale`]) or never seen
//!   ([`AnchorStatus::Unknown`]).
//! - **Nothing here proves "before".** A frame anchored to an old block may have been made
//!   at any time since; no anchor shows that a frame existed before any later block. Only
//!   publishing the frame (or its hash) somewhere timestamped would, and this crate does not.
//!
//! # Anchors and byte order
//!
//! Bitcoin displays block hashes byte-reversed, so their display form starts with about nine
//! zero bytes of proof of work. An anchor must therefore come from
//! [`ChainHead::anchor_prefix`], which takes the bytes from whichever order starts with the
//! hash's random bytes, and [`ChainHeads::classify`] only accepts prefixes with at least
//! [`MIN_SIGNIFICANT_PREFIX`] bytes past the leading zeros.
//!
//! # Example
//!
//! ```no_run
//! use qrlp_evidence::{BlockchainConfig, ChainHeads, SntpClient, TimeConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let time = SntpClient::new(TimeConfig::default());
//! let evidence = time.measure().await?;
//! println!("{}", time.summary(&evidence)); // the seed's time_server_verification
//!
//! let chains = ChainHeads::new(BlockchainConfig::default())?;
//! for head in chains.latest().await.into_iter().flatten() {
//!     println!("{} {} {:?}", head.chain, head.hash_hex(), head.height);
//! }
//! println!("{:?}", chains.blockchain_hashes()); // the seed's blockchain_hashes
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chain;
pub mod config;
pub mod ntp;
mod protocol;
mod sntp;

pub use chain::{
    AnchorStatus, ChainError, ChainHead, ChainHeads, ChainStats, MIN_SIGNIFICANT_PREFIX,
};
pub use config::{BlockchainConfig, ChainEndpoint, ChainKind, TimeConfig};
pub use ntp::PacketError;
pub use protocol::to_hex;
pub use sntp::{
    Measurement, ServerError, ServerSample, ServerStats, SntpClient, TimeError, TimeEvidence,
    TimeSource, DEFAULT_PORT,
};
