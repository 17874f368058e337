//! The device fleet (seed 002) over TCP: enrollment and its failure codes, the certificate
//! against the organization CA with `openssl`, signed device requests (forged, stale,
//! replayed, revoked), the ML-KEM-768 key exchange, rotation with its grace period,
//! offline detection, WebSocket channels and isolation between organizations.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use qrlp_config::Config;
use qrlp_fleet::enroll::{enrollment_proof_message, rotation_proof_message};
use qrlp_fleet::pq::{self, KemKeyPair};
use qrlp_fleet::signing::{DeviceKey, Request};
use qrlp_store::{AuditContext, NewApiKeyMaterial, NewEnrollmentToken, Plan, Store, StoreConfig};
use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::common::{seed002_error_body, TestApp};

pub(crate) struct Fleet {
    pub(crate) app: TestApp,
    pub(crate) store: Store,
}

pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) key: String,
}

pub(crate) struct Dev {
    pub(crate) id: String,
    pub(crate) key: DeviceKey,
    pub(crate) version: u32,
    pub(crate) reg: Value,
}

impl Fleet {
    pub(crate) async fn start_with(config: Config) -> Fleet {
        let own = std::path::PathBuf::from(&config.storage.data_dir);
        let app = TestApp::start_with(config, axum::Router::new()).await;
        let dir = app
            .data_dir
            .as_ref()
            .map_or(own, |d| d.path().to_path_buf());
        let store = Store::open(&StoreConfig {
            database_url: None,
            data_dir: dir,
            max_connections: 2,
        })
        .await
        .unwrap();
        Fleet { app, store }
    }

