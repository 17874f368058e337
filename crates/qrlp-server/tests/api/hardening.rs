//! The findings of the platform-core review (issue 9), one test (or more) per finding, each
//! named after it. Every one of them fails on the code before the fix.

use std::time::{Duration, Instant};

use qrlp_config::Config;
use qrlp_store::Plan;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{error_body, seed002_error_body, TestApp};
use crate::platform::Platform;

async fn status_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn finding_1_a_key_cannot_mint_a_key_with_scopes_it_lacks() {
    let p = Platform::start().await;
    let org = p.bootstrap("Delegation", Plan::Enterprise).await;
    let writer = p.key_with(&org, &["api_keys:write"]).await;
    for wider in [
        json!(["*"]),
        json!(["read"]),
        json!(["members:write"]),
        json!(["api_keys:write", "audit:read"]),
        json!(["organizations:create"]),
    ] {
        let r = p
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&writer),
                Some(json!({"name": "wider", "scopes": wider})),
            )
            .await;
        let e = error_body(r, 403).await;
        assert_eq!(e["code"], "FORBIDDEN", "{wider}: {e}");
    }
    // Without scopes: exactly the caller's, not `*`.
    let created = p
        .json(
            Method::POST,
            "/api/v1/api-keys",
            &writer,
            Some(json!({"name": "same"})),
            201,
        )
        .await;
    assert_eq!(created["scopes"], json!(["api_keys:write"]), "{created}");
    // And that key cannot reach anything its creator key could not.
    let r = p
        .call(
            Method::GET,
            "/api/v1/audit",
            Some(created["key"].as_str().unwrap()),
            None,
        )
        .await;
    error_body(r, 403).await;
    // A narrower key from a `*` key is fine.
    p.json(
        Method::POST,
        "/api/v1/api-keys",
        &org.key,
        Some(json!({"name": "narrow", "scopes": ["read"]})),
        201,
    )
    .await;
}

