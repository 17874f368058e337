//! Chains and the webhook outbox, on SQLite always and on PostgreSQL when
//! `QRLP_TEST_POSTGRES_URL` is set (each case in a schema of its own).

use std::time::Duration;

use qrlp_store::secret::DataKey;
use qrlp_store::{
    AttemptRecord, AuditContext, AuditFilter, NewChain, NewWebhook, Organization, PageRequest,
    Plan, ScanSource, ScanVerdict, Store, StoreError,
};
use qrlp_webhook::{Outcome, Secret};
use time::OffsetDateTime;
use uuid::Uuid;

#[macro_use]
mod harness;

cases! {
    with_file:
    case_chain_seed_flow,
    case_concurrent_scans_accept_one,
    case_exhaustion_and_patch,
    case_database_copy_reveals_no_future_value,
    case_outbox_delivery_lifecycle,
    case_gone_and_failing_endpoints_are_disabled,
    case_isolation_by_organization,
}

fn system() -> AuditContext {
    AuditContext::system()
}

async fn org(store: &Store) -> Organization {
    let owner = store
        .create_user(
            &system(),
            &format!("o-{}@example.com", Uuid::now_v7().simple()),
            "Owner",
            None,
        )
        .await
        .expect("user");
    store
        .create_organization(
            &system(),
            &format!("Org {}", Uuid::now_v7().simple()),
            Plan::Enterprise,
            owner.id,
        )
        .await
        .expect("org")
}

async fn chain(store: &Store, key: &DataKey, org: Uuid, length: u32) -> qrlp_store::Chain {
    store
        .create_chain(
            &system(),
            key,
            NewChain {
                org_id: org,
                name: "Product Authentication Batch #42".into(),
                description: Some("Anti-counterfeiting codes for product line".into()),
                chain_length: length,
            },
        )
        .await
        .expect("create chain")
}

fn source() -> ScanSource {
    ScanSource {
        scanned_by: Some("test".into()),
        ip_address: Some("192.168.1.1".into()),
        user_agent: Some("Mozilla/5.0".into()),
    }
}

async fn current(store: &Store, key: &DataKey, org: Uuid, id: i64) -> String {
    let (_, v) = store
        .current_chain_value(key, org, id)
        .await
        .expect("current");
    qrlp_chain::to_hex(&v.expect("not exhausted"))
}

async fn case_chain_seed_flow(store: &Store, _: Option<std::path::PathBuf>) {
    let key = DataKey::generate();
    let o = org(store).await;
    let c = chain(store, &key, o.id, 500).await;
    assert_eq!(
        (c.chain_length, c.current_index, c.remaining()),
        (500, 499, 500)
    );
    assert!(c.is_active);
    let v = current(store, &key, o.id, c.id).await;
    assert_eq!(v.len(), 64);
    assert_eq!(
        current(store, &key, o.id, c.id).await,
        v,
        "GET does not move the chain"
    );

    let r = store
        .scan_chain(Some(o.id), c.id, &v, &source())
        .await
        .unwrap();
    assert_eq!(r.verdict, ScanVerdict::Accepted);
    assert_eq!((r.chain.current_index, r.chain.remaining()), (498, 499));
    assert_eq!(r.index, Some(499));
    let again = store
        .scan_chain(Some(o.id), c.id, &v, &source())
        .await
        .unwrap();
    assert_eq!(again.verdict, ScanVerdict::AlreadyScanned);
    let upper = store
        .scan_chain(Some(o.id), c.id, &v.to_uppercase(), &source())
        .await
        .unwrap();
    assert_eq!(upper.verdict, ScanVerdict::AlreadyScanned);
    let bad = store
        .scan_chain(Some(o.id), c.id, &"ab".repeat(32), &source())
        .await
        .unwrap();
    assert_eq!(bad.verdict, ScanVerdict::Invalid);
    let junk = store
        .scan_chain(Some(o.id), c.id, &"x".repeat(5000), &source())
        .await
        .unwrap();
    assert_eq!(junk.verdict, ScanVerdict::Invalid);
    let next = current(store, &key, o.id, c.id).await;
    assert_ne!(next, v);
    // The next value verifies against the one accepted before it, offline.
    let (cv, lv) = (
        qrlp_chain::from_hex(&next).unwrap(),
        qrlp_chain::from_hex(&v).unwrap(),
    );
    assert!(qrlp_chain::verify(
        u64::try_from(c.id).unwrap(),
        498,
        &cv,
        &lv
    ));

    let scans = store.list_scans(o.id, c.id, 100).await.unwrap();
    assert_eq!(scans.len(), 5);
    assert!(scans.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let first = scans.last().unwrap();
    assert!(first.is_valid);
    assert_eq!(first.chain_index, Some(499));
    assert_eq!(first.hash_value, v);
    assert_eq!(first.ip_address.as_deref(), Some("192.168.1.1"));
    assert_eq!(first.error_message, None);
    assert!(first.hash_id.is_some());
    assert_eq!(
        scans[3].error_message.as_deref(),
        Some("QR code already scanned")
    );
    assert_eq!(scans[3].hash_id, first.hash_id);
    assert_eq!(scans[2].hash_id, first.hash_id);
    assert_eq!(scans[0].error_message.as_deref(), Some("Invalid QR code"));
    assert_eq!(scans[0].hash_value.chars().count(), 128);
    assert_eq!(store.list_scans(o.id, c.id, 1).await.unwrap().len(), 1);
    let after = store.get_chain(o.id, c.id).await.unwrap();
    assert_eq!((after.valid_scans, after.invalid_scans), (1, 4));
    assert_eq!(
        qrlp_chain::progress::percent_complete(500, after.current_index),
        "0.2"
    );
}

async fn case_concurrent_scans_accept_one(store: &Store, _: Option<std::path::PathBuf>) {
    let key = DataKey::generate();
    let o = org(store).await;
    let c = chain(store, &key, o.id, 30).await;
    for round in 0..5 {
        let v = current(store, &key, o.id, c.id).await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (store, v) = (store.clone(), v.clone());
            let org = o.id;
            tasks.push(tokio::spawn(async move {
                store.scan_chain(Some(org), c.id, &v, &source()).await
            }));
        }
        let mut accepted = 0;
        let mut already = 0;
        for t in tasks {
            match t.await.unwrap().expect("scan") {
                r if r.verdict == ScanVerdict::Accepted => accepted += 1,
                r if r.verdict == ScanVerdict::AlreadyScanned => already += 1,
                r => panic!("unexpected {:?}", r.verdict),
            }
        }
        assert_eq!((accepted, already), (1, 49), "round {round}");
    }
    let after = store.get_chain(o.id, c.id).await.unwrap();
    assert_eq!(after.current_index, 24);
    assert_eq!(after.valid_scans, 5);
}

