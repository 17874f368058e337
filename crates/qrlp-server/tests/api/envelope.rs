//! What every route shares: the error envelope (400, 404, 405, 413, 415, 500 and panics),
//! request ids, health, metrics and CORS.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use qrlp_config::Config;
use qrlp_server::{ApiError, AppState};

use crate::common::{assert_error, connect, error_body, raw_exchange, TestApp};

#[tokio::test]
async fn malformed_json_bodies() {
    let app = TestApp::start().await;
    for body in [
        "{\"url\": ",
        "",
        "not json",
        "[1, 2]",
        "\"https://example.com\"",
        "{\"url\": \"a.com\",}",
        "null",
    ] {
        let r = app.post_json("/v1/qr", body).await;
        assert_error(r, 400, "INVALID_INPUT", "Invalid JSON body").await;
    }
}

#[tokio::test]
async fn one_mebibyte_body_is_413() {
    let app = TestApp::start().await;
    let body = format!(
        "{{\"url\": \"https://example.com\", \"pad\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    let r = app.post_json("/v1/qr", &body).await;
    let e = error_body(r, 413).await;
    assert_eq!(e["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(e["message"], "Request body is too large (max 65536 bytes)");
    assert_eq!(e["details"]["limit_bytes"], 65536);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 2048;
    let app = TestApp::start_with(config, Router::new()).await;
    let chunk = "x".repeat(1000);
    let mut request = String::from(
        "POST /v1/qr HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let mut conn = connect(&app).await;
    let r = raw_exchange(&mut conn, request.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(
        r.json()["message"],
        "Request body is too large (max 2048 bytes)"
    );
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = TestApp::start().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = app
            .client
            .post(app.url("/v1/qr"))
            .body(r#"{"url": "https://example.com"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_error(
            r,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        )
        .await;
    }
    let r = app
        .client
        .post(app.url("/v1/qr"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"url": "https://example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let app = TestApp::start().await;
    for path in ["/nope", "/v1/qr/extra", "/v2/qr", "/"] {
        assert_error(app.get(path).await, 404, "NOT_FOUND", "Not found").await;
    }
    let r = app.post_json("/nope", "{}").await;
    assert_error(r, 404, "NOT_FOUND", "Not found").await;
}

#[tokio::test]
async fn wrong_method_is_405_json() {
    let app = TestApp::start().await;
    let r = app.client.delete(app.url("/v1/qr")).send().await.unwrap();
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_error(r, 405, "METHOD_NOT_ALLOWED", "Method not allowed").await;
    let r = app.post_json("/healthz", "{}").await;
    assert_error(r, 405, "METHOD_NOT_ALLOWED", "Method not allowed").await;
    let r = app
        .client
        .put(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "METHOD_NOT_ALLOWED", "Method not allowed").await;
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && b[8] == b'-'
        && b[13] == b'-'
        && b[14] == b'4'
        && b[18] == b'-'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && b[23] == b'-'
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::start().await;
    // Kept: visible ASCII, up to 128 characters.
    let max = "r".repeat(128);
    for id in [
        "abc-123",
        "550e8400-e29b-41d4-a716-446655440000",
        "a!#$%&'*+.^_`|~:/\"z",
        max.as_str(),
    ] {
        let r = app
            .client
            .post(app.url("/v1/qr"))
            .header("content-type", "application/json")
            .header("x-request-id", id)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], id);
        let body = error_body(r, 400).await;
        assert_eq!(body["request_id"], id);
        // And on success.
        let r = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], id);
    }
    // Replaced by a UUID v4: too long, spaces, tabs, non-ASCII, empty, absent.
    let too_long = "r".repeat(129);
    let mut conn = connect(&app).await;
    for header in [
        format!("X-Request-ID: {too_long}\r\n"),
        "X-Request-ID: has space\r\n".to_string(),
        "X-Request-ID: tab\there\r\n".to_string(),
        "X-Request-ID: caf\u{e9}\r\n".to_string(),
        "X-Request-ID: \r\n".to_string(),
        String::new(),
    ] {
        let request = format!("GET /nope HTTP/1.1\r\nHost: t\r\n{header}\r\n");
        let r = raw_exchange(&mut conn, request.as_bytes()).await;
        assert_eq!(r.status, 404, "{header:?}");
        let id = r.header("x-request-id").unwrap().to_string();
        assert!(is_uuid_v4(&id), "{header:?} gave {id}");
        assert_eq!(r.json()["request_id"], id.as_str());
    }
    // Two requests without an id get different ids.
    let a = app.get("/healthz").await.headers()["x-request-id"].clone();
    let b = app.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

async fn panics() -> &'static str {
    panic!("test panic with secret detail")
}

fn test_routes() -> Router<AppState> {
    Router::new()
        .route("/test/panic", get(panics))
        .route(
            "/test/internal",
            get(|| async {
                Err::<(), _>(ApiError::internal(
                    "connection to db:5432 failed: password hunter2 rejected",
                ))
            }),
        )
        .route(
            "/test/bare-413",
            get(|| async {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [("x-extra", "kept")],
                    "plain text",
                )
            }),
        )
        .route(
            "/test/bare-503",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
}

#[tokio::test]
async fn panic_becomes_500_and_keeps_the_connection() {
    let app = TestApp::start_with(Config::default(), test_routes()).await;
    let mut conn = connect(&app).await;
    let r = raw_exchange(
        &mut conn,
        b"GET /test/panic HTTP/1.1\r\nHost: t\r\nX-Request-ID: boom-1\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-request-id"), Some("boom-1"));
    let body = r.json();
    assert_eq!(body["code"], "INTERNAL");
    assert_eq!(body["message"], "Internal server error");
    assert_eq!(body["request_id"], "boom-1");
    assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
    // Same connection, next request.
    let r = raw_exchange(&mut conn, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    // The server keeps serving other connections.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn bare_error_responses_get_the_envelope() {
    let app = TestApp::start_with(Config::default(), test_routes()).await;
    let r = app.get("/test/bare-413").await;
    assert_eq!(r.headers()["x-extra"], "kept");
    assert_error(r, 413, "PAYLOAD_TOO_LARGE", "Request body is too large").await;
    let r = app.get("/test/bare-503").await;
    assert_error(r, 503, "UNAVAILABLE", "Service unavailable").await;
}

#[tokio::test]
async fn internal_errors_do_not_leak_their_cause() {
    let app = TestApp::start_with(Config::default(), test_routes()).await;
    let r = app.get("/test/internal").await;
    let body = error_body(r, 500).await;
    assert_eq!(body["code"], "INTERNAL");
    assert_eq!(body["message"], "Internal server error");
    assert!(!body.to_string().contains("hunter2"));
}

#[tokio::test]
async fn healthz_and_readyz_without_redis() {
    let app = TestApp::start().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

#[tokio::test]
async fn metrics_use_route_templates() {
    let mut config = Config::default();
    config.metrics.token = METRICS_TOKEN.into();
    let app = TestApp::start_with(config, Router::new()).await;
    app.get("/healthz").await;
    app.get("/private-path-9f8e7d").await;
    app.post_json("/v1/qr", "{}").await;
    // Finding 9: metrics were public. With a token, only its bearer reads them.
    assert_error(
        app.get("/metrics").await,
        401,
        "UNAUTHORIZED",
        "Metrics need Authorization: Bearer <metrics.token>",
    )
    .await;
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    for expected in [
        "qrlp_build_info{version=\"",
        "qrlp_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "qrlp_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "qrlp_http_requests_total{route=\"/v1/qr\",method=\"POST\",status=\"400\"} 1",
        "qrlp_http_request_duration_seconds_bucket{route=\"/v1/qr\",method=\"POST\",le=\"+Inf\"} 1",
        "qrlp_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"} 1",
        "# TYPE qrlp_http_request_duration_seconds histogram",
        "qrlp_http_requests_in_flight 1",
        "qrlp_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 1",
        "qrlp_qr_generated_total{format=\"png\"} 0",
        "# TYPE qrlp_log_lines_dropped_total counter",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("private-path"),
        "raw paths must not become labels"
    );

    let mut config = Config::default();
    config.metrics.enabled = false;
    config.metrics.token = METRICS_TOKEN.into();
    let app = TestApp::start_with(config, Router::new()).await;
    assert_error(app.get("/metrics").await, 404, "NOT_FOUND", "Not found").await;
}

const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// Finding 9: `/metrics` was public by default. Now it is off the public listener unless a
/// token is set, and `metrics.listen` serves it on an address of its own.
#[tokio::test]
async fn metrics_are_off_the_public_listener_by_default() {
    let app = TestApp::start().await;
    assert_error(app.get("/metrics").await, 404, "NOT_FOUND", "Not found").await;
    let mut config = Config::default();
    config.metrics.listen = "127.0.0.1:0".into();
    let app = TestApp::start_with(config, Router::new()).await;
    assert_error(app.get("/metrics").await, 404, "NOT_FOUND", "Not found").await;
    let addr = app.metrics_addr.expect("metrics listener");
    let text = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("qrlp_build_info"), "{text}");
}

#[tokio::test]
async fn cors_is_off_by_default_and_configurable() {
    let app = TestApp::start().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let mut config = Config::default();
    config.cors.enabled = true;
    config.cors.allowed_origins = vec!["https://app.example.com".into()];
    let app = TestApp::start_with(config, Router::new()).await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/qr"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}
