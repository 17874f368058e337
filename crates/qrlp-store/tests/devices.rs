//! The device fleet's storage on both backends (same harness as `store.rs`): tokens are
//! single use, offline is reported exactly once even by concurrent sweeps, rotation keeps
//! versions, and another organization's devices are not found. Federated rounds: joins up
//! to the maximum, one submission per device, one claim and one completion per round.

use qrlp_store::{
    AuditContext, DeviceStatus, DeviceUpdate, NewDevice, NewEnrollmentToken, NewKeyVersion,
    PageRequest, Plan, Store, StoreError,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[macro_use]
mod harness;

cases! {
    case_enrollment_and_devices,
    case_offline_sweep_reports_each_device_once,
    case_federated_rounds_transition_once,
}

async fn org(store: &Store, name: &str) -> Uuid {
    let owner = store
        .create_user(
            &AuditContext::system(),
            &format!("{name}@example.com"),
            name,
            None,
        )
        .await
        .unwrap();
    store
        .create_organization(&AuditContext::system(), name, Plan::Free, owner.id)
        .await
        .unwrap()
        .id
}

fn new_device(org: Uuid, id: &str) -> NewDevice {
    NewDevice {
        id: id.to_string(),
        org_id: org,
        name: format!("Edge {id}"),
        device_type: "raspberry_pi".into(),
        capabilities: serde_json::json!({"cpu_cores": 4}),
        config: serde_json::json!({}),
        update_interval: 300,
        certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        certificate_expiry: OffsetDateTime::now_utc() + Duration::days(180),
        kem_public: vec![1; 1184],
        kem_sealed: vec![2; 100],
        ed25519_public: [3; 32],
        device_kem_public: vec![4; 1184],
    }
}

async fn token(store: &Store, org: Uuid, hash: [u8; 32], expires_in: Duration) {
    store
        .create_enrollment_token(
            &AuditContext::system(),
            NewEnrollmentToken {
                org_id: org,
                hash,
                name_pattern: None,
                capabilities: None,
                created_by: None,
                expires_at: OffsetDateTime::now_utc() + expires_in,
            },
        )
        .await
        .unwrap();
}

async fn case_enrollment_and_devices(store: &Store) {
    let a = org(store, "Acme").await;
    let b = org(store, "Globex").await;
    let ctx = AuditContext::system();
    token(store, a, [1; 32], Duration::hours(1)).await;
    token(store, a, [2; 32], Duration::seconds(-1)).await;
    let found = store
        .find_enrollment_token(&[1; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.org_id, a);
    // the token of organization a does not register into b
    assert!(matches!(
        store
            .register_device(&ctx, &[1; 32], new_device(b, "dev_b1"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let d = store
        .register_device(&ctx, &[1; 32], new_device(a, "dev_a1"))
        .await
        .unwrap();
    assert_eq!(d.status, DeviceStatus::Offline);
    assert_eq!(d.key_version, 1);
    // single use
    assert!(matches!(
        store
            .register_device(&ctx, &[1; 32], new_device(a, "dev_a2"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // expired
    assert!(matches!(
        store
            .register_device(&ctx, &[2; 32], new_device(a, "dev_a3"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let used = store
        .find_enrollment_token(&[1; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.device_id.as_deref(), Some("dev_a1"));
    // isolation
    assert!(matches!(
        store.get_device(b, "dev_a1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_device(&ctx, b, "dev_a1", DeviceUpdate::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_device(&ctx, b, "dev_a1").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .list_devices(b, None, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store
            .list_device_keys(b, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    // heartbeat and listing by status
    let now = OffsetDateTime::now_utc();
    store
        .record_heartbeat(
            "dev_a1",
            DeviceStatus::Online,
            now,
            now + Duration::seconds(900),
            None,
        )
        .await
        .unwrap();
    let online = store
        .list_devices(a, Some(DeviceStatus::Online), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(online.items.len(), 1);
    let u = store
        .update_device(
            &ctx,
            a,
            "dev_a1",
            DeviceUpdate {
                name: Some("Renamed".into()),
                update_interval: Some(60),
                config: Some(serde_json::json!({"training_config": {"batch_size": 16}})),
            },
        )
        .await
        .unwrap();
    assert_eq!((u.name.as_str(), u.update_interval), ("Renamed", 60));
    // rotation
    assert_eq!(
        store.request_key_rotation(&ctx, a, None).await.unwrap(),
        vec!["dev_a1"]
    );
    let rotated = store
        .rotate_device_key(
            &ctx,
            "dev_a1",
            NewKeyVersion {
                previous: 1,
                ed25519_public: [5; 32],
                kem_public: vec![6; 1184],
                certificate_pem: "-----BEGIN CERTIFICATE----- 2".into(),
                certificate_expiry: now + Duration::days(180),
            },
        )
        .await
        .unwrap();
    assert_eq!(rotated.key_version, 2);
    assert!(rotated.rotation_requested_at.is_none());
    let auth = store.device_auth("dev_a1", 1).await.unwrap().unwrap();
    assert!(auth.key.unwrap().superseded_at.is_some());
    let auth = store.device_auth("dev_a1", 2).await.unwrap().unwrap();
    assert_eq!(auth.key.unwrap().ed25519_public, vec![5; 32]);
    assert!(store
        .device_auth("dev_a1", 3)
        .await
        .unwrap()
        .unwrap()
        .key
        .is_none());
    // a second rotation from version 1 conflicts
    assert!(matches!(
        store
            .rotate_device_key(
                &ctx,
                "dev_a1",
                NewKeyVersion {
                    previous: 1,
                    ed25519_public: [7; 32],
                    kem_public: vec![6; 1184],
                    certificate_pem: "x".into(),
                    certificate_expiry: now + Duration::days(1),
                },
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_device_keys(a, PageRequest::default())
            .await
            .unwrap()
            .total,
        2
    );
    let (counts, oldest) = store.fleet_counts(a).await.unwrap();
    assert_eq!((counts.total, counts.online), (1, 1));
    assert!(oldest.is_some());
    let audit = store
        .list_security_audit(a, PageRequest::default())
        .await
        .unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
    for want in [
        "device.registered",
        "security.key_rotated",
        "security.key_rotation_requested",
    ] {
        assert!(actions.contains(&want), "{actions:?}");
    }
    // deregistration hides the device and keeps it refused
    store.revoke_device(&ctx, a, "dev_a1").await.unwrap();
    assert!(matches!(
        store.get_device(a, "dev_a1").await,
        Err(StoreError::NotFound)
    ));
    let auth = store.device_auth("dev_a1", 2).await.unwrap().unwrap();
    assert!(auth.device.revoked_at.is_some());
    assert!(store
        .record_heartbeat("dev_a1", DeviceStatus::Online, now, now, None)
        .await
        .is_err());
}

async fn case_offline_sweep_reports_each_device_once(store: &Store) {
    let a = org(store, "Initech").await;
    let ctx = AuditContext::system();
    let now = OffsetDateTime::now_utc();
    for i in 0..20u8 {
        token(store, a, [i + 10; 32], Duration::hours(1)).await;
        let id = format!("dev_s{i}");
        store
            .register_device(&ctx, &[i + 10; 32], new_device(a, &id))
            .await
            .unwrap();
        // even devices are overdue, odd ones are not
        let after = if i % 2 == 0 {
            now - Duration::seconds(1)
        } else {
            now + Duration::hours(1)
        };
        store
            .record_heartbeat(&id, DeviceStatus::Online, now, after, None)
            .await
            .unwrap();
    }
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(
                async move { s.mark_offline_due(OffsetDateTime::now_utc()).await.unwrap() },
            )
        })
        .collect();
    let mut ids = Vec::new();
    for s in sweeps {
        ids.extend(s.await.unwrap().into_iter().map(|w| w.id));
    }
    ids.sort();
    let mut want: Vec<String> = (0..20).step_by(2).map(|i| format!("dev_s{i}")).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(store
        .mark_offline_due(OffsetDateTime::now_utc())
        .await
        .unwrap()
        .is_empty());
}

fn fl_round(id: &str, number: u32, deadline: OffsetDateTime) -> qrlp_store::NewFlRound {
    qrlp_store::NewFlRound {
        id: id.to_string(),
        number,
        model_version: number - 1,
        min_participants: 2,
        max_participants: 2,
        deadline,
        x25519_public: [9; 32],
        x25519_sealed: vec![8; 60],
    }
}

async fn case_federated_rounds_transition_once(store: &Store) {
    use qrlp_store::{FlRoundStatus, JoinOutcome, RoundCompletion, SubmitOutcome};
    let a = org(store, "Learn").await;
    let b = org(store, "Other").await;
    let ctx = AuditContext::system();
    for (i, h) in [(1u8, [5u8; 32]), (2, [6; 32]), (3, [7; 32])] {
        token(store, a, h, Duration::hours(1)).await;
        store
            .register_device(&ctx, &h, new_device(a, &format!("dev_fl{i}")))
            .await
            .unwrap();
    }
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    let job = |id: &str, round: &str| qrlp_store::NewFlJob {
        id: id.to_string(),
        org_id: a,
        config: serde_json::json!({"k": 1}),
        rounds_total: 2,
        accountant: None,
        shape: serde_json::json!([]),
        parameters: vec![0; 12],
        first_round: fl_round(round, 1, later),
    };
    let (j, r) = store
        .create_fl_job(&ctx, job("job_1", "round_1"))
        .await
        .unwrap();
    assert_eq!(
        (j.status.as_str(), r.status),
        ("running", FlRoundStatus::Pending)
    );
    assert!(matches!(
        store.create_fl_job(&ctx, job("job_2", "round_x")).await,
        Err(StoreError::Conflict(f)) if f == "training_in_progress"
    ));
    assert!(matches!(
        store.get_fl_round(b, "round_1").await,
        Err(StoreError::NotFound)
    ));

    let stats = serde_json::json!({"count": 1});
    let j1 = store
        .fl_join("round_1", "dev_fl1", Some(&stats), None)
        .await
        .unwrap();
    assert!(matches!(j1, JoinOutcome::Joined { started: false, .. }));
    assert!(matches!(
        store
            .fl_join("round_1", "dev_fl1", None, None)
            .await
            .unwrap(),
        JoinOutcome::Already(_)
    ));
    let started = qrlp_webhook::Payload::new("training.round_started");
    match store
        .fl_join("round_1", "dev_fl2", None, Some(&started))
        .await
        .unwrap()
    {
        JoinOutcome::Joined { round, started } => {
            assert!(started);
            assert_eq!((round.status, round.joined), (FlRoundStatus::InProgress, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .fl_join("round_1", "dev_fl3", None, None)
            .await
            .unwrap(),
        JoinOutcome::Full(_)
    ));

    let m = serde_json::json!({"accuracy": 0.9});
    assert_eq!(
        store
            .fl_submit("round_1", "dev_fl1", 10, &m, &[1; 12])
            .await
            .unwrap(),
        SubmitOutcome::Accepted {
            submitted: 1,
            joined: 2
        }
    );
    assert_eq!(
        store
            .fl_submit("round_1", "dev_fl1", 10, &m, &[1; 12])
            .await
            .unwrap(),
        SubmitOutcome::Duplicate
    );
    assert_eq!(
        store
            .fl_submit("round_1", "dev_fl3", 10, &m, &[1; 12])
            .await
            .unwrap(),
        SubmitOutcome::NotJoined
    );
    let now = OffsetDateTime::now_utc();
    let stale = now - Duration::minutes(2);
    assert!(store.fl_due_rounds(now, stale).await.unwrap().is_empty());
    store
        .fl_submit("round_1", "dev_fl2", 5, &m, &[2; 12])
        .await
        .unwrap();
    let due = store.fl_due_rounds(now, stale).await.unwrap();
    assert_eq!(due.len(), 1);

    // Two servers claim at once: one wins.
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let (w1, w2) = tokio::join!(
        store.fl_claim_round("round_1", c1, stale),
        store.fl_claim_round("round_1", c2, stale)
    );
    let (w1, w2) = (w1.unwrap(), w2.unwrap());
    assert!(w1 ^ w2, "exactly one claim wins: {w1} {w2}");
    let (winner, loser) = if w1 { (c1, c2) } else { (c2, c1) };
    assert_eq!(
        store
            .fl_submit("round_1", "dev_fl2", 5, &m, &[2; 12])
            .await
            .unwrap(),
        SubmitOutcome::NotInProgress(FlRoundStatus::Aggregating)
    );
    assert_eq!(
        store.fl_update("round_1", "dev_fl2").await.unwrap(),
        Some(vec![2; 12])
    );
    let completion = |claim| RoundCompletion {
        round_id: "round_1".into(),
        claim,
        job_id: "job_1".into(),
        version: 1,
        shape: serde_json::json!([]),
        parameters: vec![7; 12],
        accountant: None,
        strategy_state: None,
        epsilon: Some(1.5),
        convergence: Some(0.1),
        next: Some(fl_round("round_2", 2, now - Duration::seconds(1))),
        end_reason: None,
        event: Some(qrlp_webhook::Payload::new("training.round_completed")),
    };
    assert!(!store.fl_complete_round(&completion(loser)).await.unwrap());
    assert!(store.fl_complete_round(&completion(winner)).await.unwrap());
    assert!(
        !store.fl_complete_round(&completion(winner)).await.unwrap(),
        "once"
    );
    let done = store.get_fl_round(a, "round_1").await.unwrap();
    assert_eq!(
        (done.status, done.epsilon),
        (FlRoundStatus::Completed, Some(1.5))
    );
    assert_eq!(
        store.fl_update("round_1", "dev_fl2").await.unwrap(),
        None,
        "cleared"
    );
    assert_eq!(
        store.get_fl_model("job_1", 1).await.unwrap().parameters,
        vec![7; 12]
    );
    assert_eq!(store.get_fl_job("job_1").await.unwrap().rounds_done, 1);
    assert_eq!(store.latest_fl_round("job_1").await.unwrap().id, "round_2");

    // Round 2 is past its deadline without devices: it fails once, and the job with it.
    let due = store
        .fl_due_rounds(OffsetDateTime::now_utc(), stale)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["round_2"]
    );
    assert!(store
        .fl_fail_round("round_2", None, "quorum", None)
        .await
        .unwrap());
    assert!(!store
        .fl_fail_round("round_2", None, "quorum", None)
        .await
        .unwrap());
    assert_eq!(store.get_fl_job("job_1").await.unwrap().status, "failed");
    let page = store
        .list_fl_rounds(
            a,
            Some(FlRoundStatus::Completed),
            PageRequest { page: 1, size: 10 },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    // A new job may start once none runs.
    store
        .create_fl_job(&ctx, job("job_3", "round_3"))
        .await
        .unwrap();
}
