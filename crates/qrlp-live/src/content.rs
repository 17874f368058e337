//! What a frame says, independent of its format.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::malformed;
use crate::text::unhex;
use crate::FrameError;

/// User data: a JSON object (the seed's `user_data` dict, e.g. `{"user_text": "..."}`).
pub type UserData = Map<String, Value>;

/// The longest frame text either decoder accepts, in bytes. A QR symbol holds at most 4296
/// alphanumeric characters or 2953 bytes, so longer input cannot have come from one.
pub const MAX_FRAME_TEXT: usize = 8192;

/// The longest validity a frame may declare: one day, in ms.
pub const MAX_TTL_MS: u64 = 86_400_000;

/// The longest user data (its canonical JSON) a frame carries, in bytes.
pub const MAX_USER_DATA: usize = 2048;

/// A summary of the issuer's time evidence (SNTP): the measured offset of the local clock
/// from the servers' median, and how many servers answered and agreed. Advisory only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeEvidence {
    /// Server time minus local time, ms (the offset the issuer applied or measured).
    pub offset_ms: i64,
    /// Servers whose answers agreed with the median within the issuer's tolerance.
    pub servers_agreed: u32,
    /// Servers asked.
    pub servers_queried: u32,
}

impl TimeEvidence {
    /// The JSON object of the seed's `time_server_verification` field.
    pub fn to_json_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("offset_ms".into(), self.offset_ms.into());
        m.insert("servers_agreed".into(), self.servers_agreed.into());
        m.insert("servers_queried".into(), self.servers_queried.into());
        m
    }

    /// Reads the object written by [`TimeEvidence::to_json_object`]; `None` if it lacks
    /// those fields (a seed client may put anything there).
    pub fn from_json_object(m: &Map<String, Value>) -> Option<TimeEvidence> {
        let u32_of = |k: &str| m.get(k)?.as_u64().and_then(|v| u32::try_from(v).ok());
        Some(TimeEvidence {
            offset_ms: m.get("offset_ms")?.as_i64()?,
            servers_agreed: u32_of("servers_agreed")?,
            servers_queried: u32_of("servers_queried")?,
        })
    }
}

/// Everything an issuer puts in one frame, before signing and encoding.
///
/// The compact format carries `identity_hash` cut to its first 16 bytes and each anchor as
/// its 8-byte tag ([`anchor_tag`]); the JSON format carries both in full.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FrameContent {
    /// Issuer's sequence number; must not repeat within a ttl (verifiers detect replays by
    /// identity and sequence).
    pub sequence: u64,
    /// Creation time, ms since the Unix epoch (UTC).
    pub timestamp_ms: u64,
    /// Validity from `timestamp_ms`, ms (1 ms to [`MAX_TTL_MS`]). JSON frames do not carry
    /// it (the seed's format has no such field); their verifier applies its own.
    pub ttl_ms: u64,
    /// Leave empty: the generator writes the identity hash of its signing key
    /// ([`crate::identity_hash`], the one definition), which verifiers recompute from the
    /// key set. A non-empty value must equal it.
    pub identity_hash: Vec<u8>,
    /// Chain name → latest block hash as fetched (hex, `0x` allowed), e.g. `"bitcoin"`.
    pub anchors: BTreeMap<String, String>,
    /// The issuer's time evidence, if any.
    pub time_evidence: Option<TimeEvidence>,
    /// User data, if any.
    pub user_data: Option<UserData>,
}

impl FrameContent {
    pub(crate) fn check(&self) -> Result<(), FrameError> {
        let bad = |m: &str| Err(FrameError::InvalidContent(m.into()));
        if self.timestamp_ms > crate::text::MAX_TIMESTAMP_MS {
            return bad("timestamp after year 9999");
        }
        if self.ttl_ms == 0 || self.ttl_ms > MAX_TTL_MS {
            return bad("ttl must be 1 ms to 1 day");
        }
        if self.anchors.len() > MAX_ANCHORS {
            return bad("at most 8 anchors");
        }
        for (chain, hash) in &self.anchors {
            if !(1..=32).contains(&chain.len()) {
                return bad("a chain name is 1 to 32 bytes");
            }
            anchor_tag(hash).map_err(|_| {
                FrameError::InvalidContent(format!("anchor {chain:?}: not a block hash"))
            })?;
        }
        if let Some(t) = &self.time_evidence {
            if t.servers_agreed > t.servers_queried {
                return bad("more servers agreed than were queried");
            }
        }
        if let Some(u) = &self.user_data {
            if crate::jcs::jcs(&Value::Object(u.clone()))?.len() > MAX_USER_DATA {
                return bad("user data over 2048 bytes");
            }
        }
        Ok(())
    }
}

/// The most anchors a frame carries.
pub(crate) const MAX_ANCHORS: usize = 8;

/// The 8-byte anchor tag of a block hash: the last 8 bytes of the hash as written in hex
/// (an optional `0x` prefix is ignored). The end is used because Bitcoin-style hashes are
/// written with their leading zero bytes (the proof of work) first.
///
/// An evidence adapter compares this tag with the tags of the heads it has seen.
///
/// ```
/// let t = qrlp_live::anchor_tag("00000000000000000001a2b3c4d5e6f70011223344556677")?;
/// assert_eq!(t, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
/// assert!(qrlp_live::anchor_tag("0x1234").is_err());
/// # Ok::<(), qrlp_live::FrameError>(())
/// ```
pub fn anchor_tag(hash: &str) -> Result<[u8; 8], FrameError> {
    let h = hash
        .strip_prefix("0x")
        .or_else(|| hash.strip_prefix("0X"))
        .unwrap_or(hash);
    if h.len() > 128 {
        return Err(malformed("block hash longer than 64 bytes"));
    }
    let bytes = unhex(h).ok_or_else(|| malformed("block hash is not hex"))?;
    let start = bytes
        .len()
        .checked_sub(8)
        .ok_or_else(|| malformed("block hash shorter than 8 bytes"))?;
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&bytes[start..]);
    Ok(tag)
}
