//! Frame sizes measured with the workspace QR encoder (ECC M), and the published test
//! vectors of docs/qrlp-frames.md.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use qrlp_live::rand_core::{CryptoRng, RngCore};
use qrlp_live::{
    FrameContent, Generator, HmacKey, KeySet, Seal, SigningIdentity, Suite, TimeEvidence, Verifier,
    VerifierOptions,
};
use qrlp_qr::{Options, QrCode, SymbolVersion};

const TS: u64 = 1_736_609_445_123;
const BTC: &str = "00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d";

/// A fixed, non-secret byte stream for reproducible FN-DSA keys (tests only).
struct Counter(u64);
impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 ^ (self.0 >> 29)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 56) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), qrlp_live::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Counter {}

fn pq() -> Arc<SigningIdentity> {
    static PQ: OnceLock<Arc<SigningIdentity>> = OnceLock::new();
    PQ.get_or_init(|| {
        Arc::new(
            SigningIdentity::from_ed25519_seed([0x42; 32])
                .with_generated_fn_dsa(&mut Counter(1))
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
        identity_hash: (0..32).map(|i| i * 7).collect(),
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
            .compact(&content, Seal::default(), &mut Counter(2))
            .unwrap_or_else(|e| panic!("{e}"));
        rows.push((label, suite, text.len(), version(&text)));
        let j = g
            .json(&content, Seal::default(), &mut Counter(2))
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

#[test]
fn published_test_vectors() {
    let id = Arc::new(SigningIdentity::from_ed25519_seed([0x42; 32]));
    let g = Generator::new(id.clone());
    let c = typical();
    let compact = g
        .compact(&c, Seal::default(), &mut Counter(0))
        .unwrap_or_else(|e| panic!("{e}"));
    let json = g
        .json(&c, Seal::default(), &mut Counter(0))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json();
    let gh = g.clone().with_hmac_key(Arc::new(
        HmacKey::from_secret("h1", &[0x11; 32]).unwrap_or_else(|e| panic!("{e}")),
    ));
    let mut full = c.clone();
    full.time_evidence = Some(TimeEvidence {
        offset_ms: -12,
        servers_agreed: 3,
        servers_queried: 4,
    });
    let mut user = qrlp_live::UserData::new();
    user.insert("user_text".into(), "hi".into());
    full.user_data = Some(user);
    let compact_hmac = gh
        .compact(&full, Seal::default(), &mut Counter(0))
        .unwrap_or_else(|e| panic!("{e}"));
    let json_hmac = gh
        .json(&full, Seal::default(), &mut Counter(0))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json();
    eprintln!(
        "KID {}",
        id.key_id(Suite::Ed25519)
            .map(|k| k.to_string())
            .unwrap_or_default()
    );
    eprintln!("V1 {compact}\nV2 {json}\nV3 {compact_hmac}\nV4 {json_hmac}");
    let v = Verifier::new(
        KeySet::from_identity(&id, 0, None),
        VerifierOptions {
            replay_cache_capacity: 0,
            ..VerifierOptions::default()
        },
    );
    for t in [&compact, &json, &compact_hmac, &json_hmac] {
        assert!(v.verify(t, TS + 1).is_valid());
    }
    assert_eq!(compact, VECTOR_COMPACT);
    assert_eq!(json, VECTOR_JSON);
    assert_eq!(compact_hmac, VECTOR_COMPACT_HMAC);
    assert_eq!(json_hmac, VECTOR_JSON_HMAC);
}

const VECTOR_COMPACT: &str =
    "QL1:9RGXZ7100D70J66SUS9US6H9.B0JR0UH0000:808*AQV6EN0A.4AU07005Z13P31F5:47.*8+TA%JCW$0D70I$4Q69YKD.YHQJG27BM:B7DGCJS016EOM+IT4X1IFFL%Q3WUY+7.DP6CCP7PQ.G2QNKN0G47O85+K6CP3XSLZXDBCV*YB.6E**S7EJT2J7CO$8U95LL5";
const VECTOR_JSON: &str = r#"{"timestamp":"2025-01-11T15:30:45.123Z","identity_hash":"00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9","blockchain_hashes":{"bitcoin":"00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d"},"time_server_verification":{},"sequence_number":1234,"digital_signature":"Pw8JP8f0NElMu2tOx6Lc/FhF22IvqLMljVTTtfagMYqckV90TZ5rQPCGyMKKJtMLfyqKRtoWPdcmwuFXuaxgAA==","signing_key_id":"3097e2dee2cb4a34","signature_algorithm":"ed25519"}"#;
const VECTOR_COMPACT_HMAC: &str =
    "QL1:9RG0/A100D70J66SUS9US6H9.B0JR0UH0000:808*AQV6EN0A.4AU07005Z13P31F5:47.*8+TA%JCW$0D70I$4Q69YKD.YHX.0VJ5.M0CLE1G4LQETKE7WEBAFWE4XF44DD0*FT70%885JH$LLBTE3YIG.K7W3GA2LOLQ-PA2FI347SVC3VMCEPGVC4LDMK9679/PIGEV+AZ2AG5WVUVB86NT80EW**R$2I2:L/4QFV0$JCOA68*ST7WSALSE0ZZGCWVPI31WN";
const VECTOR_JSON_HMAC: &str = r#"{"timestamp":"2025-01-11T15:30:45.123Z","identity_hash":"00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9","blockchain_hashes":{"bitcoin":"00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d"},"time_server_verification":{"offset_ms":-12,"servers_agreed":3,"servers_queried":4},"user_data":{"user_text":"hi"},"sequence_number":1234,"digital_signature":"ZoVo1su6oycDtUmoPDlGrlCQNWYYHuJRKJ80b7/++Wluc4hwTemk490Y6suE9M1uvID0zPllvfi5ZPKotxTbDw==","signing_key_id":"3097e2dee2cb4a34","signature_algorithm":"ed25519","_hmac":"9373f82b93e7439504de7bf2777330f4623f88e25586ecb091ff35f809123077","_hmac_key_id":"h1","_hmac_algorithm":"sha256"}"#;
