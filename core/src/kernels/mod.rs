//! Matrix-vector kernels `y = W x + b`, one per storage format
//! (`core/KERNELS.md`).
//!
//! Each format's arithmetic is defined to the bit by its portable twin in
//! [`portable`]: a fused multiply-add chain per row for f32 and f16, and for
//! int8 an exact integer sum over int16 activations ([`quantise`]). On a
//! Cortex-M4F or M7 (`target_arch = "arm"`) [`matvec`] runs the `arm` kernels
//! (several rows per pass, `SMLAD` dual 16-bit MACs, `VFMA.F32`, `VCVTB`/`VCVTT`
//! half conversion), which compute exactly the same; everywhere else it runs
//! the twins. [`matvec_naive`] is the plain f32 reference (one unfused
//! accumulator, f32 activations) used by tests, the benchmark's baseline and
//! the export's quality comparison.
//!
//! Lengths: `x` has `cols` values, `y` and `bias` have `rows`. Shorter slices
//! are not an error here (the decoder only passes validated sizes): the kernels
//! stop at the shortest, so they can never index out of bounds.

#[cfg(target_arch = "arm")]
mod arm;
pub mod portable;
pub mod quantise;
mod scalar;

use crate::matrix::{Matrix, MatrixData};
pub use quantise::I16_MAX;
pub use scalar::{f16_to_f32_finite, fma};

/// `y = W x + bias` with the fast kernel of `w`'s storage format (bit-identical to [`matvec_portable`]).
#[inline]
pub fn matvec(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "arm")]
    arm::matvec(w, x, bias, y);
    #[cfg(not(target_arch = "arm"))]
    portable::matvec(w, x, bias, y);
}

/// Four fused dot products `rows[i] . x` (the attention's scores): each a
/// chain `acc = fma(r[c], x[c], acc)` from 0 in column order, as the f32
/// matrix kernel's rows; a row of another length than `x` gives 0.
#[inline]
pub fn dots4(rows: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    #[cfg(target_arch = "arm")]
    return arm::dots4(rows, x);
    #[cfg(not(target_arch = "arm"))]
    return portable::dots4(rows, x);
}

/// `c += w[0] v[0] + w[1] v[1] + w[2] v[2] + w[3] v[3]` element by element as
/// four fused steps in that order (the attention's weighted sum of values);
/// nothing happens unless every `v[i]` is as long as `c`.
#[inline]
pub fn accumulate4(c: &mut [f32], w: [f32; 4], v: [&[f32]; 4]) {
    #[cfg(target_arch = "arm")]
    arm::accumulate4(c, w, v);
    #[cfg(not(target_arch = "arm"))]
    portable::accumulate4(c, w, v);
}

