//! Webhook endpoints of the request's organization: create (the signing secret is shown
//! once), list, get, update, delete, rotate the secret, send a test event, the delivery
//! log and redelivery. Another organization's endpoint answers 404.
//!
//! A URL whose host is, or resolves to, a loopback, private, link-local, unique-local,
//! CGNAT or cloud-metadata address is refused with 400 unless
//! `webhooks.allow_private_targets` is on; deliveries check the connected address again.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use qrlp_store::{Delivery, NewWebhook, Webhook, WebhookPatch};
use qrlp_webhook::{catalogue, Payload, Secret};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::authz::need;
use crate::error::{store_error, ApiError, ErrorBody, ErrorCode};
use crate::extract::Input;
use crate::state::AppState;

/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// Integer id.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Subscribed event types (`*`: all).
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub is_active: bool,
    /// Why it was disabled automatically (410 Gone, or failing for 5 days).
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed deliveries.
    pub failing_since: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

fn ts(t: time::OffsetDateTime) -> String {
    qrlp_store::chains::seed_timestamp(t)
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            description: w.description.clone(),
            events: w.events.clone(),
            is_active: w.is_active,
            disabled_reason: w.disabled_reason.clone(),
            failing_since: w.failing_since.map(ts),
            created_at: ts(w.created_at),
            updated_at: ts(w.updated_at),
        }
    }
}

/// `GET /api/v1/webhooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// The organization's endpoints.
    pub webhooks: Vec<WebhookView>,
}

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http(s)://…`, at most 2048 bytes, reaching a public address.
    pub url: String,
    /// Event types from `GET /api/v1/webhooks/event-types`, or `*`.
    pub events: Vec<String>,
    /// Free text, at most 1000 characters.
    pub description: Option<String>,
}

/// An endpoint with its signing secret, shown only when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify `X-Webhook-Signature` with this string as the HMAC key (the seed's
    /// `verifyWebhookSignature`), or Standard Webhooks signatures with any
    /// `standardwebhooks` library. Shown only now.
    pub secret: String,
}

/// Body of `PATCH /api/v1/webhooks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// New description; empty clears it.
    pub description: Option<String>,
    /// Enable (clears an automatic disabling) or disable.
    pub is_active: Option<bool>,
}

/// One event type of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeView {
    /// Its name.
    pub name: String,
    /// What happened.
    pub description: String,
    /// Whether a `*` subscription receives it (`false` for chatty types such as `qr.scan`,
    /// which must be named).
    pub in_wildcard: bool,
}

/// `GET /api/v1/webhooks/event-types`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeList {
    /// Every event type.
    pub event_types: Vec<EventTypeView>,
}

/// Answer of `POST /api/v1/webhooks/{id}/test`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestQueued {
    /// The event's `webhook-id`.
    pub webhook_id: String,
    /// The delivery to follow in the log.
    pub delivery_id: i64,
    /// `Test event queued`.
    pub message: String,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// 1 for the first.
    pub attempt: i64,
    /// When it started.
    pub started_at: String,
    /// The answer's HTTP status.
    pub status_code: Option<i64>,
    /// Milliseconds until the answer or the failure.
    pub latency_ms: i64,
    /// Why it failed without an answer (timeout, refused address, …).
    pub error: Option<String>,
    /// The start of the answer's body (1024 characters at most).
    pub response_body: Option<String>,
}

/// One delivery with its attempts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// Delivery id.
    pub id: i64,
    /// The event's `webhook-id` (the same for every attempt and redelivery).
    pub webhook_id: String,
    /// Event type.
    pub event: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    /// The last answer's status.
    pub last_status_code: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: String,
    /// Delivered.
    pub delivered_at: Option<String>,
    /// The JSON body sent.
    pub payload: String,
    /// Every attempt, first first.
    pub log: Vec<AttemptView>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: format!("evt_{}", d.event_id.simple()),
            event: d.event_type.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(ts),
            last_status_code: d.last_status,
            last_error: d.last_error.clone(),
            created_at: ts(d.created_at),
            delivered_at: d.delivered_at.map(ts),
            payload: d.body.clone(),
            log: d
                .log
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    started_at: ts(a.started_at),
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                    response_body: a.response_body.clone(),
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// Query of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "Webhook not found")
}

fn webhook_error(e: qrlp_store::StoreError) -> ApiError {
    match e {
        qrlp_store::StoreError::NotFound => not_found(),
        other => store_error(other),
    }
}

fn id_of(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(not_found)
}

async fn valid_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    crate::delivery::check_target(url, state.config().webhooks.allow_private_targets)
        .await
        .map_err(|m| ApiError::invalid_field("url", m))?;
    Ok(url.to_string())
}

fn valid_events(events: &[String]) -> Result<(), ApiError> {
    catalogue::validate_subscriptions(events).map_err(|m| ApiError::invalid_field("events", m))
}

fn valid_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::invalid_field(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn new_secret() -> Secret {
    Secret::from_random(qrlp_store::secret::random_32())
}

/// List the organization's webhook endpoints.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Endpoints, without secrets", body = WebhookList))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksRead>,
) -> Result<Json<WebhookList>, ApiError> {
    let org = auth.org()?.organization.id;
    let list = state
        .store()
        .list_webhooks(org)
        .await
        .map_err(store_error)?;
    Ok(Json(WebhookList {
        webhooks: list.iter().map(WebhookView::from).collect(),
    }))
}

