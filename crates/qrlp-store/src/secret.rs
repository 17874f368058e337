//! Secrets: API keys, password hashes, session and CSRF tokens.
//!
//! Pure functions over the operating system's random source; no database access. API keys
//! and session tokens are stored only as SHA-256 hashes, passwords only as argon2id PHC strings.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "qrlp_";
/// Number of base62 characters after [`API_KEY_PREFIX`] (40 × log2(62) ≈ 238 bits).
pub const API_KEY_RANDOM_LEN: usize = 40;
/// Length of the visible prefix kept with a key: `qrlp_` and 7 random characters.
pub const API_KEY_VISIBLE_LEN: usize = 12;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated API key. The secret is shown to the user once; only `prefix` and
/// `hash` are stored. `Debug` hides the secret.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The whole key, `qrlp_` + 40 base62 characters.
    pub secret: String,
    /// The first 12 characters of the secret, e.g. `qrlp_AbC1dEf`.
    pub prefix: String,
    /// SHA-256 of the whole secret.
    pub hash: [u8; 32],
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("secret", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .finish()
    }
}

/// Fills `buf` from the operating system's random source.
///
/// # Panics
/// When the operating system cannot provide randomness; no secret can be made safely then.
fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// 32 bytes from the operating system's random source (for secrets made elsewhere, such as
/// webhook signing secrets).
pub fn random_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    b
}

/// `n` uniformly random base62 characters (rejection sampling, no modulo bias).
fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        fill_random(&mut buf);
        for &b in &buf {
            // 248 = 4 × 62: bytes above it would favour the first characters.
            if b < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// Generates a new API key with its visible prefix and hash.
pub fn generate_api_key() -> GeneratedKey {
    let secret = format!("{API_KEY_PREFIX}{}", random_base62(API_KEY_RANDOM_LEN));
    let prefix = secret[..API_KEY_VISIBLE_LEN].to_owned();
    let hash = hash_api_key(&secret);
    GeneratedKey {
        secret,
        prefix,
        hash,
    }
}

/// SHA-256 of the whole key (the form in which keys are stored and looked up).
pub fn hash_api_key(secret: &str) -> [u8; 32] {
    sha256(secret.as_bytes())
}

/// True when `s` has the shape of a qrlp API key: `qrlp_` + 40 base62 characters.
pub fn looks_like_api_key(s: &str) -> bool {
    s.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == API_KEY_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The argon2id (default parameters) PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    if password.is_empty() {
        return Err(StoreError::invalid("password", "must not be empty"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Internal("cannot hash the password".into(), Some(Box::new(e))))
}

/// Checks `password` against an argon2 PHC string (constant-time comparison inside argon2).
/// A malformed PHC string verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Argon2 working memory kept by one thread and reused for every hash it computes, so that
/// a busy server holds a fixed amount of hashing memory instead of leaving a fresh ~19 MiB
/// allocation to the allocator each time. Results are the same as [`hash_password`] and
/// [`verify_password`].
#[derive(Default)]
pub struct PasswordWork {
    blocks: Vec<argon2::Block>,
}

/// Largest argon2 memory a stored hash may ask for (64 MiB); larger ones verify nothing.
const MAX_ARGON2_BLOCKS: usize = 64 * 1024;

impl PasswordWork {
    fn blocks(&mut self, n: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < n {
            self.blocks.resize(n, argon2::Block::default());
        }
        &mut self.blocks[..n]
    }

    /// As [`verify_password`], in this thread's memory.
    pub fn verify(&mut self, password: &str, phc: &str) -> bool {
        use argon2::password_hash::phc::{Output, PasswordHash};
        use argon2::{Algorithm, Params, Version};
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let (Ok(params), Ok(algorithm)) = (
            Params::try_from(&hash),
            Algorithm::try_from(hash.algorithm.as_str()),
        ) else {
            return false;
        };
        let version = match hash.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let n = params.block_count();
        if n > MAX_ARGON2_BLOCKS {
            return false;
        }
        let argon = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        if argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt.as_ref(),
                &mut out,
                self.blocks(n),
            )
            .is_err()
        {
            return false;
        }
        // `Output`'s equality is constant-time.
        Output::new(&out).is_ok_and(|computed| computed == *expected)
    }

    /// As [`hash_password`], in this thread's memory.
    pub fn hash(&mut self, password: &str) -> Result<String, StoreError> {
        use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
        use argon2::{Algorithm, Params, Version};
        if password.is_empty() {
            return Err(StoreError::invalid("password", "must not be empty"));
        }
        let failed =
            |e: String| StoreError::Internal(format!("cannot hash the password: {e}"), None);
        let params = Params::default();
        let salt = Salt::generate();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt.as_ref(),
                &mut out,
                self.blocks(params.block_count()),
            )
            .map_err(|e| failed(e.to_string()))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(e.to_string()))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| failed(e.to_string()))?),
        };
        Ok(hash.to_string())
    }
}

