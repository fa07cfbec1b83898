//! Writing `LFW1` blobs (feature `std`): quantises the matrices, lays out the
//! sections 16-byte aligned, and seals both CRCs.

use super::parse::align_up;
use super::{crc32, dtype, BlobError, Dims, SectionId, Tensor, TENSOR_COUNT};
use super::{ENTRY_LEN, HEADER_LEN, HEADS, MAGIC, VERSION, VERSION_1};
use crate::matrix::StorageFormat;
use crate::schedule::InputSchedule;
use half::f16;
use std::vec::Vec;

/// Why a blob could not be written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WriteError {
    /// The dimensions break the model's rules.
    Dims(BlobError),
    /// A tensor given with the wrong number of elements.
    WrongLength {
        /// The tensor.
        tensor: Tensor,
        /// Elements its shape needs.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// A tensor was never given.
    Missing {
        /// The tensor.
        tensor: Tensor,
    },
    /// A NaN or infinite value, or one that overflows f16.
    NonFinite {
        /// The tensor.
        tensor: Tensor,
        /// Element index.
        index: usize,
    },
    /// `gamma` or `eps` out of range.
    BadScalar {
        /// `"gamma"` or `"eps"`.
        field: &'static str,
    },
    /// The blob would exceed 4 GiB.
    TooLarge,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::Dims(e) => write!(f, "{e}"),
            WriteError::WrongLength { tensor, expected, found } => {
                write!(f, "tensor {} has {found} elements, its shape needs {expected}", tensor.pytorch_name())
            }
            WriteError::Missing { tensor } => write!(f, "tensor {} was not given", tensor.pytorch_name()),
            WriteError::NonFinite { tensor, index } => {
                write!(f, "tensor {} element {index} is not finite in the storage format", tensor.pytorch_name())
            }
            WriteError::BadScalar { field } => write!(f, "{field} is out of range"),
            WriteError::TooLarge => write!(f, "the blob would exceed 4 GiB"),
        }
    }
}

impl core::error::Error for WriteError {}

/// A section ready to be placed: id, dtype code, `[rows, cols]`, bytes.
type PendingSection = (SectionId, u8, (u32, u32), Vec<u8>);

/// Builds an `LFW1` blob from f32 tensors.
#[derive(Clone, Debug)]
pub struct BlobWriter {
    dims: Dims,
    storage: StorageFormat,
    schedule: InputSchedule,
    gamma: f32,
    eps: f32,
    anchor_every: u8,
    tensors: [Option<Vec<f32>>; TENSOR_COUNT],
}

