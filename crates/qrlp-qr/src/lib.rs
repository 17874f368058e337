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
//!
//! # Text that every decoder reads
//!
//! Kanji mode carries Shift JIS double-byte characters, and Shift JIS has far more than
//! Kanji: kana, Greek, Cyrillic, full-width forms, `£`, `§`, `°` and more. Real decoders
//! (zxing-cpp, zbar, and the phones built on them) read a Kanji segment's bytes in the
//! character set of the ECI designator in effect, so a Kanji segment after ECI 26 (UTF-8)
//! comes out as garbage. The segmentation therefore never mixes them. A symbol's non-ASCII
//! text is carried one of two ways, and the one with fewer bits wins:
//!
//! - **Kanji**: every non-ASCII character in Kanji mode, no ECI designator; byte mode carries
//!   ASCII only, and not `\` or `~` (decoders that see Kanji mode read the whole message as
//!   Shift JIS, where those two bytes are `¥` and `‾`). Possible when every other character
//!   has a Kanji-mode value (pure Japanese text, say); 13 bits per character instead of
//!   UTF-8's 24.
//! - **UTF-8**: no Kanji mode; non-ASCII characters in byte mode as UTF-8, after an ECI 26
//!   designator when the symbol offers ECI.
//!
//! Within each, numeric and alphanumeric runs are kept wherever they save bits, and the
//! segmentation is bit-optimal. Segments given by hand are held to the same rule where it is
//! unambiguous: a Kanji segment after an ECI designator other than 20 (Shift JIS) is an
//! [`EncodeError::KanjiAfterEci`], and so is forcing Kanji mode under
//! [`EciPolicy::Always`] with another number.
#![deny(unsafe_code)]
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

/// A seeded xorshift64 generator for the tests' random inputs.
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

pub use append::structured_append;
pub use encode::{EciPolicy, Options, SymbolKind};
pub use segment::Segment;
