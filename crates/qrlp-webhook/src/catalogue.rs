//! The event catalogue: every event type a webhook endpoint can subscribe to.
//!
//! One list for the whole product. A capability that emits events adds its entries here
//! (and nowhere else), so subscriptions, the API documentation and the store agree on the
//! names. An endpoint subscribes to names from this list or to `*` (everything, including
//! types added later).

/// One event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    /// The name in `event` of the payload and in subscriptions, e.g. `scan.success`.
    pub name: &'static str,
    /// What happened, for the documentation.
    pub description: &'static str,
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
/// `webhook.test`: sent by `POST /api/v1/webhooks/{id}/test` to that endpoint only.
pub const WEBHOOK_TEST: &str = "webhook.test";
/// `training.round_started`: a federated-learning round reached its quorum.
pub const TRAINING_ROUND_STARTED: &str = "training.round_started";
/// `training.round_completed`: a federated-learning round ended (aggregated or failed).
pub const TRAINING_ROUND_COMPLETED: &str = "training.round_completed";

/// Every event type. Append new ones at the end.
pub const CATALOGUE: &[EventKind] = &[
    EventKind {
        name: SCAN_SUCCESS,
        description: "A chain value was scanned and accepted; the chain moved to its next value.",
    },
    EventKind {
        name: SCAN_FAILED,
        description:
            "A scan was refused: the value was already used, or is not the chain's current value.",
    },
    EventKind {
        name: CHAIN_CREATED,
        description: "A chain was created.",
    },
    EventKind {
        name: CHAIN_EXHAUSTED,
        description: "The last value of a chain was accepted; the chain is now inactive.",
    },
    EventKind {
        name: WEBHOOK_TEST,
        description: "A test event sent on request to one endpoint.",
    },
    EventKind {
        name: TRAINING_ROUND_STARTED,
        description: "A federated-learning round reached its quorum of devices; they train now.",
    },
    EventKind {
        name: TRAINING_ROUND_COMPLETED,
        description: "A federated-learning round ended: `status` is `completed` (a new model version) or `failed` (with a `reason`; nothing aggregated).",
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

/// Whether a subscription list includes `event`.
pub fn subscribed(events: &[String], event: &str) -> bool {
    events.iter().any(|e| e == ALL || e == event)
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
    }
}
