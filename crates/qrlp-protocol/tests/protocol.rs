//! The protocol object end to end, on loopback only: an SNTP responder and a Bitcoin Core
//! JSON-RPC server started here stand in for the public servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use qrlp_config::{Config, FrameFormat};
use qrlp_evidence::ntp::{Header, NtpTimestamp};
use qrlp_live::{HmacKey, ReasonCode, Verifier, VerifierOptions};
use qrlp_protocol::QrLiveProtocol;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);
const HMAC_SECRET: &str = "test-hmac-secret-0123456789abcdef";

/// A configuration with no network: no time servers (system clock fallback), no chains,
/// identity under a fresh temporary directory.
fn offline_config(name: &str) -> Config {
    let c = offline_config_keep(name);
    let _ = std::fs::remove_dir_all(&c.storage.data_dir);
    c
}

/// [`offline_config`] keeping the directory (and identity file) of an earlier call.
fn offline_config_keep(name: &str) -> Config {
    let dir =
        std::env::temp_dir().join(format!("qrlp-protocol-test-{}-{name}", std::process::id()));
    let mut c = Config::default();
    c.storage.data_dir = dir.display().to_string();
    c.time.time_servers = vec![];
    c.time.fallback_to_system = true;
    c.blockchain.enabled_chains = vec![];
    c.identity.include_system_info = false;
    c.security.hmac_secret = HMAC_SECRET.into();
    c.security.data_key_secret = "test-data-key-secret-0123456789ab".into();
    c.live.update_interval_secs = 0.05;
    c.live.evidence_timeout_secs = 1.0;
    c
}

#[tokio::test]
async fn single_frame_verifies_and_statistics_have_the_seed_keys() {
    let p = QrLiveProtocol::new(&offline_config("single")).unwrap();
    let (frame, png) = p
        .generate_single(Some(json!({"event": "Product Launch"})), true, false)
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(frame.text.starts_with("QL2:"), "{}", frame.text);
    assert!(frame.qr_version <= 10, "version {}", frame.qr_version);
    assert_eq!(frame.qr_data.sequence_number, frame.sequence);
    assert_eq!(
        frame.qr_data.user_data.as_ref().unwrap()["event"],
        "Product Launch"
    );

    let report = p.verify(&frame.text);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert!(report.valid_json && report.signature_verified && report.hmac_verified);
    assert!(report.identity_verified && report.time_verified);
    assert!(!report.encrypted);
    assert_eq!(report.key_id, frame.key_id);
    // The same frame again is a replay.
    assert_eq!(p.verify(&frame.text).reason.code, ReasonCode::Replayed);
    // Malformed input never panics.
    assert!(!p.verify("QL2:%%%").valid_json);
    assert!(!p.verify("{\"timestamp\":").valid_json);

    let s = p.statistics();
    for key in [
        "running",
        "total_updates",
        "sequence_number",
        "last_update_time",
        "current_qr_data",
        "time_provider_stats",
        "blockchain_stats",
        "identity_stats",
        "crypto_stats",
        "uptime_seconds",
        "generation",
    ] {
        assert!(s.get(key).is_some(), "{key} missing from {s}");
    }
    assert_eq!(s["running"], false);
    assert_eq!(s["crypto_stats"]["hmac_enabled"], true);
    assert_eq!(s["crypto_stats"]["encryption_enabled"], true);
    assert_eq!(s["generation"]["frames_generated"], 1);
    assert_eq!(s["sequence_number"], frame.sequence);
    for key in ["success_rate", "active_servers", "last_sync"] {
        assert!(s["time_provider_stats"].get(key).is_some(), "{s}");
    }
    for key in ["success_rate", "cached_chains", "last_update"] {
        assert!(s["blockchain_stats"].get(key).is_some(), "{s}");
    }
    for key in ["hash_generations", "file_count", "last_hash"] {
        assert!(s["identity_stats"].get(key).is_some(), "{s}");
    }
    for key in ["keys_count", "signature_count", "encryption_enabled"] {
        assert!(s["crypto_stats"].get(key).is_some(), "{s}");
    }

    // The identity file is reused: a second object verifies the first one's frames.
    let q = QrLiveProtocol::new(&offline_config_keep("single")).unwrap();
    let (frame2, _) = p.generate_single(None, true, false).await.unwrap();
    assert!(frame2.sequence > frame.sequence);
    assert!(q.verify(&frame2.text).is_valid());
}

