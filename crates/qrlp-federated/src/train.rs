//! Local training for the device agent, pure: data in, parameters out.
//!
//! - [`FeatureStats`] and [`Standardizer`]: each device computes per-feature count, `Σx`
//!   and `Σx²` on its own data; the server adds them ([`FeatureStats::merge`]) and derives
//!   a global mean and standard deviation, so feature scaling is shared without any raw
//!   example leaving a device.
//! - [`LogisticRegression`] (binary) and [`Mlp`] (one hidden layer, ReLU or tanh, sigmoid
//!   output): both keep their parameters as the crate's flat `f32` vector with a
//!   [`ModelShape`], so what [`Model::parameters`] returns is what the strategies
//!   aggregate, and [`Model::set_parameters`] loads the next global model.
//! - [`fit`]: mini-batch gradient descent on the mean binary cross-entropy plus an L2
//!   penalty `(λ/2)·‖w‖²` on the weight tensors (not the biases), batches shuffled with the
//!   caller's generator; [`accuracy`] and [`log_loss`] evaluate.
//!
//! Gradients are accumulated in `f64`; parameters stay `f32`.

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::aggregate::TrainConfig;
use crate::model::{ModelShape, Parameters, ShapeError, TensorSpec};
use crate::random;

/// Why training or evaluation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// The data set is malformed (empty, ragged, a label other than 0 or 1, a non-finite value).
    #[error("invalid data set: {0}")]
    Data(&'static str),
    /// The data's feature count differs from the model's or the statistics'.
    #[error("the data has {actual} features, expected {expected}")]
    Features {
        /// Features the model or statistics expect.
        expected: usize,
        /// Features in the data.
        actual: usize,
    },
    /// A training setting is out of range.
    #[error("invalid training setting: {0}")]
    Config(&'static str),
    /// Training produced a non-finite parameter (learning rate too high).
    #[error("training diverged (a parameter is no longer finite)")]
    Diverged,
    /// Parameters of another model.
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// Examples for binary classification: row-major features and 0/1 labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    features: Vec<f32>,
    labels: Vec<f32>,
    dim: usize,
}

impl Dataset {
    /// `features` holds `labels.len()` rows of `dim` finite values; labels are 0 or 1.
    pub fn new(features: Vec<f32>, labels: Vec<f32>, dim: usize) -> Result<Self, TrainError> {
        if dim == 0 {
            return Err(TrainError::Data("no features"));
        }
        if features.len() != labels.len() * dim {
            return Err(TrainError::Data("features are not labels × dim values"));
        }
        if features.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::Data("a feature is not finite"));
        }
        if labels.iter().any(|&y| y != 0.0 && y != 1.0) {
            return Err(TrainError::Data("a label is neither 0 nor 1"));
        }
        Ok(Self {
            features,
            labels,
            dim,
        })
    }

    /// Examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True without examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per example.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Features of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Label of example `i` (0 or 1).
    pub fn label(&self, i: usize) -> f32 {
        self.labels[i]
    }
}

/// Per-feature count, `Σx` and `Σx²`: what a device shares so the federation can
/// standardise features without seeing them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Examples counted.
    pub count: u64,
    /// Sum of each feature.
    pub sum: Vec<f64>,
    /// Sum of each feature's square.
    pub sum_sq: Vec<f64>,
}

impl FeatureStats {
    /// Nothing counted yet, for `dim` features.
    pub fn new(dim: usize) -> Self {
        Self {
            count: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
        }
    }

    /// The statistics of one data set.
    pub fn of(data: &Dataset) -> Self {
        let mut stats = Self::new(data.dim());
        for i in 0..data.len() {
            for ((s, q), &x) in stats.sum.iter_mut().zip(&mut stats.sum_sq).zip(data.row(i)) {
                let x = f64::from(x);
                *s += x;
                *q += x * x;
            }
        }
        stats.count = data.len() as u64;
        stats
    }

