//! Prints ε for a few (q, z, steps, δ), and how many rounds fit a few budgets:
//! `cargo run -p qrlp-federated --example epsilon`.
use qrlp_federated::accountant::Accountant;

fn main() {
    for (q, z, steps, delta) in [
        (1.0, 1.0, 10, 1e-5),
        (1.0, 1.0, 50, 1e-5),
        (1.0, 5.0, 20, 1e-5),
        (0.1, 1.0, 100, 1e-5),
        (0.01, 1.0, 1000, 1e-6),
    ] {
        let mut acc = Accountant::default();
        acc.record(q, z, steps).expect("valid parameters");
        let spent = acc.epsilon(delta).expect("valid delta");
        println!(
            "q={q:<5} z={z:<3} T={steps:<5} delta={delta:e}: epsilon={:.4} (alpha={})",
            spent.epsilon, spent.order
        );
    }
    for (q, z, budget, delta) in [
        (0.01, 1.0, 1.0, 1e-6),
        (0.01, 1.0, 4.0, 1e-6),
        (0.01, 1.0, 8.0, 1e-6),
        (0.1, 1.0, 8.0, 1e-5),
    ] {
        let rounds = Accountant::default()
            .steps_within_budget(q, z, budget, delta)
            .expect("valid parameters");
        println!("q={q:<5} z={z:<3} delta={delta:e}: {rounds:?} rounds within epsilon {budget}");
    }
}
