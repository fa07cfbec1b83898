//! The coupled-oscillator potential and its closed-form gradient (MODEL.md section 3).
//!
//! The kernel `K [4, 4, 3]` (out channel, in channel, tap) is row-normalised
//! (`Kn[o,i,:] = K[o,i,:] / max(|K[o,i,:]|, 1e-12)`) and summed over the out
//! channel into `a [4, 3]` once, when the weights are loaded. With `z [H]`
//! read as 4 channels of length `L = H / 4` and zero padding:
//!
//! ```text
//! g[k] = sum_i sum_j a[i, j] z_i[k + j - 1]      s[k] = sum_c z_c[k]
//! U(z) = sum_k g[k] s[k]
//! dU/dz_c[m] = g[m] + sum_j a[c, j] s[m - j + 1]
//! ```

/// Number of channels the latent is split into.
pub const CHANNELS: usize = 4;
/// Taps of the 1-D convolution kernel.
pub const TAPS: usize = 3;

/// The potential `U(z)`, reduced to its effective taps `a [4, 3]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Potential {
    /// `a[i][j] = sum_o Kn[o, i, j]`.
    pub taps: [[f32; TAPS]; CHANNELS],
}

impl Potential {
    /// From the raw kernel `K [4, 4, 3]` in PyTorch order (`potential.conv_z`).
    pub fn from_kernel(kernel: &[[[f32; TAPS]; CHANNELS]; CHANNELS]) -> Self {
        let mut taps = [[0.0f32; TAPS]; CHANNELS];
        for out in kernel {
            for (a_i, k_oi) in taps.iter_mut().zip(out) {
                let norm = crate::math::sqrt(k_oi.iter().map(|k| k * k).sum::<f32>()).max(1e-12);
                for (a, k) in a_i.iter_mut().zip(k_oi) {
                    *a += k / norm;
                }
            }
        }
        Potential { taps }
    }

    /// From the raw kernel as a flat `[48]` slice; `None` if it is not 48 long.
    pub fn from_flat_kernel(flat: &[f32]) -> Option<Self> {
        if flat.len() != CHANNELS * CHANNELS * TAPS {
            return None;
        }
        let mut kernel = [[[0.0f32; TAPS]; CHANNELS]; CHANNELS];
        for (dst, src) in kernel.as_flattened_mut().as_flattened_mut().iter_mut().zip(flat) {
            *dst = *src;
        }
        Some(Self::from_kernel(&kernel))
    }

    /// The force `dU/dz` at `z`, written to `force`. `H` must be a multiple of 4
    /// (checked at compile time by the decoder).
    pub fn gradient<const H: usize>(&self, z: &[f32; H], force: &mut [f32; H]) {
        self.gradient_slice(z, force);
    }

