//! `POST /v1/qr` and `GET /v1/qr`: seed 001's examples, error rows, URL lists and bounds,
//! plus format, size, data, GET and caching. Every PNG is decoded and checked.

use axum::Router;
use qrlp_config::Config;
use serde_json::json;

use crate::common::{assert_error, check_png, decode_png, read_qr, TestApp};

async fn png_of(app: &TestApp, body: serde_json::Value) -> Vec<u8> {
    let r = app.post_json("/v1/qr", &body.to_string()).await;
    assert_eq!(r.status(), 200, "{body}");
    assert_eq!(r.headers()["content-type"], "image/png");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn seed_full_example() {
    let app = TestApp::start().await;
    let r = app
        .post_json(
            "/v1/qr",
            r##"{
                "url": "https://example.com",
                "ecc": "H",
                "box_size": 10,
                "border": 2,
                "fill_color": "#000000",
                "back_color": "#FFFFFF"
            }"##,
        )
        .await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["cache-control"], "public, max-age=86400");
    assert_eq!(h["content-disposition"], "inline; filename=\"qr.png\"");
    let etag = h["etag"].to_str().unwrap();
    assert!(
        etag.len() == 34 && etag.starts_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    assert!(h.contains_key("x-request-id"));
    let png = r.bytes().await.unwrap();
    check_png(&png, "https://example.com", 10, 2, "#000000", "#FFFFFF");
}

#[tokio::test]
async fn seed_minimal_example_uses_the_defaults() {
    let app = TestApp::start().await;
    let png = png_of(&app, json!({"url": "https://example.com"})).await;
    // Defaults: ecc M, box_size 10, border 1, black on white.
    check_png(&png, "https://example.com", 10, 1, "#000000", "#FFFFFF");
}

#[tokio::test]
async fn seed_python_example_colours() {
    let app = TestApp::start().await;
    let png = png_of(
        &app,
        json!({"url": "https://example.com", "ecc": "M", "box_size": 10,
               "fill_color": "#1a1a2e", "back_color": "#eaeaea"}),
    )
    .await;
    check_png(&png, "https://example.com", 10, 1, "#1a1a2e", "#eaeaea");
    // Three-digit colours too.
    let png = png_of(
        &app,
        json!({"url": "example.com", "fill_color": "#F00", "back_color": "#ff0"}),
    )
    .await;
    check_png(&png, "https://example.com", 10, 1, "#FF0000", "#FFFF00");
}

