//! Readiness: whether the dependencies this node is configured with can be reached.
//!
//! The database always (`database-unavailable`), and Redis when `redis.url` is set
//! (`redis-unavailable`; the rate limiter's budgets live there).

use std::time::Duration;

use qrlp_config::RedisConfig;
use tokio::sync::Mutex;

/// Why the node is not ready, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The database did not answer in time.
    DatabaseUnavailable,
    /// Redis is configured and did not answer PING in time.
    RedisUnavailable,
}

impl NotReady {
    /// The `reason` of the 503 body.
    pub fn reason(self) -> &'static str {
        match self {
            NotReady::DatabaseUnavailable => "database-unavailable",
            NotReady::RedisUnavailable => "redis-unavailable",
        }
    }
}

/// The probes of one node.
pub struct Readiness {
    redis: Option<RedisProbe>,
    store: qrlp_store::Store,
}

/// How long the database may take to answer the readiness probe.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

struct RedisProbe {
    client: redis::Client,
    timeout: Duration,
    /// Kept between probes; replaced when it fails.
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// For logs: the URL without its password.
    redacted_url: String,
}

impl Readiness {
    /// Probes for the configured dependencies. Nothing connects until the first check.
    ///
    /// # Errors
    /// When the Redis URL cannot be parsed.
    pub fn new(
        redis: &RedisConfig,
        store: qrlp_store::Store,
    ) -> Result<Readiness, redis::RedisError> {
        let redis = if redis.is_configured() {
            Some(RedisProbe {
                client: redis::Client::open(redis.url.as_str())?,
                timeout: Duration::from_millis(redis.timeout_ms),
                conn: Mutex::new(None),
                redacted_url: redis.redacted_url(),
            })
        } else {
            None
        };
        Ok(Readiness { redis, store })
    }

    /// Checks every configured dependency.
    ///
    /// # Errors
    /// The first dependency that cannot be reached.
    pub async fn check(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(DATABASE_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(database = %self.store.describe(), error = %e, "database readiness ping failed");
                return Err(NotReady::DatabaseUnavailable);
            }
            Err(_) => {
                tracing::warn!(database = %self.store.describe(), "database readiness ping timed out");
                return Err(NotReady::DatabaseUnavailable);
            }
        }
        if let Some(redis) = &self.redis {
            redis.check().await?;
        }
        Ok(())
    }
}

impl RedisProbe {
    async fn check(&self) -> Result<(), NotReady> {
        let mut slot = self.conn.lock().await;
        // A kept connection may have died since the last probe: then try once more with a
        // new one before reporting Redis as unavailable.
        let had_connection = slot.is_some();
        for attempt in 0..2 {
            if attempt == 1 && !had_connection {
                break;
            }
            match self.ping(&mut slot).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    *slot = None;
                    tracing::warn!(redis = %self.redacted_url, error = %e, "redis readiness ping failed");
                }
            }
        }
        Err(NotReady::RedisUnavailable)
    }

    async fn ping(
        &self,
        slot: &mut Option<redis::aio::MultiplexedConnection>,
    ) -> Result<(), String> {
        let conn = match slot {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(
                    self.timeout,
                    self.client.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
                slot.insert(c)
            }
        };
        let pong: String = tokio::time::timeout(self.timeout, redis::cmd("PING").query_async(conn))
            .await
            .map_err(|_| "PING timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected PING answer {pong:?}"))
        }
    }
}