    /// Adds another device's statistics.
    pub fn merge(&mut self, other: &FeatureStats) -> Result<(), TrainError> {
        if other.sum.len() != self.sum.len() || other.sum_sq.len() != self.sum.len() {
            return Err(TrainError::Features {
                expected: self.sum.len(),
                actual: other.sum.len(),
            });
        }
        self.count += other.count;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sum_sq.iter_mut().zip(&other.sum_sq) {
            *a += b;
        }
        Ok(())
    }

    /// Mean and (population) standard deviation per feature. A feature with no spread
    /// keeps a standard deviation of 1, so it is only centred.
    ///
    /// `Σx²/n − mean²` loses precision when the mean is large against the spread (about
    /// `mean²/var × 1e-16` relative); for raw sensor values far from zero, shift them
    /// by a rough known offset on the device first.
    pub fn standardizer(&self) -> Result<Standardizer, TrainError> {
        if self.count == 0 {
            return Err(TrainError::Data("no examples counted"));
        }
        let n = self.count as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let var = (q / n - m * m).max(0.0);
                let sd = var.sqrt();
                if sd > 1e-12 * m.abs().max(1.0) {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Standardizer { mean, std })
    }
}

/// Maps each feature `x` to `(x − mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean per feature.
    pub mean: Vec<f64>,
    /// Standard deviation per feature (never 0).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Standardises one example in place.
    pub fn apply_row(&self, row: &mut [f32]) {
        for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
            *x = ((f64::from(*x) - m) / s) as f32;
        }
    }

    /// Standardises every example of `data`.
    pub fn apply(&self, data: &mut Dataset) -> Result<(), TrainError> {
        if data.dim != self.mean.len() {
            return Err(TrainError::Features {
                expected: self.mean.len(),
                actual: data.dim,
            });
        }
        for row in data.features.chunks_mut(data.dim) {
            self.apply_row(row);
        }
        Ok(())
    }
}

/// A binary classifier whose parameters are one flat vector.
pub trait Model {
    /// Features per example.
    fn input_dim(&self) -> usize;
    /// The parameter layout.
    fn shape(&self) -> &ModelShape;
    /// The parameters, flat.
    fn values(&self) -> &[f32];
    /// The parameters, flat and writable (for training and clipping).
    fn values_mut(&mut self) -> &mut [f32];
    /// Probability of class 1 for one example.
    fn predict(&self, x: &[f32]) -> f64;
    /// Mean binary cross-entropy over `batch` (indices into `data`), and its gradient in the
    /// flat layout written into `grad` (overwritten, same length as the parameters).
    fn loss_and_gradient(&self, data: &Dataset, batch: &[usize], grad: &mut [f64]) -> f64;

    /// The parameters to send for aggregation; a non-finite value (written through
    /// [`Model::values_mut`]) is refused here rather than sent.
    fn parameters(&self) -> Result<Parameters, ShapeError> {
        Parameters::new(self.shape().clone(), self.values().to_vec())
    }

    /// Loads parameters (the new global model); they must have this model's shape.
    fn set_parameters(&mut self, params: &Parameters) -> Result<(), ShapeError> {
        if params.shape() != self.shape() {
            return Err(ShapeError::Mismatch);
        }
        self.values_mut().copy_from_slice(params.values());
        Ok(())
    }
}

/// Settings of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Step size (> 0).
    pub learning_rate: f32,
    /// Passes over the data.
    pub epochs: u32,
    /// Examples per step; 0 (or more than the data holds) means full-batch descent.
    pub batch_size: u32,
    /// L2 penalty λ on the weight tensors (≥ 0).
    pub l2: f32,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.1,
            epochs: 10,
            batch_size: 32,
            l2: 0.0,
        }
    }
}

impl From<&TrainConfig> for FitConfig {
    fn from(c: &TrainConfig) -> Self {
        Self {
            learning_rate: c.learning_rate,
            epochs: c.local_epochs,
            batch_size: c.batch_size,
            l2: 0.0,
        }
    }
}

