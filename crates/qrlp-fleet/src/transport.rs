//! Federated-learning updates protected in transit: a device encrypts its update to the
//! server with a hybrid key, post-quantum and classical, so that breaking either ML-KEM-768
//! or X25519 alone does not reveal it.
//!
//! Construction (one envelope per submission; `docs/federated.md` has the rationale):
//!
//! 1. `(ct, k₁) = ML-KEM-768.Encaps(ek)`, where `ek` is the server's encapsulation key for
//!    this device (given at registration, `quantum_keys.encryption_key`).
//! 2. A fresh X25519 key pair `(e, E)` on the device; `k₂ = X25519(e, R)`, where `R` is the
//!    round's X25519 public key (given in the join answer). An all-zero `k₂` (a low-order
//!    `R`) is refused.
//! 3. `key = HKDF-SHA256(salt = "qrlp-fl-transport-v1", ikm = k₁ ‖ k₂,
//!    info = SHA-256(binding ‖ ct ‖ E ‖ R))`.
//! 4. ChaCha20-Poly1305 under `key` with a random 96-bit nonce, the associated data being
//!    the binding: `"qrlp-fl-update-v1\n" round_id "\n" device_id "\n" model_version`.
//!
//! Envelope: `"QFL1" ‖ ct (1,088) ‖ E (32) ‖ nonce (12) ‖ ciphertext and tag`.
//!
//! Every key is fresh per submission, so a captured envelope only opens with the server's
//! two secrets (the device's ML-KEM decapsulation key and the round's X25519 secret), and
//! it only opens for the round, device and model version it was made for: replayed into
//! another round it fails twice (another X25519 key, another binding). Replays within the
//! round are the server's business (one submission per device and round).

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::pq::{self, KemKeyPair, ML_KEM_768_CIPHERTEXT_LEN};
use crate::{random_bytes, FleetError};

/// First bytes of an envelope (format version 1).
pub const MAGIC: &[u8; 4] = b"QFL1";
/// Bytes an envelope adds to the plaintext.
pub const OVERHEAD: usize = 4 + ML_KEM_768_CIPHERTEXT_LEN + 32 + 12 + 16;
const SALT: &[u8] = b"qrlp-fl-transport-v1";

/// What a submission is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// `round_…`.
    pub round_id: &'a str,
    /// `dev_…`.
    pub device_id: &'a str,
    /// The global model version the update starts from.
    pub model_version: u32,
}

impl Binding<'_> {
    /// The associated data.
    pub fn aad(&self) -> Vec<u8> {
        format!(
            "qrlp-fl-update-v1\n{}\n{}\n{}",
            self.round_id, self.device_id, self.model_version
        )
        .into_bytes()
    }
}

/// A round's X25519 key pair (the server's half of the classical exchange). `Debug` hides
/// the secret.
pub struct RoundKey {
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RoundKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoundKey(<redacted>)")
    }
}

impl RoundKey {
    /// A new random key.
    pub fn generate() -> RoundKey {
        RoundKey {
            secret: Zeroizing::new(random_bytes::<32>()),
        }
    }

    /// The key of a stored secret.
    ///
    /// # Errors
    /// When `secret` is not 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<RoundKey, FleetError> {
        let s = <[u8; 32]>::try_from(secret)
            .map_err(|_| FleetError::InvalidKey("an X25519 secret is 32 bytes"))?;
        Ok(RoundKey {
            secret: Zeroizing::new(s),
        })
    }

    /// The secret, to be stored sealed.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key `R`.
    pub fn public_key(&self) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(*self.secret).to_bytes()
    }
}

fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, FleetError> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes());
    if shared.iter().all(|&b| b == 0) {
        return Err(FleetError::InvalidKey("X25519 public key of low order"));
    }
    Ok(shared)
}

