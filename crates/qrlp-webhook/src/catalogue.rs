//! The event catalogue: every event type a webhook endpoint can subscribe to.
//!
//! One list for the whole product. A capability that emits events adds its entries here
//! (and nowhere else), so subscriptions, the API documentation and the store agree on the
//! names. An endpoint subscribes to names from this list or to `*` (every type, including
//! types added later, except the chatty ones such as `qr.scan`, which must be named).

/// One event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    /// The name in `event` of the payload and in subscriptions, e.g. `scan.success`.
    pub name: &'static str,
    /// What happened, for the documentation.
    pub description: &'static str,
    /// Whether `*` covers it. `false` for chatty types (one event per scan of a tracked
    /// code), which an endpoint receives only when it names them.
    pub in_wildcard: bool,
}

/// A subscription to every event type, present and future.
pub const ALL: &str = "*";

/// `scan.success`: a chain value was accepted.
pub const SCAN_SUCCESS: &str = "scan.success";
/// `scan.failed`: a scan was refused (already scanned or invalid).
pub const SCAN_FAILED: &str = "scan.failed";
/// `chain.created`: a chain was created.
pub const CHAIN_CREATED: &str = "chain.created";
/// `chain.exhausted`: the last value of a chain was accepted.
pub const CHAIN_EXHAUSTED: &str = "chain.exhausted";
/// `qr.created`: a tracked QR code was created.
pub const QR_CREATED: &str = "qr.created";
/// `qr.updated`: a tracked QR code's label, target, UTM parameters or image defaults changed.
pub const QR_UPDATED: &str = "qr.updated";
/// `qr.archived`: a tracked QR code was archived (its short link answers 410).
pub const QR_ARCHIVED: &str = "qr.archived";
/// `qr.scan`: a tracked QR code was scanned (not by a bot). Chatty: not covered by `*`.
pub const QR_SCAN: &str = "qr.scan";
/// `webhook.test`: sent by `POST /api/v1/webhooks/{id}/test` to that endpoint only.
pub const WEBHOOK_TEST: &str = "webhook.test";
/// `training.round_started`: a federated-learning round reached its quorum.
pub const TRAINING_ROUND_STARTED: &str = "training.round_started";
/// `training.round_completed`: a federated-learning round ended (aggregated or failed).
pub const TRAINING_ROUND_COMPLETED: &str = "training.round_completed";
/// `device.registered`: a device of the fleet registered (seed 002).
pub const DEVICE_REGISTERED: &str = "device.registered";
/// `device.offline`: a device went offline (seed 002).
pub const DEVICE_OFFLINE: &str = "device.offline";
/// `security.key_rotated`: a device's keys were rotated (seed 002).
pub const SECURITY_KEY_ROTATED: &str = "security.key_rotated";

/// Every event type. Append new ones at the end.
pub const CATALOGUE: &[EventKind] = &[
    EventKind {
        name: SCAN_SUCCESS,
        description: "A chain value was scanned and accepted; the chain moved to its next value.",
        in_wildcard: true,
    },
    EventKind {
        name: SCAN_FAILED,
        description:
            "A scan was refused: the value was already used, or is not the chain's current value.",
        in_wildcard: true,
    },
    EventKind {
        name: CHAIN_CREATED,
        description: "A chain was created.",
        in_wildcard: true,
    },
    EventKind {
        name: CHAIN_EXHAUSTED,
        description: "The last value of a chain was accepted; the chain is now inactive.",
        in_wildcard: true,
    },
    EventKind {
        name: WEBHOOK_TEST,
        description: "A test event sent on request to one endpoint.",
        in_wildcard: true,
    },
    EventKind {
        name: QR_CREATED,
        description: "A tracked QR code was created.",
        in_wildcard: true,
    },
    EventKind {
        name: QR_UPDATED,
        description: "A tracked QR code's label, target, UTM parameters or image defaults changed.",
        in_wildcard: true,
    },
    EventKind {
        name: QR_ARCHIVED,
        description: "A tracked QR code was archived; its short link now answers 410.",
        in_wildcard: true,
    },
    EventKind {
        name: QR_SCAN,
        description: "A tracked QR code was scanned by a person (bots are not reported). One event per scan: not covered by `*`, subscribe by name.",
        in_wildcard: false,
    },
    EventKind {
        name: TRAINING_ROUND_STARTED,
        description: "A federated-learning round reached its quorum of devices; they train now.",
        in_wildcard: true,
    },
    EventKind {
        name: TRAINING_ROUND_COMPLETED,
        description: "A federated-learning round ended: `status` is `completed` (a new model version) or `failed` (with a `reason`; nothing aggregated).",
        in_wildcard: true,
    },
    EventKind {
        name: DEVICE_REGISTERED,
        description: "A device enrolled with a token and registered its keys.",
        in_wildcard: true,
    },
    EventKind {
        name: DEVICE_OFFLINE,
        description: "A device missed three heartbeat intervals and is now offline (reported once).",
        in_wildcard: true,
    },
    EventKind {
        name: SECURITY_KEY_ROTATED,
        description: "A device registered a new key version (the previous one stays valid for the grace period).",
        in_wildcard: true,
    },
];

/// The catalogue entry of `name`.
pub fn find(name: &str) -> Option<&'static EventKind> {
    CATALOGUE.iter().find(|k| k.name == name)
}

/// Checks a subscription list: 1 to 64 entries, each `*` or a catalogue name, no repeats.
///
/// # Errors
/// A message naming the first bad entry and the known names.
pub fn validate_subscriptions(events: &[String]) -> Result<(), String> {
    if events.is_empty() || events.len() > 64 {
        return Err("give 1 to 64 event types".into());
    }
    for (i, e) in events.iter().enumerate() {
        if e != ALL && find(e).is_none() {
            let known: Vec<&str> = CATALOGUE.iter().map(|k| k.name).collect();
            return Err(format!(
                "unknown event type {e:?}: use \"*\" or one of {}",
                known.join(", ")
            ));
        }
        if events[..i].contains(e) {
            return Err(format!("event type {e:?} is listed twice"));
        }
    }
    Ok(())
}

/// Whether `*` covers `event` (unknown names: yes, as they are not chatty ones).
pub fn in_wildcard(event: &str) -> bool {
    find(event).is_none_or(|k| k.in_wildcard)
}

/// Whether a subscription list includes `event`.
pub fn subscribed(events: &[String], event: &str) -> bool {
    events
        .iter()
        .any(|e| e == event || (e == ALL && in_wildcard(event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        for (i, k) in CATALOGUE.iter().enumerate() {
            assert!(k.name.contains('.'), "{}", k.name);
            assert!(CATALOGUE[..i].iter().all(|o| o.name != k.name));
        }
    }

    #[test]
    fn subscriptions() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(validate_subscriptions(&s(&["scan.success", "*"])).is_ok());
        assert!(validate_subscriptions(&s(&[])).is_err());
        assert!(validate_subscriptions(&s(&["scan.nope"])).is_err());
        assert!(validate_subscriptions(&s(&["scan.failed", "scan.failed"])).is_err());
        assert!(subscribed(&s(&["*"]), "chain.created"));
        assert!(!subscribed(&s(&["scan.success"]), "chain.created"));
        // Chatty types only by name.
        assert!(!subscribed(&s(&["*"]), QR_SCAN));
        assert!(subscribed(&s(&["*", QR_SCAN]), QR_SCAN));
        assert!(subscribed(&s(&["*"]), QR_ARCHIVED));
        assert!(!in_wildcard(QR_SCAN) && in_wildcard(QR_CREATED));
    }
}
