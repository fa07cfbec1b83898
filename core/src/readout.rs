//! The readout: log-rates `[N_OUT] = W_ro y2 + b_ro`, rates = `exp(log-rates)`
//! in spikes per bin (MODEL.md section 5).

use crate::linear::Linear;
use crate::math::exp;

/// `readout [N_OUT, D]`.
#[derive(Clone, Copy, Debug)]
pub struct Readout<'a>(pub Linear<'a>);

impl Readout<'_> {
    /// Write log-rates and rates (spikes per bin) for `y2 [D]`.
    pub fn apply(&self, y2: &[f32], log_rates: &mut [f32], rates: &mut [f32]) {
        self.0.apply(y2, log_rates);
        for (r, lr) in rates.iter_mut().zip(log_rates.iter()) {
            *r = exp(*lr);
        }
    }
}
