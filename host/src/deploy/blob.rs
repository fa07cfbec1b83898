//! Trained parameters to an `LFW1` blob for `lflow-core` (`core/FORMAT.md`)
//! and back, dequantised as the device reads them.

use crate::config::{Mode, ModelConfig};
use crate::deploy::velocity::VelocityReadout;
use crate::train::params::{Params, PARAMS};
use lflow_core::blob::{BlobWriter, Tensor, WriteError};
use lflow_core::StorageFormat;

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
    let anchor = u8::try_from(cfg.anchor_every).map_err(|_| WriteError::BadScalar { field: "anchor_every" })?;
    let mut w = BlobWriter::new(cfg.dims(n_beh), storage, cfg.schedule(), cfg.gamma, cfg.eps)?.anchor_every(anchor);
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

/// A blob's weights dequantised exactly as `lflow-core` reads them (`q * scale`
/// for int8, f16 widened), with its model configuration and velocity decoder.
#[derive(Clone, Debug)]
pub struct BlobModel {
    /// Sizes and constants from the header (streaming mode, the blob's window).
    pub config: ModelConfig,
    /// Storage format of the matrices.
    pub storage: StorageFormat,
    /// The dequantised parameters.
    pub params: Params,
    /// The velocity decoder (`None` when `n_beh` is 0).
    pub velocity: Option<VelocityReadout>,
}

/// Read a blob for host-side evaluation.
pub fn read_blob(bytes: &[u8]) -> Result<BlobModel, lflow_core::BlobError> {
    let blob = lflow_core::blob::Blob::parse(bytes, None)?;
    let h = *blob.header();
    let d = h.dims;
    let config = ModelConfig {
        n_in: d.n_in as usize,
        n_out: d.n_out as usize,
        hidden: d.hidden as usize,
        ff: d.ff as usize,
        gamma: h.gamma,
        eps: h.eps,
        mode: match h.schedule {
            lflow_core::InputSchedule::CurrentBin => Mode::Streaming { window: d.window as usize },
            lflow_core::InputSchedule::PreviousBin => {
                Mode::Paper { causal_window: (d.window > 0).then_some(d.window as usize) }
            }
        },
        anchor_every: h.anchor_every as usize,
    };
    let dense = |t: Tensor| -> Result<Vec<f32>, lflow_core::BlobError> {
        if t.is_matrix() {
            let m = blob.matrix(t)?;
            Ok((0..m.rows())
                .flat_map(|r| (0..m.cols()).map(move |c| (r, c)))
                .map(|(r, c)| m.get(r, c).unwrap_or(0.0))
                .collect())
        } else {
            Ok(blob.vector(t)?.to_vec())
        }
    };
    let mut params = Params::zeros(&config);
    for t in PARAMS {
        params.get_mut(t).copy_from_slice(&dense(t)?);
    }
    let velocity = (d.n_beh > 0)
        .then(|| -> Result<VelocityReadout, lflow_core::BlobError> {
            Ok(VelocityReadout {
                n_beh: d.n_beh as usize,
                weight: dense(Tensor::VelocityWeight)?,
                bias: dense(Tensor::VelocityBias)?,
            })
        })
        .transpose()?;
    Ok(BlobModel { config, storage: h.storage, params, velocity })
}

/// A blob's bytes in a 16-byte aligned buffer (as in flash), so `lflow-core`
/// can borrow its sections in place.
#[derive(Clone, Debug)]
pub struct AlignedBuf {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBuf {
    /// Copy `bytes`.
    pub fn new(bytes: &[u8]) -> AlignedBuf {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBuf { words, len: bytes.len() }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}

/// Copy `bytes` into an [`AlignedBuf`].
pub fn aligned(bytes: &[u8]) -> AlignedBuf {
    AlignedBuf::new(bytes)
}
