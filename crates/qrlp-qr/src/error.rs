//! The one error type of the encoder.
//!
//! Written by hand rather than with `thiserror` so the core keeps zero required dependencies.

use std::fmt;

use crate::{EcLevel, Mode};

/// Why a payload could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The data does not fit in the largest symbol allowed by the options.
    DataTooLong {
        /// Bits the data needs in the largest allowed symbol.
        needed_bits: usize,
        /// Data bits the largest allowed symbol holds.
        capacity_bits: usize,
        /// That symbol, e.g. `40-M` or `M4-L`.
        symbol: String,
    },
    /// A character cannot be carried by the mode that was forced.
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Its position in the input, counted in characters from 0.
        position: usize,
        /// The forced mode.
        mode: Mode,
    },
    /// The version range is empty or out of bounds.
    InvalidVersionRange {
        /// Lower bound asked for.
        min: u8,
        /// Upper bound asked for.
        max: u8,
    },
    /// The mask number is not valid for the symbol kind (0..=7 for QR, 0..=3 for Micro QR).
    InvalidMask(u8),
    /// The ECC level is not available for the symbol (e.g. H in Micro QR, or anything but
    /// error detection in M1).
    EcLevelUnavailable {
        /// Level asked for.
        level: EcLevel,
        /// The symbol, e.g. `M2`.
        symbol: String,
    },
    /// A mode or feature that Micro QR does not support (ECI, structured append, or a mode
    /// that the chosen Micro version lacks).
    UnsupportedInMicro(&'static str),
    /// An ECI assignment number outside 0..=999999.
    InvalidEci(u32),
    /// Structured append accepts 1 to 16 symbols.
    StructuredAppendCount(usize),
    /// An ECC level name that is not L, M, Q or H.
    InvalidEcLevel(String),
    /// A Kanji-mode segment after this ECI designator (anything but 20, Shift JIS): decoders
    /// would read its Shift JIS bytes in the designated character set.
    KanjiAfterEci(u32),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::DataTooLong {
                needed_bits,
                capacity_bits,
                symbol,
            } => write!(
                f,
                "data too long: needs {needed_bits} bits but the largest allowed symbol ({symbol}) holds {capacity_bits} data bits"
            ),
            EncodeError::InvalidCharacter { ch, position, mode } => write!(
                f,
                "character {ch:?} (U+{:04X}) at position {position} cannot be encoded in {mode} mode",
                *ch as u32
            ),
            EncodeError::InvalidVersionRange { min, max } => {
                write!(f, "invalid version range {min}..={max}")
            }
            EncodeError::InvalidMask(m) => write!(f, "invalid mask {m}"),
            EncodeError::EcLevelUnavailable { level, symbol } => {
                write!(f, "error correction level {level} is not available in {symbol}")
            }
            EncodeError::UnsupportedInMicro(what) => {
                write!(f, "Micro QR does not support {what}")
            }
            EncodeError::InvalidEci(n) => {
                write!(f, "ECI assignment number {n} is out of range 0..=999999")
            }
            EncodeError::StructuredAppendCount(n) => write!(
                f,
                "structured append allows at most 16 symbols, and the data needs at least {n}"
            ),
            EncodeError::InvalidEcLevel(s) => {
                write!(f, "invalid error correction level {s:?}: choose L, M, Q or H")
            }
            EncodeError::KanjiAfterEci(n) => write!(
                f,
                "Kanji mode cannot follow ECI {n}{}: decoders read Kanji mode's Shift JIS bytes in the designated character set and would show garbage; use byte mode, or no ECI designator",
                if *n == 26 { " (UTF-8)" } else { "" }
            ),
        }
    }
}

impl std::error::Error for EncodeError {}
