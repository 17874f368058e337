//! # qrlp-fleet: the device fleet core
//!
//! Everything about devices that is not I/O: how a device signs its requests and how the
//! server checks them ([`signing`], [`replay`]), enrollment tokens and device ids
//! ([`enroll`]), key versions and rotation ([`rotation`]), the organization's device CA and
//! the certificates it issues ([`ca`], X.509 through `rcgen`), the post-quantum keys
//! ([`pq`]: ML-KEM-768, the algorithm formerly called CRYSTALS-Kyber, and FN-DSA-512), and
//! sealing secrets at rest ([`seal`], ChaCha20-Poly1305), and federated-learning updates
//! encrypted in transit to the server with a hybrid ML-KEM-768 + X25519 key ([`transport`]).
//!
//! Invariants: no networking, no files, no clock (callers pass `now`); randomness comes
//! from the operating system. No home-made cryptography: ed25519-dalek, ml-kem, fn-dsa,
//! rcgen and RustCrypto do the work; this crate fixes formats, labels and rules around
//! them. The request signing format is specified in `docs/fleet.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod enroll;
pub mod pq;
pub mod replay;
pub mod rotation;
pub mod signing;
pub mod transport;

/// What can go wrong in the fleet core.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A key has the wrong length or does not decode.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A ciphertext or sealed blob has the wrong length or does not open.
    #[error("cannot open: {0}")]
    Open(&'static str),
    /// The certificate could not be built.
    #[error("certificate: {0}")]
    Certificate(String),
}

/// `n` bytes from the operating system's random source.
///
/// # Panics
/// When the operating system cannot provide randomness: no key can be made safely then.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}
