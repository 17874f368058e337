//! Rate limiting for qrlp: plan limits per organization and limits per client IP.
//!
//! The algorithm is GCRA (the generic cell rate algorithm) with a burst equal to the limit: a
//! [`Quota`] of `limit` requests per `period` accepts exactly `limit` requests from an idle
//! state, then frees one cell every emission interval `T = period / limit`. The only state per
//! key is its TAT (theoretical arrival time), an integer number of microseconds since the Unix
//! epoch. All arithmetic is integer microseconds, in one pure function shared by both
//! backends, so they give the same answers for the same times.
//!
//! Two backends:
//! - [`LocalLimiter`]: in-process, sharded maps, bounded memory.
//! - [`RedisLimiter`]: one atomic Lua script per check, timed by the Redis server clock, so
//!   every process that shares the Redis shares one budget whatever its own clock says.
//!
//! [`Limiter`] is what the HTTP layer holds: either backend, plus the [`FailMode`] that decides
//! what a Redis outage means (allow, marked `degraded`, or refuse with
//! [`LimitError::Unavailable`]).
//!
//! Keys are opaque caller strings such as `org:<uuid>` or `ip:<address>`; they may contain `:`
//! and IPv6 addresses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod gcra;
mod limiter;
mod local;
mod redis_limiter;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use limiter::Limiter;
pub use local::{LocalLimiter, DEFAULT_MAX_KEYS};
pub use redis_limiter::RedisLimiter;

/// The longest period a [`Quota`] may have. It keeps every sum of times far inside `u64`
/// microseconds and inside the 2^53 integers that Redis' Lua numbers hold exactly.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

/// A budget: at most `limit` requests per `period`.
///
/// Valid quotas have `limit >= 1`, `1 s <= period <= MAX_PERIOD`, and `limit` no larger than
/// the period in microseconds (so the emission interval is at least 1 µs). When the period
/// is not a whole multiple of `limit` microseconds, the emission interval is rounded down and
/// the effective window is `limit * T`, up to `limit - 1` µs shorter than `period`; exactly
/// `limit` requests are still accepted from idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests accepted per period from an idle state (the burst).
    pub limit: u32,
    /// The period over which `limit` requests are accepted.
    pub period: Duration,
}

impl Quota {
    /// A checked quota of `limit` requests per `period`.
    pub fn new(limit: u32, period: Duration) -> Result<Self, LimitError> {
        let quota = Self { limit, period };
        quota.validate()?;
        Ok(quota)
    }

    /// `limit` requests per hour (the plan limits). Not checked: `per_hour(0)` is invalid.
    pub const fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(3600),
        }
    }

    /// `limit` requests per minute. Not checked: `per_minute(0)` is invalid.
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// Checks the rules listed on [`Quota`].
    pub fn validate(&self) -> Result<(), LimitError> {
        gcra::Params::new(*self).map(|_| ())
    }

    /// The emission interval `T`: the time in which one used cell is freed again.
    /// Computed from the clamped quota when the quota is invalid.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_micros(gcra::Params::clamped(*self).interval_us)
    }
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is within the budget (and was counted).
    pub allowed: bool,
    /// The quota's limit, for `X-RateLimit-Limit`.
    pub limit: u32,
    /// Requests that would still be accepted right now, for `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// Time until the whole budget is free again, for `X-RateLimit-Reset`.
    pub reset_after: Duration,
    /// For a refused request: time until one request will be accepted, in whole seconds and
    /// at least 1 s, for `Retry-After`. `None` when allowed.
    pub retry_after: Option<Duration>,
    /// Redis could not be asked and the limiter failed open: the request was allowed without
    /// being counted.
    pub degraded: bool,
}

/// What a [`Limiter`] backed by Redis does when Redis cannot answer in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailMode {
    /// Allow the request, with [`Decision::degraded`] set.
    Open,
    /// Refuse to decide: [`LimitError::Unavailable`].
    Closed,
}

impl FailMode {
    /// The configuration spelling: `open` or `closed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`FailMode`] spelled neither `open` nor `closed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fail mode {0:?}: expected \"open\" or \"closed\"")]
pub struct ParseFailModeError(pub String);

impl FromStr for FailMode {
    type Err = ParseFailModeError;

    /// Accepts `open` and `closed`, in any ASCII case, with surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        if word.eq_ignore_ascii_case("open") {
            Ok(Self::Open)
        } else if word.eq_ignore_ascii_case("closed") {
            Ok(Self::Closed)
        } else {
            Err(ParseFailModeError(s.to_owned()))
        }
    }
}

/// Why a limiter could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The backend (Redis) could not be reached or did not answer within the timeout.
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
    /// The quota breaks the rules listed on [`Quota`].
    #[error("invalid quota: {0}")]
    InvalidQuota(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_mode_round_trips() {
        for mode in [FailMode::Open, FailMode::Closed] {
            assert_eq!(mode.to_string().parse::<FailMode>(), Ok(mode));
        }
        assert_eq!(" Closed ".parse::<FailMode>(), Ok(FailMode::Closed));
        assert_eq!(
            "half".parse::<FailMode>(),
            Err(ParseFailModeError("half".into()))
        );
    }

    #[test]
    fn quota_rules() {
        assert!(Quota::per_hour(100).validate().is_ok());
        assert!(Quota::per_minute(1).validate().is_ok());
        assert!(Quota::new(1, Duration::from_secs(1)).is_ok());
        assert!(Quota::new(1_000_000, Duration::from_secs(1)).is_ok());
        for bad in [
            Quota::per_hour(0),
            Quota {
                limit: 10,
                period: Duration::from_millis(999),
            },
            Quota {
                limit: 1_000_001,
                period: Duration::from_secs(1),
            },
            Quota {
                limit: 1,
                period: MAX_PERIOD + Duration::from_secs(1),
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(LimitError::InvalidQuota(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            Quota::per_hour(100).emission_interval(),
            Duration::from_secs(36)
        );
    }
}