#[tokio::test]
async fn json_frames_and_fn_dsa_verify() {
    let mut c = offline_config("json");
    c.live.frame_format = FrameFormat::Json;
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p
        .generate_single(Some(json!("hello")), true, false)
        .await
        .unwrap();
    assert!(frame.text.starts_with('{'));
    assert_eq!(frame.text, frame.qr_data.to_json());
    let report = p.verify(&frame.text);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert_eq!(report.user_data.unwrap()["user_text"], "hello");
    // One changed character: invalid, with a reason.
    let tampered = frame.text.replacen("hello", "hellp", 1);
    let report = p.verify(&tampered);
    assert!(!report.is_valid());
    assert_eq!(
        report.reason.code,
        ReasonCode::BadSignature,
        "{:?}",
        report.reason
    );

    let mut c = offline_config("fndsa");
    c.live.signature = qrlp_config::SignatureSuite::FnDsa;
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p.generate_single(None, true, false).await.unwrap();
    assert!(frame.qr_version <= 24, "version {}", frame.qr_version);
    let report = p.verify(&frame.text);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert_eq!(report.algorithm.as_deref(), Some("fn-dsa-512"));

    let mut c = offline_config("hybrid");
    c.live.signature = qrlp_config::SignatureSuite::Hybrid;
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p.generate_single(None, true, false).await.unwrap();
    let report = p.verify(&frame.text);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert_eq!(report.algorithm.as_deref(), Some("ed25519+fn-dsa-512"));
}

#[tokio::test]
async fn encrypted_frames_verify_with_and_without_the_data_key() {
    let c = offline_config("encrypted");
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p
        .generate_single(Some(json!({"sensitive": "data"})), true, true)
        .await
        .unwrap();
    assert!(frame.encrypted);
    assert!(frame.qr_data.user_data.is_none());
    assert!(!frame.text.contains("sensitive"));

    let with_key = p.verify(&frame.text);
    assert!(with_key.is_valid(), "{:?}", with_key.reason);
    assert!(with_key.encrypted);
    assert_eq!(with_key.user_data.unwrap()["sensitive"], "data");

    // An offline verifier with the published key set and the HMAC secret, but no data key.
    let hmac = HmacKey::from_secret(&c.security.hmac_key_id, HMAC_SECRET.as_bytes()).unwrap();
    let options = VerifierOptions {
        require_identity: true,
        expected_identity: Some(p.identity_hash().to_vec()),
        ..VerifierOptions::default()
    };
    let offline = Verifier::new(p.key_set().clone(), options).with_hmac_key(Arc::new(hmac));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let without_key = offline.verify(&frame.text, now);
    assert!(without_key.is_valid(), "{:?}", without_key.reason);
    assert!(without_key.encrypted && without_key.signature_verified && without_key.hmac_verified);
    assert!(without_key.user_data.is_none());

    // No data key configured: encryption is refused, and counted.
    let mut c = offline_config("no-data-key");
    c.security.data_key_secret.clear();
    let p = QrLiveProtocol::new(&c).unwrap();
    assert!(p.generate_single(None, true, true).await.is_err());
    assert_eq!(p.statistics()["generation"]["frames_failed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_reach_channels_and_callbacks_until_stopped() {
    let p = QrLiveProtocol::new(&offline_config("live")).unwrap();
    let mut rx = p.subscribe();
    let calls = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&calls);
    p.add_update_callback(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    // A panicking callback, registered first, must not stop the loop or the others.
    let bad = p.add_update_callback(|_| panic!("callback failure (expected by the test)"));
    let n = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&n);
    p.set_user_data_provider(move || {
        Some(json!({"user_text": format!("message {}", counter.fetch_add(1, Ordering::SeqCst))}))
    });

    p.start().unwrap();
    p.start().unwrap(); // idempotent
    assert!(p.is_running());
    let mut sequences = Vec::new();
    let mut texts = Vec::new();
    tokio::time::timeout(WAIT, async {
        while sequences.len() < 3 {
            let update = rx.recv().await.unwrap();
            sequences.push(update.frame.sequence);
            texts.push(update.frame.text.clone());
            let user = update.frame.qr_data.user_data.as_ref().unwrap();
            assert!(user["user_text"].as_str().unwrap().starts_with("message "));
        }
    })
    .await
    .expect("three updates within the time limit");
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("three callbacks within the time limit");
    let report = p.verify(&texts[2]);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert!(report.user_data.unwrap()["user_text"]
        .as_str()
        .unwrap()
        .starts_with("message "));
    assert!(
        p.statistics()["generation"]["callback_panics"]
            .as_u64()
            .unwrap()
            >= 1
    );

    p.stop().await;
    p.stop().await; // idempotent
    assert!(!p.is_running());
    let after_stop = calls.load(Ordering::SeqCst);
    while rx.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(rx.try_recv().is_err(), "an update after stop");
    assert_eq!(calls.load(Ordering::SeqCst), after_stop);
    let s = p.statistics();
    assert_eq!(s["running"], false);
    assert!(s["total_updates"].as_u64().unwrap() >= 3);
    assert!(s["current_qr_data"].is_object());

    // Callbacks survive a restart; a removed one is gone.
    assert!(p.remove_update_callback(bad));
    assert!(!p.remove_update_callback(bad));
    p.start().unwrap();
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) < after_stop + 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("callbacks run again after a restart");
    p.stop().await;
}

