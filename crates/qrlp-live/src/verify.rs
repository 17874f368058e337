//! Layered verification of either format, with one verdict and a precise reason.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::compact::{self, CompactFrame, COMPACT_PREFIX};
use crate::crypto::{DataKey, HmacKey, KeyId, Suite};
use crate::json::{self, View, JSON_HMAC_ALGORITHM};
use crate::keyset::KeySet;
use crate::text::unhex;
use crate::{anchor_tag, QrData, TimeEvidence, UserData};

/// What an evidence adapter knows about an anchored block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorStatus {
    /// The chain's latest head.
    Current,
    /// A head seen recently (`age_ms` since it was first seen as the head).
    Recent {
        /// Milliseconds since this block was the latest head.
        age_ms: u64,
    },
    /// A head seen, but too long ago for a live frame.
    Stale,
    /// Never seen (or the chain is not followed).
    Unknown,
}

/// Judges anchors. Implemented by the evidence adapter over its history of chain heads.
///
/// `tag` is the 8-byte anchor tag ([`anchor_tag`]): the last 8 bytes of the block hash.
pub trait AnchorView: Send + Sync {
    /// The status of the block of `chain` whose hash ends with `tag`.
    fn status(&self, chain: &str, tag: &[u8]) -> AnchorStatus;
}

/// Verification policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierOptions {
    /// How far in the future a timestamp may be (the verifier's clock may be behind), ms.
    /// Default 30 000.
    pub max_future_drift_ms: u64,
    /// Validity applied to JSON frames, which carry no ttl, ms. Default 300 000 (the seed's
    /// `max_time_drift` of 300 s).
    pub json_ttl_ms: u64,
    /// Refuse unsigned frames. Default true.
    pub require_signature: bool,
    /// Suites accepted. Default all three.
    pub allowed_suites: Vec<Suite>,
    /// Require time evidence with at least one agreeing server and an offset within
    /// `max_time_offset_ms`. Default false (SNTP evidence is advisory).
    pub require_time_evidence: bool,
    /// Largest acceptable measured offset in time evidence, ms. Default 1000.
    pub max_time_offset_ms: u64,
    /// Require every anchor to be current or recent per the [`AnchorView`], and at least
    /// one anchor. Default false.
    pub require_blockchain: bool,
    /// Require the identity hash to match `expected_identity`. Default false.
    pub require_identity: bool,
    /// The issuer identity hash expected (full hash; compact frames match on its prefix).
    pub expected_identity: Option<Vec<u8>>,
    /// Replay cache size in entries (about 100 bytes each); 0 disables replay detection.
    /// Default 65 536.
    pub replay_cache_capacity: usize,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            max_future_drift_ms: 30_000,
            json_ttl_ms: 300_000,
            require_signature: true,
            allowed_suites: Suite::ALL.to_vec(),
            require_time_evidence: false,
            max_time_offset_ms: 1000,
            require_blockchain: false,
            require_identity: false,
            expected_identity: None,
            replay_cache_capacity: 65_536,
        }
    }
}