/// Symmetric per-row int8 quantisation of a `[rows, cols]` matrix: the scale
/// is `max |w| / 127` (0 for an all-zero row), `q = round(w / scale)`.
pub fn quantize_i8(w: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks(cols.max(1)).take(rows) {
        let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = max / 127.0;
        scales.push(scale);
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        q.extend(row.iter().map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

impl BlobWriter {
    /// A writer for a model of sizes `dims`, storing matrices as `storage`.
    pub fn new(
        dims: Dims,
        storage: StorageFormat,
        schedule: InputSchedule,
        gamma: f32,
        eps: f32,
    ) -> Result<Self, WriteError> {
        dims.validate().map_err(WriteError::Dims)?;
        dims.validate_storage(storage).map_err(WriteError::Dims)?;
        if !(0.0..=1.0).contains(&gamma) {
            return Err(WriteError::BadScalar { field: "gamma" });
        }
        if !(eps > 0.0 && eps <= 1.0) {
            return Err(WriteError::BadScalar { field: "eps" });
        }
        Ok(BlobWriter { dims, storage, schedule, gamma, eps, anchor_every: 0, tensors: Default::default() })
    }

    /// Re-anchor the latent state every `bins` bins (`core/CONTINUOUS.md`);
    /// 0 (the default) never re-anchors and writes a version-1 blob.
    pub fn anchor_every(mut self, bins: u8) -> Self {
        self.anchor_every = bins;
        self
    }

    /// Set a tensor's values (row-major, f32, shape [`Tensor::shape`]).
    pub fn tensor(&mut self, tensor: Tensor, values: &[f32]) -> Result<&mut Self, WriteError> {
        let (rows, cols) = tensor.shape(&self.dims);
        let expected = rows as usize * cols as usize;
        if values.len() != expected {
            return Err(WriteError::WrongLength { tensor, expected, found: values.len() });
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(WriteError::NonFinite { tensor, index });
        }
        self.tensors[tensor.index()] = Some(values.to_vec());
        Ok(self)
    }

    /// Lay out and seal the blob.
    pub fn finish(&self) -> Result<Vec<u8>, WriteError> {
        let mut sections: Vec<PendingSection> = Vec::new();
        for t in Tensor::ALL {
            let values = self.tensors[t.index()].as_ref().ok_or(WriteError::Missing { tensor: t })?;
            let (rows, cols) = t.shape(&self.dims);
            if !t.is_quantized() {
                sections.push((SectionId::Values(t), dtype::F32, (rows, cols), f32_bytes(values)));
                continue;
            }
            match self.storage {
                StorageFormat::F32 => {
                    sections.push((SectionId::Values(t), dtype::F32, (rows, cols), f32_bytes(values)))
                }
                StorageFormat::F16 => {
                    let mut bytes = Vec::with_capacity(values.len() * 2);
                    for (index, v) in values.iter().enumerate() {
                        let h = f16::from_f32(*v);
                        if !h.is_finite() {
                            return Err(WriteError::NonFinite { tensor: t, index });
                        }
                        bytes.extend_from_slice(&h.to_le_bytes());
                    }
                    sections.push((SectionId::Values(t), dtype::F16, (rows, cols), bytes));
                }
                StorageFormat::I8 => {
                    let (q, scales) = quantize_i8(values, rows as usize, cols as usize);
                    let bytes = q.iter().map(|&x| x as u8).collect();
                    sections.push((SectionId::Values(t), dtype::I8, (rows, cols), bytes));
                    sections.push((SectionId::Scales(t), dtype::F32, (rows, 1), f32_bytes(&scales)));
                }
            }
        }

        let table_end = HEADER_LEN + sections.len() * ENTRY_LEN;
        let mut offset = align_up(table_end);
        let mut table = Vec::with_capacity(sections.len() * ENTRY_LEN);
        let mut placed = Vec::with_capacity(sections.len());
        for (id, dt, (rows, cols), bytes) in &sections {
            table.extend_from_slice(&id.code().to_le_bytes());
            table.push(*dt);
            table.push(0);
            table.extend_from_slice(&rows.to_le_bytes());
            table.extend_from_slice(&cols.to_le_bytes());
            let off = u32::try_from(offset).map_err(|_| WriteError::TooLarge)?;
            let len = u32::try_from(bytes.len()).map_err(|_| WriteError::TooLarge)?;
            table.extend_from_slice(&off.to_le_bytes());
            table.extend_from_slice(&len.to_le_bytes());
            table.extend_from_slice(&[0; 4]);
            placed.push((offset, bytes));
            offset = align_up(offset + bytes.len());
        }
        let total = placed.last().map_or(align_up(table_end), |(o, b)| o + b.len());
        let total_u32 = u32::try_from(total).map_err(|_| WriteError::TooLarge)?;

        let mut blob = vec_zeroed(total);
        blob[HEADER_LEN..table_end].copy_from_slice(&table);
        for (off, bytes) in placed {
            blob[off..off + bytes.len()].copy_from_slice(bytes);
        }
        let d = &self.dims;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&MAGIC);
        // Version 1 where nothing of version 2 is used, so such blobs stay byte-identical.
        let version = if self.anchor_every == 0 { VERSION_1 } else { VERSION };
        header.extend_from_slice(&version.to_le_bytes());
        header.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        header.extend_from_slice(&[self.storage.code(), self.schedule.code(), HEADS, self.anchor_every]);
        for v in [d.n_in, d.hidden, d.d_model, d.ff, d.n_out, d.window, d.n_beh] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        header.extend_from_slice(&self.gamma.to_le_bytes());
        header.extend_from_slice(&self.eps.to_le_bytes());
        header.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        header.extend_from_slice(&total_u32.to_le_bytes());
        header.extend_from_slice(&crc32(&blob[HEADER_LEN..]).to_le_bytes());
        header.extend_from_slice(&crc32(&header).to_le_bytes());
        blob[..HEADER_LEN].copy_from_slice(&header);
        Ok(blob)
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn vec_zeroed(n: usize) -> Vec<u8> {
    std::vec![0u8; n]
}

/// Recompute both CRCs of a blob in place (for tools and tests that patch fields).
pub fn reseal(blob: &mut [u8]) {
    if blob.len() < HEADER_LEN {
        return;
    }
    let body = crc32(&blob[HEADER_LEN..]);
    blob[56..60].copy_from_slice(&body.to_le_bytes());
    let head = crc32(&blob[..60]);
    blob[60..64].copy_from_slice(&head.to_le_bytes());
}
