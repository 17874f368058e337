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
    /// Hash of the issuer's identity (16 to 64 bytes; SHA-256 = 32).
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
        if !(16..=64).contains(&self.identity_hash.len()) {
            return bad("identity hash must be 16 to 64 bytes");
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
            if canonical_json(&Value::Object(u.clone())).len() > MAX_USER_DATA {
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

/// Canonical JSON text of a value: no whitespace, object keys in bytewise order of their
/// UTF-8, strings escaped as serde_json does, numbers as serde_json prints them. The
/// ordering is done here, not by the map type, so it holds whatever serde_json features
/// another crate turns on.
pub(crate) fn canonical_json(v: &Value) -> String {
    let mut s = String::new();
    write_canonical(&mut s, v);
    s
}

pub(crate) fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                if let Some(v) = m.get(k) {
                    write_canonical(out, v);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, v);
            }
            out.push(']');
        }
        Value::String(s) => write_str(out, s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

pub(crate) fn write_str(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"z":[1,{"y":2,"x":"é\n"}],"c":null}}"#)
            .unwrap_or(Value::Null);
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"z":[1,{"x":"é\n","y":2}]},"b":1}"#
        );
    }
}