/// Machine-readable reason for a verdict, in the order the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Every required layer passed.
    Ok,
    /// Not a frame of either format (`valid_json` is false).
    Malformed,
    /// No signature, and the verifier requires one.
    Unsigned,
    /// The suite is unknown or not in `allowed_suites`.
    AlgorithmNotAllowed,
    /// No key with this key id in the key set.
    UnknownKeyId,
    /// The key set lists this key id for a different suite.
    KeyAlgorithmMismatch,
    /// The signature does not verify (tampered frame or wrong key).
    BadSignature,
    /// The frame is older than its key's `not_before`.
    KeyNotYetValid,
    /// The key's `not_after` has passed (at verification or at the frame's time).
    KeyExpired,
    /// The verifier has an HMAC key but the frame carries no HMAC.
    HmacMissing,
    /// The frame's HMAC names another key or algorithm.
    HmacKeyUnknown,
    /// The HMAC does not match.
    HmacMismatch,
    /// The timestamp is ahead of the verifier's clock by more than the allowed drift.
    FromFuture,
    /// The frame is older than its ttl.
    Expired,
    /// Time evidence is required but absent or not acceptable.
    NoTimeEvidence,
    /// The identity hash differs from the expected one.
    IdentityMismatch,
    /// Identity is required but no expected identity is configured.
    IdentityUnverified,
    /// Anchors are required but the frame has none.
    NoAnchor,
    /// An anchor is a block the evidence adapter saw too long ago.
    StaleAnchor,
    /// An anchor could not be judged (unknown block or no anchor view).
    UnknownAnchor,
    /// The verifier holds the data key but the ciphertext does not authenticate.
    DecryptionFailed,
    /// This (identity, sequence) was already accepted within its ttl.
    Replayed,
    /// A document that carries a frame (the JSON written by `qrlp generate`) shows a field
    /// that disagrees with its frame, or one that cannot be checked.
    DocumentMismatch,
}

impl ReasonCode {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Ok => "ok",
            ReasonCode::Malformed => "malformed",
            ReasonCode::Unsigned => "unsigned",
            ReasonCode::AlgorithmNotAllowed => "algorithm_not_allowed",
            ReasonCode::UnknownKeyId => "unknown_key_id",
            ReasonCode::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            ReasonCode::BadSignature => "bad_signature",
            ReasonCode::KeyNotYetValid => "key_not_yet_valid",
            ReasonCode::KeyExpired => "key_expired",
            ReasonCode::HmacMissing => "hmac_missing",
            ReasonCode::HmacKeyUnknown => "hmac_key_unknown",
            ReasonCode::HmacMismatch => "hmac_mismatch",
            ReasonCode::FromFuture => "from_future",
            ReasonCode::Expired => "expired",
            ReasonCode::NoTimeEvidence => "no_time_evidence",
            ReasonCode::IdentityMismatch => "identity_mismatch",
            ReasonCode::IdentityUnverified => "identity_unverified",
            ReasonCode::NoAnchor => "no_anchor",
            ReasonCode::StaleAnchor => "stale_anchor",
            ReasonCode::UnknownAnchor => "unknown_anchor",
            ReasonCode::DecryptionFailed => "decryption_failed",
            ReasonCode::Replayed => "replayed",
            ReasonCode::DocumentMismatch => "document_mismatch",
        }
    }
}

/// A reason: its code and a human message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The code.
    pub code: ReasonCode,
    /// What happened, for people.
    pub message: String,
}

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every required layer passed.
    Valid,
    /// See the reason.
    Invalid,
}

/// The result of [`Verifier::verify`]: the seed's keys first, then this protocol's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerificationReport {
    /// The input parsed as a frame of either format (the seed's name; also for compact).
    pub valid_json: bool,
    /// The identity hash is the signing key's (recomputed from the key that verified the
    /// signature) and, when one is configured, the expected identity.
    pub identity_verified: bool,
    /// The timestamp is within `[now - ttl, now + max_future_drift]` (and time evidence
    /// passes when required).
    pub time_verified: bool,
    /// Every anchor is current or recent per the anchor view (false with no anchors).
    pub blockchain_verified: bool,
    /// The signature verifies with a key valid now.
    pub signature_verified: bool,
    /// The HMAC verifies with the verifier's key (false when it has none).
    pub hmac_verified: bool,
    /// User data is encrypted.
    pub encrypted: bool,
    /// Parse error (when `valid_json` is false).
    pub error: Option<String>,
    /// Hex key id that verified the signature.
    pub key_id: Option<String>,
    /// Suite name of the signature.
    pub algorithm: Option<String>,
    /// `now - timestamp`, ms (negative for a timestamp ahead of the clock).
    pub age_ms: Option<i64>,
    /// The (identity, sequence) was already accepted within its ttl.
    pub replayed: bool,
    /// `valid` or `invalid`.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
    /// `compact` or `json`.
    pub format: Option<&'static str>,
    /// The frame's sequence number.
    pub sequence_number: Option<u64>,
    /// The frame's timestamp, ms.
    pub timestamp_ms: Option<u64>,
    /// Plain or decrypted user data (absent when encrypted and no key).
    pub user_data: Option<UserData>,
}

