//! From trained parameters to an `LFW1` blob for `lflow-core` (`core/FORMAT.md`).

use crate::config::ModelConfig;
use crate::params::{Params, PARAMS};
use lflow_core::blob::{BlobWriter, Tensor, WriteError};
use lflow_core::StorageFormat;

/// A linear velocity decoder `[n_beh, 3H]` plus bias, applied to `y2`.
#[derive(Clone, Debug, PartialEq)]
pub struct VelocityReadout {
    /// Behaviour dimensions.
    pub n_beh: usize,
    /// Weights `[n_beh, 3H]`, row-major.
    pub weight: Vec<f32>,
    /// Bias `[n_beh]`.
    pub bias: Vec<f32>,
}

/// The blob of `params` in `storage`, with `velocity` (none: `n_beh = 0`).
/// A paper-mode model has no window; it is written with window = 0 and cannot
/// be decoded on a device (the blob format requires a window, so this fails).
pub fn blob(
    cfg: &ModelConfig,
    params: &Params,
    storage: StorageFormat,
    velocity: Option<&VelocityReadout>,
) -> Result<Vec<u8>, WriteError> {
    let n_beh = velocity.map_or(0, |v| v.n_beh);
    let mut w = BlobWriter::new(cfg.dims(n_beh), storage, cfg.schedule(), cfg.gamma, cfg.eps)?;
    for t in PARAMS {
        w.tensor(t, params.get(t))?;
    }
    match velocity {
        Some(v) => {
            w.tensor(Tensor::VelocityWeight, &v.weight)?;
            w.tensor(Tensor::VelocityBias, &v.bias)?;
        }
        None => {
            w.tensor(Tensor::VelocityWeight, &[])?;
            w.tensor(Tensor::VelocityBias, &[])?;
        }
    }
    w.finish()
}
