//! The layer: a PyTorch `Linear` (`y = W x + b`), a [`Matrix`] from the
//! storage layer multiplied by the kernel it names from the compute layer.
//!
//! Module order: `matrix` (storage) <- `kernels` (compute) <- `linear` (layer).

use crate::kernels;
use crate::matrix::{Kernel, Matrix};

/// A PyTorch `Linear` layer: `y = W x + b`, `W [out, in]`, `b [out]`.
#[derive(Clone, Copy, Debug)]
pub struct Linear<'a> {
    /// `[out, in]`.
    pub weight: Matrix<'a>,
    /// `[out]`, always f32.
    pub bias: &'a [f32],
}

impl Linear<'_> {
    /// `y = W x + b` with the matrix's kernel.
    #[inline]
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        match self.weight.kernel() {
            Kernel::Tuned => kernels::matvec(&self.weight, x, self.bias, y),
            Kernel::Naive => kernels::matvec_naive(&self.weight, x, self.bias, y),
        }
    }

    /// The same layer, multiplied by `kernel`.
    pub fn with_kernel(self, kernel: Kernel) -> Self {
        Linear { weight: self.weight.with_kernel(kernel), ..self }
    }

    /// Multiply-accumulates of one application (`out * in`).
    pub fn macs(&self) -> usize {
        self.weight.rows() * self.weight.cols()
    }
}
