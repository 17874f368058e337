//! DP-FedAvg (McMahan, Ramage, Talwar and Zhang 2018, "Learning Differentially Private
//! Recurrent Language Models"): user-level differential privacy for federated averaging.
//!
//! Each round:
//! 1. every eligible participant is asked independently with probability
//!    `q = m / eligible`, where `m` is the **expected** number of participants (Poisson
//!    sampling, the sampling the accountant assumes);
//! 2. each answer's update `Δ = new − global` is clipped to L2 norm `S`
//!    (multiplied by `min(1, S/‖Δ‖)`), so no participant moves the sum by more than `S`;
//! 3. the server releases `global + η · (ΣΔ_clipped / m + N(0, σ² I))` with
//!    `σ = z · S / m`.
//!
//! The denominator is `m`, fixed in advance, not the number who answered: dividing by the
//! actual count would make the output's scale depend on whether one more participant took
//! part, which the noise does not cover. For the same reason a round in which nobody
//! answered still releases noise. Answers are uniformly weighted (a participant's sample
//! count is not used, since it is itself private and unbounded).
//!
//! The noise on the sum is `N(0, (z·S)²)` per coordinate with sensitivity `S`: exactly the
//! sampled Gaussian mechanism of [`crate::accountant`] with sampling rate `q` and noise
//! multiplier `z`. Record one step per round ([`DpFedAvg::record_round`]) and ask the
//! accountant for ε.
//!
//! Clipping happens on the server as answers arrive (so an unclipped answer cannot exceed
//! `S`); devices may also clip before sending with [`clip_update`], which changes nothing
//! for an honest device and keeps its raw update off the wire.
//!
//! Caveat: the Gaussian draws are floating-point Box–Muller samples from the caller's
//! generator. The guarantee assumes a cryptographically secure generator, and, like every
//! textbook floating-point implementation, it ignores the small leaks of floating-point
//! sampling (Mironov 2012).

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::accountant::{Accountant, AccountantError};
use crate::aggregate::{
    stream_source, AggregateError, RoundAccumulator, RoundPlan, Strategy, StreamingStrategy,
    TrainConfig, UpdateSource,
};
use crate::model::{Parameters, ShapeError};
use crate::random;

/// The L2 norm of `values`, accumulated in `f64`.
pub fn l2_norm(values: &[f64]) -> f64 {
    values.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// The factor `min(1, clip / ‖delta‖)` that brings `delta` within norm `clip`.
pub(crate) fn clip_factor(delta: &[f64], clip: f64) -> f64 {
    let norm = l2_norm(delta);
    if norm > clip {
        clip / norm
    } else {
        1.0
    }
}

/// On the device: replaces `update` (new parameters) by `global + Δ · min(1, S/‖Δ‖)` with
/// `Δ = update − global`, and returns `‖Δ‖` before clipping.
pub fn clip_update(
    update: &mut [f32],
    global: &[f32],
    clipping_norm: f64,
) -> Result<f64, ShapeError> {
    if update.len() != global.len() {
        return Err(ShapeError::Length {
            expected: global.len(),
            actual: update.len(),
        });
    }
    if let Some(index) = update.iter().position(|v| !v.is_finite()) {
        return Err(ShapeError::NonFinite { index });
    }
    let delta: Vec<f64> = update
        .iter()
        .zip(global)
        .map(|(&u, &g)| f64::from(u) - f64::from(g))
        .collect();
    let norm = l2_norm(&delta);
    let scale = clip_factor(&delta, clipping_norm);
    if scale < 1.0 {
        for ((u, &g), d) in update.iter_mut().zip(global).zip(&delta) {
            *u = (f64::from(g) + scale * d) as f32;
        }
    }
    Ok(norm)
}

/// The DP-FedAvg strategy. Defaults: `m = 10`, `z = 1`, `S = 1`, `η = 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpFedAvg {
    /// Expected participants per round, `m` (> 0): the sampling rate is `m / eligible` and
    /// the fixed denominator of the average.
    pub expected_participants: f64,
    /// Noise multiplier `z` (≥ 0): noise standard deviation over clipping norm, on the sum.
    pub noise_multiplier: f64,
    /// Clipping norm `S` (> 0) of each update.
    pub clipping_norm: f64,
    /// Server learning rate `η` (> 0) applied to the noisy average update.
    pub server_learning_rate: f64,
    /// Settings sent with the model (`clipping_norm` is filled in from `S`).
    pub train: TrainConfig,
}

