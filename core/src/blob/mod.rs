//! The `LFW1` weight blob: a validated, zero-copy view of a trained model.
//!
//! The byte layout is specified in `core/FORMAT.md`. [`Blob::parse`] checks
//! everything (magic, version, both CRCs, dimensions, every section's id,
//! dtype, shape, length, bounds, alignment, overlap and finiteness) before any
//! weight is used; the [`writer`] (feature `std`) produces the format.

mod error;
mod header;
mod parse;
mod tensor;
#[cfg(feature = "std")]
pub mod writer;

pub use error::BlobError;
pub use header::{peek_header, RawHeader};
pub use parse::{Blob, SectionData};
pub use tensor::{SectionId, Tensor, SCALE_FLAG, TENSOR_COUNT};
#[cfg(feature = "std")]
pub use writer::{BlobWriter, WriteError};

use crate::matrix::StorageFormat;
use crate::schedule::InputSchedule;

/// The four magic bytes.
pub const MAGIC: [u8; 4] = *b"LFW1";
/// The newest format version this build reads and writes (2: header byte 11
/// is the re-anchor period).
pub const VERSION: u16 = 2;
/// The first version (byte 11 reserved, 0), still read, and written when no
/// version-2 field is used.
pub const VERSION_1: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Bytes of one section-table entry.
pub const ENTRY_LEN: usize = 24;
/// Alignment of every section's offset.
pub const SECTION_ALIGN: usize = 16;
/// Most entries a table may have (every tensor plus a scale per matrix).
pub const MAX_SECTIONS: usize = 2 * TENSOR_COUNT;
/// Attention heads the format supports.
pub const HEADS: u8 = 2;

/// Element type codes of a section (defined with the storage formats).
pub use crate::matrix::dtype;

/// One model dimension, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dim {
    /// Held-in neurons read by the encoder.
    NIn,
    /// Latent size `H`.
    Hidden,
    /// Decoder width `D = 3H`.
    DModel,
    /// Feed-forward width.
    Ff,
    /// Neurons predicted.
    NOut,
    /// Causal attention window `W`, in bins.
    Window,
    /// Behaviour dimensions decoded (velocity components).
    NBeh,
}

/// The model's sizes as recorded in a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dims {
    /// Held-in neurons `N_in` (encoder input).
    pub n_in: u32,
    /// Latent size `H`.
    pub hidden: u32,
    /// Decoder width `D = 3H`.
    pub d_model: u32,
    /// Feed-forward width `FF`.
    pub ff: u32,
    /// Neurons predicted `N_out` (held-in first, then held-out).
    pub n_out: u32,
    /// Causal window `W` in bins.
    pub window: u32,
    /// Behaviour dimensions `N_BEH`.
    pub n_beh: u32,
}

impl Dims {
    /// Each dimension with its name, in header order.
    pub const fn fields(&self) -> [(Dim, u32); 7] {
        [
            (Dim::NIn, self.n_in),
            (Dim::Hidden, self.hidden),
            (Dim::DModel, self.d_model),
            (Dim::Ff, self.ff),
            (Dim::NOut, self.n_out),
            (Dim::Window, self.window),
            (Dim::NBeh, self.n_beh),
        ]
    }

    /// Check what `storage` adds to the rules: an int8 model's matrices take
    /// at most [`MAX_I8_COLS`](crate::matrix::MAX_I8_COLS) inputs (`n_in`, `H`,
    /// `D`, `ff`), the int16-activation kernel's overflow bound.
    pub fn validate_storage(&self, storage: crate::StorageFormat) -> Result<(), BlobError> {
        if storage != crate::StorageFormat::I8 {
            return Ok(());
        }
        for (dim, value) in self.fields() {
            let is_input = matches!(dim, Dim::NIn | Dim::Hidden | Dim::DModel | Dim::Ff);
            if is_input && value as usize > crate::matrix::MAX_I8_COLS {
                return Err(BlobError::Int8TooWide { dim, value });
            }
        }
        Ok(())
    }

    /// Check the model's rules: nonzero sizes (but `N_BEH` may be 0),
    /// `H % 4 == 0`, `D == 3H`, every shape small enough to address.
    pub fn validate(&self) -> Result<(), BlobError> {
        for (dim, value) in self.fields() {
            if value == 0 && dim != Dim::NBeh {
                return Err(BlobError::InconsistentDims { dim, value });
            }
            // Keep every rows * cols * 4 far below u32::MAX.
            if value > 1 << 14 {
                return Err(BlobError::InconsistentDims { dim, value });
            }
        }
        if !self.hidden.is_multiple_of(4) {
            return Err(BlobError::InconsistentDims { dim: Dim::Hidden, value: self.hidden });
        }
        if self.d_model != 3 * self.hidden {
            return Err(BlobError::InconsistentDims { dim: Dim::DModel, value: self.d_model });
        }
        Ok(())
    }
}

/// The decoded fixed header.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Storage format of the weight matrices.
    pub storage: StorageFormat,
    /// Which bin the encoder reads.
    pub schedule: InputSchedule,
    /// Model sizes.
    pub dims: Dims,
    /// Langevin damping `gamma`.
    pub gamma: f32,
    /// Langevin step `eps`.
    pub eps: f32,
    /// Entries in the section table.
    pub section_count: u32,
    /// Bytes of the whole blob.
    pub total_len: u32,
    /// Re-anchor period `P` in bins (version 2; 0 in version 1: never), `core/CONTINUOUS.md`.
    pub anchor_every: u32,
}

/// A byte buffer aligned for zero-copy parsing, for blobs embedded in flash:
/// `static BLOB: AlignedBlob<N> = AlignedBlob(*include_bytes!("model.lfw"));`
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct AlignedBlob<const N: usize>(pub [u8; N]);

/// CRC-32 (ISO-HDLC, as zlib's `crc32`) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}
