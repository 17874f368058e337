//! Federated learning (seed 002, part 2) over TCP: a job's rounds from creation to the
//! next model, joins and encrypted submissions by signed devices, refused submissions
//! (duplicate, wrong shape, late, replayed into the next round), the quorum failing at the
//! deadline, the DP accountant's ε, models pulled by devices and API keys, isolation.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use qrlp_config::Config;
use qrlp_fleet::signing::Request;
use qrlp_fleet::transport::{seal_update, Binding};
use reqwest::Method;
use serde_json::{json, Value};

use crate::fleet::{next_json, now, seed_error, ws_connect, Dev, Fleet};

async fn signed(
    f: &Fleet,
    dev: &Dev,
    method: Method,
    path: &str,
    body: &[u8],
) -> reqwest::Response {
    signed_to(&f.app, dev, method, path, body).await
}

/// A signed device request to `app` (one of several servers).
async fn signed_to(
    app: &crate::common::TestApp,
    dev: &Dev,
    method: Method,
    path: &str,
    body: &[u8],
) -> reqwest::Response {
    let h = dev.key.sign_request(
        &dev.id,
        dev.version,
        &Request {
            method: method.as_str(),
            path_and_query: path,
            body,
        },
        now(),
        None,
    );
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json");
    for (k, v) in h.to_pairs() {
        req = req.header(k, v);
    }
    req.body(body.to_vec()).send().await.unwrap()
}

async fn join(f: &Fleet, dev: &Dev, round: &str, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/fl/rounds/{round}/join");
    signed(
        f,
        dev,
        Method::POST,
        &path,
        &serde_json::to_vec(&body).unwrap(),
    )
    .await
}

fn version_number(v: &Value) -> u32 {
    v.as_str()
        .unwrap()
        .rsplit_once(".v")
        .unwrap()
        .1
        .parse()
        .unwrap()
}

