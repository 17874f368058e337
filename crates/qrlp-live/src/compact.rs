//! The compact frame: `QL2:` + base45(CBOR). See `docs/qrlp-frames.md` for the byte layout.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use crate::cbor::{CborError, Decoder, Encoder};
use crate::content::{MAX_ANCHORS, MAX_TTL_MS, MAX_USER_DATA};
use crate::crypto::{DataKey, HmacKey, KeyId, SigningIdentity, Suite};
use crate::error::malformed;
use crate::jcs::jcs;
use crate::text::MAX_TIMESTAMP_MS;
use crate::{anchor_tag, FrameContent, FrameError, TimeEvidence, UserData};

/// The text before the base45 data; `2` is the format version.
pub const COMPACT_PREFIX: &str = "QL2:";
/// The payload format version (payload key 0). Version 2 signs the HMAC element too.
pub const COMPACT_VERSION: u64 = 2;
/// Bytes of the identity hash a compact frame carries.
pub const COMPACT_IDENTITY_LEN: usize = 16;
/// Bytes of the HMAC-SHA256 tag a compact frame carries (the left half).
pub const COMPACT_HMAC_LEN: usize = 16;

pub(crate) const LABEL_SIG: &[u8] = b"QRLP/2 compact signature\0";
pub(crate) const LABEL_HMAC: &[u8] = b"QRLP/2 compact hmac\0";
pub(crate) const LABEL_AAD: &[u8] = b"QRLP/2 compact user-data\0";

/// Payload map keys.
mod key {
    pub const VERSION: u64 = 0;
    pub const KID: u64 = 1;
    pub const SEQ: u64 = 2;
    pub const TS: u64 = 3;
    pub const TTL: u64 = 4;
    pub const IDENTITY: u64 = 5;
    pub const ANCHORS: u64 = 6;
    pub const TIME: u64 = 7;
    pub const USER: u64 = 8;
    pub const ENC: u64 = 9;
}

/// Chains with a registered number in anchor maps (others are written by name).
pub const REGISTERED_CHAINS: [(u64, &str); 3] = [(1, "bitcoin"), (2, "ethereum"), (3, "litecoin")];

/// Encrypted user data as carried: the data key's name, the nonce and the ciphertext with
/// its 16-byte Poly1305 tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedData {
    /// Name of the [`DataKey`].
    pub key_id: String,
    /// The 96-bit nonce.
    pub nonce: [u8; 12],
    /// Ciphertext followed by the tag.
    pub ciphertext: Vec<u8>,
}

/// The payload of a compact frame, as decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactPayload {
    /// Key id of the signing key (absent in unsigned frames).
    pub key_id: Option<KeyId>,
    /// Sequence number.
    pub sequence: u64,
    /// Creation time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Validity, ms.
    pub ttl_ms: u64,
    /// Identity hash prefix (16 bytes from this generator; 8 to 64 accepted).
    pub identity: Vec<u8>,
    /// Chain name → anchor tag.
    pub anchors: BTreeMap<String, [u8; 8]>,
    /// Time evidence summary.
    pub time_evidence: Option<TimeEvidence>,
    /// Plain user data.
    pub user_data: Option<UserData>,
    /// Encrypted user data.
    pub sealed: Option<SealedData>,
}

/// A decoded compact frame. Nothing here is verified yet.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactFrame {
    /// The payload fields.
    pub payload: CompactPayload,
    /// The exact payload bytes (what the HMAC covers).
    pub payload_bytes: Vec<u8>,
    /// The frame's bytes after its array head up to the signature element: the payload
    /// item and the HMAC item, as encoded. The signature covers them all.
    pub signed_bytes: Vec<u8>,
    /// The suite and its signatures, if signed with a known suite.
    pub signature: Option<(Suite, Vec<Vec<u8>>)>,
    /// The suite number of a signature whose suite this decoder does not know.
    pub unknown_suite: Option<u64>,
    /// The HMAC key name and truncated tag, if present.
    pub hmac: Option<(String, Vec<u8>)>,
}

fn chain_code(name: &str) -> Option<u64> {
    REGISTERED_CHAINS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
}

