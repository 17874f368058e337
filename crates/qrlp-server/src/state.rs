//! What every handler can reach: the configuration, the store, the authenticator, the rate
//! limiter, the metrics and the readiness probes.

use std::sync::Arc;
use std::time::Duration;

use qrlp_config::Config;
use qrlp_ratelimit::Limiter;
use qrlp_store::secret::DataKey;
use qrlp_store::Store;

use crate::auth::{Authenticator, Passwords};
use crate::client::TrustedProxies;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::tracking::Tracking;

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
    data_key: DataKey,
    webhook_wake: Arc<tokio::sync::Notify>,
    tracking: Arc<Tracking>,
    live: crate::live::LiveChannels,
    training: crate::training::Training,
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
    /// `server.trusted_proxies` holds something that is not a CIDR block.
    #[error("server.trusted_proxies: {0}")]
    TrustedProxies(String),
    /// The mail settings cannot be used.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// The data key (`storage.encryption_key` or its file) cannot be used.
    #[error("data key: {0}")]
    DataKey(#[source] qrlp_store::StoreError),
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
        let data_key = data_key(&config).map_err(StateError::DataKey)?;
        let auth = Authenticator::new(
            store.clone(),
            Duration::from_millis(config.auth.key_cache_ttl_ms),
        );
        let tracking = Arc::new(Tracking::new(store.clone()));
        let live = crate::live::LiveChannels::new(&config, data_key.clone());
        let fleet = crate::fleet::Fleet::new(&config);
        Ok(AppState {
            inner: Arc::new(Inner {
                tracking,
                live,
                training: crate::training::Training::new(),
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
                data_key,
                webhook_wake: Arc::new(tokio::sync::Notify::new()),
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

    /// The organizations' live channels served by this process.
    pub fn live(&self) -> &crate::live::LiveChannels {
        &self.inner.live
    }

    /// Federated learning's per-server state: the submission gate, the encoded models.
    pub fn training(&self) -> &crate::training::Training {
        &self.inner.training
    }

    /// The rate limiter, unless limits are off.
    pub fn limiter(&self) -> Option<&Limiter> {
        self.inner.limiter.as_ref()
    }

    /// The data key sealing secrets at rest.
    pub fn data_key(&self) -> &DataKey {
        &self.inner.data_key
    }

    /// Wakes this process's webhook worker (after writing outbox events).
    pub fn wake_webhooks(&self) {
        self.inner.webhook_wake.notify_one();
    }

    /// What the webhook worker waits on.
    pub(crate) fn webhook_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.webhook_wake.clone()
    }

    /// Tracked QR codes: slug cache, change-log poller, scan recorder.
    pub fn tracking(&self) -> &Arc<Tracking> {
        &self.inner.tracking
    }
}

/// The data key: `storage.encryption_key`, else the key file (created with mode 0600 when
/// missing).
fn data_key(config: &Config) -> Result<DataKey, qrlp_store::StoreError> {
    if !config.storage.encryption_key.trim().is_empty() {
        return DataKey::parse("storage.encryption_key", &config.storage.encryption_key);
    }
    let key = DataKey::load_or_create(&config.storage.encryption_key_path())?;
    tracing::info!(key_id = %key.id_hex(), "data key ready");
    Ok(key)
}