#[tokio::test]
async fn start_outside_a_runtime_is_an_error() {
    let c = offline_config("no-runtime");
    let p = std::thread::spawn(move || {
        let p = QrLiveProtocol::new(&c).unwrap();
        p.start().is_err()
    })
    .join()
    .unwrap();
    assert!(p);
}

/// An SNTP responder (RFC 4330 server side) on loopback, `offset` ahead of the local clock.
async fn sntp_server(offset: Duration) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        for _ in 0..1000 {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(request) = Header::decode(&buf[..len]) else {
                continue;
            };
            let now = NtpTimestamp::from_system_time(SystemTime::now() + offset);
            let reply = Header {
                leap: 0,
                version: 4,
                mode: 4,
                stratum: 2,
                poll: 6,
                precision: -20,
                root_delay: 0,
                root_dispersion: 0,
                reference_id: *b"TEST",
                reference: now,
                originate: request.transmit,
                receive: now,
                transmit: now,
            };
            let _ = socket.send_to(&reply.encode(), peer).await;
        }
    });
    addr
}

/// A Bitcoin Core JSON-RPC server on loopback answering `getbestblockhash` and
/// `getblockcount`, one request per connection.
async fn bitcoin_rpc(best: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the headers, then Content-Length bytes of body.
                let body = loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break buf[end + 4..end + 4 + length].to_vec();
                    }
                    if buf.len() > 1 << 16 {
                        return;
                    }
                };
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let result = match request["method"].as_str() {
                    Some("getbestblockhash") => json!(best),
                    Some("getblockcount") => json!(870_000),
                    _ => Value::Null,
                };
                let reply =
                    json!({"result": result, "error": null, "id": request["id"]}).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_time_and_chain_evidence_go_into_frames() {
    const BEST: &str = "00000000000000000001c0ffee0123456789abcdef0123456789abcdef012345";
    let ntp = sntp_server(Duration::from_millis(200)).await;
    let rpc = bitcoin_rpc(BEST).await;
    let mut c = offline_config("evidence");
    c.time.time_servers = vec![ntp.to_string()];
    c.time.timeout = 1.0;
    c.blockchain.enabled_chains = vec!["bitcoin".into()];
    c.blockchain
        .api_endpoints
        .insert("bitcoin".into(), format!("http://{rpc}/"));
    c.blockchain
        .kinds
        .insert("bitcoin".into(), qrlp_config::ChainKind::BitcoinRpc);
    c.blockchain.timeout = 2.0;
    c.verification.require_blockchain = true;
    c.verification.require_time_server = true;
    c.live.evidence_timeout_secs = 3.0;
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p.generate_single(None, true, false).await.unwrap();
    assert_eq!(frame.qr_data.blockchain_hashes["bitcoin"], BEST);
    let time = &frame.qr_data.time_server_verification;
    assert_eq!(time["servers_agreed"], 1, "{time:?}");
    assert!(
        (150..=250).contains(&time["offset_ms"].as_i64().unwrap()),
        "{time:?}"
    );
    assert!(frame.qr_version <= 10, "version {}", frame.qr_version);

    let report = p.verify(&frame.text);
    assert!(report.is_valid(), "{:?}", report.reason);
    assert!(report.blockchain_verified && report.time_verified);

    let s = p.statistics();
    assert_eq!(s["blockchain_stats"]["cached_chains"], json!(["bitcoin"]));
    assert_eq!(s["time_provider_stats"]["active_servers"], 1);
    assert_eq!(s["generation"]["time_evidence_failures"], 0);
}

