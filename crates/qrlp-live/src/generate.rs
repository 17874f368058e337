//! Frame generation: content + keys → signed compact text or JSON `QrData`.

use std::sync::Arc;

use rand_core::{CryptoRng, OsRng, RngCore};

use crate::crypto::{DataKey, HmacKey, SigningIdentity, Suite};
use crate::{FrameContent, FrameError, QrData};

/// Per-frame choices, the seed's `sign_data` and `encrypt_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Sign with the generator's suite (default true).
    pub sign: bool,
    /// Encrypt user data with the generator's data key (default false).
    pub encrypt: bool,
}

impl Default for Seal {
    fn default() -> Self {
        Seal {
            sign: true,
            encrypt: false,
        }
    }
}

/// Makes frames for one issuer: its identity, signature suite, and optional HMAC and data
/// keys. Pure: time and sequence come in [`FrameContent`], randomness from the caller's RNG
/// (only FN-DSA signing and encryption nonces use it; Ed25519 is deterministic).
///
/// ```
/// use std::sync::Arc;
/// use qrlp_live::{FrameContent, Generator, KeySet, Seal, SigningIdentity, Verifier, VerifierOptions};
///
/// let identity = Arc::new(SigningIdentity::from_ed25519_seed([42; 32]));
/// let generator = Generator::new(identity.clone());
/// let content = FrameContent {
///     sequence: 1,
///     timestamp_ms: 1_736_609_445_000,
///     ttl_ms: 30_000,
///     ..FrameContent::default()
/// };
/// let text = generator.compact_os(&content, Seal::default())?;
/// assert!(text.starts_with("QL2:"));
///
/// let keys = KeySet::from_identity(&identity, 0, None);
/// let verifier = Verifier::new(keys, VerifierOptions::default());
/// let report = verifier.verify(&text, 1_736_609_446_000);
/// assert!(report.is_valid(), "{:?}", report.reason);
/// assert!(report.signature_verified);
/// # Ok::<(), qrlp_live::FrameError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Generator {
    identity: Arc<SigningIdentity>,
    suite: Suite,
    hmac: Option<Arc<HmacKey>>,
    data_key: Option<Arc<DataKey>>,
}

impl Generator {
    /// A generator signing with Ed25519, without HMAC or encryption.
    pub fn new(identity: Arc<SigningIdentity>) -> Generator {
        Generator {
            identity,
            suite: Suite::Ed25519,
            hmac: None,
            data_key: None,
        }
    }

    /// Signs with `suite` instead.
    ///
    /// # Errors
    /// [`FrameError::SuiteUnavailable`] when the identity has no FN-DSA key.
    pub fn with_suite(mut self, suite: Suite) -> Result<Generator, FrameError> {
        if !self.identity.supports(suite) {
            return Err(FrameError::SuiteUnavailable(suite));
        }
        self.suite = suite;
        Ok(self)
    }

    /// Adds the HMAC layer to every frame.
    pub fn with_hmac_key(mut self, key: Arc<HmacKey>) -> Generator {
        self.hmac = Some(key);
        self
    }

    /// Sets the key used when a frame asks for encryption.
    pub fn with_data_key(mut self, key: Arc<DataKey>) -> Generator {
        self.data_key = Some(key);
        self
    }

    /// The suite frames are signed with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The signing identity.
    pub fn identity(&self) -> &Arc<SigningIdentity> {
        &self.identity
    }

    /// The identity hash this generator's frames carry: that of its signing key
    /// ([`crate::identity_hash`]).
    pub fn identity_hash(&self) -> [u8; crate::IDENTITY_HASH_LEN] {
        // `with_suite` only accepts suites the identity has a key for.
        self.identity
            .identity_hash(self.suite)
            .unwrap_or([0; crate::IDENTITY_HASH_LEN])
    }

    /// Checks the caller's identity hash (empty, or the generator's own).
    fn identity_for(&self, content: &FrameContent) -> Result<[u8; 32], FrameError> {
        let own = self.identity_hash();
        if content.identity_hash.is_empty() || content.identity_hash == own {
            Ok(own)
        } else {
            Err(FrameError::InvalidContent(
                "identity hash is not the signing key's (leave it empty)".into(),
            ))
        }
    }

    fn parts(&self, seal: Seal) -> Result<(Option<Suite>, Option<&DataKey>), FrameError> {
        let data_key = if seal.encrypt {
            Some(self.data_key.as_deref().ok_or(FrameError::NoDataKey)?)
        } else {
            None
        };
        Ok((seal.sign.then_some(self.suite), data_key))
    }

    /// A compact frame text (`QL2:…`).
    ///
    /// # Errors
    /// [`FrameError::InvalidContent`] for content outside the format's limits;
    /// [`FrameError::NoDataKey`] for encryption without a data key.
    pub fn compact<R: RngCore + CryptoRng>(
        &self,
        content: &FrameContent,
        seal: Seal,
        rng: &mut R,
    ) -> Result<String, FrameError> {
        let (suite, key) = self.parts(seal)?;
        let identity_hash = self.identity_for(content)?;
        crate::compact::seal(
            content,
            &self.identity,
            &identity_hash,
            suite,
            self.hmac.as_deref(),
            key,
            rng,
        )
    }

    /// A JSON frame (the seed's `QRData`); call [`QrData::to_json`] for its text.
    ///
    /// # Errors
    /// As [`Generator::compact`].
    pub fn json<R: RngCore + CryptoRng>(
        &self,
        content: &FrameContent,
        seal: Seal,
        rng: &mut R,
    ) -> Result<QrData, FrameError> {
        let (suite, key) = self.parts(seal)?;
        let identity_hash = self.identity_for(content)?;
        crate::json::seal(
            content,
            &self.identity,
            &identity_hash,
            suite,
            self.hmac.as_deref(),
            key,
            rng,
        )
    }

    /// [`Generator::compact`] with the operating system's RNG.
    pub fn compact_os(&self, content: &FrameContent, seal: Seal) -> Result<String, FrameError> {
        self.compact(content, seal, &mut OsRng)
    }

    /// [`Generator::json`] with the operating system's RNG.
    pub fn json_os(&self, content: &FrameContent, seal: Seal) -> Result<QrData, FrameError> {
        self.json(content, seal, &mut OsRng)
    }
}
