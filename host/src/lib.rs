//! `lflow-host`: LangevinFlow on a workstation.
//!
//! The model of `../shared/MODEL.md` in both modes (paper: `PreviousBin`, full
//! attention; streaming: `CurrentBin`, causal window), trained, evaluated and
//! carried to a device. The crate is four layers over a foundation; a module
//! uses only its own layer and the ones below it (`ARCHITECTURE.md` draws them):
//!
//! | layer | holds |
//! |---|---|
//! | [`deploy`] | LFW1 blobs for `lflow-core`, decoding without resets, the firmware link, the closed loop, MCU benchmarks |
//! | [`eval`] | the benchmark's metrics of predicted rates, the quality benchmark, plots |
//! | [`train`] | the model's forward and backward, parameters, Adam, backends (CPU, CUDA), the training session, prediction, checkpoints, run folders |
//! | [`data`] | data sets (files, Lorenz, Neural Latents Benchmark) |
//! | foundation | [`config`] (the model's sizes and mode), [`metrics`] (R², bits per spike, ridge), [`io`] (atomic writes) |
//!
//! Vocabulary is shared with `lflow-core` (`Tensor`, `InputSchedule`,
//! `Potential`, `Seeded`) and MODEL.md: `lr` is a learning rate, `log_rates`
//! are log firing rates in spikes per bin, a device is where a model trains
//! (cpu, cuda) and the microcontroller is reached through [`deploy::link`].

pub mod config;
pub mod data;
pub mod deploy;
pub mod eval;
pub mod io;
pub mod metrics;
pub mod train;

pub use config::{Mode, ModeName, ModelConfig};
pub use train::params::Params;
