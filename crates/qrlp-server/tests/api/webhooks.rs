//! Webhooks over TCP with a real receiver on 127.0.0.1: signatures, retries on the
//! schedule (time scale shrunk), 410, the delivery log, redelivery, SSRF refusals.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use qrlp_config::Config;
use qrlp_webhook::Secret;
use reqwest::Method;
use serde_json::{json, Value};

use crate::chains::{backends, Backend, Env};
use crate::common::error_body;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A local HTTP receiver answering from a script of statuses (then 200).
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> (Receiver, SocketAddr) {
        let r = Receiver::default();
        r.script.lock().unwrap().extend(script.iter().copied());
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.got.lock().unwrap().push(Received { headers, body });
                    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    (StatusCode::from_u16(code).unwrap(), "{\"received\":true}")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, addr)
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) {
        let start = std::time::Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < within,
                "got {} of {n} deliveries",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A configuration for webhook tests: private targets allowed, the schedule shrunk
/// (5 s → 0.5 ms, 5 min → 30 ms, 30 min → 180 ms), quick polling.
pub fn fast_config() -> Config {
    let mut c = Config::default();
    c.webhooks.allow_private_targets = true;
    c.webhooks.retry_time_scale = 0.0001;
    c.webhooks.poll_interval_ms = 20;
    c.webhooks.timeout_ms = 2000;
    c
}

async fn create_hook(env: &Env, url: &str, events: Value) -> (i64, Secret) {
    let v = env
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "events": events, "description": "test"})),
            201,
        )
        .await;
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (v["id"].as_i64().unwrap(), Secret::parse(&secret).unwrap())
}

fn verify(r: &Received, secret: &Secret) {
    let h = |n: &str| {
        r.headers
            .get(n)
            .unwrap_or_else(|| panic!("{n}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("x-webhook-signature"), secret.seed_signature(&r.body));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(secret.verify_standard(
        &h("webhook-id"),
        &h("webhook-timestamp"),
        &h("webhook-signature"),
        &r.body,
        now,
        300
    ));
    // One byte changed: neither signature holds.
    let mut changed = r.body.clone().into_bytes();
    changed[2] ^= 1;
    let changed = String::from_utf8(changed).unwrap();
    assert_ne!(h("x-webhook-signature"), secret.seed_signature(&changed));
    assert!(!secret.verify_standard(
        &h("webhook-id"),
        &h("webhook-timestamp"),
        &h("webhook-signature"),
        &changed,
        now,
        300
    ));
}

async fn signed_seed_payload(backend: Backend) {
    let env = Env::start(backend, fast_config()).await;
    let (rx, addr) = Receiver::start(&[]).await;
    let (hook, secret) = create_hook(
        &env,
        &format!("http://{addr}/hook"),
        json!(["scan.success"]),
    )
    .await;
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Product Authentication Batch #42", "chainLength": 500})),
            201,
        )
        .await["chainId"]
        .as_i64()
        .unwrap();
    let cur = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            None,
            200,
        )
        .await;
    env.json(
        Method::POST,
        &format!("/api/v1/chains/{id}/scan"),
        Some(json!({"hashValue": cur["hashValue"]})),
        200,
    )
    .await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    let got = rx.got.lock().unwrap()[0].clone();
    verify(&got, &secret);
    let body: Value = serde_json::from_str(&got.body).unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "chainId",
            "chainName",
            "event",
            "hashValue",
            "index",
            "remaining",
            "timestamp"
        ]
    );
    assert_eq!(body["event"], "scan.success");
    assert_eq!(body["chainId"], id);
    assert_eq!(body["chainName"], "Product Authentication Batch #42");
    assert_eq!(body["hashValue"], cur["hashValue"]);
    assert_eq!(body["index"], 499);
    assert_eq!(body["remaining"], 499);
    assert!(
        got.body
            .starts_with("{\"event\":\"scan.success\",\"chainId\":"),
        "{}",
        got.body
    );
    // The log shows the delivery; the test event reaches only this endpoint.
    let t = env
        .json(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/test"),
            None,
            202,
        )
        .await;
    rx.wait_for(2, Duration::from_secs(10)).await;
    let test = rx.got.lock().unwrap()[1].clone();
    assert_eq!(
        test.headers["webhook-id"].to_str().unwrap(),
        t["webhookId"].as_str().unwrap()
    );
    verify(&test, &secret);
    // Rotation: later deliveries use the new secret.
    let rotated = env
        .json(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/rotate-secret"),
            None,
            200,
        )
        .await;
    let new_secret = Secret::parse(rotated["secret"].as_str().unwrap()).unwrap();
    assert_ne!(new_secret, secret);
    env.json(
        Method::POST,
        &format!("/api/v1/webhooks/{hook}/test"),
        None,
        202,
    )
    .await;
    rx.wait_for(3, Duration::from_secs(10)).await;
    verify(&rx.got.lock().unwrap()[2].clone(), &new_secret);
    // The secret is never shown again.
    let w = env
        .json(Method::GET, &format!("/api/v1/webhooks/{hook}"), None, 200)
        .await;
    assert!(w.get("secret").is_none() && !w.to_string().contains("whsec_"));
    env.stop().await;
}

