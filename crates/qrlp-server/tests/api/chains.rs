//! Seed 003 over TCP: chains field by field, exactly-once scans under concurrency, the
//! public scan page, permissions and isolation; on SQLite and, with
//! `QRLP_TEST_POSTGRES_URL`, on PostgreSQL (a schema per test).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use qrlp_config::Config;
use qrlp_store::{NewApiKeyMaterial, Plan, Store, StoreConfig};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{error_body, TestApp};

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    match std::env::var("QRLP_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            eprintln!("SKIPPED postgres: QRLP_TEST_POSTGRES_URL not set");
            vec![Backend::Sqlite]
        }
    }
}

/// A server, direct access to its database, and one organization's owner key.
pub struct Env {
    pub app: TestApp,
    pub store: Store,
    pub key: String,
    #[allow(dead_code)]
    pub org_id: String,
    schema: Option<(String, String)>,
}

impl Env {
    pub async fn start(backend: Backend, mut config: Config) -> Env {
        let mut schema = None;
        if backend == Backend::Postgres {
            let base = std::env::var("QRLP_TEST_POSTGRES_URL").unwrap();
            let name = format!("qrlp_a_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&base)
                .await
                .expect("postgres reachable");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            config.storage.database_url = format!("{base}{sep}options=-csearch_path%3D{name}");
            schema = Some((base, name));
        }
        let app = TestApp::start_with(config.clone(), axum::Router::new()).await;
        let store = match &schema {
            Some((base, name)) => Store::open_postgres_with_schema(base, name).await.unwrap(),
            None => Store::open(&StoreConfig {
                database_url: None,
                data_dir: app.data_dir.as_ref().unwrap().path().to_path_buf(),
                max_connections: 2,
            })
            .await
            .unwrap(),
        };
        let generated = qrlp_store::secret::generate_api_key();
        let done = store
            .bootstrap(
                "Seed Org",
                Plan::Enterprise,
                "owner@seed.example",
                "Owner",
                NewApiKeyMaterial {
                    name: "bootstrap".into(),
                    prefix: generated.prefix.clone(),
                    hash: generated.hash,
                },
            )
            .await
            .unwrap();
        Env {
            app,
            store,
            key: generated.secret.clone(),
            org_id: done.organization.id.to_string(),
            schema,
        }
    }

    /// A request with the owner's key (or `key`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("x-api-key", key.unwrap_or(&self.key));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let r = self.call(method.clone(), path, None, body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(got, status, "{method} {path}: {text}");
        serde_json::from_str(&text).expect("JSON body")
    }

