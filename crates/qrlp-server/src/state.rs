//! What every handler can reach: the configuration, the store, the authenticator, the rate
//! limiter, the metrics and the readiness probes.

use std::sync::Arc;
use std::time::Duration;

use qrlp_config::Config;
use qrlp_ratelimit::Limiter;
use qrlp_store::Store;

use crate::auth::{Authenticator, Passwords};
use crate::client::TrustedProxies;
use crate::mail::Mailer;
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
    store: Store,
    auth: Authenticator,
    limiter: Option<Limiter>,
    fleet: crate::fleet::Fleet,
    trusted_proxies: TrustedProxies,
    passwords: Passwords,
    mailer: Option<Mailer>,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `redis.url` was refused by the Redis client.
    #[error("invalid redis.url: {0}")]
    Redis(#[from] redis::RedisError),
    /// The rate limiter could not be set up.
    #[error("rate limiter: {0}")]
    Limiter(#[from] qrlp_ratelimit::LimitError),
    /// The device fleet's data key could not be used.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetSetupError),
    /// `server.trusted_proxies` holds something that is not a CIDR block.
    #[error("server.trusted_proxies: {0}")]
    TrustedProxies(String),
    /// The mail settings cannot be used.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
}

impl AppState {
    /// State for a validated configuration and an opened, migrated store. Computes the
    /// decoy password hash (tens of milliseconds): call it off the async threads, or accept
    /// that pause once at start.
    ///
    /// # Errors
    /// When the Redis URL, the trusted proxies or the mail settings cannot be used.
    pub fn new(config: Config, store: Store) -> Result<AppState, StateError> {
        let trusted_proxies = TrustedProxies::parse(&config.server.trusted_proxies)
            .map_err(StateError::TrustedProxies)?;
        let mailer = Mailer::from_config(&config.mail)?;
        let passwords = Passwords::per_core();
        let readiness = Readiness::new(&config.redis, store.clone())?;
        let limiter = crate::limits::limiter(&config)?;
        let auth = Authenticator::new(
            store.clone(),
            Duration::from_millis(config.auth.key_cache_ttl_ms),
        );
        let fleet = crate::fleet::Fleet::new(&config)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                fleet,
                config,
                metrics: Metrics::default(),
                readiness,
                store,
                auth,
                limiter,
                trusted_proxies,
                passwords,
                mailer,
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

    /// The repository: the only way handlers reach the database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Credential checks.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The device fleet's state.
    pub fn fleet(&self) -> &crate::fleet::Fleet {
        &self.inner.fleet
    }

    /// The reverse proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// Password hashing, bounded to one job per core.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    /// The SMTP mailer, when `mail.smtp_url` is set.
    pub fn mailer(&self) -> Option<&Mailer> {
        self.inner.mailer.as_ref()
    }

    /// The rate limiter, unless limits are off.
    pub fn limiter(&self) -> Option<&Limiter> {
        self.inner.limiter.as_ref()
    }
}
