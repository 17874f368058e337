//! The Redis limiter against a real Redis (`QRLP_TEST_REDIS_URL`), and the outage policy
//! against unreachable and silent servers on the loopback interface (no Redis needed).
//!
//! Every test that uses Redis works under its own random key prefix and deletes its keys at
//! the end (keys left by a failed test expire within their quota's period anyway).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qrlp_ratelimit::{Decision, FailMode, LimitError, Limiter, LocalLimiter, Quota, RedisLimiter};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_millis(500);
/// Generous headroom over [`TIMEOUT`] for a loaded machine: the point is "no hang".
const NO_HANG: Duration = Duration::from_secs(3);

fn redis_url() -> Option<String> {
    match std::env::var("QRLP_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED redis: QRLP_TEST_REDIS_URL not set");
            None
        }
    }
}

/// A key prefix no other run or test shares.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("qrlp-test:ratelimit:{test}:{}:{nanos}:", std::process::id())
}

async fn connect(url: &str, prefix: &str) -> RedisLimiter {
    match RedisLimiter::connect(url, prefix, TIMEOUT).await {
        Ok(limiter) => limiter,
        Err(e) => panic!("QRLP_TEST_REDIS_URL is set but Redis is unusable: {e}"),
    }
}

async fn check(limiter: &RedisLimiter, key: &str, quota: Quota) -> Decision {
    match limiter.check(key, quota).await {
        Ok(decision) => decision,
        Err(e) => panic!("check {key}: {e}"),
    }
}

