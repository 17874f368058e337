//! What `qrlp generate` and `qrlp verify` share: where the identity lives, the clock, and
//! the issuer's identity hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use qrlp_config::Config;
use qrlp_live::{DataKey, HmacKey, KeySet, Suite, ED25519_PUBLIC_KEY_LEN};
use sha2::{Digest, Sha256};

/// The data directory: `$QRLP_DATA_DIR`, or `./qrlp-data`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("QRLP_DATA_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("./qrlp-data"),
    }
}

/// The identity file to use: the one given, else `<data dir>/identity.json`.
pub fn identity_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| data_dir().join("identity.json"), Path::to_owned)
}

/// The symmetric keys of the configuration's `security` section (file `config`, then the
/// environment: `QRLP_HMAC_SECRET`, `QRLP_DATA_KEY_SECRET`, …). A secret left empty gives
/// `None`: a command-line frame then carries no HMAC, since a random key could be checked by
/// nobody else.
pub struct SharedKeys {
    pub hmac: Option<Arc<HmacKey>>,
    pub data: Option<Arc<DataKey>>,
}

pub fn shared_keys(config: Option<&Path>) -> anyhow::Result<SharedKeys> {
    let config = Config::load(config, &[]).map_err(|problems| anyhow!("{problems}"))?;
    let sec = &config.security;
    let hmac = if sec.hmac_secret.is_empty() {
        None
    } else {
        let key = HmacKey::from_secret(&sec.hmac_key_id, sec.hmac_secret.as_bytes())
            .context("security.hmac_secret")?;
        Some(Arc::new(key))
    };
    let data = if sec.data_key_secret.is_empty() {
        None
    } else {
        let key = DataKey::from_secret(&sec.data_key_id, sec.data_key_secret.as_bytes())
            .context("security.data_key_secret")?;
        Some(Arc::new(key))
    };
    Ok(SharedKeys { hmac, data })
}

/// Now, in ms since the Unix epoch (0 for a clock before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The identity hash a frame carries: SHA-256 of the issuer's Ed25519 public key, so a
/// verifier holding the key set can check it without any other registry.
pub fn identity_hash(ed25519_public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(ed25519_public_key).to_vec()
}

/// The identity hash expected for frames signed by key `kid` of `keys`: from the Ed25519
/// key of that key's generation. An FN-DSA key is linked to its Ed25519 key through the
/// hybrid entry that holds both (every exported generation has one). `None` when the key is
/// unknown or cannot be linked.
pub fn expected_identity(keys: &KeySet, kid: &str) -> Option<Vec<u8>> {
    let kid = kid.parse().ok()?;
    let entry = keys.get(&kid)?;
    let bytes = entry.key.as_bytes();
    let ed = match entry.key.suite() {
        Suite::Ed25519 => bytes,
        Suite::Hybrid => bytes.get(..ED25519_PUBLIC_KEY_LEN)?,
        Suite::FnDsa512 => keys.entries().iter().find_map(|e| {
            let b = e.key.as_bytes();
            (e.key.suite() == Suite::Hybrid && b.get(ED25519_PUBLIC_KEY_LEN..) == Some(bytes))
                .then(|| &b[..ED25519_PUBLIC_KEY_LEN])
        })?,
    };
    Some(identity_hash(ed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrlp_live::SigningIdentity;

    #[test]
    fn expected_identity_links_every_suite_to_the_ed25519_key() {
        let mut rng = qrlp_live::rand_core::OsRng;
        let id = match SigningIdentity::generate(&mut rng, true) {
            Ok(id) => id,
            Err(e) => panic!("key generation: {e}"),
        };
        let keys = KeySet::from_identity(&id, 0, None);
        let ed = id.public_key(Suite::Ed25519).map(|k| k.as_bytes().to_vec());
        let want = ed.as_deref().map(identity_hash);
        for suite in Suite::ALL {
            let kid = id.key_id(suite).map(|k| k.to_string()).unwrap_or_default();
            assert_eq!(expected_identity(&keys, &kid), want, "{suite}");
        }
        assert_eq!(expected_identity(&keys, "00112233445566ff"), None);
        assert_eq!(expected_identity(&keys, "not hex"), None);
    }
}
