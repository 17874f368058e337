//! The small CBOR subset the compact frame uses (RFC 8949), written for this format only.
//!
//! Encoding follows the core deterministic rules of RFC 8949 §4.2.1: arguments in their
//! shortest form, definite lengths only, map keys in bytewise lexicographic order of their
//! encodings. The decoder accepts exactly that and nothing else: unsigned and negative
//! integers, byte and text strings, arrays, maps and `null`. It refuses indefinite lengths,
//! tags, floats, other simple values, non-shortest arguments, lengths past the end of the
//! input (before allocating anything) and invalid UTF-8. Map-key order and duplicates are
//! checked by the caller with [`Decoder::key_bytes_after`], which compares encoded keys.

/// Why a byte string is not an accepted CBOR item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CborError {
    /// The input ended inside an item.
    Truncated,
    /// An argument was not in its shortest form, or a length was indefinite.
    NonCanonical,
    /// A major type or simple value this subset does not accept.
    Unsupported,
    /// A different item type than the format requires here.
    UnexpectedType,
    /// A length or count above the format's limit.
    TooLong,
    /// A text string that is not UTF-8.
    InvalidUtf8,
    /// An integer outside the range the field allows.
    OutOfRange,
}

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_SIMPLE: u8 = 7;
const NULL: u8 = 0xF6;

/// Appends items to a byte vector.
#[derive(Default)]
pub(crate) struct Encoder {
    pub(crate) buf: Vec<u8>,
}

