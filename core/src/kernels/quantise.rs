//! int16 activations for the int8 kernel: one symmetric scale per input
//! vector, chosen from the vector itself (dynamic), so every bin's inputs use
//! the full 16-bit range.
//!
//! For `x [cols]` with `m = max |x|` (finite, non-zero): `scale = m / 32767`,
//! `q[c] = round_half_even(x[c] * (32767 / m))`, so `|q| <= 32767` and
//! `x[c] ~ q[c] * scale` within half a step (`m / 65534`). All-zero input, or
//! `m` so small that `32767 / m` overflows (below about 1e-34), gives
//! `scale = 0` and `q = 0`; a NaN or infinity anywhere gives `scale = NaN`
//! (every output of the product is then NaN, which the decoder reports as
//! non-finite).

/// The largest activation magnitude, `i16::MAX` (symmetric: `-32768` is never used).
pub const I16_MAX: i16 = i16::MAX;

// The int8 kernel's 32-bit row sum cannot overflow: at most `MAX_I8_COLS`
// products of a weight in `-127..=127` and an activation in `-I16_MAX..=I16_MAX`.
const _: () = assert!(crate::matrix::MAX_I8_COLS as i64 * 127 * I16_MAX as i64 <= i32::MAX as i64);

/// The order the quantised vector is stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `q[c]` at index `c`.
    Natural,
    /// Every complete block of 4 columns as `[x0, x2, x1, x3]`, the rest in
    /// natural order: a 32-bit load then holds the pair of activations that
    /// `SXTB16` (bytes 0 and 2) or `SXTB16 ROR #8` (bytes 1 and 3) widens from
    /// a word of four int8 weights, for `SMLAD`.
    Paired,
}

/// Room for the widest int8 matrix's input, 8-byte aligned (the device loads it by words).
#[repr(C, align(8))]
pub struct Activations<const N: usize>(pub [i16; N]);

impl<const N: usize> Activations<N> {
    /// All zeros.
    #[inline(always)]
    pub const fn new() -> Self {
        Activations([0; N])
    }
}

impl<const N: usize> Default for Activations<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// `1.5 * 2^23`: adding it rounds an f32 of magnitude below `2^22` to an
/// integer (ties to even, the FPU's default mode) held in the low mantissa bits.
const ROUNDER: f32 = 12_582_912.0;

#[inline(always)]
fn round_to_i16(v: f32) -> i16 {
    // |v| <= 32767 * (1 + 2^-23): the sum stays in [2^23, 2^24), where the
    // f32 spacing is 1, so its bits minus the rounder's are round(v).
    ((v + ROUNDER).to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32) as i16
}

/// Quantise `x` into `q` (the first `min(len)` elements) in `layout`; returns
/// the input scale (`x ~ q * scale`). Never panics.
pub fn quantise(x: &[f32], q: &mut [i16], layout: Layout) -> f32 {
    let n = x.len().min(q.len());
    let (x, q) = (x.get(..n).unwrap_or(&[]), q.get_mut(..n).unwrap_or(&mut []));
    // max |x| over the bit patterns: every NaN and infinity sorts above every finite value.
    let (xc, xr) = x.as_chunks::<4>();
    let m4 = xc.iter().fold([0u32; 4], |m, c| core::array::from_fn(|i| m[i].max(c[i].to_bits() & 0x7fff_ffff)));
    let m = xr.iter().fold(m4[0].max(m4[1]).max(m4[2].max(m4[3])), |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    if m == 0 || m >= 0x7f80_0000 {
        q.fill(0);
        return if m == 0 { 0.0 } else { f32::NAN };
    }
    let max = f32::from_bits(m);
    let inv = f32::from(I16_MAX) / max;
    if inv.is_infinite() {
        // max < 32767 / f32::MAX (about 1e-34): as good as zero.
        q.fill(0);
        return 0.0;
    }
    match layout {
        Layout::Natural => {
            for (qi, v) in q.iter_mut().zip(x) {
                *qi = round_to_i16(v * inv);
            }
        }
        Layout::Paired => {
            let (qb, qt) = q.as_chunks_mut::<4>();
            let (xb, xt) = x.as_chunks::<4>();
            for (qb, &[a, b, c, d]) in qb.iter_mut().zip(xb) {
                *qb = [round_to_i16(a * inv), round_to_i16(c * inv), round_to_i16(b * inv), round_to_i16(d * inv)];
            }
            for (qi, v) in qt.iter_mut().zip(xt) {
                *qi = round_to_i16(v * inv);
            }
        }
    }
    max / f32::from(I16_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// The definition, written with std's rounding instead of the bit trick.
    fn reference(x: &[f32]) -> (Vec<i16>, f32) {
        let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let inv = 32767.0 / max;
        if max == 0.0 || inv.is_infinite() {
            return (std::vec![0; x.len()], 0.0);
        }
        (x.iter().map(|v| (v * inv).round_ties_even() as i16).collect(), max / 32767.0)
    }

    proptest! {
        #[test]
        fn natural_matches_the_definition(x in proptest::collection::vec(-1e6f32..1e6, 0..70)) {
            let (want, want_scale) = reference(&x);
            let mut q = std::vec![7i16; x.len()];
            let scale = quantise(&x, &mut q, Layout::Natural);
            prop_assert_eq!(scale.to_bits(), want_scale.to_bits());
            prop_assert_eq!(&q, &want);
            for (qi, v) in q.iter().zip(&x) {
                prop_assert!((f32::from(*qi) * scale - v).abs() <= scale * 0.5 + v.abs() * 1e-6);
            }
        }

        #[test]
        fn paired_is_natural_permuted(x in proptest::collection::vec(-3.0f32..3.0, 0..70)) {
            let (mut a, mut b) = (std::vec![0i16; x.len()], std::vec![0i16; x.len()]);
            let sa = quantise(&x, &mut a, Layout::Natural);
            let sb = quantise(&x, &mut b, Layout::Paired);
            prop_assert_eq!(sa.to_bits(), sb.to_bits());
            for c in 0..x.len() {
                let block = c / 4 * 4;
                let at = if block + 4 <= x.len() { block + [0, 2, 1, 3][c % 4] } else { c };
                prop_assert_eq!(b[at], a[c], "column {}", c);
            }
        }
    }

    #[test]
    fn extremes() {
        let mut q = [0i16; 4];
        assert_eq!(quantise(&[0.0, -0.0, 0.0, 0.0], &mut q, Layout::Natural), 0.0);
        assert_eq!(q, [0; 4]);
        let s = quantise(&[1.0, -3.0, f32::MIN_POSITIVE, 3.0], &mut q, Layout::Natural);
        assert_eq!(q, [10922, -32767, 0, 32767]);
        assert_eq!(s, 3.0 / 32767.0);
        for bad in [f32::NAN, f32::INFINITY, -f32::INFINITY] {
            assert!(quantise(&[1.0, bad, 2.0, 0.0], &mut q, Layout::Paired).is_nan());
            assert_eq!(q, [0; 4]);
        }
        // So small that 32767 / m overflows: zero.
        assert_eq!(quantise(&[1e-36, -2e-36, 0.0, 0.0], &mut q, Layout::Natural), 0.0);
        assert_eq!(q, [0; 4]);
        // Halves round to even: 0.5 and 1.5 steps.
        let s = quantise(&[32767.0, 0.5, 1.5, -2.5], &mut q, Layout::Natural);
        assert_eq!((s, q), (1.0, [32767, 0, 2, -2]));
    }
}