#[tokio::test]
async fn finding_1_a_members_key_cannot_set_anyones_password() {
    let p = Platform::start().await;
    let org = p.bootstrap("NoPasswords", Plan::Enterprise).await;
    let members = p.key_with(&org, &["members:write"]).await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&members),
            Some(json!({"email": "eve@np.example", "name": "Eve", "password": "chosen by the key", "role": "admin"})),
        )
        .await;
    error_body(r, 400).await;
    // Inviting works, but makes no account and sets no password.
    let (status, _) = status_of(
        p.call(
            Method::POST,
            "/api/v1/users",
            Some(&members),
            Some(json!({"email": "eve@np.example", "role": "admin"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 202);
    assert!(p
        .store
        .find_user_by_email("eve@np.example")
        .await
        .unwrap()
        .is_none());
}

/// The answer to an invitation, with what necessarily differs (ids, emails, tokens, times)
/// taken out.
fn shape(v: &Value) -> Value {
    let mut v = v.clone();
    for k in ["id", "email", "created_at", "expires_at"] {
        v["invitation"][k] = Value::Null;
    }
    for k in ["invite_url", "invite_token"] {
        if v[k].is_string() {
            v[k] = json!("<present>");
        }
    }
    v
}

#[tokio::test]
async fn finding_2_an_account_planted_by_one_organization_gains_nothing_in_another() {
    let p = Platform::start().await;
    let a = p.bootstrap("Attacker", Plan::Enterprise).await;
    let b = p.bootstrap("Bystander", Plan::Enterprise).await;

    // A's admin "creates" the victim and activates it with a password of A's choosing.
    let planted = p.invite(&a, "victim@corp.example", "member").await;
    p.redeem(&planted, "A chose this password").await;

    // B's admin adds that email; the answer is the same as for an unknown email.
    let mut answers = Vec::new();
    for email in ["victim@corp.example", "nobody-yet@corp.example"] {
        let (status, body) = status_of(
            p.call(
                Method::POST,
                &format!("/api/v1/organizations/{}/members", b.id),
                Some(&b.key),
                Some(json!({"email": email, "role": "admin"})),
            )
            .await,
        )
        .await;
        answers.push((status, shape(&body)));
    }
    assert_eq!(
        answers[0], answers[1],
        "existing and unknown emails answer alike"
    );
    assert_eq!(answers[0].0, 202);

    // A's admin, logged in as the victim, has no access to B.
    let (cookie, csrf) = p
        .login("victim@corp.example", "A chose this password")
        .await;
    let session = format!("{cookie}|{csrf}");
    let r = p
        .session_call(
            Method::GET,
            "/api/v1/organizations",
            &session,
            None,
            false,
            None,
        )
        .await;
    let (_, mine) = status_of(r).await;
    assert_eq!(mine["pagination"]["total"], 1, "{mine}");
    assert_eq!(mine["organizations"][0]["id"], a.id.as_str());
    let r = p
        .session_call(
            Method::GET,
            &format!("/api/v1/organizations/{}", b.id),
            &session,
            None,
            false,
            None,
        )
        .await;
    error_body(r, 403).await;
    // A cannot redeem B's invitation: A holds only its own, used, token.
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            &session,
            Some(json!({"token": planted})),
            true,
            Some(&p.origin()),
        )
        .await;
    assert_eq!(error_body(r, 400).await["details"]["field"], "token");
    // B's invitation is pending, and B has one member.
    let list = p
        .json(
            Method::GET,
            &format!("/api/v1/organizations/{}/invitations", b.id),
            &b.key,
            None,
            200,
        )
        .await;
    let victim = list["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "victim@corp.example")
        .expect("B's invitation");
    assert_eq!(victim["status"], "pending");
    let members = p
        .json(
            Method::GET,
            &format!("/api/v1/organizations/{}/members", b.id),
            &b.key,
            None,
            200,
        )
        .await;
    assert_eq!(members["pagination"]["total"], 1);
}

#[tokio::test]
async fn finding_2_an_existing_account_redeems_only_with_its_own_session() {
    let p = Platform::start().await;
    let a = p.bootstrap("First", Plan::Enterprise).await;
    let b = p.bootstrap("Second", Plan::Enterprise).await;
    let (_, alice) = p.user(&a, "alice@two.example", "member").await;
    let (_, mallory) = p.user(&a, "mallory@two.example", "member").await;
    let token = p.invite(&b, "alice@two.example", "viewer").await;
    // Without a session: the account exists, so no new account is made (409).
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            None,
            Some(json!({"token": token, "password": "a different password"})),
        )
        .await;
    error_body(r, 409).await;
    // Another account's session: 403.
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            &mallory,
            Some(json!({"token": token})),
            true,
            Some(&p.origin()),
        )
        .await;
    error_body(r, 403).await;
    // Alice's own session: joined, once.
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            &alice,
            Some(json!({"token": token})),
            true,
            Some(&p.origin()),
        )
        .await;
    let (status, body) = status_of(r).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "viewer");
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            &alice,
            Some(json!({"token": token})),
            true,
            Some(&p.origin()),
        )
        .await;
    error_body(r, 400).await;
}

#[tokio::test]
async fn finding_3_a_read_key_cannot_create_an_organization_and_plans_are_free() {
    let p = Platform::start().await;
    let org = p.bootstrap("Plans", Plan::Free).await;
    let read = p.key_with(&org, &["read"]).await;
    for key in [&read, &org.key] {
        let r = p
            .call(
                Method::POST,
                "/api/v1/organizations",
                Some(key),
                Some(json!({"name": "Mine"})),
            )
            .await;
        let e = error_body(r, 403).await;
        assert_eq!(e["details"]["required"], "organizations:create", "{e}");
    }
    let creator = p.key_with(&org, &["organizations:create"]).await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/organizations",
            Some(&creator),
            Some(json!({"name": "Paid", "plan": "enterprise"})),
        )
        .await;
    assert_eq!(error_body(r, 400).await["details"]["field"], "plan");
    let made = p
        .json(
            Method::POST,
            "/api/v1/organizations",
            &creator,
            Some(json!({"name": "Mine", "plan": "free"})),
            201,
        )
        .await;
    assert_eq!(made["plan"], "free");
    // Owners cannot change the plan either; only an operator can.
    let r = p
        .call(
            Method::PATCH,
            &format!("/api/v1/organizations/{}", org.id),
            Some(&org.key),
            Some(json!({"plan": "enterprise"})),
        )
        .await;
    error_body(r, 403).await;
    // A user session creates organizations.
    let (_, session) = p.user(&org, "founder@plans.example", "viewer").await;
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/organizations",
            &session,
            Some(json!({"name": "Founded"})),
            true,
            Some(&p.origin()),
        )
        .await;
    let (status, body) = status_of(r).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plan"], "free");
}

