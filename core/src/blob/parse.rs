//! Validating, zero-copy reader of `LFW1` blobs.

use super::header::{byte, le_u16, le_u32, peek_header};
use super::{crc32, ENTRY_LEN, HEADER_LEN, HEADS, MAX_SECTIONS, SECTION_ALIGN, VERSION, VERSION_1};
use super::{dtype, BlobError, Dims, Header, SectionId, Tensor, TENSOR_COUNT};
use crate::linear::Linear;
use crate::matrix::{Matrix, MatrixData, StorageFormat};
use half::f16;

/// A section's elements, borrowed from the blob.
#[derive(Clone, Copy, Debug)]
pub enum SectionData<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements.
    F16(&'a [f16]),
    /// i8 elements.
    I8(&'a [i8]),
}

/// A validated blob: its header and every section, typed and borrowed.
#[derive(Clone, Debug)]
pub struct Blob<'a> {
    header: Header,
    values: [Option<SectionData<'a>>; TENSOR_COUNT],
    scales: [Option<&'a [f32]>; TENSOR_COUNT],
}

/// One decoded table entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    section: SectionId,
    dtype: u8,
    offset: u32,
    len: u32,
}

/// Round `n` up to the section alignment.
pub(crate) const fn align_up(n: usize) -> usize {
    n.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

impl<'a> Blob<'a> {
    /// Validate `bytes` and borrow its sections. `expected` (a decoder's sizes)
    /// makes any differing dimension an error before sections are read.
    pub fn parse(bytes: &'a [u8], expected: Option<&Dims>) -> Result<Self, BlobError> {
        let header = parse_header(bytes, expected)?;
        let count = header.section_count as usize;
        let data_start = align_up(HEADER_LEN + count * ENTRY_LEN);

        let mut entries: [Option<Entry>; MAX_SECTIONS] = [None; MAX_SECTIONS];
        for (index, slot) in entries.iter_mut().enumerate().take(count) {
            let at = HEADER_LEN + index * ENTRY_LEN;
            *slot = Some(parse_entry(bytes, at, index, &header, data_start)?);
        }
        check_unique_and_disjoint(&entries)?;

        let mut values: [Option<SectionData<'a>>; TENSOR_COUNT] = [None; TENSOR_COUNT];
        let mut scales: [Option<&'a [f32]>; TENSOR_COUNT] = [None; TENSOR_COUNT];
        for entry in entries.iter().flatten() {
            let start = entry.offset as usize;
            let raw = bytes.get(start..start + entry.len as usize).unwrap_or(&[]);
            let misaligned = BlobError::Misaligned { section: entry.section, offset: entry.offset };
            let data = match entry.dtype {
                dtype::F16 => SectionData::F16(bytemuck::try_cast_slice(raw).map_err(|_| misaligned)?),
                dtype::I8 => SectionData::I8(bytemuck::cast_slice(raw)),
                _ => SectionData::F32(bytemuck::try_cast_slice(raw).map_err(|_| misaligned)?),
            };
            check_finite(entry.section, data)?;
            match (entry.section, data) {
                (SectionId::Values(t), _) => {
                    if let Some(slot) = values.get_mut(t.index()) {
                        *slot = Some(data);
                    }
                }
                (SectionId::Scales(t), SectionData::F32(s)) => {
                    if let Some(slot) = scales.get_mut(t.index()) {
                        *slot = Some(s);
                    }
                }
                (section, _) => {
                    return Err(BlobError::WrongDtype { section, expected: dtype::F32, found: entry.dtype })
                }
            }
        }

        for t in Tensor::ALL {
            if values.get(t.index()).copied().flatten().is_none() {
                return Err(BlobError::MissingSection { section: SectionId::Values(t) });
            }
            if header.storage == StorageFormat::I8
                && t.is_quantized()
                && scales.get(t.index()).copied().flatten().is_none()
            {
                return Err(BlobError::MissingSection { section: SectionId::Scales(t) });
            }
        }
        Ok(Blob { header, values, scales })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// A tensor's raw elements.
    pub fn section(&self, t: Tensor) -> Option<SectionData<'a>> {
        self.values.get(t.index()).copied().flatten()
    }

    /// A weight matrix in the blob's storage format.
    pub fn matrix(&self, t: Tensor) -> Result<Matrix<'a>, BlobError> {
        let missing = BlobError::MissingSection { section: SectionId::Values(t) };
        let (rows, cols) = t.shape(&self.header.dims);
        let data = match self.section(t).ok_or(missing)? {
            SectionData::F32(w) => MatrixData::F32(w),
            SectionData::F16(w) => MatrixData::F16(w),
            SectionData::I8(weights) => {
                let scales = self.scales.get(t.index()).copied().flatten();
                let scales = scales.ok_or(BlobError::MissingSection { section: SectionId::Scales(t) })?;
                MatrixData::I8 { weights, scales }
            }
        };
        Matrix::new(rows as usize, cols as usize, data).ok_or(missing)
    }

    /// An f32 vector (bias, norm, kernel).
    pub fn vector(&self, t: Tensor) -> Result<&'a [f32], BlobError> {
        match self.section(t) {
            Some(SectionData::F32(v)) => Ok(v),
            _ => Err(BlobError::MissingSection { section: SectionId::Values(t) }),
        }
    }

    /// A `Linear` layer from its weight and bias tensors.
    pub fn linear(&self, weight: Tensor, bias: Tensor) -> Result<Linear<'a>, BlobError> {
        Ok(Linear { weight: self.matrix(weight)?, bias: self.vector(bias)? })
    }
}

fn parse_header(bytes: &[u8], expected: Option<&Dims>) -> Result<Header, BlobError> {
    // Length and magic; every field as stored.
    let raw = peek_header(bytes)?;
    let version = raw.version;
    if version != VERSION && version != VERSION_1 {
        return Err(BlobError::UnsupportedVersion { found: version });
    }
    let stored = le_u32(bytes, 60);
    let computed = crc32(bytes.get(..60).unwrap_or(&[]));
    if stored != computed {
        return Err(BlobError::HeaderCrc { stored, computed });
    }
    let header_len = raw.header_len;
    if usize::from(header_len) != HEADER_LEN {
        return Err(BlobError::BadHeaderLength { found: header_len });
    }
    let total_len = raw.total_len;
    if total_len as usize != bytes.len() {
        return Err(BlobError::LengthMismatch { header: total_len, actual: bytes.len() });
    }
    let stored = le_u32(bytes, 56);
    let computed = crc32(bytes.get(HEADER_LEN..).unwrap_or(&[]));
    if stored != computed {
        return Err(BlobError::BodyCrc { stored, computed });
    }
    let code = raw.storage;
    if code == StorageFormat::RETIRED_I8_F32 {
        return Err(BlobError::RetiredStorage { code });
    }
    let storage = raw.storage_format().ok_or(BlobError::UnknownStorage { code })?;
    let schedule = raw.input_schedule().ok_or(BlobError::UnknownSchedule { code: raw.schedule })?;
    if raw.heads != HEADS {
        return Err(BlobError::UnsupportedHeads { found: raw.heads });
    }
    let anchor_every = raw.anchor_every;
    if version == VERSION_1 && anchor_every != 0 {
        return Err(BlobError::ReservedNonZero { offset: 11 });
    }
    if version == VERSION && anchor_every == 0 {
        return Err(BlobError::BadScalar { field: "anchor_every", bits: 0 });
    }
    let dims = raw.dims;
    if let Some(want) = expected {
        for ((d, blob), (_, decoder)) in dims.fields().into_iter().zip(want.fields()) {
            if blob != decoder {
                return Err(BlobError::DimensionMismatch { dim: d, blob, decoder });
            }
        }
    }
    dims.validate()?;
    dims.validate_storage(storage)?;
    let gamma = raw.gamma;
    if !(0.0..=1.0).contains(&gamma) {
        return Err(BlobError::BadScalar { field: "gamma", bits: gamma.to_bits() });
    }
    let eps = raw.eps;
    if !(eps > 0.0 && eps <= 1.0) {
        return Err(BlobError::BadScalar { field: "eps", bits: eps.to_bits() });
    }
    let section_count = raw.section_count;
    let count = section_count as usize;
    if count > MAX_SECTIONS || HEADER_LEN + count * ENTRY_LEN > bytes.len() {
        return Err(BlobError::BadSectionCount { count: section_count });
    }
    Ok(Header { storage, schedule, dims, gamma, eps, section_count, total_len, anchor_every: u32::from(anchor_every) })
}

fn parse_entry(bytes: &[u8], at: usize, index: usize, header: &Header, data_start: usize) -> Result<Entry, BlobError> {
    let id = le_u16(bytes, at);
    let section = SectionId::from_code(id).ok_or(BlobError::UnknownSection { index, id })?;
    for reserved in [at + 3, at + 20, at + 21, at + 22, at + 23] {
        if byte(bytes, reserved) != 0 {
            return Err(BlobError::ReservedNonZero { offset: reserved });
        }
    }
    let found_dtype = byte(bytes, at + 2);
    let (expected_dtype, shape) = match section {
        SectionId::Values(t) if t.is_quantized() => (header.storage.dtype(), t.shape(&header.dims)),
        SectionId::Values(t) => (dtype::F32, t.shape(&header.dims)),
        SectionId::Scales(t) if header.storage == StorageFormat::I8 => (dtype::F32, (t.shape(&header.dims).0, 1)),
        SectionId::Scales(_) => return Err(BlobError::UnknownSection { index, id }),
    };
    if found_dtype != expected_dtype {
        return Err(BlobError::WrongDtype { section, expected: expected_dtype, found: found_dtype });
    }
    let found_shape = (le_u32(bytes, at + 4), le_u32(bytes, at + 8));
    if found_shape != shape {
        return Err(BlobError::WrongShape { section, expected: shape, found: found_shape });
    }
    let offset = le_u32(bytes, at + 12);
    let len = le_u32(bytes, at + 16);
    let expected_len = u64::from(shape.0) * u64::from(shape.1) * dtype::size(expected_dtype).unwrap_or(4);
    if u64::from(len) != expected_len {
        return Err(BlobError::WrongLength { section, expected: expected_len, found: len });
    }
    if !(offset as usize).is_multiple_of(SECTION_ALIGN) {
        return Err(BlobError::Misaligned { section, offset });
    }
    let end = u64::from(offset) + u64::from(len);
    if (offset as usize) < data_start || end > bytes.len() as u64 {
        return Err(BlobError::SectionOutOfBounds { section, offset, len });
    }
    Ok(Entry { section, dtype: found_dtype, offset, len })
}

fn check_unique_and_disjoint(entries: &[Option<Entry>]) -> Result<(), BlobError> {
    for (i, a) in entries.iter().enumerate() {
        let Some(a) = a else { continue };
        for b in entries.iter().skip(i + 1).flatten() {
            if a.section == b.section {
                return Err(BlobError::DuplicateSection { section: a.section });
            }
            let (a0, a1) = (u64::from(a.offset), u64::from(a.offset) + u64::from(a.len));
            let (b0, b1) = (u64::from(b.offset), u64::from(b.offset) + u64::from(b.len));
            if a0 < b1 && b0 < a1 {
                return Err(BlobError::SectionOverlap { first: a.section, second: b.section });
            }
        }
    }
    Ok(())
}

fn check_finite(section: SectionId, data: SectionData<'_>) -> Result<(), BlobError> {
    let bad = match data {
        SectionData::F32(v) => v.iter().position(|x| !x.is_finite()),
        SectionData::F16(v) => v.iter().position(|x| !x.is_finite()),
        SectionData::I8(v) => {
            return match v.iter().position(|&q| q == i8::MIN) {
                Some(index) => Err(BlobError::Int8OutOfRange { section, index }),
                None => Ok(()),
            };
        }
    };
    match bad {
        Some(index) => Err(BlobError::NonFinite { section, index }),
        None => Ok(()),
    }
}
