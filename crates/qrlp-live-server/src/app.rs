//! The standalone live server of `qrlp live`: one channel at the seed's paths, Socket.IO on
//! the default namespace, the pages, `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use socketioxide::SocketIo;

use crate::hub::LiveChannel;
use crate::pages;
use crate::rest::{self, ReqId};

type Ch = State<Arc<LiveChannel>>;

/// The router of a standalone live server and its Socket.IO handle. The channel's events
/// are forwarded to the default namespace by a task spawned here (call inside a tokio
/// runtime).
pub fn standalone(channel: Arc<LiveChannel>) -> (Router, SocketIo) {
    let (layer, io) = crate::socket::builder().build_layer();
    io.ns("/", crate::socket::on_connect(Arc::clone(&channel), None));
    crate::socket::forward(io.clone(), "/".into(), None, &channel);
    let router = Router::new()
        .route("/", get(viewer))
        .route("/verify", get(verify_page))
        .route("/static/{file}", get(asset))
        .route("/api/status", get(status))
        .route("/api/qr/current", get(current))
        .route(
            "/api/verify",
            axum::routing::post(verify).layer(DefaultBodyLimit::max(rest::MAX_UPLOAD_BYTES)),
        )
        .route("/api/user-data", get(get_user_data).post(post_user_data))
        .route("/.well-known/qrlp-keys.json", get(keys))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(layer)
        .layer(crate::socket::detach_layer())
        .layer(axum::middleware::from_fn(request_id))
        .with_state(channel);
    (router, io)
}

/// Gives every request a [`ReqId`] and every response its `X-Request-ID`.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = ReqId::from_headers(req.headers());
    req.extensions_mut().insert(id.clone());
    let mut r = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

#[derive(Deserialize)]
struct ViewerQuery {
    mode: Option<String>,
}

async fn viewer(State(ch): Ch, Query(q): Query<ViewerQuery>) -> Response {
    ch.count_page_view();
    let stream = q.mode.as_deref() == Some("stream");
    pages::viewer(&pages::PageContext::standalone(), stream)
}

async fn verify_page(State(ch): Ch) -> Response {
    ch.count_page_view();
    pages::verify(&pages::PageContext::standalone())
}

async fn asset(Path(file): Path<String>, id: ReqId) -> Response {
    pages::asset(&file).unwrap_or_else(|| rest::not_found(&id))
}

async fn status(State(ch): Ch, id: ReqId) -> Response {
    rest::status(&ch, &id)
}

async fn current(State(ch): Ch, id: ReqId) -> Response {
    rest::current(&ch, &id)
}

async fn verify(State(ch): Ch, id: ReqId, req: Request) -> Response {
    match rest::verify_input(req).await {
        Ok(input) => rest::verify(&ch, input, &id),
        Err(e) => e.respond(&id),
    }
}

async fn get_user_data(State(ch): Ch, id: ReqId) -> Response {
    rest::get_user_data(&ch, &id)
}

async fn post_user_data(State(ch): Ch, id: ReqId, body: Bytes) -> Response {
    rest::post_user_data(&ch, &body, &id)
}

async fn keys(State(ch): Ch, id: ReqId) -> Response {
    rest::keys(&ch, &id)
}

async fn fallback(id: ReqId) -> Response {
    rest::not_found(&id)
}

/// Prometheus text: the channel's counters, frames made, resident memory.
async fn metrics(State(ch): Ch) -> Response {
    let mut out = String::with_capacity(1024);
    write_channel_metrics(&mut out, &ch, "");
    if let Some(rss) = resident_bytes() {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Appends the Prometheus series of one channel (`labels` like `channel="…"`, or empty).
pub fn write_channel_metrics(out: &mut String, ch: &LiveChannel, labels: &str) {
    let c = ch.counters();
    let l = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let stats = ch.protocol().statistics();
    let generated = stats["generation"]["frames_generated"]
        .as_u64()
        .unwrap_or(0);
    let _ = write!(
        out,
        "# HELP qrlp_live_websocket_connections Socket.IO clients connected now.\n\
         # TYPE qrlp_live_websocket_connections gauge\n\
         qrlp_live_websocket_connections{l} {}\n\
         # HELP qrlp_live_connections_total Socket.IO clients ever connected.\n\
         # TYPE qrlp_live_connections_total counter\n\
         qrlp_live_connections_total{l} {}\n\
         # HELP qrlp_live_qr_updates_sent_total Frames broadcast as qr_update.\n\
         # TYPE qrlp_live_qr_updates_sent_total counter\n\
         qrlp_live_qr_updates_sent_total{l} {}\n\
         # HELP qrlp_live_page_views_total Viewer and verify pages served.\n\
         # TYPE qrlp_live_page_views_total counter\n\
         qrlp_live_page_views_total{l} {}\n\
         # HELP qrlp_live_frames_generated_total Frames made by this process.\n\
         # TYPE qrlp_live_frames_generated_total counter\n\
         qrlp_live_frames_generated_total{l} {generated}\n",
        c.connections.load(Ordering::Relaxed).max(0),
        c.connections_total.load(Ordering::Relaxed),
        c.qr_updates_sent.load(Ordering::Relaxed),
        c.page_views.load(Ordering::Relaxed),
    );
}

/// This process's resident memory, from `/proc/self/statm` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
