//! The platform API over TCP: tenant isolation, roles, API key lifecycle, the audit log,
//! sessions with CSRF, validation and conflicts, and plan rate limits.

use qrlp_config::Config;
use qrlp_store::{NewApiKeyMaterial, Plan, Store, StoreConfig};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{error_body, TestApp};

/// A server plus direct access to its database, for bootstrapping organizations.
pub(crate) struct Platform {
    pub(crate) app: TestApp,
    pub(crate) store: Store,
}

/// An organization made by bootstrap: its id, its owner's id and the owner's key.
pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) key: String,
}

impl Platform {
    pub(crate) async fn start() -> Platform {
        Platform::start_with(Config::default()).await
    }

    pub(crate) async fn start_with(config: Config) -> Platform {
        let app = TestApp::start_with(config, axum::Router::new()).await;
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
        Platform { app, store }
    }

    pub(crate) async fn bootstrap(&self, name: &str, plan: Plan) -> Org {
        let key = qrlp_store::secret::generate_api_key();
        let done = self
            .store
            .bootstrap(
                name,
                plan,
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
        Org {
            id: done.organization.id.to_string(),
            owner: done.user.id.to_string(),
            key: key.secret.clone(),
        }
    }

    /// A key of `org`'s owner with exactly `scopes`, made directly in the store (a key can
    /// only delegate what it holds, and the bootstrap key does not hold
    /// `organizations:create`).
    pub(crate) async fn key_with(&self, org: &Org, scopes: &[&str]) -> String {
        let generated = qrlp_store::secret::generate_api_key();
        self.store
            .create_api_key(
                &qrlp_store::AuditContext {
                    org_id: None,
                    actor: qrlp_store::Actor::System,
                    ip: None,
                    user_agent: None,
                    request_id: None,
                },
                qrlp_store::NewApiKey {
                    org_id: org.id.parse().unwrap(),
                    name: "test".into(),
                    scopes: scopes.iter().map(|s| s.to_string()).collect(),
                    created_by: Some(org.owner.parse().unwrap()),
                    expires_at: None,
                    prefix: generated.prefix.clone(),
                    hash: generated.hash,
                },
            )
            .await
            .expect("key");
        generated.secret.clone()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let r = self.call(method.clone(), path, Some(key), body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        }
    }

    /// A new user in `org` with `role`, and a key acting for them (made by `admin_key`'s
    /// user... so keys are made by a session of the new user instead: see `login`).
    pub(crate) async fn user(&self, org: &Org, email: &str, role: &str) -> (String, String) {
        let token = self.invite(org, email, role).await;
        let v = self.redeem(&token, "correct horse battery").await;
        assert_eq!(v["role"], role);
        let id = v["user"]["id"].as_str().unwrap().to_string();
        let (cookie, csrf) = self.login(email, "correct horse battery").await;
        (id, format!("{cookie}|{csrf}"))
    }

    /// Invites `email` into `org` with `role` (no mail configured: the token comes back).
    pub(crate) async fn invite(&self, org: &Org, email: &str, role: &str) -> String {
        let v = self
            .json(
                Method::POST,
                "/api/v1/users",
                &org.key,
                Some(json!({"email": email, "name": "U", "role": role})),
                202,
            )
            .await;
        assert_eq!(v["delivery"], "link");
        assert_eq!(v["invitation"]["role"], role);
        v["invite_token"].as_str().expect("token").to_string()
    }

    /// Redeems an invitation for a new account with `password`; the member view.
    pub(crate) async fn redeem(&self, token: &str, password: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/invitations/redeem",
                None,
                Some(json!({"token": token, "password": password})),
            )
            .await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("JSON");
        assert_eq!(status, 201, "{body}");
        body
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status(), 200);
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_string())
    }

    /// A request with a session cookie; `csrf` and `origin` as given.
    pub(crate) async fn session_call(
        &self,
        method: Method,
        path: &str,
        session: &str,
        body: Option<Value>,
        with_csrf: bool,
        origin: Option<&str>,
    ) -> reqwest::Response {
        let (cookie, csrf) = session.split_once('|').unwrap();
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("cookie", cookie);
        if with_csrf {
            req = req.header("x-csrf-token", csrf);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.app.addr)
    }
}