async fn case_exhaustion_and_patch(store: &Store, _: Option<std::path::PathBuf>) {
    let key = DataKey::generate();
    let o = org(store).await;
    let c = chain(store, &key, o.id, 10).await;
    for i in (0..10).rev() {
        let v = current(store, &key, o.id, c.id).await;
        let r = store
            .scan_chain(Some(o.id), c.id, &v, &source())
            .await
            .unwrap();
        assert_eq!(r.verdict, ScanVerdict::Accepted);
        assert_eq!(r.chain.current_index, i - 1);
        assert_eq!(r.chain.exhausted(), i == 0);
    }
    let (ch, v) = store.current_chain_value(&key, o.id, c.id).await.unwrap();
    assert!(v.is_none() && !ch.is_active && ch.remaining() == 0);
    let r = store
        .scan_chain(Some(o.id), c.id, &"00".repeat(32), &source())
        .await
        .unwrap();
    assert_eq!(r.verdict, ScanVerdict::Exhausted);
    let e = store
        .update_chain(
            &system(),
            o.id,
            c.id,
            qrlp_store::ChainPatch {
                is_active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)));

    let d = chain(store, &key, o.id, 10).await;
    let patched = store
        .update_chain(
            &system(),
            o.id,
            d.id,
            qrlp_store::ChainPatch {
                name: Some("Door 7".into()),
                description: Some(None),
                is_active: Some(false),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            patched.name.as_str(),
            patched.description.clone(),
            patched.is_active
        ),
        ("Door 7", None, false)
    );
    let v = current(store, &key, o.id, d.id).await;
    let r = store
        .scan_chain(Some(o.id), d.id, &v, &source())
        .await
        .unwrap();
    assert_eq!(r.verdict, ScanVerdict::Inactive);
    store.delete_chain(&system(), o.id, d.id).await.unwrap();
    assert!(matches!(
        store.get_chain(o.id, d.id).await,
        Err(StoreError::NotFound)
    ));
    let audit = store
        .list_audit(
            o.id,
            &AuditFilter::default(),
            PageRequest::new(1, 100).unwrap(),
        )
        .await
        .unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|a| a.action.as_str()).collect();
    for a in ["chain.create", "chain.update", "chain.delete"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// A copy of the database alone (no data key) holds no value that was not shown yet.
async fn case_database_copy_reveals_no_future_value(
    store: &Store,
    file: Option<std::path::PathBuf>,
) {
    let Some(file) = file else { return }; // the file copy is a SQLite test
    let key = DataKey::generate();
    let o = org(store).await;
    let c = chain(store, &key, o.id, 12).await;
    // Use two values, so the copy has used values too.
    for _ in 0..2 {
        let v = current(store, &key, o.id, c.id).await;
        store
            .scan_chain(Some(o.id), c.id, &v, &source())
            .await
            .unwrap();
    }
    let copy = file.with_file_name("copy.db");
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&file))
        .await
        .unwrap();
    sqlx::query("VACUUM INTO $1")
        .bind(copy.to_string_lossy().to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let bytes = std::fs::read(&copy).unwrap();
    // The future values: walk the rest of the chain through the API (which needs the key).
    let mut future = Vec::new();
    for _ in 0..10 {
        let v = current(store, &key, o.id, c.id).await;
        future.push(v.clone());
        store
            .scan_chain(Some(o.id), c.id, &v, &source())
            .await
            .unwrap();
    }
    for v in &future {
        let raw = qrlp_chain::from_hex(v).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == raw),
            "raw value {v} found in the copy"
        );
        assert!(
            !bytes
                .windows(64)
                .any(|w| w.eq_ignore_ascii_case(v.as_bytes())),
            "hex value {v} found in the copy"
        );
    }
    // Another key opens nothing.
    let other = DataKey::generate();
    assert!(
        store.current_chain_value(&other, o.id, c.id).await.is_err() || {
            // exhausted chains need no key; make a fresh one to check
            let d = chain(store, &key, o.id, 10).await;
            store.current_chain_value(&other, o.id, d.id).await.is_err()
        }
    );
}