impl CompactPayload {
    /// Canonical CBOR of the payload map; `with_sealed = false` leaves key 9 out (the AAD).
    pub(crate) fn encode(&self, with_sealed: bool) -> Vec<u8> {
        let sealed = self.sealed.as_ref().filter(|_| with_sealed);
        let count = 5
            + usize::from(self.key_id.is_some())
            + usize::from(!self.anchors.is_empty())
            + usize::from(self.time_evidence.is_some())
            + usize::from(self.user_data.is_some())
            + usize::from(sealed.is_some());
        let mut e = Encoder::default();
        e.map(count);
        e.uint(key::VERSION);
        e.uint(COMPACT_VERSION);
        if let Some(kid) = &self.key_id {
            e.uint(key::KID);
            e.bytes(&kid.0);
        }
        e.uint(key::SEQ);
        e.uint(self.sequence);
        e.uint(key::TS);
        e.uint(self.timestamp_ms);
        e.uint(key::TTL);
        e.uint(self.ttl_ms);
        e.uint(key::IDENTITY);
        e.bytes(&self.identity);
        if !self.anchors.is_empty() {
            e.uint(key::ANCHORS);
            // Keys in bytewise order of their encodings: registered numbers first.
            let mut entries: Vec<(Vec<u8>, &[u8; 8])> = self
                .anchors
                .iter()
                .map(|(name, tag)| {
                    let mut k = Encoder::default();
                    match chain_code(name) {
                        Some(c) => k.uint(c),
                        None => k.text(name),
                    }
                    (k.buf, tag)
                })
                .collect();
            entries.sort();
            e.map(entries.len());
            for (k, tag) in entries {
                e.buf.extend_from_slice(&k);
                e.bytes(tag);
            }
        }
        if let Some(t) = &self.time_evidence {
            e.uint(key::TIME);
            e.array(3);
            e.int(t.offset_ms);
            e.uint(u64::from(t.servers_agreed));
            e.uint(u64::from(t.servers_queried));
        }
        if let Some(u) = &self.user_data {
            e.uint(key::USER);
            // User data is checked to have a JCS form before it gets here (content check
            // or the decoder), so this is never empty.
            e.text(&jcs(&serde_json::Value::Object(u.clone())).unwrap_or_default());
        }
        if let Some(s) = sealed {
            e.uint(key::ENC);
            e.array(3);
            e.text(&s.key_id);
            e.bytes(&s.nonce);
            e.bytes(&s.ciphertext);
        }
        e.buf
    }

    fn decode(bytes: &[u8]) -> Result<CompactPayload, FrameError> {
        let mut d = Decoder::new(bytes);
        let n = d.map(10).map_err(cbor("payload"))?;
        let mut p = CompactPayload {
            key_id: None,
            sequence: 0,
            timestamp_ms: 0,
            ttl_ms: 0,
            identity: Vec::new(),
            anchors: BTreeMap::new(),
            time_evidence: None,
            user_data: None,
            sealed: None,
        };
        let mut last: Option<u64> = None;
        let mut seen = [false; 10];
        for _ in 0..n {
            let k = d.uint().map_err(cbor("payload key"))?;
            if last.is_some_and(|l| k <= l) {
                return Err(malformed("payload keys out of order or repeated"));
            }
            last = Some(k);
            match k {
                key::VERSION => {
                    let v = d.uint().map_err(cbor("version"))?;
                    if v != COMPACT_VERSION {
                        return Err(malformed(format!("unsupported payload version {v}")));
                    }
                }
                key::KID => {
                    let b = d.bytes(8).map_err(cbor("key id"))?;
                    let arr: [u8; 8] = b.try_into().map_err(|_| malformed("key id length"))?;
                    p.key_id = Some(KeyId(arr));
                }
                key::SEQ => p.sequence = d.uint().map_err(cbor("sequence"))?,
                key::TS => {
                    p.timestamp_ms = d.uint().map_err(cbor("timestamp"))?;
                    if p.timestamp_ms > MAX_TIMESTAMP_MS {
                        return Err(malformed("timestamp after year 9999"));
                    }
                }
                key::TTL => {
                    p.ttl_ms = d.uint().map_err(cbor("ttl"))?;
                    if p.ttl_ms == 0 || p.ttl_ms > MAX_TTL_MS {
                        return Err(malformed("ttl outside 1 ms to 1 day"));
                    }
                }
                key::IDENTITY => {
                    let b = d.bytes(64).map_err(cbor("identity"))?;
                    if b.len() < 8 {
                        return Err(malformed("identity hash shorter than 8 bytes"));
                    }
                    p.identity = b.to_vec();
                }
                key::ANCHORS => p.anchors = decode_anchors(&mut d)?,
                key::TIME => {
                    if d.array(3).map_err(cbor("time evidence"))? != 3 {
                        return Err(malformed("time evidence is [offset, agreed, queried]"));
                    }
                    let offset_ms = d.int().map_err(cbor("time offset"))?;
                    let to32 = |v: u64| u32::try_from(v).map_err(|_| malformed("server count"));
                    let servers_agreed = to32(d.uint().map_err(cbor("servers agreed"))?)?;
                    let servers_queried = to32(d.uint().map_err(cbor("servers queried"))?)?;
                    if servers_agreed > servers_queried {
                        return Err(malformed("more servers agreed than were queried"));
                    }
                    p.time_evidence = Some(TimeEvidence {
                        offset_ms,
                        servers_agreed,
                        servers_queried,
                    });
                }
                key::USER => {
                    let t = d.text(MAX_USER_DATA).map_err(cbor("user data"))?;
                    p.user_data = Some(parse_user_json(t)?);
                }
                key::ENC => {
                    if d.array(3).map_err(cbor("encrypted data"))? != 3 {
                        return Err(malformed("encrypted data is [key, nonce, ciphertext]"));
                    }
                    let key_id = d.text(32).map_err(cbor("data key id"))?.to_owned();
                    let nonce: [u8; 12] = d
                        .bytes(12)
                        .map_err(cbor("nonce"))?
                        .try_into()
                        .map_err(|_| malformed("nonce is 12 bytes"))?;
                    let ct = d.bytes(MAX_USER_DATA + 16).map_err(cbor("ciphertext"))?;
                    if ct.len() < 16 {
                        return Err(malformed("ciphertext shorter than its tag"));
                    }
                    p.sealed = Some(SealedData {
                        key_id,
                        nonce,
                        ciphertext: ct.to_vec(),
                    });
                }
                other => return Err(malformed(format!("unknown payload key {other}"))),
            }
            if let Some(s) = seen.get_mut(k as usize) {
                *s = true;
            }
        }
        if !d.is_at_end() {
            return Err(malformed("trailing bytes after the payload"));
        }
        for (k, name) in [
            (key::VERSION, "version"),
            (key::SEQ, "sequence"),
            (key::TS, "timestamp"),
            (key::TTL, "ttl"),
            (key::IDENTITY, "identity"),
        ] {
            if !seen[k as usize] {
                return Err(malformed(format!("payload lacks its {name}")));
            }
        }
        if p.user_data.is_some() && p.sealed.is_some() {
            return Err(malformed("user data both plain and encrypted"));
        }
        Ok(p)
    }
}

