//! Behaviour tests of generation and verification, one failure at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;

use crate::cbor::Encoder;
use crate::*;

pub(crate) const NOW: u64 = 1_736_609_445_123;
const BTC: &str = "00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn ed() -> Arc<SigningIdentity> {
    Arc::new(SigningIdentity::from_ed25519_seed([1; 32]))
}

/// One FN-DSA identity for the whole test run (key generation is slow in debug builds).
fn pq() -> Arc<SigningIdentity> {
    static PQ: OnceLock<Arc<SigningIdentity>> = OnceLock::new();
    PQ.get_or_init(|| {
        let id = SigningIdentity::generate(&mut rng(7), true);
        Arc::new(id.unwrap_or_else(|e| panic!("keygen: {e}")))
    })
    .clone()
}

fn content(seq: u64) -> FrameContent {
    let mut user = UserData::new();
    user.insert("user_text".into(), Value::String("Welcome!".into()));
    FrameContent {
        sequence: seq,
        timestamp_ms: NOW,
        ttl_ms: 10_000,
        anchors: BTreeMap::from([("bitcoin".to_owned(), BTC.to_owned())]),
        time_evidence: Some(TimeEvidence {
            offset_ms: -12,
            servers_agreed: 3,
            servers_queried: 4,
        }),
        user_data: Some(user),
        ..FrameContent::default()
    }
}

fn verifier_for(id: &SigningIdentity) -> Verifier {
    Verifier::new(
        KeySet::from_identity(id, 0, None),
        VerifierOptions::default(),
    )
}

fn hmac() -> Arc<HmacKey> {
    Arc::new(HmacKey::from_secret("h1", &[0x11; 32]).unwrap_or_else(|e| panic!("{e}")))
}

fn data_key() -> Arc<DataKey> {
    Arc::new(DataKey::from_secret("d1", &[0x22; 32]).unwrap_or_else(|e| panic!("{e}")))
}

/// The payload and HMAC items as encoded in a frame: what the signature covers.
fn signed_part(payload: &[u8], mac: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut e = Encoder::default();
    e.bytes(payload);
    match mac {
        Some((name, tag)) => {
            e.array(2);
            e.text(name);
            e.bytes(tag);
        }
        None => e.null(),
    }
    e.buf
}

/// A hand-made compact frame text: `[payload, mac, [suite, sigs...] / null]`.
fn frame_text(
    payload: &[u8],
    mac: Option<(&str, &[u8])>,
    sig: Option<(u64, &[Vec<u8>])>,
) -> String {
    let mut e = Encoder::default();
    e.array(3);
    e.buf.extend_from_slice(&signed_part(payload, mac));
    match sig {
        Some((suite, sigs)) => {
            e.array(1 + sigs.len());
            e.uint(suite);
            for s in sigs {
                e.bytes(s);
            }
        }
        None => e.null(),
    }
    let mut s = String::from(COMPACT_PREFIX);
    crate::base45::encode_into(&e.buf, &mut s);
    s
}

fn compact(g: &Generator, c: &FrameContent, seal: Seal) -> String {
    g.compact(c, seal, &mut rng(1))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn json(g: &Generator, c: &FrameContent, seal: Seal) -> String {
    g.json(c, seal, &mut rng(1))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json()
}

fn expect(report: &VerificationReport, code: ReasonCode) {
    assert_eq!(report.reason.code, code, "{}", report.to_json());
    assert_eq!(
        report.is_valid(),
        code == ReasonCode::Ok,
        "{}",
        report.to_json()
    );
}

#[test]
fn compact_round_trip_and_verify() {
    let g = Generator::new(ed());
    let text = compact(&g, &content(5), Seal::default());
    assert!(text
        .bytes()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || b" $%*+-./:".contains(&c)));
    let f = CompactFrame::decode(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.payload.sequence, 5);
    assert_eq!(f.payload.timestamp_ms, NOW);
    assert_eq!(f.payload.identity, g.identity_hash()[..16]);
    assert_eq!(
        f.payload.anchors["bitcoin"],
        anchor_tag(BTC).unwrap_or_default()
    );
    assert_eq!(f.payload.user_data, content(5).user_data);
    // Re-encoding the decoded payload gives the same bytes (canonical form).
    assert_eq!(f.payload.encode(true), f.payload_bytes);
    let r = verifier_for(&ed()).verify(&text, NOW + 500);
    expect(&r, ReasonCode::Ok);
    assert!(r.valid_json && r.signature_verified && r.time_verified && !r.encrypted);
    assert_eq!(r.key_id, ed().key_id(Suite::Ed25519).map(|k| k.to_string()));
    assert_eq!(r.algorithm.as_deref(), Some("ed25519"));
    assert_eq!(r.age_ms, Some(500));
    assert_eq!(r.format, Some("compact"));
}

