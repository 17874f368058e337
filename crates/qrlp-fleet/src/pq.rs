//! Post-quantum keys: ML-KEM-768 (FIPS 203; formerly CRYSTALS-Kyber) through RustCrypto's
//! `ml-kem`, and FN-DSA-512 (Falcon) through `fn-dsa`.
//!
//! What each protects is in `docs/fleet.md`: the server keeps one ML-KEM-768 key pair per
//! device (the device encapsulates to it to agree a shared secret with the server), each
//! device keeps one of its own (the server encapsulates to it), and the organization has
//! one FN-DSA-512 key with which the server signs what devices must trust (key-rotation
//! orders and confirmations).

use fn_dsa::{
    sign_key_size, signature_size, vrfy_key_size, KeyPairGenerator as _, KeyPairGenerator512,
    SigningKey as _, SigningKey512, VerifyingKey as _, VerifyingKey512, DOMAIN_NONE,
    FN_DSA_LOGN_512, HASH_ID_RAW,
};
use hmac::{Hmac, Mac};
use ml_kem::kem::{Decapsulate as _, Encapsulate as _};
use ml_kem::{Ciphertext, DecapsulationKey, EncapsulationKey, KeyExport as _, MlKem768, Seed};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{random_bytes, FleetError};

/// Length of an ML-KEM-768 encapsulation (public) key.
pub const ML_KEM_768_PUBLIC_KEY_LEN: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
pub const ML_KEM_768_CIPHERTEXT_LEN: usize = 1088;
/// Length of an ML-KEM decapsulation key seed (the private key as stored).
pub const ML_KEM_SEED_LEN: usize = 64;
/// Length of an FN-DSA-512 public key.
pub const FN_DSA_512_PUBLIC_KEY_LEN: usize = vrfy_key_size(FN_DSA_LOGN_512);
/// Length of an FN-DSA-512 signature.
pub const FN_DSA_512_SIGNATURE_LEN: usize = signature_size(FN_DSA_LOGN_512);
const FN_DSA_512_SECRET_KEY_LEN: usize = sign_key_size(FN_DSA_LOGN_512);
/// HMAC label of the key confirmation.
pub const KEM_CONFIRM_LABEL: &str = "qrlp-kem-confirm-v1";

/// An ML-KEM-768 key pair, kept as its 64-byte seed. `Debug` hides the seed.
pub struct KemKeyPair {
    seed: Zeroizing<[u8; ML_KEM_SEED_LEN]>,
    dk: DecapsulationKey<MlKem768>,
}

impl std::fmt::Debug for KemKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KemKeyPair(<redacted>)")
    }
}

impl KemKeyPair {
    /// A new random key pair.
    pub fn generate() -> KemKeyPair {
        let seed = Zeroizing::new(random_bytes::<ML_KEM_SEED_LEN>());
        KemKeyPair::from_seed_array(seed)
    }

    fn from_seed_array(seed: Zeroizing<[u8; ML_KEM_SEED_LEN]>) -> KemKeyPair {
        let dk = DecapsulationKey::<MlKem768>::from_seed(Seed::from(*seed));
        KemKeyPair { seed, dk }
    }

    /// The key pair of a stored seed.
    ///
    /// # Errors
    /// When `seed` is not 64 bytes.
    pub fn from_seed(seed: &[u8]) -> Result<KemKeyPair, FleetError> {
        let s = <[u8; ML_KEM_SEED_LEN]>::try_from(seed)
            .map_err(|_| FleetError::InvalidKey("an ML-KEM seed is 64 bytes"))?;
        Ok(KemKeyPair::from_seed_array(Zeroizing::new(s)))
    }

    /// The seed, to be stored (sealed) by its holder.
    pub fn seed(&self) -> &[u8; ML_KEM_SEED_LEN] {
        &self.seed
    }

    /// The encapsulation key, 1,184 bytes.
    pub fn public_key(&self) -> Vec<u8> {
        self.dk.encapsulation_key().to_bytes().to_vec()
    }

    /// The shared secret of a ciphertext made for this key. ML-KEM rejects implicitly: a
    /// changed ciphertext yields an unrelated secret, not an error.
    ///
    /// # Errors
    /// When `ciphertext` is not 1,088 bytes.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>, FleetError> {
        let ct = Ciphertext::<MlKem768>::try_from(ciphertext)
            .map_err(|_| FleetError::Open("an ML-KEM-768 ciphertext is 1088 bytes"))?;
        let k = self.dk.decapsulate(&ct);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(k.as_slice());
        Ok(out)
    }
}

/// Checks that `public` is an ML-KEM-768 encapsulation key (length and the FIPS 203
/// modulus check).
///
/// # Errors
/// When it is not.
pub fn check_kem_public_key(public: &[u8]) -> Result<(), FleetError> {
    parse_kem_public(public).map(drop)
}

fn parse_kem_public(public: &[u8]) -> Result<EncapsulationKey<MlKem768>, FleetError> {
    let bad = || FleetError::InvalidKey("not an ML-KEM-768 encapsulation key");
    let arr = ml_kem::Key::<EncapsulationKey<MlKem768>>::try_from(public).map_err(|_| bad())?;
    EncapsulationKey::<MlKem768>::new(&arr).map_err(|_| bad())
}

