//! Training: the model's forward and backward pass written out for this
//! architecture ([`model`]), its parameters ([`params`]), Adam ([`adam`]) and
//! the learning-rate schedules ([`schedule`]); the compute seam ([`backend`])
//! with the CPU backend ([`cpu`]), the CUDA backend ([`cuda`]) and the one
//! place that names both ([`device`]); the epoch loop ([`trainer`]) and the
//! session that drives it with checkpoints, metrics and Ctrl-C ([`session`]);
//! prediction from saved weights ([`predictor`]); checkpoints under the
//! authors' PyTorch names ([`checkpoint`]) and run folders ([`run`]); the
//! trainer's throughput benchmark ([`bench`]).
//!
//! Uses [`crate::data`] and the foundation ([`crate::config`],
//! [`crate::metrics`], [`crate::io`]); nothing above (evaluation, deployment).

pub mod adam;
pub mod backend;
pub mod batches;
pub mod bench;
pub mod buffers;
pub mod checkpoint;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod gemm;
pub mod model;
pub mod params;
pub mod predictor;
pub mod run;
pub mod schedule;
pub mod session;
pub mod state;
pub mod train_config;
pub mod trainer;

pub use backend::{Backend, BackendError};
pub use device::{AnyBackend, Device};
pub use predictor::Predictor;
pub use session::Session;
pub use train_config::TrainConfig;
pub use trainer::Trainer;
