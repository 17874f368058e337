//! The OpenAPI document: a snapshot test against `tests/snapshots/openapi.json`
//! (`UPDATE_SNAPSHOTS=1` rewrites it), the served copy, and coverage of every route.

use std::path::PathBuf;

use qrlp_config::Config;

use crate::common::TestApp;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

#[test]
fn openapi_matches_the_snapshot() {
    let doc = qrlp_server::app::openapi(&Config::default())
        .to_pretty_json()
        .unwrap()
        + "\n";
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &doc).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        doc == expected,
        "the OpenAPI document changed; if on purpose, run \
         `UPDATE_SNAPSHOTS=1 cargo test -p qrlp-server --test api openapi` and review the diff of {}",
        path.display()
    );
}

#[tokio::test]
async fn served_document_covers_every_route() {
    let app = TestApp::start().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: serde_json::Value = r.json().await.unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &qrlp_server::app::openapi(&Config::default())
            .to_json()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, expected);

    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<String> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "DELETE /api/v1/api-keys/{key_id}",
            "DELETE /api/v1/chains/{chainId}",
            "DELETE /api/v1/live/channels/{channel_id}",
            "DELETE /api/v1/devices/enrollment-tokens/{token_id}",
            "DELETE /api/v1/devices/{device_id}",
            "DELETE /api/v1/organizations/{org_id}/invitations/{invitation_id}",
            "DELETE /api/v1/organizations/{org_id}/members/{user_id}",
            "DELETE /api/v1/webhooks/{id}",
            "GET /api/v1/api-keys",
            "GET /api/v1/api-keys/{key_id}",
            "GET /api/v1/audit",
            "GET /api/v1/chains",
            "GET /api/v1/chains/{chainId}",
            "GET /api/v1/chains/{chainId}/current",
            "GET /api/v1/chains/{chainId}/scans",
            "GET /api/v1/chains/{chainId}/stats",
            "GET /api/v1/live/channels",
            "GET /api/v1/live/channels/{channel_id}",
            "GET /api/v1/live/channels/{channel_id}/qr/current",
            "GET /api/v1/live/channels/{channel_id}/status",
            "GET /api/v1/live/channels/{channel_id}/user-data",
            "GET /api/v1/devices",
            "GET /api/v1/devices/ca",
            "GET /api/v1/devices/enrollment-tokens",
            "GET /api/v1/devices/{device_id}",
            "GET /api/v1/fl/models/{version}",
            "GET /api/v1/fl/open-rounds",
            "GET /api/v1/fl/rounds",
            "GET /api/v1/fl/rounds/{round_id}",
            "GET /api/v1/health",
            "GET /api/v1/monitoring/alerts",
            "GET /api/v1/monitoring/logs",
            "GET /api/v1/monitoring/metrics",
            "GET /api/v1/organizations",
            "GET /api/v1/organizations/{org_id}",
            "GET /api/v1/organizations/{org_id}/invitations",
            "GET /api/v1/organizations/{org_id}/members",
            "GET /api/v1/security/audit",
            "GET /api/v1/security/keys",
            "GET /api/v1/status",
            "GET /api/v1/users",
            "GET /api/v1/users/me",
            "GET /api/v1/users/{user_id}",
            "GET /api/v1/webhooks",
            "GET /api/v1/webhooks/event-types",
            "GET /api/v1/webhooks/{id}",
            "GET /api/v1/webhooks/{id}/deliveries",
            "GET /api/v1/ws/dashboard",
            "GET /api/v1/ws/device/{device_id}",
            "GET /api/v1/ws/security",
            "GET /api/v1/ws/training",
            "GET /healthz",
            "GET /openapi.json",
            "GET /readyz",
            "GET /v1/qr",
            "PATCH /api/v1/chains/{chainId}",
            "PATCH /api/v1/live/channels/{channel_id}",
            "PATCH /api/v1/organizations/{org_id}",
            "PATCH /api/v1/organizations/{org_id}/members/{user_id}",
            "PATCH /api/v1/webhooks/{id}",
            "POST /api/v1/api-keys",
            "POST /api/v1/auth/forgot-password",
            "POST /api/v1/auth/invitations/redeem",
            "POST /api/v1/auth/login",
            "POST /api/v1/auth/logout",
            "POST /api/v1/auth/reset-password",
            "POST /api/v1/chains",
            "POST /api/v1/chains/{chainId}/scan",
            "POST /api/v1/live/channels",
            "POST /api/v1/live/channels/{channel_id}/user-data",
            "POST /api/v1/live/channels/{channel_id}/verify",
            "POST /api/v1/devices/enrollment-tokens",
            "POST /api/v1/devices/register",
            "POST /api/v1/devices/{device_id}/heartbeat",
            "POST /api/v1/devices/{device_id}/key-exchange",
            "POST /api/v1/devices/{device_id}/keys",
            "POST /api/v1/fl/rounds",
            "POST /api/v1/fl/rounds/{round_id}/join",
            "POST /api/v1/fl/rounds/{round_id}/submit",
            "POST /api/v1/organizations",
            "POST /api/v1/organizations/{org_id}/members",
            "POST /api/v1/security/keys/rotate",
            "POST /api/v1/users",
            "POST /api/v1/webhooks",
            "POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            "POST /api/v1/webhooks/{id}/rotate-secret",
            "POST /api/v1/webhooks/{id}/test",
            "POST /v1/qr",
            "PUT /api/v1/devices/{device_id}",
            "PUT /api/v1/organizations/{org_id}",
            "PUT /api/v1/users/{user_id}/permissions",
        ]
        .into_iter()
        .chain([
            // Issue 13: tracked QR codes.
            "GET /api/v1/organizations/{org_id}/qr-business",
            "GET /api/v1/organizations/{org_id}/qr-business/image",
            "GET /api/v1/organizations/{org_id}/qr-codes",
            "GET /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
            "GET /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/breakdown",
            "GET /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/image",
            "GET /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/scans.csv",
            "GET /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/timeline",
            "GET /api/v1/organizations/{org_id}/qr-tracking",
            "GET /r/{slug}",
            "PATCH /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
            "POST /api/v1/organizations/{org_id}/qr-codes",
            "POST /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/archive",
            "POST /api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/restore",
            "PUT /api/v1/organizations/{org_id}/qr-business",
            "PUT /api/v1/organizations/{org_id}/qr-tracking",
        ])
        .fold(Vec::<String>::new(), |mut all, op| {
            all.push(op.to_string());
            all.sort();
            all
        })
    );
    // Every listed operation is served (not 404/405) and documents its success response.
    for op in &listed {
        let (method, path) = op.split_once(' ').unwrap();
        if path == "/r/{slug}" {
            // A short link answers 302, or a 404 page for an unknown slug such as this.
            let r = app.get(path).await;
            assert_eq!(r.status(), 404, "{op}");
            assert!(paths[path]["get"]["responses"].get("302").is_some());
            continue;
        }
        let r = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(![404, 405].contains(&r.status().as_u16()), "{op}");
        let responses = &paths[path][method.to_lowercase()]["responses"];
        assert!(
            responses
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2') || k == "101"),
            "{op} documents no success response"
        );
    }
    let post = &paths["/v1/qr"]["post"]["responses"];
    for status in ["200", "304", "400", "413", "415", "500"] {
        assert!(post.get(status).is_some(), "POST /v1/qr lacks {status}");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["QrRequest"].is_object());
}

/// Every protected operation of the document declares its permission in the table the
/// role matrix is built from, and the table names no operation that does not exist.
#[test]
fn every_platform_operation_declares_a_permission() {
    let doc =
        serde_json::to_value(qrlp_server::app::openapi(&qrlp_config::Config::default())).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") || path.starts_with("/api/v1/auth/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            // Public operations (no security) and those only a device's signature opens
            // (the fleet's device endpoints) declare no permission.
            let by_principal = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("api_key").is_some()));
            if by_principal {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let declared: Vec<(String, String)> = qrlp_server::authz::ROUTE_PERMISSIONS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    let mut sorted = declared.clone();
    sorted.sort();
    assert_eq!(documented, sorted);
}
