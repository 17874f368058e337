//! `qrlp serve` and `qrlp config-init` as a user runs them: exit codes, signals, logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn qrlp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qrlp"));
    // The tests set what they need; nothing leaks in from the caller's environment.
    for var in [
        "PORT",
        "REDIS_URL",
        "QRLP_CONFIG",
        "RUST_LOG",
        "DATABASE_URL",
        "QRLP_STORAGE_DATABASE_URL",
    ] {
        c.env_remove(var);
    }
    // The database of these runs lives in a directory of this test process.
    c.env("QRLP_DATA_DIR", data_dir());
    c
}

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("qrlp-cli-test-{}", std::process::id()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request; returns the whole response as text.
fn http(port: u16, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn start(port: u16, extra: &[&str]) -> (Child, Duration) {
    let t = Instant::now();
    let mut child = qrlp()
        .args(["serve", "--port", &port.to_string(), "--log-format", "json"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    panic!("qrlp serve did not start listening on {port}:\n{log}");
}

/// Whether `/healthz` answers on `port` within about two seconds.
fn answers_health(port: u16) -> bool {
    (0..200).any(|_| {
        let ok = http(
            port,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(10));
        }
        ok
    })
}

fn stop(mut child: Child, signal: &str) -> (i32, Vec<String>) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().expect("exited, not killed");
        }
        assert!(Instant::now() < deadline, "no exit after {signal}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    (code, lines)
}

#[test]
fn serve_starts_fast_logs_json_and_exits_0_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let port = free_port();
        let (child, startup) = start(port, &[]);
        assert!(startup < Duration::from_secs(1), "startup took {startup:?}");
        let response = http(
            port,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-ID: cli-test-1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("{\"status\":\"ok\"}"), "{response}");
        let (code, lines) = stop(child, signal);
        assert_eq!(code, 0, "{signal}: {lines:#?}");
        // JSON lines; exactly one for the request, with its id, route, status and latency.
        for l in &lines {
            assert!(l.starts_with('{') && l.ends_with('}'), "not JSON: {l}");
        }
        let request_lines: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("\"request_id\":\"cli-test-1\""))
            .collect();
        assert_eq!(request_lines.len(), 1, "{lines:#?}");
        let l = request_lines[0];
        for field in [
            "\"route\":\"/healthz\"",
            "\"status\":200",
            "\"latency_ms\":",
            "\"method\":\"GET\"",
        ] {
            assert!(l.contains(field), "{field} missing in {l}");
        }
        assert!(
            lines.iter().any(|l| l.contains("shutting down")),
            "{lines:#?}"
        );
    }
}

#[test]
fn port_comes_from_port_env_and_flags_win() {
    let env_port = free_port();
    let child = qrlp()
        .args(["serve", "--log-level", "warn"])
        .env("PORT", env_port.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    assert!(answers_health(env_port), "not listening on $PORT");
    child.kill_now();

    let flag_port = free_port();
    let child = qrlp()
        .args([
            "serve",
            "--log-level",
            "warn",
            "--port",
            &flag_port.to_string(),
        ])
        .env("PORT", "1")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    assert!(answers_health(flag_port), "--port did not win over $PORT");
    child.kill_now();
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Guard(Child);

impl Guard {
    fn kill_now(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

#[test]
fn invalid_configuration_lists_every_problem_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("qrlp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "server:\n  body_limit_bytes: 5\nqr:\n  default_border: 0\n  colour: red\n",
    )
    .unwrap();
    let out = qrlp()
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--host", "not a host"])
        .env("PORT", "eighty")
        .env("QR_DEFAULT_BOX_SIZE", "50")
        .env("QRLP_LOG_FORMAT", "xml")
        .env("REDIS_URL", "http://:hunter2@cache")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    for key in [
        "server.body_limit_bytes",
        "qr.default_border",
        "qr.colour: unknown key",
        "server.host",
        "server.port",
        "qr.default_box_size",
        "log.format",
        "redis.url",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    assert!(err.contains("invalid configuration (8 problems)"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn config_init_writes_the_full_default_file() {
    let out = qrlp().arg("config-init").output().unwrap();
    assert!(out.status.success());
    let plain = String::from_utf8(out.stdout).unwrap();
    assert!(
        plain.starts_with("[server]\nhost = \"127.0.0.1\"\nport = 8000\n"),
        "{plain}"
    );
    for section in ["[log]", "[cors]", "[redis]", "[qr]", "[metrics]"] {
        assert!(plain.contains(section), "{section}");
    }

    let dir = std::env::temp_dir().join(format!("qrlp-cli-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("qrlp.toml");
    let _ = std::fs::remove_file(&path);
    let out = qrlp()
        .args(["config-init", "--with-comments", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let commented = std::fs::read_to_string(&path).unwrap();
    assert!(
        commented.contains("# Environment: QRLP_SERVER_PORT, PORT\nport = 8000"),
        "{commented}"
    );
    // Not replaced without --force.
    let out = qrlp()
        .args(["config-init", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = qrlp()
        .args(["config-init", "--force", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    // `serve` reads the written file: with one bad value added, exactly that is reported.
    let out = qrlp()
        .args(["serve", "--config"])
        .arg(&path)
        .env("QRLP_SERVER_BODY_LIMIT_BYTES", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid configuration (1 problem):"), "{err}");
}
