//! What the server spends on one signed device request: header parsing, the timestamp
//! window, the Ed25519 signature over the canonical message (with the body digest) and
//! the replay cache. Target: at most 100 µs median.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use qrlp_fleet::replay::ReplayCache;
use qrlp_fleet::signing::{
    check_timestamp, verify_signature, DeviceKey, Request, SignedHeaders, DEFAULT_TOLERANCE_SECS,
};

fn bench(c: &mut Criterion) {
    let key = DeviceKey::generate();
    let public = key.public_key();
    let path = "/api/v1/devices/dev_0123456789abcdefghij/heartbeat";
    let body = br#"{"status":"online","metrics":{"cpu_usage":12.5,"memory_usage":40.1}}"#;
    let now = 1_767_225_600;
    // A pool of distinct signed requests so the replay cache sees fresh nonces.
    let requests: Vec<Vec<(&'static str, String)>> = (0..4096)
        .map(|_| {
            key.sign_request(
                "dev_0123456789abcdefghij",
                1,
                &Request {
                    method: "POST",
                    path_and_query: path,
                    body,
                },
                now,
                None,
            )
            .to_pairs()
            .to_vec()
        })
        .collect();
    let mut i = 0usize;
    let mut cache = ReplayCache::new(1_000_000);
    c.bench_function("verify_signed_request", |b| {
        b.iter(|| {
            i += 1;
            if i.is_multiple_of(requests.len()) {
                cache = ReplayCache::new(1_000_000);
            }
            let pairs = &requests[i % requests.len()];
            let h = SignedHeaders::parse(|n: &str| {
                pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
            })
            .unwrap();
            check_timestamp(h.timestamp, now, DEFAULT_TOLERANCE_SECS).unwrap();
            verify_signature(&public, "POST", path, &h, black_box(body)).unwrap();
            cache
                .check_and_remember(
                    &h.device_id,
                    &h.nonce,
                    h.timestamp,
                    now,
                    DEFAULT_TOLERANCE_SECS,
                )
                .unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
