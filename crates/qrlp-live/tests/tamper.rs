//! No one-character change of a valid frame verifies: every position, every other
//! character, for every suite, in both formats, for a verifier with the HMAC key and one
//! without it (the HMAC element is covered by the signature since format version 2).
//!
//! Compact frames are changed to each of the other 44 characters of the QR alphanumeric
//! set (the characters base45 uses); JSON frames to each other printable ASCII character
//! and two non-ASCII ones. The replay cache is off, so a changed frame that still verified
//! would show as valid rather than hide behind `replayed`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use qrlp_live::fuzz::TestRng;
use qrlp_live::{
    DataKey, FrameContent, Generator, HmacKey, KeySet, ReasonCode, Seal, SigningIdentity, Suite,
    TimeEvidence, UserData, Verifier, VerifierOptions,
};

const TS: u64 = 1_736_609_445_123;
const BASE45: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

fn identity() -> Arc<SigningIdentity> {
    static ID: OnceLock<Arc<SigningIdentity>> = OnceLock::new();
    ID.get_or_init(|| {
        Arc::new(
            SigningIdentity::from_ed25519_seed([0x42; 32])
                .with_generated_fn_dsa(&mut TestRng(1))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .clone()
}

fn hmac() -> Arc<HmacKey> {
    Arc::new(HmacKey::from_secret("h1", &[0x11; 32]).unwrap_or_else(|e| panic!("{e}")))
}

fn content() -> FrameContent {
    let mut user = UserData::new();
    user.insert("user_text".into(), "Welcome \u{1f3a5} 1e-7".into());
    user.insert("ratio".into(), serde_json::json!(1e-7));
    user.insert("n".into(), serde_json::json!(-12));
    FrameContent {
        sequence: 1_736_609_445_123,
        timestamp_ms: TS,
        ttl_ms: 10_000,
        anchors: BTreeMap::from([(
            "bitcoin".to_owned(),
            "00000000000000000001a2b3c4d5e6f7a8b9c0d1e2f30415263748596a7b8c9d".to_owned(),
        )]),
        time_evidence: Some(TimeEvidence {
            offset_ms: -12,
            servers_agreed: 3,
            servers_queried: 4,
        }),
        user_data: Some(user),
        ..FrameContent::default()
    }
}

/// Every one-character change of `frame`, to each of `alphabet`.
fn changes<'a>(frame: &'a str, alphabet: &'a [char]) -> impl Iterator<Item = String> + 'a {
    let chars: Vec<(usize, char)> = frame.char_indices().collect();
    chars.into_iter().flat_map(move |(at, c)| {
        alphabet.iter().filter(move |&&a| a != c).map(move |&a| {
            let mut s = String::with_capacity(frame.len() + 4);
            s.push_str(&frame[..at]);
            s.push(a);
            s.push_str(&frame[at + c.len_utf8()..]);
            s
        })
    })
}

/// Checks every change of the frames of `suite` with both verifiers; returns how many
/// changes were tried.
fn no_change_verifies(suite: Suite, encrypt: bool) -> usize {
    let id = identity();
    let data = Arc::new(DataKey::from_secret("d1", &[0x22; 32]).unwrap_or_else(|e| panic!("{e}")));
    let g = Generator::new(id.clone())
        .with_suite(suite)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_hmac_key(hmac())
        .with_data_key(data);
    let seal = Seal {
        sign: true,
        encrypt,
    };
    let compact = g
        .compact(&content(), seal, &mut TestRng(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let json = g
        .json(&content(), seal, &mut TestRng(3))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json();
    let options = VerifierOptions {
        replay_cache_capacity: 0,
        ..VerifierOptions::default()
    };
    let keys = KeySet::from_identity(&id, 0, None);
    let without = Verifier::new(keys.clone(), options.clone());
    let with = Verifier::new(keys, options).with_hmac_key(hmac());
    let now = TS + 1;
    let base45: Vec<char> = BASE45.chars().collect();
    let printable: Vec<char> = (' '..='~').chain(['é', '€']).collect();
    let mut tried = 0;
    for (frame, alphabet) in [(&compact, &base45), (&json, &printable)] {
        for v in [&without, &with] {
            let r = v.verify(frame, now);
            assert!(r.is_valid(), "{suite}: the frame itself: {}", r.to_json());
        }
        assert!(with.verify(frame, now).hmac_verified);
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        for changed in changes(frame, alphabet) {
            for v in [&without, &with] {
                let r = v.verify(&changed, now);
                assert!(
                    !r.is_valid(),
                    "{suite}: a changed frame verifies: {changed}\n{}",
                    r.to_json()
                );
                assert_ne!(r.reason.code, ReasonCode::Ok);
                *reasons.entry(r.reason.code.as_str()).or_default() += 1;
            }
            tried += 1;
        }
        eprintln!(
            "{suite} {} ({} chars, encrypted {encrypt}): {tried} changes so far, reasons {reasons:?}",
            if frame.starts_with('{') { "json" } else { "compact" },
            frame.chars().count()
        );
    }
    tried
}

#[test]
fn no_one_character_change_verifies_ed25519() {
    assert!(no_change_verifies(Suite::Ed25519, false) > 50_000);
}

#[test]
fn no_one_character_change_verifies_ed25519_encrypted() {
    assert!(no_change_verifies(Suite::Ed25519, true) > 50_000);
}

#[test]
fn no_one_character_change_verifies_fn_dsa_512() {
    assert!(no_change_verifies(Suite::FnDsa512, false) > 150_000);
}

#[test]
fn no_one_character_change_verifies_hybrid() {
    assert!(no_change_verifies(Suite::Hybrid, false) > 150_000);
}
