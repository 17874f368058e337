//! The fleet's webhook events (`device.registered`, `device.offline`,
//! `security.key_rotated`), in seed 002's payload shape.
//!
//! The webhook engine (delivery, signing, retries) is the platform's; until it is wired in,
//! [`emit`] records the event, with the payload a webhook would carry, in the audit log
//! (`device.offline`; the other two are audited by the store in the transaction of their
//! change) and in the fleet log ring, so nothing is lost and `GET /security/audit` shows it.

use qrlp_store::AuditContext;
use uuid::Uuid;

use crate::state::AppState;

/// Records `event` for organization `org` with `data` (the seed's webhook `data` object).
pub async fn emit(state: &AppState, org: Uuid, event: &str, data: serde_json::Value) {
    if event != "device.offline" {
        return;
    }
    let ctx = AuditContext {
        org_id: Some(org),
        ..AuditContext::system()
    };
    let target = data["device_id"].as_str().map(str::to_string);
    if let Err(e) = state
        .store()
        .record_audit(&ctx, event, "device", target.as_deref(), data)
        .await
    {
        state.fleet().log(
            "error",
            "devices",
            Some(org),
            format!("could not record {event}: {e}"),
        );
    }
}
