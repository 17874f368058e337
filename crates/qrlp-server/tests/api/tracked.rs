//! Tracked QR codes (issue 13) over TCP: seed 004's image endpoints (every parameter,
//! default, status and header; exact sizes decoded by zxing-cpp and rqrr; SVG rasterised by
//! resvg; the business vCard parsed), counting through `/r/{slug}` on SQLite and PostgreSQL,
//! bots apart, a local midnight in New York, the cache across two servers, privacy of the
//! client address, and isolation between organizations on every route.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qrlp_config::Config;
use qrlp_store::qr_model::{ScanRecord, ScanSource};
use qrlp_store::{NewApiKeyMaterial, Plan, Store, StoreConfig};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{decode_png, read_qr, TestApp};

/// The address redirect requests come from: a loopback address no other request uses, so
/// that finding it anywhere (database, responses) is a leak.
const SCANNER_IP: &str = "127.77.88.99";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

/// 100 user agents of link previewers, mail scanners and crawlers (25 kinds, 4 versions
/// each).
fn previewer_agents() -> Vec<String> {
    let kinds = [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "WhatsApp/2.23.20.0 A",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discord.com)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)",
        "redditbot/1.0",
        "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
        "Iframely/1.3.1 (+https://iframely.com/docs/about)",
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
        "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (compatible; DuckDuckBot-Https/1.1; https://duckduckgo.com/duckduckbot)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Slackbot 1.0 (+https://api.slack.com/robots)",
    ];
    kinds
        .iter()
        .flat_map(|k| (0..4).map(move |i| format!("{k} v{i}")))
        .collect()
}

struct Harness {
    app: TestApp,
    store: Store,
    /// Every response body read, to search for the client address.
    seen: std::sync::Mutex<Vec<u8>>,
    scanner: reqwest::Client,
    data_dir: Option<PathBuf>,
}

struct Org {
    id: String,
    key: String,
}

impl Harness {
    async fn sqlite() -> Harness {
        Harness::sqlite_with(Config::default()).await
    }

    async fn sqlite_with(config: Config) -> Harness {
        let app = TestApp::start_with(config, axum::Router::new()).await;
        let dir = app.data_dir.as_ref().unwrap().path().to_path_buf();
        let store = Store::open(&StoreConfig {
            database_url: None,
            data_dir: dir.clone(),
            max_connections: 2,
        })
        .await
        .unwrap();
        Harness::with(app, store, Some(dir))
    }

    /// A server on PostgreSQL in a schema of its own, or `None` (with a notice) when
    /// `QRLP_TEST_POSTGRES_URL` is unset.
    async fn postgres() -> Option<Harness> {
        Harness::postgres_with(Config::default()).await
    }

    /// [`Harness::postgres`] with `config`.
    async fn postgres_with(config: Config) -> Option<Harness> {
        let url = match std::env::var("QRLP_TEST_POSTGRES_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => {
                eprintln!("SKIPPED postgres: QRLP_TEST_POSTGRES_URL not set");
                return None;
            }
        };
        let schema = format!("qrlp_i13_{}", Uuid::now_v7().simple());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("PostgreSQL reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut config = config;
        config.storage.database_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let app = TestApp::start_with(config, axum::Router::new()).await;
        let store = Store::open_postgres_with_schema(&url, &schema)
            .await
            .unwrap();
        Some(Harness::with(app, store, None))
    }

    fn with(app: TestApp, store: Store, data_dir: Option<PathBuf>) -> Harness {
        let scanner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(SCANNER_IP.parse::<IpAddr>().unwrap())
            .build()
            .unwrap();
        Harness {
            app,
            store,
            seen: std::sync::Mutex::new(Vec::new()),
            scanner,
            data_dir,
        }
    }

    async fn org(&self, name: &str) -> Org {
        let key = qrlp_store::secret::generate_api_key();
        let done = self
            .store
            .bootstrap(
                name,
                Plan::Enterprise,
                &format!("owner@{}.example", name.to_lowercase()),
                "Owner",
                NewApiKeyMaterial {
                    name: "bootstrap".into(),
                    prefix: key.prefix.clone(),
                    hash: key.hash,
                },
            )
            .await
            .unwrap();
        Org {
            id: done.organization.id.to_string(),
            key: key.secret.clone(),
        }
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("x-api-key", key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self.raw(method, path, key, body, &[]).await;
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        self.seen.lock().unwrap().extend_from_slice(&bytes);
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, v)
    }

