//! Enrollment: single-use tokens, device ids, the proof of possession a registration
//! carries, and the token's optional name pattern and capability floor.

use std::fmt;

use crate::{hex, random_bytes, sha256};

/// Every enrollment token starts with this (the seed's `tok_…`).
pub const TOKEN_PREFIX: &str = "tok_";
/// First line of the registration proof.
pub const ENROLL_PROOF_VERSION: &str = "qrlp-device-enroll-v1";
/// First line of a key-rotation proof.
pub const ROTATE_PROOF_VERSION: &str = "qrlp-device-rotate-v1";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new token: the secret (shown once) and its SHA-256 (stored). `Debug` hides both.
pub struct EnrollmentToken {
    /// `tok_` + 40 base62 characters.
    pub secret: String,
    /// SHA-256 of the whole secret.
    pub hash: [u8; 32],
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrollmentToken(<redacted>)")
    }
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    // Rejection sampling: only bytes below the largest multiple of the alphabet size.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>() {
            if usize::from(b) < limit && out.len() < n {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

/// A fresh enrollment token.
pub fn generate_token() -> EnrollmentToken {
    let secret = format!("{TOKEN_PREFIX}{}", random_from(BASE62, 40));
    let hash = hash_token(&secret);
    EnrollmentToken { secret, hash }
}

/// SHA-256 of a token (how tokens are stored and looked up).
pub fn hash_token(secret: &str) -> [u8; 32] {
    sha256(secret.as_bytes())
}

/// Whether `s` has the shape of a token: `tok_` and 8 to 128 base62 characters (longer or
/// other text is refused before hashing).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|r| {
        (8..=128).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A new device id: `dev_` + 20 characters of `0-9 a-z` (about 103 bits).
pub fn new_device_id() -> String {
    format!("dev_{}", random_from(BASE36, 20))
}

/// The message a device signs with its new Ed25519 key when it registers: it proves that
/// the registering party holds the private key of the public keys it sends, and binds them
/// to this token.
pub fn enrollment_proof_message(
    token: &str,
    ed25519_public: &[u8],
    ml_kem_public: &[u8],
) -> Vec<u8> {
    format!(
        "{ENROLL_PROOF_VERSION}\n{}\n{}\n{}",
        hex(&hash_token(token)),
        hex(ed25519_public),
        hex(&sha256(ml_kem_public))
    )
    .into_bytes()
}

/// The message a device signs with its *new* key when it registers key version
/// `new_version` (the request itself is signed with the current key).
pub fn rotation_proof_message(
    device_id: &str,
    new_version: u32,
    ed25519_public: &[u8],
    ml_kem_public: &[u8],
) -> Vec<u8> {
    format!(
        "{ROTATE_PROOF_VERSION}\n{device_id}\n{new_version}\n{}\n{}",
        hex(ed25519_public),
        hex(&sha256(ml_kem_public))
    )
    .into_bytes()
}

/// Whether `name` matches a glob `pattern`: `*` any run of characters, `?` one character,
/// everything else itself (case-sensitive).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative glob with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a device's `capabilities` satisfy a token's `required` ones: every number in
/// `required` is a floor (the device's must be at least it), every other value must be
/// equal. Keys the token does not name are free.
pub fn capabilities_satisfy(
    required: &serde_json::Value,
    actual: &serde_json::Value,
) -> Result<(), String> {
    let Some(req) = required.as_object() else {
        return Ok(());
    };
    for (k, want) in req {
        let have = actual.get(k);
        let ok = match (want.as_f64(), have.and_then(serde_json::Value::as_f64)) {
            (Some(w), Some(h)) => h >= w,
            (Some(_), None) => false,
            (None, _) => have == Some(want),
        };
        if !ok {
            return Err(format!(
                "capability {k} must be {}{want}",
                if want.is_number() { "at least " } else { "" }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_ids_have_their_shapes() {
        let t = generate_token();
        assert!(looks_like_token(&t.secret));
        assert_eq!(t.secret.len(), 44);
        assert_eq!(hash_token(&t.secret), t.hash);
        assert!(!format!("{t:?}").contains(&t.secret));
        assert!(!looks_like_token("tok_short"));
        assert!(!looks_like_token("qrlp_aaaaaaaaaaaaaaaa"));
        let id = new_device_id();
        assert!(crate::signing::valid_device_id(&id), "{id}");
        assert_ne!(new_device_id(), id);
    }

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("gate-*", "gate-1", true),
            ("gate-*", "gate-", true),
            ("gate-*", "door-1", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*-edge-*", "x-edge-y", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**a", "bbba", true),
        ] {
            assert_eq!(name_matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn capability_floors() {
        let req = serde_json::json!({"cpu_cores": 2, "gpu": true});
        assert!(
            capabilities_satisfy(&req, &serde_json::json!({"cpu_cores": 4, "gpu": true})).is_ok()
        );
        assert!(
            capabilities_satisfy(&req, &serde_json::json!({"cpu_cores": 1, "gpu": true})).is_err()
        );
        assert!(capabilities_satisfy(&req, &serde_json::json!({"cpu_cores": 4})).is_err());
        assert!(capabilities_satisfy(&serde_json::Value::Null, &serde_json::json!({})).is_ok());
    }
}
