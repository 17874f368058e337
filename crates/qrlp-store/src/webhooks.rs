//! Webhook endpoints, the outbox of events and their deliveries.
//!
//! - **Endpoints** belong to an organization; their signing secret is sealed with the
//!   [`DataKey`] and only opened to sign a delivery. Subscriptions are rows
//!   (`webhook_subscriptions`), so the fan-out is one `INSERT … SELECT`.
//! - **The outbox.** A capability writes its event with [`enqueue_event!`] inside the
//!   transaction of the change it reports (or [`Store::enqueue_event`] on its own): the
//!   event row and one pending delivery per subscribed, active endpoint. Nothing is sent
//!   inside a request; a committed change always has its event, a rolled-back one never.
//! - **Delivery.** Workers [`Store::claim_deliveries`]: due rows get a lease
//!   (`locked_until`) and a claim token in one statement (PostgreSQL: `FOR UPDATE SKIP
//!   LOCKED`, so processes never claim the same row; SQLite: the write lock). A worker that
//!   dies loses its lease and the rows become due again: delivery is at least once, and
//!   receivers deduplicate by `webhook-id` (the event id). [`Store::record_attempts`] writes
//!   the attempts' log and the next step in one transaction, disabling an endpoint that
//!   answered 410 or has failed without a success for the disable period, with an audit
//!   record.

use std::time::Duration;

use serde_json::json;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::AuditContext;
use crate::secret::DataKey;
use crate::Store;

pub(crate) const INSERT_EVENT: &str = "INSERT INTO webhook_events \
     (id, org_id, event_type, body, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const FAN_OUT: &str = "INSERT INTO webhook_deliveries \
     (event_id, endpoint_id, org_id, status, attempts, next_attempt_at, created_at, updated_at) \
     SELECT DISTINCT $1, s.endpoint_id, $2, 'pending', 0, $3, $3, $3 \
     FROM webhook_subscriptions s JOIN webhook_endpoints e ON e.id = s.endpoint_id \
     WHERE s.org_id = $2 AND (s.event_type = $4 OR (s.event_type = '*' AND $5)) AND e.is_active";
/// [`INSERT_EVENT`] and [`FAN_OUT`] as one statement (one round trip instead of two) where
/// the backend has data-modifying `WITH` (PostgreSQL; SQLite has not). Binds: id, org,
/// type, body, time, whether `*` covers the type.
pub(crate) trait EnqueueInOne {
    const STATEMENT: Option<&'static str>;
}

impl EnqueueInOne for sqlx::PgConnection {
    const STATEMENT: Option<&'static str> = Some(
        "WITH event AS (INSERT INTO webhook_events (id, org_id, event_type, body, created_at) \
         VALUES ($1, $2, $3, $4, $5)) \
         INSERT INTO webhook_deliveries \
         (event_id, endpoint_id, org_id, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT DISTINCT $1, s.endpoint_id, $2, 'pending', 0, $5, $5, $5 \
         FROM webhook_subscriptions s JOIN webhook_endpoints e ON e.id = s.endpoint_id \
         WHERE s.org_id = $2 AND (s.event_type = $3 OR (s.event_type = '*' AND $6)) \
         AND e.is_active",
    );
}

impl EnqueueInOne for sqlx::SqliteConnection {
    const STATEMENT: Option<&'static str> = None;
}

/// The one-statement enqueue of the connection's backend, if it has one.
pub(crate) fn enqueue_in_one<C: EnqueueInOne + ?Sized>(_: &C) -> Option<&'static str> {
    C::STATEMENT
}

const INSERT_ONE_DELIVERY: &str = "INSERT INTO webhook_deliveries \
     (event_id, endpoint_id, org_id, status, attempts, next_attempt_at, created_at, updated_at) \
     VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id";

const ENDPOINT_COLS: &str = "id, org_id, url, description, events, is_active, disabled_reason, \
     failing_since, created_at, updated_at";

const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET locked_until = $1, claim_token = $2 \
     WHERE id IN (SELECT d.id FROM webhook_deliveries d \
     JOIN webhook_endpoints e ON e.id = d.endpoint_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
     AND (d.locked_until IS NULL OR d.locked_until <= $3) AND e.is_active \
     ORDER BY d.next_attempt_at LIMIT $4)";
