//! Errors of frame encoding, decoding and key handling.

use crate::Suite;

/// Why a frame could not be made or read, or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The input is not a well-formed frame of either format (the message says where).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The frame content given to the generator breaks a format rule.
    #[error("invalid frame content: {0}")]
    InvalidContent(String),
    /// A key or secret is not usable (length, encoding, name).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The identity has no key for this suite (FN-DSA was not generated).
    #[error("the signing identity has no key for {0}")]
    SuiteUnavailable(Suite),
    /// Encryption was asked for but no data key is configured.
    #[error("encryption requested but no data key is configured")]
    NoDataKey,
    /// The signature or encryption library reported a failure.
    #[error("signing failed: {0}")]
    Signing(String),
}

pub(crate) fn malformed(msg: impl Into<String>) -> FrameError {
    FrameError::Malformed(msg.into())
}