/// What [`fit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Gradient steps taken.
    pub steps: u64,
    /// Mean loss over the data after training (without the penalty).
    pub loss: f64,
}

fn check_dim<M: Model + ?Sized>(model: &M, data: &Dataset) -> Result<(), TrainError> {
    if data.dim() != model.input_dim() {
        return Err(TrainError::Features {
            expected: model.input_dim(),
            actual: data.dim(),
        });
    }
    Ok(())
}

/// Trains `model` on `data` by mini-batch gradient descent.
pub fn fit<M: Model + ?Sized, R: RngCore + ?Sized>(
    model: &mut M,
    data: &Dataset,
    config: &FitConfig,
    rng: &mut R,
) -> Result<FitReport, TrainError> {
    check_dim(model, data)?;
    if data.is_empty() {
        return Err(TrainError::Data("no examples"));
    }
    if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return Err(TrainError::Config("learning rate must be positive"));
    }
    if !(config.l2.is_finite() && config.l2 >= 0.0) {
        return Err(TrainError::Config("l2 must be non-negative"));
    }
    let n = data.len();
    let batch = match config.batch_size as usize {
        0 => n,
        b => b.min(n),
    };
    // Which values the penalty applies to: tensors named "weight" or "*.weight".
    let mut penalised = vec![false; model.values().len()];
    let mut start = 0;
    for t in model.shape().tensors() {
        let size: usize = t.dims.iter().product();
        if t.name == "weight" || t.name.ends_with(".weight") {
            penalised[start..start + size].fill(true);
        }
        start += size;
    }
    let lr = f64::from(config.learning_rate);
    let l2 = f64::from(config.l2);
    let mut order: Vec<usize> = (0..n).collect();
    let mut grad = vec![0.0; model.values().len()];
    let mut steps = 0u64;
    for _ in 0..config.epochs {
        for i in (1..n).rev() {
            let j = random::below(rng, (i + 1) as u64) as usize;
            order.swap(i, j);
        }
        for indices in order.chunks(batch) {
            model.loss_and_gradient(data, indices, &mut grad);
            for ((w, g), &p) in model.values_mut().iter_mut().zip(&grad).zip(&penalised) {
                let penalty = if p { l2 * f64::from(*w) } else { 0.0 };
                *w = (f64::from(*w) - lr * (g + penalty)) as f32;
            }
            steps += 1;
        }
        if model.values().iter().any(|v| !v.is_finite()) {
            return Err(TrainError::Diverged);
        }
    }
    Ok(FitReport {
        steps,
        loss: log_loss(model, data)?,
    })
}

/// Share of examples whose predicted class (probability ≥ 0.5) equals the label.
pub fn accuracy<M: Model + ?Sized>(model: &M, data: &Dataset) -> Result<f64, TrainError> {
    check_dim(model, data)?;
    if data.is_empty() {
        return Err(TrainError::Data("no examples"));
    }
    let correct = (0..data.len())
        .filter(|&i| (model.predict(data.row(i)) >= 0.5) == (data.label(i) == 1.0))
        .count();
    Ok(correct as f64 / data.len() as f64)
}

/// Mean binary cross-entropy of the model on `data`.
pub fn log_loss<M: Model + ?Sized>(model: &M, data: &Dataset) -> Result<f64, TrainError> {
    check_dim(model, data)?;
    if data.is_empty() {
        return Err(TrainError::Data("no examples"));
    }
    let all: Vec<usize> = (0..data.len()).collect();
    let mut grad = vec![0.0; model.values().len()];
    Ok(model.loss_and_gradient(data, &all, &mut grad))
}

/// `σ(z) = 1/(1+e^−z)` without overflow for large `|z|`.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Binary cross-entropy of logit `z` against label `y`, computed from the logit so that
/// confident predictions do not produce `log(0)`: `softplus(z) − y·z`.
fn bce_from_logit(z: f64, y: f64) -> f64 {
    let softplus = if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    };
    softplus - y * z
}

