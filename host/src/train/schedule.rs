//! How the learning rate, the KL weight and the L2 weight move over epochs
//! (MODEL.md section 7, and this project's warm-up and cosine alternative),
//! and gradient clipping.

use crate::train::train_config::{Schedule, TrainConfig};

impl TrainConfig {
    /// The learning rate of epoch `epoch` before any plateau reduction: the
    /// warm-up, then `lr` (plateau) or the cosine curve.
    pub fn scheduled_lr(&self, epoch: usize) -> f32 {
        if epoch < self.warmup_epochs {
            return self.lr * (epoch + 1) as f32 / self.warmup_epochs as f32;
        }
        match self.schedule {
            Schedule::Plateau => self.lr,
            Schedule::Cosine => {
                let span = self.epochs.saturating_sub(self.warmup_epochs + 1).max(1);
                let k = (epoch - self.warmup_epochs).min(span);
                let c = 0.5 * (1.0 + (std::f64::consts::PI * k as f64 / span as f64).cos());
                (self.min_lr as f64 + (self.lr as f64 - self.min_lr as f64) * c) as f32
            }
        }
    }

    /// `ReduceLROnPlateau` (mode min, threshold 0, no cooldown) after a
    /// validation NLL `valid` (`NaN`: the epoch did not validate, nothing
    /// moves). A strict improvement on `best` (`inf` before the first) resets
    /// `bad_epochs`; otherwise it grows, and once it exceeds `plateau_patience`,
    /// `lr` becomes `max(lr * plateau_factor, min_lr)` when `reduces` and the
    /// count restarts. Returns whether `valid` improved.
    pub fn plateau_step(
        &self,
        best: &mut f64,
        bad_epochs: &mut usize,
        lr: &mut f32,
        valid: f64,
        reduces: bool,
    ) -> bool {
        if valid < *best {
            *best = valid;
            *bad_epochs = 0;
            return true;
        }
        if valid.is_finite() {
            *bad_epochs += 1;
            if reduces && *bad_epochs > self.plateau_patience {
                *lr = (*lr * self.plateau_factor).max(self.min_lr);
                *bad_epochs = 0;
            }
        }
        false
    }

    /// Ramp fraction `clamp(epoch / ramp_epochs, 0, 1)` of the KL and L2 weights.
    pub fn ramp(&self, epoch: usize) -> f32 {
        if self.ramp_epochs == 0 {
            1.0
        } else {
            (epoch as f32 / self.ramp_epochs as f32).clamp(0.0, 1.0)
        }
    }
}

