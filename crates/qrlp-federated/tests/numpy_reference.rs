//! Aggregates checked against numpy. `scripts/ci/15-aggregation-numpy.sh` writes the
//! reference file and sets `QRLP_FL_REFERENCE`; without it the test has nothing to compare
//! and says so.

use qrlp_federated::aggregate::{FedAvg, Median, MemoryUpdates, Strategy, TrimmedMean};
use qrlp_federated::model::{ModelShape, Parameters};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    beta: f64,
    updates: Vec<Vec<f64>>,
    num_samples: Vec<u64>,
    fedavg: Vec<f64>,
    trimmed_mean: Vec<f64>,
    median: Vec<f64>,
}

impl Case {
    fn source(&self) -> MemoryUpdates {
        self.updates
            .iter()
            .zip(&self.num_samples)
            // numpy wrote float32 values as doubles, so the cast back is exact.
            .map(|(u, &n)| (u.iter().map(|&v| v as f32).collect(), n))
            .collect()
    }
}

fn check(case: &str, what: &str, got: &Parameters, expected: &[f64]) {
    assert_eq!(got.values().len(), expected.len(), "{case}: {what} length");
    for (i, (&g, &e)) in got.values().iter().zip(expected).enumerate() {
        let tolerance = 1e-6 * e.abs().max(1.0);
        assert!(
            (f64::from(g) - e).abs() <= tolerance,
            "{case}: {what}[{i}] = {g}, numpy says {e}"
        );
    }
}

#[test]
fn aggregates_match_numpy() {
    let Some(path) = std::env::var_os("QRLP_FL_REFERENCE") else {
        println!("skipped: QRLP_FL_REFERENCE not set (scripts/ci/15-aggregation-numpy.sh sets it)");
        return;
    };
    let text = std::fs::read_to_string(&path).expect("reference file readable");
    let reference: Reference = serde_json::from_str(&text).expect("reference file is valid");
    assert!(
        !reference.cases.is_empty(),
        "the reference file has no cases"
    );
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    for case in &reference.cases {
        let len = case.fedavg.len();
        let global = Parameters::zeros(ModelShape::flat(len).unwrap());

        let fedavg = FedAvg::default()
            .aggregate_train(1, &global, &mut case.source(), &mut rng)
            .unwrap();
        check(&case.name, "fedavg", &fedavg, &case.fedavg);

        // Chunk sizes that divide the length, that do not, and that exceed it.
        for chunk in [1, 7, 64, len + 1] {
            let mut trimmed = TrimmedMean {
                beta: case.beta,
                chunk,
                ..TrimmedMean::default()
            };
            let got = trimmed
                .aggregate_train(1, &global, &mut case.source(), &mut rng)
                .unwrap();
            check(&case.name, "trimmed mean", &got, &case.trimmed_mean);

            let mut median = Median {
                chunk,
                ..Median::default()
            };
            let got = median
                .aggregate_train(1, &global, &mut case.source(), &mut rng)
                .unwrap();
            check(&case.name, "median", &got, &case.median);
        }
        println!(
            "{}: {} updates of {len} values agree with numpy",
            case.name,
            case.updates.len()
        );
    }
}
