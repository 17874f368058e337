//! The issuer's identity hash: a hash of its current public key and, as configured, the
//! host it runs on and custom name/value pairs.

use std::collections::BTreeMap;

use qrlp_config::IdentityConfig;
use qrlp_live::{FrameError, SigningIdentity, Suite};
use sha2::{Digest, Sha256, Sha512};

/// `hash_algorithm` over the JSON object (keys in sorted order, no whitespace) of
/// `{"custom": {...}, "public_key": hex Ed25519 key, "system": {"arch","hostname","os"}}`;
/// `system` only with `include_system_info`, `custom` only when not empty. The hash
/// changes when the signing key rotates.
pub(crate) fn identity_hash(
    config: &IdentityConfig,
    identity: &SigningIdentity,
) -> Result<Vec<u8>, FrameError> {
    let public = identity
        .public_key(Suite::Ed25519)
        .ok_or_else(|| FrameError::InvalidKey("the identity has no Ed25519 key".into()))?;
    let mut material: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    material.insert("public_key", crate::hex(public.as_bytes()).into());
    if config.include_system_info {
        let system: BTreeMap<&str, String> = [
            ("arch", std::env::consts::ARCH.to_string()),
            ("hostname", hostname()),
            ("os", std::env::consts::OS.to_string()),
        ]
        .into_iter()
        .collect();
        material.insert("system", serde_json::to_value(system).unwrap_or_default());
    }
    if !config.custom_data.is_empty() {
        material.insert(
            "custom",
            serde_json::to_value(&config.custom_data).unwrap_or_default(),
        );
    }
    // BTreeMaps serialize in key order whatever serde_json features are on.
    let text = serde_json::to_string(&material).unwrap_or_default();
    Ok(match config.hash_algorithm.as_str() {
        "sha512" => Sha512::digest(text.as_bytes()).to_vec(),
        _ => Sha256::digest(text.as_bytes()).to_vec(),
    })
}

/// The host name (Linux: the kernel's), else `$HOSTNAME`, else `unknown`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