/// The submission body for `values`, sealed as the join answer says.
fn sealed_body(dev: &Dev, answer: &Value, values: &[f32], n: u64) -> Vec<u8> {
    let plain: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let kem = B64
        .decode(answer["transport"]["kem_key"].as_str().unwrap())
        .unwrap();
    let rk: [u8; 32] = B64
        .decode(answer["transport"]["round_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let binding = Binding {
        round_id: answer["round_id"].as_str().unwrap(),
        device_id: &dev.id,
        model_version: version_number(&answer["model_version"]),
    };
    let env = seal_update(&kem, &rk, &binding, &plain).unwrap();
    serde_json::to_vec(&json!({
        "update": B64.encode(env), "num_samples": n, "metrics": {"accuracy": 0.5, "loss": 0.7}
    }))
    .unwrap()
}

async fn submit_bytes(f: &Fleet, dev: &Dev, round: &str, body: &[u8]) -> reqwest::Response {
    let path = format!("/api/v1/fl/rounds/{round}/submit");
    signed(f, dev, Method::POST, &path, body).await
}

async fn round(f: &Fleet, key: &str, id: &str) -> Value {
    let r = f
        .call(Method::GET, &format!("/api/v1/fl/rounds/{id}"), key, None)
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn wait_status(f: &Fleet, key: &str, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let v = round(f, key, id).await;
        if v["status"] == status {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "round {id} never reached {status}: {}",
        round(f, key, id).await
    );
}

fn stats(rows: &[[f64; 2]]) -> Value {
    let mut sum = [0.0; 2];
    let mut sq = [0.0; 2];
    for r in rows {
        for j in 0..2 {
            sum[j] += r[j];
            sq[j] += r[j] * r[j];
        }
    }
    json!({"count": rows.len(), "sum": sum, "sum_sq": sq})
}

#[tokio::test]
async fn fl_job_runs_rounds_with_encrypted_updates_and_refuses_bad_submissions() {
    let f = Fleet::start_with(Config::default()).await;
    let org = f.org("Learners").await;
    let other = f.org("Others").await;
    let devs = [
        f.enroll(&org, "edge-1").await,
        f.enroll(&org, "edge-2").await,
        f.enroll(&org, "edge-3").await,
    ];
    let stranger = f.enroll(&other, "edge-x").await;

    // Bad input answers in seed 002's shape, never 500.
    for (body, field) in [
        (
            json!({"model_config": {"architecture": "cnn"}}),
            "model_config.parameters",
        ),
        (
            json!({"model_config": {"architecture": "logistic_regression"}}),
            "model_config.input_dim",
        ),
        (
            json!({"model_config": {"architecture": "mlp", "input_dim": 2}, "strategy": "krum"}),
            "strategy",
        ),
        (
            json!({"model_config": {"architecture": "logistic_regression", "input_dim": 2},
                "privacy_settings": {"differential_privacy": true}}),
            "privacy_settings.noise_level",
        ),
        (
            json!({"model_config": {"architecture": "logistic_regression", "input_dim": 2},
                "participant_criteria": {"min_participants": 3, "max_participants": 2}}),
            "participant_criteria.max_participants",
        ),
    ] {
        let r = f
            .call(Method::POST, "/api/v1/fl/rounds", &org.key, Some(body))
            .await;
        let e = seed_error(r, 422, "VALIDATION_ERROR").await;
        assert!(
            e["details"]["field"].as_str().unwrap().starts_with(field),
            "{e}"
        );
    }

    let r = f
        .call(
            Method::POST,
            "/api/v1/fl/rounds",
            &org.key,
            Some(json!({
                "model_config": {"architecture": "logistic_regression", "input_dim": 2,
                    "hyperparameters": {"learning_rate": 0.5, "epochs": 2}},
                "participant_criteria": {"min_participants": 2, "max_participants": 3},
                "rounds": 2, "deadline_secs": 60
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    let rid = first["id"].as_str().unwrap().to_string();
    assert!(rid.starts_with("round_"));
    assert_eq!(first["status"], "pending");
    assert_eq!(first["target_participants"], 3);
    assert_eq!(first["job"]["rounds"], 2);
    let job = first["job_id"].as_str().unwrap().to_string();
    assert_eq!(first["model_version"], format!("{job}.v0"));

    // One job at a time.
    let r = f
        .call(
            Method::POST,
            "/api/v1/fl/rounds",
            &org.key,
            Some(json!({"model_config": {"architecture": "logistic_regression", "input_dim": 2}})),
        )
        .await;
    seed_error(r, 409, "TRAINING_IN_PROGRESS").await;

    // Another organization sees nothing, API key and device alike.
    let r = f
        .call(
            Method::GET,
            &format!("/api/v1/fl/rounds/{rid}"),
            &other.key,
            None,
        )
        .await;
    seed_error(r, 404, "NOT_FOUND").await;
    seed_error(join(&f, &stranger, &rid, json!({})).await, 404, "NOT_FOUND").await;
    let r = f
        .call(
            Method::GET,
            &format!("/api/v1/fl/models/{job}.v0"),
            &other.key,
            None,
        )
        .await;
    seed_error(r, 404, "NOT_FOUND").await;

    // Joining: pending until the quorum, then ready with the federation's standardisation.
    let data: [&[[f64; 2]]; 3] = [&[[1.0, 10.0], [3.0, 30.0]], &[[5.0, 50.0]], &[[7.0, 70.0]]];
    let a: Value = join(&f, &devs[0], &rid, json!({"feature_stats": stats(data[0])}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["status"], "pending");
    assert_eq!(a["ready"], false);
    seed_error(
        submit_bytes(&f, &devs[0], &rid, &sealed_body(&devs[0], &a, &[0.0; 3], 2)).await,
        409,
        "CONFLICT",
    )
    .await;
    let b: Value = join(&f, &devs[1], &rid, json!({"feature_stats": stats(data[1])}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["status"], "in_progress");
    assert_eq!(b["ready"], true);
    // Mean of 1, 3, 5 (the first two devices: the quorum when the round started).
    assert!(
        (b["standardization"]["mean"][0].as_f64().unwrap() - 3.0).abs() < 1e-9,
        "{b}"
    );
    let c: Value = join(&f, &devs[2], &rid, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["ready"], true);
    let again: Value = join(&f, &devs[0], &rid, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["ready"], true, "joining is idempotent");
    let v = round(&f, &org.key, &rid).await;
    assert_eq!(v["participants"], 3);
    assert_eq!(v["status"], "in_progress");

    // The model, by signature and by API key.
    let path = format!("/api/v1/fl/models/{job}.v0");
    let r = signed(&f, &devs[0], Method::GET, &path, b"").await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["parameter_count"], 3);
    let r = f.call(Method::GET, &path, &org.key, None).await;
    assert_eq!(r.status(), 200);

    // Wrong shape: 422; the envelope of another device: refused.
    let r = submit_bytes(&f, &devs[0], &rid, &sealed_body(&devs[0], &a, &[1.0; 4], 2)).await;
    let e = seed_error(r, 422, "VALIDATION_ERROR").await;
    assert_eq!(e["details"]["expected"], 3);
    let r = submit_bytes(&f, &devs[0], &rid, &sealed_body(&devs[1], &b, &[1.0; 3], 2)).await;
    seed_error(r, 400, "INVALID_QUANTUM_KEY").await;

    // Accepted; the bytes on the wire do not hold the update in clear.
    let update0 = [0.25f32, -1.5, 2.0];
    let body0 = sealed_body(&devs[0], &a, &update0, 2);
    let plain: Vec<u8> = update0.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(!body0.windows(4).any(|w| plain.windows(4).any(|p| p == w)));
    let env = B64
        .decode(
            serde_json::from_slice::<Value>(&body0).unwrap()["update"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert!(!env.windows(4).any(|w| plain.windows(4).any(|p| p == w)));
    let r = submit_bytes(&f, &devs[0], &rid, &body0).await;
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["completed_devices"], 1);
    // Duplicate (a fresh signature over the same body): refused.
    let e = seed_error(
        submit_bytes(&f, &devs[0], &rid, &body0).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(e["details"]["reason"], "duplicate");
    assert_eq!(
        round(&f, &org.key, &rid).await["progress"]["completed_devices"],
        1
    );

    let update1 = [1.0f32, 0.5, -2.0];
    let update2 = [4.0f32, 2.5, 1.0];
    let r = submit_bytes(&f, &devs[1], &rid, &sealed_body(&devs[1], &b, &update1, 1)).await;
    assert_eq!(r.status(), 200);
    let r = submit_bytes(&f, &devs[2], &rid, &sealed_body(&devs[2], &c, &update2, 1)).await;
    assert_eq!(r.status(), 200);

    // Everyone submitted: aggregated into v1 (FedAvg weighted 2:1:1), round 2 opens.
    let done = wait_status(&f, &org.key, &rid, "completed").await;
    assert_eq!(done["progress"]["completed_devices"], 3);
    assert!((done["progress"]["avg_accuracy"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!(done["progress"]["convergence_metric"].as_f64().unwrap() > 0.0);
    let next_id = done["job"]["current_round_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(next_id, rid);
    let r = f
        .call(
            Method::GET,
            &format!("/api/v1/fl/models/{job}.v1"),
            &org.key,
            None,
        )
        .await;
    let m1: Value = r.json().await.unwrap();
    let bytes = B64.decode(m1["parameters"].as_str().unwrap()).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for j in 0..3 {
        let want = (2.0 * update0[j] + update1[j] + update2[j]) / 4.0;
        assert!((got[j] - want).abs() < 1e-6, "{got:?}");
    }
    assert!(m1["standardization"]["std"].is_array());

    // Late: round 1 is closed.
    let e = seed_error(
        submit_bytes(&f, &devs[1], &rid, &sealed_body(&devs[1], &b, &update1, 1)).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(e["details"]["reason"], "round_closed");

    // Replay of round 1's envelope into round 2, freshly signed: does not open.
    let a2: Value = join(&f, &devs[0], &next_id, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a2["model_version"], format!("{job}.v1"));
    let b2: Value = join(&f, &devs[1], &next_id, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b2["ready"], true);
    seed_error(
        submit_bytes(&f, &devs[0], &next_id, &body0).await,
        400,
        "INVALID_QUANTUM_KEY",
    )
    .await;
    // An envelope made with another device's keys does not open.
    let e = seed_error(
        submit_bytes(
            &f,
            &devs[2],
            &next_id,
            &sealed_body(&devs[2], &b2, &update2, 1),
        )
        .await,
        400,
        "INVALID_QUANTUM_KEY",
    )
    .await;
    assert_eq!(e["details"]["reason"], "envelope");

    let list: Value = f
        .call(
            Method::GET,
            "/api/v1/fl/rounds?status=completed",
            &org.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["rounds"].as_array().unwrap().len(), 1);
    assert_eq!(list["pagination"]["total"], 1);
    let r = f
        .call(Method::GET, "/api/v1/fl/rounds?status=nope", &org.key, None)
        .await;
    seed_error(r, 422, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn fl_round_below_quorum_fails_at_its_deadline_and_dp_reports_the_accountants_epsilon() {
    let f = Fleet::start_with(Config::default()).await;
    let org = f.org("Quorum").await;
    let d1 = f.enroll(&org, "q-1").await;
    let d2 = f.enroll(&org, "q-2").await;
    let r = f
        .call(
            Method::POST,
            "/api/v1/fl/rounds",
            &org.key,
            Some(json!({
                "model_config": {"architecture": "logistic_regression", "input_dim": 2},
                "participant_criteria": {"min_participants": 2, "max_participants": 2},
                "rounds": 3, "deadline_secs": 1
            })),
        )
        .await;
    let first: Value = r.json().await.unwrap();
    let rid = first["id"].as_str().unwrap().to_string();
    let a: Value = join(&f, &d1, &rid, json!({})).await.json().await.unwrap();
    assert_eq!(a["status"], "pending");
    let failed = wait_status(&f, &org.key, &rid, "failed").await;
    assert!(
        failed["reason"].as_str().unwrap().contains("quorum"),
        "{failed}"
    );
    assert_eq!(failed["job"]["status"], "failed");
    let e = seed_error(join(&f, &d2, &rid, json!({})).await, 409, "CONFLICT").await;
    assert_eq!(e["details"]["reason"], "round_closed");

    // DP-FedAvg, z = 1, S = 0.5, one round of two devices: ε is the accountant's (q = 1).
    let r = f
        .call(
            Method::POST,
            "/api/v1/fl/rounds",
            &org.key,
            Some(json!({
                "model_config": {"architecture": "logistic_regression", "input_dim": 2},
                "participant_criteria": {"min_participants": 2, "max_participants": 2},
                "privacy_settings": {"differential_privacy": true, "noise_level": 1.0,
                    "clipping_norm": 0.5},
                "rounds": 1, "deadline_secs": 60
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let dp: Value = r.json().await.unwrap();
    let rid = dp["id"].as_str().unwrap().to_string();
    let mut ws = ws_connect(&f, "/api/v1/ws/training", &org.key).await;
    assert_eq!(dp["privacy"]["epsilon"], 0.0);
    let a: Value = join(&f, &d1, &rid, json!({})).await.json().await.unwrap();
    let b: Value = join(&f, &d2, &rid, json!({})).await.json().await.unwrap();
    assert_eq!(b["training"]["clipping_norm"], 0.5);
    for (d, ans) in [(&d1, &a), (&d2, &b)] {
        let r = submit_bytes(&f, d, &rid, &sealed_body(d, ans, &[3.0, 4.0, 0.0], 5)).await;
        assert_eq!(r.status(), 200);
    }
    let done = wait_status(&f, &org.key, &rid, "completed").await;
    // /ws/training saw the round's progress, up to 100%.
    let mut seen = Vec::new();
    while let Some(m) = next_json(&mut ws).await {
        assert_eq!(m["type"], "training_progress", "{m}");
        assert_eq!(m["data"]["round_id"], rid.as_str());
        seen.push(m["data"]["progress_percentage"].as_u64().unwrap());
        if m["data"]["status"] == "completed" {
            break;
        }
    }
    assert!(seen.contains(&50) && seen.last() == Some(&100), "{seen:?}");
    let want = qrlp_federated::accountant::epsilon_for(1.0, 1.0, 1, 1e-5).unwrap();
    let got = done["privacy"]["epsilon"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    assert_eq!(done["privacy"]["rounds_accounted"], 1);
    assert_eq!(done["job"]["status"], "completed");
}

/// Starts a one-round job of a 2-feature logistic regression needing exactly `devices`
/// participants; its first round's id and the job's id.
async fn one_round_job(f: &Fleet, key: &str, devices: u32) -> (String, String) {
    let r = f
        .call(
            Method::POST,
            "/api/v1/fl/rounds",
            key,
            Some(json!({
                "model_config": {"architecture": "logistic_regression", "input_dim": 2},
                "participant_criteria": {"min_participants": devices, "max_participants": devices},
                "rounds": 1, "deadline_secs": 60
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["job_id"].as_str().unwrap().to_string(),
    )
}

/// `training.round_started` and `training.round_completed` reach a subscribed endpoint
/// through the webhook engine, signed, in seed 002's shape; the start counts the devices
/// that started the round, the join that reached the quorum included.
#[tokio::test]
async fn fl_round_events_are_delivered_signed_to_a_subscribed_endpoint() {
    use crate::webhooks::{fast_config, Receiver};
    let f = Fleet::start_with(fast_config()).await;
    let org = f.org("Trainhooks").await;
    let (rx, addr) = Receiver::start(&[]).await;
    let r = f
        .app
        .client
        .post(f.app.url("/api/v1/webhooks"))
        .header("x-api-key", &org.key)
        .json(&json!({"url": format!("http://{addr}/hook"),
            "events": ["training.round_started", "training.round_completed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let devs = [
        f.enroll(&org, "edge-1").await,
        f.enroll(&org, "edge-2").await,
    ];
    let (rid, _) = one_round_job(&f, &org.key, 2).await;
    let mut answers = Vec::new();
    for d in &devs {
        let a: Value = join(&f, d, &rid, json!({})).await.json().await.unwrap();
        answers.push(a);
    }
    for (d, a) in devs.iter().zip(&answers) {
        let r = submit_bytes(&f, d, &rid, &sealed_body(d, a, &[0.5, -0.5, 1.0], 3)).await;
        assert_eq!(r.status(), 200);
    }
    wait_status(&f, &org.key, &rid, "completed").await;
    rx.wait_for(2, Duration::from_secs(10)).await;
    let got = rx.got.lock().unwrap().clone();
    let bodies: Vec<Value> = got
        .iter()
        .map(|g| {
            assert!(g.headers.contains_key("webhook-signature"));
            serde_json::from_str(&g.body).unwrap()
        })
        .collect();
    let started = bodies
        .iter()
        .find(|b| b["event"] == "training.round_started")
        .expect("round_started delivered");
    assert_eq!(started["data"]["round_id"], rid.as_str(), "{started}");
    assert_eq!(started["data"]["participants"], 2, "{started}");
    assert_eq!(started["data"]["min_participants"], 2, "{started}");
    let completed = bodies
        .iter()
        .find(|b| b["event"] == "training.round_completed")
        .expect("round_completed delivered");
    assert_eq!(completed["data"]["status"], "completed", "{completed}");
    assert_eq!(completed["data"]["submissions"], 2, "{completed}");
    assert!(completed["timestamp"].is_string(), "{completed}");
}

/// Two servers on one database, the devices submitting to either: the server that
/// aggregates adds its own running sum to the updates the other accepted, read from the
/// store, and the model is the exact FedAvg of all three.
#[tokio::test]
async fn fl_round_submitted_across_two_servers_aggregates_every_update_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().display().to_string();
    let f = Fleet::start_with(config.clone()).await;
    let second = crate::common::TestApp::start_with(config, axum::Router::new()).await;
    let org = f.org("Twoservers").await;
    let devs = [
        f.enroll(&org, "edge-1").await,
        f.enroll(&org, "edge-2").await,
        f.enroll(&org, "edge-3").await,
    ];
    let (rid, job) = one_round_job(&f, &org.key, 3).await;
    let mut answers = Vec::new();
    for d in &devs {
        answers.push(
            join(&f, d, &rid, json!({}))
                .await
                .json::<Value>()
                .await
                .unwrap(),
        );
    }
    let updates = [[0.5f32, -1.0, 2.0], [1.5, 0.25, -2.0], [-3.0, 4.0, 0.75]];
    let samples = [1u64, 2, 5];
    let path = format!("/api/v1/fl/rounds/{rid}/submit");
    for (i, d) in devs.iter().enumerate() {
        let app = if i == 0 { &f.app } else { &second };
        let body = sealed_body(d, &answers[i], &updates[i], samples[i]);
        let r = signed_to(app, d, Method::POST, &path, &body).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    wait_status(&f, &org.key, &rid, "completed").await;
    let m: Value = f
        .call(
            Method::GET,
            &format!("/api/v1/fl/models/{job}.v1"),
            &org.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let bytes = B64.decode(m["parameters"].as_str().unwrap()).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let total: u64 = samples.iter().sum();
    for j in 0..3 {
        let want: f64 = (0..3)
            .map(|i| samples[i] as f64 * f64::from(updates[i][j]))
            .sum::<f64>()
            / total as f64;
        assert!((f64::from(got[j]) - want).abs() < 1e-6, "{got:?}");
    }
}

/// A submission declaring more than the limit is answered 413 in seed 002's shape from its
/// headers alone: the server neither reads nor buffers the body.
#[tokio::test]
async fn fl_submission_over_the_limit_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let f = Fleet::start_with(Config::default()).await;
    let org = f.org("Bigbodies").await;
    let dev = f.enroll(&org, "edge-1").await;
    let path = "/api/v1/fl/rounds/round_x/submit";
    let h = dev.key.sign_request(
        &dev.id,
        dev.version,
        &Request {
            method: "POST",
            path_and_query: path,
            body: b"",
        },
        now(),
        None,
    );
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: 200000000\r\nconnection: close\r\n",
        f.app.addr
    );
    for (k, v) in h.to_pairs() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n{\"update\": \"");
    let mut s = tokio::net::TcpStream::connect(f.app.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"PAYLOAD_TOO_LARGE\""), "{answer}");
    assert!(answer.contains("\"request_id\""), "{answer}");
}