#[test]
fn json_round_trip_and_verify() {
    let g = Generator::new(ed()).with_hmac_key(hmac());
    let text = json(&g, &content(6), Seal::default());
    let d = QrData::from_json(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.to_json(), text);
    assert_eq!(d.sequence_number, 6);
    assert_eq!(d.timestamp, "2025-01-11T15:30:45.123Z");
    assert_eq!(d.blockchain_hashes["bitcoin"], BTC);
    assert_eq!(d.time_evidence().map(|t| t.servers_agreed), Some(3));
    assert_eq!(d.hmac_algorithm.as_deref(), Some("sha256"));
    assert!(d.is_enhanced());
    let v = verifier_for(&ed()).with_hmac_key(hmac());
    let r = v.verify(&text, NOW + 1000);
    expect(&r, ReasonCode::Ok);
    assert!(r.hmac_verified && r.signature_verified);
    assert_eq!(r.user_data, content(6).user_data);
    // Whitespace and key order do not matter: what is signed is the canonical form.
    let v2: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let pretty = serde_json::to_string_pretty(&v2).unwrap_or_default();
    expect(&verifier_for(&ed()).verify(&pretty, NOW), ReasonCode::Ok);
}

#[test]
fn property_round_trip_random_fields() {
    let g = Generator::new(ed());
    let v = Verifier::new(
        KeySet::from_identity(&ed(), 0, None),
        VerifierOptions {
            replay_cache_capacity: 0,
            ..VerifierOptions::default()
        },
    );
    let mut r = rng(99);
    use rand_core::RngCore as _;
    for i in 0..200 {
        let ts = r.next_u64() % MAX_TIMESTAMP_MS;
        let mut c = FrameContent {
            sequence: r.next_u64() >> (r.next_u32() % 64),
            timestamp_ms: ts,
            ttl_ms: 1 + r.next_u64() % MAX_TTL_MS,
            ..FrameContent::default()
        };
        for _ in 0..r.next_u32() % 4 {
            let name = ["bitcoin", "ethereum", "litecoin", "x", "dogecoin-main"]
                [r.next_u32() as usize % 5];
            let hash: Vec<u8> = (0..8 + r.next_u32() % 25)
                .map(|_| r.next_u32() as u8)
                .collect();
            c.anchors.insert(name.to_owned(), crate::text::hex(&hash));
        }
        if r.next_u32().is_multiple_of(2) {
            let q = r.next_u32() % 9;
            c.time_evidence = Some(TimeEvidence {
                // JSON numbers are doubles: offsets within ±2^52 ms.
                offset_ms: (r.next_u64() as i64) >> 11,
                servers_agreed: q / 2,
                servers_queried: q,
            });
        }
        if r.next_u32().is_multiple_of(2) {
            let mut u = UserData::new();
            let s: String = (0..r.next_u32() % 40)
                .map(|_| char::from_u32(32 + r.next_u32() % 0x3000).unwrap_or('?'))
                .collect();
            u.insert("user_text".into(), Value::String(s));
            // JSON numbers are IEEE doubles (RFC 8785): integers up to 2^53 exactly.
            u.insert("n".into(), Value::from((r.next_u64() as i64) >> 11));
            u.insert("f".into(), Value::from(f64::from(r.next_u32()) / 7e9));
            c.user_data = Some(u);
        }
        let text = compact(&g, &c, Seal::default());
        let f = CompactFrame::decode(&text).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(f.payload.sequence, c.sequence);
        assert_eq!(f.payload.ttl_ms, c.ttl_ms);
        assert_eq!(f.payload.identity, g.identity_hash()[..16]);
        assert_eq!(f.payload.anchors.len(), c.anchors.len());
        assert_eq!(f.payload.time_evidence, c.time_evidence);
        assert_eq!(f.payload.user_data, c.user_data);
        expect(&v.verify(&text, ts), ReasonCode::Ok);
        // A JSON sequence number is a double too (RFC 8785): 2^53 + 1 is refused.
        if i == 0 {
            let mut big = c.clone();
            big.sequence = (1 << 53) + 1;
            assert!(g.json(&big, Seal::default(), &mut rng(1)).is_err());
        }
        c.sequence &= (1 << 53) - 1;
        let j = json(&g, &c, Seal::default());
        let d = QrData::from_json(&j).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(d.to_json(), j);
        assert_eq!(d.timestamp_ms(), Some(ts));
        assert_eq!(d.blockchain_hashes, c.anchors);
        assert_eq!(d.user_data, c.user_data);
        let vr = v.verify(&j, ts);
        assert!(vr.signature_verified, "case {i}: {}", vr.to_json());
    }
}

