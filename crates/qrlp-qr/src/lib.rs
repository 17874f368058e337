//! # qrlp-qr: a QR Code encoder written to ISO/IEC 18004:2015
//!
//! This crate turns text or bytes into a [`QrCode`] symbol: a square of dark and light
//! modules. It does no I/O and has no required dependencies (the optional `kanji` feature,
//! on by default, brings a Shift JIS table for Kanji mode).
//!
//! Three levels of API:
//! 1. [`QrCode::encode_text`] and [`QrCode::encode_bytes`]: give the data and an ECC level;
//!    the encoder picks the segmentation that needs the fewest bits, the smallest version
//!    and the mask with the lowest penalty.
//! 2. [`QrCode::encode_segments`] with [`Options`]: your own [`Segment`]s, a version range,
//!    a forced mask, ECC boost, or Micro QR.
//! 3. [`structured_append`]: data split over up to 16 linked symbols.
//!
//! ```
//! use qrlp_qr::{EcLevel, QrCode};
//! let code = QrCode::encode_text("https://example.com/product/12345?ref=qr", EcLevel::M)?;
//! assert_eq!(code.version().to_string(), "3");
//! assert_eq!(code.width(), 29);
//! # Ok::<(), qrlp_qr::EncodeError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Mask and timing formulas are kept in the standard's `i mod n = 0` notation.
#![allow(clippy::manual_is_multiple_of)]

mod error;
mod symbol;
mod types;

pub use error::EncodeError;
pub use symbol::QrCode;
pub use types::{EcLevel, Mask, MicroVersion, SymbolVersion, Version};

/// How a segment's characters are packed into bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Digits 0-9, 10 bits per 3 digits.
    Numeric,
    /// Digits, upper-case A-Z and ` $%*+-./:`, 11 bits per 2 characters.
    Alphanumeric,
    /// Any bytes, 8 bits each.
    Byte,
    /// Shift JIS double-byte characters, 13 bits each.
    Kanji,
    /// An Extended Channel Interpretation designator; carries no characters.
    Eci,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Numeric => "numeric",
            Mode::Alphanumeric => "alphanumeric",
            Mode::Byte => "byte",
            Mode::Kanji => "kanji",
            Mode::Eci => "ECI",
        })
    }
}

mod append;
mod bits;
mod encode;
mod matrix;
mod micro;
mod rs;
mod segment;
mod tables;

pub use append::structured_append;
pub use encode::{EciPolicy, Options, SymbolKind};
pub use segment::Segment;