impl VerificationReport {
    /// Whether the verdict is valid.
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// The report as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn malformed(error: String) -> VerificationReport {
        VerificationReport {
            valid_json: false,
            identity_verified: false,
            time_verified: false,
            blockchain_verified: false,
            signature_verified: false,
            hmac_verified: false,
            encrypted: false,
            reason: Reason {
                code: ReasonCode::Malformed,
                message: error.clone(),
            },
            error: Some(error),
            key_id: None,
            algorithm: None,
            age_ms: None,
            replayed: false,
            verdict: Verdict::Invalid,
            format: None,
            sequence_number: None,
            timestamp_ms: None,
            user_data: None,
        }
    }
}

/// A signature claim as extracted from either format.
struct SigClaim {
    /// The suite, or the unknown algorithm's name.
    suite: Result<Suite, String>,
    kid: Option<KeyId>,
    message: Vec<u8>,
    sigs: Vec<Vec<u8>>,
}

/// An HMAC claim.
struct MacClaim {
    key_id: String,
    algorithm_ok: bool,
    tag: Vec<u8>,
    label: &'static [u8],
    data: Vec<u8>,
}

enum Sealed {
    None,
    NoKey,
    Failed,
    Opened(UserData),
}

/// Format-independent facts of a parsed frame.
struct Facts {
    format: &'static str,
    sig: Option<SigClaim>,
    /// A signature field set that is incomplete or undecodable (JSON).
    sig_defect: Option<String>,
    mac: Option<MacClaim>,
    timestamp_ms: u64,
    ttl_ms: u64,
    sequence: u64,
    identity: Vec<u8>,
    anchors: Vec<(String, Option<[u8; 8]>)>,
    time_evidence: Option<TimeEvidence>,
    user_data: Option<UserData>,
    sealed: Sealed,
}

/// Bounded replay cache: (identity prefix, sequence) → expiry (ms).
#[derive(Default)]
struct ReplayCache {
    map: HashMap<([u8; 16], u64), u64>,
    order: VecDeque<(u64, [u8; 16], u64)>,
}

impl ReplayCache {
    /// Returns true if seen and unexpired; otherwise records it.
    fn check_and_insert(
        &mut self,
        id: [u8; 16],
        seq: u64,
        expires: u64,
        now: u64,
        cap: usize,
    ) -> bool {
        if let Some(&exp) = self.map.get(&(id, seq)) {
            if exp >= now {
                return true;
            }
        }
        // Drop expired entries from the front, then the oldest entries while full.
        while let Some(&(exp, i, s)) = self.order.front() {
            if exp < now || self.map.len() >= cap {
                self.order.pop_front();
                if self.map.get(&(i, s)) == Some(&exp) {
                    self.map.remove(&(i, s));
                }
            } else {
                break;
            }
        }
        self.map.insert((id, seq), expires);
        self.order.push_back((expires, id, seq));
        // Re-inserted keys leave stale queue entries; keep the queue bounded too.
        while self.order.len() > cap.saturating_mul(2) {
            self.order.pop_front();
        }
        false
    }
}

/// Verifies frames of both formats against a key set and a policy.
///
/// `verify` takes `&self` and is safe to call from many threads; the replay cache is the
/// only shared state (one mutex, held for a hash-map lookup).
pub struct Verifier {
    keys: KeySet,
    options: VerifierOptions,
    hmac: Option<Arc<HmacKey>>,
    data_key: Option<Arc<DataKey>>,
    anchors: Option<Arc<dyn AnchorView>>,
    replay: Mutex<ReplayCache>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("options", &self.options)
            .field("hmac", &self.hmac)
            .field("data_key", &self.data_key)
            .field("anchor_view", &self.anchors.is_some())
            .finish()
    }
}

