//! The device fleet's adapter state: the data key that seals fleet secrets, the replay
//! cache of signed device requests, the event bus behind the WebSocket channels, the
//! bounded ring of recent fleet log events, and the background sweep (offline devices,
//! scheduled rotation). Pure rules live in `qrlp-fleet`; SQL in `qrlp_store::devices`.
//!
//! Errors of the seed-002 routes use that seed's shape,
//! `{"error": {"code", "message", "details", "request_id"}}`: handlers return
//! [`FleetError`], and [`seed_errors`] rewrites the platform envelope of anything else
//! (authentication, permissions, bad JSON) on those routes into it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use qrlp_config::Config;
use qrlp_fleet::replay::ReplayCache;
use qrlp_fleet::rotation::RotationPolicy;
use qrlp_fleet::signing::{check_timestamp, verify_signature, Rejection, SignedHeaders};
use qrlp_store::{DeviceAuth, StoreError};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::request_id::RequestId;
use crate::state::AppState;

/// Most recent log events kept for `GET /monitoring/logs`.
pub const LOG_RING_CAPACITY: usize = 1000;
/// Largest number of live (device, nonce) pairs remembered against replays.
pub const REPLAY_CACHE_ENTRIES: usize = 2_000_000;

/// A message of a WebSocket channel, in seed 002's format.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WsMessage {
    /// `device_heartbeat`, `device_status`, `device_registered`, `key_rotated`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub timestamp: String,
    /// What happened.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Which channels an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `dashboard`: every device event.
    Dashboard,
    /// `security`: keys, certificates, deregistrations.
    Security,
    /// `training`: learning progress.
    Training,
}

/// One event on the bus: an organization's, for some channels, maybe about one device.
#[derive(Debug, Clone)]
pub struct FleetEvent {
    /// The organization whose clients may see it.
    pub org_id: Uuid,
    /// The device it is about (the `device/{id}` channel).
    pub device_id: Option<String>,
    /// The channels besides the device's.
    pub channels: &'static [Channel],
    /// The message, serialized once.
    pub json: Arc<str>,
}

/// One recent log event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEvent {
    /// RFC 3339.
    pub timestamp: String,
    /// `info`, `warning` or `error`.
    pub level: &'static str,
    /// `devices`, `security`, `heartbeat`, `monitoring`.
    pub component: &'static str,
    /// What happened.
    pub message: String,
    /// The organization, when the event is one organization's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(skip)]
    pub(crate) at: OffsetDateTime,
}

/// The fleet's share of the application state.
pub struct Fleet {
    replay: ReplayCache,
    events: broadcast::Sender<FleetEvent>,
    logs: Mutex<VecDeque<LogEvent>>,
    started: Instant,
    started_at: OffsetDateTime,
    policy: RotationPolicy,
    last_sweep: Mutex<Option<OffsetDateTime>>,
    redis: Option<Arc<RedisBus>>,
}

/// Redis, when configured: fans events out to the other servers (pub/sub on
/// [`REDIS_CHANNEL`]) and makes the replay cache shared (`SET NX` per device and nonce).
struct RedisBus {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    timeout: Duration,
    /// This process, so that it skips its own events coming back.
    node: Uuid,
}

/// The Redis pub/sub channel of fleet events.
pub const REDIS_CHANNEL: &str = "qrlp:fleet:events";
const REDIS_NONCE_PREFIX: &str = "qrlp:fleet:nonce:";

impl RedisBus {
    async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn forget(&self) {
        *self.conn.lock().await = None;
    }

    /// `Ok(true)` when the key was new.
    async fn set_nx(&self, key: &str, ttl_secs: u64) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let r: Result<Option<String>, _> = tokio::time::timeout(
            self.timeout,
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl_secs.max(1))
                .query_async(&mut c),
        )
        .await
        .map_err(|_| "SET timed out".to_string())?;
        match r {
            Ok(v) => Ok(v.is_some()),
            Err(e) => {
                self.forget().await;
                Err(e.to_string())
            }
        }
    }

    async fn publish(&self, payload: String) -> Result<(), String> {
        let mut c = self.conn().await?;
        let r: Result<i64, _> = tokio::time::timeout(
            self.timeout,
            redis::cmd("PUBLISH")
                .arg(REDIS_CHANNEL)
                .arg(payload)
                .query_async(&mut c),
        )
        .await
        .map_err(|_| "PUBLISH timed out".to_string())?;
        if let Err(e) = r {
            self.forget().await;
            return Err(e.to_string());
        }
        Ok(())
    }
}