    async fn ok(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, v) = self.call(method.clone(), path, key, body).await;
        assert_eq!(got, status, "{method} {path}: {v}");
        v
    }

    async fn create(&self, org: &Org, label: &str, target: &str) -> Value {
        self.ok(
            Method::POST,
            &format!("/api/organizations/{}/qr-codes", org.id),
            &org.key,
            Some(json!({"label": label, "target_url": target})),
            201,
        )
        .await
    }

    /// Follows nothing: one request to the short link from [`SCANNER_IP`].
    async fn scan(&self, method: Method, link: &str, ua: &str) -> reqwest::Response {
        let url = link.replace("http://127.0.0.1:0", &format!("http://{}", self.app.addr));
        let r = self
            .scanner
            .request(method, url)
            .header("user-agent", ua)
            .header("referer", "https://www.news.example/story?id=7")
            .send()
            .await
            .unwrap();
        r
    }

    /// Waits until the code's totals reach `scans` and `bots` (the recorder writes every
    /// 250 ms).
    async fn wait_totals(&self, org: &Org, id: &str, scans: u64, bots: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self
                .ok(
                    Method::GET,
                    &format!("/api/organizations/{}/qr-codes/{id}", org.id),
                    &org.key,
                    None,
                    200,
                )
                .await;
            let t = &v["totals"];
            if (t["scans"] == scans && t["bots"] == bots) || Instant::now() > deadline {
                assert_eq!(
                    (t["scans"].as_u64(), t["bots"].as_u64()),
                    (Some(scans), Some(bots)),
                    "{v}"
                );
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The short link with the server's real address (the configured base has port 0 replaced
/// by the bound one).
fn link(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap().to_string()
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Rasterises an SVG with resvg at its own size into a PNG file.
fn rasterise(svg: &str, out: &Path) -> (u32, u32) {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default())
        .expect("well-formed SVG");
    let size = tree.size().to_int_size();
    let (w, h) = (size.width(), size.height());
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    let file = std::fs::File::create(out).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(pixmap.data()).unwrap();
    (w, h)
}

#[tokio::test]
async fn seed_004_images_parameters_headers_exact_sizes_and_decoding() {
    let h = Harness::sqlite().await;
    let org = h.org("Imaging").await;
    let other = h.org("Elsewhere").await;
    let code = h
        .create(&org, "Spring \"sale\"/2026", "example.com/a#top")
        .await;
    let id = code["id"].as_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(code["target_url"], "https://example.com/a");
    let slug = code["slug"].as_str().unwrap();
    assert!(
        slug.len() >= 7 && slug.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{slug}"
    );
    let qr_content = link(&code, "qr_content");
    assert_eq!(qr_content, format!("http://{}/r/{slug}?q", h.app.addr));
    assert_eq!(
        link(&code, "short_link"),
        format!("http://{}/r/{slug}", h.app.addr)
    );

    let image = format!("/api/organizations/{}/qr-codes/{id}/image", org.id);
    // Defaults: PNG, 300 px, M.
    let r = h.raw(Method::GET, &image, &org.key, None, &[]).await;
    assert_eq!(r.status(), 200);
    let hd = r.headers().clone();
    assert_eq!(hd["content-type"], "image/png");
    assert_eq!(hd["cache-control"], "public, max-age=86400");
    assert_eq!(
        hd["content-disposition"],
        "inline; filename=\"Spring-sale-2026.png\""
    );
    let etag = hd["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    let png = r.bytes().await.unwrap();
    let img = decode_png(&png);
    assert_eq!((img.width, img.height), (300, 300));
    assert_eq!(read_qr(&img).1, qr_content);
    let explicit = h
        .raw(
            Method::GET,
            &format!("{image}?format=png&size=300&error_correction=M"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(
        explicit.headers()["etag"].to_str().unwrap(),
        etag,
        "defaults are 300 and M"
    );
    // 304 on If-None-Match, with the tag and caching headers.
    let r = h
        .raw(
            Method::GET,
            &image,
            &org.key,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["cache-control"], "public, max-age=86400");
    assert!(r.bytes().await.unwrap().is_empty());

    // Exact sizes, every level; decoded by rqrr here and zxing-cpp below.
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut tags = std::collections::HashSet::new();
    for size in [100u32, 300, 500, 1000, 2000] {
        for ecc in ["L", "M", "Q", "H"] {
            let r = h
                .raw(
                    Method::GET,
                    &format!("{image}?size={size}&error_correction={ecc}"),
                    &org.key,
                    None,
                    &[],
                )
                .await;
            assert_eq!(r.status(), 200, "{size} {ecc}");
            assert!(tags.insert(r.headers()["etag"].to_str().unwrap().to_string()));
            let bytes = r.bytes().await.unwrap();
            let img = decode_png(&bytes);
            assert_eq!(
                (img.width as u32, img.height as u32),
                (size, size),
                "exact size"
            );
            if size <= 500 {
                assert_eq!(read_qr(&img).1, qr_content, "rqrr {size} {ecc}");
            }
            files.push(write_temp(tmp.path(), &format!("t{size}{ecc}.png"), &bytes));
        }
    }
    // SVG: well-formed, exact size, decodes after rasterising.
    let r = h
        .raw(
            Method::GET,
            &format!("{image}?format=svg&size=400"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        r.headers()["content-disposition"],
        "inline; filename=\"Spring-sale-2026.svg\""
    );
    let svg = r.text().await.unwrap();
    let svg_png = tmp.path().join("svg.png");
    assert_eq!(rasterise(&svg, &svg_png), (400, 400));
    files.push(svg_png);

    // 400s with the seed's messages; 404 for an unknown code; 403 on another's path.
    for (q, msg) in [
        ("format=gif", "Invalid format. Choose png or svg"),
        ("size=99", "size must be between 100 and 2000"),
        ("size=2001", "size must be between 100 and 2000"),
        ("size=abc", "size must be between 100 and 2000"),
        ("size=300.5", "size must be between 100 and 2000"),
        (
            "error_correction=X",
            "Invalid error correction. Choose L, M, Q, H",
        ),
        (
            "error_correction=",
            "Invalid error correction. Choose L, M, Q, H",
        ),
    ] {
        let (status, v) = h
            .call(Method::GET, &format!("{image}?{q}"), &org.key, None)
            .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("INVALID_INPUT")),
            "{q}: {v}"
        );
        assert_eq!(v["message"], msg, "{q}");
        assert!(v["request_id"].is_string());
    }
    let unknown = format!(
        "/api/organizations/{}/qr-codes/{}/image",
        org.id,
        Uuid::now_v7()
    );
    assert_eq!(h.call(Method::GET, &unknown, &org.key, None).await.0, 404);
    assert_eq!(h.call(Method::GET, &image, &other.key, None).await.0, 403);
    let r = h.app.client.get(h.app.url(&image)).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A new target leaves the image as it was.
    h.ok(
        Method::PATCH,
        &format!("/api/organizations/{}/qr-codes/{id}", org.id),
        &org.key,
        Some(json!({"target_url": "https://example.org/new"})),
        200,
    )
    .await;
    let r = h.raw(Method::GET, &image, &org.key, None, &[]).await;
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.bytes().await.unwrap(), png);

    // The business code: defaults 500 px and Q, a vCard 3.0 of the edited card.
    let business = format!("/api/organizations/{}/qr-business", org.id);
    let card = h.ok(Method::GET, &business, &org.key, None, 200).await;
    assert_eq!(card["name"], "Imaging");
    assert!(card["updated_at"].is_null());
    let card = h
        .ok(
            Method::PUT,
            &business,
            &org.key,
            Some(json!({
                "name": "Imaging, Ltd; est. 1999",
                "phone": "+33 1 23 45 67 89",
                "email": "hello@imaging.example",
                "website": "imaging.example/contact",
                "address": "12 Rue de la Paix\n75002 Paris, France"
            })),
            200,
        )
        .await;
    assert_eq!(card["website"], "https://imaging.example/contact");
    let vcard = card["vcard"].as_str().unwrap().to_string();
    let r = h
        .raw(
            Method::GET,
            &format!("{business}/image"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=86400");
    assert_eq!(
        r.headers()["content-disposition"],
        "inline; filename=\"Imaging-Ltd-est.-1999.png\""
    );
    let btag = r.headers()["etag"].to_str().unwrap().to_string();
    let bpng = r.bytes().await.unwrap();
    let bimg = decode_png(&bpng);
    assert_eq!((bimg.width, bimg.height), (500, 500));
    let explicit = h
        .raw(
            Method::GET,
            &format!("{business}/image?size=500&error_correction=Q"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(
        explicit.headers()["etag"].to_str().unwrap(),
        btag,
        "defaults are 500 and Q"
    );
    let r = h
        .raw(
            Method::GET,
            &format!("{business}/image"),
            &org.key,
            None,
            &[("if-none-match", &btag)],
        )
        .await;
    assert_eq!(r.status(), 304);
    let (status, v) = h
        .call(
            Method::GET,
            &format!("{business}/image?size=5000"),
            &org.key,
            None,
        )
        .await;
    assert_eq!(
        (status, v["message"].as_str()),
        (400, Some("size must be between 100 and 2000"))
    );
    assert_eq!(
        h.call(Method::GET, &format!("{business}/image"), &other.key, None)
            .await
            .0,
        403
    );
    let bfile = write_temp(tmp.path(), "business.png", &bpng);
    let r = h
        .raw(
            Method::GET,
            &format!("{business}/image?format=svg"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let bsvg = tmp.path().join("business-svg.png");
    rasterise(&r.text().await.unwrap(), &bsvg);

    // The vCard parses as 3.0 with the edited fields, escapes undone.
    let mut parser = ical::VcardParser::new(std::io::BufReader::new(vcard.as_bytes()));
    let contact = parser.next().expect("one vCard").expect("parses");
    let prop = |name: &str| {
        contact
            .properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.clone())
            .unwrap_or_else(|| panic!("{name} in {vcard}"))
    };
    assert_eq!(prop("VERSION"), "3.0");
    assert_eq!(prop("FN"), "Imaging\\, Ltd\\; est. 1999");
    assert_eq!(prop("TEL"), "+33 1 23 45 67 89");
    assert_eq!(prop("EMAIL"), "hello@imaging.example");
    assert_eq!(prop("URL"), "https://imaging.example/contact");
    assert_eq!(
        prop("ADR"),
        ";;12 Rue de la Paix\\n75002 Paris\\, France;;;;"
    );

    // zxing-cpp reads every PNG and the rasterised SVGs exactly.
    if qrlp_conformance::zxing::ready("seed_004_images") {
        let mut all = files.clone();
        all.push(bfile);
        all.push(bsvg);
        let read = qrlp_conformance::zxing::read("QRCode", &all, 2);
        for (path, got) in all.iter().zip(read) {
            let want = if path.to_string_lossy().contains("business") {
                vcard.as_str()
            } else {
                qr_content.as_str()
            };
            let got = got.unwrap_or_else(|| panic!("zxing-cpp read nothing in {}", path.display()));
            assert_eq!(
                got.text.replace("\r\n", "\n"),
                want.replace("\r\n", "\n"),
                "{}",
                path.display()
            );
        }
    }
}

/// 1,000 scans, 100 previewers, HEAD, the timeline, the breakdown, the CSV, target changes,
/// archive and restore: on one backend.
async fn counting(h: &Harness) {
    let org = h.org("Counting").await;
    let code = h
        .create(&org, "Poster", "https://example.com/landing")
        .await;
    let id = code["id"].as_str().unwrap().to_string();
    let qr = link(&code, "qr_content");
    let plain = link(&code, "short_link");
    let base = format!("/api/organizations/{}/qr-codes/{id}", org.id);

    let r = h.scan(Method::GET, &qr, IPHONE).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "https://example.com/landing");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.bytes().await.unwrap().is_empty());
    let scans =
        futures_util::future::join_all((1..1000).map(|_| h.scan(Method::GET, &qr, IPHONE))).await;
    assert!(scans.iter().all(|r| r.status() == 302));
    for ua in previewer_agents() {
        assert_eq!(h.scan(Method::GET, &qr, &ua).await.status(), 302, "{ua}");
    }
    for _ in 0..5 {
        let r = h.scan(Method::HEAD, &qr, IPHONE).await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "https://example.com/landing");
    }
    let v = h.wait_totals(&org, &id, 1000, 100).await;
    assert_eq!(
        v["totals"]["unique_visitors"], 1,
        "one phone, one network, one day"
    );

    let t = h
        .ok(
            Method::GET,
            &format!("{base}/timeline?period=7d"),
            &org.key,
            None,
            200,
        )
        .await;
    let days = t["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert_eq!(days[6]["date"], today.as_str());
    assert_eq!(
        (days[6]["scans"].as_u64(), days[6]["bots"].as_u64()),
        (Some(1000), Some(100))
    );
    assert!(days[..6]
        .iter()
        .all(|d| d["scans"] == 0 && d["unique_visitors"] == 0));
    assert_eq!(t["tz"], "UTC");
    for period in ["30d", "90d", "1y"] {
        let t = h
            .ok(
                Method::GET,
                &format!("{base}/timeline?period={period}&tz=Europe/Paris"),
                &org.key,
                None,
                200,
            )
            .await;
        assert_eq!(t["totals"]["scans"], 1000, "{period}");
    }
    for bad in ["period=2w", "tz=Mars/Olympus", "tz=../../etc/passwd"] {
        assert_eq!(
            h.call(
                Method::GET,
                &format!("{base}/timeline?{bad}"),
                &org.key,
                None
            )
            .await
            .0,
            400,
            "{bad}"
        );
    }

    let b = h
        .ok(
            Method::GET,
            &format!("{base}/breakdown"),
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(b["scans"], 1000);
    assert_eq!(b["devices"], json!([{"value": "mobile", "count": 1000}]));
    assert_eq!(b["os"], json!([{"value": "iPhone", "count": 1000}]));
    assert_eq!(b["browsers"], json!([{"value": "Safari", "count": 1000}]));
    assert_eq!(
        b["referrers"],
        json!([{"value": "news.example", "count": 1000}])
    );
    assert_eq!(b["sources"], json!([{"value": "qr", "count": 1000}]));
    assert_eq!(b["bots"]["total"], 100);

    // The plain link counts as a link visit; a new target takes effect on the next scan.
    h.ok(Method::PATCH, &base, &org.key, Some(json!({"target_url": "https://example.com/v2", "utm": {"source": "poster", "campaign": "spring sale"}})), 200).await;
    let r = h.scan(Method::GET, &plain, IPHONE).await;
    assert_eq!(
        r.headers()["location"],
        "https://example.com/v2?utm_source=poster&utm_campaign=spring%20sale"
    );
    h.wait_totals(&org, &id, 1001, 100).await;
    let b = h
        .ok(
            Method::GET,
            &format!("{base}/breakdown?period=7d"),
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(
        b["sources"],
        json!([{"value": "qr", "count": 1000}, {"value": "link", "count": 1}])
    );

    // Archive: 410 page; restore: 302 again. Unknown slugs: 404 page.
    h.ok(
        Method::POST,
        &format!("{base}/archive"),
        &org.key,
        None,
        200,
    )
    .await;
    let r = h.scan(Method::GET, &qr, IPHONE).await;
    assert_eq!(r.status(), 410);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let listed = h
        .ok(
            Method::GET,
            &format!("/api/organizations/{}/qr-codes", org.id),
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(
        listed["pagination"]["total"], 0,
        "archived codes are hidden by default"
    );
    let listed = h
        .ok(
            Method::GET,
            &format!(
                "/api/organizations/{}/qr-codes?include_archived=true",
                org.id
            ),
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(listed["qr_codes"][0]["totals"]["scans"], 1001);
    h.ok(
        Method::POST,
        &format!("{base}/restore"),
        &org.key,
        None,
        200,
    )
    .await;
    assert_eq!(h.scan(Method::GET, &qr, IPHONE).await.status(), 302);
    for missing in ["ZZZZZZZZZZ", "short", "has-dash-123", &"x".repeat(40)] {
        let r = h
            .scan(
                Method::GET,
                &format!("http://{}/r/{missing}", h.app.addr),
                IPHONE,
            )
            .await;
        assert_eq!(r.status(), 404, "{missing}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    h.wait_totals(&org, &id, 1002, 100).await;

    // The export: a header and one line per scan, addresses anonymised.
    let r = h
        .raw(
            Method::GET,
            &format!("{base}/scans.csv"),
            &org.key,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "scanned_at,address,device,os,browser,referrer,source,visitor,first_visit"
    );
    assert_eq!(lines.len(), 1 + 1002);
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.split(',').nth(1) == Some("127.77.88.0")),
        "{}",
        lines[1]
    );
    h.seen.lock().unwrap().extend_from_slice(csv.as_bytes());

    // Opt-outs: no referrer, then no tracking at all.
    let settings = format!("/api/organizations/{}/qr-tracking", org.id);
    h.ok(
        Method::PUT,
        &settings,
        &org.key,
        Some(
            json!({"tracking_enabled": true, "record_referrer": false, "record_user_agent": false}),
        ),
        200,
    )
    .await;
    assert_eq!(h.scan(Method::GET, &qr, IPHONE).await.status(), 302);
    h.wait_totals(&org, &id, 1003, 100).await;
    let b = h
        .ok(
            Method::GET,
            &format!("{base}/breakdown"),
            &org.key,
            None,
            200,
        )
        .await;
    assert!(
        b["referrers"]
            .as_array()
            .unwrap()
            .contains(&json!({"value": "(direct)", "count": 1})),
        "{b}"
    );
    assert!(
        b["devices"]
            .as_array()
            .unwrap()
            .contains(&json!({"value": "unknown", "count": 1})),
        "{b}"
    );
    h.ok(
        Method::PUT,
        &settings,
        &org.key,
        Some(
            json!({"tracking_enabled": false, "record_referrer": true, "record_user_agent": true}),
        ),
        200,
    )
    .await;
    for _ in 0..10 {
        assert_eq!(h.scan(Method::GET, &qr, IPHONE).await.status(), 302);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.wait_totals(&org, &id, 1003, 100).await;

    // Every change was audited.
    let audit = h
        .ok(Method::GET, "/api/v1/audit?size=100", &org.key, None, 200)
        .await;
    let actions: Vec<&str> = audit["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for a in [
        "qr_code.create",
        "qr_code.update",
        "qr_code.archive",
        "qr_code.restore",
        "qr_tracking.update",
    ] {
        assert!(actions.contains(&a), "{a} in {audit}");
    }
    // The client's full address is in no response.
    let seen = h.seen.lock().unwrap();
    assert!(
        !contains(&seen, SCANNER_IP.as_bytes()),
        "a response carried the client address"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn counting_on_sqlite_with_bots_apart_and_no_full_address_in_the_database() {
    let mut config = Config::default();
    config.metrics.token = "metrics-token-for-tracked-tests".into();
    let h = Harness::sqlite_with(config).await;
    counting(&h).await;
    // The recorder's series say the same: the test's 1,003 counted scans and 100 bot
    // visits (no HEAD, nothing while tracking was off or the code archived), all stored,
    // none dropped, no write failed.
    let metrics = h.app.metrics_text("metrics-token-for-tracked-tests").await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert_eq!(value("qrlp_scans_accepted_total"), 1103.0);
    assert_eq!(value("qrlp_scans_recorded_total"), 1003.0);
    assert_eq!(value("qrlp_scan_bot_visits_total"), 100.0);
    assert_eq!(value("qrlp_scans_dropped_total"), 0.0);
    assert_eq!(value("qrlp_scan_write_failures_total"), 0.0);
    assert!(value("qrlp_scan_writes_total") >= 1.0, "{metrics}");
    assert!(value("qrlp_scan_write_seconds_total") > 0.0, "{metrics}");
    assert!(
        metrics.contains("# TYPE qrlp_scan_write_longest_seconds gauge\n"),
        "{metrics}"
    );
    // The database files (and WAL) never saw the full address.
    let dir = h.data_dir.clone().unwrap();
    h.app
        .client
        .get(h.app.url("/healthz"))
        .send()
        .await
        .unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, SCANNER_IP.as_bytes()),
            "{} holds the client address",
            path.display()
        );
        // Stored as text: the anonymised form is there, the full one is not.
    }
}

#[tokio::test]
async fn counting_on_postgres() {
    let Some(h) = Harness::postgres().await else {
        return;
    };
    counting(&h).await;
}

/// Every read of a code (its totals, the list, the timeline, the breakdown, the export)
/// counts each scan once, whether its roll-up was written by its own batch (before any
/// roll-up step, or made before the mark) or by a roll-up step, and whether that step has
/// run yet. The server's own roll-up task runs meanwhile, so every check holds at any
/// interleaving; after a step past every scan the roll-up tables alone answer, so a scan
/// rolled up twice would show.
async fn rolled_up_once(h: &Harness) {
    let org = h.org("Roll-ups").await;
    let code = h.create(&org, "Rolled", "https://example.com").await;
    let id = code["id"].as_str().unwrap().to_string();
    let code_id = Uuid::parse_str(&id).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let scan = |ago: i64, browser: &str| ScanRecord {
        id: Uuid::now_v7(),
        qr_code_id: code_id,
        at: now - time::Duration::seconds(ago),
        address: "203.0.113.0".into(),
        device: "mobile".into(),
        os: "iPhone".into(),
        browser: browser.into(),
        referrer: None,
        source: ScanSource::Qr,
        visitor: [ago as u8; 16],
    };
    let base = format!("/api/organizations/{}/qr-codes/{id}", org.id);
    let check = |scans: u64, safari: u64, last_ago: i64| {
        let base = base.clone();
        let org = &org;
        async move {
            let v = h.ok(Method::GET, &base, &org.key, None, 200).await;
            assert_eq!(v["totals"]["scans"], scans, "{v}");
            // Each scan is a new visitor (visitor hashes all differ).
            assert_eq!(v["totals"]["unique_visitors"], scans, "{v}");
            let last = time::OffsetDateTime::parse(
                v["totals"]["last_scan_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert!(
                (last - (now - time::Duration::seconds(last_ago))).abs()
                    < time::Duration::seconds(1),
                "{v}"
            );
            let list = h
                .ok(
                    Method::GET,
                    &format!("/api/organizations/{}/qr-codes", org.id),
                    &org.key,
                    None,
                    200,
                )
                .await;
            assert_eq!(list["qr_codes"][0]["totals"]["scans"], scans, "{list}");
            let t = h
                .ok(
                    Method::GET,
                    &format!("{base}/timeline?period=7d"),
                    &org.key,
                    None,
                    200,
                )
                .await;
            assert_eq!(t["totals"]["scans"], scans, "{t}");
            let day_sum: u64 = t["days"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["scans"].as_u64().unwrap())
                .sum();
            assert_eq!(day_sum, scans, "{t}");
            let b = h
                .ok(
                    Method::GET,
                    &format!("{base}/breakdown?period=7d"),
                    &org.key,
                    None,
                    200,
                )
                .await;
            assert_eq!(b["scans"], scans, "{b}");
            assert_eq!(
                b["devices"],
                json!([{"value": "mobile", "count": scans}]),
                "{b}"
            );
            let found = b["browsers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["value"] == "Safari")
                .map_or(0, |x| x["count"].as_u64().unwrap());
            assert_eq!(found, safari, "{b}");
            let csv = h
                .raw(
                    Method::GET,
                    &format!("{base}/scans.csv"),
                    &org.key,
                    None,
                    &[],
                )
                .await
                .text()
                .await
                .unwrap();
            assert_eq!(csv.lines().count() as u64, 1 + scans, "{csv}");
        }
    };
    // Rolled up by their batch (no step yet, or made before the mark).
    h.store
        .record_scans(&[scan(600, "Safari"), scan(590, "Safari")], &[])
        .await
        .unwrap();
    h.store
        .roll_up_scans(now - time::Duration::seconds(300))
        .await
        .unwrap();
    // After the mark (unless the server's task has moved it past them since).
    h.store
        .record_scans(
            &[scan(60, "Chrome"), scan(50, "Safari"), scan(40, "Safari")],
            &[],
        )
        .await
        .unwrap();
    check(5, 4, 40).await;
    // Late: made before the mark, stored after it moved.
    h.store
        .record_scans(&[scan(900, "Safari")], &[])
        .await
        .unwrap();
    check(6, 5, 40).await;
    // A step past every scan: the roll-up tables alone hold them, each once.
    h.store
        .roll_up_scans(now + time::Duration::hours(1))
        .await
        .unwrap();
    check(6, 5, 40).await;
    h.store
        .record_scans(&[scan(10, "Safari")], &[])
        .await
        .unwrap();
    check(7, 6, 10).await;
    // A retried batch holding a scan already stored and a new one: only the new one counts.
    let again = scan(5, "Safari");
    let out = h
        .store
        .record_scans(std::slice::from_ref(&again), &[])
        .await
        .unwrap();
    assert_eq!(out.scans, 1);
    check(8, 7, 5).await;
    let out = h
        .store
        .record_scans(&[again, scan(4, "Chrome")], &[])
        .await
        .unwrap();
    assert_eq!(out.scans, 1, "the scan stored before is not counted again");
    check(9, 7, 4).await;
    // Steps with nothing new change nothing.
    h.store
        .roll_up_scans(now + time::Duration::hours(2))
        .await
        .unwrap();
    check(9, 7, 4).await;
}

#[tokio::test]
async fn scans_are_rolled_up_once_and_read_exactly_on_sqlite() {
    rolled_up_once(&Harness::sqlite().await).await;
}

#[tokio::test]
async fn scans_are_rolled_up_once_and_read_exactly_on_postgres() {
    let Some(h) = Harness::postgres().await else {
        return;
    };
    rolled_up_once(&h).await;
}

#[tokio::test]
async fn a_scan_just_before_and_after_midnight_in_new_york_lands_on_its_local_day() {
    let h = Harness::sqlite().await;
    let org = h.org("Midnight").await;
    let code = h.create(&org, "Night", "https://example.com").await;
    let id = code["id"].as_str().unwrap();
    let code_id = Uuid::parse_str(id).unwrap();
    // A New York midnight two to three days ago, found by the timeline's own day bounds.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let line = qrlp_tracking::timeline::Timeline::new(
        qrlp_tracking::timeline::Period::Days7,
        Some("America/New_York"),
        now,
    )
    .unwrap();
    let (start, _) = line.range();
    let mut midnight = start + 2 * 86_400;
    while line.day_of(midnight - 1) == line.day_of(midnight) {
        midnight += 900;
    }
    let local_day = line.day_of(midnight).unwrap();
    let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    let scan = |t: i64| ScanRecord {
        id: Uuid::now_v7(),
        qr_code_id: code_id,
        at: at(t),
        address: "203.0.113.0".into(),
        device: "mobile".into(),
        os: "iPhone".into(),
        browser: "Safari".into(),
        referrer: None,
        source: ScanSource::Qr,
        visitor: [7; 16],
    };
    let before = scan(midnight - 60);
    let after = scan(midnight + 60);
    let out = h
        .store
        .record_scans(&[before.clone(), after], &[])
        .await
        .unwrap();
    assert_eq!(out.scans, 2);
    // The same scan stored again is not counted again.
    assert_eq!(h.store.record_scans(&[before], &[]).await.unwrap().scans, 0);

    let path = format!(
        "/api/organizations/{}/qr-codes/{id}/timeline?period=7d",
        org.id
    );
    let ny = h
        .ok(
            Method::GET,
            &format!("{path}&tz=America/New_York"),
            &org.key,
            None,
            200,
        )
        .await;
    assert_eq!(ny["tz"], "America/New_York");
    let days = ny["days"].as_array().unwrap();
    assert_eq!(
        days[local_day - 1]["scans"],
        1,
        "23:59 local: the day before midnight"
    );
    assert_eq!(
        days[local_day]["scans"], 1,
        "00:01 local: the day of midnight"
    );
    assert_eq!(ny["totals"]["scans"], 2);
    // In UTC both fall on the same day (midnight in New York is 04:00 or 05:00 UTC).
    let utc = h.ok(Method::GET, &path, &org.key, None, 200).await;
    let utc_days: Vec<u64> = utc["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["scans"].as_u64().unwrap())
        .collect();
    assert_eq!(
        utc_days.iter().filter(|&&n| n == 2).count(),
        1,
        "{utc_days:?}"
    );
}

#[tokio::test]
async fn a_target_changed_on_one_server_is_followed_by_another_within_a_second() {
    let a = Harness::sqlite().await;
    let dir = a.data_dir.clone().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.display().to_string();
    let b = TestApp::start_with(config, axum::Router::new()).await;
    let org = a.org("TwoNodes").await;
    let code = a.create(&org, "Shared", "https://example.com/one").await;
    let slug = code["slug"].as_str().unwrap();
    let on_b = format!("http://{}/r/{slug}", b.addr);
    assert_eq!(
        a.scan(Method::GET, &on_b, IPHONE).await.headers()["location"],
        "https://example.com/one"
    );
    a.ok(
        Method::PATCH,
        &format!(
            "/api/organizations/{}/qr-codes/{}",
            org.id,
            code["id"].as_str().unwrap()
        ),
        &org.key,
        Some(json!({"target_url": "https://example.com/two"})),
        200,
    )
    .await;
    let changed = Instant::now();
    loop {
        let loc = a.scan(Method::GET, &on_b, IPHONE).await.headers()["location"].clone();
        if loc == "https://example.com/two" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "server B still redirects to the old target"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn another_organization_gets_404_by_id_and_403_under_its_path_on_every_route() {
    let h = Harness::sqlite().await;
    let a = h.org("OwnerOrg").await;
    let b = h.org("OtherOrg").await;
    let code = h.create(&a, "Mine", "https://example.com").await;
    let id = code["id"].as_str().unwrap();
    let body = |m: &Method, p: &str| -> Option<Value> {
        match (m.as_str(), p) {
            ("POST", "qr-codes") => Some(json!({"label": "x", "target_url": "https://x.example"})),
            ("PATCH", _) => Some(json!({"label": "stolen"})),
            ("PUT", "qr-business") => Some(json!({"name": "x"})),
            ("PUT", "qr-tracking") => Some(
                json!({"tracking_enabled": false, "record_referrer": false, "record_user_agent": false}),
            ),
            _ => None,
        }
    };
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "qr-codes".into()),
        (Method::POST, "qr-codes".into()),
        (Method::GET, format!("qr-codes/{id}")),
        (Method::PATCH, format!("qr-codes/{id}")),
        (Method::POST, format!("qr-codes/{id}/archive")),
        (Method::POST, format!("qr-codes/{id}/restore")),
        (Method::GET, format!("qr-codes/{id}/image")),
        (Method::GET, format!("qr-codes/{id}/timeline")),
        (Method::GET, format!("qr-codes/{id}/breakdown")),
        (Method::GET, format!("qr-codes/{id}/scans.csv")),
        (Method::GET, "qr-business".into()),
        (Method::PUT, "qr-business".into()),
        (Method::GET, "qr-business/image".into()),
        (Method::GET, "qr-tracking".into()),
        (Method::PUT, "qr-tracking".into()),
    ];
    for prefix in ["/api/organizations", "/api/v1/organizations"] {
        for (m, p) in &routes {
            // B's key under A's path: 403.
            let (status, v) = h
                .call(
                    m.clone(),
                    &format!("{prefix}/{}/{p}", a.id),
                    &b.key,
                    body(m, p),
                )
                .await;
            assert_eq!(status, 403, "{m} {prefix}/A/{p}: {v}");
            assert_eq!(v["code"], "FORBIDDEN");
            // B's key under B's path with A's code id: 404.
            if p.contains(id) {
                let (status, v) = h
                    .call(
                        m.clone(),
                        &format!("{prefix}/{}/{p}", b.id),
                        &b.key,
                        body(m, p),
                    )
                    .await;
                assert_eq!(status, 404, "{m} {prefix}/B/{p}: {v}");
            }
            // No credentials: 401.
            let r = h
                .app
                .client
                .request(m.clone(), h.app.url(&format!("{prefix}/{}/{p}", a.id)))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{m} {p}");
        }
    }
    // Nothing of A's changed.
    let v = h
        .ok(
            Method::GET,
            &format!("/api/organizations/{}/qr-codes/{id}", a.id),
            &a.key,
            None,
            200,
        )
        .await;
    assert_eq!(v["label"], "Mine");
    assert_eq!(v["archived"], false);
}

/// The `qr.*` webhook events: `qr.created`, `qr.updated` (with the changed fields) and
/// `qr.archived` reach a `*` endpoint; `qr.scan` is chatty, so only an endpoint that names it
/// receives one per human scan (bots are not reported), and the `*` endpoint none.
#[tokio::test]
async fn qr_events_reach_subscribed_endpoints_and_scans_only_by_name() {
    let h = Harness::sqlite_with(crate::webhooks::fast_config()).await;
    qr_events_by_name(&h).await;
}

/// On PostgreSQL an event and its fan-out are one statement: the same rules must hold.
#[tokio::test]
async fn qr_events_reach_subscribed_endpoints_and_scans_only_by_name_on_postgres() {
    let Some(h) = Harness::postgres_with(crate::webhooks::fast_config()).await else {
        return;
    };
    qr_events_by_name(&h).await;
}

async fn qr_events_by_name(h: &Harness) {
    use crate::webhooks::Receiver;
    let org = h.org("Hooks").await;
    let (all, addr) = Receiver::start(&[]).await;
    let (scans, scan_addr) = Receiver::start(&[]).await;
    for (url, events) in [
        (format!("http://{addr}/hook"), json!(["*"])),
        (format!("http://{scan_addr}/hook"), json!(["qr.scan"])),
    ] {
        h.ok(
            Method::POST,
            "/api/v1/webhooks",
            &org.key,
            Some(json!({"url": url, "events": events})),
            201,
        )
        .await;
    }
    let types = h
        .ok(
            Method::GET,
            "/api/v1/webhooks/event-types",
            &org.key,
            None,
            200,
        )
        .await;
    let scan_type = types["eventTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "qr.scan")
        .cloned()
        .unwrap();
    assert_eq!(scan_type["inWildcard"], false, "{types}");

    let code = h.create(&org, "Menu", "https://menu.example/a").await;
    let id = link(&code, "id");
    h.ok(
        Method::PATCH,
        &format!("/api/organizations/{}/qr-codes/{id}", org.id),
        &org.key,
        Some(json!({"target_url": "https://menu.example/b"})),
        200,
    )
    .await;
    let qr = link(&code, "qr_content");
    for ua in [
        IPHONE,
        IPHONE,
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ] {
        assert_eq!(h.scan(Method::GET, &qr, ua).await.status(), 302);
    }
    h.wait_totals(&org, &id, 2, 1).await;
    h.ok(
        Method::POST,
        &format!("/api/organizations/{}/qr-codes/{id}/archive", org.id),
        &org.key,
        None,
        200,
    )
    .await;

    all.wait_for(3, Duration::from_secs(10)).await;
    scans.wait_for(2, Duration::from_secs(10)).await;
    // Nothing else arrives: no scan event at the `*` endpoint, no bot at either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = |r: &Receiver| -> Vec<Value> {
        r.got
            .lock()
            .unwrap()
            .iter()
            .map(|g| serde_json::from_str(&g.body).unwrap())
            .collect()
    };
    let general = bodies(&all);
    // Deliveries run in parallel: they may arrive in any order.
    let mut names: Vec<&str> = general
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["qr.archived", "qr.created", "qr.updated"],
        "{general:?}"
    );
    for b in &general {
        assert_eq!(b["qr_code_id"], id.as_str());
        assert_eq!(b["organization_id"], org.id.as_str());
    }
    let of = |event: &str| general.iter().find(|b| b["event"] == event).unwrap();
    assert_eq!(
        of("qr.updated")["changes"]["target_url"],
        json!({"old": "https://menu.example/a", "new": "https://menu.example/b"}),
        "{}",
        of("qr.updated")
    );
    assert_eq!(of("qr.archived")["archived"], true);
    let mut scan_events = bodies(&scans);
    assert_eq!(scan_events.len(), 2, "{scan_events:?}");
    // The first scan of the day is the unique visit, whichever delivery arrived first.
    scan_events.sort_by(|a, b| {
        a["scanned_at"]
            .as_str()
            .cmp(&b["scanned_at"].as_str())
            .then_with(|| {
                b["unique_visitor"]
                    .as_bool()
                    .cmp(&a["unique_visitor"].as_bool())
            })
    });
    for (i, b) in scan_events.iter().enumerate() {
        assert_eq!(b["event"], "qr.scan");
        assert_eq!(b["qr_code_id"], id.as_str());
        assert_eq!(b["source"], "qr");
        assert_eq!(b["os"], "iPhone", "{b}");
        assert_eq!(b["referrer"], "news.example", "{b}");
        assert_eq!(b["unique_visitor"], i == 0, "{b}");
        assert!(!b.to_string().contains(SCANNER_IP), "{b}");
    }
}