const CLAIM_POSTGRES: &str = "UPDATE webhook_deliveries SET locked_until = $1, claim_token = $2 \
     WHERE id IN (SELECT d.id FROM webhook_deliveries d \
     JOIN webhook_endpoints e ON e.id = d.endpoint_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
     AND (d.locked_until IS NULL OR d.locked_until <= $3) AND e.is_active \
     ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE OF d SKIP LOCKED)";
const CLAIMED: &str = "SELECT d.id, d.attempts, d.event_id, d.endpoint_id, d.org_id, \
     ev.event_type, ev.body, e.url, e.secret \
     FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id \
     JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.claim_token = $1";

/// A webhook endpoint (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Integer id.
    pub id: i64,
    /// Owning organization.
    pub org_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Subscribed event types (`*` for all).
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub is_active: bool,
    /// Why it was disabled automatically (410, failing for days).
    pub disabled_reason: Option<String>,
    /// Start of the current run of failures.
    pub failing_since: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    org_id: Uuid,
    url: String,
    description: Option<String>,
    events: Json<Vec<String>>,
    is_active: bool,
    disabled_reason: Option<String>,
    failing_since: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Webhook {
            id: r.id,
            org_id: r.org_id,
            url: r.url,
            description: r.description,
            events: r.events.0,
            is_active: r.is_active,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since.map(|t| t.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        }
    }
}

/// A new endpoint. The caller checked the URL and the event names.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Owning organization.
    pub org_id: Uuid,
    /// Target URL.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types.
    pub events: Vec<String>,
}

/// Changes to an endpoint; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Enable or disable. Enabling clears the failure record.
    pub is_active: Option<bool>,
}

/// A delivery claimed by a worker, with what it needs to send it.
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: i64,
    /// The number of this attempt (1 for the first).
    pub attempt: u32,
    /// The event id: `webhook-id`.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The JSON body to send.
    pub body: String,
    /// The endpoint.
    pub endpoint_id: i64,
    /// Its organization.
    pub org_id: Uuid,
    /// Its URL.
    pub url: String,
    /// Its signing secret, opened; `None` when it cannot be opened (wrong data key).
    pub secret: Option<qrlp_webhook::Secret>,
}

impl std::fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("event_id", &self.event_id)
            .field("endpoint_id", &self.endpoint_id)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    attempts: i64,
    event_id: Uuid,
    endpoint_id: i64,
    org_id: Uuid,
    event_type: String,
    body: String,
    url: String,
    secret: Vec<u8>,
}

/// What happened to one attempt, and what to do next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: i64,
    /// Its endpoint.
    pub endpoint_id: i64,
    /// Its organization.
    pub org_id: Uuid,
    /// The attempt's number.
    pub attempt: u32,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency: Duration,
    /// Why it failed (timeout, refused address, connection error), if it did.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response_body: Option<String>,
    /// What the answer means.
    pub outcome: qrlp_webhook::Outcome,
    /// When to try again after a failure; `None` gives the delivery up.
    pub retry_at: Option<OffsetDateTime>,
}