#[test]
fn tampering_any_byte_never_verifies() {
    let g = Generator::new(ed()).with_hmac_key(hmac());
    let v = verifier_for(&ed()).with_hmac_key(hmac());
    let text = compact(&g, &content(1), Seal::default());
    let body = text.as_bytes();
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    for i in 0..body.len() {
        for delta in [1usize, 17] {
            let mut t = body.to_vec();
            let pos = ALPHABET.iter().position(|&c| c == t[i]).unwrap_or(0);
            t[i] = ALPHABET[(pos + delta) % ALPHABET.len()];
            let s = String::from_utf8(t).unwrap_or_default();
            let r = v.verify(&s, NOW);
            assert!(!r.is_valid(), "byte {i} changed still valid: {s}");
        }
    }
    // Flip every bit of every byte of the binary frame.
    let bin = crate::base45::decode(&text[4..]).unwrap_or_default();
    for i in 0..bin.len() {
        for bit in 0..8 {
            let mut b = bin.clone();
            b[i] ^= 1 << bit;
            let mut s = String::from(COMPACT_PREFIX);
            crate::base45::encode_into(&b, &mut s);
            assert!(!v.verify(&s, NOW).is_valid(), "bit {bit} of byte {i}");
        }
    }
    // JSON: change one character of every value we can.
    let j = json(&g, &content(1), Seal::default());
    for (i, c) in j.char_indices() {
        if c.is_ascii_alphanumeric() {
            let repl = if c == '0' { '1' } else { '0' };
            let t = format!("{}{}{}", &j[..i], repl, &j[i + 1..]);
            assert!(!v.verify(&t, NOW).is_valid(), "JSON char {i}");
        }
    }
}

/// A compact frame whose payload names `kid` but is signed by `signer` (a wrong key).
fn resigned(signer: &SigningIdentity, kid: KeyId, c: &FrameContent) -> String {
    let text = compact(
        &Generator::new(Arc::new(SigningIdentity::from_ed25519_seed([5; 32]))),
        c,
        Seal::default(),
    );
    let mut f = CompactFrame::decode(&text).unwrap_or_else(|e| panic!("{e}"));
    f.payload.key_id = Some(kid);
    f.payload.identity = signer.identity_hash(Suite::Ed25519).unwrap_or_default()[..16].to_vec();
    let payload = f.payload.encode(true);
    let msg = crate::compact::signed_message(Suite::Ed25519, &signed_part(&payload, None));
    let sigs = signer
        .sign(Suite::Ed25519, &msg, &mut rng(1))
        .unwrap_or_default();
    frame_text(&payload, None, Some((1, &sigs)))
}

