//! Organization live channels: the same live server as `qrlp live` (`qrlp-live-server`),
//! one [`LiveChannel`] per stored channel, each with its own identity and HMAC secret.
//!
//! - Frames: every channel runs its own [`QrLiveProtocol`] task in this process.
//! - Socket.IO: one namespace, `/live`; a client names its channel by the public token in
//!   its `auth` payload (`{"channel": "<token>"}`) and joins that channel's room. The public
//!   connection may read; user text is set over REST with `live:write`.
//! - Public pages: `/live/{token}/` (viewer), `/live/{token}/verify`, and the read routes
//!   under `/live/{token}/api/...`; the token is 256 random bits.
//!
//! Single node for now: with several nodes each would generate every channel (no lease and
//! no cross-node adapter yet).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use qrlp_config::{Config, FrameFormat, QrStyle};
use qrlp_live::{KeyStore, SigningIdentity};
use qrlp_live_server::LiveChannel;
use qrlp_protocol::{Parts, QrLiveProtocol};
use qrlp_store::{LiveChannelRecord, Store};
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The Socket.IO namespace of the channels.
pub const NAMESPACE: &str = "/live";

struct Running {
    record: LiveChannelRecord,
    channel: Arc<LiveChannel>,
    forward: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<Uuid, Arc<Running>>,
    by_token: HashMap<String, Uuid>,
}

/// The channels this process serves, and the Socket.IO layer they share.
#[derive(Clone)]
pub struct LiveChannels {
    inner: Arc<Inner>,
}

struct Inner {
    base: Config,
    registry: RwLock<Registry>,
    io: SocketIo,
    layer: SocketIoLayer,
}

/// Why a channel could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The protocol object refused the settings.
    #[error(transparent)]
    Protocol(#[from] qrlp_protocol::ProtocolError),
}

impl LiveChannels {
    /// No channels yet; the Socket.IO namespace is registered.
    pub fn new(base: &Config) -> LiveChannels {
        let (layer, io) = SocketIo::builder().max_payload(64 * 1024).build_layer();
        let inner = Arc::new(Inner {
            base: base.clone(),
            registry: RwLock::new(Registry::default()),
            io: io.clone(),
            layer,
        });
        let weak = Arc::downgrade(&inner);
        io.ns(
            NAMESPACE,
            move |s: SocketRef, TryData(auth): TryData<serde_json::Value>| {
                let inner = weak.upgrade();
                async move {
                    let token = auth
                        .ok()
                        .and_then(|a| a.get("channel").and_then(|c| c.as_str()).map(String::from));
                    let found = inner.zip(token).and_then(|(inner, t)| {
                        let reg = inner
                            .registry
                            .read()
                            .unwrap_or_else(PoisonError::into_inner);
                        reg.by_token
                            .get(&t)
                            .and_then(|id| reg.by_id.get(id))
                            .map(|r| (r.record.id, Arc::clone(&r.channel)))
                    });
                    match found {
                        Some((id, channel)) => qrlp_live_server::socket::attach(
                            &s,
                            channel,
                            Some(id.to_string()),
                            false,
                        ),
                        None => {
                            let _ = s.emit(
                                "connect_error_reason",
                                &serde_json::json!({"error": "Unknown channel"}),
                            );
                            let _ = s.disconnect();
                        }
                    }
                }
            },
        );
        LiveChannels { inner }
    }

    /// The Socket.IO layer to put on the application.
    pub fn layer(&self) -> SocketIoLayer {
        self.inner.layer.clone()
    }

