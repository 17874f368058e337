//! Chain-head fetching against real protocol peers on 127.0.0.1: tiny HTTP/1.1 servers that
//! speak Bitcoin Core JSON-RPC 1.0, Ethereum JSON-RPC 2.0 and BlockCypher-style REST, check
//! requests as those nodes do, and count what they receive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use qrlp_evidence::{
    AnchorStatus, BlockchainConfig, ChainEndpoint, ChainError, ChainHeads, ChainKind,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 server
// ---------------------------------------------------------------------------------------

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// Given the request and its 0-based number, what to answer.
type Handler = Arc<dyn Fn(&Request, usize) -> Reply + Send + Sync>;

struct Peer {
    base: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (headers up to 16 KiB, body by Content-Length up to 64 KiB).
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    if first.next()? != "HTTP/1.1" {
        return None;
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, v)| v.parse().ok())?;
    if length > 64 * 1024 {
        return None;
    }
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Serves at most 200 connections, one request each, on 127.0.0.1:0.
async fn serve(handler: Handler) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let task = tokio::spawn(async move {
        for _ in 0..200 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let r = handler(&request, n);
                tokio::time::sleep(r.delay).await;
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    r.status,
                    r.body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&r.body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Peer {
        base,
        requests,
        task,
    }
}

// ---------------------------------------------------------------------------------------
// Protocol peers
// ---------------------------------------------------------------------------------------

/// A Bitcoin-style display hash: proof-of-work zeros, then bytes that vary with `n`.
fn btc_hash(n: u8) -> String {
    let tail: String = (0..22u8)
        .map(|i| {
            format!(
                "{:02x}",
                i.wrapping_mul(37).wrapping_add(n).wrapping_add(1) | 1
            )
        })
        .collect();
    format!("00000000000000000000{tail}")
}

fn eth_hash(n: u8) -> String {
    (0..32u8)
        .map(|i| format!("{:02x}", i.wrapping_mul(13) ^ n ^ 0xa5))
        .collect()
}

fn parse_rpc(request: &Request, version: &str) -> Result<(Value, String), Reply> {
    if request.method != "POST" {
        return Err(reply(405, "only POST"));
    }
    if !request
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return Err(reply(415, "expected application/json"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&request.body) else {
        return Err(reply(
            500,
            json!({"result": null, "error": {"code": -32700, "message": "Parse error"}, "id": null})
                .to_string(),
        ));
    };
    if v["jsonrpc"] != version || !v["id"].is_u64() {
        return Err(reply(400, "bad envelope"));
    }
    let method = v["method"].as_str().unwrap_or_default().to_string();
    Ok((v, method))
}

/// Bitcoin Core: HTTP basic auth, JSON-RPC 1.0, errors as HTTP 500/404 with an error object.
fn bitcoin_peer(hash: Arc<Mutex<String>>, height: u64) -> Handler {
    Arc::new(move |request, _| {
        // "user:pass" in base64.
        if request.header("authorization") != Some("Basic dXNlcjpwYXNz") {
            return reply(401, "");
        }
        let (v, method) = match parse_rpc(request, "1.0") {
            Ok(x) => x,
            Err(r) => return r,
        };
        if v["params"] != json!([]) {
            return reply(500, "bad params");
        }
        let result = match method.as_str() {
            "getbestblockhash" => json!(hash.lock().unwrap().clone()),
            "getblockcount" => json!(height),
            _ => {
                return reply(
                    404,
                    json!({"result": null, "error": {"code": -32601, "message": "Method not found"}, "id": v["id"]})
                        .to_string(),
                )
            }
        };
        reply(
            200,
            json!({"result": result, "error": null, "id": v["id"]}).to_string(),
        )
    })
}

/// An Ethereum node: JSON-RPC 2.0, `eth_getBlockByNumber("latest", false)`.
fn ethereum_peer(hash: String, number: u64) -> Handler {
    Arc::new(move |request, _| {
        let (v, method) = match parse_rpc(request, "2.0") {
            Ok(x) => x,
            Err(r) => return r,
        };
        if method != "eth_getBlockByNumber" || v["params"] != json!(["latest", false]) {
            return reply(
                200,
                json!({"jsonrpc": "2.0", "id": v["id"], "error": {"code": -32601, "message": "the method does not exist"}})
                    .to_string(),
            );
        }
        reply(
            200,
            json!({"jsonrpc": "2.0", "id": v["id"], "result": {
                "hash": format!("0x{hash}"),
                "number": format!("{number:#x}"),
                "parentHash": format!("0x{}", "11".repeat(32)),
                "transactions": [],
            }})
            .to_string(),
        )
    })
}

/// BlockCypher: GET /v1/btc/main returns the chain object.
fn blockcypher_peer(hash: Arc<Mutex<String>>) -> Handler {
    Arc::new(move |request, _| {
        if request.method != "GET" || request.path != "/v1/btc/main" {
            return reply(404, r#"{"error":"not found"}"#);
        }
        reply(
            200,
            json!({"name": "BTC.main", "height": 840_000, "hash": hash.lock().unwrap().clone(),
                   "time": "2024-04-20T00:09:27Z"})
            .to_string(),
        )
    })
}

fn endpoint(name: &str, kind: ChainKind, url: String) -> ChainEndpoint {
    ChainEndpoint {
        name: name.into(),
        kind,
        url,
    }
}

fn config(chains: Vec<ChainEndpoint>) -> BlockchainConfig {
    BlockchainConfig {
        chains,
        cache_duration: Duration::from_secs(60),
        timeout: Duration::from_millis(200),
        retry_attempts: 2,
        retry_backoff: Duration::from_millis(10),
        ..BlockchainConfig::default()
    }
}

fn heads(config: BlockchainConfig) -> ChainHeads {
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    ChainHeads::new(config).unwrap()
}

fn with_auth(base: &str) -> String {
    base.replacen("http://", "http://user:pass@", 1)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bitcoin_core_rpc_with_basic_auth() {
    let hash = btc_hash(1);
    let peer = serve(bitcoin_peer(Arc::new(Mutex::new(hash.clone())), 840_000)).await;
    let chains = heads(config(vec![endpoint(
        "bitcoin",
        ChainKind::BitcoinRpc,
        with_auth(&peer.base),
    )]));
    let head = chains.head("bitcoin").await.unwrap();
    assert_eq!(head.hash_hex(), hash);
    assert_eq!(head.height, Some(840_000));
    assert_eq!(head.chain, "bitcoin");
    // getbestblockhash then getblockcount.
    assert_eq!(peer.count(), 2);
    assert_eq!(chains.stats()[0].requests, 2);
    assert_eq!(chains.blockchain_hashes()["bitcoin"], hash);

    // Without credentials the node says 401, which is not retried.
    let anonymous = heads(config(vec![endpoint(
        "bitcoin",
        ChainKind::BitcoinRpc,
        peer.base.clone(),
    )]));
    assert_eq!(
        anonymous.head("bitcoin").await,
        Err(ChainError::HttpStatus { status: 401 })
    );
    assert_eq!(peer.count(), 3);
}

#[tokio::test]
async fn ethereum_rpc_latest_block() {
    let hash = eth_hash(7);
    let peer = serve(ethereum_peer(hash.clone(), 19_531_250)).await;
    let chains = heads(config(vec![endpoint(
        "ethereum",
        ChainKind::EthereumRpc,
        peer.base.clone(),
    )]));
    let head = chains.head("ethereum").await.unwrap();
    assert_eq!(head.hash_hex(), hash);
    assert_eq!(head.height, Some(19_531_250));
    assert_eq!(peer.count(), 1);
}

#[tokio::test]
async fn blockcypher_rest_head() {
    let hash = btc_hash(2);
    let peer = serve(blockcypher_peer(Arc::new(Mutex::new(hash.clone())))).await;
    let chains = heads(config(vec![endpoint(
        "bitcoin",
        ChainKind::Blockcypher,
        format!("{}/v1/btc/main", peer.base),
    )]));
    let head = chains.head("bitcoin").await.unwrap();
    assert_eq!((head.hash_hex(), head.height), (hash, Some(840_000)));
}

#[tokio::test]
async fn cache_serves_within_cache_duration_and_expires_after() {
    let peer = serve(ethereum_peer(eth_hash(1), 5)).await;
    let eth = || endpoint("ethereum", ChainKind::EthereumRpc, peer.base.clone());

    let chains = heads(config(vec![eth()]));
    let first = chains.head("ethereum").await.unwrap();
    let second = chains.head("ethereum").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        peer.count(),
        1,
        "second call within cache_duration made a request"
    );
    let stats = &chains.stats()[0];
    assert_eq!(
        (stats.requests, stats.cache_hits, stats.successes),
        (1, 1, 1)
    );
    assert_eq!(
        chains.blockchain_stats()["cached_chains"],
        json!(["ethereum"])
    );
    assert_eq!(chains.blockchain_stats()["success_rate"], 1.0);

    let short = heads(BlockchainConfig {
        cache_duration: Duration::from_millis(100),
        ..config(vec![eth()])
    });
    short.head("ethereum").await.unwrap();
    assert_eq!(peer.count(), 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    short.head("ethereum").await.unwrap();
    assert_eq!(peer.count(), 3, "expired cache did not refetch");
    assert_eq!(short.stats()[0].cache_hits, 0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(short.blockchain_stats()["cached_chains"], json!([]));
    // An expired head is still the newest known one.
    assert_eq!(short.blockchain_hashes()["ethereum"], eth_hash(1));
}

#[tokio::test]
async fn concurrent_fetches_of_one_chain_share_one_request() {
    let inner = ethereum_peer(eth_hash(3), 9);
    let peer = serve(Arc::new(move |r, n| Reply {
        delay: Duration::from_millis(100),
        ..inner(r, n)
    }))
    .await;
    let chains = Arc::new(heads(config(vec![endpoint(
        "ethereum",
        ChainKind::EthereumRpc,
        peer.base.clone(),
    )])));
    let calls = (0..5).map(|_| {
        let chains = chains.clone();
        tokio::spawn(async move { chains.head("ethereum").await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert!(call.await.unwrap().is_ok());
    }
    assert_eq!(peer.count(), 1);
}

#[tokio::test]
async fn a_slow_peer_times_out_and_is_retried_then_fails() {
    let inner = ethereum_peer(eth_hash(4), 1);
    let peer = serve(Arc::new(move |r, n| Reply {
        delay: Duration::from_secs(2),
        ..inner(r, n)
    }))
    .await;
    let chains = heads(config(vec![endpoint(
        "ethereum",
        ChainKind::EthereumRpc,
        peer.base.clone(),
    )]));
    let started = Instant::now();
    let result = chains.head("ethereum").await;
    let took = started.elapsed();
    assert_eq!(result, Err(ChainError::Timeout(Duration::from_millis(200))));
    // 3 attempts of 200 ms plus 10 + 20 ms of backoff; generous bound for a loaded machine.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(peer.count(), 3, "retry_attempts = 2 means 3 attempts");
    let stats = &chains.stats()[0];
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 1));
    assert!(stats.last_error.as_deref().unwrap().contains("no response"));
    assert!(chains.blockchain_hashes().is_empty());
}

#[tokio::test]
async fn a_failing_peer_reports_each_reason() {
    // HTTP 500 with a plain body, then a JSON-RPC error object, then garbage, then a body
    // with a short hash, then a mismatched id, then an oversized body.
    let peer = serve(Arc::new(|request: &Request, n| {
        let id = serde_json::from_slice::<Value>(&request.body).unwrap()["id"].clone();
        match n {
            0 => reply(500, "Internal Server Error"),
            1 => reply(
                500,
                json!({"result": null, "error": {"code": -28, "message": "Loading block index..."}, "id": id})
                    .to_string(),
            ),
            2 => reply(200, "<html>definitely not json"),
            3 => reply(200, json!({"result": "00ab", "error": null, "id": id}).to_string()),
            4 => reply(200, json!({"result": "00", "error": null, "id": 999_999}).to_string()),
            _ => reply(200, vec![b' '; 2 << 20]),
        }
    }))
    .await;
    let chains = heads(BlockchainConfig {
        retry_attempts: 0,
        ..config(vec![endpoint(
            "bitcoin",
            ChainKind::BitcoinRpc,
            peer.base.clone(),
        )])
    });
    let mut errors = Vec::new();
    for _ in 0..6 {
        errors.push(chains.head("bitcoin").await.unwrap_err());
    }
    assert_eq!(errors[0], ChainError::HttpStatus { status: 500 });
    assert_eq!(
        errors[1],
        ChainError::Rpc {
            code: -28,
            message: "Loading block index...".into()
        }
    );
    assert!(
        matches!(errors[2], ChainError::InvalidJson(_)),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], ChainError::InvalidHash(_)),
        "{:?}",
        errors[3]
    );
    assert!(
        matches!(errors[4], ChainError::InvalidResponse(_)),
        "{:?}",
        errors[4]
    );
    assert_eq!(errors[5], ChainError::BodyTooLarge { limit: 1 << 20 });
    assert_eq!(peer.count(), 6);
    let stats = &chains.stats()[0];
    assert_eq!((stats.failures, stats.successes), (6, 0));
    assert!(stats.last_error.as_deref().unwrap().contains("larger than"));
}

#[tokio::test]
async fn permanent_errors_are_not_retried_but_http_500_is() {
    let rpc_error = serve(Arc::new(|request: &Request, _| {
        let id = serde_json::from_slice::<Value>(&request.body).unwrap()["id"].clone();
        reply(
            200,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "header not found"}})
                .to_string(),
        )
    }))
    .await;
    let http_500 = serve(Arc::new(|_: &Request, _| reply(500, "oops"))).await;
    let chains = heads(config(vec![
        endpoint("a", ChainKind::EthereumRpc, rpc_error.base.clone()),
        endpoint("b", ChainKind::EthereumRpc, http_500.base.clone()),
    ]));
    let results = chains.latest().await;
    assert_eq!(
        results[0],
        Err(ChainError::Rpc {
            code: -32000,
            message: "header not found".into()
        })
    );
    assert_eq!(results[1], Err(ChainError::HttpStatus { status: 500 }));
    assert_eq!(rpc_error.count(), 1);
    assert_eq!(http_500.count(), 3);
    assert_eq!(chains.blockchain_stats()["success_rate"], 0.0);
}

#[tokio::test]
async fn a_peer_that_fails_twice_then_succeeds() {
    let inner = ethereum_peer(eth_hash(5), 77);
    let peer = serve(Arc::new(move |r, n| {
        if n < 2 {
            reply(503, "busy")
        } else {
            inner(r, n)
        }
    }))
    .await;
    let chains = heads(BlockchainConfig {
        retry_attempts: 3,
        ..config(vec![endpoint(
            "ethereum",
            ChainKind::EthereumRpc,
            peer.base.clone(),
        )])
    });
    let head = chains.head("ethereum").await.unwrap();
    assert_eq!(head.height, Some(77));
    assert_eq!(peer.count(), 3);
    let stats = &chains.stats()[0];
    assert_eq!((stats.retries, stats.successes, stats.failures), (2, 1, 0));
}

#[tokio::test]
async fn unreachable_peer_is_a_transport_error() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let chains = heads(config(vec![endpoint(
        "ethereum",
        ChainKind::EthereumRpc,
        format!("http://{closed}"),
    )]));
    let err = chains.head("ethereum").await.unwrap_err();
    assert!(matches!(err, ChainError::Transport(_)), "{err:?}");
    assert_eq!(chains.stats()[0].retries, 2);
    assert_eq!(
        chains.head("litecoin").await,
        Err(ChainError::UnknownChain("litecoin".into()))
    );
}

