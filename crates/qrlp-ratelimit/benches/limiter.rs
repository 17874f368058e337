//! Cost of one rate-limit check: the local limiter on a hot key and across 10,000 keys, and
//! the Redis limiter (one script round trip) when `QRLP_TEST_REDIS_URL` is set.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use qrlp_ratelimit::{LocalLimiter, Quota, RedisLimiter};

fn local(c: &mut Criterion) {
    let mut group = c.benchmark_group("local");
    let quota = Quota::per_hour(100_000);

    let limiter = LocalLimiter::new();
    group.bench_function("hot_key", |b| {
        b.iter(|| limiter.check(black_box("org:6f1c2a44-0000-4000-8000-000000000001"), quota))
    });

    let limiter = LocalLimiter::new();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let mut next = 0;
    group.bench_function("10k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            limiter.check(black_box(&keys[next]), quota)
        })
    });
    group.finish();
}

fn redis(c: &mut Criterion) {
    let Ok(url) = std::env::var("QRLP_TEST_REDIS_URL") else {
        eprintln!("SKIPPED redis bench: QRLP_TEST_REDIS_URL not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("qrlp-bench:ratelimit:{}:{nanos}:", std::process::id());
    let limiter = runtime
        .block_on(RedisLimiter::connect(&url, &prefix, Duration::from_secs(1)))
        .expect("QRLP_TEST_REDIS_URL is set but Redis is unusable");
    let quota = Quota::per_hour(100_000);

    let mut group = c.benchmark_group("redis");
    group.bench_function("hot_key", |b| {
        b.iter(|| runtime.block_on(limiter.check(black_box("org:bench"), quota)))
    });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let mut next = 0;
    group.bench_function("10k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            runtime.block_on(limiter.check(black_box(&keys[next]), quota))
        })
    });
    group.finish();

    // Leave nothing behind (the keys would expire within the hour anyway).
    runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let mut doomed = vec![format!("{prefix}org:bench")];
        doomed.extend(keys.iter().map(|k| format!("{prefix}{k}")));
        for chunk in doomed.chunks(1000) {
            let () = redis::cmd("DEL")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .expect("DEL");
        }
    });
}

criterion_group!(benches, local, redis);
criterion_main!(benches);
