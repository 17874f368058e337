//! The platform core as an operator runs it, with real `qrlp` processes: bootstrap with the
//! server stopped and running, revocation seen by another process, plan budgets shared
//! through a real Redis, kill -9 during a burst of creates, and no secret in any log line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn qrlp(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qrlp"));
    for var in [
        "PORT",
        "REDIS_URL",
        "QRLP_CONFIG",
        "RUST_LOG",
        "DATABASE_URL",
        "QRLP_STORAGE_DATABASE_URL",
        "QRLP_REDIS_URL",
    ] {
        c.env_remove(var);
    }
    c.env("QRLP_DATA_DIR", data_dir);
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "qrlp-platform-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bootstrap(data_dir: &Path, org: &str, plan: &str) -> Output {
    qrlp(data_dir)
        .args([
            "admin",
            "bootstrap",
            "--org",
            org,
            "--email",
            "ops@example.com",
            "--plan",
            plan,
        ])
        .output()
        .unwrap()
}

fn bootstrap_key(data_dir: &Path, org: &str, plan: &str) -> String {
    let out = bootstrap(data_dir, org, plan);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("qrlp_") && key.len() == 45, "{key}");
    key
}

/// A running `qrlp serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = data_dir.join(format!("serve-{port}.log"));
        let mut cmd = qrlp(data_dir);
        cmd.args([
            "serve",
            "--port",
            &port.to_string(),
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut s = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while request(s.port, "GET", "/readyz", None, None).map(|r| r.0) != Some(200) {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("server exited {status}: {}", s.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "server not ready: {}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String, String) {
        request(self.port, method, path, key, body).expect("server answers")
    }

    fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request: (status, head, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("X-API-Key: {k}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    // The body may be chunked; the JSON answers here are small and sent whole.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines().nth(1).unwrap_or("").to_string()
    } else {
        body.to_string()
    };
    Some((status, head.to_string(), body))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn bootstrap_works_with_the_server_stopped_and_running_and_refuses_a_taken_name() {
    let dir = temp_dir("boot");
    let key = bootstrap_key(&dir, "Acme", "starter");
    let server = Server::start(&dir, &[]);
    let (status, _, body) = server.call("GET", "/api/v1/users/me", Some(&key), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["organization"]["plan"], "starter");
    // While it runs.
    let key2 = bootstrap_key(&dir, "Bravo", "free");
    let (status, _, body) = server.call("GET", "/api/v1/users/me", Some(&key2), None);
    assert_eq!(status, 200, "{body}");
    // A taken name, in another case: refused, nothing changed.
    let out = bootstrap(&dir, "ACME", "free");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no key printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("nothing was changed"),
        "{err}"
    );
    let (_, _, body) = server.call("GET", "/api/v1/audit?size=100", Some(&key), None);
    assert_eq!(json(&body)["pagination"]["total"], 4, "{body}"); // org, user, member, key
                                                                 // `qrlp migrate` on an up-to-date database is a no-op that says so.
    let out = qrlp(&dir).arg("migrate").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_revoked_key_stops_working_on_another_process_within_5_s_and_secrets_stay_out_of_logs() {
    let dir = temp_dir("revoke");
    let owner = bootstrap_key(&dir, "Revoke", "enterprise");
    let a = Server::start(&dir, &[]);
    let b = Server::start(&dir, &[]);
    let (status, _, body) = a.call(
        "POST",
        "/api/v1/api-keys",
        Some(&owner),
        Some(r#"{"name":"worker"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let created = json(&body);
    let secret = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    // B knows the key (and caches it).
    for _ in 0..3 {
        assert_eq!(
            b.call("GET", "/api/v1/users/me", Some(&secret), None).0,
            200
        );
    }
    // Revoked through A; B refuses it within 5 s.
    let (status, _, _) = a.call(
        "DELETE",
        &format!("/api/v1/api-keys/{id}"),
        Some(&owner),
        None,
    );
    assert_eq!(status, 200);
    let revoked_at = Instant::now();
    loop {
        let (status, _, _) = b.call("GET", "/api/v1/users/me", Some(&secret), None);
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "still accepted after 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = revoked_at.elapsed();
    eprintln!("revocation seen by the other process after {waited:?}");
    // No log line of either process holds either secret (debug level, JSON logs).
    for server in [&a, &b] {
        let log = server.log_text();
        assert!(log.lines().count() > 5, "{log}");
        assert!(!log.contains(&secret), "secret in log");
        assert!(!log.contains(&owner), "bootstrap secret in log");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_create_that_answered_2xx_survives_kill_9() {
    let dir = temp_dir("durable");
    let key = bootstrap_key(&dir, "Durable", "enterprise");
    let mut server = Server::start(&dir, &[]);
    let port = server.port;
    // A burst of creates from 4 threads; the server is killed in the middle of it.
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4 {
        let (accepted, stop, key) = (accepted.clone(), stop.clone(), key.clone());
        threads.push(std::thread::spawn(move || {
            for i in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = format!(r#"{{"name":"k-{t}-{i}"}}"#);
                match request(port, "POST", "/api/v1/api-keys", Some(&key), Some(&body)) {
                    Some((201, _, b)) => {
                        let id = json(&b)["id"].as_str().unwrap().to_string();
                        accepted.lock().unwrap().push(id);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 40,
        "only {} creates before the kill",
        accepted.len()
    );

    // After a restart every accepted key is there, and the database is intact.
    let server = Server::start(&dir, &[]);
    let mut present = std::collections::HashSet::new();
    for page in 1.. {
        let (status, _, body) = server.call(
            "GET",
            &format!("/api/v1/api-keys?size=100&page={page}"),
            Some(&key),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        let items = v["api_keys"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        present.extend(items.iter().map(|k| k["id"].as_str().unwrap().to_string()));
    }
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|id| !present.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted creates lost: {missing:?}",
        missing.len()
    );
    drop(server);
    let out = Command::new("sqlite3")
        .arg(dir.join("qrlp.db"))
        .arg("PRAGMA integrity_check;")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
        }
        _ => {
            // Without the sqlite3 tool: the store's own check (PRAGMA integrity_check and
            // foreign_key_check).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let store = qrlp_store::Store::open(&qrlp_store::StoreConfig {
                    database_url: None,
                    data_dir: dir.clone(),
                    max_connections: 1,
                })
                .await
                .unwrap();
                store
                    .integrity_check()
                    .await
                    .expect("integrity check passes");
            });
        }
    }
    eprintln!(
        "{} creates answered 201 before kill -9; all {} present after restart",
        accepted.len(),
        accepted.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_processes_sharing_redis_accept_exactly_the_plan_budget() {
    let Ok(redis) = std::env::var("QRLP_TEST_REDIS_URL") else {
        eprintln!(
            "SKIPPED: QRLP_TEST_REDIS_URL not set; the shared-budget test needs a real Redis"
        );
        return;
    };
    let dir = temp_dir("redis");
    let key = bootstrap_key(&dir, "Shared", "free");
    let a = Server::start(&dir, &[("REDIS_URL", &redis)]);
    let b = Server::start(&dir, &[("REDIS_URL", &redis)]);
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..150 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, head, body) = server.call("GET", "/api/v1/users/me", Some(&key), None);
        let head = head.to_ascii_lowercase();
        assert!(head.contains("x-ratelimit-limit: 100"), "{head}");
        match status {
            200 => accepted += 1,
            429 => {
                refused += 1;
                assert!(head.contains("retry-after:"), "{head}");
                assert_eq!(json(&body)["code"], "RATE_LIMITED");
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!((accepted, refused), (100, 50));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 3: plans came from request bodies. Now only an operator changes them.
#[test]
fn an_operator_changes_plans_with_admin_set_plan() {
    let dir = temp_dir("plan");
    let key = bootstrap_key(&dir, "Upgrade", "free");
    let out = qrlp(&dir)
        .args(["admin", "set-plan", "UPGRADE", "professional"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("free -> professional"));
    let out = qrlp(&dir)
        .args(["admin", "set-plan", "No Such Org", "enterprise"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let server = Server::start(&dir, &[]);
    let (status, _, body) = server.call("GET", "/api/v1/users/me", Some(&key), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["organization"]["plan"], "professional");
    let (_, _, body) = server.call(
        "GET",
        "/api/v1/audit?action=organization.update",
        Some(&key),
        None,
    );
    let audit = json(&body);
    assert_eq!(audit["pagination"]["total"], 1, "{body}");
    assert_eq!(audit["audit_logs"][0]["actor_type"], "system", "{body}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
