//! Adam with coupled (L2) weight decay, exactly as `torch.optim.Adam`.

use crate::config::ModelConfig;
use crate::params::Params;
use serde::{Deserialize, Serialize};

/// Adam's constants (PyTorch defaults but `lr`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Optimiser state: moments and step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// First moments, one per parameter.
    pub m: Params,
    /// Second moments.
    pub v: Params,
    /// Steps taken.
    pub step: u64,
}

impl Adam {
    /// Fresh state for a model of `cfg`.
    pub fn new(cfg: &ModelConfig) -> Adam {
        Adam { m: Params::zeros(cfg), v: Params::zeros(cfg), step: 0 }
    }

    /// One update of `p` with gradient `g`, learning rate `lr` and coupled
    /// weight decay `weight_decay` (added to the gradient, as PyTorch's Adam).
    pub fn update(&mut self, c: &AdamConfig, lr: f32, weight_decay: f32, p: &mut Params, g: &Params) {
        self.step += 1;
        let bc1 = 1.0 - (c.beta1 as f64).powi(self.step as i32);
        let bc2 = 1.0 - (c.beta2 as f64).powi(self.step as i32);
        let step_size = (lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let params = p.data.iter_mut().zip(&g.data);
        for ((x, grad), (m, v)) in params.zip(self.m.data.iter_mut().zip(self.v.data.iter_mut())) {
            let grad = grad + weight_decay * *x;
            *m = c.beta1 * *m + (1.0 - c.beta1) * grad;
            *v = c.beta2 * *v + (1.0 - c.beta2) * grad * grad;
            let denom = v.sqrt() / bc2_sqrt + c.eps;
            *x -= step_size * *m / denom;
        }
    }
}
