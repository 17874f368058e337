//! Aggregation strategies: how a round is configured and how the answers become the next
//! global model.
//!
//! The split follows Flower's `Strategy`: [`Strategy::configure_train`] picks the
//! participants of a round and the settings they train with;
//! [`Strategy::aggregate_train`] turns their answers into new global parameters;
//! [`Strategy::aggregate_evaluate`] summarises evaluation results. The round lifecycle
//! (who is online, deadlines, retries, transport) belongs to the adapter; the strategies
//! only see indices, numbers and a random generator.
//!
//! Devices answer with their **new parameters** (not a difference) and the number of
//! examples they trained on. Every answer is checked before it touches an aggregate: a
//! wrong length or a NaN or infinite value is an [`AggregateError`] naming the participant,
//! and the aggregate is left as it was.
//!
//! # Two ways to feed a round
//!
//! - **Streaming** ([`StreamingStrategy`]: [`FedAvg`], [`FedAdam`] and the DP strategy): the
//!   adapter calls [`RoundAccumulator::add`] as each answer arrives; the accumulator keeps an
//!   `f64` running sum, so memory is O(parameters) whatever the number of participants,
//!   and answers need not be stored at all.
//! - **By coordinate chunks** ([`TrimmedMean`], [`Median`]): an exact coordinate-wise
//!   order statistic needs every participant's value for that coordinate. These strategies
//!   read the answers through [`UpdateSource`], one range of coordinates at a time, so the
//!   adapter may keep the answers anywhere (files on disk, a database) and memory is
//!   O(participants × chunk + parameters). [`MemoryUpdates`] is the in-memory source.
//!
//! Every strategy also implements [`Strategy::aggregate_train`] over an [`UpdateSource`];
//! the streaming ones read each answer whole, once, in order.

use std::error::Error;
use std::ops::Range;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::model::{Parameters, ShapeError};
use crate::random;

/// Why a round could not be aggregated or an answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// No answer was accepted.
    #[error("no updates to aggregate")]
    NoUpdates,
    /// Every accepted answer reported zero training examples.
    #[error("the updates carry no weight (all sample counts are zero)")]
    NoWeight,
    /// An answer does not have as many values as the global model.
    #[error("update {participant} has {actual} values, the model has {expected}")]
    Length {
        /// Position of the answer in the round.
        participant: usize,
        /// Values of the global model.
        expected: usize,
        /// Values in the answer.
        actual: usize,
    },
    /// An answer holds a NaN or an infinite value.
    #[error("update {participant} has a non-finite value at {index}")]
    NonFinite {
        /// Position of the answer in the round.
        participant: usize,
        /// Position of the value.
        index: usize,
    },
    /// Trimming would remove every answer.
    #[error("trimming {trimmed} from each side of {participants} updates leaves nothing")]
    TooFewToTrim {
        /// Answers in the round.
        participants: usize,
        /// Answers dropped at each end, per coordinate.
        trimmed: usize,
    },
    /// A setting of the strategy is out of range.
    #[error("invalid strategy setting: {0}")]
    Config(&'static str),
    /// The result (or the strategy's state) does not fit the model.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The caller's [`UpdateSource`] failed to produce an answer.
    #[error("reading update {participant}")]
    Source {
        /// Position of the answer in the round.
        participant: usize,
        /// The caller's error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

/// Settings sent to each participant with the global model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Local learning rate.
    pub learning_rate: f32,
    /// Passes over the local data.
    pub local_epochs: u32,
    /// Examples per local gradient step.
    pub batch_size: u32,
    /// When set, the participant clips its update (new parameters minus the global ones)
    /// to this L2 norm before sending it (DP-FedAvg).
    pub clipping_norm: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.001,
            local_epochs: 10,
            batch_size: 32,
            clipping_norm: None,
        }
    }
}

/// How many of the eligible participants a round asks, chosen uniformly without
/// replacement: `max(min_participants, ⌈fraction × eligible⌉)`, at most all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Share of the eligible participants to ask, in `[0, 1]`.
    pub fraction: f64,
    /// Lower bound on the number asked.
    pub min_participants: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            fraction: 1.0,
            min_participants: 2,
        }
    }
}

