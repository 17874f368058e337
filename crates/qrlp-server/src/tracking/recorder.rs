//! Scans recorded off the hot path.
//!
//! The redirect pushes a [`PendingScan`] into a bounded buffer and answers. One task takes
//! the buffer every [`FLUSH_INTERVAL`] (sooner when [`BATCH`] scans wait), classifies the
//! user agents (bots and previewers are counted apart), computes the visitor hashes with the
//! day's salt, and stores the batch in one transaction ([`qrlp_store::Store::record_scans`]).
//! A batch that fails is kept and retried; ids are given at acceptance, so a retried batch
//! never counts a scan twice.
//!
//! Crash window: scans accepted in the last [`FLUSH_INTERVAL`], plus those of a write in
//! progress, are lost on `kill -9`; a graceful shutdown writes them first. The window is
//! kept bounded under load: when the oldest scan not yet written is older than [`MAX_LAG`]
//! (the writer is behind), a redirect waits for the next write before it answers (at most
//! [`MAX_WAIT`]), so the server answers no faster than it records. While the database
//! fails, nobody waits: scans are buffered (up to [`MAX_PENDING`]) and redirects go on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qrlp_store::qr_model::{ScanRecord, ScanSource};
use qrlp_store::{BotVisit, KnownVisitors, Store, TrackingSettings};
use qrlp_tracking::agent::{Agent, Classifier, Visit};
use qrlp_tracking::visitor::{utc_day, visitor_hash};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

/// Longest wait between two writes.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// A write starts early when this many scans wait.
pub const BATCH: usize = 10_000;
/// Scans kept waiting at most (while the database is slow or down); more are dropped and
/// counted.
pub const MAX_PENDING: usize = 500_000;
/// Age of the oldest unwritten scan beyond which redirects wait for the writer.
pub const MAX_LAG: Duration = Duration::from_millis(750);
/// Longest a redirect waits for the writer.
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// How often the roll-up step runs ([`roll_up`]).
pub const ROLLUP_INTERVAL: Duration = Duration::from_secs(5);
/// How far behind the present each roll-up step stops: scans are usually written within
/// [`MAX_LAG`] plus [`MAX_WAIT`] of being made, so later ones rarely land behind the mark
/// (those that do are rolled up by their own batch).
pub const ROLLUP_DELAY: Duration = Duration::from_secs(2);
/// Longest user agent and referrer kept in memory.
const MAX_HEADER_CHARS: usize = 512;

/// A scan as the redirect saw it. The address is already anonymised.
#[derive(Debug, Clone)]
pub struct PendingScan {
    /// Given now: the scan's identity for the whole way to the database.
    pub id: Uuid,
    /// The code.
    pub qr_code_id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// IPv4 /24 or IPv6 /48.
    pub address: IpAddr,
    /// `User-Agent`, cut to 512 characters.
    pub user_agent: Option<Box<str>>,
    /// `Referer`, cut to 512 characters; `None` when the organization does not keep it.
    pub referer: Option<Box<str>>,
    /// QR or plain link.
    pub source: ScanSource,
    /// The organization's settings when the scan was made.
    pub settings: TrackingSettings,
}

/// Cuts a header value to what is kept in memory.
pub fn cut(value: &str) -> Box<str> {
    match value.char_indices().nth(MAX_HEADER_CHARS) {
        Some((i, _)) => value[..i].into(),
        None => value.into(),
    }
}

/// Counters of the recorder.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecorderStats {
    /// Scans handed over by redirects (bots included).
    pub accepted: u64,
    /// Scans stored.
    pub recorded: u64,
    /// Bot visits counted.
    pub bots: u64,
    /// Dropped because the buffer was full.
    pub dropped: u64,
    /// Writes that stored a batch.
    pub writes: u64,
    /// Writes that failed (their batch was kept for the next one).
    pub failed_writes: u64,
    /// Time spent in stored writes (classification and transaction), in microseconds.
    pub write_micros: u64,
    /// The longest write so far, in microseconds.
    pub longest_write_micros: u64,
    /// Redirects that waited for the writer before answering (back-pressure).
    pub waits: u64,
    /// Time those redirects waited, in microseconds.
    pub wait_micros: u64,
    /// Completed roll-up steps.
    pub rollup_steps: u64,
    /// The longest roll-up step so far, in microseconds.
    pub longest_rollup_micros: u64,
}