#[test]
fn each_failure_has_its_reason() {
    let id = ed();
    let kid = id.key_id(Suite::Ed25519).unwrap_or(KeyId([0; 8]));
    let g = Generator::new(id.clone());
    let v = || verifier_for(&id);
    let c = content(10);
    let text = compact(&g, &c, Seal::default());

    // Wrong key: names our key id, signed by another key.
    let other = SigningIdentity::from_ed25519_seed([2; 32]);
    expect(
        &v().verify(&resigned(&other, kid, &c), NOW),
        ReasonCode::BadSignature,
    );
    // Sanity: the same construction with the right key verifies.
    expect(&v().verify(&resigned(&id, kid, &c), NOW), ReasonCode::Ok);

    // Unknown key id.
    let stranger = Generator::new(Arc::new(other));
    expect(
        &v().verify(&compact(&stranger, &c, Seal::default()), NOW),
        ReasonCode::UnknownKeyId,
    );

    // Expired: ttl is 10 s.
    expect(&v().verify(&text, NOW + 10_001), ReasonCode::Expired);
    let r = v().verify(&text, NOW + 10_000);
    expect(&r, ReasonCode::Ok);

    // From the future beyond the 30 s drift; within it is fine.
    expect(&v().verify(&text, NOW - 30_001), ReasonCode::FromFuture);
    expect(&v().verify(&text, NOW - 30_000), ReasonCode::Ok);

    // Replayed: the second sight of the same (identity, sequence).
    let vv = v();
    expect(&vv.verify(&text, NOW), ReasonCode::Ok);
    let r = vv.verify(&text, NOW + 1);
    expect(&r, ReasonCode::Replayed);
    assert!(r.replayed && r.signature_verified);
    // ...but not after it expired (a frame past its ttl is refused as expired anyway).
    expect(&vv.verify(&text, NOW + 20_000), ReasonCode::Expired);

    // HMAC mismatch: same key name, different secret.
    let gh = Generator::new(id.clone()).with_hmac_key(hmac());
    let other_secret =
        Arc::new(HmacKey::from_secret("h1", &[0x33; 32]).unwrap_or_else(|e| panic!("{e}")));
    let vh = verifier_for(&id).with_hmac_key(other_secret);
    expect(
        &vh.verify(&compact(&gh, &c, Seal::default()), NOW),
        ReasonCode::HmacMismatch,
    );
    expect(
        &vh.verify(&json(&gh, &c, Seal::default()), NOW),
        ReasonCode::HmacMismatch,
    );
    // HMAC missing, and another key's name.
    expect(&vh.verify(&text, NOW), ReasonCode::HmacMissing);
    let named = Arc::new(HmacKey::from_secret("h2", &[0x11; 32]).unwrap_or_else(|e| panic!("{e}")));
    let vn = verifier_for(&id).with_hmac_key(named);
    expect(
        &vn.verify(&compact(&gh, &c, Seal::default()), NOW),
        ReasonCode::HmacKeyUnknown,
    );

    // Algorithm not allowed.
    let only_pq = Verifier::new(
        KeySet::from_identity(&id, 0, None),
        VerifierOptions {
            allowed_suites: vec![Suite::FnDsa512, Suite::Hybrid],
            ..VerifierOptions::default()
        },
    );
    expect(&only_pq.verify(&text, NOW), ReasonCode::AlgorithmNotAllowed);

    // Unsigned.
    let unsigned = compact(
        &g,
        &c,
        Seal {
            sign: false,
            encrypt: false,
        },
    );
    expect(&v().verify(&unsigned, NOW), ReasonCode::Unsigned);
    let lax = Verifier::new(
        KeySet::new(),
        VerifierOptions {
            require_signature: false,
            ..VerifierOptions::default()
        },
    );
    expect(&lax.verify(&unsigned, NOW), ReasonCode::Ok);

    // Key windows.
    let late = Verifier::new(
        KeySet::from_identity(&id, NOW + 1, None),
        VerifierOptions::default(),
    );
    expect(&late.verify(&text, NOW), ReasonCode::KeyNotYetValid);
    let closed = Verifier::new(
        KeySet::from_identity(&id, 0, Some(NOW - 1)),
        VerifierOptions::default(),
    );
    expect(&closed.verify(&text, NOW), ReasonCode::KeyExpired);
    // A timestamp moved before the key's window by tampering is a bad signature, not a key
    // window problem: the window is judged only on an authenticated timestamp.
    let j = json(&g, &c, Seal::default());
    let moved = j.replace("2025-01-11T15:30:45.123Z", "2025-01-11T15:30:45.122Z");
    assert_ne!(moved, j);
    let at_creation = Verifier::new(
        KeySet::from_identity(&id, NOW, None),
        VerifierOptions::default(),
    );
    expect(&at_creation.verify(&j, NOW), ReasonCode::Ok);
    expect(&at_creation.verify(&moved, NOW), ReasonCode::BadSignature);

    // Malformed input of any kind.
    for bad in [
        "", "hello", "QL2:", "QL2:ZZZ", "{", "{}", "[1]", "QL2:A", "ql2:00",
    ] {
        let r = v().verify(bad, NOW);
        expect(&r, ReasonCode::Malformed);
        assert!(!r.valid_json && r.error.is_some());
    }
}