fn derive_key(
    kem_secret: &[u8; 32],
    x_secret: &[u8; 32],
    binding: &Binding<'_>,
    ct: &[u8],
    ephemeral: &[u8; 32],
    round_public: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(kem_secret);
    ikm[32..].copy_from_slice(x_secret);
    let mut h = Sha256::new();
    let aad = binding.aad();
    h.update((aad.len() as u64).to_be_bytes());
    h.update(&aad);
    h.update(ct);
    h.update(ephemeral);
    h.update(round_public);
    let info: [u8; 32] = h.finalize().into();
    let mut okm = Zeroizing::new([0u8; 32]);
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::new(Some(SALT), &ikm[..])
        .expand(&info, &mut okm[..])
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// On the device: encrypts `plaintext` (the serialised update) to the server.
///
/// # Errors
/// When `server_kem_public` is not an ML-KEM-768 key or `round_public` is of low order.
pub fn seal_update(
    server_kem_public: &[u8],
    round_public: &[u8; 32],
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, FleetError> {
    let (ct, k1) = pq::encapsulate(server_kem_public)?;
    let e = Zeroizing::new(random_bytes::<32>());
    let ephemeral = MontgomeryPoint::mul_base_clamped(*e).to_bytes();
    let k2 = x25519(&e, round_public)?;
    let key = derive_key(&k1, &k2, binding, &ct, &ephemeral, round_public);
    let nonce = random_bytes::<12>();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
    let aad = binding.aad();
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| FleetError::Open("encryption failed"))?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&ephemeral);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// On the server: opens an envelope made for `binding` with the device's ML-KEM key pair
/// and the round's X25519 key.
///
/// # Errors
/// `FleetError::Open` when the envelope is malformed, or was made for another key, round,
/// device or model version, or was altered.
pub fn open_update(
    kem: &KemKeyPair,
    round: &RoundKey,
    binding: &Binding<'_>,
    envelope: &[u8],
) -> Result<Vec<u8>, FleetError> {
    open_update_in_place(kem, round, binding, envelope.to_vec())
}

/// [`open_update`] that decrypts inside the envelope's own buffer and returns it shortened
/// to the plaintext: a large update costs one buffer on the server, not two.
///
/// # Errors
/// As [`open_update`].
pub fn open_update_in_place(
    kem: &KemKeyPair,
    round: &RoundKey,
    binding: &Binding<'_>,
    mut envelope: Vec<u8>,
) -> Result<Vec<u8>, FleetError> {
    const MALFORMED: FleetError = FleetError::Open("not a QFL1 envelope");
    let head = OVERHEAD - 16;
    if envelope.len() < OVERHEAD || &envelope[..4] != MAGIC {
        return Err(MALFORMED);
    }
    let (ct, rest) = envelope[4..head].split_at(ML_KEM_768_CIPHERTEXT_LEN);
    let (ephemeral, nonce) = rest.split_at(32);
    let ephemeral: [u8; 32] = ephemeral.try_into().map_err(|_| MALFORMED)?;
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| MALFORMED)?;
    let k1 = kem.decapsulate(ct)?;
    let k2 = x25519(&round.secret, &ephemeral)?;
    let round_public = round.public_key();
    let key = derive_key(&k1, &k2, binding, ct, &ephemeral, &round_public);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
    let tag_at = envelope.len() - 16;
    let tag = *Tag::from_slice(&envelope[tag_at..]);
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &binding.aad(),
            &mut envelope[head..tag_at],
            &tag,
        )
        .map_err(|_| FleetError::Open("the update does not open for this round and device"))?;
    envelope.truncate(tag_at);
    envelope.drain(..head);
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(round: &'a str, device: &'a str, version: u32) -> Binding<'a> {
        Binding {
            round_id: round,
            device_id: device,
            model_version: version,
        }
    }

    fn update_bytes() -> Vec<u8> {
        (0..64u32)
            .flat_map(|i| (i as f32 * 0.37 + 1.5).to_le_bytes())
            .collect()
    }

    #[test]
    fn round_trip_and_nothing_in_clear() {
        let kem = KemKeyPair::generate();
        let round = RoundKey::generate();
        let b = binding("round_a", "dev_1", 3);
        let plain = update_bytes();
        let env = seal_update(&kem.public_key(), &round.public_key(), &b, &plain).unwrap();
        assert_eq!(env.len(), OVERHEAD + plain.len());
        // No 8-byte window of the update appears in the envelope.
        for w in plain.windows(8) {
            assert!(!env.windows(8).any(|x| x == w));
        }
        assert_eq!(open_update(&kem, &round, &b, &env).unwrap(), plain);
    }

    #[test]
    fn bound_to_round_device_version_and_keys() {
        let kem = KemKeyPair::generate();
        let round = RoundKey::generate();
        let b = binding("round_a", "dev_1", 3);
        let env = seal_update(&kem.public_key(), &round.public_key(), &b, b"update").unwrap();
        for other in [
            binding("round_b", "dev_1", 3),
            binding("round_a", "dev_2", 3),
            binding("round_a", "dev_1", 4),
        ] {
            assert!(
                open_update(&kem, &round, &other, &env).is_err(),
                "{other:?}"
            );
        }
        // The next round has its own X25519 key: the same envelope does not open there.
        assert!(open_update(&kem, &RoundKey::generate(), &b, &env).is_err());
        // Nor with another device's ML-KEM key.
        assert!(open_update(&KemKeyPair::generate(), &round, &b, &env).is_err());
        // Any altered byte is refused.
        for i in [0, 10, 1100, 1125, env.len() - 1] {
            let mut bad = env.clone();
            bad[i] ^= 1;
            assert!(open_update(&kem, &round, &b, &bad).is_err(), "byte {i}");
        }
        assert!(open_update(&kem, &round, &b, &env[..OVERHEAD - 1]).is_err());
    }

    #[test]
    fn low_order_round_keys_are_refused() {
        let kem = KemKeyPair::generate();
        let b = binding("round_a", "dev_1", 0);
        assert!(seal_update(&kem.public_key(), &[0u8; 32], &b, b"x").is_err());
    }

    #[test]
    fn x25519_matches_rfc7748() {
        // RFC 7748 section 6.1.
        let hex = |s: &str| -> [u8; 32] {
            let v: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            v.try_into().unwrap()
        };
        let a = RoundKey::from_secret(&hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ))
        .unwrap();
        assert_eq!(
            a.public_key(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        assert_eq!(
            *x25519(a.secret(), &b_pub).unwrap(),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }
}
