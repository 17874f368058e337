//! Shutdown and readiness: graceful shutdown with a request in flight, the shutdown
//! timeout, and `/readyz` with Redis unreachable (and reachable when
//! `QRLP_TEST_REDIS_URL` names one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use qrlp_config::Config;
use qrlp_server::AppState;
use tokio::sync::oneshot;

use crate::common::TestApp;

/// A route that reports when it starts, then takes `delay` to answer.
fn slow_route(delay: Duration) -> (Router<AppState>, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let started = Arc::new(Mutex::new(Some(tx)));
    let router = Router::new().route(
        "/test/slow",
        get(move || {
            let started = started.clone();
            async move {
                if let Some(tx) = started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                tokio::time::sleep(delay).await;
                "done"
            }
        }),
    );
    (router, rx)
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let (routes, started) = slow_route(Duration::from_millis(800));
    let mut app = TestApp::start_with(Config::default(), routes).await;
    let addr = app.addr;
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move {
        client
            .get(format!("http://{addr}/test/slow"))
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
    });
    started.await.expect("the slow request reached its handler");
    let signalled_at = Instant::now();
    app.signal_shutdown();

    // New connections are refused soon after the signal.
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the listener still accepts after the shutdown signal"
    );

    let (status, response) = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(status, 200);
    assert_eq!(response.text().await.unwrap(), "done");
    app.stop().await.expect("clean stop");
    assert!(signalled_at.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_timeout_bounds_the_wait() {
    let (routes, started) = slow_route(Duration::from_secs(30));
    let mut config = Config::default();
    config.server.shutdown_timeout_secs = 1;
    let app = TestApp::start_with(config, routes).await;
    let url = app.url("/test/slow");
    let client = app.client.clone();
    let stuck = tokio::spawn(async move { client.get(url).send().await });
    started.await.unwrap();
    let t = Instant::now();
    app.stop().await.expect("stops after the timeout");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    stuck.abort();
}

/// A loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn readyz_is_503_when_redis_is_unreachable() {
    let mut config = Config::default();
    config.redis.url = format!("redis://:hunter2@127.0.0.1:{}", dead_port());
    config.redis.timeout_ms = 500;
    let app = TestApp::start_with(config, Router::new()).await;
    let t = Instant::now();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "degraded", "reason": "redis-unavailable"})
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    // Liveness does not depend on Redis.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readyz_is_200_with_a_reachable_redis() {
    let Ok(url) = std::env::var("QRLP_TEST_REDIS_URL") else {
        eprintln!(
            "skipped readyz_is_200_with_a_reachable_redis: set QRLP_TEST_REDIS_URL \
             (e.g. redis://127.0.0.1:6379) to run it against a real Redis"
        );
        return;
    };
    let mut config = Config::default();
    config.redis.url = url;
    let app = TestApp::start_with(config, Router::new()).await;
    for _ in 0..3 {
        // The connection is kept between probes.
        let r = app.get("/readyz").await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"status": "ready"})
        );
    }
}
