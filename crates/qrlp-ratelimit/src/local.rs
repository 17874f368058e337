//! The in-process limiter: GCRA state in sharded maps, with bounded memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::gcra::{self, Params};
use crate::{Decision, Quota};

/// Independent maps; a key always lives in the same one. Spreads lock contention.
const SHARDS: usize = 64;
/// Every this many checks, one shard (round robin) drops the keys whose TAT has passed, so
/// each shard is swept once every `SHARDS * SWEEP_EVERY` = 4,096 checks.
const SWEEP_EVERY: u64 = 64;

/// The default cap on the number of keys a [`LocalLimiter`] tracks (about 100 MB at most).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

type Shard = HashMap<String, u64>;

/// In-process GCRA limiter. Cheap to share (`&self` everywhere; wrap it in an `Arc`).
///
/// **Memory bound.** A key is stored only while its TAT is in the future, i.e. for at most one
/// period after its last accepted request. Keys whose TAT has passed are forgotten (which
/// changes no decision: a passed TAT means a full budget) by a sweep of one shard every 64
/// checks, so every shard is swept at least once per 4,096 checks. Independently of time,
/// the number of keys never exceeds `max_keys` (rounded up to a multiple of 64): a shard that
/// is full when a new key arrives first forgets its passed TATs and, if still full, the
/// eighth of its keys with the earliest TATs (the keys closest to a full budget anyway), so a
/// flood of distinct keys costs bounded memory at the price of granting those keys their
/// budget early.
#[derive(Debug)]
pub struct LocalLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    checks: AtomicU64,
    max_per_shard: usize,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }
}

impl LocalLimiter {
    /// A limiter that tracks at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// A limiter that tracks at most `max_keys` keys (at least 64).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Counts a request for `key` at the current system time.
    pub fn check(&self, key: &str, quota: Quota) -> Decision {
        self.check_at(key, quota, now_us())
    }

    /// Counts a request for `key` at `now_us` (microseconds since the Unix epoch).
    ///
    /// An invalid quota is clamped to the nearest valid one (see [`Quota`]); use
    /// [`Quota::validate`] or [`crate::Limiter::check`] to reject it instead. A `now_us`
    /// earlier than a previous one never grants more than the stored state allows.
    pub fn check_at(&self, key: &str, quota: Quota, now_us: u64) -> Decision {
        let params = Params::clamped(quota);
        let decision = {
            let mut shard = lock(self.shard(key));
            match shard.get_mut(key) {
                Some(tat) => {
                    let step = gcra::step(params, Some(*tat), now_us);
                    if let Some(new_tat) = step.store {
                        *tat = new_tat;
                    }
                    step.decision
                }
                None => {
                    let step = gcra::step(params, None, now_us);
                    if let Some(new_tat) = step.store {
                        if shard.len() >= self.max_per_shard {
                            make_room(&mut shard, now_us, self.max_per_shard);
                        }
                        shard.insert(key.to_owned(), new_tat);
                    }
                    step.decision
                }
            }
        };
        self.maybe_sweep(now_us);
        decision
    }

    /// The number of keys currently tracked.
    pub fn tracked_keys(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // The modulo keeps the index below SHARDS, so the cast back to usize cannot truncate.
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        &self.shards[index]
    }

    fn maybe_sweep(&self, now_us: u64) {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if !n.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        let index = ((n / SWEEP_EVERY) % SHARDS as u64) as usize;
        // A shard that is busy is swept on a later round instead of waiting for it.
        let mut shard = match self.shards[index].try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        forget_passed(&mut shard, now_us);
    }
}

/// Forgets keys whose TAT is not in the future, and gives back memory after a large drop.
fn forget_passed(shard: &mut Shard, now_us: u64) {
    shard.retain(|_, tat| *tat > now_us);
    if shard.capacity() > 64 && shard.capacity() > 4 * shard.len() {
        shard.shrink_to(2 * shard.len());
    }
}