fn decode_anchors(d: &mut Decoder<'_>) -> Result<BTreeMap<String, [u8; 8]>, FrameError> {
    let n = d.map(MAX_ANCHORS).map_err(cbor("anchors"))?;
    if n == 0 {
        return Err(malformed("empty anchor map (leave it out)"));
    }
    let mut out = BTreeMap::new();
    let mut prev: Option<&[u8]> = None;
    for _ in 0..n {
        let start = d.position();
        let name = if d.next_is_uint().map_err(cbor("anchor chain"))? {
            let c = d.uint().map_err(cbor("anchor chain"))?;
            REGISTERED_CHAINS
                .iter()
                .find(|(code, _)| *code == c)
                .map(|(_, n)| (*n).to_owned())
                .ok_or_else(|| malformed(format!("unknown chain number {c}")))?
        } else {
            let t = d.text(32).map_err(cbor("anchor chain"))?;
            if t.is_empty() || chain_code(t).is_some() {
                return Err(malformed("chain name empty or not in its registered form"));
            }
            t.to_owned()
        };
        let key_bytes = d.key_bytes_after(start);
        if prev.is_some_and(|p| key_bytes <= p) {
            return Err(malformed("anchor keys out of order or repeated"));
        }
        prev = Some(key_bytes);
        let tag: [u8; 8] = d
            .bytes(8)
            .map_err(cbor("anchor tag"))?
            .try_into()
            .map_err(|_| malformed("anchor tag is 8 bytes"))?;
        out.insert(name, tag);
    }
    Ok(out)
}

/// Parses user data JSON: an object, no duplicate keys, written in its JCS form (so the
/// text of a frame is unique).
pub(crate) fn parse_user_json(t: &str) -> Result<UserData, FrameError> {
    let m = match serde_json::from_str::<crate::json::StrictValue>(t) {
        Ok(crate::json::StrictValue(serde_json::Value::Object(m))) => m,
        _ => return Err(malformed("user data is not a JSON object")),
    };
    let v = serde_json::Value::Object(m);
    if jcs(&v).ok().as_deref() != Some(t) {
        return Err(malformed(
            "user data is not in its canonical (RFC 8785) form",
        ));
    }
    match v {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(malformed("user data is not a JSON object")),
    }
}