#[tokio::test]
async fn deliveries_carry_the_seed_payload_and_verify() {
    for b in backends() {
        signed_seed_payload(b).await;
    }
}

async fn retries(backend: Backend) {
    let env = Env::start(backend, fast_config()).await;
    let (rx, addr) = Receiver::start(&[500, 503, 302]).await;
    let (hook, _) = create_hook(
        &env,
        &format!("http://{addr}/hook"),
        json!(["chain.created"]),
    )
    .await;
    env.json(
        Method::POST,
        "/api/v1/chains",
        Some(json!({"name": "R", "chainLength": 10})),
        201,
    )
    .await;
    rx.wait_for(4, Duration::from_secs(15)).await;
    // Same id every attempt.
    let ids: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    // The log shows the four attempts with their codes.
    let mut log = Value::Null;
    for _ in 0..100 {
        log = env
            .json(
                Method::GET,
                &format!("/api/v1/webhooks/{hook}/deliveries"),
                None,
                200,
            )
            .await;
        if log["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(d["status"], "delivered", "{log}");
    assert_eq!(d["attempts"], 4);
    let codes: Vec<i64> = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 302, 200]);
    let numbers: Vec<i64> = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(d["log"][3]["responseBody"], "{\"received\":true}");
    assert!(d["log"][0]["latencyMs"].is_i64());
    // Redelivery: a new delivery of the same event.
    let re = env
        .json(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/deliveries/{}/redeliver", d["id"]),
            None,
            202,
        )
        .await;
    assert_eq!(re["webhookId"], d["webhookId"]);
    rx.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(
        rx.got.lock().unwrap()[4].headers["webhook-id"]
            .to_str()
            .unwrap(),
        ids[0]
    );

    // 410 disables the endpoint, with an audit record.
    let (rx2, addr2) = Receiver::start(&[410]).await;
    let (gone, _) = create_hook(&env, &format!("http://{addr2}/hook"), json!(["*"])).await;
    env.json(
        Method::POST,
        "/api/v1/chains",
        Some(json!({"name": "G", "chainLength": 10})),
        201,
    )
    .await;
    let mut w = Value::Null;
    for _ in 0..200 {
        w = env
            .json(Method::GET, &format!("/api/v1/webhooks/{gone}"), None, 200)
            .await;
        if w["isActive"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(w["isActive"], false, "{w}");
    assert!(w["disabledReason"].as_str().unwrap().contains("410"));
    assert_eq!(rx2.count(), 1);
    let audit = env
        .json(
            Method::GET,
            "/api/v1/audit?action=webhook.disable",
            None,
            200,
        )
        .await;
    assert_eq!(audit["audit_logs"].as_array().unwrap().len(), 1, "{audit}");
    env.stop().await;
}

#[tokio::test]
async fn failing_three_times_then_delivered_on_the_fourth_and_410_disables() {
    for b in backends() {
        retries(b).await;
    }
}

#[tokio::test]
async fn private_targets_are_refused_by_default_at_creation_and_delivery() {
    let env = Env::start(Backend::Sqlite, Config::default()).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://localhost/hook",
        "http://100.64.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
    ] {
        let r = env
            .call(
                Method::POST,
                "/api/v1/webhooks",
                None,
                Some(json!({"url": url, "events": ["*"]})),
            )
            .await;
        let e = error_body(r, 400).await;
        assert_eq!(e["details"]["field"], "url", "{url}: {e}");
    }
    let r = env
        .call(
            Method::POST,
            "/api/v1/webhooks",
            None,
            Some(json!({"url": "https://example.com/hook", "events": ["scan.nope"]})),
        )
        .await;
    assert_eq!(error_body(r, 400).await["details"]["field"], "events");

    // At delivery: an endpoint that points at loopback anyway (written straight to the
    // database, as if DNS had changed) is refused on the address it would connect to.
    let (rx, addr) = Receiver::start(&[]).await;
    let org = uuid::Uuid::parse_str(&env.org_id).unwrap();
    let key = qrlp_store::secret::DataKey::load_or_create(
        &env.app.data_dir.as_ref().unwrap().path().join("data.key"),
    )
    .unwrap();
    let w = env
        .store
        .create_webhook(
            &qrlp_store::AuditContext::system(),
            &key,
            qrlp_store::NewWebhook {
                org_id: org,
                url: format!("http://localhost:{}/hook", addr.port()),
                description: None,
                events: vec!["*".into()],
            },
            &Secret::from_random([1; 32]),
        )
        .await
        .unwrap();
    env.json(
        Method::POST,
        "/api/v1/chains",
        Some(json!({"name": "S", "chainLength": 10})),
        201,
    )
    .await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = env
            .json(
                Method::GET,
                &format!("/api/v1/webhooks/{}/deliveries", w.id),
                None,
                200,
            )
            .await;
        if log["deliveries"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = log["deliveries"][0]["log"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains("loopback"), "{log}");
    assert_eq!(rx.count(), 0, "nothing reached the receiver");
    env.stop().await;

    // With the setting on, the same targets are accepted.
    let env = Env::start(Backend::Sqlite, fast_config()).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://localhost/hook",
    ] {
        env.json(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "events": ["*"]})),
            201,
        )
        .await;
    }
    env.stop().await;
}

