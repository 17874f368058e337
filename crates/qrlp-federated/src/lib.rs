//! # qrlp-federated: the pure core of federated learning
//!
//! Devices train a shared model on data that never leaves them; each round the server
//! sends the current model, a sample of devices train it locally and send back their new
//! parameters, and the server combines them into the next model. This crate is everything
//! in that loop that is arithmetic:
//!
//! - [`model`]: parameters as one flat `f32` vector plus the named tensors it holds, so
//!   every strategy works for any model and a wrong-sized update is refused by type.
//! - [`accountant`]: the Rényi DP accountant of the sampled Gaussian mechanism and its
//!   conversion to (ε, δ), with the meaning of ε and δ.
//! - [`aggregate`]: a Flower-like [`Strategy`] (configure a round, aggregate its answers)
//!   with [`FedAvg`], [`FedAdam`], [`TrimmedMean`] and [`Median`]; FedAvg-like strategies
//!   stream answers into an `f64` sum, the robust ones read answers by coordinate chunks.
//! - [`dp`]: DP-FedAvg: per-update clipping, Gaussian noise with a fixed denominator,
//!   Poisson sampling of participants.
//! - [`train`]: local training for the device: federated feature standardisation from
//!   per-device sums, logistic regression and a one-hidden-layer MLP over the same flat
//!   parameters, mini-batch gradient descent, accuracy.
//!
//! The crate does no I/O, has no async code, reads no clock and owns no global random
//! generator: randomness comes from the caller as a [`rand_core::RngCore`], data and
//! updates as slices or through a trait the caller implements. Rounds, device selection
//! over the network, storage and transport belong to the adapters that depend on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accountant;
pub mod aggregate;
pub mod dp;
pub mod model;
mod random;
pub mod train;

pub use accountant::{Accountant, AccountantError, PrivacySpent};
pub use aggregate::{
    AggregateError, FedAdam, FedAvg, Median, MemoryUpdates, RoundAccumulator, Strategy,
    StreamingStrategy, TrimmedMean, UpdateSource,
};
pub use dp::DpFedAvg;
pub use model::{ModelShape, Parameters, ShapeError, TensorSpec};