fn dot(w: &[f32], x: &[f32]) -> f64 {
    w.iter()
        .zip(x)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Logistic regression: `P(y = 1 | x) = σ(w·x + b)`. Tensors `weight` `[dim]` and
/// `bias` `[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    shape: ModelShape,
    values: Vec<f32>,
    dim: usize,
}

impl LogisticRegression {
    /// A model for `dim` features, all parameters zero.
    pub fn new(dim: usize) -> Result<Self, ShapeError> {
        let shape = ModelShape::new(vec![
            TensorSpec::new("weight", [dim]),
            TensorSpec::new("bias", [1]),
        ])?;
        Ok(Self {
            values: vec![0.0; shape.len()],
            shape,
            dim,
        })
    }

    fn logit(&self, x: &[f32]) -> f64 {
        dot(&self.values[..self.dim], x) + f64::from(self.values[self.dim])
    }
}

impl Model for LogisticRegression {
    fn input_dim(&self) -> usize {
        self.dim
    }
    fn shape(&self) -> &ModelShape {
        &self.shape
    }
    fn values(&self) -> &[f32] {
        &self.values
    }
    fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }
    fn predict(&self, x: &[f32]) -> f64 {
        sigmoid(self.logit(x))
    }
    fn loss_and_gradient(&self, data: &Dataset, batch: &[usize], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        let mut loss = 0.0;
        for &i in batch {
            let x = data.row(i);
            let y = f64::from(data.label(i));
            let z = self.logit(x);
            loss += bce_from_logit(z, y);
            let dz = sigmoid(z) - y;
            for (g, &xi) in grad[..self.dim].iter_mut().zip(x) {
                *g += dz * f64::from(xi);
            }
            grad[self.dim] += dz;
        }
        let n = batch.len().max(1) as f64;
        grad.iter_mut().for_each(|g| *g /= n);
        loss / n
    }
}

/// Hidden-layer activation of [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    fn apply(self, x: f64) -> f64 {
        match self {
            Self::Relu => x.max(0.0),
            Self::Tanh => x.tanh(),
        }
    }

    /// Derivative, from the pre-activation `x` and the activation `a`.
    fn derivative(self, x: f64, a: f64) -> f64 {
        match self {
            Self::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Tanh => 1.0 - a * a,
        }
    }
}

/// A perceptron with one hidden layer: `P(y = 1 | x) = σ(w₂·act(W₁x + b₁) + b₂)`.
/// Tensors `hidden.weight` `[hidden, dim]`, `hidden.bias` `[hidden]`, `output.weight`
/// `[1, hidden]`, `output.bias` `[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    shape: ModelShape,
    values: Vec<f32>,
    dim: usize,
    hidden: usize,
    activation: Activation,
}