#[test]
fn identity_time_and_anchor_policies() {
    struct View(AnchorStatus);
    impl AnchorView for View {
        fn status(&self, chain: &str, tag: &[u8]) -> AnchorStatus {
            if chain == "bitcoin" && tag == anchor_tag(BTC).unwrap_or_default() {
                self.0
            } else {
                AnchorStatus::Unknown
            }
        }
    }
    let id = ed();
    let g = Generator::new(id.clone());
    let c = content(3);
    let text = compact(&g, &c, Seal::default());
    let with = |o: VerifierOptions| Verifier::new(KeySet::from_identity(&id, 0, None), o);
    let strict = VerifierOptions {
        require_identity: true,
        require_blockchain: true,
        require_time_evidence: true,
        expected_identity: Some(g.identity_hash().to_vec()),
        replay_cache_capacity: 0,
        ..VerifierOptions::default()
    };
    let v = with(strict.clone()).with_anchor_view(Arc::new(View(AnchorStatus::Current)));
    let r = v.verify(&text, NOW);
    expect(&r, ReasonCode::Ok);
    assert!(r.identity_verified && r.blockchain_verified && r.time_verified);
    let j = json(&g, &c, Seal::default());
    expect(&v.verify(&j, NOW), ReasonCode::Ok);

    let recent = with(strict.clone())
        .with_anchor_view(Arc::new(View(AnchorStatus::Recent { age_ms: 60_000 })));
    expect(&recent.verify(&text, NOW), ReasonCode::Ok);
    let stale = with(strict.clone()).with_anchor_view(Arc::new(View(AnchorStatus::Stale)));
    expect(&stale.verify(&text, NOW), ReasonCode::StaleAnchor);
    expect(
        &with(strict.clone()).verify(&text, NOW),
        ReasonCode::UnknownAnchor,
    );
    let mut no_anchor = c.clone();
    no_anchor.anchors.clear();
    let v2 = with(strict.clone()).with_anchor_view(Arc::new(View(AnchorStatus::Current)));
    expect(
        &v2.verify(&compact(&g, &no_anchor, Seal::default()), NOW),
        ReasonCode::NoAnchor,
    );

    let mut other = strict.clone();
    other.expected_identity = Some(vec![0xEE; 32]);
    expect(
        &with(other).verify(&text, NOW),
        ReasonCode::IdentityMismatch,
    );
    // Without an expected identity, a signed frame's identity is checked against its
    // signing key; an unsigned frame's cannot be checked at all.
    let mut unset = strict.clone();
    unset.expected_identity = None;
    let r = with(unset.clone())
        .with_anchor_view(Arc::new(View(AnchorStatus::Current)))
        .verify(&text, NOW);
    expect(&r, ReasonCode::Ok);
    assert!(r.identity_verified);
    unset.require_signature = false;
    let unsigned = Seal {
        sign: false,
        encrypt: false,
    };
    expect(
        &with(unset)
            .with_anchor_view(Arc::new(View(AnchorStatus::Current)))
            .verify(&compact(&g, &c, unsigned), NOW),
        ReasonCode::IdentityUnverified,
    );
    // An identity hash that is not the signing key's: identity_mismatch, even with no
    // expectation configured.
    let other_key = SigningIdentity::from_ed25519_seed([9; 32]);
    let mut f = CompactFrame::decode(&text).unwrap_or_else(|e| panic!("{e}"));
    f.payload.identity = other_key.identity_hash(Suite::Ed25519).unwrap_or_default()[..16].to_vec();
    let payload = f.payload.encode(true);
    let msg = crate::compact::signed_message(Suite::Ed25519, &signed_part(&payload, None));
    let sigs = id
        .sign(Suite::Ed25519, &msg, &mut rng(1))
        .unwrap_or_default();
    let foreign = frame_text(&payload, None, Some((1, &sigs)));
    expect(
        &verifier_for(&id).verify(&foreign, NOW),
        ReasonCode::IdentityMismatch,
    );

    let mut far = c.clone();
    far.time_evidence = Some(TimeEvidence {
        offset_ms: 5000,
        servers_agreed: 3,
        servers_queried: 3,
    });
    let v3 = with(strict).with_anchor_view(Arc::new(View(AnchorStatus::Current)));
    expect(
        &v3.verify(&compact(&g, &far, Seal::default()), NOW),
        ReasonCode::NoTimeEvidence,
    );
}

