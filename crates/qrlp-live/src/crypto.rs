//! Keys and primitives: Ed25519 (ed25519-dalek), FN-DSA-512 (fn-dsa), their hybrid,
//! HMAC-SHA256 and ChaCha20-Poly1305 with HKDF-SHA256 key derivation. Nothing here is
//! home-made: this module only fixes key ids, labels and encodings around the libraries.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::Signer as _;
use fn_dsa::{
    sign_key_size, signature_size, vrfy_key_size, KeyPairGenerator as _, KeyPairGenerator512,
    SigningKey as _, SigningKey512, VerifyingKey as _, VerifyingKey512, DOMAIN_NONE,
    FN_DSA_LOGN_512, HASH_ID_RAW,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::text::hex;
use crate::FrameError;

/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an FN-DSA-512 signature (fixed-size, padded encoding).
pub const FN_DSA_512_SIGNATURE_LEN: usize = signature_size(FN_DSA_LOGN_512);
/// Length of an FN-DSA-512 public (verifying) key.
pub const FN_DSA_512_PUBLIC_KEY_LEN: usize = vrfy_key_size(FN_DSA_LOGN_512);
/// Length of an FN-DSA-512 signing key.
pub(crate) const FN_DSA_512_SECRET_KEY_LEN: usize = sign_key_size(FN_DSA_LOGN_512);

/// HKDF-SHA256 `info` for the HMAC key (salt empty).
pub const HKDF_INFO_HMAC: &[u8] = b"QRLP/1 hmac-sha256 key";
/// HKDF-SHA256 `info` for the user-data encryption key (salt empty).
pub const HKDF_INFO_DATA: &[u8] = b"QRLP/1 chacha20poly1305 user-data key";

/// A signature suite: which signatures a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    /// One Ed25519 signature (RFC 8032, verified strictly). Id 1, name `ed25519`.
    Ed25519,
    /// One FN-DSA-512 signature (fn-dsa 0.4, raw message, empty context). Id 2, name
    /// `fn-dsa-512`.
    FnDsa512,
    /// Both, over the same message; valid only if both verify. Id 3, name
    /// `ed25519+fn-dsa-512`.
    Hybrid,
}

impl Suite {
    /// All suites, by id.
    pub const ALL: [Suite; 3] = [Suite::Ed25519, Suite::FnDsa512, Suite::Hybrid];

    /// The number carried in compact frames and signed with the message.
    pub const fn id(self) -> u8 {
        match self {
            Suite::Ed25519 => 1,
            Suite::FnDsa512 => 2,
            Suite::Hybrid => 3,
        }
    }

    /// The suite with this id.
    pub fn from_id(id: u64) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| u64::from(s.id()) == id)
    }

    /// The name used in JSON frames (`signature_algorithm`) and key sets (`alg`).
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::FnDsa512 => "fn-dsa-512",
            Suite::Hybrid => "ed25519+fn-dsa-512",
        }
    }

    /// The lengths of the signatures this suite carries, in order.
    pub(crate) fn signature_lens(self) -> &'static [usize] {
        match self {
            Suite::Ed25519 => &[ED25519_SIGNATURE_LEN],
            Suite::FnDsa512 => &[FN_DSA_512_SIGNATURE_LEN],
            Suite::Hybrid => &[ED25519_SIGNATURE_LEN, FN_DSA_512_SIGNATURE_LEN],
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<Suite, FrameError> {
        Suite::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| FrameError::Malformed(format!("unknown signature algorithm {s:?}")))
    }
}

/// A key id: the first 8 bytes of SHA-256 of the public key bytes (for the hybrid suite,
/// of the Ed25519 key followed by the FN-DSA key). Lowercase hex in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The key id of public key bytes.
    pub fn of(public_key: &[u8]) -> KeyId {
        let d = Sha256::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl FromStr for KeyId {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<KeyId, FrameError> {
        crate::text::unhex(s)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(KeyId)
            .ok_or_else(|| FrameError::Malformed("a key id is 16 hex digits".into()))
    }
}

/// A public key of one suite, as published in a key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    suite: Suite,
    bytes: Vec<u8>,
}

impl PublicKey {
    /// Checks and wraps public key bytes: 32 bytes (Ed25519), 897 (FN-DSA-512) or both
    /// concatenated (hybrid).
    pub fn new(suite: Suite, bytes: Vec<u8>) -> Result<PublicKey, FrameError> {
        ParsedKey::parse(suite, &bytes)?;
        Ok(PublicKey { suite, bytes })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.bytes)
    }

    /// The identity hash of frames signed with this key: SHA-256 of the public key bytes
    /// (the key id is its first 8 bytes). See [`identity_hash`].
    pub fn identity_hash(&self) -> [u8; IDENTITY_HASH_LEN] {
        identity_hash(&self.bytes)
    }
}

