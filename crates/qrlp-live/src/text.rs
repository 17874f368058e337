//! Small text encodings used by the JSON format and key files: ISO-8601 UTC timestamps,
//! lowercase hex and standard base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The largest timestamp the formats carry: 9999-12-31T23:59:59.999Z, in ms.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Values above [`MAX_TIMESTAMP_MS`] are clamped to it (the formats refuse them earlier).
///
/// ```
/// assert_eq!(qrlp_live::format_timestamp(1_736_609_445_123), "2025-01-11T15:30:45.123Z");
/// ```
pub fn format_timestamp(ms: u64) -> String {
    let ms = ms.min(MAX_TIMESTAMP_MS);
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms % 1000
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (UTC, years 1970-9999) into milliseconds since the
/// Unix epoch; fractions below a millisecond are truncated. `None` for anything else.
///
/// ```
/// assert_eq!(qrlp_live::parse_timestamp("2025-01-11T15:30:45.123456Z"), Some(1_736_609_445_123));
/// assert_eq!(qrlp_live::parse_timestamp("2025-02-30T00:00:00Z"), None);
/// ```
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 30 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    if d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let millis = match frac {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut ms = 0u64;
            for i in 0..3 {
                ms = ms * 10 + digits.get(i).map_or(0, |c| u64::from(c - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(se);
    Some(secs * 1000 + millis)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years counted from March).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Decodes hex (either case); `None` for odd length or other characters.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Standard base64 with padding (what Python's `base64.b64encode` gives).
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64; `None` when invalid.
pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for (s, ms) in [
            ("1970-01-01T00:00:00.000Z", 0),
            ("2000-02-29T12:00:00.500Z", 951_825_600_500),
            ("2025-01-11T15:30:45.123Z", 1_736_609_445_123),
            ("9999-12-31T23:59:59.999Z", MAX_TIMESTAMP_MS),
        ] {
            assert_eq!(format_timestamp(ms), s);
            assert_eq!(parse_timestamp(s), Some(ms));
        }
        assert_eq!(
            parse_timestamp("2025-01-11T15:30:45Z"),
            Some(1_736_609_445_000)
        );
        for bad in [
            "2025-01-11T15:30:45",
            "2025-01-11 15:30:45Z",
            "2025-13-01T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "2025-01-11T15:30:45.Z",
            "2025-01-11T15:30:45.1234567890Z",
            "2025-01-11T24:00:00Z",
            "2023-02-29T00:00:00Z",
            "+025-01-11T15:30:45Z",
            "2025-01-11T15:30:45.12a4Z",
            "",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        // Every day boundary over four centuries round-trips.
        let mut ms = 0u64;
        while ms < 13_000_000_000_000 {
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms));
            ms += 86_400_000 * 7 + 1;
        }
    }

    #[test]
    fn hex_and_b64() {
        assert_eq!(hex(&[0, 0xAB, 0xFF]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xAB, 0xFF]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(b64(b"hi"), "aGk=");
        assert_eq!(unb64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(unb64("aGk"), None);
    }
}