impl Verifier {
    /// A verifier for `keys` with `options`.
    pub fn new(keys: KeySet, options: VerifierOptions) -> Verifier {
        Verifier {
            keys,
            options,
            hmac: None,
            data_key: None,
            anchors: None,
            replay: Mutex::new(ReplayCache::default()),
        }
    }

    /// Checks the HMAC layer with this key.
    pub fn with_hmac_key(mut self, key: Arc<HmacKey>) -> Verifier {
        self.hmac = Some(key);
        self
    }

    /// Decrypts user data with this key.
    pub fn with_data_key(mut self, key: Arc<DataKey>) -> Verifier {
        self.data_key = Some(key);
        self
    }

    /// Judges anchors with this view.
    pub fn with_anchor_view(mut self, view: Arc<dyn AnchorView>) -> Verifier {
        self.anchors = Some(view);
        self
    }

    /// The policy.
    pub fn options(&self) -> &VerifierOptions {
        &self.options
    }

    /// The key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies a frame text (compact `QL2:…` or JSON `{…}`; surrounding whitespace is
    /// ignored) at time `now_ms`. Never panics; malformed input gives `valid_json: false`.
    pub fn verify(&self, input: &str, now_ms: u64) -> VerificationReport {
        // Leading and trailing ASCII whitespace only (a transport's line ends), as specified.
        let input = input.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        let facts = if input.starts_with('{') {
            QrData::from_json(input).map(|d| self.json_facts(&d))
        } else if input.starts_with(COMPACT_PREFIX) {
            CompactFrame::decode(input).map(|f| self.compact_facts(f))
        } else {
            Err(crate::FrameError::Malformed(
                "neither a compact frame (QL2:) nor a JSON object".into(),
            ))
        };
        match facts {
            Ok(f) => self.judge(f, now_ms),
            Err(e) => VerificationReport::malformed(e.to_string()),
        }
    }

