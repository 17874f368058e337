//! Random-input driver for the frame decoders and the verifier: random text, and valid
//! frames of both formats mutated at the text and at the byte level. Every call must
//! return; a panic is a failure, and so is a mutated compact frame that still verifies.
//! Used by `cargo test` for a bounded run and by the `qrlp-live-fuzz` binary for long runs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::{
    CompactFrame, DataKey, FrameContent, Generator, HmacKey, KeySet, QrData, Seal, SigningIdentity,
    Suite, TimeEvidence, UserData, Verifier, VerifierOptions, COMPACT_PREFIX,
};

/// Counts of what a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Inputs tried.
    pub cases: u64,
    /// Inputs that parsed as a frame of either format.
    pub parsed: u64,
    /// Inputs the verifier judged valid (unmutated or harmless JSON edits).
    pub valid: u64,
    /// Inputs refused (malformed or failing a check).
    pub rejected: u64,
}

/// xorshift64*: a small fixed-seed generator, so a seed reproduces a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A fixed, non-secret byte stream for reproducible tests, vectors and fuzz runs: the same
/// seed gives the same FN-DSA keys, signatures and nonces. Never for real keys.
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
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
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for TestRng {}

const NOW: u64 = 1_736_609_445_123;
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// The fixed world of a run: valid frames and a verifier that knows their keys.
struct World {
    compact: Vec<String>,
    json: Vec<String>,
    verifier: Verifier,
}

fn world() -> Result<World, crate::FrameError> {
    let mut rng = TestRng(1);
    let id =
        Arc::new(SigningIdentity::from_ed25519_seed([0x42; 32]).with_generated_fn_dsa(&mut rng)?);
    let hmac = Arc::new(HmacKey::from_secret("h1", &[0x11; 32])?);
    let data = Arc::new(DataKey::from_secret("d1", &[0x22; 32])?);
    let mut user = UserData::new();
    user.insert("user_text".into(), "fuzz".into());
    let content = FrameContent {
        sequence: 9,
        timestamp_ms: NOW,
        ttl_ms: 60_000,
        anchors: [("bitcoin".to_owned(), "00".repeat(24) + "0123456789abcdef")].into(),
        time_evidence: Some(TimeEvidence {
            offset_ms: -3,
            servers_agreed: 2,
            servers_queried: 3,
        }),
        user_data: Some(user),
        ..FrameContent::default()
    };
    let mut compact = Vec::new();
    let mut json = Vec::new();
    for (suite, encrypt) in [
        (Suite::Ed25519, false),
        (Suite::Ed25519, true),
        (Suite::Hybrid, false),
    ] {
        let g = Generator::new(id.clone())
            .with_suite(suite)?
            .with_hmac_key(hmac.clone())
            .with_data_key(data.clone());
        let seal = Seal {
            sign: true,
            encrypt,
        };
        compact.push(g.compact(&content, seal, &mut rng)?);
        json.push(g.json(&content, seal, &mut rng)?.to_json());
    }
    let verifier = Verifier::new(
        KeySet::from_identity(&id, 0, None),
        VerifierOptions {
            replay_cache_capacity: 0,
            ..VerifierOptions::default()
        },
    )
    .with_hmac_key(hmac)
    .with_data_key(data);
    Ok(World {
        compact,
        json,
        verifier,
    })
}