#[tokio::test]
async fn every_seed_error_row() {
    let app = TestApp::start().await;
    let long_url = format!("https://example.com/{}", "a".repeat(1981));
    assert_eq!(long_url.len(), 2001);
    let cases: Vec<(String, &str)> = vec![
        (json!({}).to_string(), "Field 'url' is required"),
        (json!({"ecc": "H"}).to_string(), "Field 'url' is required"),
        (json!({"url": ""}).to_string(), "Please provide a URL"),
        (json!({"url": "  "}).to_string(), "Please provide a URL"),
        (
            json!({"url": long_url}).to_string(),
            "URL is too long (max 2000 characters)",
        ),
        (
            json!({"url": "ftp://example.com"}).to_string(),
            "URL scheme must be http or https",
        ),
        (
            json!({"url": "not a url at all"}).to_string(),
            "Please check the URL and try again",
        ),
        (
            json!({"url": "example.com", "fill_color": "black"}).to_string(),
            "Invalid color format. Use hex codes (e.g., #FF0000 or #F00)",
        ),
        (
            json!({"url": "example.com", "back_color": "#GGGGGG"}).to_string(),
            "Invalid color format. Use hex codes (e.g., #FF0000 or #F00)",
        ),
        (
            json!({"url": "example.com", "ecc": "X"}).to_string(),
            "Invalid error correction. Choose L, M, Q, H",
        ),
        (
            json!({"url": "example.com", "box_size": 4}).to_string(),
            "box_size must be between 5 and 20",
        ),
        (
            json!({"url": "example.com", "border": 11}).to_string(),
            "border must be between 1 and 10",
        ),
        ("{\"url\": ".to_string(), "Invalid JSON body"),
    ];
    for (body, message) in cases {
        let r = app.post_json("/v1/qr", &body).await;
        assert_error(r, 400, "INVALID_INPUT", message).await;
    }
    // Exactly 2000 characters is allowed.
    let max_url = format!("https://example.com/{}", "a".repeat(1980));
    let r = app
        .post_json("/v1/qr", &json!({"url": max_url, "ecc": "L"}).to_string())
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn seed_valid_urls_are_normalized_and_encoded() {
    let app = TestApp::start().await;
    for (input, normalized) in [
        ("https://example.com", "https://example.com"),
        ("http://localhost:3000/path", "http://localhost:3000/path"),
        ("example.com", "https://example.com"),
        ("https://192.168.1.1/api", "https://192.168.1.1/api"),
        ("https://[::1]:8080/test", "https://[::1]:8080/test"),
        // Fragments are stripped.
        (
            "https://example.com/docs#section",
            "https://example.com/docs",
        ),
    ] {
        let png = png_of(&app, json!({"url": input})).await;
        check_png(&png, normalized, 10, 1, "#000000", "#FFFFFF");
    }
}

#[tokio::test]
async fn seed_invalid_urls_are_refused() {
    let app = TestApp::start().await;
    for (input, message) in [
        ("ftp://example.com", "URL scheme must be http or https"),
        ("javascript:alert(1)", "URL scheme must be http or https"),
        ("not a url at all", "Please check the URL and try again"),
    ] {
        let r = app
            .post_json("/v1/qr", &json!({"url": input}).to_string())
            .await;
        assert_error(r, 400, "INVALID_INPUT", message).await;
    }
}

#[tokio::test]
async fn box_size_and_border_bounds() {
    let app = TestApp::start().await;
    for box_size in [5, 20] {
        let png = png_of(&app, json!({"url": "example.com", "box_size": box_size})).await;
        check_png(
            &png,
            "https://example.com",
            box_size,
            1,
            "#000000",
            "#FFFFFF",
        );
    }
    for border in [1, 10] {
        let png = png_of(
            &app,
            json!({"url": "example.com", "border": border, "box_size": 5}),
        )
        .await;
        check_png(&png, "https://example.com", 5, border, "#000000", "#FFFFFF");
    }
    for (field, value, message) in [
        ("box_size", json!(4), "box_size must be between 5 and 20"),
        ("box_size", json!(21), "box_size must be between 5 and 20"),
        ("box_size", json!(0), "box_size must be between 5 and 20"),
        ("box_size", json!(-1), "box_size must be between 5 and 20"),
        ("box_size", json!(7.5), "box_size must be between 5 and 20"),
        (
            "box_size",
            json!("big"),
            "box_size must be between 5 and 20",
        ),
        ("border", json!(0), "border must be between 1 and 10"),
        ("border", json!(11), "border must be between 1 and 10"),
        ("border", json!(-3), "border must be between 1 and 10"),
    ] {
        let mut body = json!({"url": "example.com"});
        body[field] = value;
        let r = app.post_json("/v1/qr", &body.to_string()).await;
        assert_error(r, 400, "INVALID_INPUT", message).await;
    }
}

#[tokio::test]
async fn every_ecc_level() {
    let app = TestApp::start().await;
    for ecc in ["L", "M", "Q", "H"] {
        let png = png_of(
            &app,
            json!({"url": "https://example.com/a/b?c=d", "ecc": ecc}),
        )
        .await;
        check_png(
            &png,
            "https://example.com/a/b?c=d",
            10,
            1,
            "#000000",
            "#FFFFFF",
        );
    }
}

#[tokio::test]
async fn data_instead_of_url() {
    let app = TestApp::start().await;
    let text = "WIFI:S:qrlp;T:WPA;P:correct horse;;";
    let png = png_of(&app, json!({"data": text, "box_size": 6})).await;
    check_png(&png, text, 6, 1, "#000000", "#FFFFFF");
    let r = app
        .post_json("/v1/qr", &json!({"url": "a.com", "data": "x"}).to_string())
        .await;
    assert_error(
        r,
        400,
        "INVALID_INPUT",
        "Provide either 'url' or 'data', not both",
    )
    .await;
    let r = app
        .post_json(
            "/v1/qr",
            &json!({"data": "x".repeat(3000), "ecc": "H"}).to_string(),
        )
        .await;
    let body = crate::common::error_body(r, 400).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Too much data"),
        "{body}"
    );
}

