//! Frame sizes measured with the workspace QR encoder (ECC M), as docs/qrlp-frames.md §7
//! reports them. (The published test vectors are checked by `src/vectors.rs`.)

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use qrlp_live::fuzz::TestRng;
use qrlp_live::{FrameContent, Generator, HmacKey, Seal, SigningIdentity, Suite, TimeEvidence};
use qrlp_qr::{Options, QrCode, SymbolVersion};

const TS: u64 = 1_736_609_445_123;
const BTC: &str = "00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d";

fn pq() -> Arc<SigningIdentity> {
    static PQ: OnceLock<Arc<SigningIdentity>> = OnceLock::new();
    PQ.get_or_init(|| {
        Arc::new(
            SigningIdentity::from_ed25519_seed([0x42; 32])
                .with_generated_fn_dsa(&mut TestRng(1))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .clone()
}

fn typical() -> FrameContent {
    FrameContent {
        sequence: 1234,
        timestamp_ms: TS,
        ttl_ms: 10_000,
        anchors: BTreeMap::from([("bitcoin".to_owned(), BTC.to_owned())]),
        ..FrameContent::default()
    }
}

fn version(text: &str) -> u8 {
    match QrCode::encode_text_with(text, &Options::default()).map(|c| c.version()) {
        Ok(SymbolVersion::Normal(v)) => v.number(),
        other => panic!("encode: {other:?}"),
    }
}

#[test]
fn size_targets_hold() {
    let id = pq();
    let hmac = Arc::new(HmacKey::from_secret("h1", &[0x11; 32]).unwrap_or_else(|e| panic!("{e}")));
    let mut rows = Vec::new();
    let mut full = typical();
    full.time_evidence = Some(TimeEvidence {
        offset_ms: -12,
        servers_agreed: 3,
        servers_queried: 4,
    });
    for (label, suite, with_hmac, content) in [
        (
            "Ed25519 compact (ts, seq, kid, identity, 1 anchor)",
            Suite::Ed25519,
            false,
            typical(),
        ),
        (
            "Ed25519 compact + HMAC + time evidence",
            Suite::Ed25519,
            true,
            full.clone(),
        ),
        ("FN-DSA-512 compact", Suite::FnDsa512, false, typical()),
        ("Hybrid compact", Suite::Hybrid, false, typical()),
    ] {
        let mut g = Generator::new(id.clone())
            .with_suite(suite)
            .unwrap_or_else(|e| panic!("{e}"));
        if with_hmac {
            g = g.with_hmac_key(hmac.clone());
        }
        let text = g
            .compact(&content, Seal::default(), &mut TestRng(2))
            .unwrap_or_else(|e| panic!("{e}"));
        rows.push((label, suite, text.len(), version(&text)));
        let j = g
            .json(&content, Seal::default(), &mut TestRng(2))
            .unwrap_or_else(|e| panic!("{e}"))
            .to_json();
        rows.push((label, suite, j.len(), version(&j)));
    }
    eprintln!("| frame | format | characters | QR version (ECC M) |");
    for (i, (label, _, len, v)) in rows.iter().enumerate() {
        eprintln!(
            "| {label} | {} | {len} | {v} |",
            if i % 2 == 0 { "compact" } else { "JSON" }
        );
    }
    assert!(
        rows[0].3 <= 10,
        "Ed25519 compact frame needs version {}",
        rows[0].3
    );
    assert!(
        rows[4].3 <= 24,
        "FN-DSA compact frame needs version {}",
        rows[4].3
    );
}