    /// A key of the owner with `scopes`.
    pub async fn key_with(&self, scopes: &[&str]) -> String {
        let v = self
            .json(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({ "name": "scoped", "scopes": scopes })),
                201,
            )
            .await;
        v["key"].as_str().unwrap().to_string()
    }

    pub async fn stop(self) {
        let Env {
            app, store, schema, ..
        } = self;
        app.stop().await.unwrap();
        store.close().await;
        if let Some((base, name)) = schema {
            let admin = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&base)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

fn is_seed_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn seed_flow(backend: Backend) {
    let env = Env::start(backend, Config::default()).await;
    // Create (the seed's request and answer).
    let created = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({
                "name": "Product Authentication Batch #42",
                "description": "Anti-counterfeiting codes for product line",
                "chainLength": 500
            })),
            201,
        )
        .await;
    assert_eq!(
        keys(&created),
        ["chainId", "chainLength", "message", "name"]
    );
    assert_eq!(created["name"], "Product Authentication Batch #42");
    assert_eq!(created["chainLength"], 500);
    assert_eq!(created["message"], "Chain created successfully");
    let id = created["chainId"].as_i64().expect("integer chainId");
    assert!(id > 0);

    // Details.
    let c = env
        .json(Method::GET, &format!("/api/v1/chains/{id}"), None, 200)
        .await;
    assert_eq!(
        keys(&c),
        [
            "chainLength",
            "createdAt",
            "currentIndex",
            "description",
            "id",
            "isActive",
            "name",
            "remaining",
            "updatedAt"
        ]
    );
    assert_eq!(c["id"], id);
    assert_eq!(
        c["description"],
        "Anti-counterfeiting codes for product line"
    );
    assert_eq!(
        (
            c["chainLength"].as_i64(),
            c["currentIndex"].as_i64(),
            c["remaining"].as_i64()
        ),
        (Some(500), Some(499), Some(500))
    );
    assert_eq!(c["isActive"], true);
    assert!(
        is_seed_time(&c["createdAt"]) && is_seed_time(&c["updatedAt"]),
        "{c}"
    );

    // List.
    let list = env.json(Method::GET, "/api/v1/chains", None, 200).await;
    assert_eq!(list["chains"].as_array().unwrap().len(), 1);
    assert_eq!(list["chains"][0], c);

    // Current code: a PNG that zxing/rqrr read as the scan page URL.
    let cur = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            None,
            200,
        )
        .await;
    for k in [
        "chainId",
        "chainName",
        "currentIndex",
        "hashValue",
        "qrCode",
        "remaining",
        "totalLength",
        "isActive",
    ] {
        assert!(cur.get(k).is_some(), "current lacks {k}: {cur}");
    }
    assert_eq!(
        (
            cur["chainId"].as_i64(),
            cur["currentIndex"].as_i64(),
            cur["remaining"].as_i64(),
            cur["totalLength"].as_i64()
        ),
        (Some(id), Some(499), Some(500), Some(500))
    );
    assert_eq!(cur["chainName"], "Product Authentication Batch #42");
    assert_eq!(cur["isActive"], true);
    let hash = cur["hashValue"].as_str().unwrap().to_string();
    assert!(
        hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let png_b64 = cur["qrCode"]
        .as_str()
        .unwrap()
        .strip_prefix("data:image/png;base64,")
        .expect("data URL");
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png_b64)
        .unwrap();
    let (_, text) = crate::common::read_qr(&crate::common::decode_png(&png));
    assert_eq!(text, format!("http://{}/s/{id}/{hash}", env.app.addr));
    let again = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            None,
            200,
        )
        .await;
    assert_eq!(
        again["hashValue"],
        hash.as_str(),
        "reading does not move the chain"
    );
    let raw = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/current?content=raw"),
            None,
            200,
        )
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(
            raw["qrCode"]
                .as_str()
                .unwrap()
                .trim_start_matches("data:image/png;base64,"),
        )
        .unwrap();
    assert_eq!(
        crate::common::read_qr(&crate::common::decode_png(&png)).1,
        hash
    );

    // Scan: the seed's success answer.
    let s = env
        .json(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            Some(json!({ "hashValue": hash })),
            200,
        )
        .await;
    assert_eq!(
        s,
        json!({"success": true, "message": "QR code scanned successfully", "chainId": id,
               "newIndex": 498, "remaining": 499, "chainExhausted": false})
    );
    // Rescan: 409 "QR code already scanned" in the envelope's `error`.
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            None,
            Some(json!({ "hashValue": hash })),
        )
        .await;
    let e = error_body(r, 409).await;
    assert_eq!(e["error"], "QR code already scanned");
    // Anything else: 400 "Invalid QR code".
    for bad in [
        "a3f5b8c9d2e1f4a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0",
        "",
        "zz",
        "🙂",
    ] {
        let r = env
            .call(
                Method::POST,
                &format!("/api/v1/chains/{id}/scan"),
                None,
                Some(json!({ "hashValue": bad })),
            )
            .await;
        let e = error_body(r, 400).await;
        assert_eq!(e["error"], "Invalid QR code", "{bad:?}");
    }
    // Stats.
    let st = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/stats"),
            None,
            200,
        )
        .await;
    assert_eq!(
        st,
        json!({"totalScans": 6, "validScans": 1, "invalidScans": 5, "chainLength": 500,
               "currentIndex": 498, "remaining": 499, "scanned": 1, "percentComplete": "0.2"})
    );
    // Scans, newest first.
    let scans = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/scans?limit=100"),
            None,
            200,
        )
        .await;
    let scans = scans["scans"].as_array().unwrap().clone();
    assert_eq!(scans.len(), 6);
    let first = &scans[5];
    assert_eq!(
        keys(first),
        [
            "chainId",
            "chainIndex",
            "errorMessage",
            "hashId",
            "hashValue",
            "id",
            "ipAddress",
            "isValid",
            "scannedAt",
            "scannedBy",
            "userAgent"
        ]
    );
    assert_eq!(first["chainId"], id);
    assert_eq!(first["hashValue"], hash.as_str());
    assert_eq!(first["chainIndex"], 499);
    assert_eq!(first["isValid"], true);
    assert_eq!(first["ipAddress"], "127.0.0.1");
    assert_eq!(first["errorMessage"], Value::Null);
    assert!(first["hashId"].is_i64() && first["id"].is_i64());
    assert!(first["scannedBy"].as_str().unwrap().starts_with("api_key:"));
    assert!(is_seed_time(&first["scannedAt"]));
    assert_eq!(scans[4]["errorMessage"], "QR code already scanned");
    assert_eq!(scans[4]["isValid"], false);
    assert_eq!(scans[0]["errorMessage"], "Invalid QR code");
    assert!(scans
        .windows(2)
        .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()));
    let one = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/scans?limit=1"),
            None,
            200,
        )
        .await;
    assert_eq!(one["scans"].as_array().unwrap().len(), 1);
    for bad in ["0", "1001", "x", "-1"] {
        let r = env
            .call(
                Method::GET,
                &format!("/api/v1/chains/{id}/scans?limit={bad}"),
                None,
                None,
            )
            .await;
        error_body(r, 400).await;
    }
    // Unknown chain: 404 "Chain not found" everywhere.
    for path in [
        "/api/v1/chains/999999",
        "/api/v1/chains/abc",
        "/api/v1/chains/999999/current",
        "/api/v1/chains/999999/stats",
        "/api/v1/chains/999999/scans",
    ] {
        let r = env.call(Method::GET, path, None, None).await;
        assert_eq!(
            error_body(r, 404).await["error"],
            "Chain not found",
            "{path}"
        );
    }
    let r = env
        .call(
            Method::POST,
            "/api/v1/chains/999999/scan",
            None,
            Some(json!({ "hashValue": hash })),
        )
        .await;
    assert_eq!(error_body(r, 404).await["error"], "Chain not found");
    // Validation.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(256)}), "name"),
        (json!({"name": "ok", "chainLength": 9}), "chainLength"),
        (json!({"name": "ok", "chainLength": 10001}), "chainLength"),
        (json!({"name": "ok", "chainLength": "500"}), "chainLength"),
        (json!({"chainLength": 100}), "name"),
    ] {
        let r = env
            .call(Method::POST, "/api/v1/chains", None, Some(body.clone()))
            .await;
        let e = error_body(r, 400).await;
        assert_eq!(e["details"]["field"], field, "{body}: {e}");
    }
    // Default length 100.
    let d = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "My First Chain"})),
            201,
        )
        .await;
    assert_eq!(d["chainLength"], 100);
    env.stop().await;
}

