//! # qrlp-chain: one-time "morphing" QR chains
//!
//! A chain of length `N` is a sequence of 32-byte values `v_0 … v_N` where each value is
//! the hash of the one before it (S/Key, Lamport 1981), domain-separated so that nothing
//! can be precomputed across chains or positions:
//!
//! ```text
//! v_0 = SHA-256( "qrlp-chain/v1/start" ‖ chain_id ‖ seed )
//! v_i = SHA-256( "qrlp-chain/v1/step"  ‖ chain_id ‖ i ‖ v_(i-1) )     for 1 ≤ i ≤ N
//! ```
//!
//! where each tag is preceded by its length as one byte, `chain_id` is a big-endian `u64`,
//! `i` a big-endian `u32` and `seed` 32 random bytes. The values are shown in reverse
//! order: `v_(N-1)` first (index `N-1`, the seed document's `currentIndex` of a new chain),
//! `v_0` last. `v_N`, the **anchor**, is never shown; it is the first "last accepted value".
//!
//! A candidate `c` for index `k` is accepted when `step(chain_id, k + 1, c)` equals the
//! last accepted value (the anchor for the first scan). Anyone who knows the chain id, the
//! index and the last accepted value can check a candidate offline; nobody can produce the
//! next value from the last accepted one (that would be a SHA-256 preimage).
//!
//! The issuer keeps [`Checkpoints`], every [`CHECKPOINT_INTERVAL`]-th value from `v_0`, so
//! producing any value costs at most `CHECKPOINT_INTERVAL - 1` hashes (a few microseconds)
//! instead of a walk from the seed. Checkpoints reveal every value, so they are a secret
//! (the server seals them with its data key).
//!
//! This crate does no I/O and takes its randomness (the seed) from the caller.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest chain.
pub const MIN_LENGTH: u32 = 10;
/// Longest chain.
pub const MAX_LENGTH: u32 = 10_000;
/// Distance between two checkpoints.
pub const CHECKPOINT_INTERVAL: u32 = 64;

const TAG_START: &[u8] = b"qrlp-chain/v1/start";
const TAG_STEP: &[u8] = b"qrlp-chain/v1/step";

/// One value of a chain.
pub type Value = [u8; 32];

/// Why a chain or a value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The length is outside 10..=10,000.
    #[error("chainLength must be between {MIN_LENGTH} and {MAX_LENGTH}")]
    Length,
    /// The index is not below the chain's length.
    #[error("index {0} is outside the chain")]
    Index(u32),
    /// Serialized checkpoints do not have the expected size.
    #[error("checkpoints are corrupt")]
    Corrupt,
}

fn tagged(tag: &[u8], chain_id: u64) -> Sha256 {
    let mut h = Sha256::new();
    h.update([u8::try_from(tag.len()).unwrap_or(u8::MAX)]);
    h.update(tag);
    h.update(chain_id.to_be_bytes());
    h
}

/// `v_0` of chain `chain_id` for `seed`.
pub fn start(chain_id: u64, seed: &[u8; 32]) -> Value {
    let mut h = tagged(TAG_START, chain_id);
    h.update(seed);
    h.finalize().into()
}

/// `v_index` from `v_(index-1)`: one step of the chain.
pub fn step(chain_id: u64, index: u32, previous: &Value) -> Value {
    let mut h = tagged(TAG_STEP, chain_id);
    h.update(index.to_be_bytes());
    h.update(previous);
    h.finalize().into()
}

/// Whether `candidate` is the value at `index` of chain `chain_id`, given the last accepted
/// value (the value at `index + 1`, or the anchor when `index` is the first shown). Constant
/// time in the compared bytes.
pub fn verify(chain_id: u64, index: u32, candidate: &Value, last_accepted: &Value) -> bool {
    let Some(next) = index.checked_add(1) else {
        return false;
    };
    step(chain_id, next, candidate).ct_eq(last_accepted).into()
}

/// Lowercase hex of a value: the chain's `hashValue`.
pub fn to_hex(v: &Value) -> String {
    hex::encode(v)
}

/// A value from its `hashValue`: exactly 64 hex digits (either case). `None` otherwise.
pub fn from_hex(s: &str) -> Option<Value> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// The secret from which every value of one chain can be produced quickly: `v_0`,
/// `v_64`, `v_128`, … up to `v_N`.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoints {
    chain_id: u64,
    length: u32,
    points: Vec<Value>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("chain_id", &self.chain_id)
            .field("length", &self.length)
            .field("points", &"<secret>")
            .finish()
    }
}

