//! Adam with coupled (L2) weight decay, exactly as `torch.optim.Adam`.

use crate::config::ModelConfig;
use crate::train::params::Params;
use serde::{Deserialize, Serialize};

/// Adam's constants (PyTorch defaults but `lr`). The betas are f64, as
/// Python floats are in `torch.optim.Adam`: `1 - beta2` is then 0.001 to f32
/// precision, where `1 - 0.999f32` would be 1.3e-5 off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f32,
}

/// The f32 constants of one Adam step, as `torch.optim.Adam` forms them from
/// its Python floats (and the CUDA kernel reads them, inside `StepScalars`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepConstants {
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1`, formed in f64.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`, formed in f64.
    pub one_minus_beta2: f32,
    /// `eps`.
    pub eps: f32,
    /// `lr / (1 - beta1^step)`.
    pub step_size: f32,
    /// `sqrt(1 - beta2^step)`.
    pub bc2_sqrt: f32,
}

impl AdamConfig {
    /// The constants of step `step` (from 1) at learning rate `lr`.
    pub fn constants(&self, lr: f32, step: u64) -> StepConstants {
        let step = step.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - self.beta1.powi(step);
        let bc2 = 1.0 - self.beta2.powi(step);
        StepConstants {
            beta1: self.beta1 as f32,
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            eps: self.eps,
            step_size: (lr as f64 / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
        }
    }
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
        let k = c.constants(lr, self.step);
        let params = p.data.iter_mut().zip(&g.data);
        for ((x, grad), (m, v)) in params.zip(self.m.data.iter_mut().zip(self.v.data.iter_mut())) {
            let grad = grad + weight_decay * *x;
            *m = k.beta1 * *m + k.one_minus_beta1 * grad;
            *v = k.beta2 * *v + k.one_minus_beta2 * grad * grad;
            let denom = v.sqrt() / k.bc2_sqrt + k.eps;
            *x -= k.step_size * *m / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lflow_core::Seeded;

    /// `torch.optim.Adam` (amsgrad off, coupled `weight_decay`) for one
    /// parameter, in f64, as its single-tensor loop writes it.
    struct TorchAdam {
        exp_avg: f64,
        exp_avg_sq: f64,
        step: i32,
    }

    impl TorchAdam {
        fn step(&mut self, p: &mut f64, grad: f64, lr: f64, weight_decay: f64) {
            let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
            self.step += 1;
            let grad = grad + weight_decay * *p;
            self.exp_avg += (grad - self.exp_avg) * (1.0 - beta1); // exp_avg.lerp_(grad, 1 - beta1)
            self.exp_avg_sq = self.exp_avg_sq * beta2 + (1.0 - beta2) * grad * grad;
            let bias_correction1 = 1.0 - beta1.powi(self.step);
            let bias_correction2 = 1.0 - beta2.powi(self.step);
            let step_size = lr / bias_correction1;
            let denom = self.exp_avg_sq.sqrt() / bias_correction2.sqrt() + eps;
            *p -= step_size * self.exp_avg / denom;
        }
    }

    #[test]
    fn six_steps_follow_torch_adam_with_coupled_weight_decay() {
        let cfg = ModelConfig::paper(2, 3, 2, 4);
        let mut rng = Seeded::new(21);
        let mut p = Params::zeros(&cfg);
        for x in &mut p.data {
            *x = rng.next_normal();
        }
        let start = p.clone();
        let mut reference: Vec<(f64, TorchAdam)> =
            p.data.iter().map(|&x| (x as f64, TorchAdam { exp_avg: 0.0, exp_avg_sq: 0.0, step: 0 })).collect();
        let mut adam = Adam::new(&cfg);
        let conf = AdamConfig::default();
        // Gradients of about 1e-3 that change sign and size from step to step,
        // and a decay (0.01 * p, about 1e-2) that dominates them: beta1, beta2,
        // the bias corrections and where the decay enters all move the result.
        // The learning rate changes too (a scheduler's).
        let mut g = Params::zeros(&cfg);
        for step in 0..6 {
            let lr = [3e-3f32, 3e-3, 2.5e-3, 2e-3, 2e-3, 1e-3][step];
            let wd = 0.01f32;
            for x in &mut g.data {
                *x = 1e-3 * rng.next_normal();
            }
            adam.update(&conf, lr, wd, &mut p, &g);
            for ((x, s), grad) in reference.iter_mut().zip(&g.data) {
                s.step(x, *grad as f64, lr as f64, wd as f64);
            }
        }
        assert_eq!(adam.step, 6);
        // The parameters' total movement against the reference's, element by element.
        let mut worst = 0.0f64;
        for ((got, (want, _)), p0) in p.data.iter().zip(&reference).zip(&start.data) {
            let (moved, want_moved) = (*got as f64 - *p0 as f64, want - *p0 as f64);
            worst = worst.max((moved - want_moved).abs() / want_moved.abs().max(1e-3));
        }
        assert!(worst < 1e-3, "worst relative error of the movement {worst:.2e}");
        // The moments too.
        for (i, (_, s)) in reference.iter().enumerate() {
            let (m, v) = (adam.m.data[i] as f64, adam.v.data[i] as f64);
            assert!((m - s.exp_avg).abs() <= 1e-5 * s.exp_avg.abs() + 1e-12, "exp_avg[{i}]: {m} vs {}", s.exp_avg);
            assert!(
                (v - s.exp_avg_sq).abs() <= 1e-5 * s.exp_avg_sq + 1e-15,
                "exp_avg_sq[{i}]: {v} vs {}",
                s.exp_avg_sq
            );
        }
    }
}