fn channel_names(cs: &[Channel]) -> Vec<&'static str> {
    cs.iter()
        .map(|c| match c {
            Channel::Dashboard => "dashboard",
            Channel::Security => "security",
            Channel::Training => "training",
        })
        .collect()
}

/// The static channel list of names received from another server.
fn channels_of(names: &[String]) -> &'static [Channel] {
    let has = |n: &str| names.iter().any(|x| x == n);
    match (has("dashboard"), has("security"), has("training")) {
        (true, true, _) => &[Channel::Dashboard, Channel::Security],
        (true, false, _) => &[Channel::Dashboard],
        (false, true, _) => &[Channel::Security],
        (false, false, true) => &[Channel::Training],
        _ => &[],
    }
}

impl Fleet {
    /// The fleet state for `config`. Server secrets (CA keys, ML-KEM seeds) are sealed
    /// with the platform's data key ([`AppState::data_key`](crate::state::AppState::data_key)).
    pub fn new(config: &Config) -> Fleet {
        let f = &config.fleet;
        Fleet {
            replay: ReplayCache::new(REPLAY_CACHE_ENTRIES),
            events: broadcast::channel(4096).0,
            logs: Mutex::new(VecDeque::with_capacity(LOG_RING_CAPACITY)),
            started: Instant::now(),
            started_at: OffsetDateTime::now_utc(),
            policy: RotationPolicy {
                interval_days: f.rotation_interval_days,
                grace: time::Duration::seconds(
                    i64::try_from(f.rotation_grace_secs).unwrap_or(i64::MAX),
                ),
            },
            last_sweep: Mutex::new(None),
            redis: if config.redis.is_configured() {
                redis::Client::open(config.redis.url.as_str())
                    .ok()
                    .map(|client| {
                        Arc::new(RedisBus {
                            client,
                            conn: tokio::sync::Mutex::new(None),
                            timeout: Duration::from_millis(config.redis.timeout_ms.max(1)),
                            node: Uuid::new_v4(),
                        })
                    })
            } else {
                None
            },
        }
    }

    /// The rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Seconds since the server started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// When the server started.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// When the background sweep last ran.
    pub fn last_sweep(&self) -> Option<OffsetDateTime> {
        *self.last_sweep.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.events.subscribe()
    }