/// See the module documentation.
pub struct Recorder {
    store: Store,
    classifier: Arc<Classifier>,
    pending: Mutex<Vec<PendingScan>>,
    wake: Notify,
    /// Signalled after every write that stored its batch.
    written: Notify,
    /// Unix nanoseconds of the oldest scan of the write in progress (`i64::MAX`: none).
    writing_since: AtomicI64,
    /// Whether the last write succeeded (redirects only wait for a working writer).
    healthy: AtomicBool,
    /// Visitors known to be stored (their inserts are skipped).
    known: tokio::sync::Mutex<KnownVisitors>,
    accepted: AtomicU64,
    recorded: AtomicU64,
    bots: AtomicU64,
    dropped: AtomicU64,
    flushes: AtomicU64,
    failed_writes: AtomicU64,
    write_micros: AtomicU64,
    longest_write_micros: AtomicU64,
    waits: AtomicU64,
    wait_micros: AtomicU64,
    rollup_steps: AtomicU64,
    longest_rollup_micros: AtomicU64,
}

impl Recorder {
    /// A recorder writing to `store`.
    pub fn new(store: Store, classifier: Arc<Classifier>) -> Recorder {
        Recorder {
            store,
            classifier,
            pending: Mutex::new(Vec::new()),
            wake: Notify::new(),
            written: Notify::new(),
            writing_since: AtomicI64::new(i64::MAX),
            healthy: AtomicBool::new(true),
            known: tokio::sync::Mutex::new(KnownVisitors::default()),
            accepted: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
            bots: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            failed_writes: AtomicU64::new(0),
            write_micros: AtomicU64::new(0),
            longest_write_micros: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            wait_micros: AtomicU64::new(0),
            rollup_steps: AtomicU64::new(0),
            longest_rollup_micros: AtomicU64::new(0),
        }
    }

    /// Hands a scan over; never waits for the database.
    pub fn push(&self, scan: PendingScan) {
        let len = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING {
                drop(pending);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.push(scan);
            pending.len()
        };
        self.accepted.fetch_add(1, Ordering::Relaxed);
        if len == BATCH {
            self.wake.notify_one();
        }
    }