impl Default for DpFedAvg {
    fn default() -> Self {
        Self {
            expected_participants: 10.0,
            noise_multiplier: 1.0,
            clipping_norm: 1.0,
            server_learning_rate: 1.0,
            train: TrainConfig::default(),
        }
    }
}

impl DpFedAvg {
    fn check(&self) -> Result<(), AggregateError> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.expected_participants) {
            return Err(AggregateError::Config(
                "expected participants must be positive",
            ));
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0) {
            return Err(AggregateError::Config(
                "noise multiplier must be non-negative",
            ));
        }
        if !positive(self.clipping_norm) {
            return Err(AggregateError::Config("clipping norm must be positive"));
        }
        if !positive(self.server_learning_rate) {
            return Err(AggregateError::Config(
                "server learning rate must be positive",
            ));
        }
        Ok(())
    }

    /// The sampling rate `q = min(1, m / eligible)` for a population of `eligible`.
    pub fn sampling_rate(&self, eligible: usize) -> f64 {
        if eligible == 0 {
            return 0.0;
        }
        (self.expected_participants / eligible as f64).min(1.0)
    }

    /// Standard deviation `σ = z · S / m` of the noise added to each coordinate of the
    /// average update.
    pub fn noise_std(&self) -> f64 {
        self.noise_multiplier * self.clipping_norm / self.expected_participants
    }

    /// Records one round over a population of `eligible` in `accountant`.
    pub fn record_round(
        &self,
        accountant: &mut Accountant,
        eligible: usize,
    ) -> Result<(), AccountantError> {
        accountant.record(self.sampling_rate(eligible), self.noise_multiplier, 1)
    }
}

impl Strategy for DpFedAvg {
    /// Poisson sampling: each eligible participant independently with probability
    /// [`DpFedAvg::sampling_rate`].
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan {
        let q = self.sampling_rate(eligible);
        RoundPlan {
            round,
            participants: random::poisson_sample(rng, eligible, q),
            config: TrainConfig {
                clipping_norm: Some(self.clipping_norm as f32),
                ..self.train.clone()
            },
        }
    }

    fn aggregate_train(
        &mut self,
        _round: u64,
        global: &Parameters,
        updates: &mut dyn UpdateSource,
        rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        stream_source(self, global, updates, rng)
    }
}

impl StreamingStrategy for DpFedAvg {
    fn begin_round(&self, global: &Parameters) -> Result<RoundAccumulator, AggregateError> {
        self.check()?;
        Ok(RoundAccumulator::clipped_deltas(
            global.values(),
            self.clipping_norm,
        ))
    }

