//! LayerNorm over the last axis, PyTorch conventions: biased variance, `eps = 1e-5`, affine.

use crate::math::sqrt;

/// Variance floor added inside the square root.
pub const LAYER_NORM_EPS: f32 = 1e-5;

/// An affine LayerNorm, `weight [D]`, `bias [D]`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm<'a> {
    /// Gain `[D]`.
    pub weight: &'a [f32],
    /// Shift `[D]`.
    pub bias: &'a [f32],
}

impl LayerNorm<'_> {
    /// Normalise `x [D]` in place: `(x - mean) / sqrt(var + eps) * weight + bias`,
    /// that is [`normalise_row_in_place`], then `xhat * weight + bias`.
    pub fn apply_in_place(&self, x: &mut [f32]) {
        normalise_row_in_place(x);
        for ((v, w), b) in x.iter_mut().zip(self.weight).zip(self.bias) {
            *v = *v * w + b;
        }
    }
}

/// The mean and `rstd = 1 / sqrt(var + eps)` of `x` (biased variance), each
/// sum in element order.
#[inline(always)]
fn moments(x: &[f32]) -> (f32, f32) {
    let n = x.len().max(1) as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / sqrt(var + LAYER_NORM_EPS))
}

/// One row of LayerNorm without its affine part: `xhat[i] = (x[i] - mean) * rstd`
/// into `xhat [D]` for `x [D]`, returning `rstd = 1 / sqrt(var + eps)`
/// ([`LAYER_NORM_EPS`], biased variance over `x`). The row's output is then
/// `xhat * weight + bias`, bit for bit [`LayerNorm::apply_in_place`]'s.
/// A shorter `xhat` is not an error (no panic): it gets its first elements.
pub fn normalise_row(x: &[f32], xhat: &mut [f32]) -> f32 {
    let (mean, rstd) = moments(x);
    for (h, v) in xhat.iter_mut().zip(x) {
        *h = (*v - mean) * rstd;
    }
    rstd
}

/// [`normalise_row`] in place: `x [D]` becomes `xhat`; returns `rstd`.
pub fn normalise_row_in_place(x: &mut [f32]) -> f32 {
    let (mean, rstd) = moments(x);
    for v in x.iter_mut() {
        *v = (*v - mean) * rstd;
    }
    rstd
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(x: &[f32]) -> std::vec::Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// The LayerNorm as it was written inline before [`normalise_row`] was factored out.
    fn inline(x: &mut [f32], w: &[f32], b: &[f32]) {
        let n = x.len().max(1) as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / sqrt(var + LAYER_NORM_EPS);
        for ((v, w), b) in x.iter_mut().zip(w).zip(b) {
            *v = (*v - mean) * inv * w + b;
        }
    }

    proptest! {
        #[test]
        fn factored_rows_equal_the_inline_norm_bit_for_bit(
            x in proptest::collection::vec(-50.0f32..50.0, 1..200),
            seed in 0u32..1000,
        ) {
            let w: std::vec::Vec<f32> = (0..x.len()).map(|i| 0.5 + ((i as u32 + seed) % 7) as f32 * 0.1).collect();
            let b: std::vec::Vec<f32> = (0..x.len()).map(|i| ((i as u32 * 3 + seed) % 5) as f32 * 0.2 - 0.4).collect();
            let mut want = x.clone();
            inline(&mut want, &w, &b);
            let mut got = x.clone();
            LayerNorm { weight: &w, bias: &b }.apply_in_place(&mut got);
            prop_assert_eq!(bits(&got), bits(&want));
            // Out of place, then the affine part: the same bits, and the same rstd in place.
            let mut xhat = std::vec![0.0f32; x.len()];
            let rstd = normalise_row(&x, &mut xhat);
            let y: std::vec::Vec<f32> = xhat.iter().zip(&w).zip(&b).map(|((h, w), b)| h * w + b).collect();
            prop_assert_eq!(bits(&y), bits(&want));
            let mut again = x.clone();
            prop_assert_eq!(normalise_row_in_place(&mut again).to_bits(), rstd.to_bits());
            prop_assert_eq!(bits(&again), bits(&xhat));
        }

        #[test]
        fn matches_f64(x in proptest::collection::vec(-50.0f32..50.0, 1..64), seed in 0u32..1000) {
            let w: std::vec::Vec<f32> = (0..x.len()).map(|i| 0.5 + ((i as u32 + seed) % 7) as f32 * 0.1).collect();
            let b: std::vec::Vec<f32> = (0..x.len()).map(|i| ((i as u32 * 3 + seed) % 5) as f32 * 0.2 - 0.4).collect();
            let n = x.len() as f64;
            let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let mut y = x.clone();
            LayerNorm { weight: &w, bias: &b }.apply_in_place(&mut y);
            for i in 0..x.len() {
                let want = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
                prop_assert!((y[i] as f64 - want).abs() < 2e-4 * (1.0 + want.abs()), "{} vs {want}", y[i]);
            }
        }
    }
}
