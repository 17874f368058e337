//! `qrlp-chain-load`: the load generator of `scripts/bench-chains.sh`.
//!
//! ```text
//! qrlp-chain-load scans   --base URL --key KEY (--data-dir DIR | --database-url URL)
//!                         [--chains 64] [--length 10000] [--connections 32] [--seconds 20]
//!                         [--acked FILE]
//! qrlp-chain-load verify  --base URL --key KEY --acked FILE
//! qrlp-chain-load enqueue --key KEY (--data-dir DIR | --database-url URL) --webhook ID --count N
//! qrlp-chain-load receive --port P --secret whsec_... --expect N [--timeout 120]
//! qrlp-chain-load live    --url URL [--clients 10000] [--seconds 30]
//! ```
//!
//! `scans` creates the chains through the API, reads the values they have still to show
//! with the server's data key (so the timed phase submits only valid values, one POST per
//! scan, never asking the server for `current`), and runs `--connections` workers, each on
//! its own chains, for `--seconds`. It prints throughput and latency percentiles of the
//! acknowledged scans and writes their count and the chain ids to `--acked`. `verify` later
//! (after a `kill -9` and a restart, say) checks that the chains' `validScans` add up to it.
//! `enqueue` writes N events to the outbox for one endpoint; `receive` counts distinct
//! `webhook-id`s, checks every `X-Webhook-Signature`, and prints the time to the N-th.
//! `live` (for `scripts/bench-live.sh`) opens `--clients` plain WebSocket connections to a
//! live server's Socket.IO endpoint, speaks engine.io v4 by hand, and measures how long each
//! `qr_update` took from the payload's `timestamp` to its arrival: one JSON line of results.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

fn args() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(2);
    while let Some(k) = it.next() {
        if let Some(name) = k.strip_prefix("--") {
            out.insert(name.to_string(), it.next().unwrap_or_default());
        }
    }
    out
}

fn get<'a>(a: &'a HashMap<String, String>, k: &str) -> anyhow::Result<&'a str> {
    a.get(k)
        .map(String::as_str)
        .with_context(|| format!("--{k} is required"))
}

fn num(a: &HashMap<String, String>, k: &str, default: u64) -> anyhow::Result<u64> {
    match a.get(k) {
        Some(v) => v.parse().with_context(|| format!("--{k} must be a number")),
        None => Ok(default),
    }
}

async fn open_store(
    a: &HashMap<String, String>,
) -> anyhow::Result<(qrlp_store::Store, qrlp_store::secret::DataKey)> {
    let data_dir = PathBuf::from(
        a.get("data-dir")
            .cloned()
            .unwrap_or_else(|| "./qrlp-data".into()),
    );
    let store = qrlp_store::Store::open(&qrlp_store::StoreConfig {
        database_url: a.get("database-url").cloned(),
        data_dir: data_dir.clone(),
        max_connections: 8,
    })
    .await?;
    let key = qrlp_store::secret::DataKey::load_or_create(&data_dir.join("data.key"))?;
    Ok((store, key))
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn org_of(base: &str, key: &str) -> anyhow::Result<uuid::Uuid> {
    let me: Value = client()?
        .get(format!("{base}/api/v1/users/me"))
        .header("x-api-key", key)
        .send()
        .await?
        .json()
        .await?;
    // The key's organization is its only membership.
    let org = me["organizations"][0]["id"]
        .as_str()
        .or_else(|| me["organization"]["id"].as_str())
        .with_context(|| format!("no organization in {me}"))?;
    Ok(org.parse()?)
}

async fn scans(a: HashMap<String, String>) -> anyhow::Result<()> {
    let base = get(&a, "base")?.to_string();
    let key = get(&a, "key")?.to_string();
    let chains = num(&a, "chains", 64)?;
    let length = num(&a, "length", 10_000)?;
    let connections = num(&a, "connections", 32)?.max(1);
    let seconds = num(&a, "seconds", 20)?;
    let http = client()?;
    let org = match a.get("org") {
        Some(o) => o.parse()?,
        None => org_of(&base, &key).await?,
    };
    let (store, data_key) = open_store(&a).await?;
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for i in 0..chains {
        let r: Value = http
            .post(format!("{base}/api/v1/chains"))
            .header("x-api-key", &key)
            .json(&json!({"name": format!("load {i}"), "chainLength": length}))
            .send()
            .await?
            .json()
            .await?;
        let id = r["chainId"].as_i64().with_context(|| format!("{r}"))?;
        let v = store.remaining_chain_values(&data_key, org, id).await?;
        ids.push(id);
        values.push(v);
    }
    store.close().await;
    // Worker w takes chains w, w + connections, ...: no two workers share a chain.
    let mut per_worker: Vec<Vec<(i64, Vec<String>)>> = vec![Vec::new(); connections as usize];
    for (i, (id, v)) in ids.iter().zip(values).enumerate() {
        per_worker[i % connections as usize]
            .push((*id, v.iter().map(qrlp_chain::to_hex).collect()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity(1 << 20)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for work in per_worker {
        let (stop, errors, latencies, base, key) = (
            stop.clone(),
            errors.clone(),
            latencies.clone(),
            base.clone(),
            key.clone(),
        );
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(1 << 16);
            'chains: for (id, vals) in work {
                let url = format!("{base}/api/v1/chains/{id}/scan");
                for v in vals {
                    if stop.load(Ordering::Relaxed) {
                        break 'chains;
                    }
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .header("x-api-key", &key)
                        .header("content-type", "application/json")
                        .body(format!("{{\"hashValue\":\"{v}\"}}"))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            mine.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        }
                        Ok(r) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "scan answered {}: {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("scan failed: {e}");
                        }
                    }
                }
            }
            latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    l.sort_unstable();
    let pct = |p: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        f64::from(l[i]) / 1000.0
    };
    let acked = l.len();
    println!(
        "scans: {acked} acknowledged in {elapsed:.1} s = {:.0}/s at {connections} connections over {chains} chains; \
         latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; errors {}",
        acked as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        errors.load(Ordering::Relaxed)
    );
    if let Some(path) = a.get("acked") {
        std::fs::write(path, json!({"acked": acked, "chains": ids}).to_string())?;
    }
    if errors.load(Ordering::Relaxed) > 0 {
        bail!("some scans failed");
    }
    Ok(())
}

