//! The SNTP client against real RFC 4330 responders on 127.0.0.1: UDP sockets answering with
//! the real clock, one lying by an hour, one silent, one echoing the wrong originate
//! timestamp, one sending a kiss-o'-death.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use qrlp_evidence::ntp::{Header, NtpTimestamp, MODE_CLIENT, MODE_SERVER, PACKET_LEN};
use qrlp_evidence::{PacketError, ServerError, SntpClient, TimeConfig, TimeError, TimeSource};
use tokio::net::UdpSocket;

#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers with the real clock.
    Honest,
    /// Answers with the real clock plus this many seconds.
    Skewed(i64),
    /// Reads requests and never answers.
    Silent,
    /// Answers with an originate timestamp one tick off ours.
    WrongOriginate,
    /// Answers stratum 0 with this kiss code.
    Kiss(&'static [u8; 4]),
}

struct Responder {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_shifted(secs: i64) -> NtpTimestamp {
    let now = SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs.unsigned_abs())
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    };
    NtpTimestamp::from_system_time(t)
}

/// A UDP task on 127.0.0.1:0 that answers at most 100 requests, as an RFC 4330 server does.
async fn responder(behaviour: Behaviour) -> Responder {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            // A real server ignores what is not a client request.
            let Ok(request) = Header::decode(&buf[..len]) else {
                continue;
            };
            if len != PACKET_LEN || request.mode != MODE_CLIENT || request.version != 4 {
                continue;
            }
            let skew = match behaviour {
                Behaviour::Silent => continue,
                Behaviour::Skewed(s) => s,
                _ => 0,
            };
            let receive = now_shifted(skew);
            let (stratum, reference_id) = match behaviour {
                Behaviour::Kiss(code) => (0, *code),
                _ => (2, [127, 0, 0, 1]),
            };
            let originate = match behaviour {
                Behaviour::WrongOriginate => NtpTimestamp(request.transmit.0.wrapping_add(1)),
                _ => request.transmit,
            };
            let reply = Header {
                leap: 0,
                version: 4,
                mode: MODE_SERVER,
                stratum,
                poll: request.poll,
                precision: -20,
                root_delay: 0,
                root_dispersion: 0,
                reference_id,
                reference: now_shifted(skew - 30),
                originate,
                receive,
                transmit: now_shifted(skew),
            };
            let _ = socket.send_to(&reply.encode(), peer).await;
        }
    });
    Responder {
        addr,
        requests,
        task,
    }
}

fn config(servers: &[&Responder]) -> TimeConfig {
    TimeConfig {
        time_servers: servers.iter().map(|r| r.addr.to_string()).collect(),
        timeout: Duration::from_millis(200),
        ..TimeConfig::default()
    }
}

const FIFTY_MS_US: i64 = 50_000;

#[tokio::test]
async fn honest_server_gives_offset_near_zero_and_success_stats() {
    let honest = responder(Behaviour::Honest).await;
    let client = SntpClient::new(config(&[&honest]));
    let ev = client.measure().await.unwrap();
    assert_eq!(ev.source, TimeSource::Sntp);
    assert!(
        ev.offset_us.abs() < FIFTY_MS_US,
        "offset {} us",
        ev.offset_us
    );
    assert!(
        ev.delay_us >= 0 && ev.delay_us < FIFTY_MS_US,
        "delay {}",
        ev.delay_us
    );
    assert_eq!((ev.servers_queried, ev.servers_ok, ev.outliers), (1, 1, 0));
    assert!(ev.verified(Duration::from_secs(30)));
    let m = ev.per_server[0].result.as_ref().unwrap();
    assert_eq!((m.address, m.stratum, m.outlier), (honest.addr, 2, false));

    let stats = client.stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].queries, stats[0].successes, stats[0].failures),
        (1, 1, 0)
    );
    assert_eq!(stats[0].last_offset_us, Some(ev.offset_us));
    assert!(stats[0].last_success.is_some() && stats[0].last_error.is_none());

    let summary = client.summary(&ev);
    assert_eq!(summary["verified"], true);
    assert_eq!(summary["source"], "sntp");
    assert_eq!(summary["servers_ok"], 1);
    assert_eq!(summary["servers"][honest.addr.to_string()]["ok"], true);
    let provider = client.provider_stats();
    assert_eq!(provider["success_rate"], 1.0);
    assert_eq!(provider["active_servers"], 1);
    assert!(provider["last_sync"].is_f64());
}

#[tokio::test]
async fn a_liar_an_hour_ahead_is_an_outlier_and_does_not_move_the_median() {
    let a = responder(Behaviour::Honest).await;
    let liar = responder(Behaviour::Skewed(3600)).await;
    let b = responder(Behaviour::Honest).await;
    let client = SntpClient::new(config(&[&a, &liar, &b]));
    let ev = client.measure().await.unwrap();
    assert!(
        ev.offset_us.abs() < FIFTY_MS_US,
        "offset {} us",
        ev.offset_us
    );
    assert_eq!((ev.servers_ok, ev.outliers), (3, 1));
    let lie = ev.per_server[1].result.as_ref().unwrap();
    assert!(lie.outlier);
    assert!((lie.offset_us - 3_600_000_000).abs() < FIFTY_MS_US);
    assert!(ev.per_server[0].result.as_ref().is_ok_and(|m| !m.outlier));
    assert!(ev.verified(Duration::from_secs(30)));
    let summary = client.summary(&ev);
    assert_eq!(summary["servers"][liar.addr.to_string()]["outlier"], true);
    assert_eq!(summary["outliers"], 1);
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound_and_counts_as_failure() {
    let silent = responder(Behaviour::Silent).await;
    let honest = responder(Behaviour::Honest).await;
    let client = SntpClient::new(config(&[&silent, &honest]));
    let started = Instant::now();
    let ev = client.measure().await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        ev.per_server[0].result,
        Err(ServerError::Timeout(Duration::from_millis(200)))
    );
    assert_eq!(silent.requests.load(Ordering::SeqCst), 1);
    assert_eq!((ev.servers_queried, ev.servers_ok), (2, 1));
    let stats = client.stats();
    assert_eq!((stats[0].queries, stats[0].failures), (1, 1));
    assert!(stats[0].last_error.as_deref().unwrap().contains("no reply"));
    assert_eq!(stats[1].successes, 1);
    assert_eq!(client.provider_stats()["success_rate"], 0.5);
}

