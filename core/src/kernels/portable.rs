//! The portable twins: each storage format's arithmetic written plainly, one
//! row at a time. They define the result to the bit; the Cortex-M kernels in
//! `arm` compute exactly the same (the host runs these).
//!
//! - f32: per row one fused chain `acc = fma(w[c], x[c], acc)` over `c = 0..cols`
//!   from `acc = 0`, then `y = acc + b`.
//! - f16: the same chain over each weight converted exactly to f32.
//! - int8: `x` quantised to int16 with one dynamic scale ([`quantise`]), the
//!   exact integer sum `acc = sum w[c] * q[c]` (i32, cannot overflow:
//!   [`MAX_I8_COLS`]), then `y = f32(acc) * (row_scale * x_scale) + b`.

use super::quantise::{quantise, Activations, Layout};
use super::scalar::{f16_to_f32_finite, fma, rows};
use crate::matrix::{Matrix, MatrixData, MAX_I8_COLS};
use half::f16;

/// `y = W x + bias` by the twins' definition (see the module).
pub fn matvec(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    let cols = w.cols();
    match w.data() {
        MatrixData::F32(data) => {
            for ((row, yi), bi) in rows(data, cols).zip(y.iter_mut()).zip(bias) {
                *yi = dot_f32(row, x, 0.0) + bi;
            }
        }
        MatrixData::F16(data) => {
            for ((row, yi), bi) in rows(data, cols).zip(y.iter_mut()).zip(bias) {
                *yi = dot_f16(row, x, 0.0) + bi;
            }
        }
        MatrixData::I8 { weights, scales } => {
            let mut q = Activations::<MAX_I8_COLS>::new();
            let x_scale = quantise(x.get(..cols).unwrap_or(x), &mut q.0, Layout::Natural);
            let q = q.0.get(..cols).unwrap_or(&[]);
            for (((row, s), yi), bi) in rows(weights, cols).zip(scales).zip(y.iter_mut()).zip(bias) {
                *yi = dequantise(dot_i8(row, q, 0), *s, x_scale, *bi);
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

/// Four fused dot products `rows[i] . x` (each a chain from 0 in column order;
/// every row as long as `x`, else its result is 0).
pub fn dots4(rows: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    rows.map(|r| if r.len() == x.len() { dot_f32(r, x, 0.0) } else { 0.0 })
}

/// `c[j] = fma(w[3], v[3][j], fma(w[2], v[2][j], fma(w[1], v[1][j], fma(w[0], v[0][j], c[j]))))`
/// for every `j` (the four rows, each as long as `c`, else nothing is done).
pub fn accumulate4(c: &mut [f32], w: [f32; 4], v: [&[f32]; 4]) {
    if v.iter().any(|r| r.len() != c.len()) {
        return;
    }
    for (j, cj) in c.iter_mut().enumerate() {
        for (wi, vi) in w.iter().zip(v) {
            *cj = fma(*wi, vi.get(j).copied().unwrap_or(0.0), *cj);
        }
    }
}

/// Continue the fused chain `acc` over `w` and `x`.
#[inline(always)]
pub(super) fn dot_f32(w: &[f32], x: &[f32], acc: f32) -> f32 {
    w.iter().zip(x).fold(acc, |acc, (w, x)| fma(*w, *x, acc))
}

/// Continue the fused chain `acc` over f16 `w` and `x`.
#[inline(always)]
pub(super) fn dot_f16(w: &[f16], x: &[f32], acc: f32) -> f32 {
    w.iter().zip(x).fold(acc, |acc, (w, x)| fma(f16_to_f32_finite(*w), *x, acc))
}

/// Continue the integer sum `acc` over int8 `w` and int16 `q`.
#[inline(always)]
pub(super) fn dot_i8(w: &[i8], q: &[i16], acc: i32) -> i32 {
    // Wrapping only to keep a panic path out of debug builds: the sum is bounded (MAX_I8_COLS).
    w.iter().zip(q).fold(acc, |acc, (w, q)| acc.wrapping_add(i32::from(*w) * i32::from(*q)))
}

/// An int8 row's output from its integer sum.
#[inline(always)]
pub(super) fn dequantise(acc: i32, row_scale: f32, x_scale: f32, bias: f32) -> f32 {
    acc as f32 * (row_scale * x_scale) + bias
}
