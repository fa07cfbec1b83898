//! Why a weight blob was rejected.

use super::{Dim, SectionId};

/// A weight blob that cannot be used, with where it went wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlobError {
    /// Shorter than the 64-byte header.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The first four bytes are not `LFW1`.
    BadMagic {
        /// Bytes found.
        found: [u8; 4],
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// The header's CRC32 (bytes 0..60) does not match.
    HeaderCrc {
        /// Stored at byte 60.
        stored: u32,
        /// Computed over bytes 0..60.
        computed: u32,
    },
    /// The header length field is not 64.
    BadHeaderLength {
        /// Value found.
        found: u16,
    },
    /// The blob is not as long as its header says (truncated, or trailing bytes).
    LengthMismatch {
        /// Length recorded in the header.
        header: u32,
        /// Length of the given bytes.
        actual: usize,
    },
    /// The CRC32 of everything after the header does not match.
    BodyCrc {
        /// Stored at byte 56.
        stored: u32,
        /// Computed over bytes 64..len.
        computed: u32,
    },
    /// Unknown storage format code.
    UnknownStorage {
        /// Code found.
        code: u8,
    },
    /// Unknown input schedule code.
    UnknownSchedule {
        /// Code found.
        code: u8,
    },
    /// A head count other than 2.
    UnsupportedHeads {
        /// Heads found.
        found: u8,
    },
    /// Dimensions that violate the model's rules (`D = 3H`, `H % 4 == 0`, nonzero sizes).
    InconsistentDims {
        /// The offending dimension.
        dim: Dim,
        /// Its value.
        value: u32,
    },
    /// A dimension that differs from the decoder's compile-time size.
    DimensionMismatch {
        /// Which dimension.
        dim: Dim,
        /// Value in the blob.
        blob: u32,
        /// Value the decoder was built for.
        decoder: u32,
    },
    /// `gamma` outside `[0, 1]`, `eps` not positive and finite, or a
    /// version-2 blob's `anchor_every` of 0 (`bits` then holds 0).
    BadScalar {
        /// `"gamma"`, `"eps"` or `"anchor_every"` (0 in a version-2 blob).
        field: &'static str,
        /// Bit pattern found (may be NaN).
        bits: u32,
    },
    /// A reserved byte or field is not zero.
    ReservedNonZero {
        /// Byte offset in the blob.
        offset: usize,
    },
    /// The section table does not fit in the blob or has more entries than the format allows.
    BadSectionCount {
        /// Count found.
        count: u32,
    },
    /// A table entry with an id no tensor has.
    UnknownSection {
        /// Table index.
        index: usize,
        /// Id found.
        id: u16,
    },
    /// Two table entries for the same section.
    DuplicateSection {
        /// The section.
        section: SectionId,
    },
    /// A section the decoder needs is absent.
    MissingSection {
        /// The section.
        section: SectionId,
    },
    /// A section stored in the wrong element type.
    WrongDtype {
        /// The section.
        section: SectionId,
        /// Dtype code expected.
        expected: u8,
        /// Dtype code found.
        found: u8,
    },
    /// A section whose `[rows, cols]` differs from the model's.
    WrongShape {
        /// The section.
        section: SectionId,
        /// Shape the dimensions imply.
        expected: (u32, u32),
        /// Shape recorded.
        found: (u32, u32),
    },
    /// A section whose byte length differs from `rows * cols * element size`.
    WrongLength {
        /// The section.
        section: SectionId,
        /// Bytes the shape implies.
        expected: u64,
        /// Bytes recorded.
        found: u32,
    },
    /// A section that starts before the data area or ends past the blob.
    SectionOutOfBounds {
        /// The section.
        section: SectionId,
        /// Its offset.
        offset: u32,
        /// Its length.
        len: u32,
    },
    /// Two sections share bytes.
    SectionOverlap {
        /// One section.
        first: SectionId,
        /// The other.
        second: SectionId,
    },
    /// A section offset that is not 16-byte aligned, or a blob in memory whose
    /// start is not 4-byte aligned (so the f32 data cannot be borrowed in place).
    Misaligned {
        /// The section.
        section: SectionId,
        /// Its offset in the blob.
        offset: u32,
    },
    /// A weight or scale that is NaN or infinite.
    NonFinite {
        /// The section.
        section: SectionId,
        /// Element index within it.
        index: usize,
    },
    /// An int8 blob written before int16 activations (storage code 2): its
    /// matrices expect f32 activations. Re-export the model.
    RetiredStorage {
        /// Code found.
        code: u8,
    },
    /// An int8 weight of `-128` (symmetric quantisation writes `-127..=127`,
    /// and the kernel's overflow bound relies on it).
    Int8OutOfRange {
        /// The section.
        section: SectionId,
        /// Element index within it.
        index: usize,
    },
    /// An int8 model with a matrix wider than the int16-activation kernel's
    /// overflow bound allows (`matrix::MAX_I8_COLS`).
    Int8TooWide {
        /// The dimension that is too wide.
        dim: Dim,
        /// Its value.
        value: u32,
    },
}

