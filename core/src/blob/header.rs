//! The fixed header's fields as stored, read without validating the blob:
//! [`peek_header`], for a device's greeting and a build script's sizes, and
//! the first step of [`Blob::parse`](super::Blob::parse).

use super::{BlobError, Dims, HEADER_LEN, MAGIC};
use crate::matrix::StorageFormat;
use crate::schedule::InputSchedule;

/// The 64-byte header's fields as stored (`core/FORMAT.md`), none of them
/// checked: codes may be unknown, sizes inconsistent, the CRCs wrong. Only
/// [`Blob::parse`](super::Blob::parse) says whether the blob can be used.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RawHeader {
    /// Format version (bytes 4..6).
    pub version: u16,
    /// Header length field, in bytes (bytes 6..8; 64 in a valid blob).
    pub header_len: u16,
    /// Storage format code (byte 8), see [`RawHeader::storage_format`].
    pub storage: u8,
    /// Input schedule code (byte 9), see [`RawHeader::input_schedule`].
    pub schedule: u8,
    /// Attention heads (byte 10; 2 in a valid blob).
    pub heads: u8,
    /// Re-anchor period `P` in bins (byte 11; 0 in version 1).
    pub anchor_every: u8,
    /// Model sizes (bytes 12..40), as recorded.
    pub dims: Dims,
    /// Langevin damping `gamma` (bytes 40..44).
    pub gamma: f32,
    /// Langevin step `eps` (bytes 44..48).
    pub eps: f32,
    /// Entries in the section table (bytes 48..52).
    pub section_count: u32,
    /// Bytes of the whole blob (bytes 52..56).
    pub total_len: u32,
}

impl RawHeader {
    /// The storage format, or `None` for an unknown or retired code.
    pub const fn storage_format(&self) -> Option<StorageFormat> {
        StorageFormat::from_code(self.storage)
    }

    /// The input schedule, or `None` for an unknown code.
    pub const fn input_schedule(&self) -> Option<InputSchedule> {
        InputSchedule::from_code(self.schedule)
    }
}

/// Read the header's fields from the first [`HEADER_LEN`] bytes of `bytes`
/// (more may follow), checking only its length ([`BlobError::TooShort`]) and
/// magic ([`BlobError::BadMagic`]). Never panics.
pub fn peek_header(bytes: &[u8]) -> Result<RawHeader, BlobError> {
    if bytes.len() < HEADER_LEN {
        return Err(BlobError::TooShort { len: bytes.len() });
    }
    let magic = [byte(bytes, 0), byte(bytes, 1), byte(bytes, 2), byte(bytes, 3)];
    if magic != MAGIC {
        return Err(BlobError::BadMagic { found: magic });
    }
    let dim = |i: usize| le_u32(bytes, 12 + 4 * i);
    Ok(RawHeader {
        version: le_u16(bytes, 4),
        header_len: le_u16(bytes, 6),
        storage: byte(bytes, 8),
        schedule: byte(bytes, 9),
        heads: byte(bytes, 10),
        anchor_every: byte(bytes, 11),
        dims: Dims {
            n_in: dim(0),
            hidden: dim(1),
            d_model: dim(2),
            ff: dim(3),
            n_out: dim(4),
            window: dim(5),
            n_beh: dim(6),
        },
        gamma: f32::from_bits(le_u32(bytes, 40)),
        eps: f32::from_bits(le_u32(bytes, 44)),
        section_count: le_u32(bytes, 48),
        total_len: le_u32(bytes, 52),
    })
}

/// The little-endian `u16` at `at`, 0 past the end.
pub(super) fn le_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).and_then(|s| s.try_into().ok()).map(u16::from_le_bytes).unwrap_or(0)
}

/// The little-endian `u32` at `at`, 0 past the end.
pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes).unwrap_or(0)
}

