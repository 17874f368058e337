//! Organization live channels over TCP: CRUD with `live:read`/`live:write`, isolation
//! between organizations, the seed's shapes per channel, the public pages by token.

use std::time::Duration;

use qrlp_config::Config;
use qrlp_store::{NewApiKeyMaterial, Plan, Store, StoreConfig};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::TestApp;

struct Live {
    app: TestApp,
    store: Store,
}

impl Live {
    async fn start() -> Live {
        let app = TestApp::start_with(Config::default(), axum::Router::new()).await;
        let dir = app
            .data_dir
            .as_ref()
            .expect("temp data dir")
            .path()
            .to_path_buf();
        let store = Store::open(&StoreConfig {
            database_url: None,
            data_dir: dir,
            max_connections: 2,
        })
        .await
        .expect("opens the server's database");
        Live { app, store }
    }

    /// An organization and its owner's key.
    async fn org(&self, name: &str) -> String {
        let key = qrlp_store::secret::generate_api_key();
        self.store
            .bootstrap(
                name,
                Plan::Professional,
                &format!("owner@{}.example", name.to_lowercase()),
                "Owner",
                NewApiKeyMaterial {
                    name: "bootstrap".into(),
                    prefix: key.prefix.clone(),
                    hash: key.hash,
                },
            )
            .await
            .expect("bootstrap");
        key.secret.clone()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_crud_scopes_isolation_seed_shapes_and_public_pages() {
    let t = Live::start().await;
    let a = t.org("Alpha").await;
    let b = t.org("Beta").await;

    let (s, ch) = t
        .call(
            Method::POST,
            "/api/v1/live/channels",
            Some(&a),
            Some(json!({"name": "Main stage", "interval_secs": 0.3})),
        )
        .await;
    assert_eq!(s, 201, "{ch}");
    let id = ch["id"].as_str().unwrap().to_string();
    assert_eq!(ch["frame_format"], "json");
    let viewer = ch["viewer_url"].as_str().unwrap().to_string();
    let token = viewer
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64, "a 256-bit token: {viewer}");
    assert_eq!(ch["socket_auth"]["channel"], token);

    // Bad settings are 400 with the field.
    let (s, e) = t
        .call(
            Method::POST,
            "/api/v1/live/channels",
            Some(&a),
            Some(json!({"name": "x", "interval_secs": 0.01})),
        )
        .await;
    assert_eq!(s, 400, "{e}");

    // A key with live:read only may read but not create.
    let (s, k) = t
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(&a),
            Some(json!({"name": "reader", "scopes": ["live:read"]})),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    let reader = k["key"].as_str().unwrap().to_string();
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/live/channels",
            Some(&reader),
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, list) = t
        .call(Method::GET, "/api/v1/live/channels", Some(&reader), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["channels"].as_array().unwrap().len(), 1);
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{id}/user-data"),
            Some(&reader),
            Some(json!({"user_text": "hi"})),
        )
        .await;
    assert_eq!(s, 403);

    // Another organization sees nothing: 404 by id, empty list.
    for path in [
        format!("/api/v1/live/channels/{id}"),
        format!("/api/v1/live/channels/{id}/qr/current"),
        format!("/api/v1/live/channels/{id}/status"),
    ] {
        let (s, _) = t.call(Method::GET, &path, Some(&b), None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/live/channels/{id}"),
            Some(&b),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (_, list) = t
        .call(Method::GET, "/api/v1/live/channels", Some(&b), None)
        .await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 0);
    // No credentials: 401.
    let (s, _) = t
        .call(Method::GET, "/api/v1/live/channels", None, None)
        .await;
    assert_eq!(s, 401);

    // The seed's shapes per channel.
    let mut cur = Value::Null;
    for _ in 0..100 {
        let (s, c) = t
            .call(
                Method::GET,
                &format!("/api/v1/live/channels/{id}/qr/current"),
                Some(&reader),
                None,
            )
            .await;
        if s == 200 {
            cur = c;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cur["qr_image"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert!(cur["qr_data"]["identity_hash"].is_string());
    let frame = cur["frame"].as_str().unwrap().to_string();
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{id}/verify"),
            Some(&reader),
            Some(json!({"qr_data": frame})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    let (s, e) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{id}/verify"),
            Some(&reader),
            Some(json!({"qr_data": "nope"})),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "Invalid QR data format");
    assert!(e["request_id"].is_string());
    let (s, st) = t
        .call(
            Method::GET,
            &format!("/api/v1/live/channels/{id}/status"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(st["is_running"], true);
    let (s, e) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{id}/user-data"),
            Some(&a),
            Some(json!({"user_text": "x".repeat(501)})),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "User data too long (max 500 characters)");
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{id}/user-data"),
            Some(&a),
            Some(json!({"user_text": "on air"})),
        )
        .await;
    assert_eq!(s, 200);

    // Public pages and read routes by token, no credentials; a frame of one channel does
    // not verify on another organization's channel.
    for p in [
        "/",
        "/verify",
        "/?mode=stream",
        "/api/qr/current",
        "/.well-known/qrlp-keys.json",
    ] {
        let (s, _) = t
            .call(Method::GET, &format!("/live/{token}{p}"), None, None)
            .await;
        assert_eq!(s, 200, "{p}");
    }
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/live/{}/", "0".repeat(64)),
            None,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (_, c2) = t
        .call(
            Method::POST,
            "/api/v1/live/channels",
            Some(&b),
            Some(json!({"name": "Other", "interval_secs": 0.3})),
        )
        .await;
    let other = c2["id"].as_str().unwrap().to_string();
    let (_, cur) = t
        .call(
            Method::GET,
            &format!("/live/{token}/api/qr/current"),
            None,
            None,
        )
        .await;
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/live/channels/{other}/verify"),
            Some(&b),
            Some(json!({"qr_data": cur["frame"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["valid"], false, "{v}");

    // Update, then delete: the pages go away.
    let (s, u) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/live/channels/{id}"),
            Some(&a),
            Some(json!({"interval_secs": 0.5, "style": "minimal"})),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["interval_secs"], 0.5);
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/live/channels/{id}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/live/channels/{id}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = t
        .call(Method::GET, &format!("/live/{token}/"), None, None)
        .await;
    assert_eq!(s, 404);
    let (s, audit) = t
        .call(Method::GET, "/api/v1/audit?size=100", Some(&a), None)
        .await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = audit["audit_logs"]
        .as_array()
        .map(|v| v.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(!actions.is_empty(), "{audit}");
    for want in [
        "live_channel.create",
        "live_channel.update",
        "live_channel.delete",
    ] {
        assert!(actions.contains(&want), "{want} not in {actions:?}");
    }
}