    /// Starts every stored channel.
    ///
    /// # Errors
    /// The store; a channel whose settings the protocol refuses.
    pub async fn load(
        &self,
        store: &Store,
    ) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let all = store.all_live_channels().await?;
        let n = all.len();
        for record in all {
            self.upsert(record)?;
        }
        Ok(n)
    }

    /// Starts (or restarts with new settings) the channel of `record`.
    ///
    /// # Errors
    /// Settings the protocol refuses.
    pub fn upsert(&self, record: LiveChannelRecord) -> Result<Arc<LiveChannel>, LiveError> {
        let protocol = Arc::new(protocol_for(&self.inner.base, &record)?);
        let url = format!(
            "{}/live/{}/",
            self.inner.base.server.public_base_url(),
            record.public_token
        );
        let channel = LiveChannel::new(protocol, url);
        // The same identity across restarts of the channel: sequence numbers start at the
        // Unix time in ms and only grow, so a restarted channel never repeats one.
        channel.start()?;
        let forward = qrlp_live_server::socket::forward(
            self.inner.io.clone(),
            NAMESPACE.into(),
            Some(record.id.to_string()),
            &channel,
        );
        let running = Arc::new(Running {
            record: record.clone(),
            channel: Arc::clone(&channel),
            forward,
        });
        let old = {
            let mut reg = self
                .inner
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            reg.by_token.insert(record.public_token.clone(), record.id);
            reg.by_id.insert(record.id, running)
        };
        if let Some(old) = old {
            let ch = Arc::clone(&old.channel);
            tokio::spawn(async move { ch.stop().await });
        }
        Ok(channel)
    }

    /// Stops and forgets channel `id`.
    pub fn remove(&self, id: Uuid) {
        let old = {
            let mut reg = self
                .inner
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let old = reg.by_id.remove(&id);
            if let Some(o) = &old {
                reg.by_token.remove(&o.record.public_token);
            }
            old
        };
        if let Some(old) = old {
            let ch = Arc::clone(&old.channel);
            tokio::spawn(async move { ch.stop().await });
        }
    }

    /// The running channel `id` of organization `org`.
    pub fn get(&self, org: Uuid, id: Uuid) -> Option<Arc<LiveChannel>> {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        reg.by_id
            .get(&id)
            .filter(|r| r.record.org_id == org)
            .map(|r| Arc::clone(&r.channel))
    }

    /// The running channel whose public token is `token`.
    pub fn by_token(&self, token: &str) -> Option<Arc<LiveChannel>> {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        reg.by_token
            .get(token)
            .and_then(|id| reg.by_id.get(id))
            .map(|r| Arc::clone(&r.channel))
    }

    /// Prometheus series of every channel, labelled by channel id.
    pub fn write_metrics(&self, out: &mut String) {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for (id, r) in &reg.by_id {
            qrlp_live_server::app::write_channel_metrics(
                out,
                &r.channel,
                &format!("channel=\"{id}\""),
            );
        }
    }
}

/// The protocol object of a channel: the server's configuration with the channel's
/// interval, ttl, style, format, HMAC secret and identity (kept in the database).
fn protocol_for(base: &Config, r: &LiveChannelRecord) -> Result<QrLiveProtocol, LiveError> {
    let mut config = base.clone();
    config.live.update_interval_secs = r.interval_secs;
    config.live.ttl_secs = r.ttl_secs;
    config.live.frame_format = if r.frame_format == "compact" {
        FrameFormat::Compact
    } else {
        FrameFormat::Json
    };
    config.qr.style = match r.style.as_str() {
        "professional" => QrStyle::Professional,
        "minimal" => QrStyle::Minimal,
        _ => QrStyle::Live,
    };
    config.security.hmac_secret = r.hmac_secret.clone();
    config.security.hmac_key_id = format!("ch-{}", &r.id.simple().to_string()[..12]);
    let created_ms = u64::try_from(r.created_at.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(0)
        .saturating_sub(60_000);
    let key_store = KeyStore::in_memory(
        &format!("live channel {}", r.id),
        SigningIdentity::from_ed25519_seed(r.identity_seed),
        created_ms,
    );
    Ok(QrLiveProtocol::with_parts(Parts {
        config,
        key_store,
        time: None,
        chains: None,
    })?)
}
