//! Signed device requests (format `qrlp-device-request-v1`).
//!
//! Every device request carries five headers: [`HEADER_DEVICE_ID`], [`HEADER_KEY_VERSION`],
//! [`HEADER_TIMESTAMP`] (Unix seconds), [`HEADER_NONCE`] (16 to 64 characters of
//! `A-Z a-z 0-9 - _`, fresh for every request) and [`HEADER_SIGNATURE`]: the standard
//! base64 of an Ed25519 signature, made with the device key of that version, over the
//! UTF-8 bytes of eight lines joined by `\n` (no trailing newline):
//!
//! ```text
//! qrlp-device-request-v1
//! POST                          method, upper case
//! /api/v1/devices/dev_x/heartbeat   path and query exactly as sent
//! dev_x                         device id
//! 1                             key version (decimal)
//! 1767225600                    timestamp (decimal Unix seconds)
//! 3f9c...                       nonce
//! e3b0c442...                   SHA-256 of the body bytes, lower-case hex
//! ```
//!
//! The server refuses a timestamp more than [`DEFAULT_TOLERANCE_SECS`] away from its clock
//! and a (device, nonce) pair it has seen within that window ([`crate::replay`]), so the
//! same signed request works at most once. This is the model of Flower's node
//! authentication, with a nonce so that two identical requests in one second both work.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::{hex, random_bytes, sha256, FleetError};

/// First line of the signed message.
pub const SIGNING_VERSION: &str = "qrlp-device-request-v1";
/// How far a request's timestamp may be from the server's clock, in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// Header: the device id, `dev_…`.
pub const HEADER_DEVICE_ID: &str = "x-device-id";
/// Header: the version of the device key that signed.
pub const HEADER_KEY_VERSION: &str = "x-device-key-version";
/// Header: Unix seconds when the request was signed.
pub const HEADER_TIMESTAMP: &str = "x-device-timestamp";
/// Header: a fresh random value per request.
pub const HEADER_NONCE: &str = "x-device-nonce";
/// Header: base64 Ed25519 signature.
pub const HEADER_SIGNATURE: &str = "x-device-signature";

/// Why a signed request was refused. [`Rejection::reason`] is the text sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A required header is absent.
    MissingHeader(&'static str),
    /// A header does not have its form.
    Malformed(&'static str),
    /// The timestamp is outside the tolerance.
    Stale,
    /// The signature does not verify with the device key of that version.
    BadSignature,
    /// The same device and nonce were seen within the tolerance.
    Replayed,
    /// No such device (or not in this organization).
    UnknownDevice,
    /// The device was deregistered or its certificate revoked.
    Revoked,
    /// The device has no key of that version.
    UnknownKeyVersion,
    /// The key version was replaced and its grace period is over.
    KeyExpired,
    /// The replay cache is full: the server cannot prove the request is fresh.
    ReplayCacheFull,
}

impl Rejection {
    /// A short reason code: `missing_header`, `malformed_header`, `stale_timestamp`,
    /// `bad_signature`, `replayed`, `unknown_device`, `revoked`, `unknown_key_version`,
    /// `key_expired`, `replay_cache_full`.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::Malformed(_) => "malformed_header",
            Rejection::Stale => "stale_timestamp",
            Rejection::BadSignature => "bad_signature",
            Rejection::Replayed => "replayed",
            Rejection::UnknownDevice => "unknown_device",
            Rejection::Revoked => "revoked",
            Rejection::UnknownKeyVersion => "unknown_key_version",
            Rejection::KeyExpired => "key_expired",
            Rejection::ReplayCacheFull => "replay_cache_full",
        }
    }

    /// A sentence for the error message.
    pub fn message(self) -> String {
        match self {
            Rejection::MissingHeader(h) => format!("Missing signed-request header {h}"),
            Rejection::Malformed(h) => format!("Malformed signed-request header {h}"),
            Rejection::Stale => format!(
                "Request timestamp is more than {DEFAULT_TOLERANCE_SECS} s from the server clock"
            ),
            Rejection::BadSignature => "Request signature does not verify".into(),
            Rejection::Replayed => "This signed request was already received".into(),
            Rejection::UnknownDevice => "Unknown device".into(),
            Rejection::Revoked => "The device is deregistered or its certificate revoked".into(),
            Rejection::UnknownKeyVersion => "The device has no key of this version".into(),
            Rejection::KeyExpired => "This key version was rotated out".into(),
            Rejection::ReplayCacheFull => "The server cannot check freshness right now".into(),
        }
    }
}

/// The signed-request headers of one request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Device-Id`.
    pub device_id: String,
    /// `X-Device-Key-Version`.
    pub key_version: u32,
    /// `X-Device-Timestamp`.
    pub timestamp: i64,
    /// `X-Device-Nonce`.
    pub nonce: String,
    /// `X-Device-Signature`, decoded.
    pub signature: [u8; 64],
}

