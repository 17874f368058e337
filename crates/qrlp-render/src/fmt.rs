//! Small, allocation-free text helpers for the hot loops of the text renderers.

/// "00" to "99", two characters per number.
const PAIRS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839\
                     40414243444546474849505152535455565758596061626364656667686970717273747576777879\
                     8081828384858687888990919293949596979899";

/// Writes the decimal digits of `v` to the end of `buf`; returns where they start.
#[inline]
fn digits_into(buf: &mut [u8; 20], mut v: u64) -> usize {
    let mut at = buf.len();
    while v >= 100 {
        let i = 2 * (v % 100) as usize;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS.as_bytes()[i..i + 2]);
        v /= 100;
    }
    if v >= 10 {
        let i = 2 * v as usize;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS.as_bytes()[i..i + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + v as u8;
    }
    at
}

/// Appends the decimal digits of `v`.
pub(crate) fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let at = digits_into(&mut buf, v);
    // Only ASCII digits were written.
    if let Ok(s) = std::str::from_utf8(&buf[at..]) {
        out.push_str(s);
    }
}

/// A small stack buffer of ASCII text, flushed into a `String` in blocks, so that the hot loop
/// writes bytes without per-character capacity checks or UTF-8 encoding.
pub(crate) struct AsciiBuf {
    buf: [u8; ASCII_BUF],
    len: usize,
}

const ASCII_BUF: usize = 2048;

/// The most bytes one [`AsciiBuf::reserve`] may ask for.
pub(crate) const ASCII_RESERVE_MAX: usize = 512;

impl AsciiBuf {
    /// Empty.
    pub(crate) fn new() -> AsciiBuf {
        AsciiBuf {
            buf: [0; ASCII_BUF],
            len: 0,
        }
    }

    /// Makes room for `n ≤ ASCII_RESERVE_MAX` more bytes, flushing to `out` if needed.
    #[inline(always)]
    pub(crate) fn reserve(&mut self, n: usize, out: &mut String) {
        debug_assert!(n <= ASCII_RESERVE_MAX);
        if self.len + n > ASCII_BUF {
            self.flush(out);
        }
    }

    /// Moves the text to `out`.
    pub(crate) fn flush(&mut self, out: &mut String) {
        // Only ASCII is ever written, so this never fails.
        if let Ok(s) = std::str::from_utf8(&self.buf[..self.len]) {
            out.push_str(s);
        }
        self.len = 0;
    }

    /// One ASCII byte (the caller reserved room).
    #[inline(always)]
    pub(crate) fn byte(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// ASCII bytes (the caller reserved room).
    #[inline(always)]
    pub(crate) fn bytes(&mut self, s: &[u8]) {
        debug_assert!(s.is_ascii());
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// The decimal digits of `v` (the caller reserved 20 bytes). Numbers below 100, the
    /// usual case, take no branch on their length.
    #[inline(always)]
    pub(crate) fn num(&mut self, v: u64) {
        if v < 100 {
            let i = 2 * v as usize;
            let pair = &PAIRS.as_bytes()[i..i + 2];
            let one_digit = usize::from(v < 10);
            // One digit: write the units digit twice and keep one.
            self.buf[self.len] = pair[one_digit];
            self.buf[self.len + 1] = pair[1];
            self.len += 2 - one_digit;
        } else {
            let mut tmp = [0u8; 20];
            let at = digits_into(&mut tmp, v);
            self.bytes(&tmp[at..]);
        }
    }
}

/// Number of decimal digits of `v`.
pub(crate) fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Appends `text` escaped for XML character data or a quoted attribute value. Characters that
/// XML 1.0 does not allow at all (most C0 controls, U+FFFE, U+FFFF) are dropped.
pub(crate) fn push_xml_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_std() {
        let mut values: Vec<u64> = (0..1200).collect();
        values.extend([
            9_999,
            10_000,
            65_535,
            1 << 32,
            u64::from(u32::MAX) * 2 + 177,
            999_999_999_999,
            u64::MAX - 1,
            u64::MAX,
        ]);
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1]);
            p = next;
        }
        for v in values {
            let mut s = String::from("x");
            push_u64(&mut s, v);
            assert_eq!(s, format!("x{v}"));
            assert_eq!(digits(v), v.to_string().len());
            let mut b = AsciiBuf::new();
            b.reserve(20, &mut s);
            b.byte(b'y');
            b.num(v);
            b.flush(&mut s);
            assert_eq!(s, format!("x{v}y{v}"));
        }
    }

    #[test]
    fn ascii_buffer_flushes_in_blocks() {
        let mut out = String::new();
        let mut b = AsciiBuf::new();
        let mut expected = String::new();
        for i in 0..5000u64 {
            b.reserve(ASCII_RESERVE_MAX, &mut out);
            b.bytes(b"M");
            b.num(i * 37 % 1000);
            expected.push_str(&format!("M{}", i * 37 % 1000));
        }
        b.flush(&mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn xml_escaping() {
        let mut s = String::new();
        push_xml_escaped(&mut s, "a<b>&\"c\"'d'\u{0}\u{7}\te\u{fffe}é✓");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\teé✓");
    }
}