impl Sampling {
    /// Picks the participants (ascending indices into the eligible list).
    pub fn select<R: RngCore + ?Sized>(&self, eligible: usize, rng: &mut R) -> Vec<usize> {
        let fraction = if self.fraction.is_finite() {
            self.fraction.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let wanted = (fraction * eligible as f64).ceil() as usize;
        random::sample_without_replacement(rng, eligible, wanted.max(self.min_participants))
    }
}

/// What a round asks: who trains (indices into the eligible list) and with what settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundPlan {
    /// Round number.
    pub round: u64,
    /// Chosen participants, ascending indices into the eligible list the caller passed.
    pub participants: Vec<usize>,
    /// Settings sent with the model.
    pub config: TrainConfig,
}

/// One participant's evaluation of the global model on its local data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvaluateResult {
    /// Examples evaluated.
    pub num_samples: u64,
    /// Mean loss over them.
    pub loss: f64,
    /// Share classified correctly.
    pub accuracy: f64,
}

/// Evaluation results averaged with weights proportional to sample counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvaluateSummary {
    /// Results counted (non-finite ones and empty ones are left out).
    pub participants: usize,
    /// Total examples.
    pub num_samples: u64,
    /// Weighted mean loss.
    pub loss: f64,
    /// Weighted mean accuracy.
    pub accuracy: f64,
}

/// The answers of a round, read by participant and coordinate range.
///
/// Implement it over wherever the adapter keeps the answers. Participants are numbered
/// `0..participants()`; `read` may be called many times for the same participant with
/// different ranges, in any order.
pub trait UpdateSource {
    /// Answers in the round.
    fn participants(&self) -> usize;
    /// Values in answer `i` (checked against the model before any read).
    fn len(&self, i: usize) -> usize;
    /// Training examples behind answer `i` (its FedAvg weight).
    fn num_samples(&self, i: usize) -> u64;
    /// Copies values `range` of answer `i` into `out` (`out.len() == range.len()`).
    fn read(
        &mut self,
        i: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Box<dyn Error + Send + Sync>>;
}

/// Answers held in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryUpdates {
    updates: Vec<(Vec<f32>, u64)>,
}

impl MemoryUpdates {
    /// No answers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an answer: new parameters and the number of examples behind them.
    pub fn push(&mut self, values: Vec<f32>, num_samples: u64) {
        self.updates.push((values, num_samples));
    }
}

impl FromIterator<(Vec<f32>, u64)> for MemoryUpdates {
    fn from_iter<I: IntoIterator<Item = (Vec<f32>, u64)>>(iter: I) -> Self {
        Self {
            updates: iter.into_iter().collect(),
        }
    }
}

impl UpdateSource for MemoryUpdates {
    fn participants(&self) -> usize {
        self.updates.len()
    }
    fn len(&self, i: usize) -> usize {
        self.updates[i].0.len()
    }
    fn num_samples(&self, i: usize) -> u64 {
        self.updates[i].1
    }
    fn read(
        &mut self,
        i: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        out.copy_from_slice(&self.updates[i].0[range]);
        Ok(())
    }
}

/// A strategy: configures rounds and aggregates their answers.
pub trait Strategy {
    /// Chooses the participants of round `round` among `eligible` candidates.
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan;

    /// The next global parameters from the round's answers.
    fn aggregate_train(
        &mut self,
        round: u64,
        global: &Parameters,
        updates: &mut dyn UpdateSource,
        rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError>;

    /// Chooses who evaluates the model: every eligible participant by default.
    fn configure_evaluate(
        &self,
        _round: u64,
        eligible: usize,
        _rng: &mut dyn RngCore,
    ) -> Vec<usize> {
        (0..eligible).collect()
    }

    /// Averages evaluation results weighted by their sample counts; `None` when no result
    /// carries weight.
    fn aggregate_evaluate(&self, results: &[EvaluateResult]) -> Option<EvaluateSummary> {
        let usable = results
            .iter()
            .filter(|r| r.num_samples > 0 && r.loss.is_finite() && r.accuracy.is_finite());
        let (mut n, mut count, mut loss, mut accuracy) = (0u64, 0usize, 0.0, 0.0);
        for r in usable {
            n += r.num_samples;
            count += 1;
            loss += r.loss * r.num_samples as f64;
            accuracy += r.accuracy * r.num_samples as f64;
        }
        (n > 0).then(|| EvaluateSummary {
            participants: count,
            num_samples: n,
            loss: loss / n as f64,
            accuracy: accuracy / n as f64,
        })
    }
}

/// A strategy that can aggregate answers one at a time as they arrive.
pub trait StreamingStrategy: Strategy {
    /// An empty accumulator for a round over `global`.
    fn begin_round(&self, global: &Parameters) -> Result<RoundAccumulator, AggregateError>;

