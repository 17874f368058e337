//! Prints a seeded sample of mixed-script texts (see `qrlp_conformance::mixtures`), one per
//! line as `mixture<TAB>ecc<TAB>text`: `qrlp-mixed-sample [COUNT] [SEED]`.
//! `scripts/decode-corpus.sh` encodes them with `qrlp` and decodes them with zbarimg and
//! zxing-cpp.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: u64| match args.get(i) {
        None => Some(default),
        Some(s) => s.parse().ok(),
    };
    let (Some(count), Some(seed)) = (parse(0, 300), parse(1, 2026)) else {
        eprintln!("usage: qrlp-mixed-sample [COUNT] [SEED]");
        return ExitCode::from(2);
    };
    let mut out = std::io::stdout().lock();
    for s in qrlp_conformance::mixtures::samples(seed, count as usize) {
        if writeln!(out, "{}\t{}\t{}", s.mixture, s.ecc, s.text).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