/// Scale `grads` down to global L2 norm `max_norm` when larger (`max_norm <=
/// 0`: leave them), as `torch.nn.utils.clip_grad_norm_` (which adds 1e-6 to the norm).
pub fn clip_global_norm(grads: &mut [f32], max_norm: f32) {
    if max_norm <= 0.0 {
        return;
    }
    let norm = grads.iter().map(|g| (*g as f64) * (*g as f64)).sum::<f64>().sqrt();
    let coef = max_norm as f64 / (norm + 1e-6);
    if coef < 1.0 {
        grads.iter_mut().for_each(|g| *g = (*g as f64 * coef) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: Schedule, warmup: usize) -> TrainConfig {
        TrainConfig { epochs: 11, lr: 0.01, min_lr: 0.001, schedule, warmup_epochs: warmup, ..TrainConfig::default() }
    }

    #[test]
    fn warm_up_then_cosine_by_hand() {
        let c = config(Schedule::Cosine, 2);
        // Warm-up: 0.01 * 1/2, 0.01 * 2/2; then K = 11 - 2 - 1 = 8 epochs of decay.
        let want = |k: f64| 0.001 + 0.009 * 0.5 * (1.0 + (std::f64::consts::PI * k / 8.0).cos());
        let lrs: Vec<f32> = (0..13).map(|e| c.scheduled_lr(e)).collect();
        assert_eq!(&lrs[..2], &[0.005, 0.01]);
        for (e, lr) in lrs.iter().enumerate().skip(2) {
            let k = (e - 2).min(8) as f64;
            assert!((*lr as f64 - want(k)).abs() < 1e-9, "epoch {e}: {lr}");
        }
        // Halfway (k = 4): the mean of lr and min_lr; the last epoch and after: min_lr.
        assert!((lrs[6] - 0.0055).abs() < 1e-9 && lrs[10] == 0.001 && lrs[12] == 0.001, "{lrs:?}");
    }

    #[test]
    fn plateau_is_flat_after_warm_up() {
        let c = config(Schedule::Plateau, 4);
        let lrs: Vec<f32> = (0..8).map(|e| c.scheduled_lr(e)).collect();
        assert_eq!(lrs, [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01, 0.01, 0.01]);
        assert_eq!(config(Schedule::Plateau, 0).scheduled_lr(0), 0.01);
        // A run shorter than its warm-up (11 epochs, warm-up 20) stays in it, cosine or not.
        for schedule in [Schedule::Plateau, Schedule::Cosine] {
            let c = config(schedule, 20);
            let (first, last) = (c.scheduled_lr(0), c.scheduled_lr(10));
            assert!((first - 0.0005).abs() < 1e-9 && (last - 0.0055).abs() < 1e-9, "{first} {last}");
        }
    }

    #[test]
    fn ramp_by_hand() {
        // The paper's 500 epochs: beta = 0.1 * clamp(epoch / 500, 0, 1) (MODEL.md section 6).
        let c = TrainConfig { ramp_epochs: 500, ..TrainConfig::default() };
        for (epoch, want) in
            [(0, 0.0), (1, 0.002), (50, 0.1), (250, 0.5), (499, 0.998), (500, 1.0), (501, 1.0), (4000, 1.0)]
        {
            assert!((c.ramp(epoch) - want).abs() < 1e-7, "epoch {epoch}: {} vs {want}", c.ramp(epoch));
        }
        assert_eq!(TrainConfig { ramp_epochs: 0, ..c }.ramp(0), 1.0);
    }

    #[test]
    fn plateau_scheduler_with_the_authors_settings_by_hand() {
        // Factor 0.95, patience 10, threshold 0, min lr 1e-5 (MODEL.md section 7).
        let c = TrainConfig {
            lr: 3e-3,
            plateau_factor: 0.95,
            plateau_patience: 10,
            min_lr: 1e-5,
            ..TrainConfig::default()
        };
        let (mut best, mut bad, mut lr) = (f64::INFINITY, 0usize, c.lr);
        let mut run = |valid: f64| {
            let improved = c.plateau_step(&mut best, &mut bad, &mut lr, valid, true);
            (improved, lr)
        };
        assert_eq!(run(1.0), (true, 3e-3));
        assert_eq!(run(0.5), (true, 3e-3));
        // Ten epochs without a strict improvement (equal is not better; NaN, no
        // validation, does not count): no reduction yet.
        for k in 0..10 {
            assert_eq!(run(if k % 2 == 0 { 0.5 } else { 0.7 }), (false, 3e-3), "bad epoch {}", k + 1);
            assert_eq!(run(f64::NAN), (false, 3e-3));
        }
        // The 11th: 3e-3 * 0.95.
        assert_eq!(run(0.5), (false, 3e-3 * 0.95));
        // The count restarts: ten more bad epochs keep it, the 11th reduces again.
        for _ in 0..10 {
            assert_eq!(run(0.6), (false, 3e-3 * 0.95));
        }
        assert_eq!(run(0.6), (false, 3e-3 * 0.95 * 0.95));
        // An improvement resets the count: 10 bad, a better one, 10 bad: no reduction.
        for _ in 0..10 {
            run(0.6);
        }
        assert_eq!(run(0.4), (true, 3e-3 * 0.95 * 0.95));
        for _ in 0..10 {
            assert_eq!(run(0.45), (false, 3e-3 * 0.95 * 0.95));
        }
        assert_eq!(best, 0.4);
        // The floor: 1.02e-5 * 0.95 = 9.69e-6 is clamped to min_lr.
        let (mut best, mut bad, mut lr) = (0.1, 10usize, 1.02e-5f32);
        assert!(!c.plateau_step(&mut best, &mut bad, &mut lr, 0.2, true));
        assert_eq!((lr, bad), (1e-5, 0));
        // Not reducing (cosine, or during warm-up): the count still runs, lr stays.
        let (mut best, mut bad, mut lr) = (0.1, 10usize, 3e-3f32);
        assert!(!c.plateau_step(&mut best, &mut bad, &mut lr, 0.2, false));
        assert_eq!((lr, bad), (3e-3, 11));
    }

    #[test]
    fn clipping_by_hand() {
        // Norm 5 clipped to 1: every gradient times 1 / (5 + 1e-6).
        let mut g = [3.0f32, 4.0];
        clip_global_norm(&mut g, 1.0);
        let coef = 1.0 / (5.0 + 1e-6);
        assert!((g[0] as f64 - 3.0 * coef).abs() < 1e-7 && (g[1] as f64 - 4.0 * coef).abs() < 1e-7, "{g:?}");
        // Under the bound, or clipping off: unchanged.
        let mut g = [0.3f32, 0.4];
        clip_global_norm(&mut g, 1.0);
        assert_eq!(g, [0.3, 0.4]);
        let mut g = [30.0f32, 40.0];
        clip_global_norm(&mut g, 0.0);
        assert_eq!(g, [30.0, 40.0]);
    }
}