    /// Whether the oldest scan not yet written (`oldest` pending, or the write in progress)
    /// is more than [`MAX_LAG`] older than `now`, while the writer works.
    fn lagging(&self, now: OffsetDateTime, oldest: Option<OffsetDateTime>) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let writing = self.writing_since.load(Ordering::Relaxed);
        let oldest = oldest.map_or(i64::MAX, nanos).min(writing);
        oldest != i64::MAX && nanos(now).saturating_sub(oldest) > MAX_LAG.as_nanos() as i64
    }

    /// Waits until the writer is no longer behind, for one write at a time, at most
    /// [`MAX_WAIT`] in all: the redirect's back-pressure, called before [`Recorder::push`]
    /// (a visitor who leaves while waiting is not recorded), which keeps the scans a crash
    /// can lose to about [`MAX_LAG`] of them. Returns at once when the writer keeps up.
    pub async fn keep_up(&self) {
        let started = tokio::time::Instant::now();
        let deadline = started + MAX_WAIT;
        let mut waited = false;
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            let oldest = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .map(|s| s.at);
            if !self.lagging(OffsetDateTime::now_utc(), oldest) {
                break;
            }
            waited = true;
            if tokio::time::timeout_at(deadline, written).await.is_err() {
                break;
            }
        }
        if waited {
            self.waits.fetch_add(1, Ordering::Relaxed);
            self.wait_micros
                .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
        }
    }

    /// Returns right after the next write that stores a batch, or after `at_most`.
    pub async fn after_next_write(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.written.notified()).await;
    }

    /// The counters so far.
    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            recorded: self.recorded.load(Ordering::Relaxed),
            bots: self.bots.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            writes: self.flushes.load(Ordering::Relaxed),
            failed_writes: self.failed_writes.load(Ordering::Relaxed),
            write_micros: self.write_micros.load(Ordering::Relaxed),
            longest_write_micros: self.longest_write_micros.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            wait_micros: self.wait_micros.load(Ordering::Relaxed),
            rollup_steps: self.rollup_steps.load(Ordering::Relaxed),
            longest_rollup_micros: self.longest_rollup_micros.load(Ordering::Relaxed),
        }
    }

    /// Writes the recorder's series in Prometheus text format (see [`crate::metrics`]).
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let s = self.stats();
        let secs = |us: u64| us as f64 / 1e6;
        let series: [(&str, &str, &str, f64); 12] = [
            (
                "qrlp_scans_accepted_total",
                "counter",
                "Scans handed to the recorder by redirects (bot visits included).",
                s.accepted as f64,
            ),
            (
                "qrlp_scans_recorded_total",
                "counter",
                "Scans stored.",
                s.recorded as f64,
            ),
            (
                "qrlp_scan_bot_visits_total",
                "counter",
                "Visits of bots and link previewers, counted apart from scans.",
                s.bots as f64,
            ),
            (
                "qrlp_scans_dropped_total",
                "counter",
                "Scans dropped because the recorder's buffer was full.",
                s.dropped as f64,
            ),
            (
                "qrlp_scan_writes_total",
                "counter",
                "Batches of scans stored.",
                s.writes as f64,
            ),
            (
                "qrlp_scan_write_failures_total",
                "counter",
                "Batch writes that failed (the batch is kept for the next one).",
                s.failed_writes as f64,
            ),
            (
                "qrlp_scan_write_seconds_total",
                "counter",
                "Time spent storing batches of scans.",
                secs(s.write_micros),
            ),
            (
                "qrlp_scan_write_longest_seconds",
                "gauge",
                "The longest batch write since the server started.",
                secs(s.longest_write_micros),
            ),
            (
                "qrlp_scan_backpressure_waits_total",
                "counter",
                "Redirects that waited for the recorder before answering.",
                s.waits as f64,
            ),
            (
                "qrlp_scan_backpressure_wait_seconds_total",
                "counter",
                "Time redirects spent waiting for the recorder.",
                secs(s.wait_micros),
            ),
            (
                "qrlp_scan_rollup_steps_total",
                "counter",
                "Roll-up steps completed.",
                s.rollup_steps as f64,
            ),
            (
                "qrlp_scan_rollup_longest_seconds",
                "gauge",
                "The longest roll-up step since the server started.",
                secs(s.longest_rollup_micros),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }

    /// Counts a completed roll-up step that took `took`.
    fn rolled_up(&self, took: Duration) {
        self.rollup_steps.fetch_add(1, Ordering::Relaxed);
        self.longest_rollup_micros
            .fetch_max(micros(took), Ordering::Relaxed);
    }

    /// Number of completed writes (for tests that wait for one).
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Writes what is pending now and waits for it (tests; shutdown).
    pub async fn flush_now(&self, salts: &mut HashMap<i64, [u8; 32]>) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return;
        }
        self.write(batch, salts).await;
    }

    /// The writer task: until `stop`, then one last write.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut salts = HashMap::new();
        loop {
            // A scan waits at most FLUSH_INTERVAL for its write to start: right after a
            // write, scans already that old (a writer behind) are written at once.
            let wait = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .map_or(FLUSH_INTERVAL, |s| {
                    let age = OffsetDateTime::now_utc() - s.at;
                    FLUSH_INTERVAL.saturating_sub(age.try_into().unwrap_or(Duration::ZERO))
                });
            let stopping = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                () = self.wake.notified() => false,
                _ = stop.changed() => true,
            };
            self.flush_now(&mut salts).await;
            if stopping {
                return;
            }
        }
    }

    /// Classifies and stores `batch`; on failure puts it back in front of newer scans.
    async fn write(&self, batch: Vec<PendingScan>, salts: &mut HashMap<i64, [u8; 32]>) {
        let today = utc_day(OffsetDateTime::now_utc().unix_timestamp());
        salts.retain(|&d, _| d >= today - 1);
        let mut days: Vec<i64> = batch
            .iter()
            .map(|s| utc_day(s.at.unix_timestamp()))
            .collect();
        days.sort_unstable();
        days.dedup();
        for d in days {
            if salts.contains_key(&d) {
                continue;
            }
            let mut fresh = [0u8; 32];
            if getrandom::fill(&mut fresh).is_err() {
                tracing::error!("no randomness for the visitor salt; scans kept for later");
                self.put_back(batch);
                return;
            }
            match self.store.daily_salt(d, fresh).await {
                Ok(s) => {
                    salts.insert(d, s);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the visitor salt; scans kept for later");
                    self.put_back(batch);
                    return;
                }
            }
        }
        let oldest = batch.iter().map(|s| nanos(s.at)).min().unwrap_or(i64::MAX);
        self.writing_since.store(oldest, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let classifier = Arc::clone(&self.classifier);
        let salts_now = salts.clone();
        let classified = tokio::task::spawn_blocking(move || {
            let (scans, bots) = classify(&classifier, &batch, &salts_now);
            (batch, scans, bots)
        })
        .await;
        let Ok((batch, scans, bots)) = classified else {
            tracing::error!("scan classification panicked; batch dropped");
            self.writing_since.store(i64::MAX, Ordering::Relaxed);
            return;
        };
        let mut known = self.known.lock().await;
        match self
            .store
            .record_scans_with(&scans, &bots, &mut known)
            .await
        {
            Ok(outcome) => {
                let took = micros(started.elapsed());
                self.write_micros.fetch_add(took, Ordering::Relaxed);
                self.longest_write_micros.fetch_max(took, Ordering::Relaxed);
                tracing::debug!(
                    scans = outcome.scans,
                    bots = outcome.bots,
                    elapsed_ms = took / 1000,
                    "scans written"
                );
                self.recorded.fetch_add(outcome.scans, Ordering::Relaxed);
                self.bots.fetch_add(outcome.bots, Ordering::Relaxed);
                self.flushes.fetch_add(1, Ordering::Relaxed);
                self.writing_since.store(i64::MAX, Ordering::Relaxed);
                self.healthy.store(true, Ordering::Relaxed);
                self.written.notify_waiters();
            }
            Err(e) => {
                self.failed_writes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, scans = batch.len(), "cannot store scans; kept for the next write");
                self.put_back(batch);
                self.writing_since.store(i64::MAX, Ordering::Relaxed);
                self.healthy.store(false, Ordering::Relaxed);
                self.written.notify_waiters();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    fn put_back(&self, mut batch: Vec<PendingScan>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        batch.append(&mut pending);
        if batch.len() > MAX_PENDING {
            let extra = batch.len() - MAX_PENDING;
            self.dropped.fetch_add(extra as u64, Ordering::Relaxed);
            batch.truncate(MAX_PENDING);
        }
        *pending = batch;
    }
}

/// The roll-up task: every [`ROLLUP_INTERVAL`] (and once more at `stop`), adds the scans
/// stored since the last step and made up to [`ROLLUP_DELAY`] ago to the roll-ups
/// ([`Store::roll_up_scans`]), chunk after chunk while a backlog waits. Reads add the scans
/// after the mark themselves, so counts never wait for this task; it keeps the roll-up
/// tables doing the work for long periods.
pub async fn roll_up(
    store: Store,
    recorder: Arc<Recorder>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(ROLLUP_INTERVAL) => false,
            _ = stop.changed() => true,
        };
        loop {
            let until = OffsetDateTime::now_utc() - ROLLUP_DELAY;
            let started = std::time::Instant::now();
            // The step's write goes in right after a batch, while the next one gathers.
            let ready = recorder.after_next_write(FLUSH_INTERVAL * 2);
            let step = store.roll_up_scans_when(until, ready).await;
            if let Ok(n) = step {
                recorder.rolled_up(started.elapsed());
                tracing::debug!(
                    scans = n,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "roll-up step"
                );
            }
            match step {
                Ok(n) if n >= qrlp_store::ROLLUP_CHUNK && !*stop.borrow() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot roll up scans; retrying at the next step");
                    break;
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Turns pending scans into stored records and bot visits. User agents and anonymised
/// addresses repeat, so each distinct one is parsed or written out once per batch, and its
/// text is shared by the batch's records.
fn classify(
    classifier: &Classifier,
    batch: &[PendingScan],
    salts: &HashMap<i64, [u8; 32]>,
) -> (Vec<ScanRecord>, Vec<BotVisit>) {
    /// Device class, OS and browser, shared by the records of one batch.
    type Shared = (Arc<str>, Arc<str>, Arc<str>);
    /// A parsed user agent.
    enum Seen {
        Bot(String),
        Human(Shared),
    }
    let shared = |agent: Agent| -> Shared {
        (
            Arc::from(agent.device.as_str()),
            Arc::from(agent.os),
            Arc::from(agent.browser),
        )
    };
    let unknown = shared(Agent::unknown());
    let mut parsed: HashMap<&str, Seen> = HashMap::new();
    let mut addresses: HashMap<IpAddr, Arc<str>> = HashMap::new();
    let mut scans = Vec::with_capacity(batch.len());
    let mut bots = Vec::new();
    for s in batch {
        let ua = s.user_agent.as_deref().unwrap_or("");
        let seen = parsed
            .entry(ua)
            .or_insert_with(|| match classifier.classify(ua) {
                Visit::Bot(name) => Seen::Bot(name),
                Visit::Human(agent) => Seen::Human(shared(agent)),
            });
        let agent = match seen {
            Seen::Bot(name) => {
                bots.push(BotVisit {
                    qr_code_id: s.qr_code_id,
                    at: s.at,
                    name: name.clone(),
                });
                continue;
            }
            Seen::Human(agent) => agent,
        };
        let ((device, os, browser), ua_for_hash) = if s.settings.record_user_agent {
            (agent.clone(), ua)
        } else {
            (unknown.clone(), "")
        };
        let address = addresses
            .entry(s.address)
            .or_insert_with(|| Arc::from(s.address.to_string()))
            .clone();
        let Some(salt) = salts.get(&utc_day(s.at.unix_timestamp())) else {
            continue;
        };
        let referrer = if s.settings.record_referrer {
            s.referer
                .as_deref()
                .and_then(qrlp_tracking::agent::referrer_domain)
                .map(Arc::from)
        } else {
            None
        };
        scans.push(ScanRecord {
            id: s.id,
            qr_code_id: s.qr_code_id,
            at: s.at,
            visitor: visitor_hash(salt, &address, ua_for_hash),
            address,
            device,
            os,
            browser,
            referrer,
            source: s.source,
        });
    }
    (scans, bots)
}

/// Whole microseconds of `d`, saturated to `u64`.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Unix nanoseconds, saturated to `i64`.
fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}