#[tokio::test]
async fn tenant_isolation_404_by_id_403_by_org_path() {
    let p = Platform::start().await;
    let a = p.bootstrap("Alpha", Plan::Enterprise).await;
    let b = p.bootstrap("Beta", Plan::Enterprise).await;

    // B's resources, addressed by their own ids with A's key: 404, as if absent.
    let b_key = p
        .json(
            Method::POST,
            "/api/v1/api-keys",
            &b.key,
            Some(json!({"name": "b2"})),
            201,
        )
        .await;
    let b_key_id = b_key["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/api-keys/{b_key_id}")),
        (Method::DELETE, format!("/api/v1/api-keys/{b_key_id}")),
        (Method::GET, format!("/api/v1/users/{}", b.owner)),
    ] {
        let r = p.call(method.clone(), &path, Some(&a.key), None).await;
        let body = error_body(r, 404).await;
        assert_eq!(body["code"], "NOT_FOUND", "{method} {path}");
    }
    // The key still works: A's revoke did nothing.
    p.json(
        Method::GET,
        "/api/v1/users/me",
        b_key["key"].as_str().unwrap(),
        None,
        200,
    )
    .await;

    // Under B's organization path: 403, on both prefixes, for every method.
    for prefix in ["/api/v1/organizations", "/api/organizations"] {
        for (method, path, body) in [
            (Method::GET, format!("{prefix}/{}", b.id), None),
            (
                Method::PATCH,
                format!("{prefix}/{}", b.id),
                Some(json!({"name": "x"})),
            ),
            (
                Method::PUT,
                format!("{prefix}/{}", b.id),
                Some(json!({"name": "x"})),
            ),
            (Method::GET, format!("{prefix}/{}/members", b.id), None),
            (
                Method::POST,
                format!("{prefix}/{}/members", b.id),
                Some(json!({"user_id": a.owner})),
            ),
            (
                Method::PATCH,
                format!("{prefix}/{}/members/{}", b.id, b.owner),
                Some(json!({"role": "viewer"})),
            ),
            (
                Method::DELETE,
                format!("{prefix}/{}/members/{}", b.id, b.owner),
                None,
            ),
        ] {
            let r = p.call(method.clone(), &path, Some(&a.key), body).await;
            let e = error_body(r, 403).await;
            assert_eq!(e["code"], "FORBIDDEN", "{method} {path}");
        }
        // A non-existent organization looks the same as someone else's.
        let r = p
            .call(
                Method::GET,
                &format!("{prefix}/0190a000-0000-7000-8000-000000000000"),
                Some(&a.key),
                None,
            )
            .await;
        error_body(r, 403).await;
        // A's own organization path works on both prefixes.
        p.json(
            Method::GET,
            &format!("{prefix}/{}", a.id),
            &a.key,
            None,
            200,
        )
        .await;
    }
    // A's lists never show B's things.
    let keys = p
        .json(Method::GET, "/api/v1/api-keys", &a.key, None, 200)
        .await;
    assert_eq!(keys["pagination"]["total"], 1);
    let audit = p
        .json(Method::GET, "/api/v1/audit?size=100", &a.key, None, 200)
        .await;
    for rec in audit["audit_logs"].as_array().unwrap() {
        assert_eq!(rec["organization_id"], a.id.as_str());
    }
    // Nothing of B changed.
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
    assert_eq!(members["members"][0]["role"], "owner");
}