#[test]
fn fn_dsa_and_hybrid_frames() {
    let id = pq();
    let v = Verifier::new(
        KeySet::from_identity(&id, 0, None),
        VerifierOptions {
            replay_cache_capacity: 0,
            ..VerifierOptions::default()
        },
    );
    for suite in [Suite::FnDsa512, Suite::Hybrid] {
        let g = Generator::new(id.clone())
            .with_suite(suite)
            .unwrap_or_else(|e| panic!("{e}"));
        for text in [
            compact(&g, &content(1), Seal::default()),
            json(&g, &content(1), Seal::default()),
        ] {
            let r = v.verify(&text, NOW);
            expect(&r, ReasonCode::Ok);
            assert_eq!(r.algorithm.as_deref(), Some(suite.name()));
            assert_eq!(r.key_id, id.key_id(suite).map(|k| k.to_string()));
        }
    }
    // A hybrid frame with either signature broken fails.
    let g = Generator::new(id.clone())
        .with_suite(Suite::Hybrid)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = compact(&g, &content(2), Seal::default());
    let f = CompactFrame::decode(&text).unwrap_or_else(|e| panic!("{e}"));
    for which in 0..2 {
        let (suite, mut sigs) = f.signature.clone().unwrap_or((Suite::Hybrid, vec![]));
        sigs[which][10] ^= 0x40;
        let s = frame_text(&f.payload_bytes, None, Some((u64::from(suite.id()), &sigs)));
        expect(&v.verify(&s, NOW), ReasonCode::BadSignature);
    }
    // The Ed25519 half alone, relabelled as an Ed25519 frame, does not verify (domain
    // separation by suite id), even with the Ed25519 key id.
    let (_, sigs) = f.signature.clone().unwrap_or((Suite::Hybrid, vec![]));
    let mut p = f.payload.clone();
    p.key_id = id.key_id(Suite::Ed25519);
    let payload = p.encode(true);
    let s = frame_text(&payload, None, Some((1, &sigs[..1])));
    expect(&v.verify(&s, NOW), ReasonCode::BadSignature);
    // An Ed25519-only identity cannot be asked for FN-DSA.
    assert!(Generator::new(ed()).with_suite(Suite::Hybrid).is_err());
}

#[test]
fn encrypted_user_data_with_and_without_key() {
    let id = ed();
    let g = Generator::new(id.clone()).with_data_key(data_key());
    let seal = Seal {
        sign: true,
        encrypt: true,
    };
    let c = content(4);
    for text in [compact(&g, &c, seal), json(&g, &c, seal)] {
        assert!(!text.contains("Welcome"));
        let with_key = verifier_for(&id).with_data_key(data_key());
        let r = with_key.verify(&text, NOW);
        expect(&r, ReasonCode::Ok);
        assert!(r.encrypted);
        assert_eq!(r.user_data, c.user_data);
        let without = verifier_for(&id).verify(&text, NOW);
        expect(&without, ReasonCode::Ok);
        assert!(without.encrypted && without.signature_verified && without.user_data.is_none());
        let wrong =
            Arc::new(DataKey::from_secret("d1", &[0x44; 32]).unwrap_or_else(|e| panic!("{e}")));
        let r = Verifier::new(
            KeySet::from_identity(&id, 0, None),
            VerifierOptions {
                require_signature: false,
                ..VerifierOptions::default()
            },
        )
        .with_data_key(wrong)
        .verify(&text, NOW);
        expect(&r, ReasonCode::DecryptionFailed);
    }
    // Ciphertext moved into another frame (different sequence) does not open.
    let a = CompactFrame::decode(&compact(&g, &content(4), seal)).unwrap_or_else(|e| panic!("{e}"));
    let mut b = a.payload.clone();
    b.sequence = 5;
    b.key_id = None;
    let s = frame_text(&b.encode(true), None, None);
    let lax = Verifier::new(
        KeySet::new(),
        VerifierOptions {
            require_signature: false,
            ..VerifierOptions::default()
        },
    )
    .with_data_key(data_key());
    expect(&lax.verify(&s, NOW), ReasonCode::DecryptionFailed);
    // Encryption without a key configured is an error, not a silent plain frame.
    assert_eq!(
        Generator::new(id).compact(&c, seal, &mut rng(1)).err(),
        Some(FrameError::NoDataKey)
    );
}