impl Encoder {
    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.buf.push(m | n as u8);
        } else if n <= 0xFF {
            self.buf.extend_from_slice(&[m | 24, n as u8]);
        } else if n <= 0xFFFF {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xFFFF_FFFF {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub(crate) fn uint(&mut self, n: u64) {
        self.head(MAJOR_UINT, n);
    }

    pub(crate) fn int(&mut self, n: i64) {
        if n >= 0 {
            self.head(MAJOR_UINT, n as u64);
        } else {
            // -1 - n without overflow: !n for two's complement.
            self.head(MAJOR_NINT, !n as u64);
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn array(&mut self, len: usize) {
        self.head(MAJOR_ARRAY, len as u64);
    }

    pub(crate) fn map(&mut self, len: usize) {
        self.head(MAJOR_MAP, len as u64);
    }

    pub(crate) fn null(&mut self) {
        self.buf.push(NULL);
    }
}

/// Reads items from a byte slice.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// The current offset.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether all input was consumed.
    pub(crate) fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The encoded bytes from `start` to the current position.
    pub(crate) fn key_bytes_after(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn peek(&self) -> Result<u8, CborError> {
        self.buf.get(self.pos).copied().ok_or(CborError::Truncated)
    }

    /// Reads an item head: the major type and its shortest-form argument.
    fn head(&mut self) -> Result<(u8, u64), CborError> {
        let b = self.take(1)?[0];
        let major = b >> 5;
        let info = b & 0x1F;
        if major == MAJOR_SIMPLE {
            return if b == NULL {
                Ok((major, 22))
            } else {
                Err(CborError::Unsupported)
            };
        }
        if major == 6 {
            return Err(CborError::Unsupported);
        }
        let (n, min) = match info {
            0..=23 => return Ok((major, u64::from(info))),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => (u64::from(u16::from_be_bytes(arr(self.take(2)?)?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(arr(self.take(4)?)?)), 0x1_0000),
            27 => (u64::from_be_bytes(arr(self.take(8)?)?), 0x1_0000_0000),
            _ => return Err(CborError::NonCanonical),
        };
        if n < min {
            return Err(CborError::NonCanonical);
        }
        Ok((major, n))
    }

    fn expect(&mut self, major: u8) -> Result<u64, CborError> {
        let (m, n) = self.head()?;
        if m == major {
            Ok(n)
        } else {
            Err(CborError::UnexpectedType)
        }
    }

    pub(crate) fn uint(&mut self) -> Result<u64, CborError> {
        self.expect(MAJOR_UINT)
    }

    pub(crate) fn int(&mut self) -> Result<i64, CborError> {
        match self.head()? {
            (MAJOR_UINT, n) => i64::try_from(n).map_err(|_| CborError::OutOfRange),
            (MAJOR_NINT, n) => i64::try_from(n)
                .map(|n| -1 - n)
                .map_err(|_| CborError::OutOfRange),
            _ => Err(CborError::UnexpectedType),
        }
    }

    /// A byte string of at most `max` bytes, borrowed from the input.
    pub(crate) fn bytes(&mut self, max: usize) -> Result<&'a [u8], CborError> {
        let n = self.expect(MAJOR_BYTES)?;
        self.take(bounded(n, max)?)
    }

    /// A UTF-8 text string of at most `max` bytes, borrowed from the input.
    pub(crate) fn text(&mut self, max: usize) -> Result<&'a str, CborError> {
        let n = self.expect(MAJOR_TEXT)?;
        let raw = self.take(bounded(n, max)?)?;
        std::str::from_utf8(raw).map_err(|_| CborError::InvalidUtf8)
    }

    /// An array header of at most `max` items; returns the count.
    pub(crate) fn array(&mut self, max: usize) -> Result<usize, CborError> {
        let n = self.expect(MAJOR_ARRAY)?;
        bounded(n, max)
    }

    /// A map header of at most `max` entries; returns the count.
    pub(crate) fn map(&mut self, max: usize) -> Result<usize, CborError> {
        let n = self.expect(MAJOR_MAP)?;
        bounded(n, max)
    }

    /// Consumes a `null` if one is next; returns whether it did.
    pub(crate) fn null(&mut self) -> Result<bool, CborError> {
        if self.peek()? == NULL {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Whether the next item is an unsigned integer (used for mixed-type map keys).
    pub(crate) fn next_is_uint(&self) -> Result<bool, CborError> {
        Ok(self.peek()? >> 5 == MAJOR_UINT)
    }
}

fn bounded(n: u64, max: usize) -> Result<usize, CborError> {
    match usize::try_from(n) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(CborError::TooLong),
    }
}

fn arr<const N: usize>(s: &[u8]) -> Result<[u8; N], CborError> {
    s.try_into().map_err(|_| CborError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut e = Encoder::default();
        f(&mut e);
        e.buf
    }

    #[test]
    fn shortest_forms() {
        assert_eq!(enc(|e| e.uint(23)), [0x17]);
        assert_eq!(enc(|e| e.uint(24)), [0x18, 24]);
        assert_eq!(enc(|e| e.uint(1000)), [0x19, 0x03, 0xE8]);
        assert_eq!(enc(|e| e.uint(1_000_000)), [0x1A, 0, 0x0F, 0x42, 0x40]);
        assert_eq!(
            enc(|e| e.uint(1_000_000_000_000)),
            [0x1B, 0, 0, 0, 0xE8, 0xD4, 0xA5, 0x10, 0]
        );
        assert_eq!(enc(|e| e.int(-1)), [0x20]);
        assert_eq!(enc(|e| e.int(-1000)), [0x39, 0x03, 0xE7]);
        assert_eq!(enc(|e| e.int(i64::MIN)), {
            let mut v = vec![0x3B];
            v.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
            v
        });
        assert_eq!(enc(|e| e.text("a")), [0x61, b'a']);
    }

    #[test]
    fn decoder_round_trip_and_limits() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let b = enc(|e| e.uint(n));
            let mut d = Decoder::new(&b);
            assert_eq!(d.uint(), Ok(n));
            assert!(d.is_at_end());
        }
        for n in [0i64, -1, -24, -25, -256, -257, i64::MIN, i64::MAX] {
            let b = enc(|e| e.int(n));
            assert_eq!(Decoder::new(&b).int(), Ok(n));
        }
        // Non-shortest forms.
        for bad in [&[0x18, 5][..], &[0x19, 0, 5], &[0x1A, 0, 0, 0xFF, 0xFF]] {
            assert_eq!(Decoder::new(bad).uint(), Err(CborError::NonCanonical));
        }
        // Indefinite length, tags, floats, booleans.
        assert_eq!(
            Decoder::new(&[0x5F]).bytes(10),
            Err(CborError::NonCanonical)
        );
        assert_eq!(Decoder::new(&[0xC0, 0]).uint(), Err(CborError::Unsupported));
        assert_eq!(Decoder::new(&[0xF5]).uint(), Err(CborError::Unsupported));
        assert_eq!(
            Decoder::new(&[0xFB, 0, 0, 0, 0, 0, 0, 0, 0]).uint(),
            Err(CborError::Unsupported)
        );
        // A huge length is refused before any allocation or read.
        let huge = [0x5B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(Decoder::new(&huge).bytes(100), Err(CborError::TooLong));
        assert_eq!(
            Decoder::new(&[0x45, 1, 2]).bytes(100),
            Err(CborError::Truncated)
        );
        assert_eq!(
            Decoder::new(&[0x62, 0xFF, 0xFE]).text(9),
            Err(CborError::InvalidUtf8)
        );
        assert_eq!(
            Decoder::new(&[0x3B, 0x80, 0, 0, 0, 0, 0, 0, 0]).int(),
            Err(CborError::OutOfRange)
        );
    }
}