/// Encapsulates to `public`: the ciphertext to send and the shared secret.
///
/// # Errors
/// When `public` is not an ML-KEM-768 encapsulation key.
pub fn encapsulate(public: &[u8]) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), FleetError> {
    let ek = parse_kem_public(public)?;
    let (ct, k) = ek.encapsulate();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(k.as_slice());
    Ok((ct.to_vec(), out))
}

/// The key confirmation both sides compute from the shared secret: HMAC-SHA256 keyed by it
/// over `qrlp-kem-confirm-v1\n<device id>\n<ciphertext SHA-256 hex>`. Showing it proves the
/// secret is shared without revealing it.
pub fn key_confirmation(shared: &[u8; 32], device_id: &str, ciphertext: &[u8]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(shared).expect("HMAC takes any key length");
    mac.update(
        format!(
            "{KEM_CONFIRM_LABEL}\n{device_id}\n{}",
            crate::hex(&crate::sha256(ciphertext))
        )
        .as_bytes(),
    );
    mac.finalize().into_bytes().into()
}

/// What the organization's FN-DSA-512 key signs after a key exchange:
/// `qrlp-kem-confirm-sig-v1\n<device id>\n<confirmation, lower-case hex>`.
pub fn confirmation_signed_message(device_id: &str, confirmation: &[u8; 32]) -> Vec<u8> {
    format!(
        "qrlp-kem-confirm-sig-v1\n{device_id}\n{}",
        crate::hex(confirmation)
    )
    .into_bytes()
}

/// An FN-DSA-512 signing key. `Debug` hides it.
pub struct PqSigner {
    secret: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl std::fmt::Debug for PqSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PqSigner(<redacted>)")
    }
}

impl PqSigner {
    /// A new random key.
    pub fn generate() -> PqSigner {
        let mut kg = Box::<KeyPairGenerator512>::default();
        let mut secret = Zeroizing::new(vec![0u8; FN_DSA_512_SECRET_KEY_LEN]);
        let mut public = vec![0u8; FN_DSA_512_PUBLIC_KEY_LEN];
        kg.keygen(
            FN_DSA_LOGN_512,
            &mut rand_core::OsRng,
            &mut secret,
            &mut public,
        );
        PqSigner { secret, public }
    }

    /// The key of a stored secret.
    ///
    /// # Errors
    /// When the secret does not decode.
    pub fn from_secret(secret: &[u8]) -> Result<PqSigner, FleetError> {
        let sk = SigningKey512::decode(secret)
            .ok_or(FleetError::InvalidKey("not an FN-DSA-512 signing key"))?;
        let mut public = vec![0u8; FN_DSA_512_PUBLIC_KEY_LEN];
        sk.to_verifying_key(&mut public);
        Ok(PqSigner {
            secret: Zeroizing::new(secret.to_vec()),
            public,
        })
    }

    /// The secret, to be sealed at rest.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The public key, 897 bytes.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Signs `msg` (raw message, empty context).
    ///
    /// # Errors
    /// When the stored secret no longer decodes.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, FleetError> {
        let mut sk = SigningKey512::decode(&self.secret)
            .ok_or(FleetError::InvalidKey("not an FN-DSA-512 signing key"))?;
        let mut sig = vec![0u8; FN_DSA_512_SIGNATURE_LEN];
        sk.sign(
            &mut rand_core::OsRng,
            &DOMAIN_NONE,
            &HASH_ID_RAW,
            msg,
            &mut sig,
        );
        Ok(sig)
    }
}

/// Whether `sig` is an FN-DSA-512 signature of `msg` by `public`.
pub fn pq_verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    VerifyingKey512::decode(public).is_some_and(|k| k.verify(sig, &DOMAIN_NONE, &HASH_ID_RAW, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_kem_round_trip() {
        let server = KemKeyPair::generate();
        let ek = server.public_key();
        assert_eq!(ek.len(), ML_KEM_768_PUBLIC_KEY_LEN);
        check_kem_public_key(&ek).unwrap();
        let (ct, k_device) = encapsulate(&ek).unwrap();
        assert_eq!(ct.len(), ML_KEM_768_CIPHERTEXT_LEN);
        let again = KemKeyPair::from_seed(server.seed()).unwrap();
        let k_server = again.decapsulate(&ct).unwrap();
        assert_eq!(*k_device, *k_server);
        assert_eq!(
            key_confirmation(&k_device, "dev_a", &ct),
            key_confirmation(&k_server, "dev_a", &ct)
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_ne!(*again.decapsulate(&bad).unwrap(), *k_device);
        assert!(again.decapsulate(&ct[1..]).is_err());
        assert!(check_kem_public_key(&ek[1..]).is_err());
        assert!(check_kem_public_key(&[0xff; ML_KEM_768_PUBLIC_KEY_LEN]).is_err());
    }

    #[test]
    fn fn_dsa_sign_verify() {
        let s = PqSigner::generate();
        let sig = s.sign(b"hello").unwrap();
        assert!(pq_verify(s.public_key(), b"hello", &sig));
        assert!(!pq_verify(s.public_key(), b"hellp", &sig));
        let again = PqSigner::from_secret(s.secret()).unwrap();
        assert_eq!(again.public_key(), s.public_key());
    }
}