/// `y = W x + bias` with the portable twin, on any target (the device's kernel check compares the two).
pub fn matvec_portable(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    portable::matvec(w, x, bias, y);
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

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
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

    /// The tuned and the naive kernel of an f32 or f16 matrix against f64.
    fn both_match_f64(m: &Matrix<'_>, x: &[f32], b: &[f32]) -> Result<(), TestCaseError> {
        let (rows, cols) = (m.rows(), m.cols());
        let w64: Vec<f64> = (0..rows * cols).map(|i| m.get(i / cols, i % cols).unwrap_or(0.0) as f64).collect();
        let want = reference(&w64, rows, cols, x, b);
        let mut y = std::vec![f32::NAN; rows];
        matvec(m, x, b, &mut y);
        close(&y, &want, x, &w64, cols)?;
        matvec_naive(m, x, b, &mut y);
        close(&y, &want, x, &w64, cols)
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
            both_match_f64(&m, &x, &b)?;
        }

        #[test]
        fn f16_kernels_match_f64((rows, cols, w, x, b) in case()) {
            let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let m = Matrix::new(rows, cols, MatrixData::F16(&h)).ok_or(TestCaseError::fail("shape"))?;
            both_match_f64(&m, &x, &b)?;
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
            matvec_naive(&m, &x, &b, &mut y);
            close(&y, &want, &x, &w64, cols)?;
            // int16 activations: each input is off by at most half a step, max|x| / 65534.
            matvec(&m, &x, &b, &mut y);
            let step = x.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)) / 65534.0;
            for (r, (g, e)) in y.iter().zip(&want).enumerate() {
                let wsum: f64 = (0..cols).map(|c| w64[r * cols + c].abs()).sum();
                let tol = 1e-5 * (1.0 + e.abs()) + wsum * step * 1.001;
                prop_assert!((*g as f64 - e).abs() <= tol, "row {r}: got {g}, want {e}, tol {tol}");
            }
        }

        /// The tuned kernels equal the arithmetic's definition, written out here independently.
        #[test]
        fn kernels_equal_their_definition((rows, cols, w, x, b) in case(), seed in 0u8..255) {
            let mut y = std::vec![f32::NAN; rows];
            // f32 and f16: one fused chain per row from 0, then the bias.
            let chain = |row: &mut dyn Iterator<Item = f32>| row.zip(&x).fold(0.0f32, |a, (w, x)| libm::fmaf(w, *x, a));
            let m = Matrix::new(rows, cols, MatrixData::F32(&w)).ok_or(TestCaseError::fail("shape"))?;
            matvec(&m, &x, &b, &mut y);
            for r in 0..rows {
                let want = chain(&mut w[r * cols..(r + 1) * cols].iter().copied()) + b[r];
                prop_assert_eq!(y[r].to_bits(), want.to_bits(), "f32 row {}", r);
            }
            let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let m = Matrix::new(rows, cols, MatrixData::F16(&h)).ok_or(TestCaseError::fail("shape"))?;
            matvec(&m, &x, &b, &mut y);
            for r in 0..rows {
                let want = chain(&mut h[r * cols..(r + 1) * cols].iter().map(|v| v.to_f32())) + b[r];
                prop_assert_eq!(y[r].to_bits(), want.to_bits(), "f16 row {}", r);
            }
            // int8: int16 activations by std's rounding, an i64 sum, then the scales.
            let q: Vec<i8> = w.iter().map(|&v| (v * 31.75) as i8).collect();
            let scales: Vec<f32> = (0..rows).map(|r| 0.01 + (r as f32 + seed as f32) * 1e-3).collect();
            let m = Matrix::new(rows, cols, MatrixData::I8 { weights: &q, scales: &scales })
                .ok_or(TestCaseError::fail("shape"))?;
            matvec(&m, &x, &b, &mut y);
            let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let inv = 32767.0 / max;
            let (inv, x_scale) = if max > 0.0 && inv.is_finite() { (inv, max / 32767.0) } else { (0.0, 0.0) };
            let xq: Vec<i64> = x.iter().map(|v| (v * inv).round_ties_even() as i64).collect();
            for r in 0..rows {
                let acc: i64 = (0..cols).map(|c| q[r * cols + c] as i64 * xq[c]).sum();
                let want = acc as f32 * (scales[r] * x_scale) + b[r];
                prop_assert_eq!(y[r].to_bits(), want.to_bits(), "int8 row {}", r);
            }
        }
    }

    proptest! {
        /// The attention's kernels equal their definitions, written out here.
        #[test]
        fn attention_kernels_equal_their_definition(
            (n, data) in (0usize..40).prop_flat_map(|n| (Just(n), proptest::collection::vec(-3.0f32..3.0, 9 * n + 4))),
        ) {
            let rows: [&[f32]; 4] = std::array::from_fn(|i| &data[i * n..(i + 1) * n]);
            let x = &data[4 * n..5 * n];
            let got = dots4(rows, x);
            for (r, g) in rows.iter().zip(got) {
                let want = r.iter().zip(x).fold(0.0f32, |a, (w, v)| libm::fmaf(*w, *v, a));
                prop_assert_eq!(g.to_bits(), want.to_bits());
            }
            let w = [data[9 * n], data[9 * n + 1], data[9 * n + 2], data[9 * n + 3]];
            let mut c = data[5 * n..6 * n].to_vec();
            accumulate4(&mut c, w, rows);
            for (j, cj) in c.iter().enumerate() {
                let want = (0..4).fold(data[5 * n + j], |a, i| libm::fmaf(w[i], rows[i][j], a));
                prop_assert_eq!(cj.to_bits(), want.to_bits(), "column {}", j);
            }
        }
    }

    /// The accumulator's worst case: the widest matrix, every weight and activation at its extreme.
    #[test]
    fn i8_worst_case_sum_does_not_overflow() {
        use crate::matrix::MAX_I8_COLS;
        for (w, x) in [(127i8, 1.0f32), (-127, 1.0), (127, -1.0)] {
            let weights = std::vec![w; 2 * MAX_I8_COLS];
            let m = Matrix::new(2, MAX_I8_COLS, MatrixData::I8 { weights: &weights, scales: &[1.0, 1.0] }).unwrap();
            let xs = std::vec![x; MAX_I8_COLS];
            let mut y = [0.0f32; 2];
            matvec(&m, &xs, &[0.0, 0.0], &mut y);
            let acc = MAX_I8_COLS as i64 * i64::from(w) * 32767 * x as i64;
            assert_eq!(acc.unsigned_abs(), 2_130_641_408);
            assert_eq!(y[0], acc as f32 * (1.0 / 32767.0), "w {w}, x {x}");
        }
        let weights = [0i8; 2 * (MAX_I8_COLS + 1)];
        let scales = [1.0f32; 2];
        assert!(Matrix::new(2, MAX_I8_COLS + 1, MatrixData::I8 { weights: &weights, scales: &scales }).is_none());
        let mut weights = [0i8; 8];
        weights[5] = i8::MIN;
        assert!(Matrix::new(2, 4, MatrixData::I8 { weights: &weights, scales: &scales }).is_none());
    }

    #[test]
    fn i8_non_finite_input_gives_nan_rows() {
        let weights = [1i8; 6];
        let m = Matrix::new(2, 3, MatrixData::I8 { weights: &weights, scales: &[1.0, 1.0] }).unwrap();
        let mut y = [0.0f32; 2];
        matvec(&m, &[1.0, f32::INFINITY, 0.0], &[0.0, 0.0], &mut y);
        assert!(y.iter().all(|v| v.is_nan()));
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
