//! The webhook delivery worker: the adapter around `qrlp-webhook` and the store's outbox.
//!
//! One worker per server process (none with `webhooks.concurrency = 0`). It claims due
//! deliveries with a lease, sends up to `webhooks.concurrency` at once, and records every
//! attempt and its consequence in one transaction per batch. Events written by this
//! process wake it at once; otherwise it looks every `webhooks.poll_interval_ms`, which is
//! how it picks up other processes' events and retries that fall due.
//!
//! **Sending.** `POST` of the stored body with `Content-Type: application/json`, the seed's
//! `X-Webhook-Signature` and the Standard Webhooks headers; `webhooks.timeout_ms` for the
//! whole attempt; no redirects (a 3xx is a failure); no proxy. Only 2xx is success; 410
//! disables the endpoint; anything else is retried on the schedule, stretched to a longer
//! `Retry-After`.
//!
//! **Addresses.** Every host name is resolved by [`GuardedResolver`], which hands the
//! connector only addresses that pass [`qrlp_webhook::target::check_address`]; an IP
//! address in the URL is checked before sending. So the address actually connected to is
//! the one checked: a name that resolves to a public address when the endpoint is saved
//! and to 127.0.0.1 later is refused at delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use qrlp_config::WebhooksConfig;
use qrlp_store::{AttemptRecord, ClaimedDelivery};
use qrlp_webhook::retry::{self, Outcome, Schedule};
use qrlp_webhook::target::{self, TargetError};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("qrlp-webhooks/", env!("CARGO_PKG_VERSION"));

/// Largest batch claimed at once.
const MAX_BATCH: u32 = 256;

/// Resolves host names for deliveries, keeping only addresses a delivery may reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_checked(name.as_str(), allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` a delivery may connect to.
///
/// # Errors
/// When the name does not resolve, or resolves only to refused addresses (the first refused
/// one is named).
pub async fn resolve_checked(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut refused = None;
    let mut ok = Vec::new();
    for a in found {
        match target::check_address(a.ip(), allow_private) {
            Ok(()) => ok.push(a),
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    match (ok.is_empty(), refused) {
        (false, _) => Ok(ok),
        (true, Some(e)) => Err(Box::new(e)),
        (true, None) => Err(format!("{host} has no address").into()),
    }
}

/// Checks a webhook URL when an endpoint is saved: its form, and every address its host
/// resolves to now.
///
/// # Errors
/// What is wrong, for a 400.
pub async fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = target::check_url(url, allow_private).map_err(|e| e.to_string())?;
    if target::literal_ip(&parsed).is_some() {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default().to_string();
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|_| format!("the host {host} does not resolve"))?
        .collect();
    for a in &found {
        target::check_address(a.ip(), allow_private)
            .map_err(|e: TargetError| format!("{host} resolves to {}: {e}", a.ip()))?;
    }
    if found.is_empty() {
        return Err(format!("the host {host} does not resolve"));
    }
    Ok(())
}

/// Sends deliveries.
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Deliverer {
    /// A client for `config`.
    ///
    /// # Errors
    /// When the TLS backend cannot start.
    pub fn new(config: &WebhooksConfig) -> Result<Deliverer, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.allow_private_targets,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Deliverer {
            client,
            allow_private: config.allow_private_targets,
            timeout,
        })
    }

    /// One attempt of `d`: what happened (the caller decides the next step).
    pub async fn attempt(&self, d: &ClaimedDelivery) -> Attempted {
        let started_at = OffsetDateTime::now_utc();
        let t0 = Instant::now();
        let fail = |error: String| Attempted {
            started_at,
            latency: t0.elapsed(),
            status: None,
            error: Some(error),
            body: None,
            retry_after: None,
        };
        let Some(secret) = &d.secret else {
            return fail("the endpoint's secret cannot be opened with this data key".into());
        };
        let url = match target::check_url(&d.url, self.allow_private) {
            Ok(u) => u,
            Err(e) => return fail(e.to_string()),
        };
        let id = webhook_id(d);
        let h = secret.sign(&id, started_at.unix_timestamp(), &d.body);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &h.webhook_id)
            .header("webhook-timestamp", &h.webhook_timestamp)
            .header("webhook-signature", &h.webhook_signature)
            .header("x-webhook-signature", &h.x_webhook_signature)
            .header("x-webhook-event", &d.event_type)
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                let mut body = Vec::new();
                // The start of the answer, for the log; the rest is not read.
                while body.len() < qrlp_store::webhooks::MAX_RESPONSE_BODY_CHARS {
                    match tokio::time::timeout(self.timeout, r.chunk()).await {
                        Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                body.truncate(qrlp_store::webhooks::MAX_RESPONSE_BODY_CHARS * 4);
                Attempted {
                    started_at,
                    latency: t0.elapsed(),
                    status: Some(status),
                    error: None,
                    body: Some(String::from_utf8_lossy(&body).into_owned()),
                    retry_after,
                }
            }
            Err(e) => fail(describe(&e, self.timeout)),
        }
    }
}