/// The event catalogue.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/event-types",
    tag = "webhooks",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Every event type", body = EventTypeList))
)]
pub async fn event_types(_auth: Auth<need::WebhooksRead>) -> Json<EventTypeList> {
    Json(EventTypeList {
        event_types: catalogue::CATALOGUE
            .iter()
            .map(|k| EventTypeView {
                name: k.name.into(),
                description: k.description.into(),
                in_wildcard: k.in_wildcard,
            })
            .collect(),
    })
}

/// Create an endpoint. Its signing secret is in the answer, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = WebhookWithSecret),
        (status = 400, description = "Bad URL (or a refused address), unknown event type", body = ErrorBody)
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Input(body): Input<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    valid_events(&body.events)?;
    let description = valid_description(body.description)?;
    let url = valid_url(&state, &body.url).await?;
    let org = auth.org()?.organization.id;
    let secret = new_secret();
    let w = state
        .store()
        .create_webhook(
            &auth.audit(),
            state.data_key(),
            NewWebhook {
                org_id: org,
                url,
                description,
                events: body.events,
            },
            &secret,
        )
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook: WebhookView::from(&w),
            secret: secret.expose().to_string(),
        }),
    ))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksRead>,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = id_of(&id)?;
    let org = auth.org()?.organization.id;
    let w = state
        .store()
        .get_webhook(org, id)
        .await
        .map_err(webhook_error)?;
    Ok(Json(WebhookView::from(&w)))
}

/// Change an endpoint's URL, events, description or state.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id")),
    request_body = UpdateWebhook,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Path(id): Path<String>,
    Input(body): Input<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = id_of(&id)?;
    if let Some(events) = &body.events {
        valid_events(events)?;
    }
    let description = match body.description {
        Some(d) => Some(valid_description(Some(d))?),
        None => None,
    };
    let url = match &body.url {
        Some(u) => Some(valid_url(&state, u).await?),
        None => None,
    };
    let org = auth.org()?.organization.id;
    let w = state
        .store()
        .update_webhook(
            &auth.audit(),
            org,
            id,
            WebhookPatch {
                url,
                description,
                events: body.events,
                is_active: body.is_active,
            },
        )
        .await
        .map_err(webhook_error)?;
    Ok(Json(WebhookView::from(&w)))
}

/// Delete an endpoint with its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Deleted; the endpoint as it was", body = WebhookView),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = id_of(&id)?;
    let org = auth.org()?.organization.id;
    let w = state
        .store()
        .delete_webhook(&auth.audit(), org, id)
        .await
        .map_err(webhook_error)?;
    Ok(Json(WebhookView::from(&w)))
}

/// Replace the signing secret; the new one is in the answer, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The new secret, shown this once", body = WebhookWithSecret),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let id = id_of(&id)?;
    let org = auth.org()?.organization.id;
    let secret = new_secret();
    let w = state
        .store()
        .rotate_webhook_secret(&auth.audit(), state.data_key(), org, id, &secret)
        .await
        .map_err(webhook_error)?;
    Ok(Json(WebhookWithSecret {
        webhook: WebhookView::from(&w),
        secret: secret.expose().to_string(),
    }))
}

/// Queue a `webhook.test` event for this endpoint only.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "Queued", body = TestQueued),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    let id = id_of(&id)?;
    let org = auth.org()?.organization.id;
    let payload = Payload::new(catalogue::WEBHOOK_TEST)
        .with("webhookId", id)
        .with("message", "Test event from qrlp")
        .with(
            "timestamp",
            qrlp_store::chains::seed_timestamp(time::OffsetDateTime::now_utc()),
        );
    let (event, delivery) = state
        .store()
        .enqueue_for_endpoint(org, id, &payload)
        .await
        .map_err(webhook_error)?;
    state.wake_webhooks();
    Ok((
        StatusCode::ACCEPTED,
        Json(TestQueued {
            webhook_id: format!("evt_{}", event.simple()),
            delivery_id: delivery,
            message: "Test event queued".into(),
        }),
    ))
}

/// The delivery log, newest first, each delivery with its attempts.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Endpoint id"), DeliveriesQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryList),
        (status = 404, description = "No such endpoint in your organization", body = ErrorBody)
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksRead>,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let id = id_of(&id)?;
    let limit = match q.limit.as_deref() {
        None => 20,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field("limit", "must be an integer between 1 and 100")
            })?,
    };
    let org = auth.org()?.organization.id;
    let list = state
        .store()
        .list_deliveries(org, id, limit)
        .await
        .map_err(webhook_error)?;
    Ok(Json(DeliveryList {
        deliveries: list.iter().map(DeliveryView::from).collect(),
    }))
}

/// Send a delivery's event again (same `webhook-id`, a fresh schedule).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Endpoint id"),
        ("delivery_id" = i64, Path, description = "Delivery id")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "The new delivery", body = DeliveryView),
        (status = 404, description = "No such endpoint or delivery in your organization", body = ErrorBody)
    )
)]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Auth<need::WebhooksWrite>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let id = id_of(&id)?;
    let delivery = id_of(&delivery)?;
    let org = auth.org()?.organization.id;
    let d = state
        .store()
        .redeliver(&auth.audit(), org, id, delivery)
        .await
        .map_err(webhook_error)?;
    state.wake_webhooks();
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&d))))
}
