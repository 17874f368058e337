//! A whole federation in one process: devices standardise with pooled statistics, train
//! logistic regression locally, and the server aggregates with each strategy in turn.

use qrlp_federated::aggregate::{
    FedAdam, FedAvg, Median, MemoryUpdates, Strategy, StreamingStrategy, TrimmedMean,
};
use qrlp_federated::dp::DpFedAvg;
use qrlp_federated::train::{
    accuracy, fit, Dataset, FeatureStats, FitConfig, LogisticRegression, Model,
};
use qrlp_federated::Accountant;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Each device sees a different region of the plane (non-IID), same labelling rule.
fn device_data(rng: &mut ChaCha20Rng, offset: f64, n: usize) -> Dataset {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    while ys.len() < n {
        let a = offset + 3.0 * unit(rng) - 1.5;
        let b = 3.0 * unit(rng) - 1.5;
        let side = 2.0 * a - b - 0.5;
        if side.abs() < 0.1 {
            continue;
        }
        xs.extend([(a * 10.0 + 5.0) as f32, (b + 3.0) as f32]);
        ys.push(if side > 0.0 { 1.0 } else { 0.0 });
    }
    Dataset::new(xs, ys, 2).unwrap()
}

fn federation(rng: &mut ChaCha20Rng) -> (Vec<Dataset>, Dataset) {
    let mut devices: Vec<Dataset> = [-1.0, -0.5, 0.0, 0.5, 1.0, 0.2]
        .iter()
        .map(|&o| device_data(rng, o, 150))
        .collect();
    let mut test = device_data(rng, 0.0, 1000);
    let mut stats = FeatureStats::new(2);
    for d in &devices {
        stats.merge(&FeatureStats::of(d)).unwrap();
    }
    let scaler = stats.standardizer().unwrap();
    for d in devices.iter_mut().chain(std::iter::once(&mut test)) {
        scaler.apply(d).unwrap();
    }
    (devices, test)
}

/// Runs `rounds` rounds; every device takes part; returns the held-out accuracy.
fn train_with(strategy: &mut dyn Strategy, rounds: u64, seed: u64) -> f64 {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (devices, test) = federation(&mut rng);
    let mut global = LogisticRegression::new(2).unwrap();
    let config = FitConfig {
        learning_rate: 0.3,
        epochs: 2,
        batch_size: 16,
        l2: 0.0,
    };
    for round in 1..=rounds {
        let mut updates = MemoryUpdates::new();
        for d in &devices {
            let mut local = global.clone();
            fit(&mut local, d, &config, &mut rng).unwrap();
            updates.push(local.values().to_vec(), d.len() as u64);
        }
        let next = strategy
            .aggregate_train(round, &global.parameters().unwrap(), &mut updates, &mut rng)
            .unwrap();
        global.set_parameters(&next).unwrap();
    }
    accuracy(&global, &test).unwrap()
}

#[test]
fn every_strategy_trains_a_useful_model() {
    let strategies: Vec<(&str, Box<dyn Strategy>)> = vec![
        ("fedavg", Box::new(FedAvg::default())),
        (
            "fedadam",
            Box::new(FedAdam {
                eta: 0.3,
                ..FedAdam::default()
            }),
        ),
        ("trimmed mean", Box::new(TrimmedMean::default())),
        ("median", Box::new(Median::default())),
    ];
    for (name, mut s) in strategies {
        let acc = train_with(s.as_mut(), 10, 1);
        assert!(acc > 0.95, "{name}: {acc}");
    }
}

/// DP-FedAvg with every device every round (q = 1) and modest noise still learns, and the
/// accountant prices the run.
#[test]
fn dp_fedavg_learns_and_is_accounted() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (devices, test) = federation(&mut rng);
    let mut strategy = DpFedAvg {
        expected_participants: devices.len() as f64,
        noise_multiplier: 0.5,
        clipping_norm: 1.0,
        ..DpFedAvg::default()
    };
    let mut accountant = Accountant::default();
    let mut global = LogisticRegression::new(2).unwrap();
    let config = FitConfig {
        learning_rate: 0.3,
        epochs: 2,
        batch_size: 16,
        l2: 0.0,
    };
    for _ in 0..15 {
        let params = global.parameters().unwrap();
        let mut round = strategy.begin_round(&params).unwrap();
        for d in &devices {
            let mut local = global.clone();
            fit(&mut local, d, &config, &mut rng).unwrap();
            round.add(local.values(), d.len() as u64).unwrap();
        }
        let next = strategy.finish_round(&params, round, &mut rng).unwrap();
        global.set_parameters(&next).unwrap();
        strategy
            .record_round(&mut accountant, devices.len())
            .unwrap();
    }
    let acc = accuracy(&global, &test).unwrap();
    assert!(acc > 0.9, "{acc}");
    let spent = accountant.epsilon(1e-5).unwrap();
    // q = 1, z = 0.5, 15 rounds: the RDP is 15·α/(2·0.25) = 30α, a large ε (weak privacy
    // for a six-device toy federation, as expected).
    assert!(
        spent.epsilon > 30.0 && spent.epsilon.is_finite(),
        "{spent:?}"
    );
}
