//! `lflow-host`: LangevinFlow on a workstation.
//!
//! The model of `../shared/MODEL.md` in both modes (paper: `PreviousBin`, full
//! attention; streaming: `CurrentBin`, causal window), with forward and
//! backward written out for this architecture, Adam, and checkpoints under the
//! authors' PyTorch parameter names. Vocabulary is shared with `lflow-core`
//! (`Tensor`, `InputSchedule`, `Potential`, `Seeded`).

pub mod adam;
pub mod config;
pub mod gemm;
pub mod model;
pub mod params;

pub use config::{Mode, ModelConfig};
pub use params::Params;
