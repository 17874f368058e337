//! Decodes a sample of the PNGs that `qrlp batch` wrote with rqrr and compares each with its
//! input line: `qrlp-spotcheck PAYLOADS.txt OUT_DIR [COUNT]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [payloads, dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: qrlp-spotcheck PAYLOADS.txt OUT_DIR [COUNT]");
        return ExitCode::from(2);
    };
    let count: usize = rest.first().and_then(|c| c.parse().ok()).unwrap_or(200);
    let text = std::fs::read_to_string(payloads).expect("read payloads");
    let lines: Vec<&str> = text.lines().collect();
    let digits = lines.len().to_string().len();
    let mut rng = qrlp_conformance::Rng::new(lines.len() as u64);
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..count {
        let i = rng.below(lines.len());
        let path = format!("{dir}/{:0digits$}.png", i + 1);
        let bytes = std::fs::read(&path).expect("read png");
        let decoded = qrlp_conformance::decode::png_with_rqrr(&bytes);
        if decoded.as_slice() == [lines[i].as_bytes().to_vec()] {
            ok += 1;
        } else {
            bad += 1;
            eprintln!("{path}: expected {:?}", lines[i]);
        }
    }
    println!("spot-check: {ok} of {count} decoded by rqrr to their input line, {bad} failed");
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
