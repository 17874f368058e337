//! Short-link slugs: [`SLUG_LEN`] characters drawn uniformly from the 62 letters and digits
//! (URL-safe, no escaping, no case folding by browsers in the path). 10 characters carry
//! 59.5 bits: with a million codes, a guess hits one with probability below 2^-39.

/// Characters of a generated slug.
pub const SLUG_LEN: usize = 10;
/// The shortest slug a lookup accepts (the issue's floor).
pub const SLUG_MIN: usize = 7;
/// The longest slug a lookup accepts.
pub const SLUG_MAX: usize = 32;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new slug from the caller's random source `fill`, which must fill a buffer with
/// cryptographically random bytes. Bytes are drawn by rejection (values below 248, a
/// multiple of 62), so every character is uniform.
///
/// ```
/// let mut n = 0u8;
/// let s = qrlp_tracking::slug::generate(|buf| for b in buf.iter_mut() { n = n.wrapping_add(97); *b = n; });
/// assert_eq!(s.len(), qrlp_tracking::slug::SLUG_LEN);
/// assert!(qrlp_tracking::slug::is_valid(&s));
/// ```
pub fn generate(mut fill: impl FnMut(&mut [u8])) -> String {
    let mut out = String::with_capacity(SLUG_LEN);
    let mut buf = [0u8; 32];
    while out.len() < SLUG_LEN {
        fill(&mut buf);
        for &b in &buf {
            if b < 248 && out.len() < SLUG_LEN {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// Whether `s` has the form of a slug: 7 to 32 ASCII letters and digits. Checked before any
/// lookup, so junk never reaches the cache or the database.
pub fn is_valid(s: &str) -> bool {
    (SLUG_MIN..=SLUG_MAX).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_enough_and_valid() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut counts = [0u32; 62];
        for _ in 0..2000 {
            let s = generate(|buf| {
                for b in buf.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = state as u8;
                }
            });
            assert!(is_valid(&s), "{s}");
            for c in s.bytes() {
                let i = ALPHABET.iter().position(|&a| a == c).unwrap();
                counts[i] += 1;
            }
        }
        // 20,000 characters over 62 symbols: about 322 each.
        assert!(
            counts.iter().all(|&c| (230..420).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn syntax() {
        assert!(is_valid("abcDEF1"));
        assert!(!is_valid("abcDE1"));
        assert!(!is_valid("abc-DEF1"));
        assert!(!is_valid(&"a".repeat(33)));
        assert!(!is_valid("abcdéfgh"));
    }

    #[test]
    fn a_source_of_only_rejected_bytes_is_retried() {
        let mut calls = 0;
        let s = generate(|buf| {
            calls += 1;
            buf.fill(if calls < 3 { 255 } else { 61 });
        });
        assert_eq!(s, "z".repeat(SLUG_LEN));
    }
}