/// One delivery with its attempts, for the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Delivery id.
    pub id: i64,
    /// The event (`webhook-id`).
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Status of the last answer.
    pub last_status: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// The body sent.
    pub body: String,
    /// Every attempt, first first.
    pub log: Vec<Attempt>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Attempt {
    /// Attempt id.
    pub id: i64,
    /// Its number (1 for the first).
    pub attempt: i64,
    /// When it started.
    #[sqlx(try_from = "Ts")]
    pub started_at: OffsetDateTime,
    /// HTTP status, if an answer came.
    pub status_code: Option<i64>,
    /// Milliseconds until the answer or the failure.
    pub latency_ms: i64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response_body: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Ts,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: Ts,
    delivered_at: Option<Ts>,
    body: String,
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.event_id, ev.event_type, d.status, d.attempts, \
     d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.delivered_at, ev.body \
     FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id";

fn endpoint_aad(org: Uuid) -> Vec<u8> {
    format!("webhook-secret:{org}").into_bytes()
}

/// Longest stored response body, in characters.
pub const MAX_RESPONSE_BODY_CHARS: usize = 1024;

/// `s` cut to at most `n` characters.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

impl Store {
    /// Creates an endpoint with its secret sealed under `key`. Audit: `webhook.create` (URL
    /// and events, never the secret).
    pub async fn create_webhook(
        &self,
        ctx: &AuditContext,
        key: &DataKey,
        new: NewWebhook,
        secret: &qrlp_webhook::Secret,
    ) -> Result<Webhook, StoreError> {
        let at = now();
        let sealed = key.seal(&endpoint_aad(new.org_id), secret.expose().as_bytes());
        let id: i64 = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO webhook_endpoints (org_id, url, description, events, secret, \
                 is_active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6) \
                 RETURNING id",
            )
            .bind(new.org_id)
            .bind(&new.url)
            .bind(new.description.as_deref())
            .bind(Json(&new.events))
            .bind(&sealed)
            .bind(Ts(at))
            .fetch_one(&mut *tx)
            .await?;
            for e in &new.events {
                sqlx::query(
                    "INSERT INTO webhook_subscriptions (endpoint_id, org_id, event_type) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(new.org_id)
                .bind(e)
                .execute(&mut *tx)
                .await?;
            }
            let audit = AuditEntry {
                org_id: Some(new.org_id),
                ctx,
                action: "webhook.create",
                target_type: "webhook",
                target_id: Some(id.to_string()),
                details: json!({ "url": new.url, "events": new.events }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok::<_, StoreError>(id)
        })?;
        self.get_webhook(new.org_id, id).await
    }

    /// The endpoints of `org`, oldest first.
    pub async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError> {
        let sql =
            format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id");
        let rows: Vec<WebhookRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(org)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(Webhook::from).collect())
    }

    /// The endpoint `id` of `org`; `NotFound` for another organization's.
    pub async fn get_webhook(&self, org: Uuid, id: i64) -> Result<Webhook, StoreError> {
        let sql =
            format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2");
        let row: Option<WebhookRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Webhook::from).ok_or(StoreError::NotFound)
    }

    /// Changes an endpoint. Audit: `webhook.update` with the fields changed.
    pub async fn update_webhook(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: i64,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        let at = now();
        let old = self.get_webhook(org, id).await?;
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let url = patch.url.clone().unwrap_or_else(|| old.url.clone());
            let description = match &patch.description {
                Some(d) => d.clone(),
                None => old.description.clone(),
            };
            let events = patch.events.clone().unwrap_or_else(|| old.events.clone());
            let is_active = patch.is_active.unwrap_or(old.is_active);
            let reenabled = is_active && !old.is_active;
            let changed = sqlx::query(
                "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, \
                 is_active = $6, updated_at = $7, \
                 disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END, \
                 failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(&url)
            .bind(description.as_deref())
            .bind(Json(&events))
            .bind(is_active)
            .bind(Ts(at))
            .bind(reenabled)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            if patch.events.is_some() {
                sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for e in &events {
                    sqlx::query(
                        "INSERT INTO webhook_subscriptions (endpoint_id, org_id, event_type) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(e)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "webhook.update",
                target_type: "webhook",
                target_id: Some(id.to_string()),
                details: json!({
                    "url": patch.url,
                    "description_changed": patch.description.is_some(),
                    "events": patch.events,
                    "is_active": patch.is_active,
                }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        self.get_webhook(org, id).await
    }

    /// Deletes an endpoint with its subscriptions and deliveries. Audit: `webhook.delete`.
    pub async fn delete_webhook(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: i64,
    ) -> Result<Webhook, StoreError> {
        let old = self.get_webhook(org, id).await?;
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let gone = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2")
                .bind(id)
                .bind(org)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Err(StoreError::NotFound);
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "webhook.delete",
                target_type: "webhook",
                target_id: Some(id.to_string()),
                details: json!({ "url": old.url }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(old)
    }

    /// Replaces an endpoint's secret. Deliveries signed from now on use the new one.
    /// Audit: `webhook.rotate_secret`.
    pub async fn rotate_webhook_secret(
        &self,
        ctx: &AuditContext,
        key: &DataKey,
        org: Uuid,
        id: i64,
        secret: &qrlp_webhook::Secret,
    ) -> Result<Webhook, StoreError> {
        let sealed = key.seal(&endpoint_aad(org), secret.expose().as_bytes());
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let changed = sqlx::query(
                "UPDATE webhook_endpoints SET secret = $3, updated_at = $4 \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(&sealed)
            .bind(Ts(at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "webhook.rotate_secret",
                target_type: "webhook",
                target_id: Some(id.to_string()),
                details: json!({}),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        self.get_webhook(org, id).await
    }

    /// Writes one event of `org` to the outbox on its own (for events that are not part of
    /// another change): the event and a delivery per subscribed active endpoint.
    pub async fn enqueue_event(
        &self,
        org: Uuid,
        payload: &qrlp_webhook::Payload,
    ) -> Result<Uuid, StoreError> {
        let at = now();
        Ok(on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let id = enqueue_event!(tx, org, payload, at)?;
            tx.commit().await?;
            id
        }))
    }

    /// Writes an event for one endpoint only (`webhook.test`), whatever it subscribes to.
    /// Returns the event id and the delivery id.
    pub async fn enqueue_for_endpoint(
        &self,
        org: Uuid,
        endpoint: i64,
        payload: &qrlp_webhook::Payload,
    ) -> Result<(Uuid, i64), StoreError> {
        self.get_webhook(org, endpoint).await?;
        let at = now();
        let id = Uuid::now_v7();
        Ok(on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(INSERT_EVENT)
                .bind(id)
                .bind(org)
                .bind(payload.event())
                .bind(payload.to_json())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let delivery: i64 = sqlx::query_scalar(INSERT_ONE_DELIVERY)
                .bind(id)
                .bind(endpoint)
                .bind(org)
                .bind(Ts(at))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            (id, delivery)
        }))
    }

    /// Claims up to `limit` due deliveries of active endpoints for `lease`, opening each
    /// endpoint's secret with `key`.
    pub async fn claim_deliveries(
        &self,
        key: &DataKey,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let at = now();
        let until = at + lease;
        let token = Uuid::now_v7();
        let pg = self.backend_name() == "postgres";
        let rows: Vec<ClaimedRow> = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let claimed = sqlx::query(if pg { CLAIM_POSTGRES } else { CLAIM_SQLITE })
                .bind(Ts(until))
                .bind(token)
                .bind(Ts(at))
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let rows = if claimed == 0 {
                Vec::new()
            } else {
                sqlx::query_as(CLAIMED)
                    .bind(token)
                    .fetch_all(&mut *tx)
                    .await?
            };
            tx.commit().await?;
            rows
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                let secret = key
                    .open(&endpoint_aad(r.org_id), &r.secret)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|t| qrlp_webhook::Secret::parse(&t).ok());
                ClaimedDelivery {
                    id: r.id,
                    attempt: u32::try_from(r.attempts + 1).unwrap_or(u32::MAX),
                    event_id: r.event_id,
                    event_type: r.event_type,
                    body: r.body,
                    endpoint_id: r.endpoint_id,
                    org_id: r.org_id,
                    url: r.url,
                    secret,
                }
            })
            .collect())
    }

    /// Records attempts and their consequences in one transaction: the log entry, the
    /// delivery's new state, the endpoint's failure record; an endpoint answering 410, or
    /// failing with no success for `disable_after`, is disabled with an audit record
    /// (`webhook.disable`).
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        disable_after: Duration,
    ) -> Result<(), StoreError> {
        use qrlp_webhook::Outcome;
        if records.is_empty() {
            return Ok(());
        }
        let at = now();
        let cutoff = at - disable_after;
        let system = AuditContext::system();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            for r in records {
                let latency = i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX);
                let body = r
                    .response_body
                    .as_deref()
                    .map(|b| cut(b, MAX_RESPONSE_BODY_CHARS));
                let error = r.error.as_deref().map(|e| cut(e, 500));
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, \
                     status_code, latency_ms, error, response_body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(r.delivery_id)
                .bind(i64::from(r.attempt))
                .bind(Ts(crate::db::truncate(r.started_at)))
                .bind(r.status_code.map(i64::from))
                .bind(latency)
                .bind(error.as_deref())
                .bind(body.as_deref())
                .execute(&mut *tx)
                .await?;
                let (status, next) = match (r.outcome, r.retry_at) {
                    (Outcome::Delivered, _) => ("delivered", at),
                    (Outcome::Failed, Some(t)) => ("pending", crate::db::truncate(t)),
                    _ => ("failed", at),
                };
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $2, attempts = $3, \
                     next_attempt_at = $4, locked_until = NULL, claim_token = NULL, \
                     last_status = $5, last_error = $6, updated_at = $7, \
                     delivered_at = CASE WHEN $2 = 'delivered' THEN $7 ELSE delivered_at END \
                     WHERE id = $1",
                )
                .bind(r.delivery_id)
                .bind(status)
                .bind(i64::from(r.attempt))
                .bind(Ts(next))
                .bind(r.status_code.map(i64::from))
                .bind(error.as_deref())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
                let disable_reason = match r.outcome {
                    Outcome::Delivered => {
                        sqlx::query(
                            "UPDATE webhook_endpoints SET failing_since = NULL \
                             WHERE id = $1 AND failing_since IS NOT NULL",
                        )
                        .bind(r.endpoint_id)
                        .execute(&mut *tx)
                        .await?;
                        None
                    }
                    Outcome::Gone => Some("The endpoint answered 410 Gone".to_string()),
                    Outcome::Failed => {
                        sqlx::query(
                            "UPDATE webhook_endpoints SET failing_since = $2 \
                             WHERE id = $1 AND failing_since IS NULL",
                        )
                        .bind(r.endpoint_id)
                        .bind(Ts(at))
                        .execute(&mut *tx)
                        .await?;
                        let since: Option<Option<Ts>> = sqlx::query_scalar(
                            "SELECT failing_since FROM webhook_endpoints WHERE id = $1",
                        )
                        .bind(r.endpoint_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match since.flatten() {
                            Some(s) if s.0 <= cutoff => Some(format!(
                                "Every delivery failed for {} s without a success",
                                disable_after.as_secs()
                            )),
                            _ => None,
                        }
                    }
                };
                if let Some(reason) = disable_reason {
                    let disabled = sqlx::query(
                        "UPDATE webhook_endpoints SET is_active = FALSE, disabled_reason = $2, \
                         updated_at = $3 WHERE id = $1 AND is_active",
                    )
                    .bind(r.endpoint_id)
                    .bind(&reason)
                    .bind(Ts(at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if disabled == 1 {
                        let audit = AuditEntry {
                            org_id: Some(r.org_id),
                            ctx: &system,
                            action: "webhook.disable",
                            target_type: "webhook",
                            target_id: Some(r.endpoint_id.to_string()),
                            details: json!({
                                "reason": reason,
                                "status_code": r.status_code,
                                "delivery_id": r.delivery_id,
                            }),
                            at,
                        };
                        insert_audit!(&mut *tx, &audit)?;
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    }

    /// The newest `limit` deliveries of endpoint `id` of `org`, each with its attempts.
    pub async fn list_deliveries(
        &self,
        org: Uuid,
        id: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.get_webhook(org, id).await?;
        let sql = format!(
            "{DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND d.org_id = $2 ORDER BY d.id DESC LIMIT $3"
        );
        let rows: Vec<DeliveryRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.delivery_with_log(r).await?);
        }
        Ok(out)
    }

    /// Delivery `delivery` of endpoint `id` of `org`.
    pub async fn get_delivery(
        &self,
        org: Uuid,
        id: i64,
        delivery: i64,
    ) -> Result<Delivery, StoreError> {
        let sql =
            format!("{DELIVERY_SELECT} WHERE d.id = $1 AND d.endpoint_id = $2 AND d.org_id = $3");
        let row: Option<DeliveryRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(delivery)
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        self.delivery_with_log(row.ok_or(StoreError::NotFound)?)
            .await
    }

    async fn delivery_with_log(&self, r: DeliveryRow) -> Result<Delivery, StoreError> {
        let log: Vec<Attempt> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, attempt, started_at, status_code, latency_ms, error, response_body \
                 FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, id",
            )
            .bind(r.id)
            .fetch_all(pool)
            .await
        })?;
        Ok(Delivery {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            next_attempt_at: (r.status == "pending").then_some(r.next_attempt_at.0),
            status: r.status,
            attempts: r.attempts,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: r.created_at.0,
            delivered_at: r.delivered_at.map(|t| t.0),
            body: r.body,
            log,
        })
    }

    /// Sends a delivery's event again to its endpoint as a new delivery (same event id, a
    /// fresh schedule). Audit: `webhook.redeliver`.
    pub async fn redeliver(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: i64,
        delivery: i64,
    ) -> Result<Delivery, StoreError> {
        let old = self.get_delivery(org, id, delivery).await?;
        let at = now();
        let new_id: i64 = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let new_id: i64 = sqlx::query_scalar(INSERT_ONE_DELIVERY)
                .bind(old.event_id)
                .bind(id)
                .bind(org)
                .bind(Ts(at))
                .fetch_one(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "webhook.redeliver",
                target_type: "webhook",
                target_id: Some(id.to_string()),
                details: json!({ "delivery_id": delivery, "new_delivery_id": new_id }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            new_id
        });
        self.get_delivery(org, id, new_id).await
    }

    /// Deliveries not yet delivered nor given up, across all organizations (for metrics
    /// and benchmarks).
    pub async fn count_pending_deliveries(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(pool)
                .await
        })?;
        Ok(crate::to_u64(n))
    }
}
