//! Mixed-script text through zxing-cpp, a decoder that applies ECI designators and character
//! sets as phones do (rqrr hands back raw bytes, so it cannot see a Kanji segment read as
//! UTF-8). 2,400 seeded strings of eight script mixtures, at all four levels, from one
//! character to near version 40, must decode to exactly the text; pure Japanese text must
//! still get the smaller symbol of Kanji mode.
//!
//! zxing-cpp comes from PyPI (`scripts/install-test-extras.sh`, which `.ci/run` calls); where
//! it is missing the test says so and checks nothing, except under CI, where it fails.

use std::collections::BTreeMap;

use qrlp_conformance::mixtures::{samples, Sample};
use qrlp_conformance::zxing;
use qrlp_qr::{EcLevel, Mode, Options, QrCode, SymbolVersion};
use qrlp_render::{render_png, RenderOptions};

const SEED: u64 = 0x5C21_2026;
const CASES: usize = 2400;

fn options(ecc: EcLevel) -> Options {
    Options {
        ecc,
        ..Options::default()
    }
}

/// The version number of `text` in byte mode (UTF-8 under ECI 26), or 41 when it does not
/// fit at all.
fn byte_mode_version(text: &str, ecc: EcLevel) -> u8 {
    let opts = Options {
        mode: Some(Mode::Byte),
        ..options(ecc)
    };
    QrCode::encode_text_with(text, &opts).map_or(41, |c| qr_version(&c))
}

fn qr_version(code: &QrCode) -> u8 {
    match code.version() {
        SymbolVersion::Normal(v) => v.number(),
        SymbolVersion::Micro(v) => panic!("QR expected, got Micro QR {v}"),
    }
}

#[test]
fn mixed_script_text_decodes_exactly_in_zxing_cpp() {
    if !zxing::ready("mixed_script_text_decodes_exactly_in_zxing_cpp") {
        return;
    }
    let dir = tempdir("qrlp-mixed");
    let all = samples(SEED, CASES);
    // Encode and write on two threads: the machine has two cores.
    let (a, b) = all.split_at(all.len() / 2);
    let write = |part: &[Sample], offset: usize| -> Vec<(std::path::PathBuf, u8)> {
        part.iter()
            .enumerate()
            .map(|(i, s)| {
                let code = QrCode::encode_text_with(&s.text, &options(s.ecc))
                    .unwrap_or_else(|e| panic!("{} {:?}: {e}", s.mixture, s.text));
                let png = render_png(
                    &code,
                    &RenderOptions {
                        module_size: if code.width() > 100 { 2 } else { 3 },
                        border: 4,
                        ..RenderOptions::default()
                    },
                )
                .unwrap();
                let path = dir.join(format!("{}.png", offset + i));
                std::fs::write(&path, png).unwrap();
                (path, qr_version(&code))
            })
            .collect()
    };
    let written = std::thread::scope(|s| {
        let left = s.spawn(|| write(a, 0));
        let right = write(b, a.len());
        let mut w = left.join().unwrap();
        w.extend(right);
        w
    });
    let paths: Vec<_> = written.iter().map(|(p, _)| p.clone()).collect();
    let decoded = zxing::read("QRCode", &paths, 2);

    let mut per_mixture = BTreeMap::<&str, [usize; 2]>::new();
    let mut failures = Vec::new();
    let (mut longest, mut max_version) = (0, 0);
    let mut smaller_than_utf8 = 0;
    for ((sample, (_, version)), got) in all.iter().zip(&written).zip(&decoded) {
        let entry = per_mixture.entry(sample.mixture).or_default();
        entry[0] += 1;
        if got.as_ref().map(|d| d.text.as_str()) == Some(sample.text.as_str()) {
            entry[1] += 1;
        } else {
            failures.push(format!(
                "{} {}-{} ({} chars): {:?} read as {:?}",
                sample.mixture,
                version,
                sample.ecc,
                sample.text.chars().count(),
                sample.text.chars().take(40).collect::<String>(),
                got.as_ref()
                    .map(|d| d.text.chars().take(40).collect::<String>())
            ));
        }
        let chars = sample.text.chars().count();
        longest = longest.max(chars);
        max_version = max_version.max(*version);
        if sample.mixture == "japanese" {
            // Kanji mode: 13 bits a character against UTF-8's 24. The symbol is never
            // larger, and from 60 characters on strictly smaller (the difference then
            // exceeds the largest step between two versions, 640 bits).
            let utf8 = byte_mode_version(&sample.text, sample.ecc);
            assert!(
                *version <= utf8,
                "{}: version {version} > byte mode's {utf8}",
                sample.text
            );
            if chars >= 60 {
                assert!(*version < utf8, "{}: not smaller than UTF-8", sample.text);
                smaller_than_utf8 += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("zxing-cpp read back {CASES} mixed-script texts (decoded / total):");
    for (mixture, [n, ok]) in &per_mixture {
        eprintln!("  {mixture:22} {ok:>5} / {n}");
    }
    eprintln!(
        "longest {longest} characters, largest version {max_version}; {smaller_than_utf8} Japanese texts in a smaller symbol than UTF-8"
    );
    assert!(
        failures.is_empty(),
        "{} of {CASES} did not decode exactly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(max_version, 40, "the sample reaches version 40");
    assert!(smaller_than_utf8 >= 20, "enough long Japanese texts");
    assert!(
        all.iter().any(|s| s.text.chars().count() == 1),
        "one-character texts"
    );
}

fn tempdir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
