//! A bounded slice of the random-input run (the long one is `scripts/fuzz.sh`).

#[test]
fn random_inputs_and_options_never_panic() {
    std::panic::set_hook(Box::new(|_| {}));
    let tally =
        qrlp_conformance::fuzz::run(0xF022_2026, |t| t.cases < 20_000).unwrap_or_else(|e| {
            let _ = std::panic::take_hook();
            panic!("{e}")
        });
    eprintln!("{tally:?}");
    assert!(tally.encoded > 5000 && tally.rejected > 1000, "{tally:?}");
}
