//! The encoded symbol: a square of dark and light modules that any renderer can draw.

use crate::{EcLevel, Mask, SymbolVersion};

/// An encoded QR Code or Micro QR Code symbol.
///
/// Rows are stored as bit sets: in [`QrCode::row`], module `x` of a row is bit `x % 64` of
/// word `x / 64` (1 = dark). Renderers that draw runs of modules read whole words; simple ones
/// call [`QrCode::is_dark`].
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// let code = QrCode::encode_text("HELLO WORLD", EcLevel::Q).unwrap();
/// assert_eq!(code.width(), 21);
/// assert!(code.is_dark(0, 0)); // corner of the top-left finder pattern
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QrCode {
    pub(crate) version: SymbolVersion,
    pub(crate) ecc: EcLevel,
    pub(crate) mask: Mask,
    pub(crate) width: usize,
    pub(crate) stride: usize,
    pub(crate) bits: Vec<u64>,
}

impl QrCode {
    /// Width (and height) in modules, without the quiet zone.
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// The symbol's version.
    pub fn version(&self) -> SymbolVersion {
        self.version
    }

    /// The error correction level actually used (it may be higher than requested when
    /// ECC boost is on).
    pub fn ec_level(&self) -> EcLevel {
        self.ecc
    }

    /// The data mask applied.
    pub fn mask(&self) -> Mask {
        self.mask
    }

    /// The quiet zone the standard requires around this symbol, in modules.
    pub fn quiet_zone(&self) -> usize {
        self.version.quiet_zone()
    }

    /// Whether the module at column `x`, row `y` is dark. Coordinates outside the symbol are
    /// light, as the quiet zone is.
    #[inline]
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        if x >= self.width || y >= self.width {
            return false;
        }
        (self.bits[y * self.stride + x / 64] >> (x % 64)) & 1 != 0
    }

    /// Row `y` as bit words: module `x` is bit `x % 64` of word `x / 64`; bits past the width
    /// are zero.
    ///
    /// # Panics
    /// If `y >= self.width()`.
    #[inline]
    pub fn row(&self, y: usize) -> &[u64] {
        &self.bits[y * self.stride..(y + 1) * self.stride]
    }

    /// Number of 64-bit words in each row.
    #[inline]
    pub fn words_per_row(&self) -> usize {
        self.stride
    }

    /// All modules as rows of booleans (`true` = dark). Convenient, not fast.
    pub fn to_rows(&self) -> Vec<Vec<bool>> {
        (0..self.width)
            .map(|y| (0..self.width).map(|x| self.is_dark(x, y)).collect())
            .collect()
    }
}
