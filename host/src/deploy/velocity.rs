//! The device's velocity decoder: a linear readout `[n_beh, 3H]` of the
//! decoder output `y2`, fitted by ridge regression on the training trials.

use crate::data::{Dataset, Split};
use crate::metrics::{ridge_cv, Ridge};
use crate::train::backend::{Backend, BackendError, Features};
use crate::train::predictor::Predictor;

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

impl VelocityReadout {
    /// The decoder of a fitted ridge regression (`[outputs, features]` weights).
    pub fn from_ridge(ridge: &Ridge) -> VelocityReadout {
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

/// Fit the device's velocity decoder: ridge regression (alpha by 5-fold CV over
/// `logspace(-4, 0, 9)`) from `y2` of the streaming model in mean mode to the
/// behaviour, on the observed bins of the training trials. `None` without behaviour.
pub fn fit_velocity<B: Backend>(p: &mut Predictor<B>, data: &Dataset) -> Result<Option<VelocityReadout>, BackendError> {
    let Some(beh) = data.behavior.as_ref() else { return Ok(None) };
    let train = data.indices(Split::Train);
    if data.n_beh == 0 || train.is_empty() {
        return Ok(None);
    }
    let (x, y) = velocity_rows(p, data, &train, beh)?;
    let d = p.model.d_model();
    let (ridge, _) = ridge_cv(&x, &y, d, data.n_beh);
    Ok(Some(VelocityReadout::from_ridge(&ridge)))
}

/// Rows of `y2` (observed bins) and behaviour for `trials`, as f64.
pub fn velocity_rows<B: Backend>(
    p: &mut Predictor<B>,
    data: &Dataset,
    trials: &[usize],
    beh: &[f32],
) -> Result<(Vec<f64>, Vec<f64>), BackendError> {
    let d = p.model.d_model();
    let (t_obs, tt, k) = (data.observed, data.bins(), data.n_beh);
    let y2 = p.features(data, trials, Features::DecoderOutput)?;
    let x = (0..trials.len())
        .flat_map(|j| y2[j * tt * d..(j * tt + t_obs) * d].iter().map(|v| *v as f64).collect::<Vec<_>>())
        .collect();
    let y = trials.iter().flat_map(|&i| beh[i * t_obs * k..(i + 1) * t_obs * k].iter().map(|v| *v as f64)).collect();
    Ok((x, y))
}
