//! A small Prometheus registry and its text exposition (format 0.0.4).
//!
//! Hand-written on purpose: a few counters and one histogram do not need a metrics
//! framework. Requests are labelled by route *template* (`/v1/qr`, never the raw path),
//! so the number of series stays bounded whatever clients send.
//!
//! Series:
//! - `qrlp_build_info{version}` gauge, always 1;
//! - `qrlp_http_requests_total{route,method,status}` counter;
//! - `qrlp_http_request_duration_seconds{route,method}` histogram;
//! - `qrlp_http_requests_in_flight` gauge;
//! - `qrlp_qr_generated_total{format}` counter;
//! - `qrlp_log_lines_dropped_total` counter: log lines dropped because the log queue was
//!   full (see [`crate::logging`]);
//! - `qrlp_connections_refused_total` counter: connections closed at once because
//!   `server.max_connections` were open;
//! - `process_resident_memory_bytes` and `process_start_time_seconds` gauges;
//! - the scan recorder's series (`qrlp_scans_*`, `qrlp_scan_*`: scans accepted, stored,
//!   dropped; batch writes and their time; redirects held back while the writer catches up;
//!   see [`crate::tracking::recorder::Recorder::write_metrics`]);
//! - live channels' series (see [`crate::live`]).
//!
//! Where it is served: on the public listener only with `metrics.token` (a bearer token),
//! and without a token on `metrics.listen`; with neither, nowhere.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use qrlp_config::ImageFormat;

use crate::state::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// All metrics of one server.
pub struct Metrics {
    /// Route template → its series. One lock: held for a few additions per request.
    routes: Mutex<HashMap<String, RouteSeries>>,
    in_flight: AtomicI64,
    qr_png: AtomicU64,
    qr_svg: AtomicU64,
    refused_connections: AtomicU64,
    start_time: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: Mutex::new(HashMap::new()),
            in_flight: AtomicI64::new(0),
            qr_png: AtomicU64::new(0),
            qr_svg: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            start_time: SystemTime::now(),
        }
    }
}

#[derive(Default)]
struct RouteSeries {
    methods: Vec<MethodSeries>,
}