    /// Adds noise and applies the average; a round without answers releases noise only.
    fn finish_round(
        &mut self,
        global: &Parameters,
        round: RoundAccumulator,
        rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        self.check()?;
        let (sum, _accepted) = round.into_sum();
        if sum.len() != global.values().len() {
            return Err(ShapeError::Mismatch.into());
        }
        let mut noise = vec![0.0; sum.len()];
        random::fill_gaussian(rng, &mut noise, self.noise_std());
        let m = self.expected_participants;
        let eta = self.server_learning_rate;
        let next: Vec<f64> = global
            .values()
            .iter()
            .zip(&sum)
            .zip(&noise)
            .map(|((&g, &s), &n)| f64::from(g) + eta * (s / m + n))
            .collect();
        Ok(Parameters::from_f64(global.shape(), &next)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::MemoryUpdates;
    use crate::model::ModelShape;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn params(values: &[f32]) -> Parameters {
        Parameters::new(ModelShape::flat(values.len()).unwrap(), values.to_vec()).unwrap()
    }

    #[test]
    fn clip_update_scales_only_long_updates() {
        let global = [1.0, 1.0];
        let mut long = [4.0, 5.0]; // Δ = (3, 4), norm 5
        assert_eq!(clip_update(&mut long, &global, 1.0).unwrap(), 5.0);
        assert!((long[0] - 1.6).abs() < 1e-6 && (long[1] - 1.8).abs() < 1e-6);
        let mut short = [1.3, 1.4]; // norm 0.5
        clip_update(&mut short, &global, 1.0).unwrap();
        assert_eq!(short, [1.3, 1.4]);
        assert!(clip_update(&mut [1.0], &global, 1.0).is_err());
        assert!(clip_update(&mut [f32::NAN, 0.0], &global, 1.0).is_err());
    }

    #[test]
    fn without_noise_the_result_is_the_clipped_sum_over_m() {
        let g = params(&[0.0, 0.0]);
        let mut s = DpFedAvg {
            expected_participants: 4.0,
            noise_multiplier: 0.0,
            clipping_norm: 1.0,
            ..DpFedAvg::default()
        };
        // Two answers (fewer than the expected four): one clipped from norm 10, one inside.
        let mut src: MemoryUpdates = [(vec![6.0, 8.0], 100), (vec![0.0, 0.5], 1)]
            .into_iter()
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let out = s.aggregate_train(1, &g, &mut src, &mut rng).unwrap();
        // (0.6, 0.8) + (0, 0.5) = (0.6, 1.3), divided by m = 4, sample counts ignored.
        let v = out.values();
        assert!(
            (v[0] - 0.15).abs() < 1e-6 && (v[1] - 0.325).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn noise_has_standard_deviation_z_s_over_m() {
        let len = 20_000;
        let g = params(&vec![0.5; len]);
        let mut s = DpFedAvg {
            expected_participants: 5.0,
            noise_multiplier: 1.5,
            clipping_norm: 2.0,
            ..DpFedAvg::default()
        };
        assert!((s.noise_std() - 0.6).abs() < 1e-12);
        let round = s.begin_round(&g).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let out = s.finish_round(&g, round, &mut rng).unwrap();
        let dev: Vec<f64> = out.values().iter().map(|&v| f64::from(v) - 0.5).collect();
        let mean = dev.iter().sum::<f64>() / len as f64;
        let std = (dev.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / len as f64).sqrt();
        assert!(
            mean.abs() < 0.02 && (std - 0.6).abs() < 0.02,
            "{mean} {std}"
        );
    }

    #[test]
    fn same_seed_same_round() {
        let g = params(&[0.0; 8]);
        let run = |seed| {
            let mut s = DpFedAvg::default();
            let mut src: MemoryUpdates = [(vec![1.0; 8], 1)].into_iter().collect();
            s.aggregate_train(1, &g, &mut src, &mut ChaCha20Rng::seed_from_u64(seed))
                .unwrap()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn configure_uses_poisson_sampling_and_sends_the_clip() {
        let s = DpFedAvg {
            expected_participants: 100.0,
            ..DpFedAvg::default()
        };
        assert_eq!(s.sampling_rate(1000), 0.1);
        assert_eq!(s.sampling_rate(50), 1.0);
        let plan = s.configure_train(2, 1000, &mut ChaCha20Rng::seed_from_u64(5));
        assert!((60..140).contains(&plan.participants.len()));
        assert_eq!(plan.config.clipping_norm, Some(1.0));
    }

    #[test]
    fn rounds_feed_the_accountant() {
        let s = DpFedAvg {
            expected_participants: 100.0,
            noise_multiplier: 1.0,
            ..DpFedAvg::default()
        };
        let mut acc = Accountant::default();
        for _ in 0..100 {
            s.record_round(&mut acc, 1000).unwrap();
        }
        // q = 0.1, z = 1, 100 rounds: the accountant's reference figure.
        let eps = acc.epsilon(1e-5).unwrap().epsilon;
        assert!((eps - 7.8993).abs() < 1e-3, "{eps}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let g = params(&[0.0]);
        for s in [
            DpFedAvg {
                expected_participants: 0.0,
                ..DpFedAvg::default()
            },
            DpFedAvg {
                noise_multiplier: -1.0,
                ..DpFedAvg::default()
            },
            DpFedAvg {
                clipping_norm: f64::NAN,
                ..DpFedAvg::default()
            },
            DpFedAvg {
                server_learning_rate: 0.0,
                ..DpFedAvg::default()
            },
        ] {
            assert!(matches!(s.begin_round(&g), Err(AggregateError::Config(_))));
        }
    }
}