fn mutate_text(rng: &mut Rng, s: &str, alphabet: &[u8]) -> String {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(b.len().max(1));
        let last = b.len().saturating_sub(1);
        match rng.below(6) {
            0 if !b.is_empty() => b[i.min(last)] = alphabet[rng.below(alphabet.len())],
            1 if !b.is_empty() => {
                b.remove(i.min(last));
            }
            2 => b.insert(i.min(b.len()), alphabet[rng.below(alphabet.len())]),
            3 => b.truncate(i),
            4 if b.len() > 2 => {
                let j = rng.below(b.len());
                b.swap(i.min(last), j);
            }
            _ => {
                let j = rng.below(b.len().max(1));
                let chunk: Vec<u8> = b[j.min(b.len())..]
                    .iter()
                    .take(rng.below(40))
                    .copied()
                    .collect();
                let at = i.min(b.len());
                b.splice(at..at, chunk);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn mutate_binary(rng: &mut Rng, s: &str) -> String {
    let mut b = crate::base45::decode(&s[COMPACT_PREFIX.len()..]).unwrap_or_default();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(b.len().max(1));
        match rng.below(5) {
            0 if !b.is_empty() => b[i] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[i] = rng.next() as u8,
            2 => b.truncate(i),
            3 => b.insert(
                i.min(b.len()),
                *[0x00, 0x17, 0x18, 0x1B, 0x5B, 0x7F, 0x9F, 0xBF, 0xF6, 0xFF]
                    .get(rng.below(10))
                    .unwrap_or(&0),
            ),
            _ => b.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
        }
    }
    let mut out = String::from(COMPACT_PREFIX);
    crate::base45::encode_into(&b, &mut out);
    out
}

fn one(rng: &mut Rng, w: &World, tally: &mut Tally) {
    tally.cases += 1;
    let (input, must_fail) = match rng.below(8) {
        0 => {
            let n = rng.below(300);
            let s: String = (0..n)
                .map(|_| char::from(ALNUM[rng.below(ALNUM.len())]))
                .collect();
            (format!("{COMPACT_PREFIX}{s}"), false)
        }
        1 => {
            let bytes: Vec<u8> = (0..rng.below(400)).map(|_| rng.next() as u8).collect();
            (String::from_utf8_lossy(&bytes).into_owned(), false)
        }
        2 | 3 => {
            let f = &w.compact[rng.below(w.compact.len())];
            let m = mutate_text(rng, f, ALNUM);
            // The verifier ignores surrounding whitespace, so only a change inside counts.
            let changed = m.trim() != f.as_str();
            (m, changed)
        }
        4 | 5 => {
            let f = &w.compact[rng.below(w.compact.len())];
            let m = mutate_binary(rng, f);
            // The verifier ignores surrounding whitespace, so only a change inside counts.
            let changed = m.trim() != f.as_str();
            (m, changed)
        }
        _ => {
            let f = &w.json[rng.below(w.json.len())];
            (
                mutate_text(rng, f, b"{}[]\":,0123456789abcdefZ_ \\-.tfnul"),
                false,
            )
        }
    };
    let trimmed = input.trim();
    let parsed = if trimmed.starts_with('{') {
        QrData::from_json(trimmed)
            .map(|d| d.to_json().len())
            .is_ok()
    } else {
        CompactFrame::decode(trimmed).is_ok()
    };
    let report = w
        .verifier
        .verify(&input, NOW + rng.below(120_000) as u64 - 60_000);
    let _ = report.to_json();
    assert_eq!(
        report.valid_json, parsed,
        "verifier and decoder disagree on {input:?}"
    );
    if must_fail {
        assert!(
            !report.is_valid(),
            "mutated compact frame verified: {input:?}"
        );
    }
    tally.parsed += u64::from(parsed);
    if report.is_valid() {
        tally.valid += 1;
    } else {
        tally.rejected += 1;
    }
}

/// Runs cases from `seed` until `keep_going` says stop. Returns the tally, or the seed and
/// message of the first failing case.
pub fn run(seed: u64, mut keep_going: impl FnMut(&Tally) -> bool) -> Result<Tally, String> {
    let w = world().map_err(|e| format!("setting up the fuzz world: {e}"))?;
    let mut tally = Tally::default();
    let mut case_seed = seed;
    while keep_going(&tally) {
        case_seed = case_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut rng = Rng(case_seed.max(1));
        let mut t = tally;
        match catch_unwind(AssertUnwindSafe(|| one(&mut rng, &w, &mut t))) {
            Ok(()) => tally = t,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                return Err(format!("case seed {case_seed:#x} panicked: {msg}"));
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounded_fuzz_run() {
        let r = super::run(0x5EED, |t| t.cases < 3000);
        let t = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.cases, 3000);
        assert!(t.parsed > 0 && t.rejected > 0);
    }
}
