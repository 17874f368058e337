//! GCRA as pure integer arithmetic on microseconds. No I/O, no clock: callers pass `now`.
//!
//! With emission interval `T` and window `W = limit * T`, a request at `now` against the
//! stored TAT is judged on `tat = max(stored, now)`: it is accepted iff
//! `tat + T - now <= W`, and then the TAT becomes `tat + T`. A refused request changes
//! nothing. The Redis script applies the same rule; [`decide`] turns its `(now, tat)` into
//! the same [`Decision`] the local limiter produces.

use std::time::Duration;

use crate::{Decision, LimitError, Quota, MAX_PERIOD};

const MICROS_PER_SEC: u64 = 1_000_000;

/// A quota in integer microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) limit: u32,
    /// Emission interval `T`, at least 1.
    pub(crate) interval_us: u64,
    /// Window `W = limit * T`: the TAT may run at most this far ahead of `now`.
    pub(crate) window_us: u64,
}

impl Params {
    /// The parameters of a valid quota; [`LimitError::InvalidQuota`] otherwise.
    pub(crate) fn new(quota: Quota) -> Result<Self, LimitError> {
        if quota.limit == 0 {
            return Err(LimitError::InvalidQuota("limit must be at least 1".into()));
        }
        if quota.period < Duration::from_secs(1) {
            return Err(LimitError::InvalidQuota(
                "period must be at least 1 second".into(),
            ));
        }
        if quota.period > MAX_PERIOD {
            return Err(LimitError::InvalidQuota(
                "period must be at most 366 days".into(),
            ));
        }
        let period_us = period_micros(quota.period);
        if u64::from(quota.limit) > period_us {
            return Err(LimitError::InvalidQuota(format!(
                "limit {} exceeds the period in microseconds ({period_us})",
                quota.limit
            )));
        }
        Ok(Self::from_checked(quota.limit, period_us))
    }

    /// The parameters of the nearest valid quota: limit and period are raised or lowered into
    /// range, and the limit is capped at the period in microseconds.
    pub(crate) fn clamped(quota: Quota) -> Self {
        let period = quota.period.clamp(Duration::from_secs(1), MAX_PERIOD);
        let period_us = period_micros(period);
        let limit = quota.limit.max(1);
        let limit = u32::try_from(u64::from(limit).min(period_us)).unwrap_or(u32::MAX);
        Self::from_checked(limit, period_us)
    }

    fn from_checked(limit: u32, period_us: u64) -> Self {
        let interval_us = (period_us / u64::from(limit)).max(1);
        Self {
            limit,
            interval_us,
            window_us: interval_us.saturating_mul(u64::from(limit)),
        }
    }

    /// What a request that could not be counted is told when failing open: the state after
    /// one request from idle.
    pub(crate) fn degraded(&self) -> Decision {
        Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit.saturating_sub(1),
            reset_after: Duration::from_micros(self.interval_us),
            retry_after: None,
            degraded: true,
        }
    }
}

fn period_micros(period: Duration) -> u64 {
    u64::try_from(period.as_micros()).unwrap_or(u64::MAX)
}

/// One request: the decision and, when accepted, the TAT to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) decision: Decision,
    pub(crate) store: Option<u64>,
}

/// Judges a request at `now_us` against the stored TAT (`None` for a key never seen or
/// forgotten).
pub(crate) fn step(params: Params, stored_tat: Option<u64>, now_us: u64) -> Step {
    let tat = stored_tat.map_or(now_us, |stored| stored.max(now_us));
    let decision = decide(params, tat, now_us);
    Step {
        decision,
        store: decision
            .allowed
            .then(|| tat.saturating_add(params.interval_us)),
    }
}

/// The decision for a request at `now_us` when the effective TAT (already `max(stored,
/// now)`) is `tat`.
pub(crate) fn decide(params: Params, tat: u64, now_us: u64) -> Decision {
    let Params {
        limit,
        interval_us,
        window_us,
    } = params;
    let tat = tat.max(now_us);
    let new_tat = tat.saturating_add(interval_us);
    let ahead_if_accepted = new_tat - now_us;
    if ahead_if_accepted <= window_us {
        Decision {
            allowed: true,
            limit,
            remaining: cells(window_us - ahead_if_accepted, interval_us),
            reset_after: Duration::from_micros(ahead_if_accepted),
            retry_after: None,
            degraded: false,
        }
    } else {
        let ahead = tat - now_us;
        // `ahead_if_accepted > window_us`, so this is at least 1 µs.
        let wait_us = ahead_if_accepted - window_us;
        Decision {
            allowed: false,
            limit,
            remaining: cells(window_us.saturating_sub(ahead), interval_us),
            reset_after: Duration::from_micros(ahead),
            retry_after: Some(Duration::from_secs(wait_us.div_ceil(MICROS_PER_SEC).max(1))),
            degraded: false,
        }
    }
}

fn cells(free_us: u64, interval_us: u64) -> u32 {
    u32::try_from(free_us / interval_us.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_yields_valid_parameters() {
        let cases = [
            (Quota::per_hour(0), 1, 3_600_000_000),
            (
                Quota {
                    limit: u32::MAX,
                    period: Duration::from_millis(1),
                },
                1_000_000,
                1,
            ),
            (
                Quota {
                    limit: 1,
                    period: Duration::MAX,
                },
                1,
                period_micros(MAX_PERIOD),
            ),
        ];
        for (quota, limit, interval_us) in cases {
            let params = Params::clamped(quota);
            assert_eq!((params.limit, params.interval_us), (limit, interval_us));
            assert!(params.window_us >= params.interval_us);
        }
    }

    #[test]
    fn uneven_period_keeps_exact_burst() {
        // 3,600,000,000 µs / 7 = 514,285,714.28...: T rounds down, W = 7 T.
        let params = Params::new(Quota::per_hour(7)).expect("valid");
        assert_eq!(params.interval_us, 514_285_714);
        assert_eq!(params.window_us, 7 * 514_285_714);
        let mut tat = None;
        let mut accepted = 0;
        for _ in 0..10 {
            let s = step(params, tat, 1_000);
            if s.decision.allowed {
                accepted += 1;
                tat = s.store;
            }
        }
        assert_eq!(accepted, 7);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let params = Params::new(Quota::per_minute(1)).expect("valid");
        for (stored, now) in [
            (Some(u64::MAX - 5), u64::MAX - 10),
            (None, u64::MAX),
            (Some(u64::MAX), 0),
        ] {
            let s = step(params, stored, now);
            assert!(s.decision.remaining <= 1);
        }
    }
}