fn record(
    d: &qrlp_store::ClaimedDelivery,
    status: Option<u16>,
    outcome: Outcome,
    retry_at: Option<OffsetDateTime>,
) -> AttemptRecord {
    AttemptRecord {
        delivery_id: d.id,
        endpoint_id: d.endpoint_id,
        org_id: d.org_id,
        attempt: d.attempt,
        started_at: OffsetDateTime::now_utc(),
        status_code: status,
        latency: Duration::from_millis(3),
        error: None,
        response_body: Some("ok".into()),
        outcome,
        retry_at,
    }
}

async fn webhook(
    store: &Store,
    key: &DataKey,
    org: Uuid,
    events: &[&str],
) -> (qrlp_store::Webhook, Secret) {
    let secret = Secret::from_random([5; 32]);
    let w = store
        .create_webhook(
            &system(),
            key,
            NewWebhook {
                org_id: org,
                url: "http://127.0.0.1:9/hook".into(),
                description: Some("test".into()),
                events: events.iter().map(|e| e.to_string()).collect(),
            },
            &secret,
        )
        .await
        .expect("create webhook");
    (w, secret)
}

async fn case_outbox_delivery_lifecycle(store: &Store, _: Option<std::path::PathBuf>) {
    let key = DataKey::generate();
    let o = org(store).await;
    let (w, secret) = webhook(store, &key, o.id, &["scan.success"]).await;
    let (all, _) = webhook(store, &key, o.id, &["*"]).await;
    let c = chain(store, &key, o.id, 10).await; // chain.created: only the `*` endpoint
    let v = current(store, &key, o.id, c.id).await;
    store
        .scan_chain(Some(o.id), c.id, &v, &source())
        .await
        .unwrap();
    store
        .scan_chain(Some(o.id), c.id, &v, &source())
        .await
        .unwrap(); // scan.failed
    assert_eq!(store.count_pending_deliveries().await.unwrap(), 4);

    let lease = Duration::from_secs(60);
    let claimed = store.claim_deliveries(&key, 100, lease).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(
        store
            .claim_deliveries(&key, 100, lease)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let mine: Vec<_> = claimed.iter().filter(|d| d.endpoint_id == w.id).collect();
    assert_eq!(mine.len(), 1);
    let d = mine[0];
    assert_eq!(d.event_type, "scan.success");
    assert_eq!(d.attempt, 1);
    assert_eq!(d.secret.as_ref(), Some(&secret));
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["event"], "scan.success");
    assert_eq!(body["chainId"], c.id);
    assert_eq!(body["hashValue"], v.as_str());
    assert_eq!(body["index"], 9);
    assert_eq!(body["remaining"], 9);
    assert!(
        d.body.starts_with(r#"{"event":"scan.success","chainId":"#),
        "{}",
        d.body
    );
    let types: Vec<&str> = claimed
        .iter()
        .filter(|x| x.endpoint_id == all.id)
        .map(|x| x.event_type.as_str())
        .collect();
    assert_eq!(types.len(), 3, "{types:?}");

    // Fail now, retry at once; then succeed.
    let now = OffsetDateTime::now_utc();
    store
        .record_attempts(
            &[record(d, Some(500), Outcome::Failed, Some(now))],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let again = store.claim_deliveries(&key, 100, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    store
        .record_attempts(
            &[record(&again[0], Some(200), Outcome::Delivered, None)],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let log = store.list_deliveries(o.id, w.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, "delivered");
    let codes: Vec<Option<i64>> = log[0].log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(200)]);
    let attempts: Vec<i64> = log[0].log.iter().map(|a| a.attempt).collect();
    assert_eq!(attempts, [1, 2]);

    // Redeliver: a new delivery of the same event.
    let re = store
        .redeliver(&system(), o.id, w.id, log[0].id)
        .await
        .unwrap();
    assert_eq!(re.event_id, log[0].event_id);
    assert_eq!(re.status, "pending");
    let claimed = store.claim_deliveries(&key, 100, lease).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event_id, log[0].event_id);

    // A test event reaches only its endpoint.
    let (_, delivery) = store
        .enqueue_for_endpoint(o.id, w.id, &qrlp_webhook::Payload::new("webhook.test"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_delivery(o.id, w.id, delivery)
            .await
            .unwrap()
            .event_type,
        "webhook.test"
    );

    // Another key cannot open the secret.
    store
        .redeliver(&system(), o.id, w.id, delivery)
        .await
        .unwrap();
    let other = DataKey::generate();
    let claimed = store.claim_deliveries(&other, 100, lease).await.unwrap();
    assert!(!claimed.is_empty());
    assert!(claimed.iter().all(|c| c.secret.is_none()));
}

async fn case_gone_and_failing_endpoints_are_disabled(
    store: &Store,
    _: Option<std::path::PathBuf>,
) {
    let key = DataKey::generate();
    let o = org(store).await;
    let (gone, _) = webhook(store, &key, o.id, &["chain.created"]).await;
    chain(store, &key, o.id, 10).await;
    let claimed = store
        .claim_deliveries(&key, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .record_attempts(
            &[record(&claimed[0], Some(410), Outcome::Gone, None)],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let w = store.get_webhook(o.id, gone.id).await.unwrap();
    assert!(!w.is_active);
    assert!(w.disabled_reason.unwrap().contains("410"));
    // Disabled endpoints get no new deliveries.
    chain(store, &key, o.id, 10).await;
    assert!(store
        .claim_deliveries(&key, 10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());

    // Failing for longer than the disable period.
    let (failing, _) = webhook(store, &key, o.id, &["chain.created"]).await;
    chain(store, &key, o.id, 10).await;
    let claimed = store
        .claim_deliveries(&key, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let soon = OffsetDateTime::now_utc();
    store
        .record_attempts(
            &[record(&claimed[0], Some(503), Outcome::Failed, Some(soon))],
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    assert!(store.get_webhook(o.id, failing.id).await.unwrap().is_active);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let claimed = store
        .claim_deliveries(&key, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .record_attempts(
            &[record(&claimed[0], None, Outcome::Failed, Some(soon))],
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    let w = store.get_webhook(o.id, failing.id).await.unwrap();
    assert!(!w.is_active, "disabled after failing past the period");
    let audit = store
        .list_audit(
            o.id,
            &AuditFilter {
                action: Some("webhook.disable".into()),
                ..Default::default()
            },
            PageRequest::new(1, 10).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 2);

    // Re-enabling clears the record.
    let w = store
        .update_webhook(
            &system(),
            o.id,
            failing.id,
            qrlp_store::WebhookPatch {
                is_active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(w.is_active && w.disabled_reason.is_none() && w.failing_since.is_none());
}

async fn case_isolation_by_organization(store: &Store, _: Option<std::path::PathBuf>) {
    let key = DataKey::generate();
    let a = org(store).await;
    let b = org(store).await;
    let c = chain(store, &key, a.id, 10).await;
    assert!(matches!(
        store.get_chain(b.id, c.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.current_chain_value(&key, b.id, c.id).await,
        Err(StoreError::NotFound)
    ));
    let v = current(store, &key, a.id, c.id).await;
    assert!(matches!(
        store.scan_chain(Some(b.id), c.id, &v, &source()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.list_scans(b.id, c.id, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_chains(b.id).await.unwrap().is_empty());
    let (w, _) = webhook(store, &key, a.id, &["*"]).await;
    assert!(matches!(
        store.get_webhook(b.id, w.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.list_deliveries(b.id, w.id, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_webhook(&system(), b.id, w.id).await,
        Err(StoreError::NotFound)
    ));
}
