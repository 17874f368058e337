//! Published public keys: what an offline verifier loads.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{KeyId, ParsedKey, PublicKey, SigningIdentity, Suite};
use crate::error::malformed;
use crate::text::{b64, format_timestamp, parse_timestamp, unb64};
use crate::FrameError;

/// One published key and the time window in which frames signed by it are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// The public key (its suite is the entry's `alg`).
    pub key: PublicKey,
    /// Frames stamped before this time (ms) are refused.
    pub not_before_ms: u64,
    /// After this time (ms) the key verifies nothing; `None` = no end yet.
    pub not_after_ms: Option<u64>,
}

impl KeyEntry {
    /// The entry's key id.
    pub fn kid(&self) -> KeyId {
        self.key.key_id()
    }
}

/// A set of public keys by key id.
///
/// Its JSON form is `{"keys":[{"kid","alg","public_key","not_before","not_after"}]}`: `kid`
/// hex, `alg` a suite name, `public_key` standard base64, times ISO-8601 UTC, `not_after`
/// `null` when open. Loading checks that every `kid` is the key id of its `public_key`.
///
/// ```
/// use qrlp_live::{KeySet, SigningIdentity};
/// let id = SigningIdentity::from_ed25519_seed([1; 32]);
/// let set = KeySet::from_identity(&id, 0, None);
/// let again = KeySet::from_json(&set.to_json())?;
/// assert_eq!(again.len(), 1);
/// # Ok::<(), qrlp_live::FrameError>(())
/// ```
#[derive(Clone, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    by_kid: HashMap<KeyId, (usize, ParsedKey)>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (e.kid().to_string(), e.key.suite())),
            )
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSet {
    keys: Vec<JsonKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonKey {
    kid: String,
    alg: String,
    public_key: String,
    not_before: String,
    #[serde(default)]
    not_after: Option<String>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// Adds a key; a key already present (same key id) is replaced.
    pub fn insert(&mut self, entry: KeyEntry) -> Result<(), FrameError> {
        let parsed = ParsedKey::parse(entry.key.suite(), entry.key.as_bytes())?;
        let kid = entry.kid();
        if let Some((i, _)) = self.by_kid.get(&kid) {
            let i = *i;
            self.entries[i] = entry;
            self.by_kid.insert(kid, (i, parsed));
        } else {
            self.by_kid.insert(kid, (self.entries.len(), parsed));
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Every key of `identity` (Ed25519, and FN-DSA and hybrid when present) with one window.
    pub fn from_identity(
        identity: &SigningIdentity,
        not_before_ms: u64,
        not_after_ms: Option<u64>,
    ) -> KeySet {
        let mut set = KeySet::new();
        set.add_identity(identity, not_before_ms, not_after_ms);
        set
    }

    pub(crate) fn add_identity(
        &mut self,
        identity: &SigningIdentity,
        not_before_ms: u64,
        not_after_ms: Option<u64>,
    ) {
        for suite in Suite::ALL {
            if let Some(key) = identity.public_key(suite) {
                // Keys made by the identity always parse.
                let _ = self.insert(KeyEntry {
                    key,
                    not_before_ms,
                    not_after_ms,
                });
            }
        }
    }

    /// The entry and decoded key for `kid`.
    pub(crate) fn lookup(&self, kid: &KeyId) -> Option<(&KeyEntry, &ParsedKey)> {
        let (i, k) = self.by_kid.get(kid)?;
        Some((self.entries.get(*i)?, k))
    }

    /// The entry for `kid`.
    pub fn get(&self, kid: &KeyId) -> Option<&KeyEntry> {
        self.lookup(kid).map(|(e, _)| e)
    }

    /// All entries, in insertion order.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JSON key set (pretty-printed, one key per object).
    pub fn to_json(&self) -> String {
        let set = JsonSet {
            keys: self
                .entries
                .iter()
                .map(|e| JsonKey {
                    kid: e.kid().to_string(),
                    alg: e.key.suite().name().to_owned(),
                    public_key: b64(e.key.as_bytes()),
                    not_before: format_timestamp(e.not_before_ms),
                    not_after: e.not_after_ms.map(format_timestamp),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&set).unwrap_or_default()
    }

    /// Loads a JSON key set.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] for bad JSON, an unknown `alg`, a `kid` that does not match
    /// its key, a repeated `kid` or a bad time; [`FrameError::InvalidKey`] for key bytes that
    /// do not decode.
    pub fn from_json(json: &str) -> Result<KeySet, FrameError> {
        let set: JsonSet =
            serde_json::from_str(json).map_err(|e| malformed(format!("key set JSON: {e}")))?;
        let mut out = KeySet::new();
        for k in set.keys {
            let suite: Suite = k.alg.parse()?;
            let bytes = unb64(&k.public_key).ok_or_else(|| malformed("public_key base64"))?;
            let key = PublicKey::new(suite, bytes)?;
            if key.key_id().to_string() != k.kid.to_ascii_lowercase() {
                return Err(malformed(format!("kid {} does not match its key", k.kid)));
            }
            if out.by_kid.contains_key(&key.key_id()) {
                return Err(malformed(format!("kid {} repeated", k.kid)));
            }
            let time = |s: &str| parse_timestamp(s).ok_or_else(|| malformed("key time"));
            out.insert(KeyEntry {
                key,
                not_before_ms: time(&k.not_before)?,
                not_after_ms: k.not_after.as_deref().map(time).transpose()?,
            })?;
        }
        Ok(out)
    }
}