fn cbor(what: &'static str) -> impl Fn(CborError) -> FrameError {
    move |e| malformed(format!("{what}: {e:?}"))
}

/// The signed message: label, suite id, then the encoded payload and HMAC items.
pub(crate) fn signed_message(suite: Suite, signed_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL_SIG.len() + 1 + signed_bytes.len());
    m.extend_from_slice(LABEL_SIG);
    m.push(suite.id());
    m.extend_from_slice(signed_bytes);
    m
}

/// Builds and encodes a compact frame.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal<R: RngCore + CryptoRng>(
    content: &FrameContent,
    identity: &SigningIdentity,
    identity_hash: &[u8],
    suite: Option<Suite>,
    hmac: Option<&HmacKey>,
    encrypt: Option<&DataKey>,
    rng: &mut R,
) -> Result<String, FrameError> {
    content.check()?;
    let key_id = match suite {
        Some(s) => Some(identity.key_id(s).ok_or(FrameError::SuiteUnavailable(s))?),
        None => None,
    };
    let anchors = content
        .anchors
        .iter()
        .map(|(c, h)| Ok((c.clone(), anchor_tag(h)?)))
        .collect::<Result<BTreeMap<_, _>, FrameError>>()?;
    let mut p = CompactPayload {
        key_id,
        sequence: content.sequence,
        timestamp_ms: content.timestamp_ms,
        ttl_ms: content.ttl_ms,
        identity: identity_hash[..COMPACT_IDENTITY_LEN].to_vec(),
        anchors,
        time_evidence: content.time_evidence,
        user_data: content.user_data.clone(),
        sealed: None,
    };
    if let Some((key, user)) = encrypt.and_then(|k| Some((k, p.user_data.take()?))) {
        // The AAD is the payload as it will be, minus key 9 (and key 8, now taken).
        let aad = [LABEL_AAD, &p.encode(false)].concat();
        let plain = jcs(&serde_json::Value::Object(user))?;
        let (nonce, ciphertext) = key.seal(&aad, plain.as_bytes(), rng)?;
        p.sealed = Some(SealedData {
            key_id: key.id().to_owned(),
            nonce,
            ciphertext,
        });
    }
    let payload = p.encode(true);
    // [payload, hmac, signature]: the signature covers the first two items as encoded.
    let mut e = Encoder::default();
    e.array(3);
    let signed_from = e.buf.len();
    e.bytes(&payload);
    match hmac {
        Some(k) => {
            let tag = k.tag(LABEL_HMAC, &payload);
            e.array(2);
            e.text(k.id());
            e.bytes(&tag[..COMPACT_HMAC_LEN]);
        }
        None => e.null(),
    }
    match suite {
        Some(s) => {
            let msg = signed_message(s, &e.buf[signed_from..]);
            let sigs = identity.sign(s, &msg, rng)?;
            e.array(1 + sigs.len());
            e.uint(u64::from(s.id()));
            for sig in &sigs {
                e.bytes(sig);
            }
        }
        None => e.null(),
    }
    let mut out = String::from(COMPACT_PREFIX);
    crate::base45::encode_into(&e.buf, &mut out);
    Ok(out)
}