/// A session token for a cookie: 32 random bytes as base64url without padding, and its
/// SHA-256 (the form stored).
pub fn generate_token() -> (String, [u8; 32]) {
    let token = random_base64url(32);
    let hash = sha256(token.as_bytes());
    (token, hash)
}

/// SHA-256 of a session token as sent back by the browser.
pub fn hash_token(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

/// A CSRF token: 32 random bytes as base64url without padding.
pub fn generate_csrf_token() -> String {
    random_base64url(32)
}

fn random_base64url(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The data key: encrypts secrets the server must be able to read back (chain checkpoints,
/// webhook signing secrets, later channel and device keys) before they are stored, so that
/// a copy of the database alone reveals none of them.
///
/// XChaCha20-Poly1305 with a random 192-bit nonce per seal. A sealed value is
/// `0x01 ‖ key id (4 bytes) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`; the key id is the first
/// four bytes of SHA-256 of the key, so a value sealed under another key is refused with a
/// clear error. Callers pass associated data naming what the value is and whose it is
/// (e.g. `chain:42`), so a sealed value copied to another row does not open.
///
/// The key comes from `storage.encryption_key` (64 hex digits or base64 of 32 bytes), or the
/// file `storage.encryption_key_file`, by default `<data_dir>/data.key`, created with 32
/// random bytes and mode 0600 on first start. `Debug` never shows it.
#[derive(Clone)]
pub struct DataKey {
    key: [u8; 32],
    id: [u8; 4],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id {})", self.id_hex())
    }
}

/// Version byte of sealed values.
const SEALED_V1: u8 = 1;
/// Bytes a seal adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + 4 + 24 + 16;

impl DataKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> DataKey {
        let digest = sha256(&key);
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest[..4]);
        DataKey { key, id }
    }

    /// A new random key.
    pub fn generate() -> DataKey {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        DataKey::from_bytes(key)
    }

    /// A key from its text: 64 hex digits or standard base64 of 32 bytes (surrounding
    /// whitespace ignored).
    ///
    /// # Errors
    /// `Invalid` naming `field`, never showing the text.
    pub fn parse(field: &str, text: &str) -> Result<DataKey, StoreError> {
        use base64::engine::general_purpose::STANDARD;
        let text = text.trim();
        let mut key = [0u8; 32];
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, pair) in text.as_bytes().chunks(2).enumerate() {
                let hex = std::str::from_utf8(pair).unwrap_or("00");
                key[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
            }
            return Ok(DataKey::from_bytes(key));
        }
        match STANDARD.decode(text) {
            Ok(bytes) if bytes.len() == 32 => {
                key.copy_from_slice(&bytes);
                Ok(DataKey::from_bytes(key))
            }
            _ => Err(StoreError::invalid(
                field,
                "must be 64 hex digits or base64 of 32 bytes (value not shown)",
            )),
        }
    }

    /// The key in `path`, or a new one written there (mode 0600) when the file does not
    /// exist. Two processes starting together end up with the same key. A file the group or
    /// others may read is refused.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be read or written; `Invalid` when it does not
    /// hold a key.
    pub fn load_or_create(path: &std::path::Path) -> Result<DataKey, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(
                    format!("cannot create the directory {}", dir.display()),
                    Some(Box::new(e)),
                )
            })?;
        }
        let text = qrlp_live::load_or_generate_secret(path).map_err(|e| {
            StoreError::Unavailable(
                format!("cannot use the data key file {}", path.display()),
                Some(Box::new(e)),
            )
        })?;
        DataKey::parse("storage.encryption_key_file", &text)
    }

    /// The key id, 8 hex digits (safe to log).
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Encrypts `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::XChaCha20Poly1305;
        let mut nonce = [0u8; 24];
        fill_random(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.key.into());
        #[allow(clippy::expect_used)]
        let ct = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a value sealed with this key and the same `aad`.
    ///
    /// # Errors
    /// `Internal` when the value is malformed, was sealed under another key, or was changed
    /// (the message says which, never the contents).
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::XChaCha20Poly1305;
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEALED_V1 {
            return Err(StoreError::internal("sealed value is malformed"));
        }
        if sealed[1..5] != self.id {
            return Err(StoreError::internal(format!(
                "sealed value was encrypted under data key {}, not the configured {}",
                sealed[1..5]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
                self.id_hex()
            )));
        }
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&sealed[5..29]);
        let cipher = XChaCha20Poly1305::new(&self.key.into());
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &sealed[29..],
                    aad,
                },
            )
            .map_err(|_| StoreError::internal("sealed value does not authenticate"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_roughly_uniform() {
        let s = random_base62(62 * 200);
        let mut counts = [0u32; 62];
        for b in s.bytes() {
            if let Some(i) = BASE62.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
        // Expected 200 each; a biased generator would skew the first four characters.
        assert!(
            counts.iter().all(|&c| (100..=320).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn shapes() {
        assert!(!looks_like_api_key("qrlp_short"));
        assert!(!looks_like_api_key(&format!("qrlp_{}", "-".repeat(40))));
        assert!(looks_like_api_key(&format!("qrlp_{}", "a".repeat(40))));
        assert!(!looks_like_api_key(&format!("qrlx_{}", "a".repeat(40))));
        let (token, hash) = generate_token();
        assert_eq!(token.len(), 43);
        assert_eq!(hash_token(&token), hash);
        assert_eq!(generate_csrf_token().len(), 43);
    }

    #[test]
    fn data_key_seals_and_refuses_changes() {
        let k = DataKey::generate();
        let sealed = k.seal(b"chain:1", b"secret");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 6);
        assert_eq!(k.open(b"chain:1", &sealed).unwrap(), b"secret");
        assert!(k.open(b"chain:2", &sealed).is_err());
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(k.open(b"chain:1", &changed).is_err());
        let other = DataKey::generate();
        let e = other.open(b"chain:1", &sealed).unwrap_err().to_string();
        assert!(e.contains(&k.id_hex()), "{e}");
        assert!(!format!("{k:?}").contains(&format!("{:?}", k.key)));
    }

    #[test]
    fn data_key_text_forms() {
        let hex = "00".repeat(31) + "ff";
        let a = DataKey::parse("k", &hex).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(a.key);
        let b = DataKey::parse("k", &format!(" {b64}\n")).unwrap();
        assert_eq!(a.key, b.key);
        assert!(DataKey::parse("k", "short").is_err());
        let e = DataKey::parse("k", "zz").unwrap_err().to_string();
        assert!(!e.contains("zz"));
    }

    #[cfg(unix)]
    #[test]
    fn data_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/data.key");
        let a = DataKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = DataKey::load_or_create(&path).unwrap();
        assert_eq!(a.key, b.key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(DataKey::load_or_create(&path).is_err());
    }
}
