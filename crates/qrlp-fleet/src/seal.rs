//! Sealing secrets at rest: ChaCha20-Poly1305 under a 32-byte data key, with associated
//! data naming what the secret is and whose (so a sealed value copied into another row does
//! not open). Layout: 12-byte random nonce, then ciphertext and tag.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use crate::{random_bytes, FleetError};

/// A 32-byte data key. `Debug` hides it.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> DataKey {
        DataKey(Zeroizing::new(random_bytes::<32>()))
    }

    /// The key of 32 bytes.
    ///
    /// # Errors
    /// When `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey, FleetError> {
        <[u8; 32]>::try_from(bytes)
            .map(|b| DataKey(Zeroizing::new(b)))
            .map_err(|_| FleetError::InvalidKey("a data key is 32 bytes"))
    }

    /// A key derived from a configured secret: HMAC-SHA256 keyed by the secret over
    /// `label`, so one secret can serve several purposes without their keys being equal.
    pub fn derive(secret: &[u8], label: &str) -> DataKey {
        use hmac::{Hmac, Mac};
        #[allow(clippy::expect_used)]
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        DataKey(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// The key bytes, for its file.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0[..]));
        let nonce = random_bytes::<12>();
        let mut out = nonce.to_vec();
        #[allow(clippy::expect_used)]
        out.extend(
            cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .expect("ChaCha20-Poly1305 encrypts any input of this size"),
        );
        out
    }

    /// Decrypts what [`DataKey::seal`] made with the same `aad`.
    ///
    /// # Errors
    /// When the blob is too short, was made with another key or `aad`, or was changed.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, FleetError> {
        if sealed.len() < 12 + 16 {
            return Err(FleetError::Open("sealed value too short"));
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0[..]));
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| FleetError::Open("wrong data key, wrong owner or changed value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_binding() {
        let k = DataKey::generate();
        let s = k.seal(b"ca:org1", b"secret");
        assert_eq!(&k.open(b"ca:org1", &s).unwrap()[..], b"secret");
        assert!(k.open(b"ca:org2", &s).is_err());
        assert!(DataKey::generate().open(b"ca:org1", &s).is_err());
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(k.open(b"ca:org1", &t).is_err());
        assert!(!format!("{k:?}").contains(&format!("{:?}", k.bytes())));
    }
}