impl BlobError {
    /// The variant's name (for a wire reply or a log line).
    pub const fn name(&self) -> &'static str {
        use BlobError::*;
        match self {
            TooShort { .. } => "TooShort",
            BadMagic { .. } => "BadMagic",
            UnsupportedVersion { .. } => "UnsupportedVersion",
            HeaderCrc { .. } => "HeaderCrc",
            BadHeaderLength { .. } => "BadHeaderLength",
            LengthMismatch { .. } => "LengthMismatch",
            BodyCrc { .. } => "BodyCrc",
            UnknownStorage { .. } => "UnknownStorage",
            UnknownSchedule { .. } => "UnknownSchedule",
            UnsupportedHeads { .. } => "UnsupportedHeads",
            InconsistentDims { .. } => "InconsistentDims",
            DimensionMismatch { .. } => "DimensionMismatch",
            BadScalar { .. } => "BadScalar",
            ReservedNonZero { .. } => "ReservedNonZero",
            BadSectionCount { .. } => "BadSectionCount",
            UnknownSection { .. } => "UnknownSection",
            DuplicateSection { .. } => "DuplicateSection",
            MissingSection { .. } => "MissingSection",
            WrongDtype { .. } => "WrongDtype",
            WrongShape { .. } => "WrongShape",
            WrongLength { .. } => "WrongLength",
            SectionOutOfBounds { .. } => "SectionOutOfBounds",
            SectionOverlap { .. } => "SectionOverlap",
            Misaligned { .. } => "Misaligned",
            NonFinite { .. } => "NonFinite",
            RetiredStorage { .. } => "RetiredStorage",
            Int8OutOfRange { .. } => "Int8OutOfRange",
            Int8TooWide { .. } => "Int8TooWide",
        }
    }
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use BlobError::*;
        match self {
            TooShort { len } => write!(f, "blob is {len} bytes, shorter than its 64-byte header"),
            BadMagic { found } => write!(f, "bad magic {found:?}, expected \"LFW1\""),
            UnsupportedVersion { found } => {
                write!(f, "format version {found} is not supported (this build reads 1 and 2)")
            }
            HeaderCrc { stored, computed } => write!(f, "header CRC32 {stored:#010x} does not match {computed:#010x}"),
            BadHeaderLength { found } => write!(f, "header length {found}, expected 64"),
            LengthMismatch { header, actual } => write!(f, "header says {header} bytes but the blob has {actual}"),
            BodyCrc { stored, computed } => write!(f, "body CRC32 {stored:#010x} does not match {computed:#010x}"),
            UnknownStorage { code } => write!(f, "unknown storage format code {code}"),
            UnknownSchedule { code } => write!(f, "unknown input schedule code {code}"),
            UnsupportedHeads { found } => write!(f, "{found} attention heads, only 2 are supported"),
            InconsistentDims { dim, value } => {
                write!(f, "dimension {dim:?} = {value} breaks D = 3H, H % 4 == 0 or sizes > 0")
            }
            DimensionMismatch { dim, blob, decoder } => {
                write!(f, "dimension {dim:?} is {blob} in the blob but {decoder} in the decoder")
            }
            BadScalar { field, bits } => write!(f, "{field} = {} is out of range", f32::from_bits(*bits)),
            ReservedNonZero { offset } => write!(f, "reserved byte at offset {offset} is not zero"),
            BadSectionCount { count } => write!(f, "section count {count} does not fit the format"),
            UnknownSection { index, id } => write!(f, "table entry {index} has unknown section id {id:#06x}"),
            DuplicateSection { section } => write!(f, "section {section:?} appears twice"),
            MissingSection { section } => write!(f, "section {section:?} is missing"),
            WrongDtype { section, expected, found } => {
                write!(f, "section {section:?} has dtype {found}, expected {expected}")
            }
            WrongShape { section, expected, found } => {
                write!(f, "section {section:?} has shape {found:?}, expected {expected:?}")
            }
            WrongLength { section, expected, found } => {
                write!(f, "section {section:?} is {found} bytes, its shape needs {expected}")
            }
            SectionOutOfBounds { section, offset, len } => {
                write!(f, "section {section:?} at {offset}+{len} lies outside the data area")
            }
            SectionOverlap { first, second } => write!(f, "sections {first:?} and {second:?} overlap"),
            Misaligned { section, offset } => write!(f, "section {section:?} at offset {offset} is misaligned"),
            NonFinite { section, index } => write!(f, "section {section:?} element {index} is not finite"),
            RetiredStorage { code } => write!(
                f,
                "storage code {code} is an int8 blob from before int16 activations (f32 activations); \
                 re-export the model (`lflow export RUN --format int8`)"
            ),
            Int8OutOfRange { section, index } => {
                write!(f, "section {section:?} element {index} is -128; int8 weights must lie in -127..=127")
            }
            Int8TooWide { dim, value } => write!(
                f,
                "dimension {dim:?} = {value}: int8 matrices take at most {} inputs (the kernel's overflow bound)",
                crate::matrix::MAX_I8_COLS
            ),
        }
    }
}

impl core::error::Error for BlobError {}