/// Deletes every key under `prefix` and confirms none is left.
async fn cleanup(url: &str, prefix: &str) {
    let client = redis::Client::open(url).expect("the URL parsed before");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for cleanup");
    let pattern = format!("{prefix}*");
    for _ in 0..2 {
        let mut cursor = 0u64;
        for _ in 0..10_000 {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            if !keys.is_empty() {
                let () = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .expect("DEL");
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    let (_, left): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(100_000)
        .query_async(&mut conn)
        .await
        .expect("SCAN");
    assert!(left.is_empty(), "keys left behind: {left:?}");
}

fn assert_close(a: Duration, b: Duration, within: Duration, what: &str) {
    let gap = a.abs_diff(b);
    assert!(gap <= within, "{what}: {a:?} vs {b:?}");
}

#[tokio::test]
async fn exactly_limit_then_refused_with_header_data() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("exact");
    let limiter = connect(&url, &prefix).await;
    let quota = Quota::per_hour(100); // T = 36 s
    let key = "org:6f1c2a44-0000-4000-8000-000000000001";
    let started = Instant::now();
    for i in 0..100u32 {
        let d = check(&limiter, key, quota).await;
        assert!(
            d.allowed && !d.degraded && d.retry_after.is_none(),
            "request {i}"
        );
        assert_eq!((d.limit, d.remaining), (100, 99 - i));
        // The TAT moves 36 s per request; Redis' clock moved on by the time elapsed.
        let expected = Duration::from_secs(36 * u64::from(i + 1));
        assert_close(d.reset_after, expected, started.elapsed(), "reset_after");
    }
    for _ in 0..3 {
        let d = check(&limiter, key, quota).await;
        assert!(!d.allowed && !d.degraded);
        assert_eq!((d.limit, d.remaining), (100, 0));
        assert_close(
            d.reset_after,
            Duration::from_secs(3600),
            started.elapsed(),
            "reset_after",
        );
        // 36 s less the time elapsed, rounded up to whole seconds.
        let retry = d.retry_after.expect("refused requests carry Retry-After");
        assert!(
            retry == Duration::from_secs(36)
                || (retry == Duration::from_secs(35)
                    && started.elapsed() >= Duration::from_secs(1)),
            "{retry:?}"
        );
    }

    // The key holds the TAT and vanishes when it has passed.
    let client = redis::Client::open(url.as_str()).expect("URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let full_key = format!("{prefix}{key}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&full_key)
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    assert!(pttl > 3_590_000 && pttl <= 3_600_000, "PTTL {pttl}");
    let stored: String = redis::cmd("GET")
        .arg(&full_key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert!(stored.bytes().all(|b| b.is_ascii_digit()), "TAT {stored:?}");
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_limiters_share_one_budget() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("shared");
    // Two instances, two connections: as two server processes would have.
    let first = Arc::new(connect(&url, &prefix).await);
    let second = Arc::new(connect(&url, &prefix).await);
    let quota = Quota::per_hour(100);
    let tasks: Vec<JoinHandle<usize>> = (0..6)
        .map(|i| {
            let limiter = Arc::clone(if i % 2 == 0 { &first } else { &second });
            tokio::spawn(async move {
                let mut accepted = 0;
                for _ in 0..50 {
                    if check(&limiter, "org:shared", quota).await.allowed {
                        accepted += 1;
                    }
                }
                accepted
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    assert_eq!(total, 100, "accepted out of 300 attempts");
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn local_and_redis_give_the_same_sequence() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("agree");
    let redis = connect(&url, &prefix).await;
    let local = LocalLimiter::new();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let started = Instant::now();
    for quota in [
        Quota::per_hour(5),
        Quota::per_minute(3),
        Quota::per_hour(1),
        Quota::new(7, Duration::from_secs(3600)).expect("valid"),
    ] {
        let key = format!("ip:2001:db8::{}", quota.limit);
        for i in 0..(quota.limit + 3) {
            let r = check(&redis, &key, quota).await;
            let l = local.check_at(&key, quota, now_us);
            // Redis' clock runs on during the test; no cell is freed that fast.
            let drift = started.elapsed() + Duration::from_millis(1);
            assert_eq!(
                (r.allowed, r.limit, r.remaining),
                (l.allowed, l.limit, l.remaining),
                "{quota:?} #{i}"
            );
            assert_close(r.reset_after, l.reset_after, drift, "reset_after");
            match (r.retry_after, l.retry_after) {
                (None, None) => {}
                (Some(r), Some(l)) => assert_close(r, l, Duration::from_secs(1), "retry_after"),
                other => panic!("{quota:?} #{i}: {other:?}"),
            }
        }
    }
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn keys_are_opaque_and_prefixed() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("opaque");
    let limiter = connect(&url, &prefix).await;
    let quota = Quota::per_minute(1);
    for key in ["ip:::1", "ip:2001:db8::1", "org:a b*c?[x]", "", "ключ"] {
        assert!(check(&limiter, key, quota).await.allowed, "{key:?}");
        assert!(!check(&limiter, key, quota).await.allowed, "{key:?}");
    }
    assert_eq!(limiter.key_prefix(), prefix);
    assert!(matches!(
        limiter.check("k", Quota::per_hour(0)).await,
        Err(LimitError::InvalidQuota(_))
    ));
    cleanup(&url, &prefix).await;
}

/// A port on the loopback interface that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

async fn assert_outage_policy(url: &str) {
    let started = Instant::now();
    let open = Limiter::Redis {
        redis: RedisLimiter::lazy(url, "t:", TIMEOUT).expect("URL parses"),
        fail_mode: FailMode::Open,
    };
    let quota = Quota::per_hour(100);
    for _ in 0..3 {
        let d = open.check("org:x", quota).await.expect("fail open allows");
        assert!(d.allowed && d.degraded);
        assert_eq!((d.limit, d.remaining), (100, 99));
        assert_eq!(d.reset_after, Duration::from_secs(36));
        assert_eq!(d.retry_after, None);
    }
    assert!(matches!(
        open.health().await,
        Err(LimitError::Unavailable(_))
    ));
    // An invalid quota is a caller's bug, never allowed by failing open.
    assert!(matches!(
        open.check("org:x", Quota::per_hour(0)).await,
        Err(LimitError::InvalidQuota(_))
    ));

    let closed = Limiter::Redis {
        redis: RedisLimiter::lazy(url, "t:", TIMEOUT).expect("URL parses"),
        fail_mode: FailMode::Closed,
    };
    for _ in 0..3 {
        assert!(matches!(
            closed.check("org:x", quota).await,
            Err(LimitError::Unavailable(_))
        ));
    }
    assert!(matches!(
        closed.health().await,
        Err(LimitError::Unavailable(_))
    ));
    assert!(matches!(
        RedisLimiter::connect(url, "t:", TIMEOUT).await,
        Err(LimitError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < 6 * NO_HANG,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn outage_policy_when_nothing_listens() {
    let port = closed_port().await;
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    assert_outage_policy(&url).await;
    // Refused connections fail at once, without waiting for the timeout.
    assert!(started.elapsed() < NO_HANG, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn outage_policy_when_the_server_is_silent() {
    // Accepts connections and never answers: every call must end at its timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let keep = Arc::clone(&held);
    let acceptor = tokio::spawn(async move {
        for _ in 0..1000 {
            match listener.accept().await {
                Ok((stream, _)) => keep.lock().expect("lock").push(stream),
                Err(_) => return,
            }
        }
    });
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let limiter = RedisLimiter::lazy(&url, "t:", TIMEOUT).expect("URL parses");
    let result = limiter.check("org:x", Quota::per_hour(100)).await;
    assert!(
        matches!(result, Err(LimitError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < NO_HANG, "took {:?}", started.elapsed());
    assert_outage_policy(&url).await;
    acceptor.abort();
}

/// A TCP relay on the loopback interface that can be cut and restored, to play a Redis
/// outage without stopping the shared Redis.
struct Relay {
    acceptor: JoinHandle<()>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(port: u16, upstream: String) -> (Self, u16) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(([127, 0, 0, 1], port).into())
            .expect("bind the relay port");
        let listener = socket.listen(64).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let spawned = Arc::clone(&links);
        let acceptor = tokio::spawn(async move {
            for _ in 0..1000 {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream.as_str()).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                spawned.lock().expect("lock").push(link);
            }
        });
        (Self { acceptor, links }, port)
    }

    /// Closes the listener and every relayed connection.
    async fn cut(self) {
        self.acceptor.abort();
        let _ = self.acceptor.await;
        let links: Vec<JoinHandle<()>> = self.links.lock().expect("lock").drain(..).collect();
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }
}

/// `redis://[user:pass@]host[:port][/db]` → (`host:port`, the URL with `host:port` replaced).
fn split_authority(url: &str, replacement: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a redis:// URL");
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), rest),
    };
    let (authority, path) = match hostpart.find('/') {
        Some(i) => hostpart.split_at(i),
        None => (hostpart, ""),
    };
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty());
    let upstream = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:6379")
    };
    (
        upstream,
        format!("{scheme}://{userinfo}{replacement}{path}"),
    )
}

#[tokio::test]
async fn lazy_limiter_reconnects_after_an_outage() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("reconnect");
    let (upstream, _) = split_authority(&url, "");
    let (relay, port) = Relay::start(0, upstream.clone()).await;
    let (_, relayed_url) = split_authority(&url, &format!("127.0.0.1:{port}"));
    let limiter = Limiter::Redis {
        redis: RedisLimiter::lazy(&relayed_url, &prefix, TIMEOUT).expect("URL parses"),
        fail_mode: FailMode::Closed,
    };
    let quota = Quota::per_hour(10);
    let d = limiter
        .check("org:r", quota)
        .await
        .expect("first use connects");
    assert_eq!(d.remaining, 9);

    relay.cut().await;
    let mut refused = 0;
    for _ in 0..3 {
        if matches!(
            limiter.check("org:r", quota).await,
            Err(LimitError::Unavailable(_))
        ) {
            refused += 1;
        }
    }
    assert_eq!(refused, 3, "every check during the outage is Unavailable");
    assert!(limiter.health().await.is_err());

    let (relay, _) = Relay::start(port, upstream).await;
    let mut recovered = None;
    for _ in 0..50 {
        match limiter.check("org:r", quota).await {
            Ok(d) => {
                recovered = Some(d);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // The budget kept in Redis carries on: one request before the outage, one now.
    let d = recovered.expect("the limiter reconnects once Redis is back");
    assert_eq!((d.allowed, d.remaining), (true, 8));
    assert_eq!(limiter.health().await, Ok(()));
    relay.cut().await;
    cleanup(&url, &prefix).await;
}

#[test]
fn authority_split() {
    assert_eq!(
        split_authority("redis://127.0.0.1:6379", "H:1"),
        ("127.0.0.1:6379".into(), "redis://H:1".into())
    );
    assert_eq!(
        split_authority("redis://:pw@localhost/2", "H:1"),
        ("localhost:6379".into(), "redis://:pw@H:1/2".into())
    );
    assert_eq!(
        split_authority("redis://[::1]:6380/0", "H:1"),
        ("[::1]:6380".into(), "redis://H:1/0".into())
    );
}
