//! The posterior over the initial latent state (MODEL.md section 2).
//!
//! Four linear heads on `h_0`, each `[H, H]`:
//! `z_0 = mu_z + exp(logvar_z / 2) * e_z`, `v_0 = mu_v + exp(logvar_v / 2) * e_v`.

use crate::linear::Linear;
use crate::math::exp;

/// The heads `linear_{z,v}_{means,logvar}`.
#[derive(Clone, Copy, Debug)]
pub struct Posterior<'a> {
    /// `linear_z_means`.
    pub z_mean: Linear<'a>,
    /// `linear_z_logvar`.
    pub z_logvar: Linear<'a>,
    /// `linear_v_means`.
    pub v_mean: Linear<'a>,
    /// `linear_v_logvar`.
    pub v_logvar: Linear<'a>,
}

impl Posterior<'_> {
    /// Sample `(z_0, v_0)` from `h_0` with draws `e_z`, `e_v`; `logvar` is scratch.
    /// All slices `[H]`.
    pub fn sample(&self, h0: &[f32], e_z: &[f32], e_v: &[f32], z: &mut [f32], v: &mut [f32], logvar: &mut [f32]) {
        for (mean, lv, e, out) in
            [(&self.z_mean, &self.z_logvar, e_z, &mut *z), (&self.v_mean, &self.v_logvar, e_v, &mut *v)]
        {
            mean.apply(h0, out);
            lv.apply(h0, logvar);
            for ((o, l), e) in out.iter_mut().zip(logvar.iter()).zip(e) {
                *o += exp(0.5 * l) * e;
            }
        }
    }

    /// The posterior means `z = mu_z(h)`, `v = mu_v(h)` (all `[H]`): a re-anchor
    /// of the latent state on the current encoder state (`core/CONTINUOUS.md`).
    pub fn means(&self, h: &[f32], z: &mut [f32], v: &mut [f32]) {
        self.z_mean.apply(h, z);
        self.v_mean.apply(h, v);
    }
}