impl SignedHeaders {
    /// The headers as `(name, value)` pairs, for a client to send.
    pub fn to_pairs(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_DEVICE_ID, self.device_id.clone()),
            (HEADER_KEY_VERSION, self.key_version.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, STANDARD.encode(self.signature)),
        ]
    }

    /// Reads the headers through `get` (a case-insensitive header lookup).
    ///
    /// # Errors
    /// The first missing or malformed header.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<SignedHeaders, Rejection> {
        let need = |name: &'static str| get(name).ok_or(Rejection::MissingHeader(name));
        let device_id = need(HEADER_DEVICE_ID)?;
        if !valid_device_id(device_id) {
            return Err(Rejection::Malformed(HEADER_DEVICE_ID));
        }
        let key_version = need(HEADER_KEY_VERSION)?
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or(Rejection::Malformed(HEADER_KEY_VERSION))?;
        let ts = need(HEADER_TIMESTAMP)?;
        let timestamp = (ts.len() <= 12 && ts.bytes().all(|b| b.is_ascii_digit()))
            .then(|| ts.parse::<i64>().ok())
            .flatten()
            .ok_or(Rejection::Malformed(HEADER_TIMESTAMP))?;
        let nonce = need(HEADER_NONCE)?;
        if !valid_nonce(nonce) {
            return Err(Rejection::Malformed(HEADER_NONCE));
        }
        let sig = need(HEADER_SIGNATURE)?;
        let signature = (sig.len() <= 100)
            .then(|| STANDARD.decode(sig.trim()).ok())
            .flatten()
            .and_then(|v| <[u8; 64]>::try_from(v.as_slice()).ok())
            .ok_or(Rejection::Malformed(HEADER_SIGNATURE))?;
        Ok(SignedHeaders {
            device_id: device_id.to_string(),
            key_version,
            timestamp,
            nonce: nonce.to_string(),
            signature,
        })
    }
}

/// `dev_` followed by 1 to 64 characters of `a-z 0-9`.
pub fn valid_device_id(s: &str) -> bool {
    s.strip_prefix("dev_").is_some_and(|r| {
        (1..=64).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn valid_nonce(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The bytes a device signs (see the module documentation).
pub fn canonical_message(
    method: &str,
    path_and_query: &str,
    device_id: &str,
    key_version: u32,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let digest = hex(&sha256(body));
    let mut m = String::with_capacity(
        SIGNING_VERSION.len() + path_and_query.len() + device_id.len() + nonce.len() + 120,
    );
    for (i, part) in [
        SIGNING_VERSION,
        &method.to_ascii_uppercase(),
        path_and_query,
        device_id,
        &key_version.to_string(),
        &timestamp.to_string(),
        nonce,
        &digest,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            m.push('\n');
        }
        m.push_str(part);
    }
    m.into_bytes()
}

/// Whether `timestamp` is within `tolerance` seconds of `now` (both Unix seconds).
///
/// # Errors
/// [`Rejection::Stale`] otherwise.
pub fn check_timestamp(timestamp: i64, now: i64, tolerance: i64) -> Result<(), Rejection> {
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(Rejection::Stale);
    }
    Ok(())
}

/// Checks the signature of a request against the device's Ed25519 public key of the
/// version the headers name. Timestamp and replay are checked separately.
///
/// # Errors
/// [`Rejection::BadSignature`] when the key is not a valid point or the signature does not
/// verify (strict RFC 8032 verification).
pub fn verify_signature(
    public_key: &[u8; 32],
    method: &str,
    path_and_query: &str,
    headers: &SignedHeaders,
    body: &[u8],
) -> Result<(), Rejection> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| Rejection::BadSignature)?;
    let msg = canonical_message(
        method,
        path_and_query,
        &headers.device_id,
        headers.key_version,
        headers.timestamp,
        &headers.nonce,
        body,
    );
    key.verify_strict(
        &msg,
        &ed25519_dalek::Signature::from_bytes(&headers.signature),
    )
    .map_err(|_| Rejection::BadSignature)
}

/// What is signed of a request besides the headers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path and query exactly as sent.
    pub path_and_query: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

/// A device's Ed25519 request-signing key. `Debug` hides the secret.
#[derive(Clone)]
pub struct DeviceKey {
    key: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &hex(&self.public_key()))
            .finish()
    }
}

