//! The runtime of tracked QR codes: the slug cache the redirect reads, the change-log
//! poller that keeps every server's cache current, and the scan recorder that writes scans
//! off the hot path.
//!
//! - **Cache** ([`cache::SlugCache`]): slug → where to send the visitor, or "no such
//!   slug". Filled on a miss; an entry is dropped when the change log names its slug (or
//!   its organization). Every server polls the log every [`POLL_INTERVAL`], so a change made
//!   through any server takes effect on every server within that bound plus one query; the
//!   server that made the change drops its own entry at once.
//! - **Recorder** ([`recorder::Recorder`]): the redirect hands it the scan (address already
//!   cut to /24 or /48) and returns; a task writes the pending scans every
//!   [`recorder::FLUSH_INTERVAL`] in one transaction. A crash loses the scans of the last
//!   interval (and of a write in progress): never more than about one second's. The
//!   roll-ups (buckets, daily rows, totals) follow every [`recorder::ROLLUP_INTERVAL`]
//!   ([`recorder::roll_up`]); reads add the scans not rolled up yet.

pub mod cache;
pub mod recorder;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use qrlp_store::{SlugTarget, Store};
use qrlp_tracking::agent::Classifier;
use tokio::task::JoinHandle;

use cache::{Entry, SlugCache};
use recorder::Recorder;

/// How often every server reads the change log.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How far back each poll looks again (PostgreSQL can commit sequence numbers out of
/// order, so a late commit below the newest seen one is still found).
const LOOKBACK: i64 = 256;

/// Shared by the redirect and the QR code routes.
pub struct Tracking {
    store: Store,
    base_url: OnceLock<String>,
    cache: SlugCache,
    recorder: Arc<Recorder>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Tracking {
    /// Not started: [`Tracking::start`] spawns the poller and the recorder.
    pub fn new(store: Store) -> Tracking {
        let (stop, _) = tokio::sync::watch::channel(false);
        Tracking {
            recorder: Arc::new(Recorder::new(
                store.clone(),
                Arc::new(Classifier::default()),
            )),
            store,
            base_url: OnceLock::new(),
            cache: SlugCache::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
            stop,
        }
    }

    /// Sets the base of short links (first call wins) and starts the background tasks.
    pub fn start(self: &Arc<Self>, config: &qrlp_config::ServerConfig, bound: SocketAddr) {
        let mut server = config.clone();
        if server.port == 0 {
            server.port = bound.port();
        }
        let _ = self.base_url.set(server.public_base_url());
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if !tasks.is_empty() {
            return;
        }
        tasks.push(tokio::spawn(
            Arc::clone(&self.recorder).run(self.stop.subscribe()),
        ));
        tasks.push(tokio::spawn(Arc::clone(self).poll(self.stop.subscribe())));
        tasks.push(tokio::spawn(recorder::roll_up(
            self.store.clone(),
            Arc::clone(&self.recorder),
            self.stop.subscribe(),
        )));
    }

    /// Stops the tasks after writing the scans still pending.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// `{base}/r/{slug}`: the plain short link.
    pub fn short_link(&self, slug: &str) -> String {
        format!("{}/r/{slug}", self.base_url())
    }

    /// What the QR code encodes: the short link with the QR marker (`?q`), so scans of the
    /// code and visits of the plain link are told apart.
    pub fn qr_payload(&self, slug: &str) -> String {
        format!("{}/r/{slug}?q", self.base_url())
    }

    fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1:8000", String::as_str)
    }

    /// The scan recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The cached entry of `slug`, reading the store on a miss. `Ok(None)`: no such slug.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn lookup(&self, slug: &str) -> Result<Option<Arc<Entry>>, qrlp_store::StoreError> {
        if let Some(hit) = self.cache.get(slug) {
            return Ok(hit);
        }
        let epoch = self.cache.epoch();
        let found = self.store.find_slug(slug).await?;
        let entry = found.map(|t: SlugTarget| Arc::new(Entry::from_target(t)));
        self.cache.insert_if_current(slug, entry.clone(), epoch);
        Ok(entry)
    }

    /// Drops what this server knows of `slug` (after a change made here).
    pub fn forget(&self, slug: &str) {
        self.cache.invalidate_slug(slug);
    }

    /// Drops every cached code of `org` (after a change of its tracking settings).
    pub fn forget_org(&self, org: uuid::Uuid) {
        self.cache.invalidate_org(org);
    }

    async fn poll(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut cursor = loop {
            match self.store.qr_code_changes_head().await {
                Ok(head) => break head,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the QR code change log; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        // Everything cached before the cursor was read is suspect.
        self.cache.clear();
        let mut applied = std::collections::BTreeSet::new();
        let mut last_prune = std::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            match self.store.qr_code_changes_since(cursor - LOOKBACK).await {
                Ok(changes) => {
                    for c in changes {
                        if !applied.insert(c.seq) {
                            continue;
                        }
                        match &c.slug {
                            Some(slug) => self.cache.invalidate_slug(slug),
                            None => self.cache.invalidate_org(c.org_id),
                        }
                        cursor = cursor.max(c.seq);
                    }
                    let floor = cursor - LOOKBACK;
                    applied = applied.split_off(&floor);
                }
                Err(e) => {
                    // Without the log this server cannot know what changed: serve from the
                    // database until it can read the log again.
                    tracing::warn!(error = %e, "cannot read the QR code change log; cache cleared");
                    self.cache.clear();
                }
            }
            if last_prune.elapsed() > Duration::from_secs(600) {
                last_prune = std::time::Instant::now();
                let before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
                if let Err(e) = self.store.prune_qr_code_changes(before).await {
                    tracing::warn!(error = %e, "cannot prune the QR code change log");
                }
            }
        }
    }
}
