//! # qrlp-protocol: the QR Live Protocol object
//!
//! [`QrLiveProtocol`] is the seed's `QRLiveProtocol` in Rust: built from the product
//! [`Config`], it loads (or creates) the issuer's identity file, signs frames with the
//! configured suite, HMAC key and data key, gathers evidence of time (SNTP) and chain
//! anchors (latest block hashes), renders each frame as a QR PNG, verifies frames, and runs
//! live generation on a background tokio task with subscribers.
//!
//! It is an adapter: the frame formats and cryptography are the pure core `qrlp-live`, the
//! network clients are `qrlp-evidence`, the symbol and image are `qrlp-qr` and
//! `qrlp-render`. Evidence is awaited for at most `live.evidence_timeout_secs`; a frame
//! whose evidence is late or unavailable is still produced without it, and the statistics
//! count the miss.
//!
//! | seed (Python) | here |
//! |---|---|
//! | `QRLiveProtocol(config)` | [`QrLiveProtocol::new`] |
//! | `generate_single_qr(user_data, sign_data, encrypt_data)` | [`QrLiveProtocol::generate_single`] |
//! | `verify_qr_data(qr_json)` | [`QrLiveProtocol::verify`] |
//! | `start_live_generation()` / `stop_live_generation()` | [`QrLiveProtocol::start`] / [`QrLiveProtocol::stop`] |
//! | `add_update_callback(cb)` / `remove_update_callback(cb)` | [`QrLiveProtocol::add_update_callback`] / [`QrLiveProtocol::remove_update_callback`], or [`QrLiveProtocol::subscribe`] for a channel |
//! | `set_user_data_callback(cb)` | [`QrLiveProtocol::set_user_data_provider`] |
//! | `get_statistics()` | [`QrLiveProtocol::statistics`] |
//!
//! ```no_run
//! use qrlp_config::Config;
//! use qrlp_protocol::QrLiveProtocol;
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), qrlp_protocol::ProtocolError> {
//! // qrlp = QRLiveProtocol(config)
//! let mut config = Config::default();
//! config.live.update_interval_secs = 2.0;
//! config.blockchain.enabled_chains = vec!["bitcoin".into(), "ethereum".into()];
//! let qrlp = QrLiveProtocol::new(&config)?;
//!
//! // qr_data, qr_image = qrlp.generate_single_qr({"event": "Product Launch"})
//! let (frame, png) = qrlp
//!     .generate_single(Some(json!({"event": "Product Launch", "presenter": "CEO"})), true, false)
//!     .await?;
//! std::fs::write(format!("qr_{}.png", frame.sequence), &png).ok();
//!
//! // results = qrlp.verify_qr_data(qr_json)
//! let results = qrlp.verify(&frame.text);
//! println!("valid: {} ({})", results.is_valid(), results.reason.message);
//! println!("signature verified: {}", results.signature_verified);
//!
//! // qrlp.add_update_callback(on_qr_update); qrlp.start_live_generation()
//! qrlp.add_update_callback(|update| {
//!     println!("New QR generated: #{}", update.frame.sequence);
//! });
//! qrlp.set_user_data_provider(|| Some(json!({"user_text": "Welcome to my livestream!"})));
//! qrlp.start()?;
//! tokio::time::sleep(std::time::Duration::from_secs(10)).await;
//! qrlp.stop().await;
//!
//! // stats = qrlp.get_statistics()
//! let stats = qrlp.statistics();
//! println!("Updates: {}", stats["total_updates"]);
//! println!("Time sync: {}", stats["time_provider_stats"]["success_rate"]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod document;
mod evidence;
mod image;
mod live;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qrlp_config::{Config, ConfigError, FrameFormat, SignatureSuite};
use qrlp_evidence::{ChainEndpoint, ChainHeads, SntpClient};
use qrlp_live::{
    CompactFrame, DataKey, FrameContent, FrameError, Generator, HmacKey, KeySet, KeyStore,
    KeyStoreError, QrData, Seal, Suite, UserData, VerificationReport, Verifier, VerifierOptions,
};
use qrlp_qr::EcLevel;
use qrlp_qr::EncodeError;
use qrlp_render::RenderError;
use serde_json::{json, Value};
use tokio::sync::broadcast;

pub use image::{caption_lines, encode_frame, render_frame, ImageOptions};
pub use live::{CallbackId, LiveUpdate};

/// Why the protocol object could not be built or a frame could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The configuration has problems (every one is listed).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity file could not be read, created or rotated.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// `identity.auto_generate` is false and the identity file does not exist.
    #[error("identity file {0} does not exist and identity.auto_generate is false")]
    IdentityMissing(PathBuf),
    /// A frame could not be made (content limits, missing key, signing).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// User data must be a JSON object (or a string, carried as `user_text`).
    #[error("user data must be a JSON object or a string")]
    UserData,
    /// The frame does not fit a QR symbol with these settings.
    #[error("QR encoding: {0}")]
    Encode(#[from] EncodeError),
    /// The PNG could not be rendered with these settings.
    #[error("rendering: {0}")]
    Render(#[from] RenderError),
    /// An evidence client could not be built.
    #[error("evidence: {0}")]
    Evidence(String),
    /// `start` was called outside a tokio runtime.
    #[error("live generation needs a tokio runtime")]
    NoRuntime,
}

/// One frame as issued: what went into the QR code and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveFrame {
    /// The seed's `QRData` for this frame. For JSON frames it is the frame itself (signed);
    /// for compact frames it describes the same content (signature and HMAC live in `text`;
    /// encrypted user data is left out).
    pub qr_data: QrData,
    /// The exact text encoded in the QR symbol.
    pub text: String,
    /// The frame format of `text`.
    pub format: FrameFormat,
    /// The QR version (1-40) of the symbol.
    pub qr_version: u8,
    /// The sequence number.
    pub sequence: u64,
    /// The timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Validity from the timestamp, ms (compact frames carry it; JSON verifiers apply
    /// `verification.max_time_drift`).
    pub ttl_ms: u64,
    /// Hex key id of the signing key, when signed.
    pub key_id: Option<String>,
    /// Whether user data is encrypted.
    pub encrypted: bool,
    /// Suite name of the signature (`ed25519`, `fn-dsa-512`, `ed25519+fn-dsa-512`), when
    /// signed.
    pub algorithm: Option<&'static str>,
    /// The error correction level of the symbol.
    pub ecc: EcLevel,
}

/// Evidence sources and keys for [`QrLiveProtocol::with_parts`]; `None` for a source
/// disables it (frames then go without that evidence).
pub struct Parts {
    /// The configuration (validated again by `with_parts`).
    pub config: Config,
    /// The issuer's keys.
    pub key_store: KeyStore,
    /// The SNTP client.
    pub time: Option<Arc<SntpClient>>,
    /// The chain-head fetcher.
    pub chains: Option<Arc<ChainHeads>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or push.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

fn ms(s: f64) -> u64 {
    u64::try_from(secs(s).as_millis()).unwrap_or(u64::MAX)
}

fn suite_of(s: SignatureSuite) -> Suite {
    match s {
        SignatureSuite::Ed25519 => Suite::Ed25519,
        SignatureSuite::FnDsa => Suite::FnDsa512,
        SignatureSuite::Hybrid => Suite::Hybrid,
    }
}

/// Counters behind [`QrLiveProtocol::statistics`].
#[derive(Default)]
struct Counters {
    generated: AtomicU64,
    failed: AtomicU64,
    signed: AtomicU64,
    encrypted: AtomicU64,
    verified: AtomicU64,
    verified_valid: AtomicU64,
}

/// Shared state of the protocol object and its live task.
pub(crate) struct Inner {
    config: Config,
    generator: Generator,
    verifier: Verifier,
    key_set: KeySet,
    identity_hash: Vec<u8>,
    identity_path: PathBuf,
    has_data_key: bool,
    evidence: evidence::Evidence,
    sequence: AtomicU64,
    counters: Counters,
    started: Instant,
    pub(crate) live: live::LiveState,
}

/// The QR Live Protocol object. See the [crate documentation](crate).
///
/// All methods take `&self`; share it behind an `Arc`. Dropping it stops live generation.
pub struct QrLiveProtocol {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QrLiveProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrLiveProtocol")
            .field("identity_file", &self.inner.identity_path)
            .field("suite", &self.inner.generator.suite())
            .field("running", &self.inner.live.is_running())
            .finish_non_exhaustive()
    }
}

impl QrLiveProtocol {
    /// The seed's `QRLiveProtocol(config)`: validates `config`, loads the identity file
    /// (`identity.identity_file`, default `<storage.data_dir>/identity.json`; created when
    /// missing if `identity.auto_generate`), rotates the signing key when it is older than
    /// `security.key_rotation_days`, and builds the SNTP client and chain-head fetcher. No
    /// network traffic happens until a frame is made.
    ///
    /// # Errors
    /// [`ProtocolError::Config`] listing every configuration problem; identity file errors.
    pub fn new(config: &Config) -> Result<QrLiveProtocol, ProtocolError> {
        config.validate()?;
        let path = config.identity.identity_path(&config.storage.data_dir);
        let pq = config.live.signature.post_quantum();
        // A new key is valid from a little before now, so that a frame stamped with
        // SNTP-corrected time just behind the local clock still verifies.
        let created = now_ms().saturating_sub(ms(config.time.max_drift));
        let mut key_store = if config.identity.auto_generate {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| KeyStoreError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            KeyStore::load_or_generate(&path, pq, created)?
        } else if path.exists() {
            KeyStore::load(&path)?
        } else {
            return Err(ProtocolError::IdentityMissing(path));
        };
        let days = u64::from(config.security.key_rotation_days);
        // A PEM key file is the operator's own: never rewritten, so never rotated here.
        if days > 0 && !key_store.is_external() {
            let newest = key_store.generations().last().map_or(0, |g| g.created_ms);
            let now = now_ms();
            if newest.saturating_add(days * 86_400_000) <= now {
                key_store.rotate(created, 86_400_000, pq)?;
            }
        }
        let time = Arc::new(SntpClient::new(time_config(config)));
        let chains = Arc::new(
            ChainHeads::new(blockchain_config(config))
                .map_err(|e| ProtocolError::Evidence(e.to_string()))?,
        );
        QrLiveProtocol::with_parts(Parts {
            config: config.clone(),
            key_store,
            time: Some(time),
            chains: Some(chains),
        })
    }

    /// Builds the object from given parts: a key store and evidence sources (`None` to go
    /// without), for tests and embedding.
    ///
    /// # Errors
    /// Configuration problems; a suite the identity has no key for; a secret the key
    /// derivation refuses.
    pub fn with_parts(parts: Parts) -> Result<QrLiveProtocol, ProtocolError> {
        let Parts {
            config,
            key_store,
            time,
            chains,
        } = parts;
        config.validate()?;
        let hmac = issuer_hmac_key(&config)?;
        let data_key = data_key(&config)?;
        let identity = key_store.current();
        let mut generator = Generator::new(Arc::clone(&identity))
            .with_suite(suite_of(config.live.signature))?
            .with_hmac_key(Arc::clone(&hmac));
        if let Some(k) = &data_key {
            generator = generator.with_data_key(Arc::clone(k));
        }
        let identity_hash = generator.identity_hash().to_vec();
        let key_set = key_store.key_set();
        let options = verifier_options(&config);
        let mut verifier = Verifier::new(key_set.clone(), options).with_hmac_key(hmac);
        if let Some(k) = &data_key {
            verifier = verifier.with_data_key(Arc::clone(k));
        }
        if let Some(c) = &chains {
            verifier = verifier.with_anchor_view(Arc::new(evidence::ChainAnchors(Arc::clone(c))));
        }
        let bound = secs(config.live.evidence_timeout_secs);
        Ok(QrLiveProtocol {
            inner: Arc::new(Inner {
                identity_path: key_store.path().to_owned(),
                generator,
                verifier,
                key_set,
                identity_hash,
                has_data_key: data_key.is_some(),
                evidence: evidence::Evidence::new(time, chains, bound),
                sequence: AtomicU64::new(0),
                counters: Counters::default(),
                started: Instant::now(),
                live: live::LiveState::new(),
                config,
            }),
        })
    }

    /// The seed's `generate_single_qr(user_data, sign_data, encrypt_data)`: one frame with
    /// the current evidence, and its QR code as PNG bytes.
    ///
    /// `user_data` is a JSON object, or a string (carried as `{"user_text": ...}`), or
    /// `None`. Evidence is awaited for at most `live.evidence_timeout_secs`.
    ///
    /// ```no_run
    /// # async fn run(qrlp: &qrlp_protocol::QrLiveProtocol) -> Result<(), qrlp_protocol::ProtocolError> {
    /// use serde_json::json;
    /// // Basic QR generation
    /// let (qr_data, qr_image) = qrlp.generate_single(None, true, false).await?;
    /// // With user text (from a web interface)
    /// let user_data = json!({"user_text": "Welcome to my livestream!"});
    /// let (qr_data, qr_image) = qrlp.generate_single(Some(user_data), true, false).await?;
    /// // Maximum security (signed + encrypted; needs security.data_key_secret)
    /// let (qr_data, qr_image) = qrlp
    ///     .generate_single(Some(json!({"sensitive": "data"})), true, true)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// User data that is not an object or string, or too large; encryption without a data
    /// key; a frame too long for a QR symbol.
    pub async fn generate_single(
        &self,
        user_data: Option<Value>,
        sign: bool,
        encrypt: bool,
    ) -> Result<(LiveFrame, Vec<u8>), ProtocolError> {
        let image = ImageOptions::from_config(&self.inner.config);
        self.generate_single_with(user_data, sign, encrypt, &image)
            .await
    }

    /// [`generate_single`](Self::generate_single) with the image drawn as `image` says
    /// (style, caption, module size) instead of as configured.
    ///
    /// # Errors
    /// As [`generate_single`](Self::generate_single).
    pub async fn generate_single_with(
        &self,
        user_data: Option<Value>,
        sign: bool,
        encrypt: bool,
        image: &ImageOptions,
    ) -> Result<(LiveFrame, Vec<u8>), ProtocolError> {
        let result = self.inner.generate(user_data, sign, encrypt, image).await;
        if result.is_err() {
            self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The seed's `verify_qr_data(qr_json)`: verifies a frame of either format (compact
    /// `QL2:…` or JSON) with this issuer's keys, HMAC key, data key and chain heads. Never
    /// panics; malformed input gives `valid_json: false`.
    ///
    /// ```no_run
    /// # fn run(qrlp: &qrlp_protocol::QrLiveProtocol, qr_json: &str) {
    /// let results = qrlp.verify(qr_json);
    /// if !results.valid_json {
    ///     println!("Invalid JSON structure");
    /// } else if !results.hmac_verified {
    ///     println!("Data integrity compromised");
    /// } else if !results.time_verified {
    ///     println!("Timestamp outside acceptable window");
    /// }
    /// println!("{}", results.to_json());
    /// # }
    /// ```
    pub fn verify(&self, input: &str) -> VerificationReport {
        let report = self.inner.verifier.verify(input, now_ms());
        let c = &self.inner.counters;
        c.verified.fetch_add(1, Ordering::Relaxed);
        if report.is_valid() {
            c.verified_valid.fetch_add(1, Ordering::Relaxed);
        }
        report
    }

    /// The PNG of `frame` drawn as `image` says (the one PNG path: [`render_frame`]).
    ///
    /// # Errors
    /// Image options the renderer refuses.
    pub fn render(
        &self,
        frame: &LiveFrame,
        image: &ImageOptions,
    ) -> Result<Vec<u8>, ProtocolError> {
        render_frame(frame, &self.inner.config, image)
    }

    /// The verifier this object uses (its key set, HMAC and data keys, chain heads).
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The public key set of every key still in the identity file (publish it for offline
    /// verifiers: [`KeySet::to_json`]).
    pub fn key_set(&self) -> &KeySet {
        &self.inner.key_set
    }

    /// The issuer's identity hash.
    pub fn identity_hash(&self) -> &[u8] {
        &self.inner.identity_hash
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The seed's `start_live_generation()`: spawns a task on the current tokio runtime
    /// that makes a frame every `live.update_interval_secs` (signed per
    /// `security.sign_qr_data`, encrypted per `security.encrypt_qr_data`, with the user
    /// data provider's value) and hands it to subscribers and callbacks. Does nothing if
    /// already running.
    ///
    /// # Errors
    /// [`ProtocolError::NoRuntime`] outside a tokio runtime.
    pub fn start(&self) -> Result<(), ProtocolError> {
        live::start(&self.inner)
    }

    /// The seed's `stop_live_generation()`: stops the task and waits for it to finish; no
    /// update is delivered after this returns. Idempotent; callbacks, subscribers and the
    /// user data provider stay for the next [`start`](Self::start).
    pub async fn stop(&self) {
        live::stop(&self.inner).await;
    }

    /// Whether live generation is running.
    pub fn is_running(&self) -> bool {
        self.inner.live.is_running()
    }

    /// A channel receiving every live update. A receiver that falls more than 64 updates
    /// behind skips the oldest ([`broadcast::error::RecvError::Lagged`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveUpdate>> {
        self.inner.live.sender.subscribe()
    }

    /// The seed's `add_update_callback(callback)`: `f` is called with every live update, on
    /// the live task (keep it short; use [`subscribe`](Self::subscribe) for slow work). A
    /// panic in `f` is caught, counted in the statistics, and does not stop generation.
    ///
    /// ```no_run
    /// # fn run(qrlp: &qrlp_protocol::QrLiveProtocol) {
    /// let id = qrlp.add_update_callback(|update| {
    ///     let path = format!("qr_{}.png", update.frame.sequence);
    ///     let _ = std::fs::write(path, &update.png);
    /// });
    /// qrlp.remove_update_callback(id);
    /// # }
    /// ```
    pub fn add_update_callback<F>(&self, f: F) -> CallbackId
    where
        F: Fn(&LiveUpdate) + Send + Sync + 'static,
    {
        self.inner.live.add_callback(Arc::new(f))
    }

    /// The seed's `remove_update_callback(callback)`; true if it was registered.
    pub fn remove_update_callback(&self, id: CallbackId) -> bool {
        self.inner.live.remove_callback(id)
    }

    /// The seed's `set_user_data_callback(callback)`: `f` provides the user data of each
    /// live frame (a JSON object, or a string carried as `user_text`). A panic in `f` is
    /// caught and counted; that frame goes without user data.
    pub fn set_user_data_provider<F>(&self, f: F)
    where
        F: Fn() -> Option<Value> + Send + Sync + 'static,
    {
        *self
            .inner
            .live
            .provider
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }

    /// Removes the user data provider.
    pub fn clear_user_data_provider(&self) {
        *self
            .inner
            .live
            .provider
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Makes the next sequence number at least `floor` (a node taking over a channel from
    /// another continues after the last number that one issued).
    pub fn raise_sequence(&self, floor: u64) {
        self.inner
            .sequence
            .fetch_max(floor.saturating_sub(1), Ordering::AcqRel);
    }

    /// The latest live update, if any.
    pub fn current(&self) -> Option<Arc<LiveUpdate>> {
        lock(&self.inner.live.current).clone()
    }

    /// The seed's `get_statistics()`, with its structure: `running`, `total_updates`,
    /// `sequence_number`, `last_update_time`, `current_qr_data`, `time_provider_stats`,
    /// `blockchain_stats`, `identity_stats`, `crypto_stats`; plus `uptime_seconds`,
    /// `generation` (frames made and failed, success rate, evidence misses, callback and
    /// provider panics) and `verification` (frames verified, valid).
    pub fn statistics(&self) -> Value {
        self.inner.statistics()
    }
}

impl Drop for QrLiveProtocol {
    fn drop(&mut self) {
        self.inner.live.signal_stop();
    }
}

impl Inner {
    fn next_sequence(&self, now: u64) -> u64 {
        // Starts at the Unix time in ms and only grows, so an issuer that restarts does not
        // reuse a sequence number a verifier may still hold in its replay cache.
        let prev = self
            .sequence
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some(s.saturating_add(1).max(now))
            })
            .unwrap_or_else(|s| s);
        prev.saturating_add(1).max(now)
    }

    pub(crate) async fn generate(
        &self,
        user_data: Option<Value>,
        sign: bool,
        encrypt: bool,
        image: &ImageOptions,
    ) -> Result<(LiveFrame, Vec<u8>), ProtocolError> {
        self.generate_bounded(user_data, sign, encrypt, image, None)
            .await
    }

    /// [`Inner::generate`] waiting at most `evidence_bound` for evidence (`None`: the
    /// configured `live.evidence_timeout_secs`). Live frames pass zero: they take the
    /// evidence already measured, and the measurement goes on in the background for the
    /// next frame, so a slow time server never delays a frame.
    pub(crate) async fn generate_bounded(
        &self,
        user_data: Option<Value>,
        sign: bool,
        encrypt: bool,
        image: &ImageOptions,
        evidence_bound: Option<Duration>,
    ) -> Result<(LiveFrame, Vec<u8>), ProtocolError> {
        let user_data = match user_data {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(Value::String(s)) => {
                let mut m = UserData::new();
                m.insert("user_text".into(), Value::String(s));
                Some(m)
            }
            Some(_) => return Err(ProtocolError::UserData),
        };
        let gathered = self.evidence.gather(evidence_bound).await;
        let local = SystemTime::now();
        let max_drift = secs(self.config.time.max_drift);
        let stamped = match &gathered.time {
            Some(ev) if ev.verified(max_drift) => ev.corrected(local),
            _ => local,
        };
        let timestamp_ms = stamped
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let content = FrameContent {
            sequence: self.next_sequence(timestamp_ms),
            timestamp_ms,
            ttl_ms: ms(self.config.live.ttl_secs).max(1),
            anchors: gathered.anchors,
            time_evidence: gathered.time.as_ref().and_then(evidence::summary),
            user_data,
            ..FrameContent::default()
        };
        let seal = Seal { sign, encrypt };
        let format = self.config.live.frame_format;
        let (text, qr_data) = match format {
            FrameFormat::Compact => {
                let text = self.generator.compact_os(&content, seal)?;
                // What the frame says, in the seed's shape: decoded from the frame itself,
                // with the full identity hash and block hashes the issuer knows.
                let qr_data =
                    CompactFrame::decode(&text)?.describe(&self.identity_hash, &content.anchors);
                (text, qr_data)
            }
            FrameFormat::Json => {
                let data = self.generator.json_os(&content, seal)?;
                (data.to_json(), data)
            }
        };
        let suite = self.generator.suite();
        let mut frame = LiveFrame {
            qr_data,
            text,
            format,
            qr_version: 0,
            sequence: content.sequence,
            timestamp_ms,
            ttl_ms: content.ttl_ms,
            key_id: sign
                .then(|| self.generator.identity().key_id(suite))
                .flatten()
                .map(|k| k.to_string()),
            encrypted: encrypt,
            algorithm: sign.then(|| suite.name()),
            ecc: self.config.qr.default_error_correction,
        };
        let code = encode_frame(&frame.text, &self.config)?;
        frame.qr_version = image::version_number(&code);
        frame.ecc = code.ec_level();
        let png = image::render_code(&code, &frame, &self.config, image)?;
        let c = &self.counters;
        c.generated.fetch_add(1, Ordering::Relaxed);
        if sign {
            c.signed.fetch_add(1, Ordering::Relaxed);
        }
        if encrypt {
            c.encrypted.fetch_add(1, Ordering::Relaxed);
        }
        Ok((frame, png))
    }

    fn statistics(&self) -> Value {
        let c = &self.counters;
        let generated = c.generated.load(Ordering::Relaxed);
        let failed = c.failed.load(Ordering::Relaxed);
        let rate = |ok: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                ok as f64 / total as f64
            }
        };
        let live = &self.live;
        let current = lock(&live.current).clone();
        let time_stats = self.evidence.time.as_ref().map_or_else(
            || json!({"success_rate": 0.0, "active_servers": 0, "last_sync": null}),
            |t| t.provider_stats(),
        );
        let chain_stats = self.evidence.chains.as_ref().map_or_else(
            || json!({"success_rate": 0.0, "cached_chains": [], "last_update": null}),
            |c| c.blockchain_stats(),
        );
        let seq = self.sequence.load(Ordering::Relaxed);
        let verified = c.verified.load(Ordering::Relaxed);
        json!({
            "running": live.is_running(),
            "total_updates": live.updates.load(Ordering::Relaxed),
            "sequence_number": seq,
            "last_update_time": current.as_ref().map(|u| unix_secs(u.generated_at)),
            "current_qr_data": current.as_ref().and_then(|u| serde_json::from_str::<Value>(&u.frame.qr_data.to_json()).ok()),
            "time_provider_stats": time_stats,
            "blockchain_stats": chain_stats,
            "identity_stats": {
                "hash_generations": 1,
                "file_count": 1,
                "last_hash": hex(&self.identity_hash),
                "identity_file": self.identity_path.display().to_string(),
                "system": self.config.identity.include_system_info.then(system_info),
                "custom": &self.config.identity.custom_data,
                "key_id": self.generator.identity().key_id(self.generator.suite()).map(|k| k.to_string()),
            },
            "crypto_stats": {
                "keys_count": self.key_set.len(),
                "signature_count": c.signed.load(Ordering::Relaxed),
                "signature_algorithm": self.generator.suite().name(),
                "encryption_enabled": self.has_data_key,
                "hmac_enabled": true,
            },
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "generation": {
                "frames_generated": generated,
                "frames_failed": failed,
                "success_rate": rate(generated, generated + failed),
                "encrypted_frames": c.encrypted.load(Ordering::Relaxed),
                "time_evidence_failures": self.evidence.counters.time_failures.load(Ordering::Relaxed),
                "chain_evidence_failures": self.evidence.counters.chain_failures.load(Ordering::Relaxed),
                "callback_panics": live.callback_panics.load(Ordering::Relaxed),
                "provider_panics": live.provider_panics.load(Ordering::Relaxed),
            },
            "verification": {
                "frames_verified": verified,
                "frames_valid": c.verified_valid.load(Ordering::Relaxed),
            },
        })
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The host name, OS and architecture (reported with the identity when
/// `identity.include_system_info`).
fn system_info() -> Value {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    json!({"arch": std::env::consts::ARCH, "hostname": hostname, "os": std::env::consts::OS})
}

/// The identity file of `config`: `identity.identity_file`, or
/// `<storage.data_dir>/identity.json`.
pub fn identity_path(config: &Config) -> PathBuf {
    config.identity.identity_path(&config.storage.data_dir)
}

/// Where the HMAC secret is kept when `security.hmac_secret` is empty:
/// `<storage.data_dir>/hmac.secret`.
pub fn hmac_secret_path(config: &Config) -> PathBuf {
    std::path::Path::new(&config.storage.data_dir).join("hmac.secret")
}

fn hmac_from(config: &Config, secret: &str) -> Result<Arc<HmacKey>, ProtocolError> {
    Ok(Arc::new(HmacKey::from_secret(
        &config.security.hmac_key_id,
        secret.as_bytes(),
    )?))
}

/// The issuer's HMAC key: from `security.hmac_secret` (its UTF-8 bytes), else from the
/// secret file ([`hmac_secret_path`]), created with mode 0600 on first use. The HMAC layer
/// is always present, and processes sharing the data directory check each other's frames.
///
/// # Errors
/// A secret the key derivation refuses; the secret file (unreadable, or readable by
/// others).
pub fn issuer_hmac_key(config: &Config) -> Result<Arc<HmacKey>, ProtocolError> {
    let sec = &config.security;
    if !sec.hmac_secret.is_empty() {
        return hmac_from(config, &sec.hmac_secret);
    }
    let path = hmac_secret_path(config);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| KeyStoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let secret = qrlp_live::load_or_generate_secret(&path)?;
    hmac_from(config, &secret)
}

/// A verifier's HMAC key: the configured secret, else the secret file if there is one
/// (never created here); `None` when neither exists, and the HMAC layer is not checked.
///
/// # Errors
/// As [`issuer_hmac_key`].
pub fn verifier_hmac_key(config: &Config) -> Result<Option<Arc<HmacKey>>, ProtocolError> {
    let sec = &config.security;
    if !sec.hmac_secret.is_empty() {
        return hmac_from(config, &sec.hmac_secret).map(Some);
    }
    match qrlp_live::load_secret(&hmac_secret_path(config))? {
        Some(secret) => hmac_from(config, &secret).map(Some),
        None => Ok(None),
    }
}

/// The user-data key of `security.data_key_secret`, if one is configured.
///
/// # Errors
/// A secret the key derivation refuses.
pub fn data_key(config: &Config) -> Result<Option<Arc<DataKey>>, ProtocolError> {
    let sec = &config.security;
    if sec.data_key_secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(DataKey::from_secret(
        &sec.data_key_id,
        sec.data_key_secret.as_bytes(),
    )?)))
}

/// The verification policy of `[verification]`, `[time]` and `[security]`. The identity is
/// checked against the signing key (no expected identity is needed).
pub fn verifier_options(config: &Config) -> VerifierOptions {
    let v = &config.verification;
    VerifierOptions {
        max_future_drift_ms: ms(config.time.max_drift),
        json_ttl_ms: ms(v.max_time_drift),
        require_signature: config.security.sign_qr_data,
        allowed_suites: v
            .allowed_signature_algorithms
            .iter()
            .filter_map(|a| a.parse::<SignatureSuite>().ok())
            .map(suite_of)
            .collect(),
        require_time_evidence: v.require_time_server,
        max_time_offset_ms: ms(config.time.max_drift),
        require_blockchain: v.require_blockchain,
        require_identity: v.require_identity,
        ..VerifierOptions::default()
    }
}

/// A verifier for frames of the issuer whose public keys are `keys` (an exported key set,
/// or the identity file's), with the configured policy, the HMAC key when there is one
/// ([`verifier_hmac_key`]) and the data key. It never creates an identity or a secret, and
/// makes no network calls (anchors are judged unknown).
///
/// # Errors
/// A configuration problem, or a secret that cannot be used.
pub fn offline_verifier(config: &Config, keys: KeySet) -> Result<Verifier, ProtocolError> {
    config.validate()?;
    let mut verifier = Verifier::new(keys, verifier_options(config));
    if let Some(k) = verifier_hmac_key(config)? {
        verifier = verifier.with_hmac_key(k);
    }
    if let Some(k) = data_key(config)? {
        verifier = verifier.with_data_key(k);
    }
    Ok(verifier)
}

/// The SNTP client's settings from `[time]`.
pub fn time_config(config: &Config) -> qrlp_evidence::TimeConfig {
    let t = &config.time;
    qrlp_evidence::TimeConfig {
        time_servers: t.time_servers.clone(),
        update_interval: secs(t.update_interval),
        timeout: secs(t.timeout),
        max_drift: secs(t.max_drift),
        fallback_to_system: t.fallback_to_system,
    }
}

/// The chain-head fetcher's settings from `[blockchain]`: one endpoint per enabled chain.
pub fn blockchain_config(config: &Config) -> qrlp_evidence::BlockchainConfig {
    let b = &config.blockchain;
    qrlp_evidence::BlockchainConfig {
        chains: b
            .enabled_chains
            .iter()
            .map(|name| ChainEndpoint {
                name: name.clone(),
                kind: match b.kind(name) {
                    qrlp_config::ChainKind::BitcoinRpc => qrlp_evidence::ChainKind::BitcoinRpc,
                    qrlp_config::ChainKind::EthereumRpc => qrlp_evidence::ChainKind::EthereumRpc,
                    qrlp_config::ChainKind::Blockcypher => qrlp_evidence::ChainKind::Blockcypher,
                },
                url: b.endpoint(name).unwrap_or_default(),
            })
            .collect(),
        cache_duration: secs(b.cache_duration),
        timeout: secs(b.timeout),
        retry_attempts: b.retry_attempts,
        ..qrlp_evidence::BlockchainConfig::default()
    }
}

/// Runs `f`, turning a panic into `None` (callbacks and providers are user code).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}