/// Frees at least one slot in a full shard.
fn make_room(shard: &mut Shard, now_us: u64, max: usize) {
    forget_passed(shard, now_us);
    if shard.len() < max {
        return;
    }
    let mut tats: Vec<u64> = shard.values().copied().collect();
    let cut = tats.len() / 8;
    let (_, threshold, _) = tats.select_nth_unstable(cut);
    let threshold = *threshold;
    shard.retain(|_, tat| *tat > threshold);
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // No code panics while holding a shard lock; if one ever did, its map is still a valid
    // map of TATs, so keep using it.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since the Unix epoch; 0 for a clock set before 1970.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const HOUR_US: u64 = 3_600_000_000;
    /// An arbitrary fixed start time (2026-01-01T00:00:00Z).
    const T0: u64 = 1_767_225_600_000_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Checks `key` at each time and returns the decisions.
    fn run(limiter: &LocalLimiter, key: &str, quota: Quota, times: &[u64]) -> Vec<Decision> {
        times
            .iter()
            .map(|&t| limiter.check_at(key, quota, t))
            .collect()
    }

    #[test]
    fn exactly_limit_from_idle_then_refused() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(100);
        let decisions = run(&limiter, "org:a", quota, &[T0; 103]);
        let remaining: Vec<u32> = decisions[..100].iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, (0..100).rev().collect::<Vec<u32>>());
        for (i, d) in decisions[..100].iter().enumerate() {
            assert!(d.allowed && !d.degraded && d.retry_after.is_none(), "{i}");
            assert_eq!(d.limit, 100);
            // Each accepted request moves the TAT one interval (36 s) ahead.
            assert_eq!(d.reset_after, secs(36 * (i as u64 + 1)));
        }
        for d in &decisions[100..] {
            assert_eq!(
                *d,
                Decision {
                    allowed: false,
                    limit: 100,
                    remaining: 0,
                    reset_after: secs(3600),
                    retry_after: Some(secs(36)),
                    degraded: false,
                }
            );
        }
    }

    #[test]
    fn retry_after_and_reset_after_at_chosen_times() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(100); // T = 36 s
        run(&limiter, "k", quota, &[T0; 100]);
        // 10.5 s later: one cell frees at T0 + 36 s; 25.5 s to go, rounded up to 26 s.
        let d = limiter.check_at("k", quota, T0 + 10_500_000);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(secs(26)));
        assert_eq!(d.reset_after, Duration::from_micros(HOUR_US - 10_500_000));
        assert_eq!(d.remaining, 0);
        // 1 µs before the cell frees: still refused, and Retry-After is at least 1 s.
        let d = limiter.check_at("k", quota, T0 + 36_000_000 - 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(secs(1)));
        // Exactly when it frees: accepted, and the bucket is empty again.
        let d = limiter.check_at("k", quota, T0 + 36_000_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after, secs(3600));
        assert!(!limiter.check_at("k", quota, T0 + 36_000_000).allowed);
    }

    #[test]
    fn one_cell_per_interval_after_exhaustion() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_minute(6); // T = 10 s
        run(&limiter, "k", quota, &[T0; 6]);
        for n in 1..=20u64 {
            let at = T0 + n * 10_000_000;
            assert!(limiter.check_at("k", quota, at).allowed, "cell {n}");
            assert!(!limiter.check_at("k", quota, at).allowed, "cell {n}");
        }
    }

    #[test]
    fn partial_refill_restores_remaining() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_minute(6);
        run(&limiter, "k", quota, &[T0; 6]);
        // After 35 s three cells are free; taking one leaves two.
        let d = limiter.check_at("k", quota, T0 + 35_000_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        assert_eq!(d.reset_after, secs(35));
        // After a whole idle period the full budget is back.
        let later = T0 + 10 * 60_000_000;
        let d = limiter.check_at("k", quota, later);
        assert_eq!((d.allowed, d.remaining), (true, 5));
    }

    #[test]
    fn keys_are_independent() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(3);
        let keys = [
            "org:1",
            "org:2",
            "ip:2001:db8::1",
            "ip:2001:db8::1:",
            "ip:127.0.0.1",
        ];
        for key in keys {
            let allowed = run(&limiter, key, quota, &[T0; 5])
                .iter()
                .filter(|d| d.allowed)
                .count();
            assert_eq!(allowed, 3, "{key}");
        }
        assert_eq!(limiter.tracked_keys(), keys.len());
    }

    #[test]
    fn quota_of_one() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(1);
        let d = limiter.check_at("k", quota, T0);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_after),
            (true, 0, secs(3600))
        );
        let d = limiter.check_at("k", quota, T0 + 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(secs(3600)));
        assert!(!limiter.check_at("k", quota, T0 + HOUR_US - 1).allowed);
        assert!(limiter.check_at("k", quota, T0 + HOUR_US).allowed);
    }

    #[test]
    fn large_limit_is_exact() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(100_000); // T = 36 ms
        let mut accepted = 0u32;
        for i in 0..100_000u32 {
            let d = limiter.check_at("org:enterprise", quota, T0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 99_999 - i);
            accepted += 1;
        }
        assert_eq!(accepted, 100_000);
        let d = limiter.check_at("org:enterprise", quota, T0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(secs(1)));
        assert_eq!(d.reset_after, secs(3600));
        // 36 ms frees exactly one cell.
        assert!(
            !limiter
                .check_at("org:enterprise", quota, T0 + 35_999)
                .allowed
        );
        assert!(
            limiter
                .check_at("org:enterprise", quota, T0 + 36_000)
                .allowed
        );
        assert!(
            !limiter
                .check_at("org:enterprise", quota, T0 + 36_000)
                .allowed
        );
    }

    #[test]
    fn time_going_backwards_grants_nothing_extra() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_minute(5);
        let times: Vec<u64> = [0u64, 3, 1, 7, 2, 0, 9, 4]
            .iter()
            .map(|s| T0 + s * 1_000_000)
            .collect();
        let allowed = run(&limiter, "k", quota, &times)
            .iter()
            .filter(|d| d.allowed)
            .count();
        // 9 s of forward time frees no cell (T = 12 s): only the burst of 5.
        assert_eq!(allowed, 5);
        // A time far in the past, even 0, neither panics nor grants.
        let d = limiter.check_at("k", quota, 0);
        assert!(!d.allowed);
        assert!(d.retry_after.is_some());
    }

    /// GCRA's guarantee: from idle, the requests accepted at times spanning `D` number at most
    /// `limit + floor(D / T)`; so at most `limit` within one emission interval, and at most
    /// `2 * limit - 1` within one period (the burst plus the cells freed meanwhile).
    #[test]
    fn accepted_never_exceed_the_gcra_bound() {
        // Deterministic xorshift: random quotas, and request times within one period, sorted
        // or shuffled (time going backwards).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..400 {
            let limiter = LocalLimiter::new();
            let limit = (next() % 50 + 1) as u32;
            let period_s = next() % 3600 + 1;
            let quota = Quota {
                limit,
                period: secs(period_s),
            };
            let interval_us = quota.emission_interval().as_micros() as u64;
            // Half the rounds squeeze all requests into one interval, half spread them over
            // the period.
            let spread_us = if round % 4 < 2 {
                interval_us
            } else {
                period_s * 1_000_000
            };
            let mut times: Vec<u64> = (0..next() % 400 + 1)
                .map(|_| T0 + next() % spread_us)
                .collect();
            if round % 2 == 0 {
                times.sort_unstable();
            }
            let span = times.iter().max().unwrap_or(&T0) - times.iter().min().unwrap_or(&T0);
            let bound = limit as usize + (span / interval_us) as usize;
            let accepted = run(&limiter, "k", quota, &times)
                .iter()
                .filter(|d| d.allowed)
                .count();
            assert!(accepted <= bound, "round {round}: {accepted} > {bound}");
            assert!(accepted < 2 * limit as usize, "round {round}");
            if spread_us == interval_us {
                assert!(accepted <= limit as usize, "round {round}");
            }
            if round % 2 == 0 {
                // Sorted times from idle: the first `limit` requests are always accepted.
                assert!(
                    accepted >= limit.min(times.len() as u32) as usize,
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn sustained_rate_is_the_quota() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_minute(30); // T = 2 s
                                           // One request per 100 ms for 10 minutes: the burst, then one per interval.
        let times: Vec<u64> = (0..6_000u64).map(|i| T0 + i * 100_000).collect();
        let accepted = run(&limiter, "k", quota, &times)
            .iter()
            .filter(|d| d.allowed)
            .count();
        assert_eq!(accepted, 30 + 599_900_000 / 2_000_000);
    }

    #[test]
    fn invalid_quota_is_clamped_not_panicking() {
        let limiter = LocalLimiter::new();
        let d = limiter.check_at("k", Quota::per_hour(0), T0);
        assert_eq!((d.allowed, d.limit, d.remaining), (true, 1, 0));
        let tiny = Quota {
            limit: u32::MAX,
            period: Duration::ZERO,
        };
        let d = limiter.check_at("k2", tiny, T0);
        assert!(d.allowed);
        assert_eq!(d.limit, 1_000_000);
    }

    #[test]
    fn idle_keys_are_swept() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_minute(10);
        for i in 0..100_000 {
            limiter.check_at(
                &format!("ip:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                quota,
                T0,
            );
        }
        assert_eq!(limiter.tracked_keys(), 100_000);
        // One period later every one of those TATs has passed; one sweep cycle of traffic on a
        // hot key forgets them.
        let later = T0 + 60_000_000;
        for _ in 0..(SHARDS as u64 * SWEEP_EVERY) {
            limiter.check_at("org:hot", Quota::per_hour(100_000), later);
        }
        assert!(limiter.tracked_keys() <= 1, "{}", limiter.tracked_keys());
    }

    #[test]
    fn key_count_is_capped() {
        let limiter = LocalLimiter::with_max_keys(1_000);
        let quota = Quota::per_hour(10);
        for i in 0..20_000u64 {
            // All TATs in the future: nothing can be swept, only evicted.
            limiter.check_at(&format!("ip:{i}"), quota, T0 + i);
            assert!(limiter.tracked_keys() <= 1_024 || i % 1000 != 0);
        }
        assert!(
            limiter.tracked_keys() <= 1_024,
            "{}",
            limiter.tracked_keys()
        );
        // The newest key is still limited.
        let d = limiter.check_at("ip:19999", quota, T0 + 20_000);
        assert_eq!(d.remaining, 8);
    }

    #[test]
    fn system_clock_check_counts() {
        let limiter = LocalLimiter::new();
        let quota = Quota::per_hour(2);
        assert!(limiter.check("k", quota).allowed);
        assert!(limiter.check("k", quota).allowed);
        assert!(!limiter.check("k", quota).allowed);
        assert!(now_us() > T0 - 365 * 24 * HOUR_US);
    }
}