#[tokio::test]
async fn history_and_classify_current_recent_stale_unknown() {
    let current = Arc::new(Mutex::new(btc_hash(10)));
    let peer = serve(blockcypher_peer(current.clone())).await;
    let chains = heads(BlockchainConfig {
        cache_duration: Duration::ZERO,
        history_len: 3,
        recent_window: Duration::from_secs(60),
        ..config(vec![endpoint(
            "bitcoin",
            ChainKind::Blockcypher,
            format!("{}/v1/btc/main", peer.base),
        )])
    });
    let mut seen = Vec::new();
    for n in 10..14u8 {
        *current.lock().unwrap() = btc_hash(n);
        seen.push(chains.head("bitcoin").await.unwrap());
        // The same head fetched again is not a new history entry.
        chains.head("bitcoin").await.unwrap();
    }
    assert_eq!(peer.count(), 8);
    let history = chains.history("bitcoin");
    assert_eq!(history.len(), 3, "history is bounded by history_len");
    assert_eq!(history[0], seen[3]);
    assert_eq!(history[2], seen[1]);
    assert!(chains.last_confirmed("bitcoin").unwrap() >= seen[3].fetched_at);

    let now = SystemTime::now();
    let anchor = |i: usize| seen[i].anchor_prefix(8);
    assert_eq!(
        chains.classify("bitcoin", &anchor(3), now),
        AnchorStatus::Current
    );
    match chains.classify("bitcoin", &anchor(2), now) {
        AnchorStatus::Recent { age } => assert!(age < Duration::from_secs(60), "{age:?}"),
        other => panic!("expected Recent, got {other:?}"),
    }
    // Evicted from the bounded history.
    assert_eq!(
        chains.classify("bitcoin", &anchor(0), now),
        AnchorStatus::Unknown
    );
    // The same heads two minutes later are past the 60 s window.
    let later = now + Duration::from_secs(120);
    assert_eq!(
        chains.classify("bitcoin", &anchor(2), later),
        AnchorStatus::Stale
    );
    assert_eq!(
        chains.classify("bitcoin", &anchor(3), later),
        AnchorStatus::Current
    );
    // The full display-order hash also identifies it; its zero prefix alone does not.
    assert_eq!(
        chains.classify("bitcoin", &seen[3].hash, now),
        AnchorStatus::Current
    );
    assert_eq!(
        chains.classify("bitcoin", &[0u8; 8], now),
        AnchorStatus::Unknown
    );
    assert_eq!(
        chains.classify("bitcoin", &[0xEE; 8], now),
        AnchorStatus::Unknown
    );
    assert_eq!(chains.classify("bitcoin", &[], now), AnchorStatus::Unknown);
    assert_eq!(
        chains.classify("ethereum", &anchor(3), now),
        AnchorStatus::Unknown
    );
    assert_eq!(chains.blockchain_hashes()["bitcoin"], btc_hash(13));
}
