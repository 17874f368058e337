//! The replay cache: a (device, nonce) pair is accepted once within the timestamp window.
//!
//! Entries live until their request's timestamp leaves the window (`timestamp + tolerance`);
//! after that the timestamp check refuses the request anyway. The cache is bounded: when
//! it holds `max_entries` live entries it refuses new requests ([`Rejection::ReplayCacheFull`])
//! rather than forget one, because forgetting would let a replay through. At the product's
//! device limit of 100 requests a minute, 10 minutes of window hold 1,000 entries per
//! device. The cache is per process; see `docs/fleet.md` for several processes.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sha256;
use crate::signing::Rejection;

const SHARDS: usize = 16;

/// A bounded, sharded set of recently seen (device, nonce) pairs.
pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    max_per_shard: usize,
}

#[derive(Default)]
struct Shard {
    /// Fingerprint → Unix second after which the entry may be dropped.
    seen: HashMap<[u8; 16], i64>,
    next_sweep: i64,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl ReplayCache {
    /// A cache holding at most `max_entries` live entries (at least one per shard).
    pub fn new(max_entries: usize) -> ReplayCache {
        ReplayCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_per_shard: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    /// Records the pair, or refuses it when it was seen and has not expired.
    ///
    /// # Errors
    /// [`Rejection::Replayed`]; [`Rejection::ReplayCacheFull`] when no room is left.
    pub fn check_and_remember(
        &self,
        device_id: &str,
        nonce: &str,
        timestamp: i64,
        now: i64,
        tolerance: i64,
    ) -> Result<(), Rejection> {
        let mut input = Vec::with_capacity(device_id.len() + nonce.len() + 1);
        input.extend_from_slice(device_id.as_bytes());
        input.push(0);
        input.extend_from_slice(nonce.as_bytes());
        let digest = sha256(&input);
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&digest[..16]);
        let shard = &self.shards[usize::from(fp[0]) % SHARDS];
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&exp) = s.seen.get(&fp) {
            if exp >= now {
                return Err(Rejection::Replayed);
            }
        }
        if now >= s.next_sweep || s.seen.len() >= self.max_per_shard {
            s.seen.retain(|_, exp| *exp >= now);
            s.next_sweep = now + 10;
        }
        if s.seen.len() >= self.max_per_shard {
            return Err(Rejection::ReplayCacheFull);
        }
        s.seen.insert(fp, timestamp.saturating_add(tolerance));
        Ok(())
    }

    /// Number of entries held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).seen.len())
            .sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_accepted_once_within_the_window() {
        let c = ReplayCache::new(1000);
        assert_eq!(c.check_and_remember("dev_a", "n1", 100, 100, 300), Ok(()));
        assert_eq!(
            c.check_and_remember("dev_a", "n1", 100, 350, 300),
            Err(Rejection::Replayed)
        );
        // another device may use the same nonce
        assert_eq!(c.check_and_remember("dev_b", "n1", 100, 100, 300), Ok(()));
        // after the window the entry goes (the timestamp check refuses the request then)
        assert_eq!(c.check_and_remember("dev_a", "n1", 100, 401, 300), Ok(()));
    }

    #[test]
    fn a_full_cache_refuses_instead_of_forgetting() {
        let c = ReplayCache::new(16);
        let mut refused = 0;
        for i in 0..200 {
            match c.check_and_remember("dev_a", &format!("nonce{i}"), 100, 100, 300) {
                Ok(()) => {}
                Err(Rejection::ReplayCacheFull) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(refused > 0);
        assert!(c.len() <= 16);
        // every accepted pair is still refused as a replay
        assert_eq!(
            c.check_and_remember("dev_a", "nonce0", 100, 100, 300),
            Err(Rejection::Replayed)
        );
        // once the window passes there is room again
        assert_eq!(c.check_and_remember("dev_a", "late", 500, 500, 300), Ok(()));
    }
}
