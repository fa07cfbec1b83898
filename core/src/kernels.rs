//! Matrix-vector kernels, one per storage format: `y = W x + b`.
//!
//! Written for a Cortex-M: each row is read once, front to back, into four
//! independent f32 accumulators (so the FPU pipeline is not stalled on one
//! dependency chain), then scaled (int8) and biased. [`matvec_naive`] is the
//! one-accumulator reference used by tests and benchmarks.
//!
//! Lengths: `x` has `cols` values, `y` and `bias` have `rows`. Shorter slices
//! are not an error here (the decoder only passes validated sizes): the kernels
//! stop at the shortest, so they can never index out of bounds.

use crate::matrix::{Matrix, MatrixData};
use half::f16;

/// `y = W x + bias` with the tuned kernel of `w`'s storage format.
pub fn matvec(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    let cols = w.cols();
    match w.data() {
        MatrixData::F32(data) => {
            // Two rows per pass share every load of `x`; each row sums in the
            // same order as `dot_f32`, so the result is the same to the bit.
            let pairs = data.len() / cols.max(1) / 2;
            let (paired, rest) = data.split_at_checked(pairs * 2 * cols).unwrap_or((&[], data));
            let (y_pairs, y_rest) = y.split_at_mut(y.len().min(pairs * 2));
            let (b_pairs, b_rest) = bias.split_at(bias.len().min(pairs * 2));
            for ((two, ys), bs) in
                rows(paired, 2 * cols).zip(y_pairs.as_chunks_mut::<2>().0).zip(b_pairs.as_chunks::<2>().0)
            {
                let (r0, r1) = two.split_at(two.len() / 2);
                let (d0, d1) = dot2_f32(r0, r1, x);
                ys[0] = d0 + bs[0];
                ys[1] = d1 + bs[1];
            }
            for ((row, yi), bi) in rows(rest, cols).zip(y_rest.iter_mut()).zip(b_rest) {
                *yi = dot_f32(row, x) + bi;
            }
        }
        MatrixData::F16(data) => {
            for ((row, yi), bi) in rows(data, cols).zip(y.iter_mut()).zip(bias) {
                *yi = dot_f16(row, x) + bi;
            }
        }
        MatrixData::I8 { weights, scales } => {
            let rows = rows(weights, cols).zip(scales);
            for (((row, scale), yi), bi) in rows.zip(y.iter_mut()).zip(bias) {
                *yi = dot_i8(row, x) * scale + bi;
            }
        }
    }
    if cols == 0 {
        // A [rows, 0] matrix maps everything to its bias.
        for (yi, bi) in y.iter_mut().zip(bias) {
            *yi = *bi;
        }
    }
}

/// The rows of a row-major matrix, front to back.
///
/// On the device, [`Rows`]: `chunks_exact` without its chunk-size assertion,
/// an unreachable panic path the firmware's `panic-never` build must not
/// link. On the host, `chunks_exact` itself, whose iterator lets the int8
/// kernel vectorise (measured 94 us per step against 231 us). Both hand the
/// same rows to the same dot products, so host and device stay bit-identical.
#[cfg(target_os = "none")]
fn rows<T>(data: &[T], cols: usize) -> Rows<'_, T> {
    Rows { rest: data, cols }
}

/// See the device version.
#[cfg(not(target_os = "none"))]
fn rows<T>(data: &[T], cols: usize) -> core::slice::ChunksExact<'_, T> {
    data.chunks_exact(cols.max(1))
}

/// `chunks_exact` without the assertion (see [`rows`]).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
struct Rows<'a, T> {
    rest: &'a [T],
    cols: usize,
}

impl<'a, T> Iterator for Rows<'a, T> {
    type Item = &'a [T];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [T]> {
        if self.cols == 0 {
            return None;
        }
        let (row, tail) = self.rest.split_at_checked(self.cols)?;
        self.rest = tail;
        Some(row)
    }
}