#[tokio::test]
async fn viewers_cannot_mutate_and_members_cannot_manage_keys() {
    let p = Platform::start().await;
    let org = p.bootstrap("Roles", Plan::Enterprise).await;
    let (_viewer_id, viewer) = p.user(&org, "viewer@roles.example", "viewer").await;
    let (_member_id, member) = p.user(&org, "member@roles.example", "member").await;
    let origin = p.origin();

    // Reads are fine for a viewer.
    let r = p
        .session_call(
            Method::GET,
            &format!("/api/v1/organizations/{}", org.id),
            &viewer,
            None,
            false,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = p
        .session_call(
            Method::GET,
            &format!("/api/v1/organizations/{}/members", org.id),
            &viewer,
            None,
            false,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);

    // Every mutation is refused for a viewer, with a valid CSRF token and origin.
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/organizations/{}", org.id),
            json!({"name": "New"}),
        ),
        (
            Method::POST,
            format!("/api/v1/organizations/{}/members", org.id),
            json!({"email": "member@roles.example"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/organizations/{}/members/{}", org.id, org.owner),
            json!({"role": "viewer"}),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_string(),
            json!({"name": "v"}),
        ),
        (
            Method::POST,
            "/api/v1/users".to_string(),
            json!({"email": "x@roles.example", "name": "X"}),
        ),
    ] {
        let r = p
            .session_call(
                method.clone(),
                &path,
                &viewer,
                Some(body),
                true,
                Some(&origin),
            )
            .await;
        let e = error_body(r, 403).await;
        assert_eq!(e["code"], "FORBIDDEN", "viewer {method} {path}");
    }

    // A member cannot list, create or revoke keys.
    let r = p
        .session_call(Method::GET, "/api/v1/api-keys", &member, None, false, None)
        .await;
    error_body(r, 403).await;
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/api-keys",
            &member,
            Some(json!({"name": "m"})),
            true,
            Some(&origin),
        )
        .await;
    error_body(r, 403).await;
    let keys = p
        .json(Method::GET, "/api/v1/api-keys", &org.key, None, 200)
        .await;
    let owner_key_id = keys["api_keys"][0]["id"].as_str().unwrap().to_string();
    let r = p
        .session_call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{owner_key_id}"),
            &member,
            None,
            true,
            Some(&origin),
        )
        .await;
    error_body(r, 403).await;
    // And an admin can.
    let (_admin_id, admin) = p.user(&org, "admin@roles.example", "admin").await;
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "a", "scopes": ["read"]})),
            true,
            Some(&origin),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    // A read-only key cannot write, even for an admin.
    let ro = created["key"].as_str().unwrap();
    p.json(Method::GET, "/api/v1/audit", ro, None, 200).await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(ro),
            Some(json!({"name": "nope"})),
        )
        .await;
    error_body(r, 403).await;
    // Admins cannot take away the owner's role; the last owner cannot be demoted at all.
    let r = p
        .session_call(
            Method::PATCH,
            &format!("/api/v1/organizations/{}/members/{}", org.id, org.owner),
            &admin,
            Some(json!({"role": "viewer"})),
            true,
            Some(&origin),
        )
        .await;
    error_body(r, 403).await;
    let r = p
        .call(
            Method::PATCH,
            &format!("/api/v1/organizations/{}/members/{}", org.id, org.owner),
            Some(&org.key),
            Some(json!({"role": "admin"})),
        )
        .await;
    let e = error_body(r, 409).await;
    assert_eq!(e["code"], "CONFLICT");
}

#[tokio::test]
async fn cookie_mutations_need_origin_and_csrf_token() {
    let p = Platform::start().await;
    let org = p.bootstrap("Csrf", Plan::Enterprise).await;
    let (_id, admin) = p.user(&org, "admin@csrf.example", "admin").await;
    let origin = p.origin();
    let body = || Some(json!({"name": "k"}));
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            body(),
            false,
            Some(&origin),
        )
        .await;
    let e = error_body(r, 403).await;
    assert!(e["message"].as_str().unwrap().contains("CSRF"), "{e}");
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            body(),
            true,
            Some("https://evil.example"),
        )
        .await;
    let e = error_body(r, 403).await;
    assert!(e["message"].as_str().unwrap().contains("origin"), "{e}");
    let r = p
        .session_call(Method::POST, "/api/v1/api-keys", &admin, body(), true, None)
        .await;
    error_body(r, 403).await;
    let r = p
        .session_call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            body(),
            true,
            Some(&origin),
        )
        .await;
    assert_eq!(r.status(), 201);
    // Logout ends the session.
    let (cookie, _) = admin.split_once('|').unwrap();
    let r = p
        .app
        .client
        .post(p.app.url("/api/v1/auth/logout"))
        .header("cookie", cookie)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = p
        .session_call(Method::GET, "/api/v1/users/me", &admin, None, false, None)
        .await;
    error_body(r, 401).await;
    // Wrong password: 401, same message as an unknown email.
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "admin@csrf.example", "password": "wrong password!"})),
        )
        .await;
    let e1 = error_body(r, 401).await;
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "nobody@csrf.example", "password": "wrong password!"})),
        )
        .await;
    let e2 = error_body(r, 401).await;
    assert_eq!(e1["message"], e2["message"]);
}