impl Checkpoints {
    /// Builds the chain of `length` values of `chain_id` from `seed` (`length` hashes).
    ///
    /// # Errors
    /// [`ChainError::Length`] outside 10..=10,000.
    pub fn generate(chain_id: u64, length: u32, seed: &[u8; 32]) -> Result<Self, ChainError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(ChainError::Length);
        }
        let mut points = Vec::with_capacity((length / CHECKPOINT_INTERVAL + 2) as usize);
        let mut v = start(chain_id, seed);
        points.push(v);
        for i in 1..=length {
            v = step(chain_id, i, &v);
            if i.is_multiple_of(CHECKPOINT_INTERVAL) || i == length {
                points.push(v);
            }
        }
        Ok(Checkpoints {
            chain_id,
            length,
            points,
        })
    }

    /// The chain's id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Number of values that can be shown (`N`).
    pub fn length(&self) -> u32 {
        self.length
    }

    /// `v_N`, the value the first shown one is checked against. Not secret.
    pub fn anchor(&self) -> Value {
        self.points.last().copied().unwrap_or([0; 32])
    }

    /// The value at `index` (0 ≤ index < N): at most 63 hashes from the checkpoint below.
    ///
    /// # Errors
    /// [`ChainError::Index`] when `index >= N`.
    pub fn value(&self, index: u32) -> Result<Value, ChainError> {
        if index >= self.length {
            return Err(ChainError::Index(index));
        }
        let base = index / CHECKPOINT_INTERVAL;
        let mut v = *self.points.get(base as usize).ok_or(ChainError::Corrupt)?;
        for i in base * CHECKPOINT_INTERVAL + 1..=index {
            v = step(self.chain_id, i, &v);
        }
        Ok(v)
    }

    /// The checkpoints as bytes (`32 × count`), to be sealed before storing.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.points.concat()
    }

    /// Checkpoints read back from [`Checkpoints::to_bytes`] for the chain `chain_id` of
    /// `length`.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] when the size does not fit the length;
    /// [`ChainError::Length`] for a bad length.
    pub fn from_bytes(chain_id: u64, length: u32, bytes: &[u8]) -> Result<Self, ChainError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(ChainError::Length);
        }
        let count = Self::count_for(length);
        if bytes.len() != count * 32 {
            return Err(ChainError::Corrupt);
        }
        let points = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut v = [0u8; 32];
                v.copy_from_slice(c);
                v
            })
            .collect();
        Ok(Checkpoints {
            chain_id,
            length,
            points,
        })
    }

    fn count_for(length: u32) -> usize {
        let full = length / CHECKPOINT_INTERVAL;
        let extra = u32::from(!length.is_multiple_of(CHECKPOINT_INTERVAL));
        (1 + full + extra) as usize
    }
}

/// Index arithmetic of the seed document, in one place.
///
/// A chain of length `N` starts at `currentIndex = N - 1` with `remaining = N`; each valid
/// scan lowers both by one; after the scan of index 0 the chain is exhausted
/// (`remaining = 0`; the stored index is then -1).
pub mod progress {
    /// `remaining` for a stored `current_index` (-1 when exhausted).
    pub fn remaining(current_index: i64) -> i64 {
        (current_index + 1).max(0)
    }

    /// Valid scans so far.
    pub fn scanned(length: i64, current_index: i64) -> i64 {
        length - remaining(current_index)
    }

