//! `TestApp`: starts the server on `127.0.0.1:0` and talks to it with reqwest; plus image
//! helpers that decode PNGs independently of qrlp (the `png` crate and `rqrr`).

use std::net::SocketAddr;

use axum::Router;
use qrlp_config::Config;
use qrlp_server::{AppState, ServeError, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The separate metrics listener, when `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// The data directory (SQLite database), removed when the app is dropped; `None` when
    /// the configuration named its own.
    pub data_dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestApp {
    /// The server with the default configuration.
    pub async fn start() -> TestApp {
        TestApp::start_with(Config::default(), Router::new()).await
    }

    /// The server with `config` (host and port are replaced) and `extra` routes.
    pub async fn start_with(mut config: Config, extra: Router<AppState>) -> TestApp {
        config.server.host = "127.0.0.1".into();
        config.server.port = 0;
        // Key files (data key, HMAC secret) live in the data directory even when the
        // database is PostgreSQL: every test gets its own.
        let data_dir = if config.storage.data_dir == qrlp_config::StorageConfig::default().data_dir
        {
            let dir = tempfile::tempdir().expect("temp dir");
            config.storage.data_dir = dir.path().display().to_string();
            Some(dir)
        } else {
            None
        };
        config.validate().expect("test configuration is valid");
        let server = Server::bind_with(config, extra).await.expect("binds");
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            metrics_addr,
            client: reqwest::Client::new(),
            data_dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST `body` as `application/json`.
    pub async fn post_json(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    /// The text of `/metrics` on the public listener, with `token` as the bearer token.
    pub async fn metrics_text(&self, token: &str) -> String {
        self.client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Signals shutdown without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        self.signal_shutdown();
        self.handle
            .take()
            .expect("running")
            .await
            .expect("no panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// An error response's JSON body, after checking the envelope's shape and that its request
/// id matches the `X-Request-ID` header.
pub async fn error_body(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "error content type"
    );
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["request_id"], header_id.as_str(), "{body}");
    assert_eq!(body["error"], body["message"], "{body}");
    assert!(body["code"].is_string(), "{body}");
    body
}

/// Seed 002's error shape `{"error": {"code", "message", "details", "request_id"}}`, which
/// the fleet's route families answer: checks its fields and the status, returns `error`.
pub async fn seed002_error_body(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    let e = &body["error"];
    assert!(e["code"].is_string(), "{body}");
    assert!(e["message"].is_string(), "{body}");
    assert!(e["details"]["timestamp"].is_string(), "{body}");
    assert_eq!(e["request_id"], header_id.as_str(), "{body}");
    e.clone()
}

/// Asserts the envelope's code and message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str, message: &str) {
    let body = error_body(response, status).await;
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
}

/// A decoded image: RGBA pixels, row by row.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[u8; 4]>,
}

impl Image {
    pub fn at(&self, x: usize, y: usize) -> [u8; 4] {
        self.pixels[y * self.width + x]
    }

    /// The distinct colours, sorted.
    pub fn colours(&self) -> Vec<[u8; 4]> {
        let mut c = self.pixels.clone();
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// Decodes a PNG with the `png` crate into RGBA.
pub fn decode_png(bytes: &[u8]) -> Image {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    let (width, height) = (info.width as usize, info.height as usize);
    let (colour, depth) = reader.output_color_type();
    assert_eq!(depth, png::BitDepth::Eight, "expanded to 8 bits");
    let channels = colour.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(info.line_size)
        .flat_map(|line| line[..width * channels].chunks(channels))
        .map(|p| match colour {
            png::ColorType::Grayscale => [p[0], p[0], p[0], 255],
            png::ColorType::GrayscaleAlpha => [p[0], p[0], p[0], p[1]],
            png::ColorType::Rgb => [p[0], p[1], p[2], 255],
            png::ColorType::Rgba => [p[0], p[1], p[2], p[3]],
            png::ColorType::Indexed => unreachable!("EXPAND removes palettes"),
        })
        .collect();
    Image {
        width,
        height,
        pixels,
    }
}

/// Reads the QR code in `image` with rqrr; returns (version, text). The image is padded
/// with its corner colour first, so that a quiet zone of 1 module (the seed's default)
/// does not depend on the decoder's tolerance.
pub fn read_qr(image: &Image) -> (usize, String) {
    let pad = 40;
    let w = image.width + 2 * pad;
    let h = image.height + 2 * pad;
    let light = luma(image.at(0, 0));
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if x < pad || y < pad || x >= pad + image.width || y >= pad + image.height {
            light
        } else {
            luma(image.at(x - pad, y - pad))
        }
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (meta, text) = grids[0].decode().expect("rqrr decodes the QR code");
    (meta.version.0, text)
}

fn luma([r, g, b, _]: [u8; 4]) -> u8 {
    ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
}

/// Parses `#RRGGBB` into RGBA.
pub fn rgba(hex: &str) -> [u8; 4] {
    let h = hex.trim_start_matches('#');
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap();
    [byte(0), byte(2), byte(4), 255]
}

/// The PNG checks every QR image test makes: it decodes to `text`; its width is
/// `(modules + 2 × border) × box_size`; its only colours are `fill` and `back`, with the
/// quiet zone in `back` and the top-left finder corner in `fill`.
pub fn check_png(bytes: &[u8], text: &str, box_size: usize, border: usize, fill: &str, back: &str) {
    let image = decode_png(bytes);
    let (version, decoded) = read_qr(&image);
    assert_eq!(decoded, text, "decoded text");
    let modules = 17 + 4 * version;
    assert_eq!(image.width, (modules + 2 * border) * box_size, "width");
    assert_eq!(image.height, image.width, "square");
    let (fill, back) = (rgba(fill), rgba(back));
    let mut expected = vec![fill, back];
    expected.sort_unstable();
    assert_eq!(
        image.colours(),
        expected,
        "exactly the two requested colours"
    );
    assert_eq!(image.at(0, 0), back, "quiet zone");
    let first = border * box_size;
    assert_eq!(image.at(first, first), fill, "finder pattern corner");
    assert_eq!(
        image.at(first - 1, first),
        back,
        "quiet zone ends at the border"
    );
}

/// A response read off a raw connection.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Writes `request` bytes on `conn` and reads one response (with `Content-Length`).
pub async fn raw_exchange(
    conn: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    request: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    conn.get_mut().write_all(request).await.expect("write");
    let mut line = String::new();
    conn.read_line(&mut line).await.expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await.expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').expect("header");
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().expect("length"));
    response.body = vec![0; len];
    conn.read_exact(&mut response.body).await.expect("body");
    response
}

/// A raw keep-alive connection to the app.
pub async fn connect(app: &TestApp) -> tokio::io::BufReader<tokio::net::TcpStream> {
    tokio::io::BufReader::new(
        tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect"),
    )
}