#[test]
fn strict_decoder_rejects_non_canonical_frames() {
    let g = Generator::new(ed());
    let text = compact(&g, &content(1), Seal::default());
    let bin = crate::base45::decode(&text[4..]).unwrap_or_default();
    let wrap = |b: &[u8]| {
        let mut s = String::from(COMPACT_PREFIX);
        crate::base45::encode_into(b, &mut s);
        s
    };
    // Trailing byte.
    let mut t = bin.clone();
    t.push(0);
    assert!(CompactFrame::decode(&wrap(&t)).is_err());
    // Payload with keys out of order, repeated, unknown or missing.
    let payload_of = |entries: &[(u64, u64)]| {
        let mut e = Encoder::default();
        e.map(entries.len());
        for (k, v) in entries {
            e.uint(*k);
            if *k == 5 {
                e.bytes(&[0; 16]);
            } else {
                e.uint(*v);
            }
        }
        let mut f = Encoder::default();
        f.array(3);
        f.bytes(&e.buf);
        f.null();
        f.null();
        wrap(&f.buf)
    };
    let good = [(0, 2), (2, 1), (3, 1), (4, 1), (5, 0)];
    assert!(CompactFrame::decode(&payload_of(&good)).is_ok());
    for bad in [
        vec![(0, 2), (3, 1), (2, 1), (4, 1), (5, 0)],
        vec![(0, 2), (2, 1), (2, 1), (3, 1), (4, 1), (5, 0)],
        vec![(0, 2), (2, 1), (3, 1), (4, 1), (5, 0), (10, 0)],
        vec![(0, 2), (2, 1), (3, 1), (5, 0)],
        vec![(0, 3), (2, 1), (3, 1), (4, 1), (5, 0)],
        vec![(0, 2), (2, 1), (3, 1), (4, 0), (5, 0)],
    ] {
        assert!(CompactFrame::decode(&payload_of(&bad)).is_err(), "{bad:?}");
    }
    // Non-shortest integer inside an otherwise good payload: [0x18, 0x01] for 1.
    let mut e = Encoder::default();
    e.map(5);
    e.buf.extend_from_slice(&[0x00, 0x18, 0x02]);
    for k in [2u64, 3, 4] {
        e.uint(k);
        e.uint(1);
    }
    e.uint(5);
    e.bytes(&[0; 16]);
    let mut f = Encoder::default();
    f.array(3);
    f.bytes(&e.buf);
    f.null();
    f.null();
    assert!(CompactFrame::decode(&wrap(&f.buf)).is_err());
}

#[test]
fn report_json_has_the_seed_keys() {
    let g = Generator::new(ed());
    let r = verifier_for(&ed()).verify(&compact(&g, &content(1), Seal::default()), NOW);
    let v: Value = serde_json::from_str(&r.to_json()).unwrap_or(Value::Null);
    for k in [
        "valid_json",
        "identity_verified",
        "time_verified",
        "blockchain_verified",
        "signature_verified",
        "hmac_verified",
        "encrypted",
        "error",
        "key_id",
        "algorithm",
        "age_ms",
        "replayed",
        "verdict",
        "reason",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["reason"]["code"], "ok");
}