#[tokio::test]
async fn unreachable_evidence_still_gives_frames_and_is_counted() {
    // A port nobody listens on (bound, then closed) and a silent UDP socket.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c = offline_config("unreachable");
    c.time.time_servers = vec![silent.local_addr().unwrap().to_string()];
    c.time.timeout = 0.2;
    c.time.fallback_to_system = true;
    c.blockchain.enabled_chains = vec!["bitcoin".into()];
    c.blockchain
        .api_endpoints
        .insert("bitcoin".into(), format!("http://{closed}/"));
    c.blockchain.retry_attempts = 0;
    c.blockchain.timeout = 0.2;
    c.live.evidence_timeout_secs = 0.5;
    let p = QrLiveProtocol::new(&c).unwrap();
    let (frame, _) = p.generate_single(None, true, false).await.unwrap();
    assert!(frame.qr_data.blockchain_hashes.is_empty());
    assert!(p.verify(&frame.text).is_valid());
    let s = p.statistics();
    assert_eq!(s["generation"]["chain_evidence_failures"], 1, "{s}");
    assert_eq!(s["generation"]["time_evidence_failures"], 1, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_provider_and_dropping_the_object_are_contained() {
    let p = QrLiveProtocol::new(&offline_config("drop")).unwrap();
    let mut rx = p.subscribe();
    p.set_user_data_provider(|| panic!("provider failure (expected by the test)"));
    p.start().unwrap();
    for _ in 0..2 {
        let update = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(update.frame.qr_data.user_data.is_none());
    }
    assert!(
        p.statistics()["generation"]["provider_panics"]
            .as_u64()
            .unwrap()
            >= 2
    );
    // Dropping the object stops the task, which closes the channel.
    drop(p);
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = rx.recv().await {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the live task outlived its object");
}

#[test]
fn bad_configuration_lists_every_problem() {
    let mut c = offline_config("bad");
    c.identity.hash_algorithm = "md5".into();
    c.security.encryption_algorithm = "aes256".into();
    let err = QrLiveProtocol::new(&c).unwrap_err().to_string();
    assert!(err.contains("md5") && err.contains("aes256"), "{err}");
    assert!(!err.contains(HMAC_SECRET));

    let mut c = offline_config("missing");
    c.identity.auto_generate = false;
    assert!(matches!(
        QrLiveProtocol::new(&c),
        Err(qrlp_protocol::ProtocolError::IdentityMissing(_))
    ));
}