#[tokio::test]
async fn seed_flow_field_by_field() {
    for b in backends() {
        seed_flow(b).await;
    }
}

async fn exhaustion_patch_delete(backend: Backend) {
    let env = Env::start(backend, Config::default()).await;
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Door", "chainLength": 10})),
            201,
        )
        .await["chainId"]
        .as_i64()
        .unwrap();
    let mut last = Value::Null;
    for _ in 0..10 {
        let cur = env
            .json(
                Method::GET,
                &format!("/api/v1/chains/{id}/current"),
                None,
                200,
            )
            .await;
        last = env
            .json(
                Method::POST,
                &format!("/api/v1/chains/{id}/scan"),
                Some(json!({"hashValue": cur["hashValue"]})),
                200,
            )
            .await;
    }
    assert_eq!(last["chainExhausted"], true);
    assert_eq!(last["remaining"], 0);
    let c = env
        .json(Method::GET, &format!("/api/v1/chains/{id}"), None, 200)
        .await;
    assert_eq!(c["isActive"], false);
    let r = env
        .call(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            None,
            None,
        )
        .await;
    assert_eq!(error_body(r, 409).await["code"], "CHAIN_EXHAUSTED");
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            None,
            Some(json!({"hashValue": "00".repeat(32)})),
        )
        .await;
    assert_eq!(error_body(r, 409).await["code"], "CHAIN_EXHAUSTED");
    let st = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/stats"),
            None,
            200,
        )
        .await;
    assert_eq!(st["percentComplete"], "100.0");
    let r = env
        .call(
            Method::PATCH,
            &format!("/api/v1/chains/{id}"),
            None,
            Some(json!({"isActive": true})),
        )
        .await;
    assert_eq!(error_body(r, 409).await["code"], "CHAIN_EXHAUSTED");

    let id2 = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Gate", "chainLength": 10})),
            201,
        )
        .await["chainId"]
        .as_i64()
        .unwrap();
    let p = env
        .json(
            Method::PATCH,
            &format!("/api/v1/chains/{id2}"),
            Some(json!({"name": "Gate B", "description": null, "isActive": false})),
            200,
        )
        .await;
    assert_eq!(
        (
            p["name"].as_str(),
            p["isActive"].as_bool(),
            p["description"].is_null()
        ),
        (Some("Gate B"), Some(false), true)
    );
    let cur = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id2}/current"),
            None,
            200,
        )
        .await;
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id2}/scan"),
            None,
            Some(json!({"hashValue": cur["hashValue"]})),
        )
        .await;
    assert_eq!(error_body(r, 409).await["message"], "Chain is inactive");
    let d = env
        .json(Method::DELETE, &format!("/api/v1/chains/{id2}"), None, 200)
        .await;
    assert_eq!(d["chainId"], id2);
    let r = env
        .call(Method::GET, &format!("/api/v1/chains/{id2}"), None, None)
        .await;
    error_body(r, 404).await;
    let audit = env
        .json(Method::GET, "/api/v1/audit?size=100", None, 200)
        .await;
    let text = audit.to_string();
    for a in ["chain.create", "chain.update", "chain.delete"] {
        assert!(text.contains(a), "{a}");
    }
    env.stop().await;
}