/// Bytes of an identity hash.
pub const IDENTITY_HASH_LEN: usize = 32;

/// The identity hash, the one definition: SHA-256 of the public key bytes of the suite that
/// signs the frame, as published in the key set (Ed25519: the 32-byte key; FN-DSA-512: the
/// 897-byte key; hybrid: both concatenated). A verifier holding the key set recomputes it
/// from the key that verified the signature, so it needs no other registry.
///
/// ```
/// use qrlp_live::{identity_hash, SigningIdentity, Suite};
/// let id = SigningIdentity::from_ed25519_seed([7; 32]);
/// let key = id.public_key(Suite::Ed25519).unwrap();
/// assert_eq!(identity_hash(key.as_bytes())[..8], key.key_id().0);
/// ```
pub fn identity_hash(public_key: &[u8]) -> [u8; IDENTITY_HASH_LEN] {
    Sha256::digest(public_key).into()
}

/// A decoded verifying key, ready to check signatures.
#[derive(Clone)]
pub(crate) enum ParsedKey {
    Ed(ed25519_dalek::VerifyingKey),
    Pq(Box<VerifyingKey512>),
    Hybrid(ed25519_dalek::VerifyingKey, Box<VerifyingKey512>),
}

impl ParsedKey {
    pub(crate) fn parse(suite: Suite, b: &[u8]) -> Result<ParsedKey, FrameError> {
        let bad = || FrameError::InvalidKey(format!("not a valid {suite} public key"));
        let ed = |b: &[u8]| -> Result<ed25519_dalek::VerifyingKey, FrameError> {
            let arr: [u8; 32] = b.try_into().map_err(|_| bad())?;
            ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|_| bad())
        };
        let pq = |b: &[u8]| -> Result<Box<VerifyingKey512>, FrameError> {
            if b.len() != FN_DSA_512_PUBLIC_KEY_LEN {
                return Err(bad());
            }
            VerifyingKey512::decode(b).map(Box::new).ok_or_else(bad)
        };
        Ok(match suite {
            Suite::Ed25519 => ParsedKey::Ed(ed(b)?),
            Suite::FnDsa512 => ParsedKey::Pq(pq(b)?),
            Suite::Hybrid => {
                if b.len() != ED25519_PUBLIC_KEY_LEN + FN_DSA_512_PUBLIC_KEY_LEN {
                    return Err(bad());
                }
                let (e, p) = b.split_at(ED25519_PUBLIC_KEY_LEN);
                ParsedKey::Hybrid(ed(e)?, pq(p)?)
            }
        })
    }

    /// Whether `sigs` (one per signature of the suite, in order) verify over `msg`.
    pub(crate) fn verify(&self, msg: &[u8], sigs: &[&[u8]]) -> bool {
        let ed_ok = |k: &ed25519_dalek::VerifyingKey, s: &[u8]| {
            <[u8; 64]>::try_from(s).is_ok_and(|a| {
                k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&a))
                    .is_ok()
            })
        };
        let pq_ok = |k: &VerifyingKey512, s: &[u8]| {
            s.len() == FN_DSA_512_SIGNATURE_LEN && k.verify(s, &DOMAIN_NONE, &HASH_ID_RAW, msg)
        };
        match (self, sigs) {
            (ParsedKey::Ed(k), [s]) => ed_ok(k, s),
            (ParsedKey::Pq(k), [s]) => pq_ok(k, s),
            // Both are always checked, so timing does not tell which one failed.
            (ParsedKey::Hybrid(e, p), [a, b]) => ed_ok(e, a) & pq_ok(p, b),
            _ => false,
        }
    }
}

/// The FN-DSA half of an identity.
struct PqKey {
    secret: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
    // Signing needs `&mut` (scratch space inside the key); one signer at a time.
    signer: Mutex<Box<SigningKey512>>,
}