impl DeviceKey {
    /// A new random key.
    pub fn generate() -> DeviceKey {
        let seed = Zeroizing::new(random_bytes::<32>());
        DeviceKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The key of a 32-byte secret seed.
    ///
    /// # Errors
    /// When `secret` is not 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<DeviceKey, FleetError> {
        let seed = <[u8; 32]>::try_from(secret)
            .map_err(|_| FleetError::InvalidKey("an Ed25519 secret key is 32 bytes"))?;
        Ok(DeviceKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The 32-byte secret seed, for the device's key file.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs arbitrary bytes (proofs of possession).
    pub fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Signs a request: the headers to send with it. `nonce` is random when `None`.
    pub fn sign_request(
        &self,
        device_id: &str,
        key_version: u32,
        request: &Request<'_>,
        timestamp: i64,
        nonce: Option<&str>,
    ) -> SignedHeaders {
        let Request {
            method,
            path_and_query,
            body,
        } = *request;
        let nonce = nonce.map_or_else(|| hex(&random_bytes::<16>()), str::to_string);
        let msg = canonical_message(
            method,
            path_and_query,
            device_id,
            key_version,
            timestamp,
            &nonce,
            body,
        );
        SignedHeaders {
            device_id: device_id.to_string(),
            key_version,
            timestamp,
            nonce,
            signature: self.sign_bytes(&msg),
        }
    }
}

/// Whether 32 bytes are a valid Ed25519 public key (a point on the curve).
pub fn valid_public_key(key: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(key).is_ok()
}

/// Checks a detached Ed25519 signature (proofs of possession).
pub fn verify_bytes(public_key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    VerifyingKey::from_bytes(&pk).is_ok_and(|k| {
        k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_and_every_change_fails() {
        let key = DeviceKey::generate();
        let body = br#"{"status":"online"}"#;
        let path = "/api/v1/devices/dev_abc/heartbeat";
        let h = key.sign_request(
            "dev_abc",
            1,
            &Request {
                method: "POST",
                path_and_query: path,
                body,
            },
            1_000,
            None,
        );
        let pk = key.public_key();
        assert_eq!(verify_signature(&pk, "POST", path, &h, body), Ok(()));
        // a bit flipped in the body
        let mut flipped = body.to_vec();
        flipped[3] ^= 1;
        assert_eq!(
            verify_signature(&pk, "POST", path, &h, &flipped),
            Err(Rejection::BadSignature)
        );
        // another method, path, version, timestamp or key
        assert!(verify_signature(&pk, "PUT", path, &h, body).is_err());
        assert!(verify_signature(&pk, "POST", "/api/v1/devices/dev_abc", &h, body).is_err());
        let mut h2 = h.clone();
        h2.key_version = 2;
        assert!(verify_signature(&pk, "POST", path, &h2, body).is_err());
        let mut h3 = h.clone();
        h3.timestamp += 1;
        assert!(verify_signature(&pk, "POST", path, &h3, body).is_err());
        let other = DeviceKey::generate().public_key();
        assert!(verify_signature(&other, "POST", path, &h, body).is_err());
    }

    fn parse_pairs(pairs: &[(&'static str, String)]) -> Result<SignedHeaders, Rejection> {
        SignedHeaders::parse(|n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
    }

    #[test]
    fn headers_round_trip_and_bad_ones_are_named() {
        let key = DeviceKey::generate();
        let h = key.sign_request(
            "dev_abc",
            3,
            &Request {
                method: "get",
                path_and_query: "/x?y=1",
                body: b"",
            },
            1_700_000_000,
            None,
        );
        let pairs = h.to_pairs().to_vec();
        assert_eq!(parse_pairs(&pairs), Ok(h.clone()));
        let without: Vec<_> = pairs
            .iter()
            .filter(|(k, _)| *k != HEADER_NONCE)
            .cloned()
            .collect();
        assert_eq!(
            parse_pairs(&without),
            Err(Rejection::MissingHeader(HEADER_NONCE))
        );
        for (name, value) in [
            (HEADER_DEVICE_ID, "device1"),
            (HEADER_TIMESTAMP, "-5"),
            (HEADER_NONCE, "short"),
            (HEADER_SIGNATURE, "AAAA"),
            (HEADER_KEY_VERSION, "0"),
        ] {
            let changed: Vec<_> = pairs
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == name {
                            value.to_string()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect();
            assert_eq!(
                parse_pairs(&changed),
                Err(Rejection::Malformed(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn timestamps_within_300_seconds() {
        assert!(check_timestamp(1000, 1300, 300).is_ok());
        assert!(check_timestamp(1300, 1000, 300).is_ok());
        assert_eq!(check_timestamp(999, 1300, 300), Err(Rejection::Stale));
        assert_eq!(check_timestamp(1301, 1000, 300), Err(Rejection::Stale));
    }

    #[test]
    fn the_canonical_message_is_as_documented() {
        let m = canonical_message("post", "/p?q=1", "dev_a", 2, 17, "n0n0n0n0n0n0n0n0", b"");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "qrlp-device-request-v1\nPOST\n/p?q=1\ndev_a\n2\n17\nn0n0n0n0n0n0n0n0\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