#[tokio::test]
async fn all_silent_falls_back_to_the_system_clock_or_errors() {
    let a = responder(Behaviour::Silent).await;
    let b = responder(Behaviour::Silent).await;
    let fallback = SntpClient::new(config(&[&a, &b]));
    let ev = fallback.measure().await.unwrap();
    assert_eq!(ev.source, TimeSource::SystemFallback);
    assert_eq!((ev.servers_queried, ev.servers_ok, ev.offset_us), (2, 0, 0));
    assert!(!ev.verified(Duration::from_secs(30)));
    assert_eq!(fallback.summary(&ev)["source"], "system_fallback");
    assert_eq!(fallback.summary(&ev)["verified"], false);

    let strict = SntpClient::new(TimeConfig {
        fallback_to_system: false,
        ..config(&[&a, &b])
    });
    match strict.measure().await {
        Err(TimeError::AllFailed { samples }) => {
            assert_eq!(samples.len(), 2);
            assert!(samples
                .iter()
                .all(|s| matches!(s.result, Err(ServerError::Timeout(_)))));
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
    assert!(strict.latest().is_none());
}

#[tokio::test]
async fn no_servers_configured() {
    let none = TimeConfig {
        time_servers: vec![],
        ..TimeConfig::default()
    };
    let ev = SntpClient::new(none.clone()).measure().await.unwrap();
    assert_eq!(
        (ev.source, ev.servers_queried),
        (TimeSource::SystemFallback, 0)
    );
    let strict = TimeConfig {
        fallback_to_system: false,
        ..none
    };
    assert!(!strict.validate().is_empty());
    assert_eq!(
        SntpClient::new(strict).measure().await,
        Err(TimeError::NoServers)
    );
}

#[tokio::test]
async fn a_reply_with_the_wrong_originate_timestamp_is_rejected() {
    let spoof = responder(Behaviour::WrongOriginate).await;
    let client = SntpClient::new(TimeConfig {
        fallback_to_system: false,
        ..config(&[&spoof])
    });
    let Err(TimeError::AllFailed { samples }) = client.measure().await else {
        panic!("expected a failure");
    };
    assert_eq!(
        samples[0].result,
        Err(ServerError::Packet(PacketError::OriginateMismatch))
    );
    assert_eq!(client.stats()[0].failures, 1);
}

#[tokio::test]
async fn kiss_o_death_is_rejected_with_its_code() {
    let kiss = responder(Behaviour::Kiss(b"RATE")).await;
    let honest = responder(Behaviour::Honest).await;
    let client = SntpClient::new(config(&[&kiss, &honest]));
    let ev = client.measure().await.unwrap();
    assert_eq!(
        ev.per_server[0].result,
        Err(ServerError::Packet(PacketError::KissOfDeath {
            code: "RATE".into()
        }))
    );
    assert_eq!(ev.servers_ok, 1);
    let summary = client.summary(&ev);
    let error = summary["servers"][kiss.addr.to_string()]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("RATE"), "{error}");
}

#[tokio::test]
async fn a_closed_port_and_a_malformed_name_fail_without_waiting() {
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let client = SntpClient::new(TimeConfig {
        time_servers: vec![closed.to_string(), "bad host".into()],
        timeout: Duration::from_secs(5),
        ..TimeConfig::default()
    });
    let started = Instant::now();
    let ev = client.measure().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        matches!(ev.per_server[0].result, Err(ServerError::Io(_))),
        "{:?}",
        ev.per_server[0].result
    );
    assert!(matches!(
        ev.per_server[1].result,
        Err(ServerError::Resolve(_))
    ));
    assert_eq!(ev.source, TimeSource::SystemFallback);
}

#[tokio::test]
async fn evidence_is_reused_within_the_update_interval() {
    let honest = responder(Behaviour::Honest).await;
    let client = SntpClient::new(TimeConfig {
        update_interval: Duration::from_secs(60),
        ..config(&[&honest])
    });
    let first = client.evidence().await.unwrap();
    let second = client.evidence().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(honest.requests.load(Ordering::SeqCst), 1);
    assert_eq!(client.latest(), Some(first));
    // measure() always asks again.
    client.measure().await.unwrap();
    assert_eq!(honest.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn ipv6_loopback_when_available() {
    let Ok(socket) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    let addr = socket.local_addr().unwrap();
    drop(socket);
    // A closed IPv6 port proves the name form parses and the address family is right.
    let client = SntpClient::new(TimeConfig {
        time_servers: vec![format!("[::1]:{}", addr.port())],
        timeout: Duration::from_millis(200),
        ..TimeConfig::default()
    });
    let ev = client.measure().await.unwrap();
    assert!(
        matches!(
            ev.per_server[0].result,
            Err(ServerError::Io(_) | ServerError::Timeout(_))
        ),
        "{:?}",
        ev.per_server[0].result
    );
}