/// Reads until the server closes the connection; `None` if it is still open at `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn finding_4_a_slowloris_client_is_cut_off_within_the_header_timeout() {
    let mut config = Config::default();
    config.server.header_read_timeout_secs = 2;
    let app = TestApp::start_with(config, axum::Router::new()).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let start = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // One header byte a second, in the background.
    let (mut reader, mut writer) = slow.into_split();
    let dribble = tokio::spawn(async move {
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaa".iter() {
            if writer.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // Others are served meanwhile.
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), reader.read_to_end(&mut buf)).await;
    let elapsed = start.elapsed();
    dribble.abort();
    assert!(read.is_ok(), "still open after 6 s");
    assert!(
        elapsed < Duration::from_millis(3500),
        "cut off after {elapsed:?}, header timeout 2 s"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn finding_4_connections_beyond_the_cap_are_closed_at_once() {
    let mut config = Config::default();
    config.server.max_connections = 3;
    let app = TestApp::start_with(config, axum::Router::new()).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    let closed = closed_by(&mut extra, Instant::now() + Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the fourth connection was not closed");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn finding_4_idle_keep_alive_connections_close_and_slow_handlers_get_503() {
    let mut config = Config::default();
    config.server.keepalive_timeout_secs = 1;
    config.server.request_timeout_secs = 1;
    let slow = axum::Router::new().route(
        "/test/sleepy",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let app = TestApp::start_with(config, slow).await;
    let started = Instant::now();
    let r = app.get("/test/sleepy").await;
    let e = error_body(r, 503).await;
    assert_eq!(e["code"], "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(3));

    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_from = Instant::now();
    let closed = closed_by(&mut conn, Instant::now() + Duration::from_secs(5))
        .await
        .expect("idle connection closed");
    let idle = closed - idle_from;
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle"
    );
}

async fn login_status(app: &TestApp, forwarded_for: &str) -> u16 {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": "nobody@proxy.example", "password": "wrong password!"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn finding_5_behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let mut config = Config::default();
    config.rate_limit.ip_per_hour = 3;
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let app = TestApp::start_with(config, axum::Router::new()).await;
    for _ in 0..3 {
        assert_eq!(login_status(&app, "198.51.100.1").await, 401);
    }
    assert_eq!(login_status(&app, "198.51.100.1").await, 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(login_status(&app, "198.51.100.2").await, 401);
    // Forged hops left of the client change nothing.
    assert_eq!(login_status(&app, "203.0.113.5, 198.51.100.1").await, 429);
    // The proxy's word on HTTPS sets Secure.
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("x-forwarded-for", "198.51.100.3")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test]
async fn finding_5_without_a_trusted_proxy_forged_forwarding_headers_change_nothing() {
    let mut config = Config::default();
    config.rate_limit.ip_per_hour = 3;
    let app = TestApp::start_with(config, axum::Router::new()).await;
    for i in 0..3 {
        assert_eq!(login_status(&app, &format!("198.51.100.{i}")).await, 401);
    }
    // A new forged address does not buy a new budget.
    assert_eq!(login_status(&app, "198.51.100.99").await, 429);
    let mut config = Config::default();
    config.rate_limit.ip_per_hour = 0;
    let app = TestApp::start_with(config, axum::Router::new()).await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn finding_6_200_concurrent_wrong_password_logins_end_in_401_or_503() {
    let mut config = Config::default();
    config.rate_limit.ip_per_hour = 0;
    let p = Platform::start_with(config).await;
    let org = p.bootstrap("Flood", Plan::Enterprise).await;
    p.user(&org, "target@flood.example", "member").await;
    let started = Instant::now();
    let logins = (0..200).map(|i| {
        let client = p.app.client.clone();
        let url = p.app.url("/api/v1/auth/login");
        tokio::spawn(async move {
            let email = if i % 2 == 0 {
                "target@flood.example".to_string()
            } else {
                format!("nobody{i}@flood.example")
            };
            let r = client
                .post(url)
                .json(&json!({"email": email, "password": "not the password"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if status == 503 {
                assert!(r.headers().contains_key("retry-after"));
            }
            status
        })
    });
    let mut counts = std::collections::BTreeMap::new();
    for h in logins.collect::<Vec<_>>() {
        let status = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .expect("no hang")
            .unwrap();
        *counts.entry(status).or_insert(0) += 1;
    }
    assert!(counts.keys().all(|s| *s == 401 || *s == 503), "{counts:?}");
    assert!(counts.get(&401).copied().unwrap_or(0) > 0, "{counts:?}");
    eprintln!(
        "200 wrong-password logins: {counts:?} in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn finding_8_expired_sessions_disappear_within_one_purge_interval() {
    let mut config = Config::default();
    config.auth.purge_interval_secs = 1;
    let p = Platform::start_with(config).await;
    let org = p.bootstrap("Purge", Plan::Enterprise).await;
    let ctx = qrlp_store::AuditContext {
        org_id: None,
        actor: qrlp_store::Actor::System,
        ip: None,
        user_agent: None,
        request_id: None,
    };
    let (_, hash) = qrlp_store::secret::generate_token();
    let expires = time::OffsetDateTime::now_utc() + Duration::from_millis(500);
    p.store
        .create_session(&ctx, org.owner.parse().unwrap(), &hash, "csrf", expires)
        .await
        .unwrap();
    // It expires after 0.5 s; within one more interval the server's task deletes it, so a
    // purge by hand finds nothing left (it would find 1 without the task).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(p.store.purge_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn finding_8_a_password_accepted_at_creation_can_log_in() {
    let p = Platform::start().await;
    let org = p.bootstrap("Lengths", Plan::Enterprise).await;
    // 1,024 characters of two bytes each: accepted at creation, so login must accept it.
    let long = "é".repeat(1024);
    let token = p.invite(&org, "long@len.example", "member").await;
    p.redeem(&token, &long).await;
    p.login("long@len.example", &long).await;
    let token = p.invite(&org, "longer@len.example", "member").await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            None,
            Some(json!({"token": token, "password": "é".repeat(1025)})),
        )
        .await;
    assert_eq!(error_body(r, 400).await["details"]["field"], "password");
}

#[tokio::test]
async fn finding_8_a_flood_of_random_keys_does_not_evict_the_keys_in_use() {
    let p = Platform::start().await;
    let org = p.bootstrap("Cache", Plan::Enterprise).await;
    let auth = qrlp_server::auth::Authenticator::new(p.store.clone(), Duration::from_secs(60));
    let good = auth.api_key(&org.key).await.expect("good key");
    for i in 0..12_000 {
        let random = qrlp_store::secret::generate_api_key().secret.clone();
        assert!(auth.api_key(&random).await.is_err());
        if i % 500 == 0 {
            auth.api_key(&org.key).await.expect("good key");
        }
    }
    assert!(
        auth.cached_keys() <= 10_000,
        "bounded: {}",
        auth.cached_keys()
    );
    // Still cached: answers without the database.
    p.store.close().await;
    let again = auth.api_key(&org.key).await.expect("served from the cache");
    assert_eq!(again.key.id, good.key.id);
}

/// A local SMTP sink: `python3 -m aiosmtpd` printing every message on its stdout.
struct SmtpSink {
    child: tokio::process::Child,
    port: u16,
    out: tokio::io::BufReader<tokio::process::ChildStdout>,
}

impl SmtpSink {
    async fn start() -> Option<SmtpSink> {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "aiosmtpd is missing under CI: run scripts/install-test-extras.sh"
            );
            eprintln!("SKIPPED: python3 -m aiosmtpd unavailable (scripts/install-test-extras.sh)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new("python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd starts");
        let out = tokio::io::BufReader::new(child.stdout.take().unwrap());
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(SmtpSink { child, port, out });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen");
    }

    /// The body of the next mail the sink prints, decoded from quoted-printable.
    async fn next_mail(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut raw = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.out.read_line(&mut line))
                .await
                .expect("mail arrives within 10 s")
                .unwrap();
            assert!(n > 0, "aiosmtpd exited");
            if line.starts_with("------------ END MESSAGE") {
                break;
            }
            raw.push_str(&line);
        }
        let body = raw.split_once("\n\n").map_or(raw.as_str(), |(_, b)| b);
        quoted_printable_decode(body)
    }

    /// The token after `marker` (`/invite#token=`) in the next mail.
    async fn token_after(&mut self, marker: &str) -> String {
        let mail = self.next_mail().await;
        let at = mail
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in {mail}"));
        mail[at + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// Quoted-printable (RFC 2045) to text: soft line breaks removed, `=XX` decoded.
fn quoted_printable_decode(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn finding_2_with_mail_the_invitation_arrives_by_mail_and_works_once() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let mut config = Config::default();
    config.mail.smtp_url = format!("smtp://127.0.0.1:{}", sink.port);
    config.mail.from = "qrlp <noreply@qrlp.example>".into();
    let p = Platform::start_with(config).await;
    let org = p.bootstrap("Mailed", Plan::Enterprise).await;
    let answer = p
        .json(
            Method::POST,
            "/api/v1/users",
            &org.key,
            Some(json!({"email": "invitee@mail.example", "role": "member"})),
            202,
        )
        .await;
    assert_eq!(answer["delivery"], "email");
    assert!(answer["invite_url"].is_null() && answer["invite_token"].is_null());
    let token = sink.token_after("/invite#token=").await;
    assert!(
        !answer.to_string().contains(&token),
        "the inviter's answer holds the token"
    );
    let member = p.redeem(&token, "the invitee's own password").await;
    assert_eq!(member["user"]["email"], "invitee@mail.example");
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/invitations/redeem",
            None,
            Some(json!({"token": token, "password": "another password!"})),
        )
        .await;
    error_body(r, 400).await;

    // "Forgot password" goes through the same channel; the answer never changes.
    for email in ["invitee@mail.example", "unknown@mail.example"] {
        let (status, body) = status_of(
            p.call(
                Method::POST,
                "/api/v1/auth/forgot-password",
                None,
                Some(json!({"email": email})),
            )
            .await,
        )
        .await;
        assert_eq!((status, body), (202, json!({"status": "accepted"})));
    }
    let token = sink.token_after("/reset-password#token=").await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/reset-password",
            None,
            Some(json!({"token": token, "password": "a fresh password!"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    p.login("invitee@mail.example", "a fresh password!").await;
    sink.child.kill().await.ok();
}

/// Finding 10: the role matrix was declared twice and only half-checked. Every operation of
/// `ROUTE_PERMISSIONS` (the table the OpenAPI `x-permission` and the docs' matrix come from)
/// must enforce exactly that permission: a key holding every scope but that one gets 403
/// naming it, and the document says the same.
#[tokio::test]
async fn finding_10_every_route_enforces_the_permission_it_declares() {
    use qrlp_server::authz::{Permission, ROUTE_PERMISSIONS};
    let p = Platform::start().await;
    let org = p.bootstrap("Declared", Plan::Enterprise).await;
    let doc = serde_json::to_value(qrlp_server::app::openapi(&Config::default())).unwrap();
    let any = "0190a000-0000-7000-8000-000000000000";
    for (method, path, permission) in ROUTE_PERMISSIONS {
        assert_eq!(
            doc["paths"][path][method.to_lowercase()]["x-permission"],
            permission.scope(),
            "{method} {path}"
        );
        if *permission == Permission::Authenticated {
            continue;
        }
        let others: Vec<&str> = Permission::ALL
            .iter()
            .filter(|q| *q != permission && **q != Permission::Authenticated)
            .map(|q| q.scope())
            .collect();
        let key = p.key_with(&org, &others).await;
        let url = path
            .replace("{org_id}", &org.id)
            .replace("{user_id}", any)
            .replace("{key_id}", any)
            .replace("{invitation_id}", any);
        let r = p
            .call(method.parse().unwrap(), &url, Some(&key), Some(json!({})))
            .await;
        // The fleet's route families answer in seed 002's shape, the rest in the platform's.
        let seed002 = [
            "/api/v1/devices",
            "/api/v1/security",
            "/api/v1/monitoring",
            "/api/v1/ws",
            "/api/v1/fl",
        ]
        .iter()
        .any(|f| path.starts_with(f))
            || *path == "/api/v1/status"
            || (*path == "/api/v1/users" && *method == "GET")
            || path.starts_with("/api/v1/users/{user_id}/permissions");
        let e = if seed002 {
            let e = seed002_error_body(r, 403).await;
            assert_eq!(
                e["code"], "INSUFFICIENT_PERMISSIONS",
                "{method} {path}: {e}"
            );
            e
        } else {
            error_body(r, 403).await
        };
        assert_eq!(
            e["details"]["required"],
            permission.scope(),
            "{method} {path}: {e}"
        );
    }
}
