//! The seed's REST routes of the standalone live server, over real TCP: every shape and
//! error, image uploads (a PNG screenshot, a rotated and scaled JPEG photo), user data.

use std::sync::Arc;
use std::time::Duration;

use qrlp_config::{Config, FrameFormat};
use qrlp_live_server::LiveChannel;
use qrlp_protocol::QrLiveProtocol;
use serde_json::{json, Value};

struct Server {
    base: String,
    channel: Arc<LiveChannel>,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, format: FrameFormat) -> Config {
    let mut c = Config::default();
    c.storage.data_dir = dir.display().to_string();
    c.live.update_interval_secs = 0.2;
    c.live.frame_format = format;
    c.time.time_servers = Vec::new();
    c.blockchain.enabled_chains = Vec::new();
    c
}

async fn server(format: FrameFormat, start: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let protocol = Arc::new(QrLiveProtocol::new(&config(dir.path(), format)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let channel = LiveChannel::new(protocol, base.clone());
    let (router, _io) = qrlp_live_server::standalone(Arc::clone(&channel));
    tokio::spawn(async move { axum::serve(listener, router).await });
    if start {
        channel.start().unwrap();
    }
    Server {
        base,
        channel,
        _dir: dir,
    }
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn post_json(url: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wait_current(s: &Server) -> Value {
    for _ in 0..100 {
        let (status, _, body) = get(&format!("{}/api/qr/current", s.base)).await;
        if status == 200 {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no frame within 5 s");
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_is_404_in_the_seed_shape_before_the_first_frame() {
    let s = server(FrameFormat::Json, false).await;
    let (status, headers, body) = get(&format!("{}/api/qr/current", s.base)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "No QR data available");
    assert_eq!(body["message"], "QR generation not started");
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["request_id"], id);
    assert_eq!(keys(&body), ["error", "message", "request_id"]);
    let (_, _, st) = get(&format!("{}/api/status", s.base)).await;
    assert_eq!(st["current_qr_available"], false);
    assert_eq!(st["is_running"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_current_have_the_seed_keys() {
    let s = server(FrameFormat::Json, true).await;
    let cur = wait_current(&s).await;
    for k in ["qr_data", "qr_image", "timestamp"] {
        assert!(cur.get(k).is_some(), "{k} missing in {cur}");
    }
    assert!(cur["qr_image"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    let qd = &cur["qr_data"];
    for k in [
        "timestamp",
        "identity_hash",
        "blockchain_hashes",
        "time_server_verification",
        "sequence_number",
    ] {
        assert!(qd.get(k).is_some(), "qr_data.{k} missing: {qd}");
    }
    // The JSON frame in the code is the qr_data itself.
    let frame: Value = serde_json::from_str(cur["frame"].as_str().unwrap()).unwrap();
    assert_eq!(&frame, qd);

    let (status, headers, st) = get(&format!("{}/api/status", s.base)).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-request-id"));
    for k in [
        "is_running",
        "page_views",
        "websocket_connections",
        "qr_updates_sent",
        "server_url",
        "current_qr_available",
        "statistics",
    ] {
        assert!(st.get(k).is_some(), "{k} missing: {st}");
    }
    assert_eq!(st["is_running"], true);
    assert_eq!(st["current_qr_available"], true);
    assert_eq!(st["server_url"], s.base);
    assert!(st["qr_updates_sent"].as_u64().unwrap() >= 1);
    assert!(st["statistics"]["crypto_stats"]["hmac_enabled"]
        .as_bool()
        .unwrap());
    // Page views count the viewer and verify pages.
    for p in ["/", "/verify", "/?mode=stream"] {
        let r = reqwest::get(format!("{}{p}", s.base)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));
    }
    let (_, _, st) = get(&format!("{}/api/status", s.base)).await;
    assert_eq!(st["page_views"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answers_valid_and_the_seed_errors() {
    for format in [FrameFormat::Json, FrameFormat::Compact] {
        let s = server(format, true).await;
        let cur = wait_current(&s).await;
        let frame = cur["frame"].as_str().unwrap();
        let url = format!("{}/api/verify", s.base);
        let (status, body) = post_json(&url, &json!({ "qr_data": frame }).to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["valid"], true, "{body}");
        assert_eq!(body["message"], "QR data verification successful");
        assert_eq!(keys(&body), ["details", "message", "timestamp", "valid"]);
        let d = &body["details"];
        for k in [
            "valid_json",
            "identity_verified",
            "time_verified",
            "blockchain_verified",
            "signature_verified",
            "hmac_verified",
            "encrypted",
            "key_id",
            "age_ms",
            "replayed",
            "reason",
        ] {
            assert!(d.get(k).is_some(), "details.{k} missing: {d}");
        }
        assert_eq!(d["reason"]["code"], "ok");
        // The same frame again is a replay.
        let (_, again) = post_json(&url, &json!({ "qr_data": frame }).to_string()).await;
        assert_eq!(again["valid"], false);
        assert_eq!(again["details"]["replayed"], true);
        // One changed character is invalid, not an error.
        let mut tampered = frame.to_string();
        let at = tampered.len() / 2;
        let c = if &tampered[at..=at] == "A" { "B" } else { "A" };
        tampered.replace_range(at..=at, c);
        let (status, t) = post_json(&url, &json!({ "qr_data": tampered }).to_string()).await;
        assert!(status == 200 || status == 400, "{status} {t}");
        assert_ne!(t["valid"], true);

        // Not a frame, not JSON, no qr_data: 400 in the seed's shape with a request id.
        for bad in [
            json!({ "qr_data": "hello" }).to_string(),
            "{not json".to_string(),
            json!({ "something": 1 }).to_string(),
        ] {
            let (status, e) = post_json(&url, &bad).await;
            assert_eq!(status, 400, "{bad}: {e}");
            assert_eq!(e["error"], "Invalid QR data format");
            assert!(e.get("details").is_some());
            assert!(e["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        }
        let (_, e) = post_json(&url, "{not json").await;
        assert_eq!(e["details"], "JSON parsing failed");
    }
}

fn upload(bytes: Vec<u8>, name: &str, mime: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap(),
    )
}

/// A "photo" of a screen: the code scaled by `scale`, rotated by `degrees` on a grey,
/// slightly uneven background, as a JPEG.
fn photo(png: &[u8], scale: f64, degrees: f64) -> Vec<u8> {
    let src = image::load_from_memory(png).unwrap().to_luma8();
    let (w, h) = src.dimensions();
    let side = ((f64::from(w.max(h)) * scale) * 1.6) as u32;
    let (s, c) = degrees.to_radians().sin_cos();
    let centre = f64::from(side) / 2.0;
    let mut out = image::RgbImage::new(side, side);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let dx = f64::from(x) - centre;
        let dy = f64::from(y) - centre;
        // Inverse rotation and scale into the source.
        let sx = (c * dx + s * dy) / scale + f64::from(w) / 2.0;
        let sy = (-s * dx + c * dy) / scale + f64::from(h) / 2.0;
        let bg = 150 + ((x + y) % 40) as u8;
        let v = if sx >= 0.0 && sy >= 0.0 && (sx as u32) < w && (sy as u32) < h {
            let l = src.get_pixel(sx as u32, sy as u32).0[0];
            // A screen seen by a camera: not quite black, not quite white.
            (u16::from(l) * 200 / 255 + 30) as u8
        } else {
            bg
        };
        *p = image::Rgb([v, v, v.saturating_sub(8)]);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&out)
        .unwrap();
    jpeg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_a_png_screenshot_and_a_rotated_scaled_jpeg_photo() {
    use base64::Engine as _;
    let s = server(FrameFormat::Compact, true).await;
    let url = format!("{}/api/verify", s.base);
    let client = reqwest::Client::new();
    let mut last_seq = 0;
    for (i, kind) in ["png", "jpeg", "jpeg2"].iter().enumerate() {
        // A fresh frame each time (a frame verified once is a replay afterwards).
        let cur = loop {
            let c = wait_current(&s).await;
            if c["sequence_number"].as_u64().unwrap() > last_seq {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        last_seq = cur["sequence_number"].as_u64().unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(
                cur["qr_image"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("data:image/png;base64,"),
            )
            .unwrap();
        let form = match *kind {
            "png" => upload(png, "screenshot.png", "image/png"),
            "jpeg" => upload(photo(&png, 1.7, 23.0), "photo.jpg", "image/jpeg"),
            _ => upload(photo(&png, 0.8, -127.0), "photo2.jpg", "image/jpeg"),
        };
        let r = client.post(&url).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 200, "upload {i}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["valid"], true, "{kind}: {body}");
        assert_eq!(body["decoded_text"], cur["frame"]);
    }
    // No code in the picture; not an image at all.
    let blank = {
        let img = image::RgbImage::from_pixel(200, 200, image::Rgb([255, 255, 255]));
        let mut v = Vec::new();
        image::codecs::png::PngEncoder::new(&mut v)
            .write_image(img.as_raw(), 200, 200, image::ExtendedColorType::Rgb8)
            .unwrap();
        v
    };
    use image::ImageEncoder as _;
    let r = client
        .post(&url)
        .multipart(upload(blank, "blank.png", "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "No QR code found in image");
    assert!(e["request_id"].is_string());
    let r = client
        .post(&url)
        .multipart(upload(b"GIF89a....".to_vec(), "x.gif", "image/gif"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "Invalid image upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_follows_the_seed_and_reaches_the_next_frame() {
    let s = server(FrameFormat::Json, true).await;
    let url = format!("{}/api/user-data", s.base);
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "user_data": null }));

    let text = "Welcome to my livestream! é✓";
    let (status, body) = post_json(&url, &json!({ "user_text": text }).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "message": "User data updated successfully", "user_data": text})
    );
    let (_, _, body) = get(&url).await;
    assert_eq!(body["user_data"], text);

    // 500 characters (not bytes) pass; 501 do not.
    let ok = "é".repeat(500);
    let (status, _) = post_json(&url, &json!({ "user_text": ok }).to_string()).await;
    assert_eq!(status, 200);
    let (status, e) = post_json(&url, &json!({ "user_text": "x".repeat(501) }).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"], "User data too long (max 500 characters)");
    assert!(e["request_id"].is_string());
    let (status, e) = post_json(&url, &json!({ "user_text": 5 }).to_string()).await;
    assert_eq!(status, 400);
    assert!(e["error"].is_string());

    let (status, _) = post_json(&url, &json!({ "user_text": text }).to_string()).await;
    assert_eq!(status, 200);
    let seen = s.channel.protocol().current().map(|u| u.frame.sequence);
    for _ in 0..100 {
        let cur = wait_current(&s).await;
        let newer = Some(cur["sequence_number"].as_u64().unwrap()) > seen;
        if newer && cur["qr_data"]["user_data"]["user_text"] == text {
            let frame = cur["frame"].as_str().unwrap();
            assert!(frame.contains("Welcome to my livestream!"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the text never reached a frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_is_published_with_cache_control() {
    let s = server(FrameFormat::Json, false).await;
    let r = reqwest::get(format!("{}/.well-known/qrlp-keys.json", s.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cc = r.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cc.contains("max-age="), "{cc}");
    let text = r.text().await.unwrap();
    let set = qrlp_live::KeySet::from_json(&text).unwrap();
    assert_eq!(set.len(), 1);
    let (status, _, body) = get(&format!("{}/api/nothing", s.base)).await;
    assert_eq!(status, 404);
    assert!(body["request_id"].is_string());
}
