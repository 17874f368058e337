//! The seed's Socket.IO events (protocol v5, socketioxide) over a [`LiveChannel`]:
//! `qr_update` to everyone on each frame (and to a client when it connects),
//! `request_qr_update` answered to the asker, `update_user_data` checked, then
//! `user_data_updated` to everyone or `user_data_error` to the sender only.
//!
//! Handlers are thin: the channel does the work. They are generic over the socketioxide
//! adapter, so the same code runs with the local adapter (`qrlp live`) and the Redis
//! adapter (the platform with several nodes).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Uri};
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::SocketIo;
use tower::util::MapRequestLayer;

use crate::hub::{HubEvent, LiveChannel, UserTextError};

/// The Socket.IO server's settings, shared by `qrlp live` and `qrlp serve`: messages from a
/// client up to 64 KiB, read in 1 KiB chunks (clients send a few bytes: pongs, requests,
/// user text of at most 500 characters), which keeps each connection's memory small when
/// thousands are open.
pub fn builder() -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .max_payload(64 * 1024)
        .ws_read_buffer_size(1024)
}

/// The layer to put around the Socket.IO layer: [`detach_handshake`] on every request.
pub fn detach_layer() -> MapRequestLayer<fn(Request<Body>) -> Request<Body>> {
    MapRequestLayer::new(detach_handshake::<Body>)
}

/// Copies the URI and headers of a Socket.IO request into buffers of their own; other
/// requests pass untouched.
///
/// Why: a Socket.IO session keeps its handshake request's parts for as long as it lives, and
/// hyper parses the URI and header values as views into the connection's read buffer
/// (16 KiB). Each open session would pin that buffer: 16 MB per 1,000 clients.
pub fn detach_handshake<B>(mut req: Request<B>) -> Request<B> {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    if let Ok(uri) = Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    let mut headers = HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), owned);
    }
    *req.headers_mut() = headers;
    req
}

/// The connect handler of a channel's namespace (or of its room: `room` when several
/// channels share a namespace; `None` to serve the whole namespace).
pub fn on_connect<A: Adapter>(
    channel: Arc<LiveChannel>,
    room: Option<String>,
) -> impl Fn(SocketRef<A>) -> std::future::Ready<()> + Clone + Send + Sync + 'static {
    move |s: SocketRef<A>| {
        attach(&s, Arc::clone(&channel), room.clone(), true);
        std::future::ready(())
    }
}

/// Wires one connected socket to `channel`: counts it, sends it the current frame, and
/// handles its events. Without `allow_user_data` (a public connection to an organization's
/// channel), `update_user_data` answers `user_data_error`.
pub fn attach<A: Adapter>(
    s: &SocketRef<A>,
    channel: Arc<LiveChannel>,
    room: Option<String>,
    allow_user_data: bool,
) {
    channel.connected();
    if let Some(room) = &room {
        s.join(room.clone());
    }
    if let Some(current) = channel.current() {
        let _ = s.emit("qr_update", &*current);
    }
    let ch = Arc::clone(&channel);
    s.on("request_qr_update", move |s: SocketRef<A>| {
        let current = ch.current();
        async move {
            match current {
                Some(p) => {
                    let _ = s.emit("qr_update", &*p);
                }
                None => {
                    let _ = s.emit(
                        "qr_error",
                        &json!({"error": "No QR data available", "message": "QR generation not started"}),
                    );
                }
            }
        }
    });
    let ch = Arc::clone(&channel);
    s.on(
        "update_user_data",
        move |s: SocketRef<A>, TryData(data): TryData<Value>| {
            let result = match data {
                _ if !allow_user_data => {
                    Err("User data can only be set with an API key (live:write)".to_string())
                }
                Ok(v) => ch.set_user_text(&v).map_err(|e| e.to_string()),
                Err(_) => Err(UserTextError::Invalid.to_string()),
            };
            async move {
                // Success is announced by the channel's event to every client.
                if let Err(e) = result {
                    let _ = s.emit("user_data_error", &json!({ "error": e }));
                }
            }
        },
    );
    let ch = channel;
    s.on_disconnect(move || {
        ch.disconnected();
        std::future::ready(())
    });
}

/// Spawns the task that emits a channel's events to the sockets of namespace `ns` (only to
/// `room` when given). With a remote adapter the emit reaches every node's sockets.
pub fn forward<A: Adapter>(
    io: SocketIo<A>,
    ns: String,
    room: Option<String>,
    channel: &Arc<LiveChannel>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = channel.subscribe();
    tokio::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let Some(op) = io.of(&ns) else { continue };
            let op = match &room {
                Some(r) => op.to(r.clone()),
                None => op,
            };
            let _ = match &event {
                HubEvent::QrUpdate(p) => op.emit("qr_update", &**p).await,
                HubEvent::UserDataUpdated(p) => op.emit("user_data_updated", &**p).await,
            };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    /// A request whose URI and header value are views into one large buffer, as hyper
    /// parses them.
    fn parsed(path: &str) -> (Request<()>, std::ops::Range<usize>) {
        let mut buf = vec![b' '; 16 * 1024];
        let text = format!("{path} secret-token");
        buf[..text.len()].copy_from_slice(text.as_bytes());
        let buf = Bytes::from(buf);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let uri = Uri::from_maybe_shared(buf.slice(..path.len())).unwrap();
        let value = buf.slice(path.len() + 1..text.len());
        let mut value = HeaderValue::from_maybe_shared(value).unwrap();
        value.set_sensitive(true);
        let mut req = Request::builder().uri(uri).body(()).unwrap();
        req.headers_mut().append("authorization", value.clone());
        req.headers_mut().append("x-other", value);
        (req, range)
    }

    fn in_buffer(p: *const u8, range: &std::ops::Range<usize>) -> bool {
        range.contains(&(p as usize))
    }

    #[test]
    fn socket_io_requests_no_longer_point_into_the_read_buffer() {
        let (req, range) = parsed("/socket.io/?EIO=4&transport=websocket");
        assert!(in_buffer(
            req.headers()["x-other"].as_bytes().as_ptr(),
            &range
        ));
        let req = detach_handshake(req);
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.uri().query(), Some("EIO=4&transport=websocket"));
        let auth = &req.headers()["authorization"];
        assert_eq!(auth, "secret-token");
        assert!(auth.is_sensitive());
        assert_eq!(req.headers().get_all("x-other").iter().count(), 1);
        for value in req.headers().values() {
            assert!(!in_buffer(value.as_bytes().as_ptr(), &range));
        }
        assert!(!in_buffer(req.uri().path().as_ptr(), &range));
    }

    #[test]
    fn other_requests_pass_untouched() {
        let (req, range) = parsed("/api/status");
        let req = detach_handshake(req);
        assert!(in_buffer(
            req.headers()["x-other"].as_bytes().as_ptr(),
            &range
        ));
        assert!(in_buffer(req.uri().path().as_ptr(), &range));
    }
}
