//! # qrlp-live: the QR Live Protocol core
//!
//! A live frame is a short text, shown as a QR code that changes every few seconds, that
//! proves who issued it and when. This crate makes and checks such frames. It is pure: no
//! networking, no async, no clock (time is passed in), and randomness comes from the
//! caller's RNG. Its one adapter, [`KeyStore`], reads and writes the identity file.
//!
//! Two formats (specified byte by byte in `docs/qrlp-frames.md`):
//! - **compact** (default): `QL2:` + base45 of deterministic CBOR, in the QR alphanumeric
//!   set. An Ed25519 frame with one anchor fits QR version 8 at ECC M. Every byte is
//!   covered by the signature (the HMAC element too).
//! - **JSON**: the seed's `QRData` ([`QrData`]), for clients written against the seed.
//!
//! Layers: a signature (Ed25519, FN-DSA-512 or both, publicly verifiable with a published
//! [`KeySet`]), an HMAC-SHA256 tag (a shared secret), ChaCha20-Poly1305 encryption of user
//! data, a timestamp with a ttl, an identity hash, chain anchors and a time-evidence
//! summary. [`Verifier::verify`] checks them in a fixed order and returns the seed's result
//! keys plus a verdict and a reason code ([`VerificationReport`]).
//!
//! What the evidence means: time-server (SNTP) evidence is advisory — it is the issuer's
//! own report. A block-hash anchor proves the frame was made *after* that block existed;
//! nothing in a frame proves it was made *before* any later block. Freshness comes from the
//! signed timestamp and ttl, trusted as far as the issuer's key is.
//!
//! ```
//! use std::sync::Arc;
//! use qrlp_live::*;
//!
//! // Issuer: the seed's `generate_single_qr(user_data, sign_data=True, encrypt_data=False)`.
//! let identity = Arc::new(SigningIdentity::from_ed25519_seed([9; 32]));
//! let generator = Generator::new(identity.clone());
//! let mut user = UserData::new();
//! user.insert("user_text".into(), "Welcome to my livestream!".into());
//! let content = FrameContent {
//!     sequence: 123,
//!     timestamp_ms: 1_736_609_445_123,
//!     ttl_ms: 10_000,
//!     user_data: Some(user),
//!     ..FrameContent::default()
//! };
//! let qr_data = generator.json_os(&content, Seal::default())?;
//! let qr_json = qr_data.to_json();
//!
//! // Verifier: the seed's `verify_qr_data(qr_json)`.
//! let verifier = Verifier::new(KeySet::from_identity(&identity, 0, None), VerifierOptions::default());
//! let results = verifier.verify(&qr_json, 1_736_609_446_000);
//! assert!(results.valid_json && results.signature_verified && results.time_verified);
//! assert_eq!(results.reason.code, ReasonCode::Ok);
//! # Ok::<(), FrameError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base45;
mod cbor;
mod compact;
mod content;
mod crypto;
mod error;
pub mod fuzz;
mod generate;
mod jcs;
mod json;
mod keyset;
mod keystore;
mod text;
mod verify;

pub use compact::{
    CompactFrame, CompactPayload, SealedData, COMPACT_HMAC_LEN, COMPACT_IDENTITY_LEN,
    COMPACT_PREFIX, COMPACT_VERSION, REGISTERED_CHAINS,
};
pub use content::{
    anchor_tag, FrameContent, TimeEvidence, UserData, MAX_FRAME_TEXT, MAX_TTL_MS, MAX_USER_DATA,
};
pub use crypto::{
    identity_hash, DataKey, HmacKey, KeyId, PublicKey, SigningIdentity, Suite,
    ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, FN_DSA_512_PUBLIC_KEY_LEN,
    FN_DSA_512_SIGNATURE_LEN, HKDF_INFO_DATA, HKDF_INFO_HMAC, IDENTITY_HASH_LEN,
};
pub use error::FrameError;
pub use generate::{Generator, Seal};
pub use json::{QrData, ENCRYPTED_USER_DATA, JSON_HMAC_ALGORITHM};
pub use keyset::{KeyEntry, KeySet};
pub use keystore::{load_or_generate_secret, load_secret, KeyGeneration, KeyStore, KeyStoreError};
pub use rand_core;
pub use text::{format_timestamp, parse_timestamp, MAX_TIMESTAMP_MS};
pub use verify::{
    AnchorStatus, AnchorView, Reason, ReasonCode, Verdict, VerificationReport, Verifier,
    VerifierOptions,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
