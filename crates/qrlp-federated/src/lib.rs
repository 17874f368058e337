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
//!
//! The crate does no I/O, has no async code, reads no clock and owns no global random
//! generator: randomness comes from the caller as a [`rand_core::RngCore`], data and
//! updates as slices or through a trait the caller implements. Rounds, device selection
//! over the network, storage and transport belong to the adapters that depend on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accountant;
pub mod model;

pub use accountant::{Accountant, AccountantError, PrivacySpent};
pub use model::{ModelShape, Parameters, ShapeError, TensorSpec};