/// The byte at `at`, 0 past the end.
pub(super) fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A header written out field by field (`core/FORMAT.md`), CRCs left 0.
    fn handmade() -> Vec<u8> {
        let mut b = Vec::from(*b"LFW1");
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&64u16.to_le_bytes());
        b.extend_from_slice(&[3, 1, 2, 5]);
        for v in [137u32, 64, 192, 256, 182, 32, 2] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0.5f32.to_le_bytes());
        b.extend_from_slice(&0.25f32.to_le_bytes());
        for v in [58u32, 4096, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_every_field_at_its_offset() {
        let bytes = handmade();
        assert_eq!(bytes.len(), HEADER_LEN);
        let want = RawHeader {
            version: 2,
            header_len: 64,
            storage: 3,
            schedule: 1,
            heads: 2,
            anchor_every: 5,
            dims: Dims { n_in: 137, hidden: 64, d_model: 192, ff: 256, n_out: 182, window: 32, n_beh: 2 },
            gamma: 0.5,
            eps: 0.25,
            section_count: 58,
            total_len: 4096,
        };
        assert_eq!(peek_header(&bytes), Ok(want));
        assert_eq!(
            (want.storage_format(), want.input_schedule()),
            (Some(StorageFormat::I8), Some(InputSchedule::CurrentBin))
        );
        // Whatever follows the header is not read.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xFF; 100]);
        assert_eq!(peek_header(&longer), Ok(want));
    }

    #[test]
    fn truncated_input_is_too_short_at_every_length() {
        let bytes = handmade();
        for len in 0..HEADER_LEN {
            assert_eq!(peek_header(&bytes[..len]), Err(BlobError::TooShort { len }));
        }
    }

    #[test]
    fn only_length_and_magic_are_checked() {
        let mut bytes = handmade();
        bytes[0] = b'X';
        assert_eq!(peek_header(&bytes), Err(BlobError::BadMagic { found: *b"XFW1" }));
        bytes[0] = b'L';
        // An unknown version, retired storage, unknown schedule, bad sizes: read as stored.
        bytes[4..6].copy_from_slice(&9u16.to_le_bytes());
        bytes[8] = StorageFormat::RETIRED_I8_F32;
        bytes[9] = 7;
        bytes[16..20].copy_from_slice(&5u32.to_le_bytes());
        let h = peek_header(&bytes).unwrap();
        assert_eq!((h.version, h.storage, h.schedule, h.dims.hidden), (9, 2, 7, 5));
        assert_eq!((h.storage_format(), h.input_schedule()), (None, None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_u32;
        for len in [0, 1, 4, 63, 64, 65, 200] {
            for _ in 0..50 {
                let mut bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        state as u8
                    })
                    .collect();
                if len >= 4 {
                    bytes[..4].copy_from_slice(&MAGIC);
                }
                assert_eq!(peek_header(&bytes).is_ok(), len >= HEADER_LEN);
            }
        }
    }

    /// The writer's header, read back: the fields `Blob::parse` validates.
    #[cfg(feature = "std")]
    #[test]
    fn reads_what_the_writer_wrote() {
        use crate::blob::{Blob, BlobWriter, Tensor, VERSION, VERSION_1};
        let dims = Dims { n_in: 3, hidden: 4, d_model: 12, ff: 8, n_out: 5, window: 2, n_beh: 2 };
        for (storage, anchor, version) in [(StorageFormat::F32, 0, VERSION_1), (StorageFormat::I8, 4, VERSION)] {
            let schedule = InputSchedule::PreviousBin;
            let mut w = BlobWriter::new(dims, storage, schedule, 0.5, 0.25).unwrap().anchor_every(anchor);
            for t in Tensor::ALL {
                let (r, c) = t.shape(&dims);
                w.tensor(t, &std::vec![0.5; (r * c) as usize]).unwrap();
            }
            let bytes = w.finish().unwrap();
            let h = peek_header(&bytes).unwrap();
            let parsed = *Blob::parse(&bytes, None).unwrap().header();
            assert_eq!((h.version, h.header_len, h.heads, h.anchor_every), (version, 64, 2, anchor));
            assert_eq!((h.storage_format(), h.input_schedule()), (Some(parsed.storage), Some(parsed.schedule)));
            assert_eq!((h.dims, h.gamma, h.eps), (parsed.dims, parsed.gamma, parsed.eps));
            assert_eq!(
                (h.section_count, h.total_len, h.total_len as usize),
                (parsed.section_count, parsed.total_len, bytes.len())
            );
        }
    }
}