    /// Publishes a seed-shaped message to the organization's clients.
    pub fn publish(
        &self,
        org_id: Uuid,
        device_id: Option<&str>,
        channels: &'static [Channel],
        kind: &str,
        data: serde_json::Value,
    ) {
        let msg = WsMessage {
            kind: kind.to_string(),
            timestamp: rfc3339(OffsetDateTime::now_utc()),
            data,
        };
        let json: Arc<str> = serde_json::to_string(&msg)
            .unwrap_or_else(|_| "{}".into())
            .into();
        if let Some(bus) = &self.redis {
            let payload = serde_json::json!({
                "node": bus.node, "org_id": org_id, "device_id": device_id,
                "channels": channel_names(channels), "json": &*json,
            })
            .to_string();
            let bus = bus.clone();
            tokio::spawn(async move {
                if let Err(e) = bus.publish(payload).await {
                    tracing::warn!(error = %e, "fleet event not published to Redis");
                }
            });
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(FleetEvent {
            org_id,
            device_id: device_id.map(str::to_string),
            channels,
            json,
        });
    }

    /// With Redis: receives the other servers' events and hands them to this server's
    /// WebSocket clients, reconnecting after failures. Without Redis: nothing to do.
    pub fn spawn_redis_fanout(&self) -> Option<tokio::task::JoinHandle<()>> {
        let bus = self.redis.clone()?;
        let tx = self.events.clone();
        Some(tokio::spawn(async move {
            use futures_util::StreamExt as _;
            let mut backoff = Duration::from_millis(200);
            loop {
                match bus.client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(REDIS_CHANNEL).await {
                        Ok(()) => {
                            backoff = Duration::from_millis(200);
                            let mut stream = ps.into_on_message();
                            while let Some(msg) = stream.next().await {
                                let Ok(text) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                                    continue;
                                };
                                if v["node"].as_str() == Some(bus.node.to_string().as_str()) {
                                    continue;
                                }
                                let (Some(org), Some(json)) = (
                                    v["org_id"].as_str().and_then(|o| Uuid::parse_str(o).ok()),
                                    v["json"].as_str(),
                                ) else {
                                    continue;
                                };
                                let names: Vec<String> = v["channels"]
                                    .as_array()
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(|x| x.as_str().map(str::to_string))
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                let _ = tx.send(FleetEvent {
                                    org_id: org,
                                    device_id: v["device_id"].as_str().map(str::to_string),
                                    channels: channels_of(&names),
                                    json: json.into(),
                                });
                            }
                            tracing::warn!("fleet event subscription ended; reconnecting");
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot subscribe to fleet events"),
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot reach Redis for fleet events"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }))
    }

    /// Records a log event in the ring (and in the process log).
    pub fn log(
        &self,
        level: &'static str,
        component: &'static str,
        org: Option<Uuid>,
        message: String,
    ) {
        match level {
            "error" => tracing::error!(component, org = ?org, "{message}"),
            "warning" => tracing::warn!(component, org = ?org, "{message}"),
            _ => tracing::info!(component, org = ?org, "{message}"),
        }
        let now = OffsetDateTime::now_utc();
        let mut ring = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == LOG_RING_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(LogEvent {
            timestamp: rfc3339(now),
            level,
            component,
            message,
            organization_id: org,
            at: now,
        });
    }

    /// The ring's events matching the filters, oldest first: the organization's and those
    /// of no organization.
    pub fn logs(
        &self,
        org: Uuid,
        level: Option<&str>,
        component: Option<&str>,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Vec<LogEvent> {
        let ring = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter()
            .filter(|e| e.organization_id.is_none_or(|o| o == org))
            .filter(|e| level.is_none_or(|l| l == e.level))
            .filter(|e| component.is_none_or(|c| c == e.component))
            .filter(|e| since.is_none_or(|s| e.at >= s))
            .filter(|e| until.is_none_or(|u| e.at < u))
            .cloned()
            .collect()
    }

    /// Checks a signed device request: headers, timestamp window, the device and its key
    /// version (not deregistered, not past its grace), the signature, then the replay cache
    /// (only valid requests are remembered, so forgeries cannot fill it).
    ///
    /// # Errors
    /// 401 `INVALID_TOKEN` with the reason; 503 when the database is unavailable.
    pub async fn authenticate(
        &self,
        state: &AppState,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(DeviceAuth, SignedHeaders), FleetError> {
        let id = self.identify(state, headers).await?;
        self.verify(state, id, method, path_and_query, body).await
    }

    /// The first half of [`Fleet::authenticate`], from the headers alone: they parse, the
    /// timestamp is in its window, the device and key version exist and are accepted. A
    /// route reading a large body calls this before reading it.
    ///
    /// # Errors
    /// As [`Fleet::authenticate`].
    pub async fn identify(
        &self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Identified, FleetError> {
        let h = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))
            .map_err(FleetError::rejected)?;
        let now = OffsetDateTime::now_utc();
        let tolerance = i64::from(state.config().fleet.signature_tolerance_secs);
        check_timestamp(h.timestamp, now.unix_timestamp(), tolerance)
            .map_err(FleetError::rejected)?;
        let auth = state
            .store()
            .device_auth(&h.device_id, h.key_version)
            .await
            .map_err(FleetError::store)?
            .ok_or(FleetError::rejected(Rejection::UnknownDevice))?;
        if auth.device.revoked_at.is_some() {
            return Err(FleetError::rejected(Rejection::Revoked));
        }
        let key = auth
            .key
            .as_ref()
            .ok_or(FleetError::rejected(Rejection::UnknownKeyVersion))?;
        let version = qrlp_fleet::rotation::KeyVersion {
            version: key.version,
            created_at: key.created_at,
            superseded_at: key.superseded_at,
        };
        if !self.policy.status(&version, now).accepts() {
            return Err(FleetError::rejected(Rejection::KeyExpired));
        }
        let public = <[u8; 32]>::try_from(key.ed25519_public.as_slice())
            .map_err(|_| FleetError::rejected(Rejection::BadSignature))?;
        Ok(Identified {
            auth,
            headers: h,
            public,
        })
    }

    /// The second half of [`Fleet::authenticate`]: the signature over the body, then the
    /// replay caches.
    ///
    /// # Errors
    /// As [`Fleet::authenticate`].
    pub async fn verify(
        &self,
        state: &AppState,
        id: Identified,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<(DeviceAuth, SignedHeaders), FleetError> {
        let Identified {
            auth,
            headers: h,
            public,
        } = id;
        let now = OffsetDateTime::now_utc();
        let tolerance = i64::from(state.config().fleet.signature_tolerance_secs);
        verify_signature(&public, method, path_and_query, &h, body)
            .map_err(FleetError::rejected)?;
        self.replay
            .check_and_remember(
                &h.device_id,
                &h.nonce,
                h.timestamp,
                now.unix_timestamp(),
                tolerance,
            )
            .map_err(FleetError::rejected)?;
        if let Some(bus) = &self.redis {
            // Shared across servers: a request replayed to another server is refused too.
            // Redis down: the local cache alone decides (logged).
            let key = format!(
                "{REDIS_NONCE_PREFIX}{}",
                crate::fleet::hex16(&qrlp_fleet::sha256(
                    format!("{}\n{}", h.device_id, h.nonce).as_bytes()
                ))
            );
            let ttl = u64::try_from(2 * tolerance + 1).unwrap_or(601);
            match bus.set_nx(&key, ttl).await {
                Ok(true) => {}
                Ok(false) => return Err(FleetError::rejected(Rejection::Replayed)),
                Err(e) => tracing::warn!(error = %e, "shared replay check unavailable"),
            }
        }
        Ok((auth, h))
    }
}

/// A device request identified from its headers ([`Fleet::identify`]), its signature not
/// yet checked.
pub struct Identified {
    auth: DeviceAuth,
    headers: SignedHeaders,
    public: [u8; 32],
}

/// The first 16 bytes of a digest, lower-case hex.
fn hex16(d: &[u8; 32]) -> String {
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 with whole seconds, as the seed's examples show.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Runs the sweep every `fleet.offline_check_interval_ms`: devices past three missed
/// intervals go offline (each reported by exactly one server, however many run the sweep),
/// and devices whose current key is older than the rotation interval are asked to rotate.
pub fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    let period = Duration::from_millis(state.config().fleet.offline_check_interval_ms);
    let fanout = state.fleet().spawn_redis_fanout();
    tokio::spawn(async move {
        // Ends with the sweep (aborted at shutdown).
        struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                if let Some(h) = &self.0 {
                    h.abort();
                }
            }
        }
        let _fanout = AbortOnDrop(fanout);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweep(&state).await;
        }
    })
}

/// One pass of the background sweep.
pub async fn sweep(state: &AppState) {
    let fleet = state.fleet();
    let now = OffsetDateTime::now_utc();
    match state.store().mark_offline_due(now).await {
        Ok(gone) => {
            for d in gone {
                let last_seen = d.last_seen.map(rfc3339);
                fleet.publish(
                    d.org_id,
                    Some(&d.id),
                    &[Channel::Dashboard],
                    "device_status",
                    serde_json::json!({
                        "device_id": d.id, "status": "offline", "previous_status": "online",
                        "last_seen": last_seen,
                    }),
                );
                fleet.log(
                    "warning",
                    "heartbeat",
                    Some(d.org_id),
                    format!(
                        "device {} went offline (last seen {})",
                        d.id,
                        last_seen.as_deref().unwrap_or("never")
                    ),
                );
                crate::fleet_webhooks::emit(
                    state,
                    d.org_id,
                    "device.offline",
                    serde_json::json!({
                        "device_id": d.id, "organization_id": d.org_id, "device_name": d.name,
                        "last_seen": last_seen,
                    }),
                )
                .await;
            }
        }
        Err(e) => fleet.log(
            "error",
            "heartbeat",
            None,
            format!("offline sweep failed: {e}"),
        ),
    }
    let due_before = now - fleet.policy().interval();
    match state.store().request_due_rotations(due_before).await {
        Ok(asked) => {
            for (id, org) in asked {
                fleet.log(
                    "info",
                    "security",
                    Some(org),
                    format!("scheduled key rotation asked of {id}"),
                );
            }
        }
        Err(e) => fleet.log(
            "error",
            "security",
            None,
            format!("rotation schedule failed: {e}"),
        ),
    }
    *fleet.last_sweep.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
}

/// An error of a seed-002 route, in that seed's shape.
#[derive(Debug)]
pub struct FleetError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
    retry_after: Option<u64>,
}

/// The body of a seed-002 error.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "DEVICE_NOT_FOUND",
    "message": "Device with ID 'dev_invalid' not found",
    "details": {"device_id": "dev_invalid", "timestamp": "2024-01-15T10:30:00Z"},
    "request_id": "req_xyz789"}}))]
