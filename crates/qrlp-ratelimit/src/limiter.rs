//! The limiter the HTTP layer holds: a backend plus the outage policy.

use crate::gcra::Params;
use crate::{Decision, FailMode, LimitError, LocalLimiter, Quota, RedisLimiter};

/// The configured rate limiter.
#[derive(Debug)]
pub enum Limiter {
    /// In-process: each server process has its own budget.
    Local(LocalLimiter),
    /// Shared through Redis by every process using it.
    Redis {
        /// The Redis backend.
        redis: RedisLimiter,
        /// What a Redis outage means for requests.
        fail_mode: FailMode,
    },
}

impl Limiter {
    /// Counts a request for `key` against `quota`.
    ///
    /// An invalid quota is always [`LimitError::InvalidQuota`]. When Redis cannot answer
    /// within its timeout, [`FailMode::Open`] allows the request with
    /// [`Decision::degraded`] set (and `remaining = limit - 1`, `reset_after` one emission
    /// interval, as for a first request), while [`FailMode::Closed`] answers
    /// [`LimitError::Unavailable`].
    pub async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError> {
        let params = Params::new(quota)?;
        match self {
            Self::Local(local) => Ok(local.check(key, quota)),
            Self::Redis { redis, fail_mode } => match redis.check(key, quota).await {
                Err(LimitError::Unavailable(_)) if *fail_mode == FailMode::Open => {
                    Ok(params.degraded())
                }
                other => other,
            },
        }
    }

    /// Whether the backend can answer: always for the local one, `PING` for Redis (whatever
    /// the fail mode, so readiness can report the outage).
    pub async fn health(&self) -> Result<(), LimitError> {
        match self {
            Self::Local(_) => Ok(()),
            Self::Redis { redis, .. } => redis.ping().await,
        }
    }

    /// `"local"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Redis { .. } => "redis",
        }
    }

    /// The fail mode, for the Redis backend.
    pub fn fail_mode(&self) -> Option<FailMode> {
        match self {
            Self::Local(_) => None,
            Self::Redis { fail_mode, .. } => Some(*fail_mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map(|rt| rt.block_on(future))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    #[test]
    fn local_backend() {
        block_on(async {
            let limiter = Limiter::Local(LocalLimiter::new());
            assert_eq!(limiter.backend_name(), "local");
            assert_eq!(limiter.fail_mode(), None);
            assert_eq!(limiter.health().await, Ok(()));
            let quota = Quota::per_hour(2);
            for expected in [true, true, false] {
                let d = limiter.check("org:x", quota).await;
                assert_eq!(d.map(|d| d.allowed), Ok(expected));
            }
            assert!(matches!(
                limiter.check("org:x", Quota::per_hour(0)).await,
                Err(LimitError::InvalidQuota(_))
            ));
        });
    }

    #[test]
    fn redis_backend_reports_its_name_without_connecting() {
        let redis = RedisLimiter::lazy("redis://127.0.0.1:1", "t:", Duration::from_millis(50));
        let limiter = Limiter::Redis {
            redis: redis.unwrap_or_else(|e| panic!("{e}")),
            fail_mode: FailMode::Closed,
        };
        assert_eq!(limiter.backend_name(), "redis");
        assert_eq!(limiter.fail_mode(), Some(FailMode::Closed));
        let shown = format!("{limiter:?}");
        assert!(
            shown.contains("t:") && !shown.contains("127.0.0.1"),
            "{shown}"
        );
    }

    #[test]
    fn bad_url_is_refused_without_echoing_it() {
        let err = RedisLimiter::lazy("redis://:hunter2@[::1", "t:", Duration::from_secs(1))
            .map(|_| ())
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
