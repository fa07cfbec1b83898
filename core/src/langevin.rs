//! One step of the underdamped Langevin dynamics (MODEL.md section 4).
//!
//! Symplectic Euler with Ornstein-Uhlenbeck velocity noise, for `t >= 1`:
//!
//! ```text
//! f   = dU/dz (z_{t-1})
//! z_t = z_{t-1} + eps * v_{t-1}
//! v_t = (1 - gamma) * (v_{t-1} - eps * f) + sqrt(2 * gamma) * e_t
//! ```

use crate::potential::Potential;

/// Step size and damping of the latent dynamics.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LangevinStep {
    /// Damping `gamma` (0.55 by default), dimensionless, in `[0, 1]`.
    pub gamma: f32,
    /// Step size `eps` (0.01), in units of one bin.
    pub eps: f32,
}

impl LangevinStep {
    /// Advance `(z, v)` by one bin with draws `e [H]`; `force` is scratch.
    pub fn step<const H: usize>(
        &self,
        potential: &Potential,
        z: &mut [f32; H],
        v: &mut [f32; H],
        force: &mut [f32; H],
        e: &[f32; H],
    ) {
        self.step_slice(potential, z, v, force, e);
    }

    /// [`LangevinStep::step`] for a latent of run-time size (all slices `z.len()` long).
    pub fn step_slice(&self, potential: &Potential, z: &mut [f32], v: &mut [f32], force: &mut [f32], e: &[f32]) {
        potential.gradient_slice(z, force);
        let noise_scale = crate::math::sqrt(2.0 * self.gamma);
        for (((zk, vk), fk), ek) in z.iter_mut().zip(v.iter_mut()).zip(force.iter()).zip(e) {
            *zk += self.eps * *vk;
            *vk = (1.0 - self.gamma) * (*vk - self.eps * fk) + noise_scale * ek;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_follows_the_update_rule() {
        let kernel: std::vec::Vec<f32> = (0..48).map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5).collect();
        let pot = Potential::from_flat_kernel(&kernel).unwrap();
        let step = LangevinStep { gamma: 0.55, eps: 0.01 };
        let z0: [f32; 8] = core::array::from_fn(|i| i as f32 * 0.1 - 0.3);
        let v0: [f32; 8] = core::array::from_fn(|i| 0.2 - i as f32 * 0.05);
        let e: [f32; 8] = core::array::from_fn(|i| (i as f32).sin());
        let mut f0 = [0.0; 8];
        pot.gradient(&z0, &mut f0);
        let (mut z, mut v, mut scratch) = (z0, v0, [0.0; 8]);
        step.step(&pot, &mut z, &mut v, &mut scratch, &e);
        for k in 0..8 {
            let (z64, v64, f64_, e64) = (z0[k] as f64, v0[k] as f64, f0[k] as f64, e[k] as f64);
            let zw = z64 + 0.01 * v64;
            let vw = 0.45 * (v64 - 0.01 * f64_) + (1.1f64).sqrt() * e64;
            assert!((z[k] as f64 - zw).abs() < 1e-6, "z[{k}]");
            assert!((v[k] as f64 - vw).abs() < 1e-6, "v[{k}]");
        }
    }

    #[test]
    fn mean_mode_decays_velocity_without_force() {
        let pot = Potential::default();
        let step = LangevinStep { gamma: 0.5, eps: 0.01 };
        let (mut z, mut v, mut f) = ([0.0f32; 4], [1.0f32; 4], [0.0f32; 4]);
        step.step(&pot, &mut z, &mut v, &mut f, &[0.0; 4]);
        assert_eq!(z, [0.01; 4]);
        assert_eq!(v, [0.5; 4]);
    }
}