pub struct SeedErrorBody {
    /// The error.
    pub error: SeedError,
}

/// Seed 002's error object.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedError {
    /// `DEVICE_NOT_FOUND`, `DEVICE_OFFLINE`, `INVALID_TOKEN`, `INSUFFICIENT_PERMISSIONS`,
    /// `ENROLLMENT_TOKEN_EXPIRED`, `INVALID_QUANTUM_KEY`, `QUOTA_EXCEEDED`,
    /// `VALIDATION_ERROR`, `NOT_FOUND`, ...
    pub code: String,
    /// Human-readable.
    pub message: String,
    /// Structured detail; always has `timestamp`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// As in `X-Request-ID`.
    pub request_id: String,
}

impl FleetError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> FleetError {
        FleetError {
            status,
            code,
            message: message.into(),
            details: serde_json::json!({}),
            retry_after: None,
        }
    }

    /// Adds fields to `details`.
    pub fn with(mut self, key: &str, value: impl Serialize) -> FleetError {
        if let Some(o) = self.details.as_object_mut() {
            o.insert(
                key.to_string(),
                serde_json::to_value(value).unwrap_or_default(),
            );
        }
        self
    }

    /// 401 `INVALID_TOKEN` for a refused signed request, with `details.reason`.
    pub fn rejected(r: Rejection) -> FleetError {
        let status = if r == Rejection::ReplayCacheFull {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        };
        FleetError::new(status, "INVALID_TOKEN", r.message()).with("reason", r.reason())
    }

    /// 404 `DEVICE_NOT_FOUND` in the seed's words.
    pub fn device_not_found(id: &str) -> FleetError {
        let shown: String = id.chars().take(80).collect();
        FleetError::new(
            StatusCode::NOT_FOUND,
            "DEVICE_NOT_FOUND",
            format!("Device with ID '{shown}' not found"),
        )
        .with("device_id", shown)
    }

    /// 422 `VALIDATION_ERROR` about `field`.
    pub fn validation(field: &str, message: impl std::fmt::Display) -> FleetError {
        FleetError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
            format!("{field}: {message}"),
        )
        .with("field", field)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(what: &str) -> FleetError {
        FleetError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    /// 429 `QUOTA_EXCEEDED` with `Retry-After`.
    pub fn quota(limit: u32, retry_after: Duration) -> FleetError {
        let mut e = FleetError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "QUOTA_EXCEEDED",
            format!("Device endpoints allow {limit} requests per minute per device"),
        )
        .with("limit_per_minute", limit);
        e.retry_after = Some(retry_after.as_secs().max(1));
        e
    }

    /// The answer for a storage error: the platform's mapping ([`crate::store_error`]) in
    /// this seed's codes.
    pub fn store(e: StoreError) -> FleetError {
        match e {
            StoreError::NotFound => FleetError::not_found("Resource"),
            StoreError::Invalid(m) => match m.split_once(':') {
                Some((field, rest)) if !field.contains(' ') => {
                    FleetError::validation(field, rest.trim())
                }
                _ => FleetError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", m),
            },
            e => FleetError::from(crate::store_error(e)),
        }
    }

    /// 500, the cause logged only.
    pub fn internal(cause: impl std::fmt::Display) -> FleetError {
        tracing::error!(error = %cause, "internal error");
        FleetError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            crate::error::INTERNAL_MESSAGE,
        )
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

