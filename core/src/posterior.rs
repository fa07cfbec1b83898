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
            reparameterise_in_place(out, logvar, e);
        }
    }

    /// The posterior means `z = mu_z(h)`, `v = mu_v(h)` (all `[H]`): a re-anchor
    /// of the latent state on the current encoder state (`core/CONTINUOUS.md`).
    pub fn means(&self, h: &[f32], z: &mut [f32], v: &mut [f32]) {
        self.z_mean.apply(h, z);
        self.v_mean.apply(h, v);
    }
}

/// One draw of `N(mu, exp(logvar))` from a standard-normal `eps`:
/// `mu + exp(0.5 * logvar) * eps`, in this order of f32 operations, with
/// [`crate::math::exp`].
#[inline(always)]
pub fn reparameterise(mu: f32, logvar: f32, eps: f32) -> f32 {
    mu + exp(0.5 * logvar) * eps
}

/// [`reparameterise`] element by element, in place: `sample [H]` holds the
/// means on entry and the draws on return; `logvar [H]`, `eps [H]`. Shorter
/// `logvar` or `eps` are not an error (no panic): elements past what both
/// hold keep their mean.
pub fn reparameterise_in_place(sample: &mut [f32], logvar: &[f32], eps: &[f32]) {
    for ((s, l), e) in sample.iter_mut().zip(logvar).zip(eps) {
        *s = reparameterise(*s, *l, *e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The factored draw equals the inline `*o += exp(0.5 * l) * e` it replaced.
        #[test]
        fn reparameterise_is_the_inline_draw_bit_for_bit(
            mu in proptest::array::uniform8(-5.0f32..5.0),
            lv in proptest::array::uniform8(-12.0f32..6.0),
            e in proptest::array::uniform8(-4.0f32..4.0),
        ) {
            let mut got = mu;
            reparameterise_in_place(&mut got, &lv, &e);
            let mut want = mu;
            for ((o, l), e) in want.iter_mut().zip(lv.iter()).zip(e.iter()) {
                *o += exp(0.5 * l) * e;
            }
            prop_assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits));
            let tol = 1e-5 + 8.0 * crate::math::TEST_SLACK;
            for k in 0..8 {
                let exact = mu[k] as f64 + (0.5 * lv[k] as f64).exp() * e[k] as f64;
                prop_assert!((got[k] as f64 - exact).abs() <= tol * (1.0 + exact.abs()), "{} vs {exact}", got[k]);
            }
        }
    }

    #[test]
    fn short_inputs_keep_the_means() {
        let mut s = [1.0f32, 2.0, 3.0];
        reparameterise_in_place(&mut s, &[0.0, 0.0], &[1.0]);
        assert_eq!(s, [2.0, 2.0, 3.0]);
    }
}
