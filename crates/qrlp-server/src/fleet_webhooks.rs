//! The fleet's webhook events (`device.registered`, `device.offline`,
//! `security.key_rotated`), in seed 002's payload shape (`event`, `timestamp`, `data`),
//! through the platform's webhook engine (outbox, signing, retries).
//!
//! They are written to the outbox right after the change they report commits (the
//! registration, the exactly-once offline sweep, the rotation), so a crash in between can
//! lose one event but never duplicate one. `device.offline` is also kept in the audit log,
//! where `GET /security/audit` shows it.

use qrlp_store::AuditContext;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::fleet::rfc3339;
use crate::state::AppState;

/// Emits `event` of organization `org` with `data` (the seed's webhook `data` object).
pub async fn emit(state: &AppState, org: Uuid, event: &str, data: serde_json::Value) {
    if event == qrlp_webhook::catalogue::DEVICE_OFFLINE {
        let ctx = AuditContext {
            org_id: Some(org),
            ..AuditContext::system()
        };
        let target = data["device_id"].as_str().map(str::to_string);
        if let Err(e) = state
            .store()
            .record_audit(&ctx, event, "device", target.as_deref(), data.clone())
            .await
        {
            state.fleet().log(
                "error",
                "devices",
                Some(org),
                format!("could not audit {event}: {e}"),
            );
        }
    }
    let payload = qrlp_webhook::Payload::new(event)
        .with("timestamp", rfc3339(OffsetDateTime::now_utc()))
        .with("data", data);
    match state.store().enqueue_event(org, &payload).await {
        Ok(_) => state.wake_webhooks(),
        Err(e) => state.fleet().log(
            "error",
            "devices",
            Some(org),
            format!("could not queue the {event} webhook: {e}"),
        ),
    }
}