    /// The next global parameters from everything added to `round`.
    fn finish_round(
        &mut self,
        global: &Parameters,
        round: RoundAccumulator,
        rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError>;
}

#[derive(Debug, Clone, PartialEq)]
enum Weighting {
    /// FedAvg: each answer weighted by its sample count.
    BySamples,
    /// DP-FedAvg: the difference from `global`, clipped to `clip`, weight one.
    ClippedDelta { global: Vec<f32>, clip: f64 },
}

/// A round in progress: the running `f64` sum of the answers added so far.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundAccumulator {
    weighting: Weighting,
    sum: Vec<f64>,
    weight: f64,
    accepted: usize,
    offered: usize,
    scratch: Vec<f64>,
}

impl RoundAccumulator {
    fn by_samples(len: usize) -> Self {
        Self {
            weighting: Weighting::BySamples,
            sum: vec![0.0; len],
            weight: 0.0,
            accepted: 0,
            offered: 0,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn clipped_deltas(global: &[f32], clip: f64) -> Self {
        Self {
            weighting: Weighting::ClippedDelta {
                global: global.to_vec(),
                clip,
            },
            sum: vec![0.0; global.len()],
            weight: 0.0,
            accepted: 0,
            offered: 0,
            scratch: vec![0.0; global.len()],
        }
    }

    /// Adds one answer (new parameters, examples behind them). A refused answer leaves the
    /// sum untouched; the error's `participant` counts every answer offered, refused or not.
    pub fn add(&mut self, values: &[f32], num_samples: u64) -> Result<(), AggregateError> {
        let participant = self.offered;
        self.offered += 1;
        check_update(participant, self.sum.len(), values)?;
        match &self.weighting {
            Weighting::BySamples => {
                let w = num_samples as f64;
                for (s, &v) in self.sum.iter_mut().zip(values) {
                    *s += w * f64::from(v);
                }
                self.weight += w;
            }
            Weighting::ClippedDelta { global, clip } => {
                for ((d, &v), &g) in self.scratch.iter_mut().zip(values).zip(global) {
                    *d = f64::from(v) - f64::from(g);
                }
                let scale = crate::dp::clip_factor(&self.scratch, *clip);
                for (s, &d) in self.sum.iter_mut().zip(&self.scratch) {
                    *s += scale * d;
                }
                self.weight += 1.0;
            }
        }
        self.accepted += 1;
        Ok(())
    }

    /// Answers accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// Total weight accepted (sum of sample counts; for DP rounds, the number accepted).
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The weighted mean of the answers added.
    fn mean(&self) -> Result<Vec<f64>, AggregateError> {
        if self.accepted == 0 {
            return Err(AggregateError::NoUpdates);
        }
        if self.weight <= 0.0 {
            return Err(AggregateError::NoWeight);
        }
        Ok(self.sum.iter().map(|s| s / self.weight).collect())
    }

    /// The raw sum (DP rounds divide by a fixed denominator instead of the weight).
    pub(crate) fn into_sum(self) -> (Vec<f64>, usize) {
        (self.sum, self.accepted)
    }
}

fn check_update(participant: usize, expected: usize, values: &[f32]) -> Result<(), AggregateError> {
    if values.len() != expected {
        return Err(AggregateError::Length {
            participant,
            expected,
            actual: values.len(),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(AggregateError::NonFinite { participant, index }),
        None => Ok(()),
    }
}

/// Reads every answer whole, in order, into a streaming strategy's accumulator.
pub(crate) fn stream_source<S: StreamingStrategy + ?Sized>(
    strategy: &mut S,
    global: &Parameters,
    updates: &mut dyn UpdateSource,
    rng: &mut dyn RngCore,
) -> Result<Parameters, AggregateError> {
    let mut round = strategy.begin_round(global)?;
    let len = global.values().len();
    let mut buf = vec![0.0f32; len];
    for i in 0..updates.participants() {
        let actual = updates.len(i);
        if actual != len {
            return Err(AggregateError::Length {
                participant: i,
                expected: len,
                actual,
            });
        }
        updates
            .read(i, 0..len, &mut buf)
            .map_err(|source| AggregateError::Source {
                participant: i,
                source,
            })?;
        round.add(&buf, updates.num_samples(i))?;
    }
    strategy.finish_round(global, round, rng)
}

/// Federated averaging (McMahan et al. 2017): the mean of the answers weighted by their
/// sample counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FedAvg {
    /// Who is asked each round.
    pub sampling: Sampling,
    /// Settings sent with the model.
    pub train: TrainConfig,
}

impl Strategy for FedAvg {
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan {
        RoundPlan {
            round,
            participants: self.sampling.select(eligible, rng),
            config: self.train.clone(),
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

impl StreamingStrategy for FedAvg {
    fn begin_round(&self, global: &Parameters) -> Result<RoundAccumulator, AggregateError> {
        Ok(RoundAccumulator::by_samples(global.values().len()))
    }

    fn finish_round(
        &mut self,
        global: &Parameters,
        round: RoundAccumulator,
        _rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        Ok(Parameters::from_f64(global.shape(), &round.mean()?)?)
    }
}

/// FedAdam's optimiser state, carried from round to round (store it with the model).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FedAdamState {
    /// First moment of the pseudo-gradient, per parameter (empty before the first round).
    pub m: Vec<f64>,
    /// Second moment of the pseudo-gradient, per parameter.
    pub v: Vec<f64>,
    /// Rounds applied.
    pub rounds: u64,
}

/// FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization"): the sample-weighted
/// mean of the answers minus the current global model is a pseudo-gradient `Δ`, and the
/// server takes an Adam step along it:
/// `m ← β1·m + (1−β1)·Δ`, `v ← β2·v + (1−β2)·Δ²`, `x ← x + η·m / (√v + τ)`
/// (the paper's form, without bias correction; `τ` bounds the step where `v` is tiny).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FedAdam {
    /// Who is asked each round.
    pub sampling: Sampling,
    /// Settings sent with the model.
    pub train: TrainConfig,
    /// Server learning rate η.
    pub eta: f64,
    /// Decay of the first moment, in `[0, 1)`.
    pub beta1: f64,
    /// Decay of the second moment, in `[0, 1)`.
    pub beta2: f64,
    /// Adaptivity floor τ (> 0).
    pub tau: f64,
    /// Moments carried between rounds.
    pub state: FedAdamState,
}

impl Default for FedAdam {
    fn default() -> Self {
        Self {
            sampling: Sampling::default(),
            train: TrainConfig::default(),
            eta: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
            state: FedAdamState::default(),
        }
    }
}

impl FedAdam {
    fn check(&self, len: usize) -> Result<(), AggregateError> {
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(AggregateError::Config("eta must be positive"));
        }
        if !((0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2)) {
            return Err(AggregateError::Config("beta1 and beta2 must be in [0, 1)"));
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(AggregateError::Config("tau must be positive"));
        }
        let (m, v) = (self.state.m.len(), self.state.v.len());
        if !((m == 0 && v == 0) || (m == len && v == len)) {
            return Err(ShapeError::Mismatch.into());
        }
        Ok(())
    }
}

impl Strategy for FedAdam {
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan {
        RoundPlan {
            round,
            participants: self.sampling.select(eligible, rng),
            config: self.train.clone(),
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

impl StreamingStrategy for FedAdam {
    fn begin_round(&self, global: &Parameters) -> Result<RoundAccumulator, AggregateError> {
        self.check(global.values().len())?;
        Ok(RoundAccumulator::by_samples(global.values().len()))
    }

    fn finish_round(
        &mut self,
        global: &Parameters,
        round: RoundAccumulator,
        _rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        let len = global.values().len();
        self.check(len)?;
        let mean = round.mean()?;
        let mut m = std::mem::take(&mut self.state.m);
        let mut v = std::mem::take(&mut self.state.v);
        m.resize(len, 0.0);
        v.resize(len, 0.0);
        let mut next = Vec::with_capacity(len);
        for (i, (&x, &avg)) in global.values().iter().zip(&mean).enumerate() {
            let delta = avg - f64::from(x);
            m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * delta;
            v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * delta * delta;
            next.push(f64::from(x) + self.eta * m[i] / (v[i].sqrt() + self.tau));
        }
        // Build the result before committing the state, so a failure changes nothing.
        let params = Parameters::from_f64(global.shape(), &next)?;
        self.state = FedAdamState {
            m,
            v,
            rounds: self.state.rounds + 1,
        };
        Ok(params)
    }
}

/// Default number of coordinates per chunk for the robust strategies.
pub const DEFAULT_CHUNK: usize = 4096;

/// Coordinate-wise trimmed mean (Yin et al. 2018): for each parameter, drop the
/// `⌊β·n⌋` smallest and the `⌊β·n⌋` largest of the `n` answers and average the rest,
/// unweighted. The same convention as `scipy.stats.trim_mean(x, β)`. Up to `⌊β·n⌋`
/// arbitrary (poisoned) answers cannot move a coordinate outside the range of the honest
/// ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrimmedMean {
    /// Who is asked each round.
    pub sampling: Sampling,
    /// Settings sent with the model.
    pub train: TrainConfig,
    /// Fraction β trimmed from each end, in `[0, 0.5)`.
    pub beta: f64,
    /// Coordinates read per chunk (memory is `participants × chunk` values).
    pub chunk: usize,
}

impl Default for TrimmedMean {
    fn default() -> Self {
        Self {
            sampling: Sampling::default(),
            train: TrainConfig::default(),
            beta: 0.2,
            chunk: DEFAULT_CHUNK,
        }
    }
}

impl TrimmedMean {
    /// Answers dropped at each end for `n` answers.
    pub fn trimmed(&self, n: usize) -> usize {
        (self.beta * n as f64).floor() as usize
    }
}

impl Strategy for TrimmedMean {
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan {
        RoundPlan {
            round,
            participants: self.sampling.select(eligible, rng),
            config: self.train.clone(),
        }
    }

    fn aggregate_train(
        &mut self,
        _round: u64,
        global: &Parameters,
        updates: &mut dyn UpdateSource,
        _rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        if !(0.0..0.5).contains(&self.beta) {
            return Err(AggregateError::Config("beta must be in [0, 0.5)"));
        }
        let n = updates.participants();
        let k = self.trimmed(n);
        if n > 0 && 2 * k >= n {
            return Err(AggregateError::TooFewToTrim {
                participants: n,
                trimmed: k,
            });
        }
        coordinatewise(global, updates, self.chunk, |column| {
            column.sort_unstable_by(f32::total_cmp);
            let kept = &column[k..column.len() - k];
            kept.iter().map(|&v| f64::from(v)).sum::<f64>() / kept.len() as f64
        })
    }
}

/// Coordinate-wise median (Yin et al. 2018), unweighted; for an even number of answers the
/// mean of the two middle values (as `numpy.median`). Fewer than half the answers, however
/// extreme, cannot move it outside the range of the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Median {
    /// Who is asked each round.
    pub sampling: Sampling,
    /// Settings sent with the model.
    pub train: TrainConfig,
    /// Coordinates read per chunk (memory is `participants × chunk` values).
    pub chunk: usize,
}

impl Default for Median {
    fn default() -> Self {
        Self {
            sampling: Sampling::default(),
            train: TrainConfig::default(),
            chunk: DEFAULT_CHUNK,
        }
    }
}

impl Strategy for Median {
    fn configure_train(&self, round: u64, eligible: usize, rng: &mut dyn RngCore) -> RoundPlan {
        RoundPlan {
            round,
            participants: self.sampling.select(eligible, rng),
            config: self.train.clone(),
        }
    }

    fn aggregate_train(
        &mut self,
        _round: u64,
        global: &Parameters,
        updates: &mut dyn UpdateSource,
        _rng: &mut dyn RngCore,
    ) -> Result<Parameters, AggregateError> {
        coordinatewise(global, updates, self.chunk, |column| {
            let n = column.len();
            let mid = n / 2;
            let (below, &mut upper, _) = column.select_nth_unstable_by(mid, f32::total_cmp);
            if n % 2 == 1 {
                f64::from(upper)
            } else {
                // The lower middle value is the largest of the lower half.
                let lower = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                (f64::from(lower) + f64::from(upper)) / 2.0
            }
        })
    }
}

/// Applies `reduce` to each coordinate's column of answers, reading `chunk` coordinates of
/// every answer at a time.
fn coordinatewise(
    global: &Parameters,
    updates: &mut dyn UpdateSource,
    chunk: usize,
    mut reduce: impl FnMut(&mut [f32]) -> f64,
) -> Result<Parameters, AggregateError> {
    if chunk == 0 {
        return Err(AggregateError::Config("chunk must be at least 1"));
    }
    let n = updates.participants();
    if n == 0 {
        return Err(AggregateError::NoUpdates);
    }
    let len = global.values().len();
    for i in 0..n {
        let actual = updates.len(i);
        if actual != len {
            return Err(AggregateError::Length {
                participant: i,
                expected: len,
                actual,
            });
        }
    }
    let chunk = chunk.min(len.max(1));
    let mut block = vec![0.0f32; n * chunk];
    let mut column = vec![0.0f32; n];
    let mut out = Vec::with_capacity(len);
    let mut start = 0;
    while start < len {
        let end = (start + chunk).min(len);
        let width = end - start;
        for i in 0..n {
            let row = &mut block[i * width..(i + 1) * width];
            updates
                .read(i, start..end, row)
                .map_err(|source| AggregateError::Source {
                    participant: i,
                    source,
                })?;
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(AggregateError::NonFinite {
                    participant: i,
                    index: start + j,
                });
            }
        }
        for j in 0..width {
            for (i, c) in column.iter_mut().enumerate() {
                *c = block[i * width + j];
            }
            out.push(reduce(&mut column));
        }
        start = end;
    }
    Ok(Parameters::from_f64(global.shape(), &out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelShape;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn global(values: &[f32]) -> Parameters {
        Parameters::new(ModelShape::flat(values.len()).unwrap(), values.to_vec()).unwrap()
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(42)
    }

    fn run(
        s: &mut dyn Strategy,
        g: &Parameters,
        updates: &[(Vec<f32>, u64)],
    ) -> Result<Vec<f32>, AggregateError> {
        let mut src: MemoryUpdates = updates.iter().cloned().collect();
        s.aggregate_train(1, g, &mut src, &mut rng())
            .map(Parameters::into_values)
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn fedavg_weights_by_samples() {
        let g = global(&[0.0, 0.0]);
        let out = run(
            &mut FedAvg::default(),
            &g,
            &[(vec![1.0, 2.0], 1), (vec![4.0, -1.0], 2)],
        )
        .unwrap();
        assert!(close(&out, &[3.0, 0.0]), "{out:?}");
    }

    #[test]
    fn fedavg_streaming_refuses_bad_updates_without_changing_the_sum() {
        let g = global(&[0.0, 0.0]);
        let mut s = FedAvg::default();
        let mut round = s.begin_round(&g).unwrap();
        round.add(&[2.0, 2.0], 3).unwrap();
        assert!(matches!(
            round.add(&[1.0], 1),
            Err(AggregateError::Length {
                participant: 1,
                expected: 2,
                actual: 1
            })
        ));
        assert!(matches!(
            round.add(&[1.0, f32::INFINITY], 1),
            Err(AggregateError::NonFinite {
                participant: 2,
                index: 1
            })
        ));
        assert!(matches!(
            round.add(&[f32::NAN, 0.0], 1),
            Err(AggregateError::NonFinite {
                participant: 3,
                index: 0
            })
        ));
        assert_eq!(round.accepted(), 1);
        let out = s.finish_round(&g, round, &mut rng()).unwrap();
        assert_eq!(out.values(), &[2.0, 2.0]);
    }

    #[test]
    fn empty_and_weightless_rounds_are_errors() {
        let g = global(&[0.0]);
        assert!(matches!(
            run(&mut FedAvg::default(), &g, &[]),
            Err(AggregateError::NoUpdates)
        ));
        assert!(matches!(
            run(&mut FedAvg::default(), &g, &[(vec![1.0], 0)]),
            Err(AggregateError::NoWeight)
        ));
        assert!(matches!(
            run(&mut Median::default(), &g, &[]),
            Err(AggregateError::NoUpdates)
        ));
        assert!(matches!(
            run(&mut Median::default(), &g, &[(vec![1.0, 2.0], 1)]),
            Err(AggregateError::Length { participant: 0, .. })
        ));
    }

    #[test]
    fn huge_finite_updates_average_without_overflow() {
        // The f64 running sum holds values an f32 sum could not.
        let g = global(&[0.0]);
        let big = f32::MAX;
        let out = run(
            &mut FedAvg::default(),
            &g,
            &[(vec![big], 1), (vec![big], 5)],
        )
        .unwrap();
        assert_eq!(out, vec![big]);
    }

    #[test]
    fn fedadam_steps_along_the_pseudo_gradient_and_keeps_state() {
        let g = global(&[1.0, -1.0]);
        let mut s = FedAdam {
            eta: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
            ..FedAdam::default()
        };
        let out = run(&mut s, &g, &[(vec![2.0, -1.0], 1)]).unwrap();
        // Δ = (1, 0); m = (0.1, 0); v = (0.01, 0); step = 0.1·0.1/(0.1 + 0.001).
        let expected = 1.0 + 0.1 * 0.1 / (0.1 + 0.001);
        assert!((f64::from(out[0]) - expected).abs() < 1e-6, "{out:?}");
        assert_eq!(out[1], -1.0);
        assert_eq!(s.state.rounds, 1);
        assert!((s.state.m[0] - 0.1).abs() < 1e-12 && (s.state.v[0] - 0.01).abs() < 1e-12);

        // The state survives serialisation and the next round continues from it.
        let json = serde_json::to_string(&s.state).unwrap();
        let mut resumed = FedAdam {
            state: serde_json::from_str(&json).unwrap(),
            ..s.clone()
        };
        let g2 = global(&out);
        let a = run(&mut s, &g2, &[(vec![2.0, -1.0], 1)]).unwrap();
        let b = run(&mut resumed, &g2, &[(vec![2.0, -1.0], 1)]).unwrap();
        assert_eq!(a, b);
        assert_eq!(resumed.state.rounds, 2);

        // A state for another model size is refused.
        let g3 = global(&[0.0, 0.0, 0.0]);
        assert!(matches!(
            run(&mut s, &g3, &[(vec![0.0; 3], 1)]),
            Err(AggregateError::Shape(ShapeError::Mismatch))
        ));
    }

    #[test]
    fn trimmed_mean_drops_floor_beta_n_from_each_end() {
        let g = global(&[0.0]);
        let ups: Vec<(Vec<f32>, u64)> = [1.0, 2.0, 3.0, 4.0, 100.0]
            .iter()
            .map(|&v| (vec![v], 1))
            .collect();
        // β = 0.2, n = 5: one dropped at each end, mean of 2, 3, 4.
        let out = run(&mut TrimmedMean::default(), &g, &ups).unwrap();
        assert_eq!(out, vec![3.0]);
        // β = 0.1, n = 5: ⌊0.5⌋ = 0 dropped, the plain mean.
        let out = run(
            &mut TrimmedMean {
                beta: 0.1,
                ..TrimmedMean::default()
            },
            &g,
            &ups,
        )
        .unwrap();
        assert_eq!(out, vec![22.0]);
        assert!(matches!(
            run(
                &mut TrimmedMean {
                    beta: 0.6,
                    ..TrimmedMean::default()
                },
                &g,
                &ups
            ),
            Err(AggregateError::Config(_))
        ));
        let two: Vec<(Vec<f32>, u64)> = vec![(vec![1.0], 1), (vec![2.0], 1)];
        assert!(run(
            &mut TrimmedMean {
                beta: 0.49,
                chunk: 1,
                ..TrimmedMean::default()
            },
            &g,
            &two
        )
        .is_ok());
        let four: Vec<(Vec<f32>, u64)> = vec![(vec![1.0], 1); 4];
        assert!(run(
            &mut TrimmedMean {
                beta: 0.25,
                ..TrimmedMean::default()
            },
            &g,
            &four
        )
        .is_ok());
    }

    #[test]
    fn median_odd_and_even() {
        let g = global(&[0.0, 0.0]);
        let odd = [
            (vec![1.0, 5.0], 1),
            (vec![3.0, -2.0], 1),
            (vec![2.0, 0.0], 1),
        ];
        assert_eq!(
            run(&mut Median::default(), &g, &odd).unwrap(),
            vec![2.0, 0.0]
        );
        let even = [
            (vec![1.0, 5.0], 1),
            (vec![3.0, -2.0], 1),
            (vec![2.0, 0.0], 1),
            (vec![10.0, 1.0], 1),
        ];
        assert_eq!(
            run(&mut Median::default(), &g, &even).unwrap(),
            vec![2.5, 0.5]
        );
    }

    /// Nine honest answers near 1.0 and one poisoned answer: FedAvg is dragged away, the
    /// robust strategies stay within the honest range.
    #[test]
    fn robust_strategies_resist_a_poisoned_update() {
        let len = 10;
        let g = global(&vec![0.0; len]);
        let mut ups: Vec<(Vec<f32>, u64)> = (0..9)
            .map(|i| {
                (
                    (0..len)
                        .map(|j| 1.0 + 0.01 * ((i * 7 + j) % 5) as f32)
                        .collect(),
                    10,
                )
            })
            .collect();
        ups.push((vec![1e6; len], 10));
        let avg = run(&mut FedAvg::default(), &g, &ups).unwrap();
        assert!(avg.iter().all(|&v| v > 1e4));
        for out in [
            run(
                &mut TrimmedMean {
                    beta: 0.1,
                    chunk: 3,
                    ..TrimmedMean::default()
                },
                &g,
                &ups,
            )
            .unwrap(),
            run(
                &mut Median {
                    chunk: 4,
                    ..Median::default()
                },
                &g,
                &ups,
            )
            .unwrap(),
        ] {
            assert!(out.iter().all(|&v| (1.0..=1.04).contains(&v)), "{out:?}");
        }
    }

    #[test]
    fn chunk_size_does_not_change_the_result() {
        let mut r = rng();
        let len = 37;
        let ups: Vec<(Vec<f32>, u64)> = (0..6)
            .map(|_| ((0..len).map(|_| random::unit(&mut r) as f32).collect(), 1))
            .collect();
        let g = global(&vec![0.0; len]);
        let whole = run(
            &mut Median {
                chunk: 1000,
                ..Median::default()
            },
            &g,
            &ups,
        )
        .unwrap();
        for chunk in [1, 5, 36, 37] {
            assert_eq!(
                run(
                    &mut Median {
                        chunk,
                        ..Median::default()
                    },
                    &g,
                    &ups
                )
                .unwrap(),
                whole
            );
        }
        assert!(matches!(
            run(
                &mut Median {
                    chunk: 0,
                    ..Median::default()
                },
                &g,
                &ups
            ),
            Err(AggregateError::Config(_))
        ));
    }

    #[test]
    fn robust_strategies_refuse_non_finite_values_with_their_position() {
        let g = global(&[0.0; 5]);
        let ups = [
            (vec![0.0; 5], 1),
            (vec![0.0, 0.0, 0.0, f32::NAN, 0.0], 1),
            (vec![0.0; 5], 1),
        ];
        assert!(matches!(
            run(
                &mut Median {
                    chunk: 2,
                    ..Median::default()
                },
                &g,
                &ups
            ),
            Err(AggregateError::NonFinite {
                participant: 1,
                index: 3
            })
        ));
    }

    /// The robust strategies read only through the source, chunk by chunk: a source that
    /// checks every request proves no read is larger than the chunk.
    #[test]
    fn robust_reads_stay_within_the_chunk() {
        struct Strict(MemoryUpdates, usize);
        impl UpdateSource for Strict {
            fn participants(&self) -> usize {
                self.0.participants()
            }
            fn len(&self, i: usize) -> usize {
                self.0.len(i)
            }
            fn num_samples(&self, i: usize) -> u64 {
                self.0.num_samples(i)
            }
            fn read(
                &mut self,
                i: usize,
                range: Range<usize>,
                out: &mut [f32],
            ) -> Result<(), Box<dyn Error + Send + Sync>> {
                if range.len() > self.1 {
                    return Err("chunk too large".into());
                }
                self.0.read(i, range, out)
            }
        }
        let ups: MemoryUpdates = (0..4).map(|i| (vec![i as f32; 10], 1)).collect();
        let mut src = Strict(ups, 3);
        let g = global(&[0.0; 10]);
        let out = Median {
            chunk: 3,
            ..Median::default()
        }
        .aggregate_train(1, &g, &mut src, &mut rng())
        .unwrap();
        assert_eq!(out.values(), &[1.5; 10]);
        let mut src = Strict(src.0, 2);
        assert!(matches!(
            Median {
                chunk: 3,
                ..Median::default()
            }
            .aggregate_train(1, &g, &mut src, &mut rng()),
            Err(AggregateError::Source { participant: 0, .. })
        ));
    }

    #[test]
    fn configure_and_evaluate() {
        let s = FedAvg {
            sampling: Sampling {
                fraction: 0.3,
                min_participants: 2,
            },
            ..FedAvg::default()
        };
        let plan = s.configure_train(4, 10, &mut rng());
        assert_eq!(plan.round, 4);
        assert_eq!(plan.participants.len(), 3);
        assert_eq!(s.configure_train(4, 3, &mut rng()).participants.len(), 2);
        assert_eq!(s.configure_evaluate(4, 3, &mut rng()), vec![0, 1, 2]);
        let summary = s
            .aggregate_evaluate(&[
                EvaluateResult {
                    num_samples: 1,
                    loss: 1.0,
                    accuracy: 0.5,
                },
                EvaluateResult {
                    num_samples: 3,
                    loss: 3.0,
                    accuracy: 0.9,
                },
                EvaluateResult {
                    num_samples: 0,
                    loss: 9.0,
                    accuracy: 0.0,
                },
                EvaluateResult {
                    num_samples: 5,
                    loss: f64::NAN,
                    accuracy: 0.0,
                },
            ])
            .unwrap();
        assert_eq!(summary.participants, 2);
        assert!((summary.loss - 2.5).abs() < 1e-12 && (summary.accuracy - 0.8).abs() < 1e-12);
        assert!(s.aggregate_evaluate(&[]).is_none());
    }
}