    fn compact_facts(&self, f: CompactFrame) -> Facts {
        let p = f.payload;
        let sig = match (f.signature, f.unknown_suite) {
            (Some((suite, sigs)), _) => Some(SigClaim {
                suite: Ok(suite),
                kid: p.key_id,
                message: compact::signed_message(suite, &f.signed_bytes),
                sigs,
            }),
            (None, Some(id)) => Some(SigClaim {
                suite: Err(format!("suite {id}")),
                kid: p.key_id,
                message: Vec::new(),
                sigs: Vec::new(),
            }),
            (None, None) => None,
        };
        let mac = f.hmac.map(|(key_id, tag)| MacClaim {
            key_id,
            algorithm_ok: true,
            tag,
            label: compact::LABEL_HMAC,
            data: f.payload_bytes.clone(),
        });
        let sealed = match (&p.sealed, &self.data_key) {
            (None, _) => Sealed::None,
            (Some(s), Some(k)) if s.key_id == k.id() => {
                let mut header = p.clone();
                header.user_data = None;
                let aad = [compact::LABEL_AAD, &header.encode(false)].concat();
                match k
                    .open(&aad, &s.nonce, &s.ciphertext)
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|t| compact::parse_user_json(&t).ok())
                {
                    Some(u) => Sealed::Opened(u),
                    None => Sealed::Failed,
                }
            }
            (Some(_), _) => Sealed::NoKey,
        };
        Facts {
            format: "compact",
            sig,
            sig_defect: None,
            mac,
            timestamp_ms: p.timestamp_ms,
            ttl_ms: p.ttl_ms,
            sequence: p.sequence,
            identity: p.identity,
            anchors: p.anchors.into_iter().map(|(c, t)| (c, Some(t))).collect(),
            time_evidence: p.time_evidence,
            user_data: p.user_data,
            sealed,
        }
    }

    fn json_facts(&self, d: &QrData) -> Facts {
        // A parsed frame's numbers are canonical, hence exact: the views cannot fail.
        let view = d.view(View::Signed).unwrap_or_default();
        let mut sig_defect = None;
        let sig = match (
            &d.digital_signature,
            &d.signing_key_id,
            &d.signature_algorithm,
        ) {
            (None, None, None) => None,
            (Some(s), Some(kid), Some(alg)) => {
                let suite = alg.parse::<Suite>().map_err(|_| alg.clone());
                let kid = kid.parse::<KeyId>().ok();
                let raw = crate::text::unb64(s).unwrap_or_default();
                let sigs = match &suite {
                    Ok(suite) => split_sigs(*suite, &raw),
                    Err(_) => Vec::new(),
                };
                if suite.is_ok() && sigs.is_empty() {
                    sig_defect = Some("digital_signature does not decode for its algorithm".into());
                }
                Some(SigClaim {
                    message: match &suite {
                        Ok(s) => json::signed_message(*s, &view),
                        Err(_) => Vec::new(),
                    },
                    suite,
                    kid,
                    sigs,
                })
            }
            _ => {
                sig_defect = Some(
                    "digital_signature, signing_key_id and signature_algorithm go together".into(),
                );
                None
            }
        };
        let mac = d.hmac.as_ref().map(|h| MacClaim {
            key_id: d.hmac_key_id.clone().unwrap_or_default(),
            algorithm_ok: d
                .hmac_algorithm
                .as_deref()
                .is_none_or(|a| a == JSON_HMAC_ALGORITHM),
            // The full 32-byte tag, nothing shorter.
            tag: unhex(h).filter(|t| t.len() == 32).unwrap_or_default(),
            label: json::LABEL_HMAC,
            data: d.view(View::Hmac).unwrap_or_default().into_bytes(),
        });
        let sealed = if !d.is_encrypted() {
            Sealed::None
        } else {
            match &self.data_key {
                Some(k) if d.encryption_key_id.as_deref() == Some(k.id()) => {
                    match json::open_user_data(d, k) {
                        Some(u) => Sealed::Opened(u),
                        None => Sealed::Failed,
                    }
                }
                _ => Sealed::NoKey,
            }
        };
        Facts {
            format: "json",
            sig,
            sig_defect,
            mac,
            timestamp_ms: d.timestamp_ms().unwrap_or(0),
            ttl_ms: self.options.json_ttl_ms,
            sequence: d.sequence_number,
            identity: unhex(&d.identity_hash).unwrap_or_default(),
            anchors: d
                .blockchain_hashes
                .iter()
                .map(|(c, h)| (c.clone(), anchor_tag(h).ok()))
                .collect(),
            time_evidence: d.time_evidence(),
            user_data: if d.is_encrypted() {
                None
            } else {
                d.user_data.clone()
            },
            sealed,
        }
    }

    fn judge(&self, f: Facts, now: u64) -> VerificationReport {
        let o = &self.options;
        let mut fails: Vec<(ReasonCode, String)> = Vec::new();
        let mut fail = |c: ReasonCode, m: String| fails.push((c, m));

        // 1. Signature.
        let mut signature_verified = false;
        let mut key_identity: Option<[u8; crate::IDENTITY_HASH_LEN]> = None;
        let mut key_id = None;
        let mut algorithm = None;
        if let Some(defect) = f.sig_defect {
            fail(ReasonCode::BadSignature, defect);
        }
        match &f.sig {
            None => {
                if o.require_signature {
                    fail(ReasonCode::Unsigned, "the frame is not signed".into());
                }
            }
            Some(claim) => match &claim.suite {
                Err(name) => fail(
                    ReasonCode::AlgorithmNotAllowed,
                    format!("unknown signature algorithm {name:?}"),
                ),
                Ok(suite) => {
                    algorithm = Some(suite.name().to_owned());
                    let entry = claim.kid.as_ref().and_then(|k| self.keys.lookup(k));
                    if !o.allowed_suites.contains(suite) {
                        fail(
                            ReasonCode::AlgorithmNotAllowed,
                            format!("{suite} is not an allowed algorithm"),
                        );
                    } else if let Some((entry, parsed)) = entry {
                        if entry.key.suite() != *suite {
                            fail(
                                ReasonCode::KeyAlgorithmMismatch,
                                format!("key {} is a {} key", entry.kid(), entry.key.suite()),
                            );
                        } else {
                            // The signature first: the key's window is judged on the frame's
                            // timestamp, which means something only once it is authenticated.
                            let sigs: Vec<&[u8]> = claim.sigs.iter().map(Vec::as_slice).collect();
                            if sigs.is_empty() || !parsed.verify(&claim.message, &sigs) {
                                fail(
                                    ReasonCode::BadSignature,
                                    format!("signature does not verify with key {}", entry.kid()),
                                );
                            } else if f.timestamp_ms < entry.not_before_ms {
                                fail(
                                    ReasonCode::KeyNotYetValid,
                                    format!("frame predates key {}", entry.kid()),
                                );
                            } else if entry
                                .not_after_ms
                                .is_some_and(|na| now > na || f.timestamp_ms > na)
                            {
                                fail(
                                    ReasonCode::KeyExpired,
                                    format!("key {} has expired", entry.kid()),
                                );
                            } else {
                                signature_verified = true;
                                key_identity = Some(entry.key.identity_hash());
                                key_id = Some(entry.kid().to_string());
                            }
                        }
                    } else {
                        fail(
                            ReasonCode::UnknownKeyId,
                            match claim.kid {
                                Some(k) => format!("no key {k} in the key set"),
                                None => "key id missing or not 16 hex digits".into(),
                            },
                        );
                    }
                }
            },
        }

        // 2. HMAC.
        let mut hmac_verified = false;
        if let Some(key) = &self.hmac {
            match &f.mac {
                None => fail(ReasonCode::HmacMissing, "the frame carries no HMAC".into()),
                Some(m) if m.key_id != key.id() || !m.algorithm_ok => fail(
                    ReasonCode::HmacKeyUnknown,
                    format!("HMAC key {:?} is not the verifier's", m.key_id),
                ),
                Some(m) => {
                    if key.verify(m.label, &m.data, &m.tag) {
                        hmac_verified = true;
                    } else {
                        fail(ReasonCode::HmacMismatch, "HMAC does not match".into());
                    }
                }
            }
        }

        // 3. Time.
        let age_ms = i128::from(now) - i128::from(f.timestamp_ms);
        let age_ms = i64::try_from(age_ms).unwrap_or(if age_ms < 0 { i64::MIN } else { i64::MAX });
        let mut time_verified = true;
        if age_ms < 0 && age_ms.unsigned_abs() > o.max_future_drift_ms {
            time_verified = false;
            fail(
                ReasonCode::FromFuture,
                format!("timestamp {} ms ahead of the clock", age_ms.unsigned_abs()),
            );
        } else if age_ms > 0 && age_ms.unsigned_abs() > f.ttl_ms {
            time_verified = false;
            fail(
                ReasonCode::Expired,
                format!("frame is {age_ms} ms old, valid for {} ms", f.ttl_ms),
            );
        }
        if o.require_time_evidence {
            let ok = f.time_evidence.is_some_and(|t| {
                t.servers_agreed >= 1 && t.offset_ms.unsigned_abs() <= o.max_time_offset_ms
            });
            if !ok {
                time_verified = false;
                fail(
                    ReasonCode::NoTimeEvidence,
                    "no acceptable time-server evidence".into(),
                );
            }
        }

        // 4. Identity: the signing key's identity hash (recomputed from the key that
        // verified the signature), and the configured one when there is one. A frame
        // carries the whole hash (JSON) or its first 16 bytes (compact).
        let carries = |full: &[u8]| f.identity.len() >= 16 && full.starts_with(&f.identity);
        let by_key = key_identity.map(|k| carries(&k));
        let by_config = o.expected_identity.as_deref().map(carries);
        let identity_verified =
            by_key.unwrap_or(true) && by_config.unwrap_or(true) && (by_key.or(by_config)).is_some();
        if by_key == Some(false) {
            fail(
                ReasonCode::IdentityMismatch,
                "identity hash is not the signing key's".into(),
            );
        } else if by_config == Some(false) {
            fail(
                ReasonCode::IdentityMismatch,
                "identity hash differs from the expected identity".into(),
            );
        } else if !identity_verified && o.require_identity {
            fail(
                ReasonCode::IdentityUnverified,
                "identity required but neither a verified key nor an expected identity".into(),
            );
        }

        // 5. Anchors.
        let statuses: Vec<AnchorStatus> = f
            .anchors
            .iter()
            .map(|(chain, tag)| match (tag, &self.anchors) {
                (Some(t), Some(view)) => view.status(chain, t),
                _ => AnchorStatus::Unknown,
            })
            .collect();
        let fresh =
            |s: &AnchorStatus| matches!(s, AnchorStatus::Current | AnchorStatus::Recent { .. });
        let blockchain_verified = !statuses.is_empty() && statuses.iter().all(fresh);
        if o.require_blockchain && !blockchain_verified {
            if statuses.is_empty() {
                fail(ReasonCode::NoAnchor, "the frame has no chain anchor".into());
            } else if statuses.contains(&AnchorStatus::Stale) {
                fail(ReasonCode::StaleAnchor, "an anchor is a stale block".into());
            } else {
                fail(
                    ReasonCode::UnknownAnchor,
                    "an anchor could not be judged".into(),
                );
            }
        }

        // 6. Encryption.
        let encrypted = !matches!(f.sealed, Sealed::None);
        let mut user_data = f.user_data;
        match f.sealed {
            Sealed::Opened(u) => user_data = Some(u),
            Sealed::Failed => fail(
                ReasonCode::DecryptionFailed,
                "encrypted user data does not authenticate".into(),
            ),
            Sealed::None | Sealed::NoKey => {}
        }

        // 7. Replay, only for frames otherwise valid (forgeries never enter the cache).
        let mut replayed = false;
        if fails.is_empty() && o.replay_cache_capacity > 0 {
            let mut id = [0u8; 16];
            let n = f.identity.len().min(16);
            id[..n].copy_from_slice(&f.identity[..n]);
            let expires = f.timestamp_ms.saturating_add(f.ttl_ms);
            replayed = match self.replay.lock() {
                Ok(mut cache) => {
                    cache.check_and_insert(id, f.sequence, expires, now, o.replay_cache_capacity)
                }
                // A poisoned lock means a panic elsewhere; fail closed.
                Err(_) => true,
            };
            if replayed {
                fails.push((
                    ReasonCode::Replayed,
                    format!("sequence {} of this identity was already seen", f.sequence),
                ));
            }
        }

        let (verdict, reason) = match fails.into_iter().next() {
            None => (
                Verdict::Valid,
                Reason {
                    code: ReasonCode::Ok,
                    message: "all required layers verified".into(),
                },
            ),
            Some((code, message)) => (Verdict::Invalid, Reason { code, message }),
        };
        VerificationReport {
            valid_json: true,
            identity_verified,
            time_verified,
            blockchain_verified,
            signature_verified,
            hmac_verified,
            encrypted,
            error: None,
            key_id,
            algorithm,
            age_ms: Some(age_ms),
            replayed,
            verdict,
            reason,
            format: Some(f.format),
            sequence_number: Some(f.sequence),
            timestamp_ms: Some(f.timestamp_ms),
            user_data,
        }
    }
}

/// Splits a JSON `digital_signature` into the suite's signatures; empty if the length is off.
fn split_sigs(suite: Suite, raw: &[u8]) -> Vec<Vec<u8>> {
    let lens = suite.signature_lens();
    if raw.len() != lens.iter().sum::<usize>() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(lens.len());
    let mut rest = raw;
    for &l in lens {
        let (a, b) = rest.split_at(l);
        out.push(a.to_vec());
        rest = b;
    }
    out
}
