//! The pages, served from the binary: the viewer (`/`, `/?mode=stream`), the verify page,
//! their script and style, and the official Socket.IO client (`socket.io.min.js` 4.8.4 from
//! npm's `socket.io-client`, vendored, MIT). No build step, nothing fetched at run time.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

const VIEWER_HTML: &str = include_str!("../assets/viewer.html");
const VERIFY_HTML: &str = include_str!("../assets/verify.html");
const VIEWER_JS: &str = include_str!("../assets/viewer.js");
const VERIFY_JS: &str = include_str!("../assets/verify.js");
const LIVE_CSS: &str = include_str!("../assets/live.css");
const SOCKET_IO_JS: &str = include_str!("../assets/socket.io.min.js");

/// Where a page finds its channel.
#[derive(Clone, Debug)]
pub struct PageContext {
    /// Prefix of the channel's REST routes (`""` for `qrlp live`: `/api/qr/current`).
    pub api: String,
    /// Prefix of the static files.
    pub static_prefix: String,
    /// The Socket.IO namespace.
    pub namespace: String,
    /// The Socket.IO `auth` payload (the platform's channel token).
    pub auth: serde_json::Value,
    /// The viewer page's path.
    pub viewer: String,
    /// The verify page's path.
    pub verify: String,
    /// Whether the viewer offers to set the user text (not on public channel pages).
    pub user_text: bool,
}

impl PageContext {
    /// The pages of `qrlp live`.
    pub fn standalone() -> PageContext {
        PageContext {
            api: String::new(),
            static_prefix: "/static".into(),
            namespace: "/".into(),
            auth: json!({}),
            viewer: "/".into(),
            verify: "/verify".into(),
            user_text: true,
        }
    }

    fn fill(&self, template: &str, body_class: &str) -> String {
        let config = json!({
            "api": self.api,
            "namespace": self.namespace,
            "socket_path": "/socket.io/",
            "auth": self.auth,
            "user_text": self.user_text,
        })
        .to_string()
        // Inside <script>: no way to close the element from the data.
        .replace('<', "\\u003c");
        template
            .replace("{{CONFIG}}", &config)
            .replace("{{STATIC}}", &attr(&self.static_prefix))
            .replace("{{API}}", &attr(&self.api))
            .replace("{{VERIFY_HREF}}", &attr(&self.verify))
            .replace("{{VIEWER_HREF}}", &attr(&self.viewer))
            .replace(
                "{{STREAM_HREF}}",
                &attr(&format!("{}?mode=stream", self.viewer)),
            )
            .replace("{{BODY_CLASS}}", body_class)
    }
}

fn attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors *",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// The viewer; `stream` for the clean full-screen view (OBS browser source).
pub fn viewer(ctx: &PageContext, stream: bool) -> Response {
    html(ctx.fill(VIEWER_HTML, if stream { "stream" } else { "" }))
}

/// The verify page.
pub fn verify(ctx: &PageContext) -> Response {
    html(ctx.fill(VERIFY_HTML, ""))
}

/// A static file by name, or `None`.
pub fn asset(name: &str) -> Option<Response> {
    let (body, kind) = match name {
        "viewer.js" => (VIEWER_JS, "text/javascript; charset=utf-8"),
        "verify.js" => (VERIFY_JS, "text/javascript; charset=utf-8"),
        "live.css" => (LIVE_CSS, "text/css; charset=utf-8"),
        "socket.io.min.js" => (SOCKET_IO_JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut r = ([(header::CONTENT_TYPE, kind)], body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Some(r)
}
