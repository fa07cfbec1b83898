//! `lflow-host`: LangevinFlow on a workstation.
//!
//! The model of `../shared/MODEL.md` in both modes (paper: `PreviousBin`, full
//! attention; streaming: `CurrentBin`, causal window), with forward and
//! backward written out for this architecture ([`model`]), Adam ([`adam`]),
//! the training loop ([`train`]) over a [`backend::Backend`], and checkpoints
//! under the authors' PyTorch parameter names ([`checkpoint`]). Vocabulary is
//! shared with `lflow-core` (`Tensor`, `InputSchedule`, `Potential`, `Seeded`).

pub mod adam;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod closed_loop;
pub mod config;
pub mod cuda;
pub mod data;
pub mod device;
pub mod device_bench;
pub mod evaluate;
pub mod export;
pub mod gemm;
pub mod lorenz;
pub mod metrics;
pub mod model;
pub mod nlb;
pub mod params;
pub mod quality;
pub mod run;
pub mod schedule;
pub mod stream;
pub mod train;

pub use config::{Mode, ModelConfig};
pub use params::Params;