/// An issuer's signing keys: always Ed25519, optionally FN-DSA-512 (which enables the
/// `fn-dsa-512` and hybrid suites).
///
/// ```
/// use qrlp_live::{SigningIdentity, Suite};
/// let id = SigningIdentity::from_ed25519_seed([7; 32]);
/// assert!(id.supports(Suite::Ed25519));
/// assert!(!id.supports(Suite::Hybrid));
/// assert_eq!(id.key_id(Suite::Ed25519).unwrap().to_string().len(), 16);
/// ```
pub struct SigningIdentity {
    ed: ed25519_dalek::SigningKey,
    pq: Option<PqKey>,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("ed25519_kid", &self.key_id(Suite::Ed25519))
            .field("fn_dsa_kid", &self.key_id(Suite::FnDsa512))
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// A new identity from `rng`; with `post_quantum`, also an FN-DSA-512 key (a few ms).
    ///
    /// # Errors
    /// [`FrameError::InvalidKey`] only if the FN-DSA library returns a key it cannot decode.
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        post_quantum: bool,
    ) -> Result<SigningIdentity, FrameError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let mut id = SigningIdentity::from_ed25519_seed(*seed);
        if post_quantum {
            id.pq = Some(generate_pq(rng)?);
        }
        Ok(id)
    }

    /// An Ed25519-only identity from its 32-byte secret seed.
    pub fn from_ed25519_seed(seed: [u8; 32]) -> SigningIdentity {
        SigningIdentity {
            ed: ed25519_dalek::SigningKey::from_bytes(&seed),
            pq: None,
        }
    }

    /// Adds (or replaces) the FN-DSA-512 key from its encoded signing key (1281 bytes).
    pub fn with_fn_dsa_secret(mut self, secret: &[u8]) -> Result<SigningIdentity, FrameError> {
        self.pq = Some(pq_from_secret(secret)?);
        Ok(self)
    }

    /// Adds (or replaces) a freshly generated FN-DSA-512 key.
    pub fn with_generated_fn_dsa<R: RngCore + CryptoRng>(
        mut self,
        rng: &mut R,
    ) -> Result<SigningIdentity, FrameError> {
        self.pq = Some(generate_pq(rng)?);
        Ok(self)
    }

    /// The Ed25519 secret seed (for the key store).
    pub(crate) fn ed25519_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.ed.to_bytes())
    }

    /// The encoded FN-DSA signing key (for the key store).
    pub(crate) fn fn_dsa_secret(&self) -> Option<&[u8]> {
        self.pq.as_ref().map(|p| p.secret.as_slice())
    }

    /// Whether this identity can sign with `suite`.
    pub fn supports(&self, suite: Suite) -> bool {
        suite == Suite::Ed25519 || self.pq.is_some()
    }

    /// The public key for `suite`, if the identity supports it.
    pub fn public_key(&self, suite: Suite) -> Option<PublicKey> {
        let ed = self.ed.verifying_key().to_bytes();
        let bytes = match (suite, &self.pq) {
            (Suite::Ed25519, _) => ed.to_vec(),
            (Suite::FnDsa512, Some(p)) => p.public.clone(),
            (Suite::Hybrid, Some(p)) => [&ed[..], &p.public].concat(),
            _ => return None,
        };
        Some(PublicKey { suite, bytes })
    }

    /// The key id for `suite`, if supported.
    pub fn key_id(&self, suite: Suite) -> Option<KeyId> {
        self.public_key(suite).map(|k| k.key_id())
    }

    /// The identity hash of frames signed with `suite` ([`identity_hash`]), if supported.
    pub fn identity_hash(&self, suite: Suite) -> Option<[u8; IDENTITY_HASH_LEN]> {
        self.public_key(suite).map(|k| k.identity_hash())
    }

    /// Signs `msg` with every key of `suite`; one signature per key, in suite order.
    pub(crate) fn sign<R: RngCore + CryptoRng>(
        &self,
        suite: Suite,
        msg: &[u8],
        rng: &mut R,
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        let ed = || self.ed.sign(msg).to_bytes().to_vec();
        let pq = |rng: &mut R| -> Result<Vec<u8>, FrameError> {
            let p = self
                .pq
                .as_ref()
                .ok_or(FrameError::SuiteUnavailable(suite))?;
            let mut signer = p
                .signer
                .lock()
                .map_err(|_| FrameError::Signing("FN-DSA key lock poisoned".into()))?;
            let mut sig = vec![0u8; FN_DSA_512_SIGNATURE_LEN];
            signer
                .sign(rng, &DOMAIN_NONE, &HASH_ID_RAW, msg, &mut sig)
                .ok_or_else(|| FrameError::Signing("FN-DSA signing failed".into()))?;
            Ok(sig)
        };
        Ok(match suite {
            Suite::Ed25519 => vec![ed()],
            Suite::FnDsa512 => vec![pq(rng)?],
            Suite::Hybrid => vec![ed(), pq(rng)?],
        })
    }
}

fn generate_pq<R: RngCore + CryptoRng>(rng: &mut R) -> Result<PqKey, FrameError> {
    let mut kg = Box::<KeyPairGenerator512>::default();
    let mut secret = Zeroizing::new(vec![0u8; FN_DSA_512_SECRET_KEY_LEN]);
    let mut public = vec![0u8; FN_DSA_512_PUBLIC_KEY_LEN];
    kg.keygen(FN_DSA_LOGN_512, rng, &mut secret, &mut public);
    pq_from_secret(&secret)
}

