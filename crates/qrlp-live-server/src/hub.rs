//! One live channel: a [`QrLiveProtocol`] generating frames, the user text that goes into
//! the next frame, the counters of `/api/status`, and the events every transport fans out
//! (`qr_update`, `user_data_updated`). Knows nothing of HTTP or sockets.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use qrlp_protocol::{LiveUpdate, QrLiveProtocol};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The longest user text, in characters (the seed's rule).
pub const MAX_USER_TEXT_CHARS: usize = 500;

/// The seed's error text for a user text over [`MAX_USER_TEXT_CHARS`].
pub const USER_TEXT_TOO_LONG: &str = "User data too long (max 500 characters)";

/// Events a channel publishes to its transports.
#[derive(Clone, Debug)]
pub enum HubEvent {
    /// A new frame: the `qr_update` payload.
    QrUpdate(Arc<Value>),
    /// The user text changed: the `user_data_updated` payload.
    UserDataUpdated(Arc<Value>),
}

/// Counters of one channel, as `/api/status` and `/metrics` report them.
#[derive(Debug, Default)]
pub struct Counters {
    /// Viewer and verify page loads.
    pub page_views: AtomicU64,
    /// Socket.IO clients connected now.
    pub connections: AtomicI64,
    /// Socket.IO clients ever connected.
    pub connections_total: AtomicU64,
    /// Frames broadcast as `qr_update`.
    pub qr_updates_sent: AtomicU64,
}

/// Why user text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserTextError {
    /// More than [`MAX_USER_TEXT_CHARS`] characters.
    #[error("User data too long (max 500 characters)")]
    TooLong,
    /// Not `{"user_text": "..."}`.
    #[error("Invalid user data format")]
    Invalid,
}

/// One live channel. Cheap to share behind an `Arc`.
pub struct LiveChannel {
    protocol: Arc<QrLiveProtocol>,
    user_text: Arc<RwLock<Option<String>>>,
    current: RwLock<Option<Arc<Value>>>,
    events: broadcast::Sender<HubEvent>,
    counters: Counters,
    server_url: String,
    forward: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LiveChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChannel")
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl LiveChannel {
    /// A channel over `protocol`, announcing `server_url` in its status. Its user text is
    /// the protocol's user data provider. Call [`start`](Self::start) to generate frames.
    pub fn new(protocol: Arc<QrLiveProtocol>, server_url: String) -> Arc<LiveChannel> {
        let user_text: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(None));
        let provider_text = Arc::clone(&user_text);
        protocol.set_user_data_provider(move || {
            let text = provider_text
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()?;
            Some(json!({ "user_text": text }))
        });
        Arc::new(LiveChannel {
            protocol,
            user_text,
            current: RwLock::new(None),
            events: broadcast::channel(64).0,
            counters: Counters::default(),
            server_url,
            forward: std::sync::Mutex::new(None),
        })
    }

    /// Starts frame generation (on the current tokio runtime) and the task turning each
    /// frame into a `qr_update` payload: the PNG is base64-encoded once per frame, not once
    /// per client.
    ///
    /// # Errors
    /// Outside a tokio runtime.
    pub fn start(self: &Arc<Self>) -> Result<(), qrlp_protocol::ProtocolError> {
        let mut forward = self.forward.lock().unwrap_or_else(PoisonError::into_inner);
        if forward.is_none() {
            let mut rx = self.protocol.subscribe();
            let me = Arc::downgrade(self);
            *forward = Some(tokio::spawn(async move {
                loop {
                    let update = match rx.recv().await {
                        Ok(u) => u,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    };
                    let Some(me) = me.upgrade() else { break };
                    me.publish_frame(&update);
                }
            }));
        }
        drop(forward);
        self.protocol.start()
    }

