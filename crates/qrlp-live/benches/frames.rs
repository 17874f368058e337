//! Live-frame benches: generate + sign + encode + render an Ed25519 frame; verify; FN-DSA
//! and hybrid sign and verify.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use qrlp_live::rand_core::OsRng;
use qrlp_live::{
    FrameContent, Generator, KeySet, Seal, SigningIdentity, Suite, Verifier, VerifierOptions,
};
use qrlp_qr::{Options, QrCode};
use qrlp_render::{render_png, RenderOptions};

const TS: u64 = 1_736_609_445_123;

fn content(seq: u64) -> FrameContent {
    FrameContent {
        sequence: seq,
        timestamp_ms: TS,
        ttl_ms: 10_000,
        anchors: BTreeMap::from([(
            "bitcoin".to_owned(),
            "00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d".to_owned(),
        )]),
        ..FrameContent::default()
    }
}

fn benches(c: &mut Criterion) {
    let id =
        Arc::new(SigningIdentity::generate(&mut OsRng, true).unwrap_or_else(|e| panic!("{e}")));
    let keys = KeySet::from_identity(&id, 0, None);
    let opts = VerifierOptions {
        replay_cache_capacity: 0,
        ..VerifierOptions::default()
    };
    let verifier = Verifier::new(keys, opts);
    let ed = Generator::new(id.clone());

    let mut seq = 0u64;
    c.bench_function("ed25519 generate+sign+encode+render PNG", |b| {
        b.iter(|| {
            seq += 1;
            let text = ed
                .compact(&content(seq), Seal::default(), &mut OsRng)
                .unwrap_or_default();
            let code = QrCode::encode_text_with(&text, &Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(render_png(&code, &RenderOptions::default()).unwrap_or_default())
        })
    });
    let frame = ed
        .compact(&content(1), Seal::default(), &mut OsRng)
        .unwrap_or_default();
    c.bench_function("ed25519 sign+encode (text only)", |b| {
        b.iter(|| black_box(ed.compact(&content(1), Seal::default(), &mut OsRng)))
    });
    c.bench_function("ed25519 verify compact", |b| {
        b.iter(|| {
            let r = verifier.verify(black_box(&frame), TS + 1);
            assert!(r.is_valid());
            r
        })
    });
    for suite in [Suite::FnDsa512, Suite::Hybrid] {
        let g = Generator::new(id.clone())
            .with_suite(suite)
            .unwrap_or_else(|e| panic!("{e}"));
        c.bench_function(&format!("{suite} sign+encode compact"), |b| {
            b.iter(|| black_box(g.compact(&content(1), Seal::default(), &mut OsRng)))
        });
        let f = g
            .compact(&content(1), Seal::default(), &mut OsRng)
            .unwrap_or_default();
        c.bench_function(&format!("{suite} verify compact"), |b| {
            b.iter(|| {
                let r = verifier.verify(black_box(&f), TS + 1);
                assert!(r.is_valid());
                r
            })
        });
    }
    let j = ed
        .json(&content(1), Seal::default(), &mut OsRng)
        .map(|d| d.to_json())
        .unwrap_or_default();
    c.bench_function("ed25519 verify json", |b| {
        b.iter(|| black_box(verifier.verify(black_box(&j), TS + 1)))
    });
}

criterion_group!(frames, benches);
criterion_main!(frames);