async fn verify(a: HashMap<String, String>) -> anyhow::Result<()> {
    let base = get(&a, "base")?;
    let key = get(&a, "key")?;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(get(&a, "acked")?)?)?;
    let http = client()?;
    let mut valid = 0;
    for id in saved["chains"].as_array().context("chains")? {
        let st: Value = http
            .get(format!("{base}/api/v1/chains/{id}/stats"))
            .header("x-api-key", key)
            .send()
            .await?
            .json()
            .await?;
        let v = st["validScans"].as_i64().context("validScans")?;
        if st["chainLength"].as_i64().unwrap_or(0) - 1 - st["currentIndex"].as_i64().unwrap_or(0)
            != v
        {
            bail!("chain {id}: currentIndex disagrees with validScans: {st}");
        }
        valid += v;
    }
    let acked = saved["acked"].as_i64().context("acked")?;
    println!("durability: {acked} acknowledged, {valid} recorded after restart");
    // An unacknowledged scan may have committed just before the kill; none may be missing.
    if valid < acked || valid > acked + 64 {
        bail!(
            "recorded {valid} is not acknowledged {acked} (+ at most one per connection in flight)"
        );
    }
    Ok(())
}

async fn enqueue(a: HashMap<String, String>) -> anyhow::Result<()> {
    let count = num(&a, "count", 10_000)?;
    let webhook: i64 = get(&a, "webhook")?.parse()?;
    let org: uuid::Uuid = get(&a, "org")?.parse()?;
    let (store, _) = open_store(&a).await?;
    let store = Arc::new(store);
    let t = Instant::now();
    let mut tasks = Vec::new();
    let per = count.div_ceil(8);
    for w in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w * per)..((w + 1) * per).min(count) {
                let p = qrlp_webhook::Payload::new("webhook.test").with("n", i);
                store.enqueue_for_endpoint(org, webhook, &p).await?;
            }
            Ok::<_, qrlp_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!(
        "enqueued {count} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn receive(a: HashMap<String, String>) -> anyhow::Result<()> {
    let port = num(&a, "port", 19190)?;
    let expect = num(&a, "expect", 10_000)? as usize;
    let timeout = num(&a, "timeout", 120)?;
    let secret =
        qrlp_webhook::Secret::parse(get(&a, "secret")?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let bad = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None::<Instant>));
    let (s, b, tot, f) = (seen.clone(), bad.clone(), total.clone(), first.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (s, b, tot, f) = (s.clone(), b.clone(), tot.clone(), f.clone());
            let secret = secret.clone();
            async move {
                f.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(Instant::now);
                tot.fetch_add(1, Ordering::Relaxed);
                let sig = headers
                    .get("x-webhook-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if sig != secret.seed_signature(&body) {
                    b.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    s.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.to_string());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", u16::try_from(port)?)).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("receiver ready");
    let start = Instant::now();
    loop {
        let n = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
        if n >= expect {
            break;
        }
        if start.elapsed() > Duration::from_secs(timeout) {
            bail!("only {n} of {expect} events within {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let since_start = start.elapsed().as_secs_f64();
    let since_first = first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map_or(0.0, |t| t.elapsed().as_secs_f64());
    println!(
        "deliveries: {expect} distinct events in {since_start:.1} s from the receiver's start \
         ({since_first:.1} s from the first delivery); {} requests, {} bad signatures",
        total.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed)
    );
    if bad.load(Ordering::Relaxed) > 0 {
        bail!("bad signatures");
    }
    Ok(())
}

/// What the `live` clients saw.
#[derive(Default)]
struct LiveSeen {
    connected: AtomicU64,
    failed: AtomicU64,
    measuring: AtomicBool,
    latencies_ms: Mutex<Vec<i64>>,
    frames: Mutex<HashMap<u64, u64>>,
}

/// Milliseconds since the epoch of `2026-11-30T03:40:00.123Z` (the payloads' form).
fn iso_ms(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days from the civil date (proleptic Gregorian), March-based years.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + hh) * 60 + mm) * 60 + ss) * 1000 + ms)
}