/// Reference `y = W x + bias`: one accumulator per row, element by element,
/// weights dequantised with `half`'s own conversion.
pub fn matvec_naive(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    let cols = w.cols();
    for (r, (yi, bi)) in y.iter_mut().zip(bias).enumerate().take(w.rows()) {
        let span = r * cols..(r + 1) * cols;
        let mut acc = 0.0f32;
        match w.data() {
            MatrixData::F32(d) => {
                for (a, b) in d.get(span).unwrap_or(&[]).iter().zip(x) {
                    acc += a * b;
                }
            }
            MatrixData::F16(d) => {
                for (a, b) in d.get(span).unwrap_or(&[]).iter().zip(x) {
                    acc += a.to_f32() * b;
                }
            }
            MatrixData::I8 { weights, scales } => {
                let scale = scales.get(r).copied().unwrap_or(0.0);
                for (a, b) in weights.get(span).unwrap_or(&[]).iter().zip(x) {
                    acc += f32::from(*a) * scale * b;
                }
            }
        }
        *yi = acc + bi;
    }
}

/// f16 bits to f32 for finite values (normal, subnormal, zero), branch-free:
/// shift the exponent and mantissa into f32 position, then rescale the
/// exponent bias (15 to 127) by an exact multiplication with `2^112`.
/// Infinities and NaN never reach a kernel (blobs reject them).
#[inline(always)]
pub fn f16_to_f32_finite(h: f16) -> f32 {
    const BIAS_FIX: f32 = f32::from_bits(0x7780_0000); // 2^112
    let bits = u32::from(h.to_bits());
    // Sign to bit 31, exponent and mantissa to bits 13..=27; the product keeps the sign.
    f32::from_bits(((bits & 0x8000) << 16) | ((bits & 0x7fff) << 13)) * BIAS_FIX
}

