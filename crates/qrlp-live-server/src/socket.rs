//! The seed's Socket.IO events (protocol v5, socketioxide) over a [`LiveChannel`]:
//! `qr_update` to everyone on each frame (and to a client when it connects),
//! `request_qr_update` answered to the asker, `update_user_data` checked, then
//! `user_data_updated` to everyone or `user_data_error` to the sender only.
//!
//! Handlers are thin: the channel does the work. They are generic over the socketioxide
//! adapter, so the same code runs with the local adapter (`qrlp live`) and the Redis
//! adapter (the platform with several nodes).

use std::sync::Arc;

use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::SocketIo;

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
