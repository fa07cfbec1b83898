//! Weight storage: matrices borrowed from a blob, in one of three storage
//! formats, and the element type codes they are stored with.
//!
//! The bottom of the weight layers: `matrix` (storage) <- `kernels` (the
//! products over a [`Matrix`]) <- `linear` (a layer: matrix, bias and the
//! kernel that multiplies them) <- `blob` (which builds them from bytes).
//! Nothing here refers to the layers above.

use half::f16;

/// Element type codes of a blob section (re-exported as `blob::dtype`).
pub mod dtype {
    /// IEEE f32, little-endian.
    pub const F32: u8 = 0;
    /// IEEE f16, little-endian.
    pub const F16: u8 = 1;
    /// Signed 8-bit.
    pub const I8: u8 = 2;

    /// Bytes per element, or `None` for an unknown code.
    pub const fn size(code: u8) -> Option<u64> {
        match code {
            F32 => Some(4),
            F16 => Some(2),
            I8 => Some(1),
            _ => None,
        }
    }
}

/// How the weight matrices of a blob are stored, and so which kernel
/// multiplies them (`core/KERNELS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StorageFormat {
    /// IEEE single precision, 4 bytes per weight.
    F32,
    /// IEEE half precision, 2 bytes per weight.
    F16,
    /// Symmetric int8 with one f32 scale per output row (`w = q * scale[row]`,
    /// `q` in `-127..=127`), multiplied with int16 activations (one dynamic
    /// symmetric scale per input vector) in integer arithmetic.
    I8,
}

impl StorageFormat {
    /// The blob's code for this format (header byte 8).
    pub const fn code(self) -> u8 {
        match self {
            StorageFormat::F32 => 0,
            StorageFormat::F16 => 1,
            StorageFormat::I8 => 3,
        }
    }

    /// The format with blob code `code`, if any. Code 2, int8 weights times
    /// f32 activations, is retired (see [`StorageFormat::RETIRED_I8_F32`]).
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(StorageFormat::F32),
            1 => Some(StorageFormat::F16),
            3 => Some(StorageFormat::I8),
            _ => None,
        }
    }

    /// The storage code of int8 blobs written before int16 activations: their
    /// matrices were multiplied with f32 activations. They are refused with
    /// `BlobError::RetiredStorage` (re-export the model).
    pub const RETIRED_I8_F32: u8 = 2;

    /// The section-table dtype of this format's weight matrices.
    pub const fn dtype(self) -> u8 {
        match self {
            StorageFormat::F32 => dtype::F32,
            StorageFormat::F16 => dtype::F16,
            StorageFormat::I8 => dtype::I8,
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

/// The widest int8 matrix (input length) the int16-activation kernel takes:
/// with weights in `-127..=127` and activations in `-32767..=32767`, a row's
/// integer sum is at most `512 * 127 * 32767 = 2_130_641_408 < i32::MAX`, so the
/// 32-bit accumulator cannot overflow (asserted at compile time in `kernels::quantise`).
pub const MAX_I8_COLS: usize = 512;

/// The stored weights of one matrix, row-major `[rows, cols]`.
#[derive(Clone, Copy, Debug)]
pub enum MatrixData<'a> {
    /// f32 weights, `rows * cols` of them.
    F32(&'a [f32]),
    /// f16 weights, `rows * cols` of them.
    F16(&'a [f16]),
    /// int8 weights (`rows * cols`, each in `-127..=127`) and one f32 scale per row (`rows`).
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

/// Which matrix-vector kernel multiplies a matrix (`linear::Linear::apply`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kernel {
    /// The tuned kernel of the storage format (`kernels::matvec`).
    #[default]
    Tuned,
    /// The one-accumulator reference (`kernels::matvec_naive`), for
    /// tests and the benchmark's baseline.
    Naive,
}

impl<'a> Matrix<'a> {
    /// A matrix over `data`, or `None` when its lengths do not match `[rows, cols]`,
    /// or an int8 matrix is wider than [`MAX_I8_COLS`] or holds a `-128`.
    pub fn new(rows: usize, cols: usize, data: MatrixData<'a>) -> Option<Self> {
        let n = rows.checked_mul(cols)?;
        let ok = match data {
            MatrixData::F32(w) => w.len() == n,
            MatrixData::F16(w) => w.len() == n,
            MatrixData::I8 { weights, scales } => {
                weights.len() == n && scales.len() == rows && cols <= MAX_I8_COLS && !weights.contains(&i8::MIN)
            }
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