#[tokio::test]
async fn exhaustion_patch_and_delete() {
    for b in backends() {
        exhaustion_patch_delete(b).await;
    }
}

async fn concurrent(backend: Backend) {
    let env = Arc::new(Env::start(backend, Config::default()).await);
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Race", "chainLength": 100})),
            201,
        )
        .await["chainId"]
        .as_i64()
        .unwrap();
    for round in 0..20 {
        let cur = env
            .json(
                Method::GET,
                &format!("/api/v1/chains/{id}/current"),
                None,
                200,
            )
            .await;
        let hash = cur["hashValue"].as_str().unwrap().to_string();
        let ok = Arc::new(AtomicUsize::new(0));
        let dup = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (env, hash, ok, dup) = (env.clone(), hash.clone(), ok.clone(), dup.clone());
            tasks.push(tokio::spawn(async move {
                let r = env
                    .call(
                        Method::POST,
                        &format!("/api/v1/chains/{id}/scan"),
                        None,
                        Some(json!({"hashValue": hash})),
                    )
                    .await;
                match r.status().as_u16() {
                    200 => ok.fetch_add(1, Ordering::SeqCst),
                    409 => {
                        let e: Value = r.json().await.unwrap();
                        assert_eq!(e["error"], "QR code already scanned");
                        dup.fetch_add(1, Ordering::SeqCst)
                    }
                    s => panic!("status {s}: {}", r.text().await.unwrap_or_default()),
                };
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            (ok.load(Ordering::SeqCst), dup.load(Ordering::SeqCst)),
            (1, 49),
            "{backend:?} round {round}"
        );
    }
    let st = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/stats"),
            None,
            200,
        )
        .await;
    assert_eq!(
        (
            st["validScans"].as_i64(),
            st["currentIndex"].as_i64(),
            st["invalidScans"].as_i64()
        ),
        (Some(20), Some(79), Some(980))
    );
    Arc::into_inner(env).unwrap().stop().await;
}