impl CompactFrame {
    /// Decodes a compact frame text (with its prefix). Strict: see the module docs.
    ///
    /// ```
    /// assert!(qrlp_live::CompactFrame::decode("QL2:ZZZ").is_err());
    /// ```
    pub fn decode(text: &str) -> Result<CompactFrame, FrameError> {
        if text.len() > crate::MAX_FRAME_TEXT {
            return Err(malformed("frame text too long"));
        }
        let body = text
            .strip_prefix(COMPACT_PREFIX)
            .ok_or_else(|| malformed("missing QL2: prefix"))?;
        let bytes = crate::base45::decode(body).ok_or_else(|| malformed("invalid base45"))?;
        let mut d = Decoder::new(&bytes);
        if d.array(3).map_err(cbor("frame"))? != 3 {
            return Err(malformed("a frame is [payload, hmac, signature]"));
        }
        let signed_from = d.position();
        let payload_bytes = d.bytes(crate::MAX_FRAME_TEXT).map_err(cbor("payload"))?;
        let payload = CompactPayload::decode(payload_bytes)?;
        let hmac = if d.null().map_err(cbor("hmac"))? {
            None
        } else {
            if d.array(2).map_err(cbor("hmac"))? != 2 {
                return Err(malformed("hmac is [key name, tag]"));
            }
            let id = d.text(32).map_err(cbor("hmac key"))?.to_owned();
            let tag = d.bytes(32).map_err(cbor("hmac tag"))?;
            if tag.len() != COMPACT_HMAC_LEN {
                return Err(malformed("hmac tag is 16 bytes"));
            }
            Some((id, tag.to_vec()))
        };
        let signed_bytes = d.key_bytes_after(signed_from).to_vec();
        let mut unknown_suite = None;
        let signature = if d.null().map_err(cbor("signature"))? {
            None
        } else {
            let n = d.array(3).map_err(cbor("signature"))?;
            let id = d.uint().map_err(cbor("suite"))?;
            match Suite::from_id(id) {
                Some(suite) => {
                    let lens = suite.signature_lens();
                    if n != 1 + lens.len() {
                        return Err(malformed("wrong number of signatures for the suite"));
                    }
                    let mut sigs = Vec::with_capacity(lens.len());
                    for &len in lens {
                        let s = d.bytes(len).map_err(cbor("signature bytes"))?;
                        if s.len() != len {
                            return Err(malformed("signature length"));
                        }
                        sigs.push(s.to_vec());
                    }
                    Some((suite, sigs))
                }
                None => {
                    // A suite this verifier does not know: read its signatures so the
                    // frame is well formed, and let the verifier refuse the algorithm.
                    if n < 2 {
                        return Err(malformed("a signature needs at least one value"));
                    }
                    for _ in 1..n {
                        d.bytes(crate::MAX_FRAME_TEXT)
                            .map_err(cbor("signature bytes"))?;
                    }
                    unknown_suite = Some(id);
                    None
                }
            }
        };
        if !d.is_at_end() {
            return Err(malformed("trailing bytes after the frame"));
        }
        let signed = signature.is_some() || unknown_suite.is_some();
        if signed != payload.key_id.is_some() {
            return Err(malformed(
                "a key id goes with a signature and only with one",
            ));
        }
        Ok(CompactFrame {
            payload,
            payload_bytes: payload_bytes.to_vec(),
            signed_bytes,
            signature,
            unknown_suite,
            hmac,
        })
    }
}

impl CompactFrame {
    /// The seed's `QRData` of this frame: what it says, in the JSON format's fields, without
    /// a signature or HMAC value (those are the compact frame's own). A compact frame
    /// carries only the first 16 bytes of the identity hash and the tags of its anchors, so
    /// the caller gives the full identity hash (the signing key's, [`crate::identity_hash`])
    /// and the block hashes; [`CompactFrame::anchors_agree`] checks them against the tags.
    /// Encrypted user data is left out (`_encrypted_fields` says it is there).
    pub fn describe(
        &self,
        identity_hash: &[u8],
        block_hashes: &BTreeMap<String, String>,
    ) -> crate::QrData {
        let p = &self.payload;
        let sealed = p.sealed.as_ref();
        crate::QrData {
            timestamp: crate::format_timestamp(p.timestamp_ms),
            identity_hash: crate::text::hex(identity_hash),
            blockchain_hashes: block_hashes.clone(),
            time_server_verification: p
                .time_evidence
                .map(|t| t.to_json_object())
                .unwrap_or_default(),
            user_data: p.user_data.clone(),
            sequence_number: p.sequence,
            digital_signature: None,
            signing_key_id: p.key_id.map(|k| k.to_string()),
            signature_algorithm: self.signature.as_ref().map(|(s, _)| s.name().to_owned()),
            hmac: None,
            hmac_key_id: self.hmac.as_ref().map(|(name, _)| name.clone()),
            hmac_algorithm: self
                .hmac
                .as_ref()
                .map(|_| crate::JSON_HMAC_ALGORITHM.to_owned()),
            integrity_checked_at: None,
            encrypted_fields: sealed.map(|_| vec![crate::ENCRYPTED_USER_DATA.to_owned()]),
            encryption_key_id: sealed.map(|s| s.key_id.clone()),
            data_key_id: None,
        }
    }

    /// Whether `block_hashes` names exactly the frame's anchored chains, each with a block
    /// hash whose [`anchor_tag`] is the frame's tag.
    pub fn anchors_agree(&self, block_hashes: &BTreeMap<String, String>) -> bool {
        block_hashes.len() == self.payload.anchors.len()
            && block_hashes.iter().all(|(chain, hash)| {
                self.payload
                    .anchors
                    .get(chain)
                    .is_some_and(|tag| anchor_tag(hash).is_ok_and(|t| t == *tag))
            })
    }
}