#[tokio::test]
async fn key_lifecycle_secret_shown_once_revoked_refused_and_every_change_audited() {
    let p = Platform::start().await;
    let org = p.bootstrap("Keys", Plan::Enterprise).await;
    let before = p.store.count_audit(org.id.parse().unwrap()).await.unwrap();
    let mut mutations = 0u64;
    let mut secrets = vec![org.key.clone()];
    let mut bodies = Vec::new();

    let created = p
        .json(
            Method::POST,
            "/api/v1/api-keys",
            &org.key,
            Some(json!({"name": "ci", "scopes": ["*"]})),
            201,
        )
        .await;
    mutations += 1;
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("qrlp_"), "{created}");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    secrets.push(secret.clone());
    let id = created["id"].as_str().unwrap().to_string();

    // The new key works, by either header.
    p.json(Method::GET, "/api/v1/users/me", &secret, None, 200)
        .await;
    let r = p
        .app
        .client
        .get(p.app.url("/api/v1/users/me"))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    bodies.push(r.text().await.unwrap());

    // Other mutations, each audited.
    p.json(
        Method::PATCH,
        &format!("/api/v1/organizations/{}", org.id),
        &org.key,
        Some(json!({"name": "Keys Inc"})),
        200,
    )
    .await;
    mutations += 1;
    let token = p.invite(&org, "dev@keys.example", "member").await;
    let user = p.redeem(&token, "dev's own password").await;
    mutations += 3; // invitation.create, then user.create and member.add
    let uid = user["user"]["id"].as_str().unwrap();
    p.json(
        Method::PATCH,
        &format!("/api/v1/organizations/{}/members/{uid}", org.id),
        &org.key,
        Some(json!({"role": "viewer"})),
        200,
    )
    .await;
    mutations += 1;
    p.json(
        Method::DELETE,
        &format!("/api/v1/organizations/{}/members/{uid}", org.id),
        &org.key,
        None,
        204,
    )
    .await;
    mutations += 1;
    p.json(
        Method::POST,
        &format!("/api/v1/organizations/{}/members", org.id),
        &org.key,
        Some(json!({"email": "DEV@keys.example", "role": "member"})),
        202,
    )
    .await;
    mutations += 1; // invitation.create

    // Revoke; the key is refused (this process re-reads within key_cache_ttl_ms).
    let revoked = p
        .json(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            &org.key,
            None,
            200,
        )
        .await;
    mutations += 1;
    assert_eq!(revoked["status"], "revoked");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = p
            .call(Method::GET, "/api/v1/users/me", Some(&secret), None)
            .await;
        if r.status() == 401 {
            let e = error_body(r, 401).await;
            assert_eq!(e["code"], "UNAUTHORIZED");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked key still accepted after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Every mutating call left exactly one record (two for create-user), with the request id.
    let after = p.store.count_audit(org.id.parse().unwrap()).await.unwrap();
    assert_eq!(after - before, mutations);
    let audit = p
        .json(Method::GET, "/api/v1/audit?size=100", &org.key, None, 200)
        .await;
    let actions: Vec<&str> = audit["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "api_key.create",
        "api_key.revoke",
        "organization.update",
        "user.create",
        "member.add",
        "member.update",
        "member.remove",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let rec = &audit["audit_logs"][0];
    assert_eq!(rec["action"], "api_key.revoke");
    assert_eq!(rec["actor_type"], "api_key");
    assert_eq!(rec["ip"], "127.0.0.1");
    assert!(rec["request_id"].is_string());
    // Filters.
    let only = p
        .json(
            Method::GET,
            "/api/v1/audit?action=api_key.revoke",
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(only["pagination"]["total"], 1);
    let future = p
        .json(
            Method::GET,
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(future["pagination"]["total"], 0);
    let r = p
        .call(
            Method::GET,
            "/api/v1/audit?since=yesterday",
            Some(&org.key),
            None,
        )
        .await;
    let e = error_body(r, 400).await;
    assert_eq!(e["details"]["field"], "since");
    // The audit log has no write routes.
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = p
            .call(m, "/api/v1/audit", Some(&org.key), Some(json!({})))
            .await;
        error_body(r, 405).await;
    }

    // No response after creation shows a secret.
    for path in [
        "/api/v1/api-keys",
        &format!("/api/v1/api-keys/{id}"),
        "/api/v1/audit?size=100",
        "/api/v1/users/me",
    ] {
        bodies.push(
            p.call(Method::GET, path, Some(&org.key), None)
                .await
                .text()
                .await
                .unwrap(),
        );
    }
    for body in &bodies {
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "secret leaked in {body}");
        }
    }
}

