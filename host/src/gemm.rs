//! Row-major f32 matrix products through `matrixmultiply` (a maintained SIMD
//! gemm with runtime CPU feature detection), behind a bounds-checked safe call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static PROFILE: AtomicBool = AtomicBool::new(false);
static GEMM_NANOS: AtomicU64 = AtomicU64::new(0);

/// Count the wall time spent inside [`matmul`] (summed over threads) from now on.
pub fn set_profiling(on: bool) {
    PROFILE.store(on, Ordering::Relaxed);
}

/// Nanoseconds spent in [`matmul`] since the last call (all threads summed).
pub fn take_gemm_nanos() -> u64 {
    GEMM_NANOS.swap(0, Ordering::Relaxed)
}

/// How an operand is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored (row-major).
    N,
    /// Use its transpose.
    T,
}

/// `C [m, n] = A' [m, k] * B' [k, n] + (accumulate ? C : 0)` where `A'` is `A`
/// (stored `[m, k]`) or `A^T` (stored `[k, m]`), likewise `B'`; all row-major
/// and contiguous.
///
/// # Panics
/// If a slice is shorter than its shape: a caller bug, never data-dependent.
#[allow(clippy::too_many_arguments)]
pub fn matmul(c: &mut [f32], a: &[f32], op_a: Op, b: &[f32], op_b: Op, m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "gemm operand too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let (rsa, csa) = match op_a {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    let (rsb, csb) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    let started = PROFILE.load(Ordering::Relaxed).then(std::time::Instant::now);
    // SAFETY: the assert above guarantees that every element addressed by the
    // strides, (m-1)*rs + (k-1)*cs etc., lies inside the slices; C does not
    // alias A or B (distinct borrows).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    if let Some(t0) = started {
        GEMM_NANOS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Add `bias [n]` to every row of `c [rows, n]`.
pub fn add_bias(c: &mut [f32], bias: &[f32]) {
    if bias.is_empty() {
        return;
    }
    for row in c.chunks_exact_mut(bias.len()) {
        for (x, b) in row.iter_mut().zip(bias) {
            *x += b;
        }
    }
}

/// `out [n] += column sums of g [rows, n]` (a bias gradient).
pub fn add_column_sums(out: &mut [f32], g: &[f32]) {
    if out.is_empty() {
        return;
    }
    for row in g.chunks_exact(out.len()) {
        for (o, x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_naive(m in 1usize..9, k in 0usize..9, n in 1usize..9, ta in any::<bool>(), tb in any::<bool>(), acc in any::<bool>()) {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.1).collect();
            let at = |i: usize, l: usize| if ta { a[l * m + i] } else { a[i * k + l] };
            let bt = |l: usize, j: usize| if tb { b[j * k + l] } else { b[l * n + j] };
            let mut c = c0.clone();
            matmul(&mut c, &a, if ta { Op::T } else { Op::N }, &b, if tb { Op::T } else { Op::N }, m, k, n, acc);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|l| at(i, l) as f64 * bt(l, j) as f64).sum::<f64>()
                        + if acc { c0[i * n + j] as f64 } else { 0.0 };
                    prop_assert!((c[i * n + j] as f64 - want).abs() < 1e-5);
                }
            }
        }
    }
}