/// The value of the last `"key":` in `text` (the payload's own fields come after the
/// nested `qr_data`'s), without its quotes.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.rfind(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text.get(at..)?;
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',', '}'])?;
    rest.get(..end)
}

async fn live_client(url: String, seen: Arc<LiveSeen>) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        seen.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        let t = t.as_str();
        let reply = if t.starts_with("42[\"qr_update\"") {
            if seen.measuring.load(Ordering::Relaxed) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                if let (Some(at), Some(seq)) = (
                    field(t, "timestamp").and_then(iso_ms),
                    field(t, "sequence_number").and_then(|v| v.parse::<u64>().ok()),
                ) {
                    seen.latencies_ms
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(now - at);
                    *seen
                        .frames
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(seq)
                        .or_default() += 1;
                }
            }
            None
        } else if t.starts_with("40") {
            seen.connected.fetch_add(1, Ordering::Relaxed);
            None
        } else if t.starts_with('0') {
            Some("40")
        } else if t == "2" {
            Some("3")
        } else {
            None
        };
        if let Some(r) = reply {
            if ws.send(Message::text(r)).await.is_err() {
                break;
            }
        }
    }
}

async fn live(a: HashMap<String, String>) -> anyhow::Result<()> {
    let base = get(&a, "url")?.trim_end_matches('/');
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    );
    let n = num(&a, "clients", 10_000)?;
    let secs = num(&a, "seconds", 30)?;
    let seen = Arc::new(LiveSeen::default());
    for i in 0..n {
        tokio::spawn(live_client(url.clone(), seen.clone()));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let start = Instant::now();
    let settled =
        |s: &LiveSeen| s.connected.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed) >= n;
    while !settled(&seen) && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    seen.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    seen.measuring.store(false, Ordering::Relaxed);
    let connected = seen.connected.load(Ordering::Relaxed);
    let frames = seen
        .frames
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut seqs: Vec<u64> = frames.keys().copied().collect();
    seqs.sort_unstable();
    // Frames whose delivery is complete: not the first and last partial ones.
    let seqs = seqs
        .get(1..seqs.len().saturating_sub(1))
        .unwrap_or_default();
    let complete = seqs.iter().filter(|s| frames[*s] == connected).count();
    let mut lat = seen
        .latencies_ms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    lat.sort_unstable();
    let q = |p: f64| lat.get(((p * lat.len() as f64) as usize).min(lat.len().saturating_sub(1)));
    println!(
        "{}",
        json!({
            "mode": "ws-rust", "clients": n, "connected": connected,
            "failed": seen.failed.load(Ordering::Relaxed),
            "connect_seconds": (connect_secs * 10.0).round() / 10.0,
            "frames": seqs.len(), "frames_every_client_got": complete,
            "deliveries": lat.len(), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat.last(),
        })
    );
    // The connections close with the process.
    std::process::exit(0);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cmd = std::env::args().nth(1).unwrap_or_default();
    let a = args();
    match cmd.as_str() {
        "scans" => scans(a).await,
        "verify" => verify(a).await,
        "enqueue" => enqueue(a).await,
        "receive" => receive(a).await,
        "live" => live(a).await,
        _ => bail!("usage: qrlp-chain-load scans|verify|enqueue|receive|live --help in the source"),
    }
}