#[tokio::test]
async fn fifty_concurrent_scans_of_one_value_accept_exactly_one_twenty_times() {
    for b in backends() {
        concurrent(b).await;
    }
}

async fn spread(backend: Backend) {
    let env = Arc::new(Env::start(backend, Config::default()).await);
    let mut ids = Vec::new();
    for i in 0..20 {
        let v = env
            .json(
                Method::POST,
                "/api/v1/chains",
                Some(json!({"name": format!("c{i}"), "chainLength": 200})),
                201,
            )
            .await;
        ids.push(v["chainId"].as_i64().unwrap());
    }
    // 32 workers take scans from a shared counter: 2,000 attempts, each on chain n % 20 with
    // that chain's current value (read just before, so some race and are refused).
    let next = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; 20]));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (env, next, accepted, ids) = (env.clone(), next.clone(), accepted.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= 2000 {
                    break;
                }
                let c = n % 20;
                let cur = env
                    .json(
                        Method::GET,
                        &format!("/api/v1/chains/{}/current", ids[c]),
                        None,
                        200,
                    )
                    .await;
                let r = env
                    .call(
                        Method::POST,
                        &format!("/api/v1/chains/{}/scan", ids[c]),
                        None,
                        Some(json!({"hashValue": cur["hashValue"]})),
                    )
                    .await;
                match r.status().as_u16() {
                    200 => accepted.lock().unwrap()[c] += 1,
                    409 => {}
                    s => panic!("status {s}"),
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let mut total = 0;
    for (c, id) in ids.iter().enumerate() {
        let st = env
            .json(
                Method::GET,
                &format!("/api/v1/chains/{id}/stats"),
                None,
                200,
            )
            .await;
        let valid = st["validScans"].as_i64().unwrap();
        assert_eq!(valid as usize, accepted[c], "chain {c}");
        assert_eq!(st["currentIndex"].as_i64().unwrap(), 199 - valid);
        assert_eq!(st["scanned"].as_i64().unwrap(), valid);
        assert_eq!(st["totalScans"].as_i64().unwrap(), 100);
        let scans = env
            .json(
                Method::GET,
                &format!("/api/v1/chains/{id}/scans?limit=1000"),
                None,
                200,
            )
            .await;
        let list = scans["scans"].as_array().unwrap();
        assert_eq!(list.len(), 100);
        let valid_rows: Vec<i64> = list
            .iter()
            .filter(|s| s["isValid"] == true)
            .map(|s| s["chainIndex"].as_i64().unwrap())
            .collect();
        assert_eq!(valid_rows.len() as i64, valid);
        // Each accepted index once, consecutive from 199 down.
        let mut sorted = valid_rows.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), valid_rows.len());
        assert_eq!(sorted, ((200 - valid)..200).collect::<Vec<_>>());
        total += valid;
    }
    assert!(total > 0);
    Arc::into_inner(env).unwrap().stop().await;
}

#[tokio::test]
async fn two_thousand_scans_over_twenty_chains_by_32_workers_stay_consistent() {
    for b in backends() {
        spread(b).await;
    }
}

