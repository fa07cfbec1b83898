//! Row-major f32 matrix products behind one bounds-checked safe call, through
//! one of two maintained SIMD gemm crates with runtime CPU feature detection:
//! `gemm` (faer's; the default: it packs into per-thread buffers and is
//! faster on this model's small, skinny products, see README) or `matrixmultiply`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which gemm implementation [`matmul_strided`] calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GemmImpl {
    /// The `gemm` crate.
    #[default]
    Gemm,
    /// The `matrixmultiply` crate.
    MatrixMultiply,
}

thread_local! {
    static IMPL: Cell<GemmImpl> = const { Cell::new(GemmImpl::Gemm) };
}

/// Run `f` with [`matmul`] on this thread calling `which` (the CPU backend's
/// choice, set on each of its worker threads for the length of a pass).
pub fn with_impl<T>(which: GemmImpl, f: impl FnOnce() -> T) -> T {
    let before = IMPL.with(|c| c.replace(which));
    let out = f();
    IMPL.with(|c| c.set(before));
    out
}

/// The gemm implementation [`matmul`] calls on this thread.
pub fn current_impl() -> GemmImpl {
    IMPL.with(|c| c.get())
}

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
    let lda = if op_a == Op::N { k } else { m };
    let ldb = if op_b == Op::N { n } else { k };
    let beta = if accumulate { 1.0 } else { 0.0 };
    matmul_strided(
        Strided { data: a, op: op_a, ld: lda },
        Strided { data: b, op: op_b, ld: ldb },
        c,
        n,
        m,
        k,
        n,
        1.0,
        beta,
    );
}

/// A row-major operand whose rows are `ld` elements apart (a view into a wider matrix).
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a> {
    /// Elements from the operand's first one.
    pub data: &'a [f32],
    /// As stored or transposed.
    pub op: Op,
    /// Row stride of the stored matrix.
    pub ld: usize,
}

/// `C = alpha A' B' + beta C` on strided views: `C` rows `ldc` apart.
///
/// # Panics
/// If a view is too short for its shape and stride: a caller bug.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    ldc: usize,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The last element each view addresses must be inside it.
    let extent = |rows: usize, cols: usize, ld: usize| (rows - 1) * ld + cols;
    assert!(c.len() >= extent(m, n, ldc) && ldc >= n, "gemm output too short");
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].iter_mut().for_each(|x| *x *= beta);
        }
        return;
    }
    let ((rsa, csa), (ra, ca)) = match a.op {
        Op::N => ((a.ld, 1), (m, k)),
        Op::T => ((1, a.ld), (k, m)),
    };
    let ((rsb, csb), (rb, cb)) = match b.op {
        Op::N => ((b.ld, 1), (k, n)),
        Op::T => ((1, b.ld), (n, k)),
    };
    assert!(a.data.len() >= extent(ra, ca, a.ld) && a.ld >= ca, "gemm operand A too short");
    assert!(b.data.len() >= extent(rb, cb, b.ld) && b.ld >= cb, "gemm operand B too short");
    let started = PROFILE.load(Ordering::Relaxed).then(std::time::Instant::now);
    // SAFETY (both calls): the asserts above guarantee that every element the
    // strides address lies inside its slice; C does not alias A or B (distinct
    // borrows). `gemm` computes dst := alpha' dst + beta' lhs rhs.
    match current_impl() {
        GemmImpl::Gemm => unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                ldc as isize,
                beta != 0.0,
                a.data.as_ptr(),
                csa as isize,
                rsa as isize,
                b.data.as_ptr(),
                csb as isize,
                rsb as isize,
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        },
        GemmImpl::MatrixMultiply => unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.data.as_ptr(),
                rsa as isize,
                csa as isize,
                b.data.as_ptr(),
                rsb as isize,
                csb as isize,
                beta,
                c.as_mut_ptr(),
                ldc as isize,
                1,
            )
        },
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
        fn matches_naive(imp in prop::sample::select(vec![GemmImpl::Gemm, GemmImpl::MatrixMultiply]), m in 1usize..9, k in 0usize..9, n in 1usize..9, ta in any::<bool>(), tb in any::<bool>(), acc in any::<bool>()) {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.1).collect();
            let at = |i: usize, l: usize| if ta { a[l * m + i] } else { a[i * k + l] };
            let bt = |l: usize, j: usize| if tb { b[j * k + l] } else { b[l * n + j] };
            let mut c = c0.clone();
            with_impl(imp, || {
                assert_eq!(current_impl(), imp);
                matmul(&mut c, &a, if ta { Op::T } else { Op::N }, &b, if tb { Op::T } else { Op::N }, m, k, n, acc)
            });
            prop_assert_eq!(current_impl(), GemmImpl::Gemm);
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