impl Mlp {
    /// A network for `dim` features with `hidden` units; weights drawn uniformly in
    /// `±√(6/(fan_in + fan_out))` (Glorot) from `rng`, biases zero.
    pub fn new<R: RngCore + ?Sized>(
        dim: usize,
        hidden: usize,
        activation: Activation,
        rng: &mut R,
    ) -> Result<Self, ShapeError> {
        let shape = ModelShape::new(vec![
            TensorSpec::new("hidden.weight", [hidden, dim]),
            TensorSpec::new("hidden.bias", [hidden]),
            TensorSpec::new("output.weight", [1, hidden]),
            TensorSpec::new("output.bias", [1]),
        ])?;
        let mut values = vec![0.0f32; shape.len()];
        let mut glorot = |out: &mut [f32], fan_in: usize, fan_out: usize| {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            for v in out {
                *v = ((2.0 * random::unit(rng) - 1.0) * limit) as f32;
            }
        };
        let (w1, rest) = values.split_at_mut(hidden * dim);
        glorot(w1, dim, hidden);
        glorot(&mut rest[hidden..2 * hidden], hidden, 1);
        Ok(Self {
            shape,
            values,
            dim,
            hidden,
            activation,
        })
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Pre-activations and activations of the hidden layer, and the output logit.
    fn forward(&self, x: &[f32], pre: &mut [f64], act: &mut [f64]) -> f64 {
        let (d, h) = (self.dim, self.hidden);
        let (w1, rest) = self.values.split_at(h * d);
        let (b1, rest) = rest.split_at(h);
        let (w2, b2) = rest.split_at(h);
        for k in 0..h {
            pre[k] = dot(&w1[k * d..(k + 1) * d], x) + f64::from(b1[k]);
            act[k] = self.activation.apply(pre[k]);
        }
        act.iter()
            .zip(w2)
            .map(|(a, &w)| a * f64::from(w))
            .sum::<f64>()
            + f64::from(b2[0])
    }
}

impl Model for Mlp {
    fn input_dim(&self) -> usize {
        self.dim
    }
    fn shape(&self) -> &ModelShape {
        &self.shape
    }
    fn values(&self) -> &[f32] {
        &self.values
    }
    fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }
    fn predict(&self, x: &[f32]) -> f64 {
        let mut pre = vec![0.0; self.hidden];
        let mut act = vec![0.0; self.hidden];
        sigmoid(self.forward(x, &mut pre, &mut act))
    }
    fn loss_and_gradient(&self, data: &Dataset, batch: &[usize], grad: &mut [f64]) -> f64 {
        let (d, h) = (self.dim, self.hidden);
        grad.fill(0.0);
        let mut pre = vec![0.0; h];
        let mut act = vec![0.0; h];
        let w2_at = h * d + h;
        let mut loss = 0.0;
        for &i in batch {
            let x = data.row(i);
            let y = f64::from(data.label(i));
            let z = self.forward(x, &mut pre, &mut act);
            loss += bce_from_logit(z, y);
            let dz = sigmoid(z) - y;
            for k in 0..h {
                let w2 = f64::from(self.values[w2_at + k]);
                grad[w2_at + k] += dz * act[k];
                let dpre = dz * w2 * self.activation.derivative(pre[k], act[k]);
                if dpre != 0.0 {
                    for (g, &xj) in grad[k * d..(k + 1) * d].iter_mut().zip(x) {
                        *g += dpre * f64::from(xj);
                    }
                    grad[h * d + k] += dpre;
                }
            }
            grad[w2_at + h] += dz;
        }
        let n = batch.len().max(1) as f64;
        grad.iter_mut().for_each(|g| *g /= n);
        loss / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Points in `dim` dimensions, labelled by the side of a fixed hyperplane, with a
    /// margin; features deliberately off-centre and badly scaled.
    fn separable(rng: &mut ChaCha20Rng, n: usize, dim: usize) -> Dataset {
        let normal: Vec<f64> = (0..dim)
            .map(|j| if j % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        while ys.len() < n {
            let x: Vec<f64> = (0..dim).map(|_| 4.0 * random::unit(rng) - 2.0).collect();
            let side: f64 = x.iter().zip(&normal).map(|(a, b)| a * b).sum::<f64>() - 0.3;
            if side.abs() < 0.1 {
                continue;
            }
            xs.extend(
                x.iter()
                    .enumerate()
                    .map(|(j, v)| (v * (1.0 + j as f64 * 10.0) + 50.0) as f32),
            );
            ys.push(if side > 0.0 { 1.0 } else { 0.0 });
        }
        Dataset::new(xs, ys, dim).unwrap()
    }

    fn xor(rng: &mut ChaCha20Rng, n: usize) -> Dataset {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a = 2.0 * random::unit(rng) - 1.0;
            let b = 2.0 * random::unit(rng) - 1.0;
            xs.extend([a as f32, b as f32]);
            ys.push(if (a > 0.0) != (b > 0.0) { 1.0 } else { 0.0 });
        }
        Dataset::new(xs, ys, 2).unwrap()
    }

    /// Standardisation from two devices' statistics, then logistic regression.
    #[test]
    fn logistic_regression_learns_a_separable_set() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut device_a = separable(&mut rng, 300, 4);
        let mut device_b = separable(&mut rng, 200, 4);
        let mut test = separable(&mut rng, 500, 4);
        let mut stats = FeatureStats::of(&device_a);
        stats.merge(&FeatureStats::of(&device_b)).unwrap();
        let scaler = stats.standardizer().unwrap();
        for d in [&mut device_a, &mut device_b, &mut test] {
            scaler.apply(d).unwrap();
        }
        let mut model = LogisticRegression::new(4).unwrap();
        let config = FitConfig {
            learning_rate: 0.5,
            epochs: 30,
            batch_size: 16,
            l2: 1e-4,
        };
        let report = fit(&mut model, &device_a, &config, &mut rng).unwrap();
        assert_eq!(report.steps, 30 * 19);
        let train = accuracy(&model, &device_a).unwrap();
        let held_out = accuracy(&model, &test).unwrap();
        assert!(
            train > 0.95 && held_out > 0.95,
            "train {train}, test {held_out}"
        );
        assert!(report.loss < 0.2, "loss {}", report.loss);
    }