fn seed_body(code: &str, message: &str, mut details: serde_json::Value) -> Vec<u8> {
    let request_id = RequestId::current().unwrap_or_else(RequestId::generate);
    if !details.is_object() {
        details = serde_json::json!({ "detail": details });
    }
    if let Some(o) = details.as_object_mut() {
        o.entry("timestamp")
            .or_insert_with(|| rfc3339(OffsetDateTime::now_utc()).into());
    }
    serde_json::to_vec(&SeedErrorBody {
        error: SeedError {
            code: code.to_string(),
            message: message.to_string(),
            details,
            request_id: request_id.to_string(),
        },
    })
    .unwrap_or_default()
}

impl IntoResponse for FleetError {
    fn into_response(self) -> Response {
        let body = seed_body(self.code, &self.message, self.details);
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<crate::error::ApiError> for FleetError {
    fn from(e: crate::error::ApiError) -> FleetError {
        if e.code() == crate::error::ErrorCode::Internal {
            tracing::error!(error = ?e, "internal error");
        }
        let (status, code) = seed_code(e.code().as_str(), e.code().status());
        FleetError::new(status, code, e.message())
    }
}

/// Seed 002's code and status for a platform error code.
fn seed_code(code: &str, status: StatusCode) -> (StatusCode, &'static str) {
    match code {
        "INVALID_INPUT" => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        "UNAUTHORIZED" => (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
        "FORBIDDEN" => (StatusCode::FORBIDDEN, "INSUFFICIENT_PERMISSIONS"),
        "RATE_LIMITED" => (StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED"),
        "NOT_FOUND" => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "CONFLICT" => (StatusCode::CONFLICT, "CONFLICT"),
        "PAYLOAD_TOO_LARGE" => (status, "PAYLOAD_TOO_LARGE"),
        "UNSUPPORTED_MEDIA_TYPE" => (status, "UNSUPPORTED_MEDIA_TYPE"),
        "METHOD_NOT_ALLOWED" => (status, "METHOD_NOT_ALLOWED"),
        "UNAVAILABLE" => (status, "SERVICE_UNAVAILABLE"),
        _ => (status, "INTERNAL_ERROR"),
    }
}

/// Middleware of the seed-002 routes: an error response in the platform envelope
/// (`{"code", "message", "error": "…", ...}`) becomes seed 002's
/// `{"error": {"code", "message", "details", "request_id"}}`, with the seed's codes
/// (`INVALID_TOKEN`, `INSUFFICIENT_PERMISSIONS`, `VALIDATION_ERROR` as 422,
/// `QUOTA_EXCEEDED`); so does a plain-text rejection of an extractor or layer. Headers
/// (rate limits, `Retry-After`) are kept.
pub async fn seed_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        // A plain-text rejection (an extractor's, a layer's): the seed's shape, with the
        // platform's code for the status and the rejection's own words.
        let (code, fallback) = crate::error::ErrorCode::for_status(parts.status);
        let (status, seed) = seed_code(code.as_str(), parts.status);
        let text = String::from_utf8_lossy(&bytes);
        let message = match text.trim() {
            "" => fallback,
            t => t,
        };
        parts.status = status;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        let body = seed_body(seed, message, serde_json::json!({}));
        return Response::from_parts(parts, Body::from(body));
    };
    let (Some(code), Some(message)) = (v["code"].as_str(), v["message"].as_str()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if !v["error"].is_string() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let (status, seed) = seed_code(code, parts.status);
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    let details = v.get("details").cloned().unwrap_or(serde_json::json!({}));
    Response::from_parts(parts, Body::from(seed_body(seed, message, details)))
}