#[tokio::test]
async fn validation_conflicts_and_missing_credentials() {
    let p = Platform::start().await;
    let org = p.bootstrap("Valid", Plan::Enterprise).await;
    let creator = p.key_with(&org, &["*", "organizations:create"]).await;
    let r = p.call(Method::GET, "/api/v1/users/me", None, None).await;
    let e = error_body(r, 401).await;
    assert_eq!(e["code"], "UNAUTHORIZED");
    let r = p
        .call(Method::GET, "/api/v1/users/me", Some("qrlp_notakey"), None)
        .await;
    error_body(r, 401).await;
    let r = p
        .call(
            Method::GET,
            "/api/v1/users/me",
            Some(&format!("qrlp_{}", "A".repeat(40))),
            None,
        )
        .await;
    error_body(r, 401).await;

    for (path, body, field) in [
        ("/api/v1/api-keys", json!({}), "name"),
        ("/api/v1/api-keys", json!({"name": 5}), "name"),
        (
            "/api/v1/api-keys",
            json!({"name": "x", "scopes": ["root"]}),
            "scopes",
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "x", "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            "/api/v1/users",
            json!({"email": "not-an-email", "name": "X"}),
            "email",
        ),
        (
            "/api/v1/users",
            json!({"email": "a@b.example", "name": "X", "role": "root"}),
            "role",
        ),
        ("/api/v1/organizations", json!({"name": ""}), "name"),
        (
            "/api/v1/organizations",
            json!({"name": "x", "plan": "gold"}),
            "plan",
        ),
    ] {
        let r = p
            .call(Method::POST, path, Some(&creator), Some(body.clone()))
            .await;
        let e = error_body(r, 400).await;
        assert_eq!(e["code"], "INVALID_INPUT", "{path} {body}");
        assert_eq!(e["details"]["field"], field, "{path} {body}: {e}");
        assert!(e["message"].as_str().unwrap().starts_with(field), "{e}");
    }
    let r = p
        .call(
            Method::GET,
            "/api/v1/api-keys?size=1000",
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(error_body(r, 400).await["details"]["field"], "size");

    // Duplicates: 409 CONFLICT.
    let r = p
        .call(
            Method::POST,
            "/api/v1/organizations",
            Some(&creator),
            Some(json!({"name": "VALID"})),
        )
        .await;
    let e = error_body(r, 409).await;
    assert_eq!(e["code"], "CONFLICT");
    assert_eq!(e["details"]["field"], "name");
    let created = p
        .json(
            Method::POST,
            "/api/v1/organizations",
            &creator,
            Some(json!({"name": "Second"})),
            201,
        )
        .await;
    assert_eq!(created["role"], "owner");
    assert_eq!(created["plan"], "free");
}

#[tokio::test]
async fn free_plan_gets_exactly_100_then_429_with_headers() {
    let p = Platform::start().await;
    let org = p.bootstrap("Free", Plan::Free).await;
    let other = p.bootstrap("Other", Plan::Free).await;
    for i in 0..100u32 {
        let r = p
            .call(Method::GET, "/api/v1/users/me", Some(&org.key), None)
            .await;
        assert_eq!(r.status(), 200, "request {i}");
        let h = r.headers();
        assert_eq!(h["x-ratelimit-limit"], "100");
        assert_eq!(h["x-ratelimit-remaining"], (99 - i).to_string().as_str());
        let reset = h["x-ratelimit-reset"].to_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(reset, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{reset}"
        );
        assert!(reset.ends_with('Z') && reset.len() == 20, "{reset}");
    }
    let r = p
        .call(Method::GET, "/api/v1/users/me", Some(&org.key), None)
        .await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=36).contains(&retry), "{retry}");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    let e = error_body(r, 429).await;
    assert_eq!(e["code"], "RATE_LIMITED");
    // Error answers also spend and report the budget; another organization is unaffected.
    let r = p
        .call(Method::GET, "/api/v1/users/me", Some(&other.key), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "99");
    let r = p
        .call(
            Method::GET,
            "/api/v1/api-keys/0190a000-0000-7000-8000-000000000000",
            Some(&other.key),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "98");
}

