//! Round trip: payloads of every mode, mixed text, non-ASCII UTF-8, Kanji and raw bytes at
//! all four ECC levels, with lengths up to each level's version-40 capacity, are encoded,
//! rendered to PNG, read back with the `png` crate and decoded by rqrr, an independent
//! decoder. The decoded bytes must equal the bytes the segments stand for.

use qrlp_conformance::Rng;
use qrlp_qr::{EcLevel, Mode, Options, QrCode, Segment};
use qrlp_render::{render_png, RenderOptions};

/// Version-40 capacity in characters for numeric, alphanumeric and byte mode, by level.
const CAPACITY: [[usize; 3]; 4] = [
    [7089, 4296, 2953],
    [5596, 3391, 2331],
    [3993, 2420, 1663],
    [3057, 1852, 1273],
];

/// What to encode and the bytes a decoder must give back.
struct Case {
    kind: &'static str,
    ecc: EcLevel,
    encode: Box<dyn Fn(&Options) -> QrCode + Send + Sync>,
    expected: Vec<u8>,
}

/// A length: mostly short, some medium, some up to the full capacity (and exactly it).
fn length(rng: &mut Rng, cap: usize) -> usize {
    match rng.below(20) {
        0 => cap,
        1..=2 => 1 + rng.below(cap),
        3..=6 => 1 + rng.below(cap / 4 + 1),
        _ => 1 + rng.below(100.min(cap)),
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
/// Non-ASCII characters that Shift JIS lacks, so text mode carries them as UTF-8 bytes.
const WIDE: &[char] = &[
    'é', 'ü', 'ñ', 'ß', 'ø', 'å', 'ç', 'Ł', 'ő', '€', '✓', '😀', '🚀', 'ا', 'ש', 'ก', 'क', '—', '™',
];
/// Characters in the Shift JIS ranges that Kanji mode covers.
const KANJI: &[char] = &[
    '点', '茗', '日', '本', '語', 'の', 'テ', 'キ', 'ス', 'ト', '漢', '字', 'Ω', 'Ж',
];

fn cases(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let ecc = EcLevel::ALL[i % 4];
        let cap = CAPACITY[ecc.ordinal()];
        let case = match i % 10 {
            0 | 1 => {
                let s: String = (0..length(&mut rng, cap[0]))
                    .map(|_| (b'0' + rng.below(10) as u8) as char)
                    .collect();
                text_case("numeric", ecc, s)
            }
            2 | 3 => {
                let s: String = (0..length(&mut rng, cap[1]))
                    .map(|_| *rng.pick(ALNUM) as char)
                    .collect();
                text_case("alphanumeric", ecc, s)
            }
            4 | 5 => {
                let b: Vec<u8> = (0..length(&mut rng, cap[2]))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                let data = b.clone();
                Case {
                    kind: "bytes",
                    ecc,
                    encode: Box::new(move |o| QrCode::encode_bytes_with(&data, o).unwrap()),
                    expected: b,
                }
            }
            6 | 7 => {
                // Mixed ASCII: runs of digits, capitals, lower case and punctuation.
                let target = length(&mut rng, cap[2]);
                let mut s = String::new();
                while s.len() < target {
                    let run = 1 + rng.below(12);
                    let pool: &[u8] = match rng.below(4) {
                        0 => b"0123456789",
                        1 => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                        2 => b"abcdefghijklmnopqrstuvwxyz",
                        _ => b" $%*+-./:?&=#@!",
                    };
                    for _ in 0..run.min(target - s.len()) {
                        s.push(*rng.pick(pool) as char);
                    }
                }
                text_case("mixed", ecc, s)
            }
            8 => {
                // Non-ASCII UTF-8 (with ECI 26 by default) around ASCII words.
                let target = length(&mut rng, cap[2] / 4);
                let mut s = String::new();
                while s.len() < target {
                    if rng.below(3) == 0 {
                        let word: &&str = rng.pick(&["ok ", "2026 ", "QR-", "x"]);
                        s.push_str(word);
                    } else {
                        s.push(*rng.pick(WIDE));
                    }
                }
                while s.len() > target.max(4) {
                    s.pop();
                }
                text_case("utf8", ecc, s)
            }
            _ => {
                // Kanji: explicit segments mixing alphanumeric, Kanji and bytes.
                let k: String = (0..1 + rng.below(cap[2] / 8))
                    .map(|_| *rng.pick(KANJI))
                    .collect();
                let segs = vec![
                    Segment::alphanumeric("ID ").unwrap(),
                    Segment::kanji(&k).unwrap(),
                    Segment::bytes(b"-end"),
                ];
                let expected = segs.iter().flat_map(|s| s.message_bytes()).collect();
                Case {
                    kind: "kanji",
                    ecc,
                    encode: Box::new(move |o| QrCode::encode_segments(&segs, o).unwrap()),
                    expected,
                }
            }
        };
        out.push(case);
    }
    out
}

fn text_case(kind: &'static str, ecc: EcLevel, s: String) -> Case {
    let expected = s.clone().into_bytes();
    Case {
        kind,
        ecc,
        encode: Box::new(move |o| QrCode::encode_text_with(&s, o).unwrap()),
        expected,
    }
}

fn check(case: &Case, i: usize) -> usize {
    let opts = Options {
        ecc: case.ecc,
        ..Options::default()
    };
    let code = (case.encode)(&opts);
    let module_size = if code.width() > 100 { 2 } else { 3 };
    let png = render_png(
        &code,
        &RenderOptions {
            module_size,
            border: 4,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    let decoded = qrlp_conformance::decode::png_with_rqrr(&png);
    assert_eq!(
        decoded.as_slice(),
        std::slice::from_ref(&case.expected),
        "case {i} ({}, {}, version {}, {} bytes)",
        case.kind,
        case.ecc,
        code.version(),
        case.expected.len()
    );
    code.width()
}

/// How many payloads: 1,500 by default, which reaches version 40 in every mode; the full
/// corpus of 5,000 with `QRLP_ROUNDTRIP_CASES=5000` (`scripts/roundtrip-full.sh`). Exact
/// decoding by zxing-cpp is checked separately, in `mixed_scripts_zxing.rs`.
fn case_count() -> usize {
    std::env::var("QRLP_ROUNDTRIP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn seeded_payloads_survive_png_and_rqrr() {
    let all = cases(case_count(), 0xC0DE_2026);
    // Two halves on two threads: the machine has two cores.
    let (a, b) = all.split_at(all.len() / 2);
    let widest = std::thread::scope(|s| {
        let left = s.spawn(|| a.iter().enumerate().map(|(i, c)| check(c, i)).max());
        let right = b
            .iter()
            .enumerate()
            .map(|(i, c)| check(c, a.len() + i))
            .max();
        left.join().unwrap().max(right)
    });
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for c in &all {
        *by_kind.entry(c.kind).or_default() += 1;
    }
    eprintln!("round-tripped {} payloads: {by_kind:?}", all.len());
    assert_eq!(widest, Some(177), "the corpus reaches version 40");
}

#[test]
fn forced_modes_name_bad_characters() {
    for (mode, text, ch, pos) in [
        (Mode::Numeric, "123x", 'x', 3),
        (Mode::Alphanumeric, "ABc", 'c', 2),
        (Mode::Kanji, "点a", 'a', 1),
    ] {
        let opts = Options {
            mode: Some(mode),
            ..Options::default()
        };
        let err = QrCode::encode_text_with(text, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{ch:?}")) && err.contains(&format!("position {pos}")),
            "{err}"
        );
    }
}