    /// Stops generation and the forwarding task.
    pub async fn stop(&self) {
        self.protocol.stop().await;
        let task = self
            .forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            t.abort();
        }
    }

    /// Publishes a frame made elsewhere (another node's, received over Redis) or by this
    /// channel's protocol: it becomes current and is sent as `qr_update`.
    pub fn publish_frame(&self, update: &LiveUpdate) {
        self.publish_payload(Arc::new(qr_update_payload(update, self.interval_secs())));
    }

    /// Makes `payload` (a `qr_update` payload) current and sends it to the transports.
    pub fn publish_payload(&self, payload: Arc<Value>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&payload));
        self.counters
            .qr_updates_sent
            .fetch_add(1, Ordering::Relaxed);
        // No transport listening is not an error.
        let _ = self.events.send(HubEvent::QrUpdate(payload));
    }

    /// The events of this channel, for a transport.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    /// The current `qr_update` payload, if a frame was made.
    pub fn current(&self) -> Option<Arc<Value>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The protocol object.
    pub fn protocol(&self) -> &Arc<QrLiveProtocol> {
        &self.protocol
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The URL announced in the status.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Seconds between frames.
    pub fn interval_secs(&self) -> f64 {
        self.protocol.config().live.update_interval_secs
    }

    /// The user text that goes into the next frame.
    pub fn user_text(&self) -> Option<String> {
        self.user_text
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks and sets the user text from a `{"user_text": ...}` value (a string, or null
    /// or an empty string to clear it) and announces it as `user_data_updated`. Returns the
    /// text now set.
    ///
    /// # Errors
    /// [`UserTextError::TooLong`] over 500 characters; [`UserTextError::Invalid`] when
    /// `body` is not such an object.
    pub fn set_user_text(&self, body: &Value) -> Result<Option<String>, UserTextError> {
        let text = match body.get("user_text") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) => String::new(),
            _ => return Err(UserTextError::Invalid),
        };
        if text.chars().count() > MAX_USER_TEXT_CHARS {
            return Err(UserTextError::TooLong);
        }
        let text = (!text.is_empty()).then_some(text);
        *self
            .user_text
            .write()
            .unwrap_or_else(PoisonError::into_inner) = text.clone();
        let payload = json!({ "user_data": text, "timestamp": now_iso() });
        let _ = self
            .events
            .send(HubEvent::UserDataUpdated(Arc::new(payload)));
        Ok(text)
    }

    /// A page was served.
    pub fn count_page_view(&self) {
        self.counters.page_views.fetch_add(1, Ordering::Relaxed);
    }

    /// A Socket.IO client connected.
    pub fn connected(&self) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.counters
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A Socket.IO client left.
    pub fn disconnected(&self) {
        self.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// `/api/status`: the seed's six keys, then `statistics` (the protocol's
    /// `statistics()` structure).
    pub fn status(&self) -> Value {
        let c = &self.counters;
        json!({
            "is_running": self.protocol.is_running(),
            "page_views": c.page_views.load(Ordering::Relaxed),
            "websocket_connections": c.connections.load(Ordering::Relaxed).max(0),
            "qr_updates_sent": c.qr_updates_sent.load(Ordering::Relaxed),
            "server_url": self.server_url,
            "current_qr_available": self.current().is_some(),
            "statistics": self.protocol.statistics(),
        })
    }
}

impl Drop for LiveChannel {
    fn drop(&mut self) {
        if let Some(t) = self
            .forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
    }
}

/// The `qr_update` payload of a frame: the seed's `qr_data` (the decoded frame in the
/// `QRData` shape), `qr_image` (a PNG data URL) and `timestamp`; beyond the seed, the exact
/// text in the code (`frame`), its format, sequence number, ttl and the update interval,
/// which the viewer's countdown uses.
pub fn qr_update_payload(update: &LiveUpdate, interval_secs: f64) -> Value {
    let f = &update.frame;
    let qr_data: Value = serde_json::from_str(&f.qr_data.to_json()).unwrap_or(Value::Null);
    let mut image = String::with_capacity(22 + update.png.len() * 4 / 3 + 4);
    image.push_str("data:image/png;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&update.png, &mut image);
    json!({
        "qr_data": qr_data,
        "qr_image": image,
        "timestamp": qrlp_live::format_timestamp(system_ms(update.generated_at)),
        "frame": f.text,
        "format": match f.format {
            qrlp_config::FrameFormat::Compact => "compact",
            qrlp_config::FrameFormat::Json => "json",
        },
        "sequence_number": f.sequence,
        "frame_timestamp_ms": f.timestamp_ms,
        "ttl_seconds": f.ttl_ms as f64 / 1000.0,
        "interval_seconds": interval_secs,
        "key_id": f.key_id,
    })
}

fn system_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, as the seed's ISO-8601 UTC timestamp with milliseconds.
pub fn now_iso() -> String {
    qrlp_live::format_timestamp(system_ms(SystemTime::now()))
}