#[tokio::test]
async fn exact_size_in_pixels() {
    let app = TestApp::start().await;
    for size in [100, 300, 2000] {
        let png = png_of(&app, json!({"url": "https://example.com", "size": size})).await;
        let image = decode_png(&png);
        assert_eq!((image.width, image.height), (size, size));
        assert_eq!(read_qr(&image).1, "https://example.com");
    }
    for size in [99, 2001] {
        let r = app
            .post_json(
                "/v1/qr",
                &json!({"url": "example.com", "size": size}).to_string(),
            )
            .await;
        assert_error(r, 400, "INVALID_INPUT", "size must be between 100 and 2000").await;
    }
    let r = app
        .post_json(
            "/v1/qr",
            &json!({"url": "example.com", "size": 300, "box_size": 10}).to_string(),
        )
        .await;
    assert_error(
        r,
        400,
        "INVALID_INPUT",
        "Provide either 'box_size' or 'size', not both",
    )
    .await;
}

#[tokio::test]
async fn svg_format() {
    let app = TestApp::start().await;
    let r = app
        .post_json(
            "/v1/qr",
            &json!({"url": "https://example.com", "format": "svg", "fill_color": "#112233"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        r.headers()["content-disposition"],
        "inline; filename=\"qr.svg\""
    );
    assert!(r.headers().contains_key("etag"));
    let svg = r.text().await.unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains("#112233"), "{svg}");
    // 25 modules (version 2) + 2 × 1 border at 10 px per module.
    assert!(svg.contains("width=\"270\""), "{svg}");
    let r = app
        .post_json(
            "/v1/qr",
            &json!({"url": "example.com", "format": "gif"}).to_string(),
        )
        .await;
    assert_error(r, 400, "INVALID_INPUT", "Invalid format. Choose png or svg").await;
}

#[tokio::test]
async fn get_takes_the_same_parameters() {
    let app = TestApp::start().await;
    let post = png_of(
        &app,
        json!({"url": "https://example.com/x?y=1", "ecc": "Q", "box_size": 7, "border": 3,
               "fill_color": "#102030", "back_color": "#F0F0F0"}),
    )
    .await;
    let r = app
        .client
        .get(app.url("/v1/qr"))
        .query(&[
            ("url", "https://example.com/x?y=1"),
            ("ecc", "Q"),
            ("box_size", "7"),
            ("border", "3"),
            ("fill_color", "#102030"),
            ("back_color", "#F0F0F0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let get = r.bytes().await.unwrap();
    assert_eq!(
        get.as_ref(),
        post.as_slice(),
        "GET and POST give the same image"
    );
    check_png(
        &get,
        "https://example.com/x?y=1",
        7,
        3,
        "#102030",
        "#F0F0F0",
    );

    let r = app
        .get("/v1/qr?data=hello&format=svg&size=200&error_correction=H")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");

    for (query, message) in [
        ("", "Field 'url' is required"),
        ("?url=ftp://x.com", "URL scheme must be http or https"),
        (
            "?url=example.com&box_size=abc",
            "box_size must be between 5 and 20",
        ),
        (
            "?url=example.com&border=0",
            "border must be between 1 and 10",
        ),
        (
            "?url=example.com&fill_color=red",
            "Invalid color format. Use hex codes (e.g., #FF0000 or #F00)",
        ),
        (
            "?url=example.com&ecc=Z",
            "Invalid error correction. Choose L, M, Q, H",
        ),
        ("?url=a.com&url=b.com", "Invalid query string"),
    ] {
        let r = app.get(&format!("/v1/qr{query}")).await;
        assert_error(r, 400, "INVALID_INPUT", message).await;
    }
}

#[tokio::test]
async fn etag_and_not_modified() {
    let app = TestApp::start().await;
    let body = json!({"url": "https://example.com"}).to_string();
    let first = app.post_json("/v1/qr", &body).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let second = app.post_json("/v1/qr", &body).await;
    assert_eq!(second.headers()["etag"], etag.as_str(), "stable");

    // Requests that normalize alike share the tag; GET and POST too.
    let same = app
        .post_json("/v1/qr", &json!({"url": " example.com#frag", "ecc": "M", "box_size": 10, "border": 1, "fill_color": "#000"}).to_string())
        .await;
    assert_eq!(same.headers()["etag"], etag.as_str());
    let get = app.get("/v1/qr?url=https://example.com").await;
    assert_eq!(get.headers()["etag"], etag.as_str());

    for other in [
        json!({"url": "https://example.org"}),
        json!({"url": "https://example.com", "ecc": "H"}),
        json!({"url": "https://example.com", "box_size": 11}),
        json!({"url": "https://example.com", "border": 2}),
        json!({"url": "https://example.com", "fill_color": "#010101"}),
        json!({"url": "https://example.com", "format": "svg"}),
        json!({"url": "https://example.com", "size": 270}),
    ] {
        let r = app.post_json("/v1/qr", &other.to_string()).await;
        assert_ne!(r.headers()["etag"], etag.as_str(), "{other}");
    }

    for if_none_match in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let r = app
            .client
            .post(app.url("/v1/qr"))
            .header("content-type", "application/json")
            .header("if-none-match", &if_none_match)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{if_none_match}");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert_eq!(r.headers()["cache-control"], "public, max-age=86400");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = app
        .client
        .get(app.url("/v1/qr?url=https://example.com"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .post(app.url("/v1/qr"))
        .header("content-type", "application/json")
        .header("if-none-match", "\"stale\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn defaults_from_the_environment() {
    let env = |name: &str| {
        match name {
            "QR_DEFAULT_ERROR_CORRECTION" => Some("H"),
            "QR_DEFAULT_BOX_SIZE" => Some("6"),
            "QR_DEFAULT_BORDER" => Some("4"),
            "QR_DEFAULT_FILL_COLOR" => Some("#1a1a2e"),
            "QR_DEFAULT_BACK_COLOR" => Some("#eaeaea"),
            _ => None,
        }
        .map(String::from)
    };
    let config = Config::load_with(None, env, &[]).unwrap();
    let app = TestApp::start_with(config, Router::new()).await;
    let png = png_of(&app, json!({"url": "https://example.com"})).await;
    check_png(&png, "https://example.com", 6, 4, "#1a1a2e", "#eaeaea");
    // ECC H for this URL needs version 3 (29 modules); M would fit version 2.
    let image = decode_png(&png);
    assert_eq!(read_qr(&image).0, 3);
    // A request still overrides every default.
    let png = png_of(
        &app,
        json!({"url": "https://example.com", "ecc": "L", "box_size": 5, "border": 1,
               "fill_color": "#000000", "back_color": "#FFFFFF"}),
    )
    .await;
    check_png(&png, "https://example.com", 5, 1, "#000000", "#FFFFFF");
}

#[tokio::test]
async fn generated_images_are_counted_by_format() {
    let mut config = qrlp_config::Config::default();
    config.metrics.token = "metrics-token-for-tests".into();
    let app = TestApp::start_with(config, axum::Router::new()).await;
    png_of(&app, json!({"url": "a.com"})).await;
    png_of(&app, json!({"url": "b.com"})).await;
    let r = app
        .post_json(
            "/v1/qr",
            &json!({"url": "a.com", "format": "svg"}).to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let metrics = app.metrics_text("metrics-token-for-tests").await;
    assert!(
        metrics.contains("qrlp_qr_generated_total{format=\"png\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("qrlp_qr_generated_total{format=\"svg\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "qrlp_http_requests_total{route=\"/v1/qr\",method=\"POST\",status=\"200\"} 3\n"
        ),
        "{metrics}"
    );
}