/// The `webhook-id` of a delivery: its event's id.
pub fn webhook_id(d: &ClaimedDelivery) -> String {
    format!("evt_{}", d.event_id.simple())
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What one attempt saw.
#[derive(Debug, Clone)]
pub struct Attempted {
    /// When it started.
    pub started_at: OffsetDateTime,
    /// How long it took.
    pub latency: Duration,
    /// The answer's status.
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub body: Option<String>,
    /// The answer's `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// A random number in `[0, 1)` for jitter.
fn unit_random() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The record of attempt `a` of delivery `d` under `schedule`.
pub fn record(d: &ClaimedDelivery, a: Attempted, schedule: &Schedule) -> AttemptRecord {
    let outcome = a.status.map_or(Outcome::Failed, retry::outcome);
    let retry_at = match outcome {
        Outcome::Failed => schedule
            .next_delay(d.attempt, unit_random(), a.retry_after)
            .map(|wait| OffsetDateTime::now_utc() + wait),
        _ => None,
    };
    AttemptRecord {
        delivery_id: d.id,
        endpoint_id: d.endpoint_id,
        org_id: d.org_id,
        attempt: d.attempt,
        started_at: a.started_at,
        status_code: a.status,
        latency: a.latency,
        error: a.error,
        response_body: a.body,
        outcome,
        retry_at,
    }
}

/// Starts this process's worker, unless `webhooks.concurrency` is 0.
pub fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    let config = state.config().webhooks.clone();
    if config.concurrency == 0 {
        return None;
    }
    let deliverer = match Deliverer::new(&config) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery cannot start");
            return None;
        }
    };
    Some(tokio::spawn(run(state, deliverer, config)))
}

async fn run(state: AppState, deliverer: Deliverer, config: WebhooksConfig) {
    let schedule = Schedule {
        time_scale: config.retry_time_scale,
    };
    let concurrency = usize::try_from(config.concurrency).unwrap_or(1).max(1);
    let batch = (config.concurrency.saturating_mul(2)).clamp(1, MAX_BATCH);
    let lease = Duration::from_millis(config.timeout_ms) + Duration::from_secs(30);
    let poll = Duration::from_millis(config.poll_interval_ms);
    let wake = state.webhook_wake();
    loop {
        let claimed = match state
            .store()
            .claim_deliveries(state.data_key(), batch, lease)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "webhook worker cannot claim deliveries");
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let records: Vec<AttemptRecord> = futures_util::stream::iter(claimed)
            .map(|d| {
                let deliverer = deliverer.clone();
                let schedule = schedule.clone();
                async move {
                    let a = deliverer.attempt(&d).await;
                    record(&d, a, &schedule)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        if let Err(e) = state
            .store()
            .record_attempts(&records, schedule.disable_after())
            .await
        {
            // The leases run out and the deliveries are tried again: at least once.
            tracing::warn!(error = %e, count = records.len(), "cannot record webhook attempts");
        }
    }
}
