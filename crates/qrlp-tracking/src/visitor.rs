//! Unique visitors without keeping who they are.
//!
//! A visitor is the SHA-256 of a 32-byte salt, the anonymised address and the user agent,
//! cut to 128 bits. The salt is random, shared by every server through the database for one
//! UTC day, and deleted when the day is over: after that nobody, the operator included, can
//! tell whether two hashes of different days are the same person, or recompute a hash from
//! an address. Within a day the same phone on the same network is one visitor.

use sha2::{Digest, Sha256};

/// Length of the daily salt.
pub const SALT_LEN: usize = 32;
/// Seconds in a UTC day.
pub const DAY_SECS: i64 = 86_400;

/// The UTC day number (days since 1970-01-01) of a Unix time.
pub fn utc_day(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(DAY_SECS)
}

/// The visitor hash of one scan. `address` is the anonymised address as text; `user_agent`
/// is empty when the organization does not allow it to be used.
///
/// ```
/// use qrlp_tracking::visitor::visitor_hash;
/// let salt = [7u8; 32];
/// let a = visitor_hash(&salt, "203.0.113.0", "Mozilla/5.0");
/// assert_eq!(a, visitor_hash(&salt, "203.0.113.0", "Mozilla/5.0"));
/// assert_ne!(a, visitor_hash(&[8u8; 32], "203.0.113.0", "Mozilla/5.0"));
/// assert_ne!(a, visitor_hash(&salt, "203.0.114.0", "Mozilla/5.0"));
/// ```
pub fn visitor_hash(salt: &[u8; SALT_LEN], address: &str, user_agent: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"qrlp-visitor-v1\0");
    h.update(salt);
    // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    h.update((address.len() as u64).to_be_bytes());
    h.update(address.as_bytes());
    h.update(user_agent.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(86_399), 0);
        assert_eq!(utc_day(86_400), 1);
        assert_eq!(utc_day(-1), -1);
    }

    #[test]
    fn fields_do_not_run_together() {
        let s = [0u8; 32];
        assert_ne!(visitor_hash(&s, "ab", "c"), visitor_hash(&s, "a", "bc"));
    }
}
