//! What every handler can reach: the configuration, the metrics and the readiness probes.

use std::sync::Arc;

use qrlp_config::Config;

use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    metrics: Metrics,
    readiness: Readiness,
}

impl AppState {
    /// State for a validated configuration.
    ///
    /// # Errors
    /// When the Redis URL cannot be parsed by the Redis client.
    pub fn new(config: Config) -> Result<AppState, redis::RedisError> {
        let readiness = Readiness::new(&config.redis)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                metrics: Metrics::default(),
                readiness,
            }),
        })
    }

    /// The configuration the server started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The readiness probes.
    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }
}