#[inline]
fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let (wc, wr) = w.as_chunks::<4>();
    let (xc, xr) = x.as_chunks::<4>();
    let mut acc = [0.0f32; 4];
    for (a, b) in wc.iter().zip(xc) {
        acc[0] += a[0] * b[0];
        acc[1] += a[1] * b[1];
        acc[2] += a[2] * b[2];
        acc[3] += a[3] * b[3];
    }
    let mut tail = 0.0f32;
    for (a, b) in wr.iter().zip(xr) {
        tail += a * b;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// f16 row dot: each weight widened in registers by [`f16_to_f32_finite`]
/// (a few integer operations and one multiply, no memory round trip), four
/// independent accumulators as for f32.
/// [`dot_f32`] of two rows at once, each summed in exactly `dot_f32`'s order.
#[inline]
fn dot2_f32(w0: &[f32], w1: &[f32], x: &[f32]) -> (f32, f32) {
    let (c0, t0) = w0.as_chunks::<4>();
    let (c1, t1) = w1.as_chunks::<4>();
    let (xc, xr) = x.as_chunks::<4>();
    let (mut a, mut b) = ([0.0f32; 4], [0.0f32; 4]);
    for ((p, q), v) in c0.iter().zip(c1).zip(xc) {
        a[0] += p[0] * v[0];
        a[1] += p[1] * v[1];
        a[2] += p[2] * v[2];
        a[3] += p[3] * v[3];
        b[0] += q[0] * v[0];
        b[1] += q[1] * v[1];
        b[2] += q[2] * v[2];
        b[3] += q[3] * v[3];
    }
    let (mut ta, mut tb) = (0.0f32, 0.0f32);
    for ((p, q), v) in t0.iter().zip(t1).zip(xr) {
        ta += p * v;
        tb += q * v;
    }
    ((a[0] + a[1]) + (a[2] + a[3]) + ta, (b[0] + b[1]) + (b[2] + b[3]) + tb)
}

#[inline]
fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    let (wc, wr) = w.as_chunks::<4>();
    let (xc, xr) = x.as_chunks::<4>();
    let mut acc = [0.0f32; 4];
    for (a, b) in wc.iter().zip(xc) {
        acc[0] += f16_to_f32_finite(a[0]) * b[0];
        acc[1] += f16_to_f32_finite(a[1]) * b[1];
        acc[2] += f16_to_f32_finite(a[2]) * b[2];
        acc[3] += f16_to_f32_finite(a[3]) * b[3];
    }
    let mut tail = 0.0f32;
    for (a, b) in wr.iter().zip(xr) {
        tail += f16_to_f32_finite(*a) * b;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[inline]
fn dot_i8(w: &[i8], x: &[f32]) -> f32 {
    let (wc, wr) = w.as_chunks::<4>();
    let (xc, xr) = x.as_chunks::<4>();
    let mut acc = [0.0f32; 4];
    for (a, b) in wc.iter().zip(xc) {
        acc[0] += f32::from(a[0]) * b[0];
        acc[1] += f32::from(a[1]) * b[1];
        acc[2] += f32::from(a[2]) * b[2];
        acc[3] += f32::from(a[3]) * b[3];
    }
    let mut tail = 0.0f32;
    for (a, b) in wr.iter().zip(xr) {
        tail += f32::from(*a) * b;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// `W x + b` in f64 from the dequantised weights, written out independently.
    fn reference(w: &[f64], rows: usize, cols: usize, x: &[f32], b: &[f32]) -> Vec<f64> {
        (0..rows)
            .map(|r| {
                let dot: f64 = (0..cols).map(|c| w[r * cols + c] * x[c] as f64).sum();
                dot + b[r] as f64
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f64], x: &[f32], w: &[f64], cols: usize) -> Result<(), TestCaseError> {
        for (r, (g, e)) in got.iter().zip(want).enumerate() {
            // f32 accumulation error bound: ~ cols * eps * sum |w x| (+ bias).
            let mag: f64 = (0..cols).map(|c| (w[r * cols + c] * x[c] as f64).abs()).sum();
            let tol = 1e-6 + 4.0 * (cols as f64 + 2.0) * f32::EPSILON as f64 * (mag + e.abs());
            prop_assert!((*g as f64 - e).abs() <= tol, "row {r}: got {g}, want {e}, tol {tol}");
        }
        Ok(())
    }

    fn case() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<f32>, Vec<f32>)> {
        (1usize..24, 0usize..40).prop_flat_map(|(rows, cols)| {
            (
                Just(rows),
                Just(cols),
                proptest::collection::vec(-4.0f32..4.0, rows * cols),
                proptest::collection::vec(-10.0f32..10.0, cols),
                proptest::collection::vec(-1.0f32..1.0, rows),
            )
        })
    }

    proptest! {
        #[test]
        fn f32_kernels_match_f64((rows, cols, w, x, b) in case()) {
            let m = Matrix::new(rows, cols, MatrixData::F32(&w)).ok_or(TestCaseError::fail("shape"))?;
            let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let want = reference(&w64, rows, cols, &x, &b);
            let mut y = std::vec![f32::NAN; rows];
            matvec(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
            matvec_naive(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
        }

        #[test]
        fn f16_kernels_match_f64((rows, cols, w, x, b) in case()) {
            let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let m = Matrix::new(rows, cols, MatrixData::F16(&h)).ok_or(TestCaseError::fail("shape"))?;
            let w64: Vec<f64> = h.iter().map(|v| v.to_f64()).collect();
            let want = reference(&w64, rows, cols, &x, &b);
            let mut y = std::vec![f32::NAN; rows];
            matvec(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
            matvec_naive(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
        }

        #[test]
        fn i8_kernels_match_f64((rows, cols, w, x, b) in case(), seed in 0u8..255) {
            let q: Vec<i8> = w.iter().map(|&v| (v * 31.0) as i8).collect();
            let scales: Vec<f32> = (0..rows).map(|r| 0.01 + (r as f32 + seed as f32) * 1e-3).collect();
            let m = Matrix::new(rows, cols, MatrixData::I8 { weights: &q, scales: &scales })
                .ok_or(TestCaseError::fail("shape"))?;
            let w64: Vec<f64> = (0..rows * cols).map(|i| q[i] as f64 * scales[i / cols.max(1)] as f64).collect();
            let want = reference(&w64, rows, cols, &x, &b);
            let mut y = std::vec![f32::NAN; rows];
            matvec(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
            matvec_naive(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_finite_value() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            if h.is_finite() {
                assert_eq!(f16_to_f32_finite(h).to_bits(), h.to_f32().to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn short_slices_never_panic() {
        let w = [1.0f32; 12];
        let m = Matrix::new(3, 4, MatrixData::F32(&w)).unwrap();
        let mut y = [0.0f32; 2];
        matvec(&m, &[1.0, 2.0], &[0.0], &mut y);
        matvec_naive(&m, &[1.0, 2.0], &[0.0], &mut y);
        assert!(Matrix::new(3, 5, MatrixData::F32(&w)).is_none());
    }
}
