//! The Redis limiter: the GCRA step runs as one Lua script, so processes sharing the Redis
//! share one budget. An adapter: all arithmetic that shapes the answer is in `gcra`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};

use crate::gcra::{self, Params};
use crate::{Decision, LimitError, Quota};

/// After a failed connection attempt, requests fail at once (instead of each waiting for a
/// connection timeout) until this much time has passed since it ended.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// The shortest timeout accepted; shorter ones are raised to it.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A GCRA limiter whose state lives in Redis, timed by the Redis server's clock.
///
/// Each check is one `EVALSHA` of an atomic script (loaded on first use, and again after a
/// Redis restart) on one multiplexed connection shared by all tasks. The connection is made on
/// first use and made again after it breaks; every call is bounded by the timeout given at
/// construction and answers [`LimitError::Unavailable`] past it. Keys are stored as
/// `<key_prefix><key>` holding the TAT in microseconds, and expire once the TAT has passed.
///
/// Needs a Tokio runtime with the time driver when its async methods run (not when built).
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    key_prefix: String,
    timeout: Duration,
    script: Script,
    link: Mutex<Link>,
    /// Serialises connection attempts, so an outage costs one attempt, not one per request.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Link {
    /// The live connection and its generation number.
    conn: Option<(u64, MultiplexedConnection)>,
    generation: u64,
    /// When the last connection attempt failed (or was cut short by a caller's timeout),
    /// while no connection has succeeded since.
    last_failure: Option<Instant>,
}

impl fmt::Debug for RedisLimiter {
    // The client is left out: its connection info can hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .field("connected", &self.lock_link().conn.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter that connects on first use (and again after any outage). Fails only for a
    /// URL that does not parse. A `timeout` under 1 ms is raised to 1 ms.
    pub fn lazy(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, LimitError> {
        // The parser's message could quote the URL, password included: say only what failed.
        let client = Client::open(url)
            .map_err(|_| LimitError::Unavailable("the Redis URL does not parse".into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                key_prefix: key_prefix.to_owned(),
                timeout: timeout.max(MIN_TIMEOUT),
                script: Script::new(include_str!("gcra.lua")),
                link: Mutex::new(Link::default()),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// A limiter that has connected and had an answer to `PING` within `timeout`.
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        timeout: Duration,
    ) -> Result<Self, LimitError> {
        let limiter = Self::lazy(url, key_prefix, timeout)?;
        limiter.ping().await?;
        Ok(limiter)
    }

    /// Counts a request for `key` (stored as `<key_prefix><key>`) against `quota`.
    pub async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError> {
        let params = Params::new(quota)?;
        let full_key = format!("{}{key}", self.inner.key_prefix);
        let mut used = None;
        let run = self.run_script(&full_key, params, &mut used);
        match tokio::time::timeout(self.inner.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(used)),
        }
    }

    /// Asks Redis for `PONG` within the timeout (connecting first if needed).
    pub async fn ping(&self) -> Result<(), LimitError> {
        let mut used = None;
        let run = async {
            let mut conn = self.connection(&mut used).await?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(used, "PING failed", &e))?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(LimitError::Unavailable(format!(
                    "Redis answered {pong:?} to PING"
                )))
            }
        };
        match tokio::time::timeout(self.inner.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(used)),
        }
    }

    /// The prefix put before every key.
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// The bound on every call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    async fn run_script(
        &self,
        full_key: &str,
        params: Params,
        used: &mut Option<u64>,
    ) -> Result<Decision, LimitError> {
        let mut conn = self.connection(used).await?;
        let (allowed, now, tat): (i64, i64, i64) = self
            .inner
            .script
            .key(full_key)
            .arg(params.interval_us)
            .arg(params.window_us)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(*used, "the limiter script failed", &e))?;
        let (Ok(now), Ok(tat)) = (u64::try_from(now), u64::try_from(tat)) else {
            return Err(LimitError::Unavailable(
                "the limiter script returned negative times".into(),
            ));
        };
        let decision = gcra::decide(params, tat, now);
        if decision.allowed != (allowed == 1) {
            return Err(LimitError::Unavailable(
                "the limiter script and the client disagree".into(),
            ));
        }
        Ok(decision)
    }

    /// The shared connection, made now if there is none (unless an attempt failed within
    /// the last [`RECONNECT_BACKOFF`]). Records its generation in `used`.
    async fn connection(
        &self,
        used: &mut Option<u64>,
    ) -> Result<MultiplexedConnection, LimitError> {
        if let Some((generation, conn)) = self.lock_link().conn.clone() {
            *used = Some(generation);
            return Ok(conn);
        }
        let _one_attempt_at_a_time = self.inner.connecting.lock().await;
        {
            let link = self.lock_link();
            // Another task may have connected while this one waited.
            if let Some((generation, conn)) = link.conn.clone() {
                *used = Some(generation);
                return Ok(conn);
            }
            if let Some(failed) = link.last_failure {
                if failed.elapsed() < RECONNECT_BACKOFF {
                    return Err(LimitError::Unavailable(
                        "Redis is unreachable (the last connection attempt failed)".into(),
                    ));
                }
            }
        }
        // Records a failure however the attempt ends: with an error, or dropped by a caller's
        // timeout.
        let mut attempt = Attempt {
            link: &self.inner.link,
            succeeded: false,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(self.inner.timeout));
        let conn = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| unavailable("cannot connect to Redis", &e))?;
        attempt.succeeded = true;
        let mut link = self.lock_link();
        link.generation += 1;
        let generation = link.generation;
        link.conn = Some((generation, conn.clone()));
        link.last_failure = None;
        *used = Some(generation);
        Ok(conn)
    }

    /// Maps a command error, dropping the connection if the error says it is broken.
    fn failed(&self, used: Option<u64>, context: &str, e: &RedisError) -> LimitError {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
            || e.is_timeout()
        {
            self.forget_connection(used);
        }
        unavailable(context, e)
    }

    /// A call that outlived the timeout: the connection may be stuck, so it is dropped and
    /// the next call connects afresh.
    fn timed_out(&self, used: Option<u64>) -> LimitError {
        self.forget_connection(used);
        LimitError::Unavailable(format!(
            "Redis did not answer within {} ms",
            self.inner.timeout.as_millis()
        ))
    }

    /// Drops the connection of generation `used`, unless it has been replaced already.
    fn forget_connection(&self, used: Option<u64>) {
        let mut link = self.lock_link();
        if used.is_some() && link.conn.as_ref().map(|(g, _)| *g) == used {
            link.conn = None;
        }
    }

    fn lock_link(&self) -> MutexGuard<'_, Link> {
        // Nothing panics while holding it; a poisoned link is still a consistent one.
        self.inner
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection attempt in progress; marks the link as failed unless told it succeeded.
struct Attempt<'a> {
    link: &'a Mutex<Link>,
    succeeded: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.succeeded {
            let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
            link.last_failure = Some(Instant::now());
        }
    }
}

fn unavailable(context: &str, e: &RedisError) -> LimitError {
    LimitError::Unavailable(format!("{context}: {e}"))
}
