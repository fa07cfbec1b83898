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
    /// Normalise `x` in place: `(x - mean) / sqrt(var + eps) * weight + bias`.
    pub fn apply_in_place(&self, x: &mut [f32]) {
        let n = x.len().max(1) as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / sqrt(var + LAYER_NORM_EPS);
        for ((v, w), b) in x.iter_mut().zip(self.weight).zip(self.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
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