    /// [`Potential::gradient`] for a latent of run-time size `z.len()` (a
    /// multiple of 4; `force` as long as `z`). The host's trainer uses this.
    /// The map is linear and symmetric in `z` (`U` is a quadratic form), so it
    /// is also the vector-Jacobian product of the force.
    pub fn gradient_slice(&self, z: &[f32], force: &mut [f32]) {
        let len = z.len() / CHANNELS;
        // Zero-padded channel access.
        let at = |c: usize, k: isize| -> f32 {
            if k < 0 || k as usize >= len {
                return 0.0;
            }
            z.get(c * len + k as usize).copied().unwrap_or(0.0)
        };
        let s = |k: isize| -> f32 { (0..CHANNELS).map(|c| at(c, k)).sum() };
        if len == 0 {
            force.iter_mut().take(CHANNELS).for_each(|f| *f = 0.0);
            return;
        }
        // g[m] is shared by the 4 channels and s rolls along m: each is
        // computed once per position, in the same order of additions as the
        // definition (the twin in the tests), so the result is the same to the bit.
        let (mut s_prev, mut s_now) = (0.0f32, s(0));
        for m in 0..len {
            let k = m as isize;
            let s_next = s(k + 1);
            let mut g = 0.0f32;
            for (i, a_i) in self.taps.iter().enumerate() {
                for (j, a) in a_i.iter().enumerate() {
                    g += a * at(i, k + j as isize - 1);
                }
            }
            for (c, &[a0, a1, a2]) in self.taps.iter().enumerate() {
                let coupling = 0.0f32 + a0 * s_next + a1 * s_now + a2 * s_prev;
                if let Some(f) = force.get_mut(c * len + m) {
                    *f = g + coupling;
                }
            }
            (s_prev, s_now) = (s_now, s_next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// The force straight from its definition, every sum recomputed where it
    /// is read (the implementation before the shared `g` and rolling `s`).
    fn gradient_by_definition(p: &Potential, z: &[f32], force: &mut [f32]) {
        let len = z.len() / CHANNELS;
        let at = |c: usize, k: isize| -> f32 {
            if k < 0 || k as usize >= len {
                return 0.0;
            }
            z[c * len + k as usize]
        };
        let s = |k: isize| -> f32 { (0..CHANNELS).map(|c| at(c, k)).sum() };
        let g = |k: isize| -> f32 {
            let mut acc = 0.0f32;
            for (i, a_i) in p.taps.iter().enumerate() {
                for (j, a) in a_i.iter().enumerate() {
                    acc += a * at(i, k + j as isize - 1);
                }
            }
            acc
        };
        for (c, chunk) in force.chunks_mut(len.max(1)).enumerate().take(CHANNELS) {
            for (m, f) in chunk.iter_mut().enumerate() {
                let m = m as isize;
                let mut coupling = 0.0f32;
                for (j, a) in p.taps[c].iter().enumerate() {
                    coupling += a * s(m - j as isize + 1);
                }
                *f = g(m) + coupling;
            }
        }
    }

    proptest! {
        #[test]
        fn gradient_slice_equals_its_definition_to_the_bit(
            kernel in proptest::collection::vec(-2.0f32..2.0, 48),
            quarter in 1usize..20,
            seed in proptest::collection::vec(-3.0f32..3.0, 80),
            zeros in proptest::collection::vec(proptest::bool::ANY, 80),
        ) {
            let pot = Potential::from_flat_kernel(&kernel).unwrap();
            let h = 4 * quarter;
            // Signed zeros too: the sums must start where the definition's do.
            let z: Vec<f32> = (0..h).map(|i| if zeros[i] { -0.0 } else { seed[i] }).collect();
            let (mut got, mut want) = (std::vec![1.0f32; h], std::vec![2.0f32; h]);
            pot.gradient_slice(&z, &mut got);
            gradient_by_definition(&pot, &z, &mut want);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }

    /// U(z) in f64, straight from the convolution definition (PyTorch Conv1d,
    /// padding 1): g = conv(z, Kn).sum over out channels, U = sum g * s.
    fn energy64(kernel: &[f32], z: &[f64]) -> f64 {
        let l = z.len() / 4;
        let kn: Vec<f64> = kernel
            .chunks(3)
            .flat_map(|row| {
                let n = row.iter().map(|&k| (k as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
                row.iter().map(move |&k| k as f64 / n)
            })
            .collect();
        let zc = |c: usize, k: isize| if k < 0 || k >= l as isize { 0.0 } else { z[c * l + k as usize] };
        let mut u = 0.0;
        for k in 0..l as isize {
            let mut g = 0.0;
            for o in 0..4 {
                for i in 0..4 {
                    for j in 0..3 {
                        g += kn[(o * 4 + i) * 3 + j] * zc(i, k + j as isize - 1);
                    }
                }
            }
            let s: f64 = (0..4).map(|c| zc(c, k)).sum();
            u += g * s;
        }
        u
    }

    proptest! {
        #[test]
        fn gradient_matches_finite_differences(
            kernel in proptest::collection::vec(-1.0f32..1.0, 48),
            z in proptest::array::uniform16(-2.0f32..2.0),
        ) {
            let pot = Potential::from_flat_kernel(&kernel).ok_or(TestCaseError::fail("kernel"))?;
            let mut force = [0.0f32; 16];
            pot.gradient(&z, &mut force);
            let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            for m in 0..16 {
                let h = 1e-5;
                let (mut up, mut dn) = (z64.clone(), z64.clone());
                up[m] += h;
                dn[m] -= h;
                let fd = (energy64(&kernel, &up) - energy64(&kernel, &dn)) / (2.0 * h);
                prop_assert!((force[m] as f64 - fd).abs() < 1e-4 * (1.0 + fd.abs()), "m {m}: {} vs {fd}", force[m]);
            }
        }
    }

    #[test]
    fn zero_kernel_gives_zero_force() {
        let pot = Potential::from_flat_kernel(&[0.0; 48]).unwrap();
        let mut force = [1.0f32; 8];
        pot.gradient(&[0.5; 8], &mut force);
        assert_eq!(force, [0.0; 8]);
        assert!(Potential::from_flat_kernel(&[0.0; 47]).is_none());
    }
}
