//! Long random-input run of the live-frame decoders and verifier:
//! `qrlp-live-fuzz [SECONDS] [SEED]`. Exits non-zero, printing the reproducing seed, on the
//! first panic or forged acceptance.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // Keep the panic hook quiet: the driver reports the panic itself.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let limit = Duration::from_secs(secs);
    let mut last_report = Instant::now();
    let result = qrlp_live::fuzz::run(seed, |t| {
        if last_report.elapsed() > Duration::from_secs(60) {
            eprintln!("{:>5.0} s: {t:?}", start.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        start.elapsed() < limit
    });
    match result {
        Ok(t) => println!(
            "seed {seed}: {} cases in {:.0} s, no panic ({} parsed, {} valid, {} rejected)",
            t.cases,
            start.elapsed().as_secs_f64(),
            t.parsed,
            t.valid,
            t.rejected
        ),
        Err(e) => {
            println!("seed {seed}: FAILED {e}");
            std::process::exit(1);
        }
    }
}
