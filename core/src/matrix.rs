//! Weight matrices borrowed from a blob, in one of three storage formats.

use half::f16;

/// How the weight matrices of a blob are stored. Arithmetic is always f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StorageFormat {
    /// IEEE single precision, 4 bytes per weight.
    F32,
    /// IEEE half precision, 2 bytes per weight.
    F16,
    /// Symmetric int8 with one f32 scale per output row: `w = q * scale[row]`.
    I8,
}

impl StorageFormat {
    /// The blob's code for this format.
    pub const fn code(self) -> u8 {
        match self {
            StorageFormat::F32 => 0,
            StorageFormat::F16 => 1,
            StorageFormat::I8 => 2,
        }
    }

    /// The format with blob code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(StorageFormat::F32),
            1 => Some(StorageFormat::F16),
            2 => Some(StorageFormat::I8),
            _ => None,
        }
    }

    /// Bytes per stored weight.
    pub const fn bytes_per_weight(self) -> usize {
        match self {
            StorageFormat::F32 => 4,
            StorageFormat::F16 => 2,
            StorageFormat::I8 => 1,
        }
    }
}

/// The stored weights of one matrix, row-major `[rows, cols]`.
#[derive(Clone, Copy, Debug)]
pub enum MatrixData<'a> {
    /// f32 weights, `rows * cols` of them.
    F32(&'a [f32]),
    /// f16 weights, `rows * cols` of them.
    F16(&'a [f16]),
    /// int8 weights (`rows * cols`) and one f32 scale per row (`rows`).
    I8 {
        /// Quantised weights.
        weights: &'a [i8],
        /// Per-row scale: the weight is `weights[r * cols + c] * scales[r]`.
        scales: &'a [f32],
    },
}

/// A `[rows, cols]` weight matrix (PyTorch `Linear` layout: `[out, in]`).
///
/// Construct it through [`Matrix::new`], which checks that the data holds
/// exactly `rows * cols` weights (and `rows` scales), so the kernels never
/// see a short slice.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    rows: usize,
    cols: usize,
    data: MatrixData<'a>,
    kernel: Kernel,
}

/// Which matrix-vector kernel a [`Linear`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kernel {
    /// The tuned kernel of the storage format ([`crate::kernels::matvec`]).
    #[default]
    Tuned,
    /// The one-accumulator reference ([`crate::kernels::matvec_naive`]), for
    /// tests and the benchmark's baseline.
    Naive,
}

impl<'a> Matrix<'a> {
    /// A matrix over `data`, or `None` when its lengths do not match `[rows, cols]`.
    pub fn new(rows: usize, cols: usize, data: MatrixData<'a>) -> Option<Self> {
        let n = rows.checked_mul(cols)?;
        let ok = match data {
            MatrixData::F32(w) => w.len() == n,
            MatrixData::F16(w) => w.len() == n,
            MatrixData::I8 { weights, scales } => weights.len() == n && scales.len() == rows,
        };
        ok.then_some(Matrix { rows, cols, data, kernel: Kernel::Tuned })
    }

    /// The same matrix, multiplied by `kernel`.
    pub fn with_kernel(self, kernel: Kernel) -> Self {
        Matrix { kernel, ..self }
    }

    /// The kernel it is multiplied by.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Output size.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input size.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The stored weights.
    pub fn data(&self) -> MatrixData<'a> {
        self.data
    }

    /// The storage format.
    pub fn format(&self) -> StorageFormat {
        match self.data {
            MatrixData::F32(_) => StorageFormat::F32,
            MatrixData::F16(_) => StorageFormat::F16,
            MatrixData::I8 { .. } => StorageFormat::I8,
        }
    }

    /// Weight at `(row, col)` as f32, or `None` out of range (for tests and tools).
    pub fn get(&self, row: usize, col: usize) -> Option<f32> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        let i = row * self.cols + col;
        match self.data {
            MatrixData::F32(w) => w.get(i).copied(),
            MatrixData::F16(w) => w.get(i).map(|x| x.to_f32()),
            MatrixData::I8 { weights, scales } => Some(f32::from(*weights.get(i)?) * *scales.get(row)?),
        }
    }
}

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
        match self.weight.kernel {
            Kernel::Tuned => crate::kernels::matvec(&self.weight, x, self.bias, y),
            Kernel::Naive => crate::kernels::matvec_naive(&self.weight, x, self.bias, y),
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