fn pq_from_secret(secret: &[u8]) -> Result<PqKey, FrameError> {
    let bad = || FrameError::InvalidKey("not a valid FN-DSA-512 signing key".into());
    if secret.len() != FN_DSA_512_SECRET_KEY_LEN {
        return Err(bad());
    }
    let sk = SigningKey512::decode(secret).ok_or_else(bad)?;
    let mut public = vec![0u8; FN_DSA_512_PUBLIC_KEY_LEN];
    sk.to_verifying_key(&mut public);
    Ok(PqKey {
        secret: Zeroizing::new(secret.to_vec()),
        public,
        signer: Mutex::new(Box::new(sk)),
    })
}

/// Checks a configured key name: 1-32 characters of `A-Z a-z 0-9 . _ -`.
fn check_key_name(id: &str) -> Result<(), FrameError> {
    let ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(FrameError::InvalidKey(
            "a key name is 1-32 characters of A-Z a-z 0-9 . _ -".into(),
        ))
    }
}

fn derive(secret: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>, FrameError> {
    if secret.len() < 16 {
        return Err(FrameError::InvalidKey(
            "a shared secret must be at least 16 bytes".into(),
        ));
    }
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, secret)
        .expand(info, okm.as_mut())
        .map_err(|_| FrameError::InvalidKey("HKDF expansion failed".into()))?;
    Ok(okm)
}

/// The HMAC-SHA256 integrity key: HKDF-SHA256(salt = empty, ikm = secret,
/// info = [`HKDF_INFO_HMAC`]), with a name carried in frames (`_hmac_key_id`).
///
/// ```
/// let k = qrlp_live::HmacKey::from_secret("site-1", b"0123456789abcdef0123456789abcdef")?;
/// assert_eq!(k.id(), "site-1");
/// # Ok::<(), qrlp_live::FrameError>(())
/// ```
pub struct HmacKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HmacKey {
    /// Derives the key from a configured secret (at least 16 bytes; 32 random bytes advised).
    pub fn from_secret(id: &str, secret: &[u8]) -> Result<HmacKey, FrameError> {
        check_key_name(id)?;
        Ok(HmacKey {
            id: id.to_owned(),
            key: derive(secret, HKDF_INFO_HMAC)?,
        })
    }

    /// The key's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(label);
        m.update(data);
        m
    }

    /// The full 32-byte tag of `label || data`.
    pub(crate) fn tag(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        self.mac(label, data).finalize().into_bytes().into()
    }

    /// Constant-time check of a tag of 16 to 32 bytes (a prefix of the full tag).
    pub(crate) fn verify(&self, label: &[u8], data: &[u8], tag: &[u8]) -> bool {
        tag.len() >= 16 && self.mac(label, data).verify_truncated_left(tag).is_ok()
    }
}

/// The user-data encryption key: HKDF-SHA256(salt = empty, ikm = secret,
/// info = [`HKDF_INFO_DATA`]) for ChaCha20-Poly1305, with a name carried in frames.
pub struct DataKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// Derives the key from a configured secret (at least 16 bytes; 32 random bytes advised).
    pub fn from_secret(id: &str, secret: &[u8]) -> Result<DataKey, FrameError> {
        check_key_name(id)?;
        Ok(DataKey {
            id: id.to_owned(),
            key: derive(secret, HKDF_INFO_DATA)?,
        })
    }

    /// The key's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()))
    }

    /// Encrypts with a random 96-bit nonce; returns (nonce, ciphertext with tag).
    pub(crate) fn seal<R: RngCore + CryptoRng>(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<([u8; 12], Vec<u8>), FrameError> {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| FrameError::Signing("encryption failed".into()))?;
        Ok((nonce, ct))
    }

    /// Decrypts and authenticates; `None` if the tag does not verify.
    pub(crate) fn open(&self, aad: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
        if nonce.len() != 12 {
            return None;
        }
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_and_key_ids() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_id(u64::from(s.id())), Some(s));
            assert_eq!(s.name().parse::<Suite>().ok(), Some(s));
        }
        assert_eq!(Suite::from_id(0), None);
        let id = SigningIdentity::from_ed25519_seed([1; 32]);
        let kid = id.key_id(Suite::Ed25519).unwrap_or(KeyId([0; 8]));
        assert_eq!(kid.to_string().parse::<KeyId>().ok(), Some(kid));
        assert_eq!(id.key_id(Suite::FnDsa512), None);
        assert!("xyz".parse::<KeyId>().is_err());
    }

    #[test]
    fn secrets_are_checked() {
        assert!(HmacKey::from_secret("k", b"short").is_err());
        assert!(HmacKey::from_secret("bad name", &[0; 32]).is_err());
        assert!(HmacKey::from_secret("", &[0; 32]).is_err());
        assert!(DataKey::from_secret("k1", &[0; 32]).is_ok());
        assert!(!format!("{:?}", HmacKey::from_secret("k", &[9; 32])).contains('9'));
    }
}