#[derive(Clone)]
struct MethodSeries {
    method: Method,
    /// (status, count), few entries.
    statuses: Vec<(u16, u64)>,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

impl MethodSeries {
    fn new(method: Method) -> MethodSeries {
        MethodSeries {
            method,
            statuses: Vec::new(),
            buckets: [0; BUCKETS.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

/// Only the standard methods become labels; anything else is `OTHER`.
fn method_label(method: &Method) -> Method {
    match *method {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::HEAD
        | Method::OPTIONS => method.clone(),
        _ => Method::from_bytes(b"OTHER").expect("valid token"),
    }
}

impl Metrics {
    /// Counts one connection closed at once because the server was full.
    pub fn count_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one finished request.
    pub fn observe_request(
        &self,
        route: &str,
        method: &Method,
        status: StatusCode,
        latency: Duration,
    ) {
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        let method = method_label(method);
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let series = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_string()).or_default(),
        };
        let m = match series.methods.iter().position(|m| m.method == method) {
            Some(i) => &mut series.methods[i],
            None => {
                series.methods.push(MethodSeries::new(method));
                series.methods.last_mut().expect("just pushed")
            }
        };
        match m.statuses.iter_mut().find(|(s, _)| *s == status.as_u16()) {
            Some((_, n)) => *n += 1,
            None => m.statuses.push((status.as_u16(), 1)),
        }
        m.buckets[bucket] += 1;
        m.sum_seconds += seconds;
        m.count += 1;
    }

    /// A request started; the guard counts it as finished when dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts one generated QR image.
    pub fn observe_qr(&self, format: ImageFormat) {
        match format {
            ImageFormat::Png => &self.qr_png,
            ImageFormat::Svg => &self.qr_svg,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP qrlp_build_info Build information; the value is always 1.\n");
        out.push_str("# TYPE qrlp_build_info gauge\n");
        let _ = writeln!(
            out,
            "qrlp_build_info{{version=\"{}\",profile=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );

        // Copy out, so that the lock is not held while formatting.
        let mut routes: Vec<(String, Vec<MethodSeries>)> = {
            let guard = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            guard
                .iter()
                .map(|(route, s)| (route.clone(), s.methods.clone()))
                .collect()
        };
        routes.sort_by(|a, b| a.0.cmp(&b.0));

        out.push_str(
            "# HELP qrlp_http_requests_total HTTP requests by route template, method and status.\n",
        );
        out.push_str("# TYPE qrlp_http_requests_total counter\n");
        for (route, methods) in &routes {
            for m in methods {
                let mut statuses = m.statuses.clone();
                statuses.sort_unstable();
                for (status, n) in statuses {
                    let _ = writeln!(
                        out,
                        "qrlp_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                        escape(route),
                        m.method
                    );
                }
            }
        }

        out.push_str("# HELP qrlp_http_request_duration_seconds Time to produce the response, by route template and method.\n");
        out.push_str("# TYPE qrlp_http_request_duration_seconds histogram\n");
        for (route, methods) in &routes {
            let route = escape(route);
            for m in methods {
                let (method, sum, count) = (&m.method, m.sum_seconds, m.count);
                let mut cumulative = 0;
                for (i, n) in m.buckets.iter().enumerate() {
                    cumulative += n;
                    let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                    let _ = writeln!(
                        out,
                        "qrlp_http_request_duration_seconds_bucket{{route=\"{route}\",method=\"{method}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "qrlp_http_request_duration_seconds_sum{{route=\"{route}\",method=\"{method}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "qrlp_http_request_duration_seconds_count{{route=\"{route}\",method=\"{method}\"}} {count}"
                );
            }
        }

        out.push_str("# HELP qrlp_http_requests_in_flight Requests being handled now.\n");
        out.push_str("# TYPE qrlp_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "qrlp_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );

        out.push_str("# HELP qrlp_qr_generated_total QR images generated, by format.\n");
        out.push_str("# TYPE qrlp_qr_generated_total counter\n");
        let _ = writeln!(
            out,
            "qrlp_qr_generated_total{{format=\"png\"}} {}",
            self.qr_png.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "qrlp_qr_generated_total{{format=\"svg\"}} {}",
            self.qr_svg.load(Ordering::Relaxed)
        );

        out.push_str("# HELP qrlp_log_lines_dropped_total Log lines dropped because the log writer's queue was full.\n");
        out.push_str("# TYPE qrlp_log_lines_dropped_total counter\n");
        let _ = writeln!(
            out,
            "qrlp_log_lines_dropped_total {}",
            crate::logging::dropped_lines()
        );

        out.push_str("# HELP qrlp_connections_refused_total Connections closed at once because server.max_connections were open.\n");
        out.push_str("# TYPE qrlp_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "qrlp_connections_refused_total {}",
            self.refused_connections.load(Ordering::Relaxed)
        );

        if let Some(rss) = resident_memory_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        let start = self
            .start_time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        out.push_str("# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.\n");
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(out, "process_start_time_seconds {start:.3}");
        out
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size is 4 KiB on every Linux target this runs on.
    Some(pages * 4096)
}

/// The server's metrics in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "No or wrong bearer token (metrics.token)", body = crate::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // On the public listener the route exists only with a token; the separate listener
    // (`metrics_app`) serves without one.
    let token = &state.config().metrics.token;
    if !token.is_empty() && !bearer_matches(&headers, token) {
        return crate::ApiError::unauthorized("Metrics need Authorization: Bearer <metrics.token>")
            .into_response();
    }
    metrics_text(State(state)).await
}

/// The exposition, without any check: the handler of the separate metrics listener.
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics().render();
    state.live().write_metrics(&mut text);
    state.tracking().recorder().write_metrics(&mut text);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Whether `Authorization: Bearer <token>` carries `token` (compared in constant time).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = crate::auth::api_key_of(headers) else {
        return false;
    };
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family() {
        let m = Metrics::default();
        m.observe_request(
            "/v1/qr",
            &Method::POST,
            StatusCode::OK,
            Duration::from_micros(300),
        );
        m.observe_request(
            "/v1/qr",
            &Method::POST,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        m.observe_request(
            "/v1/qr",
            &Method::POST,
            StatusCode::BAD_REQUEST,
            Duration::from_secs(20),
        );
        m.observe_request(
            "a\"b",
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        m.observe_qr(ImageFormat::Png);
        let text = m.render();
        for line in [
            "qrlp_http_requests_total{route=\"/v1/qr\",method=\"POST\",status=\"200\"} 2",
            "qrlp_http_requests_total{route=\"/v1/qr\",method=\"POST\",status=\"400\"} 1",
            "qrlp_http_requests_total{route=\"a\\\"b\",method=\"OTHER\",status=\"404\"} 1",
            "qrlp_http_request_duration_seconds_bucket{route=\"/v1/qr\",method=\"POST\",le=\"0.0005\"} 1",
            "qrlp_http_request_duration_seconds_bucket{route=\"/v1/qr\",method=\"POST\",le=\"0.005\"} 2",
            "qrlp_http_request_duration_seconds_bucket{route=\"/v1/qr\",method=\"POST\",le=\"10\"} 2",
            "qrlp_http_request_duration_seconds_bucket{route=\"/v1/qr\",method=\"POST\",le=\"+Inf\"} 3",
            "qrlp_http_request_duration_seconds_count{route=\"/v1/qr\",method=\"POST\"} 3",
            "qrlp_qr_generated_total{format=\"png\"} 1",
            "qrlp_qr_generated_total{format=\"svg\"} 0",
            "qrlp_http_requests_in_flight 0",
            "qrlp_log_lines_dropped_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("qrlp_build_info{version=\""));
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{l}");
        }
    }
}