#[tokio::test]
async fn webhooks_are_isolated_and_need_their_permissions() {
    let env = Env::start(Backend::Sqlite, fast_config()).await;
    let (hook, _) = create_hook(&env, "http://127.0.0.1:9/hook", json!(["*"])).await;
    let types = env
        .json(Method::GET, "/api/v1/webhooks/event-types", None, 200)
        .await;
    assert!(types["eventTypes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "scan.success"));
    let other = qrlp_store::secret::generate_api_key();
    env.store
        .bootstrap(
            "Other Org",
            qrlp_store::Plan::Enterprise,
            "o@other.example",
            "O",
            qrlp_store::NewApiKeyMaterial {
                name: "b".into(),
                prefix: other.prefix.clone(),
                hash: other.hash,
            },
        )
        .await
        .unwrap();
    for (m, p) in [
        (Method::GET, format!("/api/v1/webhooks/{hook}")),
        (Method::DELETE, format!("/api/v1/webhooks/{hook}")),
        (Method::POST, format!("/api/v1/webhooks/{hook}/test")),
        (
            Method::POST,
            format!("/api/v1/webhooks/{hook}/rotate-secret"),
        ),
        (Method::GET, format!("/api/v1/webhooks/{hook}/deliveries")),
    ] {
        let r = env.call(m, &p, Some(&other.secret), None).await;
        error_body(r, 404).await;
    }
    let reader = env.key_with(&["webhooks:read"]).await;
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/test"),
            Some(&reader),
            None,
        )
        .await;
    error_body(r, 403).await;
    let p = env
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{hook}"),
            Some(json!({"events": ["scan.failed"], "isActive": false})),
            200,
        )
        .await;
    assert_eq!(
        (p["events"].clone(), p["isActive"].clone()),
        (json!(["scan.failed"]), json!(false))
    );
    env.json(
        Method::DELETE,
        &format!("/api/v1/webhooks/{hook}"),
        None,
        200,
    )
    .await;
    let r = env
        .call(Method::GET, &format!("/api/v1/webhooks/{hook}"), None, None)
        .await;
    error_body(r, 404).await;
    env.stop().await;
}
