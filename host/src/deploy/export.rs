//! From trained parameters to an `LFW1` blob for `lflow-core` (`core/FORMAT.md`).

use crate::config::ModelConfig;
use crate::train::params::{Params, PARAMS};
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

/// Fit the device's velocity decoder: ridge regression (alpha by 5-fold CV over
/// `logspace(-4, 0, 9)`) from `y2` of the streaming model in mean mode to the
/// behaviour, on the observed bins of the training trials. `None` without behaviour.
pub fn fit_velocity<B: crate::train::backend::Backend>(
    t: &mut crate::train::trainer::Trainer<B>,
    data: &crate::data::Dataset,
) -> Option<VelocityReadout> {
    let beh = data.behavior.as_ref()?;
    let train = data.indices(crate::data::Split::Train);
    if data.n_beh == 0 || train.is_empty() {
        return None;
    }
    let (x, y) = velocity_rows(t, data, &train, beh);
    let d = t.model.d_model();
    let (ridge, _) = crate::metrics::ridge_cv(&x, &y, d, data.n_beh);
    Some(VelocityReadout::from_ridge(&ridge))
}

/// The device's velocity decoder for `t`'s model: fit on the training trials
/// decoded one by one ([`fit_velocity`]), or for a re-anchored model (a
/// decoder that is never reset) on the training trials decoded back to back
/// by `lflow-core` ([`crate::deploy::stream::fit_velocity_streamed`]).
pub fn fit_device_velocity<B: crate::train::backend::Backend>(
    t: &mut crate::train::trainer::Trainer<B>,
    data: &crate::data::Dataset,
) -> Result<Option<VelocityReadout>, crate::deploy::stream::StreamError> {
    if t.model.anchor_every == 0 {
        return Ok(fit_velocity(t, data));
    }
    let bytes =
        blob(&t.model, &t.state.params, StorageFormat::F32, None).map_err(crate::deploy::stream::StreamError::Write)?;
    crate::deploy::stream::fit_velocity_streamed(aligned(&bytes).bytes(), data)
}

/// Rows of `y2` (observed bins) and behaviour for `trials`, as f64.
pub fn velocity_rows<B: crate::train::backend::Backend>(
    t: &mut crate::train::trainer::Trainer<B>,
    data: &crate::data::Dataset,
    trials: &[usize],
    beh: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let d = t.model.d_model();
    let (t_obs, tt, k) = (data.observed, data.bins(), data.n_beh);
    let y2 = t.features(data, trials, crate::train::backend::Features::DecoderOutput);
    let x = (0..trials.len())
        .flat_map(|j| y2[j * tt * d..(j * tt + t_obs) * d].iter().map(|v| *v as f64).collect::<Vec<_>>())
        .collect();
    let y = trials.iter().flat_map(|&i| beh[i * t_obs * k..(i + 1) * t_obs * k].iter().map(|v| *v as f64)).collect();
    (x, y)
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
            lflow_core::InputSchedule::CurrentBin => crate::config::Mode::Streaming,
            lflow_core::InputSchedule::PreviousBin => crate::config::Mode::Paper,
        },
        window: Some(d.window as usize),
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

impl VelocityReadout {
    /// The decoder of a fitted ridge regression (`[outputs, features]` weights).
    pub fn from_ridge(ridge: &crate::metrics::Ridge) -> VelocityReadout {
        VelocityReadout {
            n_beh: ridge.outputs,
            weight: ridge.coef.iter().map(|w| *w as f32).collect(),
            bias: ridge.intercept.iter().map(|b| *b as f32).collect(),
        }
    }

    /// Decode rows of `y2` (`[rows, 3H]`) to behaviour `[rows, n_beh]`.
    pub fn apply(&self, y2: &[f64]) -> Vec<f64> {
        let d = self.weight.len() / self.n_beh.max(1);
        y2.chunks(d.max(1))
            .flat_map(|row| {
                (0..self.n_beh).map(move |o| {
                    self.bias[o] as f64
                        + self.weight[o * d..(o + 1) * d].iter().zip(row).map(|(w, x)| *w as f64 * x).sum::<f64>()
                })
            })
            .collect()
    }
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