    pub(crate) async fn org(&self, name: &str) -> Org {
        let key = qrlp_store::secret::generate_api_key();
        let done = self
            .store
            .bootstrap(
                name,
                Plan::Enterprise,
                &format!("owner@{}.example", name.to_lowercase()),
                "Owner",
                NewApiKeyMaterial {
                    name: "bootstrap".into(),
                    prefix: key.prefix.clone(),
                    hash: key.hash,
                },
            )
            .await
            .unwrap();
        Org {
            id: done.organization.id.to_string(),
            key: key.secret.clone(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("x-api-key", key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn token(&self, org: &Org) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/devices/enrollment-tokens",
                &org.key,
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    async fn register_raw(&self, body: Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/v1/devices/register"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn enroll(&self, org: &Org, name: &str) -> Dev {
        let token = self.token(org).await;
        let key = DeviceKey::generate();
        let r = self
            .register_raw(registration(&token, &key, name, Some(&org.id)))
            .await;
        assert_eq!(r.status(), 201);
        let reg: Value = r.json().await.unwrap();
        Dev {
            id: reg["device_id"].as_str().unwrap().to_string(),
            key,
            version: 1,
            reg,
        }
    }

    /// A signed device request at `ts` (Unix seconds), with `tamper` applied to the body
    /// after signing.
    async fn signed_at(
        &self,
        dev: &Dev,
        key: &DeviceKey,
        version: u32,
        path: &str,
        body: &[u8],
        ts: i64,
    ) -> (reqwest::RequestBuilder, Vec<(&'static str, String)>) {
        let h = key.sign_request(
            &dev.id,
            version,
            &Request {
                method: "POST",
                path_and_query: path,
                body,
            },
            ts,
            None,
        );
        let pairs = h.to_pairs().to_vec();
        let mut req = self
            .app
            .client
            .post(self.app.url(path))
            .header("content-type", "application/json");
        for (k, v) in &pairs {
            req = req.header(*k, v);
        }
        (req, pairs)
    }

    async fn heartbeat(&self, dev: &Dev, body: Value) -> reqwest::Response {
        let path = format!("/api/v1/devices/{}/heartbeat", dev.id);
        let bytes = serde_json::to_vec(&body).unwrap();
        let (req, _) = self
            .signed_at(dev, &dev.key, dev.version, &path, &bytes, now())
            .await;
        req.body(bytes).send().await.unwrap()
    }
}

pub(crate) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn registration(token: &str, key: &DeviceKey, name: &str, org: Option<&str>) -> Value {
    let kem = KemKeyPair::generate().public_key();
    let proof = key.sign_bytes(&enrollment_proof_message(token, &key.public_key(), &kem));
    let mut v = json!({
        "enrollment_token": token,
        "device_info": {"name": name, "type": "raspberry_pi",
            "capabilities": {"cpu_cores": 4, "memory_gb": 4, "storage_gb": 64}},
        "public_keys": {"ed25519": B64.encode(key.public_key()), "ml_kem_768": B64.encode(&kem)},
        "proof": B64.encode(proof),
    });
    if let Some(o) = org {
        v["organization_id"] = json!(o);
    }
    v
}

/// Checks seed 002's error shape and code; returns `error`.
pub(crate) async fn seed_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    let e = seed002_error_body(r, status).await;
    assert_eq!(e["code"], code, "{e}");
    e
}

fn openssl(args: &[&str]) -> Option<(bool, String)> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .ok()?;
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn enrollment_codes_shape_and_certificate() {
    let f = Fleet::start_with(Config::default()).await;
    let a = f.org("Alpha").await;
    let b = f.org("Beta").await;

    // success, in the seed's shape
    let token = f.token(&a).await;
    let key = DeviceKey::generate();
    let r = f
        .register_raw(registration(&token, &key, "Edge Device 002", Some(&a.id)))
        .await;
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert!(
        reg["device_id"].as_str().unwrap().starts_with("dev_"),
        "{reg}"
    );
    assert!(reg["certificate"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let ek = B64
        .decode(reg["quantum_keys"]["encryption_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(ek.len(), pq::ML_KEM_768_PUBLIC_KEY_LEN);
    let sk = B64
        .decode(reg["quantum_keys"]["signing_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(sk.len(), pq::FN_DSA_512_PUBLIC_KEY_LEN);
    assert_eq!(reg["config"]["update_interval"], 300);
    assert!(reg["config"]["server_endpoint"]
        .as_str()
        .unwrap()
        .starts_with("http"));
    assert_eq!(reg["config"]["training_config"]["batch_size"], 32);
    assert!(
        !reg.to_string().contains("PRIVATE"),
        "no private key is returned"
    );

    // reused token
    let again = f
        .register_raw(registration(&token, &DeviceKey::generate(), "x", None))
        .await;
    assert_eq!(
        seed_error(again, 401, "INVALID_TOKEN").await["details"]["reason"],
        "used"
    );
    // unknown token
    let unknown = f
        .register_raw(registration(
            "tok_AAAAAAAAAAAAAAAAAAAA",
            &DeviceKey::generate(),
            "x",
            None,
        ))
        .await;
    seed_error(unknown, 401, "INVALID_TOKEN").await;
    // a token of organization b presented for organization a
    let tb = f.token(&b).await;
    let cross = f
        .register_raw(registration(&tb, &DeviceKey::generate(), "x", Some(&a.id)))
        .await;
    assert_eq!(
        seed_error(cross, 401, "INVALID_TOKEN").await["details"]["reason"],
        "organization_mismatch"
    );
    // forged: the proof is made with another key than the one registered
    let ta = f.token(&a).await;
    let mut forged = registration(&ta, &DeviceKey::generate(), "x", None);
    forged["public_keys"]["ed25519"] = json!(B64.encode(DeviceKey::generate().public_key()));
    assert_eq!(
        seed_error(f.register_raw(forged).await, 401, "INVALID_TOKEN").await["details"]["reason"],
        "proof_of_possession"
    );
    // the forged attempt did not use the token up
    let ok = f
        .register_raw(registration(&ta, &DeviceKey::generate(), "y", None))
        .await;
    assert_eq!(ok.status(), 201);
    // expired
    let t = qrlp_fleet::enroll::generate_token();
    f.store
        .create_enrollment_token(
            &AuditContext::system(),
            NewEnrollmentToken {
                org_id: a.id.parse().unwrap(),
                hash: t.hash,
                name_pattern: None,
                capabilities: None,
                created_by: None,
                expires_at: OffsetDateTime::now_utc() - time::Duration::seconds(1),
            },
        )
        .await
        .unwrap();
    let expired = f
        .register_raw(registration(&t.secret, &DeviceKey::generate(), "x", None))
        .await;
    seed_error(expired, 400, "ENROLLMENT_TOKEN_EXPIRED").await;
    // a key that is not ML-KEM-768
    let t2 = f.token(&a).await;
    let mut bad = registration(&t2, &DeviceKey::generate(), "x", None);
    bad["public_keys"]["ml_kem_768"] = json!(B64.encode([0xffu8; 1184]));
    seed_error(f.register_raw(bad).await, 400, "INVALID_QUANTUM_KEY").await;
    // validation is 422
    let v = f.register_raw(json!({"enrollment_token": 5})).await;
    seed_error(v, 422, "VALIDATION_ERROR").await;

    // the certificate verifies against the organization CA; openssl shows the device key
    let ca = f
        .app
        .get(&format!("/api/v1/devices/ca?organization_id={}", a.id))
        .await;
    assert_eq!(ca.status(), 200);
    let ca_pem = ca.text().await.unwrap();
    assert_eq!(ca_pem, reg["ca_certificate"].as_str().unwrap());
    if openssl(&["version"]).is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required in CI"
        );
        eprintln!("skipped openssl checks: openssl not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let dev_path = dir.path().join("device.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    std::fs::write(&dev_path, reg["certificate"].as_str().unwrap()).unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        dev_path.to_str().unwrap(),
    ])
    .unwrap();
    assert!(ok && text.contains(": OK"), "{text}");
    let (_, text) =
        openssl(&["x509", "-noout", "-text", "-in", dev_path.to_str().unwrap()]).unwrap();
    let hexed: Vec<String> = key
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let flat: String = text.split_whitespace().collect();
    assert!(
        text.contains("ED25519") && flat.contains(&hexed.join(":")),
        "{text}"
    );
}

#[tokio::test]
async fn signed_requests_refuse_forgery_staleness_replay_and_revocation() {
    let f = Fleet::start_with(Config::default()).await;
    let a = f.org("Gamma").await;
    let dev = f.enroll(&a, "gate-1").await;
    let path = format!("/api/v1/devices/{}/heartbeat", dev.id);
    let body = br#"{"status":"online"}"#.to_vec();

    // valid
    let (req, pairs) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    let r = req.body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["status"], "online");
    assert_eq!(ack["key_version"], "v1");

    // the exact same request again
    let mut replay = f
        .app
        .client
        .post(f.app.url(&path))
        .header("content-type", "application/json");
    for (k, v) in &pairs {
        replay = replay.header(*k, v);
    }
    let e = seed_error(
        replay.body(body.clone()).send().await.unwrap(),
        401,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(e["details"]["reason"], "replayed");

    // a bit flipped in the body
    let (req, _) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    let mut flipped = body.clone();
    flipped[3] ^= 0x01;
    let e = seed_error(
        req.body(flipped).send().await.unwrap(),
        401,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(e["details"]["reason"], "bad_signature");

    // a wrong key
    let other = DeviceKey::generate();
    let (req, _) = f.signed_at(&dev, &other, 1, &path, &body, now()).await;
    let e = seed_error(
        req.body(body.clone()).send().await.unwrap(),
        401,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(e["details"]["reason"], "bad_signature");

    // 301 s old
    let (req, _) = f
        .signed_at(&dev, &dev.key, 1, &path, &body, now() - 301)
        .await;
    let e = seed_error(
        req.body(body.clone()).send().await.unwrap(),
        401,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(e["details"]["reason"], "stale_timestamp");

    // no signature at all
    let r = f
        .app
        .client
        .post(f.app.url(&path))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let e = seed_error(r, 401, "INVALID_TOKEN").await;
    assert_eq!(e["details"]["reason"], "missing_header");

    // still works, then deregistration stops the very next request
    assert_eq!(f.heartbeat(&dev, json!({})).await.status(), 200);
    let r = f
        .call(
            Method::DELETE,
            &format!("/api/v1/devices/{}", dev.id),
            &a.key,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let e = seed_error(f.heartbeat(&dev, json!({})).await, 401, "INVALID_TOKEN").await;
    assert_eq!(e["details"]["reason"], "revoked");
    let r = f
        .call(
            Method::GET,
            &format!("/api/v1/devices/{}", dev.id),
            &a.key,
            None,
        )
        .await;
    seed_error(r, 404, "DEVICE_NOT_FOUND").await;
}

#[tokio::test]
async fn ml_kem_exchange_and_rotation_grace() {
    let mut config = Config::default();
    config.fleet.rotation_grace_secs = 2;
    let f = Fleet::start_with(config).await;
    let a = f.org("Delta").await;
    let mut dev = f.enroll(&a, "sensor-1").await;

    // ML-KEM-768: the device encapsulates to the server's key; both derive the same secret
    let ek = B64
        .decode(dev.reg["quantum_keys"]["encryption_key"].as_str().unwrap())
        .unwrap();
    let (ct, shared) = pq::encapsulate(&ek).unwrap();
    let path = format!("/api/v1/devices/{}/key-exchange", dev.id);
    let body = serde_json::to_vec(&json!({"ciphertext": B64.encode(&ct)})).unwrap();
    let (req, _) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    let r = req.body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let x: Value = r.json().await.unwrap();
    let confirmation = B64.decode(x["confirmation"].as_str().unwrap()).unwrap();
    let mine = pq::key_confirmation(&shared, &dev.id, &ct);
    assert_eq!(
        confirmation,
        mine.to_vec(),
        "both sides derived the same secret"
    );
    let sig = B64.decode(x["signature"].as_str().unwrap()).unwrap();
    let signing_key = B64
        .decode(dev.reg["quantum_keys"]["signing_key"].as_str().unwrap())
        .unwrap();
    assert!(pq::pq_verify(
        &signing_key,
        &pq::confirmation_signed_message(&dev.id, &mine),
        &sig
    ));
    // a ciphertext of the wrong size
    let body = serde_json::to_vec(&json!({"ciphertext": B64.encode([1u8; 10])})).unwrap();
    let (req, _) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    seed_error(
        req.body(body).send().await.unwrap(),
        400,
        "INVALID_QUANTUM_KEY",
    )
    .await;

    // rotation: asked by an admin, seen at the next heartbeat
    let r = f
        .call(
            Method::POST,
            "/api/v1/security/keys/rotate",
            &a.key,
            Some(json!({"device_id": dev.id})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let ack: Value = f.heartbeat(&dev, json!({})).await.json().await.unwrap();
    assert_eq!(ack["rotate_keys"], true);
    let new_key = DeviceKey::generate();
    let new_kem = KemKeyPair::generate().public_key();
    let proof = new_key.sign_bytes(&rotation_proof_message(
        &dev.id,
        2,
        &new_key.public_key(),
        &new_kem,
    ));
    let path = format!("/api/v1/devices/{}/keys", dev.id);
    let body = serde_json::to_vec(&json!({
        "public_keys": {"ed25519": B64.encode(new_key.public_key()), "ml_kem_768": B64.encode(&new_kem)},
        "proof": B64.encode(proof),
    }))
    .unwrap();
    let (req, _) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    let r = req.body(body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let rotated: Value = r.json().await.unwrap();
    assert_eq!(rotated["key_version"], "v2");

    // the old version still works within the grace period
    assert_eq!(f.heartbeat(&dev, json!({})).await.status(), 200);
    let keys: Value = f
        .call(Method::GET, "/api/v1/security/keys", &a.key, None)
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<(&str, &str)> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_version"].as_str().unwrap(),
                k["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("v2", "active"), ("v1", "grace")], "{keys}");
    assert_eq!(keys["keys"][0]["algorithm"], "ML-KEM-768");
    assert_eq!(keys["rotation_schedule"]["interval_days"], 30);
    // and is refused after it
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let e = seed_error(f.heartbeat(&dev, json!({})).await, 401, "INVALID_TOKEN").await;
    assert_eq!(e["details"]["reason"], "key_expired");
    dev.key = new_key;
    dev.version = 2;
    let ack: Value = f.heartbeat(&dev, json!({})).await.json().await.unwrap();
    assert_eq!(
        (ack["key_version"].as_str(), ack["rotate_keys"].as_bool()),
        (Some("v2"), Some(false))
    );
    let audit: Value = f
        .call(Method::GET, "/api/v1/security/audit", &a.key, None)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"security.key_rotated"), "{actions:?}");
}

#[tokio::test]
async fn another_organization_gets_404_everywhere() {
    let f = Fleet::start_with(Config::default()).await;
    let a = f.org("Epsilon").await;
    let b = f.org("Zeta").await;
    let dev = f.enroll(&a, "cam-1").await;
    let p = format!("/api/v1/devices/{}", dev.id);
    for (m, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "stolen"}))),
        (Method::DELETE, None),
    ] {
        seed_error(f.call(m, &p, &b.key, body).await, 404, "DEVICE_NOT_FOUND").await;
    }
    let r = f
        .call(
            Method::POST,
            "/api/v1/security/keys/rotate",
            &b.key,
            Some(json!({"device_id": dev.id})),
        )
        .await;
    seed_error(r, 404, "DEVICE_NOT_FOUND").await;
    let tokens: Value = f
        .call(
            Method::GET,
            "/api/v1/devices/enrollment-tokens",
            &a.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let token_id = tokens["tokens"][0]["id"].as_str().unwrap().to_string();
    let r = f
        .call(
            Method::DELETE,
            &format!("/api/v1/devices/enrollment-tokens/{token_id}"),
            &b.key,
            None,
        )
        .await;
    seed_error(r, 404, "NOT_FOUND").await;
    for list in [
        "/api/v1/devices",
        "/api/v1/security/keys",
        "/api/v1/devices/enrollment-tokens",
    ] {
        let v: Value = f
            .call(Method::GET, list, &b.key, None)
            .await
            .json()
            .await
            .unwrap();
        assert!(!v.to_string().contains(&dev.id), "{list}: {v}");
    }
    let v: Value = f
        .call(
            Method::GET,
            &format!("/api/v1/devices?organization={}", a.id),
            &b.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["total"], 0);
    // the owner still sees it; no key at all is INVALID_TOKEN in the seed's shape
    assert_eq!(f.call(Method::GET, &p, &a.key, None).await.status(), 200);
    let r = f
        .app
        .client
        .get(f.app.url("/api/v1/devices"))
        .send()
        .await
        .unwrap();
    seed_error(r, 401, "INVALID_TOKEN").await;
}

pub(crate) async fn ws_connect(
    f: &Fleet,
    path: &str,
    key: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut req = format!("ws://{}{}", f.app.addr, path)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("x-api-key", key.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = next_json(&mut ws).await.unwrap();
    assert_eq!(hello["type"], "connected");
    ws
}

pub(crate) async fn next_json<S>(ws: &mut S) -> Option<Value>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            return serde_json::from_str(&t).ok();
        }
    }
}

#[tokio::test]
async fn websocket_channels_and_offline_detection() {
    let mut config = Config::default();
    config.fleet.offline_check_interval_ms = 200;
    let f = Fleet::start_with(config).await;
    let a = f.org("Eta").await;
    let b = f.org("Theta").await;
    let dev = f.enroll(&a, "display-1").await;
    let r = f
        .call(
            Method::PUT,
            &format!("/api/v1/devices/{}", dev.id),
            &a.key,
            Some(json!({"update_interval": 1})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut dash = ws_connect(&f, "/api/v1/ws/dashboard", &a.key).await;
    let mut own = ws_connect(&f, &format!("/api/v1/ws/device/{}", dev.id), &a.key).await;
    let mut other = ws_connect(&f, "/api/v1/ws/dashboard", &b.key).await;
    // another organization cannot open the device's channel
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut req = format!("ws://{}/api/v1/ws/device/{}", f.app.addr, dev.id)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("x-api-key", b.key.parse().unwrap());
        assert!(tokio_tungstenite::connect_async(req).await.is_err());
    }

    assert_eq!(
        f.heartbeat(&dev, json!({"metrics": {"cpu_usage": 12.5}}))
            .await
            .status(),
        200
    );
    for ws in [&mut dash, &mut own] {
        let m = next_json(ws).await.unwrap();
        assert_eq!(m["type"], "device_heartbeat", "{m}");
        assert!(m["timestamp"].is_string());
        assert_eq!(m["data"]["device_id"], dev.id.as_str());
        let m = next_json(ws).await.unwrap();
        assert_eq!(m["type"], "device_status", "{m}");
        assert_eq!(
            (
                m["data"]["status"].as_str(),
                m["data"]["previous_status"].as_str()
            ),
            (Some("online"), Some("offline"))
        );
    }
    // three missed 1 s intervals: offline, announced once
    let m = next_json(&mut dash).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["data"]["status"].as_str()),
        (Some("device_status"), Some("offline")),
        "{m}"
    );
    let d: Value = f
        .call(
            Method::GET,
            &format!("/api/v1/devices/{}", dev.id),
            &a.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["status"], "offline");
    assert_eq!(d["security"]["quantum_key_version"], "v1");
    // the other organization saw nothing
    let _ = other
        .send(tokio_tungstenite::tungstenite::Message::Ping(vec![].into()))
        .await;
    let got = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            match other.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => return Some(t),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await;
    assert!(!matches!(got, Ok(Some(_))), "{got:?}");
    // monitoring shows it
    let alerts: Value = f
        .call(Method::GET, "/api/v1/monitoring/alerts", &a.key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["alerts"][0]["id"], "devices_offline", "{alerts}");
    let logs: Value = f
        .call(
            Method::GET,
            "/api/v1/monitoring/logs?level=warning",
            &a.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(logs["logs"].to_string().contains("went offline"), "{logs}");
    let health: Value = f.app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["components"]["quantum_keys"], "healthy");
    let status: Value = f
        .call(Method::GET, "/api/v1/status", &a.key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["federated_learning"]["total_devices"], 1);
    let metrics = f
        .call(Method::GET, "/api/v1/monitoring/metrics", &a.key, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("qrlp_fleet_devices{status=\"offline\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn two_servers_share_events_and_the_replay_cache_through_redis() {
    let Some(url) = std::env::var("QRLP_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "QRLP_TEST_REDIS_URL is required in CI"
        );
        eprintln!("skipped: QRLP_TEST_REDIS_URL not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.redis.url = url;
    config.storage.data_dir = dir.path().display().to_string();
    let f = Fleet::start_with(config.clone()).await;
    let second = TestApp::start_with(config, axum::Router::new()).await;
    let a = f.org("Iota").await;
    let dev = f.enroll(&a, "relay-1").await;
    let mut dash = ws_connect(&f, "/api/v1/ws/dashboard", &a.key).await;
    // give the subscriber of the first server a moment to be subscribed
    tokio::time::sleep(Duration::from_millis(300)).await;

    // a heartbeat to the second server reaches the first server's dashboard
    let path = format!("/api/v1/devices/{}/heartbeat", dev.id);
    let body = b"{}".to_vec();
    let (_, pairs) = f.signed_at(&dev, &dev.key, 1, &path, &body, now()).await;
    let send = |app: &TestApp| {
        let mut req = app
            .client
            .post(app.url(&path))
            .header("content-type", "application/json");
        for (k, v) in &pairs {
            req = req.header(*k, v);
        }
        req.body(body.clone()).send()
    };
    assert_eq!(send(&second).await.unwrap().status(), 200);
    let m = next_json(&mut dash).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["data"]["device_id"].as_str()),
        (Some("device_heartbeat"), Some(dev.id.as_str())),
        "{m}"
    );
    // the same signed request replayed to the first server is refused
    let e = seed_error(send(&f.app).await.unwrap(), 401, "INVALID_TOKEN").await;
    assert_eq!(e["details"]["reason"], "replayed");
}

#[tokio::test]
async fn device_endpoints_are_limited_per_device() {
    let mut config = Config::default();
    config.fleet.device_requests_per_minute = 3;
    let f = Fleet::start_with(config).await;
    let a = f.org("Kappa").await;
    let one = f.enroll(&a, "busy-1").await;
    let two = f.enroll(&a, "busy-2").await;
    for _ in 0..3 {
        assert_eq!(f.heartbeat(&one, json!({})).await.status(), 200);
    }
    let r = f.heartbeat(&one, json!({})).await;
    assert!(r.headers().contains_key("retry-after"));
    let e = seed_error(r, 429, "QUOTA_EXCEEDED").await;
    assert_eq!(e["details"]["limit_per_minute"], 3);
    // another device has its own budget
    assert_eq!(f.heartbeat(&two, json!({})).await.status(), 200);
}

/// An extractor's plain-text rejection on a seed-002 route (a missing query field, a
/// WebSocket route called without an upgrade) answers in seed 002's shape, 422, with the
/// rejection's words.
#[tokio::test]
async fn extractor_rejections_answer_in_the_seed_shape() {
    let app = TestApp::start().await;
    let r = app.get("/api/v1/devices/ca").await;
    let e = seed002_error_body(r, 422).await;
    assert_eq!(e["code"], "VALIDATION_ERROR", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("organization_id"),
        "{e}"
    );
}

/// `device.registered` reaches a subscribed endpoint through the platform's webhook engine,
/// signed, in seed 002's payload shape (`event`, `timestamp`, `data`).
#[tokio::test]
async fn device_registered_webhook_is_delivered_in_the_seed_shape() {
    use crate::webhooks::{fast_config, Receiver};
    let f = Fleet::start_with(fast_config()).await;
    let a = f.org("Hooked").await;
    let (rx, addr) = Receiver::start(&[]).await;
    let r = f
        .app
        .client
        .post(f.app.url("/api/v1/webhooks"))
        .header("x-api-key", &a.key)
        .json(&json!({"url": format!("http://{addr}/hook"), "events": ["device.registered"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = f.token(&a).await;
    let key = DeviceKey::generate();
    let r = f
        .register_raw(registration(&token, &key, "Gate 7", Some(&a.id)))
        .await;
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    rx.wait_for(1, Duration::from_secs(10)).await;
    let got = rx.got.lock().unwrap()[0].clone();
    assert!(got.headers.contains_key("webhook-signature"));
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["event"], "device.registered", "{body}");
    assert!(body["timestamp"].is_string(), "{body}");
    assert_eq!(body["data"]["device_id"], reg["device_id"], "{body}");
    assert_eq!(body["data"]["organization_id"], a.id.as_str(), "{body}");
    assert_eq!(body["data"]["device_name"], "Gate 7", "{body}");
}