#[tokio::test]
async fn scopes_roles_and_isolation() {
    let env = Env::start(Backend::Sqlite, Config::default()).await;
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Door 1", "chainLength": 10})),
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
    // A door scanner's key: scan and nothing else.
    let scanner = env.key_with(&["chains:scan"]).await;
    let r = env
        .call(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            Some(&scanner),
            None,
        )
        .await;
    assert_eq!(
        error_body(r, 403).await["details"]["required"],
        "chains:read"
    );
    let r = env
        .call(
            Method::POST,
            "/api/v1/chains",
            Some(&scanner),
            Some(json!({"name": "x"})),
        )
        .await;
    error_body(r, 403).await;
    let r = env
        .call(Method::GET, "/api/v1/webhooks", Some(&scanner), None)
        .await;
    error_body(r, 403).await;
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            Some(&scanner),
            Some(json!({"hashValue": cur["hashValue"]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let reader = env.key_with(&["read"]).await;
    let r = env
        .call(
            Method::GET,
            &format!("/api/v1/chains/{id}/stats"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            Some(&reader),
            Some(json!({"hashValue": "00"})),
        )
        .await;
    error_body(r, 403).await;

    // Another organization sees 404 "Chain not found".
    let other = qrlp_store::secret::generate_api_key();
    env.store
        .bootstrap(
            "Other Org",
            Plan::Enterprise,
            "owner@other.example",
            "Other",
            NewApiKeyMaterial {
                name: "b".into(),
                prefix: other.prefix.clone(),
                hash: other.hash,
            },
        )
        .await
        .unwrap();
    for (m, path) in [
        (Method::GET, format!("/api/v1/chains/{id}")),
        (Method::GET, format!("/api/v1/chains/{id}/current")),
        (Method::GET, format!("/api/v1/chains/{id}/scans")),
        (Method::GET, format!("/api/v1/chains/{id}/stats")),
        (Method::DELETE, format!("/api/v1/chains/{id}")),
    ] {
        let r = env.call(m, &path, Some(&other.secret), None).await;
        assert_eq!(
            error_body(r, 404).await["error"],
            "Chain not found",
            "{path}"
        );
    }
    let r = env
        .call(
            Method::POST,
            &format!("/api/v1/chains/{id}/scan"),
            Some(&other.secret),
            Some(json!({"hashValue": "00"})),
        )
        .await;
    assert_eq!(error_body(r, 404).await["error"], "Chain not found");
    let list = env
        .call(Method::GET, "/api/v1/chains", Some(&other.secret), None)
        .await;
    assert_eq!(list.json::<Value>().await.unwrap()["chains"], json!([]));
    env.stop().await;
}

#[tokio::test]
async fn scan_page_never_mutates_on_get_and_scans_on_post() {
    let env = Env::start(Backend::Sqlite, Config::default()).await;
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Gate <A> & \"B\"", "chainLength": 10})),
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
    let hash = cur["hashValue"].as_str().unwrap();
    let page = format!("/s/{id}/{hash}");
    for _ in 0..3 {
        let r = env.app.get(&page).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Gate &lt;A&gt; &amp; &quot;B&quot;"),
            "{html}"
        );
        assert!(html.contains("method=\"post\""));
    }
    let again = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/current"),
            None,
            200,
        )
        .await;
    assert_eq!(again["hashValue"], hash, "GET of the page changed nothing");
    let r = env
        .app
        .client
        .post(env.app.url(&page))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Accepted"));
    let r = env
        .app
        .client
        .post(env.app.url(&page))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(text.contains("Already used"), "{text}");
    let r = env.app.get(&format!("/s/999999/{hash}")).await;
    assert_eq!(r.status(), 404);
    let scans = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/scans"),
            None,
            200,
        )
        .await;
    assert_eq!(scans["scans"][1]["scannedBy"], "public");
    env.stop().await;
}

/// Behind a trusted proxy the public scan page records the client the proxy names, the same
/// derived address as every other route, not the proxy.
#[tokio::test]
async fn scan_page_records_the_client_behind_a_trusted_proxy() {
    let mut config = Config::default();
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let env = Env::start(Backend::Sqlite, config).await;
    let id = env
        .json(
            Method::POST,
            "/api/v1/chains",
            Some(json!({"name": "Gate", "chainLength": 10})),
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
    let page = format!("/s/{id}/{}", cur["hashValue"].as_str().unwrap());
    let r = env
        .app
        .client
        .post(env.app.url(&page))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let scans = env
        .json(
            Method::GET,
            &format!("/api/v1/chains/{id}/scans"),
            None,
            200,
        )
        .await;
    assert_eq!(scans["scans"][0]["ipAddress"], "203.0.113.9", "{scans}");
    env.stop().await;
}