    /// `percentComplete`: scanned / length × 100 with one decimal, as the seed's `"0.2"`.
    pub fn percent_complete(length: i64, current_index: i64) -> String {
        if length <= 0 {
            return "0.0".to_string();
        }
        // Tenths of a percent, rounded half up, in integers so no float formatting differs.
        let scanned = scanned(length, current_index);
        let tenths = (scanned * 1000 * 2 + length) / (2 * length);
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value `v_0 ..= v_length` by walking from the seed.
    fn walk(chain_id: u64, seed: &[u8; 32], length: u32) -> Vec<Value> {
        let mut out = vec![start(chain_id, seed)];
        for i in 1..=length {
            let next = step(chain_id, i, &out[out.len() - 1]);
            out.push(next);
        }
        out
    }

    #[test]
    fn checkpoints_give_the_walked_values() {
        for length in [10, 63, 64, 65, 128, 500, 1000] {
            let seed = [7u8; 32];
            let c = Checkpoints::generate(42, length, &seed).unwrap();
            let walked = walk(42, &seed, length);
            for i in 0..length {
                assert_eq!(
                    c.value(i).unwrap(),
                    walked[i as usize],
                    "len {length} i {i}"
                );
            }
            assert_eq!(c.anchor(), walked[length as usize]);
            assert!(c.value(length).is_err());
            let back = Checkpoints::from_bytes(42, length, &c.to_bytes()).unwrap();
            assert_eq!(back, c);
            assert!(Checkpoints::from_bytes(42, length, &c.to_bytes()[1..]).is_err());
        }
    }

    #[test]
    fn each_value_verifies_against_the_one_shown_before() {
        let c = Checkpoints::generate(9, 100, &[1; 32]).unwrap();
        let mut last = c.anchor();
        for k in (0..100).rev() {
            let v = c.value(k).unwrap();
            assert!(verify(9, k, &v, &last));
            // Not at another index, not for another chain, not an older value.
            assert!(!verify(9, k.wrapping_sub(1), &v, &last));
            assert!(!verify(10, k, &v, &last));
            assert!(!verify(9, k, &last, &last));
            last = v;
        }
    }

    #[test]
    fn chains_differ_by_id_and_seed() {
        let a = Checkpoints::generate(1, 10, &[0; 32]).unwrap();
        let b = Checkpoints::generate(2, 10, &[0; 32]).unwrap();
        let c = Checkpoints::generate(1, 10, &[1; 32]).unwrap();
        assert_ne!(a.value(9).unwrap(), b.value(9).unwrap());
        assert_ne!(a.value(9).unwrap(), c.value(9).unwrap());
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(
            Checkpoints::generate(1, 9, &[0; 32]).unwrap_err(),
            ChainError::Length
        );
        assert_eq!(
            Checkpoints::generate(1, 10_001, &[0; 32]).unwrap_err(),
            ChainError::Length
        );
    }

    #[test]
    fn hex_round_trip() {
        let v = [0xabu8; 32];
        let s = to_hex(&v);
        assert_eq!(s.len(), 64);
        assert_eq!(from_hex(&s), Some(v));
        assert_eq!(from_hex(&s.to_uppercase()), Some(v));
        assert_eq!(from_hex(&s[1..]), None);
        assert_eq!(from_hex(&format!("{}g", &s[1..])), None);
        assert_eq!(from_hex("é"), None);
    }

    #[test]
    fn seed_index_arithmetic() {
        use progress::*;
        // A new chain of 500: currentIndex 499, remaining 500.
        assert_eq!(remaining(499), 500);
        // After one scan: newIndex 498, remaining 499, scanned 1, "0.2".
        assert_eq!(remaining(498), 499);
        assert_eq!(scanned(500, 498), 1);
        assert_eq!(percent_complete(500, 498), "0.2");
        assert_eq!(percent_complete(500, 499), "0.0");
        assert_eq!(percent_complete(100, -1), "100.0");
        assert_eq!(percent_complete(3000, 2997), "0.1"); // 0.0667 rounds to 0.1
        assert_eq!(percent_complete(3000, 2998), "0.0"); // 0.0333
        assert_eq!(remaining(-1), 0);
    }

    /// The vector of docs/chains.md (computed there independently with Python's hashlib).
    #[test]
    fn vector() {
        let c = Checkpoints::generate(42, 10, &[0u8; 32]).unwrap();
        assert_eq!(
            to_hex(&c.value(0).unwrap()),
            "6c19e9dfa36e941682c733b54dc6af031defe54685f6db082331f830cae2824a"
        );
        assert_eq!(
            to_hex(&c.value(8).unwrap()),
            "9eff87c4df11c5113185c1b9f5777dd74b9bd51519c30a0fb698dd808bf3f4af"
        );
        assert_eq!(
            to_hex(&c.value(9).unwrap()),
            "d9b9129c21e4bbb064e4f1fb8fbc89a8688a67359209417a3bafd96eaf47f4d7"
        );
        assert_eq!(
            to_hex(&c.anchor()),
            "e80083c9a51a11832ad8c7439c8849d2e44053735c6ba4e33f756aed55af960b"
        );
        assert!(verify(42, 9, &c.value(9).unwrap(), &c.anchor()));
        assert!(verify(42, 8, &c.value(8).unwrap(), &c.value(9).unwrap()));
    }
}