#[tokio::test]
async fn ready_with_its_database_and_refuses_to_start_without_it() {
    let p = Platform::start().await;
    let r = p.app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    // PostgreSQL that is not there: the server cannot start, and says why.
    let mut config = Config::default();
    config.server.host = "127.0.0.1".into();
    config.server.port = 0;
    config.storage.database_url = "postgres://nobody@127.0.0.1:1/none".into();
    let err = qrlp_server::Server::bind(config)
        .await
        .err()
        .expect("refuses to start");
    assert!(err.to_string().contains("database"), "{err}");
}

#[tokio::test]
async fn unauthenticated_routes_and_failed_credentials_spend_the_address_budget() {
    let mut config = Config::default();
    config.rate_limit.ip_per_hour = 3;
    let p = Platform::start_with(config).await;
    let login = json!({"email": "nobody@ip.example", "password": "wrong password!"});
    for i in 0..3 {
        let r = p
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(login.clone()),
            )
            .await;
        assert_eq!(r.headers()["x-ratelimit-limit"], "3", "attempt {i}");
        error_body(r, 401).await;
    }
    let r = p
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(login.clone()),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_body(r, 429).await["code"], "RATE_LIMITED");
    // Guessing keys spends the same budget.
    let r = p
        .call(Method::GET, "/api/v1/users/me", Some("qrlp_guess"), None)
        .await;
    error_body(r, 429).await;
    // The public QR API is not limited per address unless configured.
    for _ in 0..5 {
        assert_eq!(p.app.get("/v1/qr?url=a.example").await.status(), 200);
    }
}

/// Redis configured but unreachable: `closed` refuses budgeted requests with 503
/// `UNAVAILABLE` (request id, JSON envelope) and no lingering; `open` lets them through.
#[tokio::test]
async fn an_unreachable_rate_limiter_fails_closed_or_open_as_configured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (mode, expected) in [
        (qrlp_config::FailMode::Closed, 503),
        (qrlp_config::FailMode::Open, 200),
    ] {
        let mut config = Config::default();
        config.redis.url = format!("redis://127.0.0.1:{port}");
        config.rate_limit.redis_fail_mode = mode;
        let p = Platform::start_with(config).await;
        let org = p.bootstrap("Limited", Plan::Free).await;
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let r = p
                .call(Method::GET, "/api/v1/users/me", Some(&org.key), None)
                .await;
            assert!(started.elapsed() < std::time::Duration::from_secs(3));
            if expected == 503 {
                let e = error_body(r, 503).await;
                assert_eq!(e["code"], "UNAVAILABLE", "{e}");
            } else {
                assert_eq!(r.status(), 200, "{mode:?}");
            }
        }
        // Routes outside the budget are untouched by the limiter's state.
        assert_eq!(
            p.call(Method::GET, "/healthz", None, None).await.status(),
            200
        );
    }
}