    #[test]
    fn full_batch_descent_also_converges() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut data = separable(&mut rng, 400, 2);
        FeatureStats::of(&data)
            .standardizer()
            .unwrap()
            .apply(&mut data)
            .unwrap();
        let mut model = LogisticRegression::new(2).unwrap();
        let config = FitConfig {
            learning_rate: 1.0,
            epochs: 300,
            batch_size: 0,
            l2: 0.0,
        };
        let report = fit(&mut model, &data, &config, &mut rng).unwrap();
        assert_eq!(report.steps, 300);
        assert!(accuracy(&model, &data).unwrap() > 0.95);
    }

    /// XOR is not linearly separable: the MLP learns it, logistic regression cannot.
    #[test]
    fn mlp_learns_xor_where_a_linear_model_cannot() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let data = xor(&mut rng, 600);
        for activation in [Activation::Tanh, Activation::Relu] {
            let mut mlp = Mlp::new(2, 16, activation, &mut rng).unwrap();
            let config = FitConfig {
                learning_rate: 0.5,
                epochs: 200,
                batch_size: 32,
                l2: 0.0,
            };
            fit(&mut mlp, &data, &config, &mut rng).unwrap();
            let acc = accuracy(&mlp, &data).unwrap();
            assert!(acc > 0.9, "{activation:?}: {acc}");
        }
        let mut linear = LogisticRegression::new(2).unwrap();
        fit(&mut linear, &data, &FitConfig::default(), &mut rng).unwrap();
        assert!(accuracy(&linear, &data).unwrap() < 0.75);
    }

    fn check_gradient<M: Model + Clone>(model: &M, data: &Dataset) {
        let batch: Vec<usize> = (0..data.len()).collect();
        let mut grad = vec![0.0; model.values().len()];
        model.loss_and_gradient(data, &batch, &mut grad);
        let mut scratch = grad.clone();
        for (k, &g) in grad.iter().enumerate() {
            let mut loss_at = |shift: f32| {
                let mut shifted = model.clone();
                shifted.values_mut()[k] += shift;
                shifted.loss_and_gradient(data, &batch, &mut scratch)
            };
            let h = 1e-2f32;
            let numeric = (loss_at(h) - loss_at(-h)) / (2.0 * f64::from(h));
            assert!(
                (numeric - g).abs() < 1e-3,
                "parameter {k}: {g} vs {numeric}"
            );
        }
    }

    /// The analytic gradients agree with central finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let data = xor(&mut rng, 20);
        check_gradient(&Mlp::new(2, 5, Activation::Tanh, &mut rng).unwrap(), &data);
        let mut lr = LogisticRegression::new(2).unwrap();
        lr.values_mut().copy_from_slice(&[0.3, -0.7, 0.1]);
        check_gradient(&lr, &data);
    }

    #[test]
    fn merged_statistics_equal_the_pooled_ones() {
        let mut rng = ChaCha20Rng::seed_from_u64(15);
        let a = separable(&mut rng, 50, 3);
        let b = separable(&mut rng, 70, 3);
        let mut pooled_rows = Vec::new();
        let mut pooled_labels = Vec::new();
        for d in [&a, &b] {
            for i in 0..d.len() {
                pooled_rows.extend_from_slice(d.row(i));
                pooled_labels.push(d.label(i));
            }
        }
        let pooled = Dataset::new(pooled_rows, pooled_labels, 3).unwrap();
        let mut merged = FeatureStats::of(&a);
        merged.merge(&FeatureStats::of(&b)).unwrap();
        let (s1, s2) = (
            merged.standardizer().unwrap(),
            FeatureStats::of(&pooled).standardizer().unwrap(),
        );
        for j in 0..3 {
            assert!((s1.mean[j] - s2.mean[j]).abs() < 1e-9);
            assert!((s1.std[j] - s2.std[j]).abs() < 1e-9);
        }
        let mut standardised = pooled.clone();
        s1.apply(&mut standardised).unwrap();
        let after = FeatureStats::of(&standardised).standardizer().unwrap();
        assert!(after.mean.iter().all(|m| m.abs() < 1e-5));
        assert!(after.std.iter().all(|s| (s - 1.0).abs() < 1e-5));
        assert!(merged.merge(&FeatureStats::new(2)).is_err());
        assert!(FeatureStats::new(2).standardizer().is_err());
    }

    #[test]
    fn constant_features_are_only_centred() {
        let data = Dataset::new(vec![5.0, 1.0, 5.0, 3.0], vec![0.0, 1.0], 2).unwrap();
        let s = FeatureStats::of(&data).standardizer().unwrap();
        assert_eq!((s.mean[0], s.std[0]), (5.0, 1.0));
        assert_eq!((s.mean[1], s.std[1]), (2.0, 1.0));
    }

    #[test]
    fn parameters_plug_into_aggregation_shapes() {
        let mut rng = ChaCha20Rng::seed_from_u64(16);
        let mlp = Mlp::new(3, 4, Activation::Relu, &mut rng).unwrap();
        let p = mlp.parameters().unwrap();
        assert_eq!(p.values().len(), 4 * 3 + 4 + 4 + 1);
        assert_eq!(p.tensor("output.bias"), Some(&[0.0f32][..]));
        let mut other = Mlp::new(3, 4, Activation::Relu, &mut rng).unwrap();
        other.set_parameters(&p).unwrap();
        assert_eq!(other.values(), mlp.values());
        let mut lr = LogisticRegression::new(3).unwrap();
        assert_eq!(lr.set_parameters(&p), Err(ShapeError::Mismatch));
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(Dataset::new(vec![1.0, 2.0, 3.0], vec![0.0], 2).is_err());
        assert!(Dataset::new(vec![1.0, 2.0], vec![0.5], 2).is_err());
        assert!(Dataset::new(vec![1.0, f32::NAN], vec![1.0], 2).is_err());
        let data = Dataset::new(vec![1.0, 2.0], vec![1.0], 2).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        let mut wrong = LogisticRegression::new(3).unwrap();
        assert!(matches!(
            fit(&mut wrong, &data, &FitConfig::default(), &mut rng),
            Err(TrainError::Features {
                expected: 3,
                actual: 2
            })
        ));
        let mut model = LogisticRegression::new(2).unwrap();
        let bad = FitConfig {
            learning_rate: 0.0,
            ..FitConfig::default()
        };
        assert!(matches!(
            fit(&mut model, &data, &bad, &mut rng),
            Err(TrainError::Config(_))
        ));
        let huge = FitConfig {
            learning_rate: 1e38,
            epochs: 50,
            ..FitConfig::default()
        };
        let big = Dataset::new(vec![3e38, -3e38], vec![0.0], 2).unwrap();
        assert_eq!(
            fit(&mut model, &big, &huge, &mut rng),
            Err(TrainError::Diverged)
        );
    }
}
