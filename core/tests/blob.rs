//! The `LFW1` blob: round trips in every format, every `BlobError` variant from
//! a crafted blob, and corruption that never panics.

mod common;

use common::{entry_offset, put_u32, synthetic_blob, synthetic_blob_anchored, synthetic_values, u32_at, Aligned};
use half::f16;
use lflow_core::blob::writer::reseal;
use lflow_core::blob::{Blob, BlobWriter, Dim, SectionId, Tensor, WriteError};
use lflow_core::{BlobError, Dims, InputSchedule, Mean, Seeded, StorageFormat, StreamingDecoder};
use proptest::prelude::*;
use std::collections::BTreeSet;

const N_IN: usize = 3;
const H: usize = 4;
const D: usize = 12;
const FF: usize = 8;
const N_OUT: usize = 5;
const W: usize = 2;
const N_BEH: usize = 2;
type Tiny<'a> = StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH>;
const DIMS: Dims = Tiny::DIMS;
const FORMATS: [StorageFormat; 3] = [StorageFormat::F32, StorageFormat::F16, StorageFormat::I8];

fn tiny(storage: StorageFormat) -> Vec<u8> {
    synthetic_blob(DIMS, storage, InputSchedule::CurrentBin, 11)
}

/// The f32 values `synthetic_blob` handed the writer (not read back through the parser).
fn written_values(t: Tensor) -> Vec<f32> {
    let at = Tensor::ALL.iter().position(|&x| x == t).unwrap();
    synthetic_values(DIMS, 11).swap_remove(at)
}

#[test]
fn anchor_period_makes_a_version_2_blob_and_version_1_still_reads() {
    let v1 = tiny(StorageFormat::F32);
    assert_eq!((u16::from_le_bytes([v1[4], v1[5]]), v1[11]), (1, 0));
    let v2 = synthetic_blob_anchored(DIMS, StorageFormat::F32, InputSchedule::CurrentBin, 11, 20);
    assert_eq!((u16::from_le_bytes([v2[4], v2[5]]), v2[11]), (2, 20));
    // Only the version, byte 11 and the header CRC differ.
    let differ: Vec<usize> = (0..v1.len()).filter(|&i| v1[i] != v2[i]).collect();
    assert!(differ.iter().all(|&i| i == 4 || i == 11 || (60..64).contains(&i)), "{differ:?}");
    for (bytes, want) in [(&v1, 0), (&v2, 20)] {
        let a = Aligned::new(bytes);
        assert_eq!(Blob::parse(a.bytes(), Some(&DIMS)).unwrap().header().anchor_every, want);
        assert_eq!(Tiny::from_blob(a.bytes()).unwrap().anchor_every(), want);
    }
}

#[test]
fn round_trip_in_every_format() {
    for storage in FORMATS {
        let bytes = Aligned::new(&tiny(storage));
        let blob = Blob::parse(bytes.bytes(), Some(&DIMS)).unwrap();
        let header = blob.header();
        assert_eq!((header.storage, header.schedule, header.dims), (storage, InputSchedule::CurrentBin, DIMS));
        assert_eq!((header.gamma, header.eps), (0.55, 0.01));
        for t in Tensor::ALL {
            let want = written_values(t);
            let (rows, cols) = t.shape(&DIMS);
            if !t.is_matrix() {
                assert_eq!(blob.vector(t).unwrap(), &want[..], "{t:?}");
                continue;
            }
            let m = blob.matrix(t).unwrap();
            let storage = if t.is_quantized() { storage } else { StorageFormat::F32 };
            assert_eq!((m.rows(), m.cols(), m.format()), (rows as usize, cols as usize, storage));
            for r in 0..rows as usize {
                let row = &want[r * cols as usize..(r + 1) * cols as usize];
                // int8 by hand: a row's scale maps its largest magnitude to 127.
                let scale = row.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
                for (c, &w) in row.iter().enumerate() {
                    let got = m.get(r, c).unwrap();
                    match storage {
                        StorageFormat::F32 => assert_eq!(got, w),
                        StorageFormat::F16 => assert_eq!(got, f16::from_f32(w).to_f32()),
                        StorageFormat::I8 => {
                            let q = (w as f64 / scale as f64).round();
                            assert!(q.abs() <= 127.0);
                            assert_eq!(got, q as f32 * scale, "{t:?} [{r},{c}]");
                            assert!((got - w).abs() <= scale * 0.5 + 1e-7, "{t:?} [{r},{c}]");
                        }
                    }
                }
            }
        }
        Tiny::from_blob(bytes.bytes()).unwrap();
    }
}

#[test]
fn i8_blob_is_smallest() {
    let sizes: Vec<usize> = FORMATS.iter().map(|&s| tiny(s).len()).collect();
    assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "{sizes:?}");
}

/// Name of every variant: an exhaustive match, so a new variant must be added here.
fn variant(e: &BlobError) -> &'static str {
    use BlobError::*;
    match e {
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

const ALL_VARIANTS: usize = 28;

/// Apply `patch` to a valid blob of `storage`, optionally reseal, and parse it for the tiny decoder.
fn crafted(storage: StorageFormat, seal: bool, patch: impl FnOnce(&mut Vec<u8>)) -> BlobError {
    let mut bytes = tiny(storage);
    patch(&mut bytes);
    if seal {
        reseal(&mut bytes);
    }
    let aligned = Aligned::new(&bytes);
    match Tiny::from_blob(aligned.bytes()) {
        Err(e) => e,
        Ok(_) => panic!("crafted blob was accepted"),
    }
}

#[test]
fn every_blob_error_variant_is_reachable() {
    use StorageFormat::*;
    let vbias = Tensor::ZMeansBias.id();
    let lvbias = Tensor::ZLogvarBias.id();
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let expect = |e: BlobError, want: BlobError| {
        assert_eq!(e, want);
        seen.borrow_mut().insert(variant(&e));
    };
    let f32_len = tiny(F32).len();
    // Table entries sit at the same place in every f32 blob of these sizes.
    let zmb = entry_offset(&tiny(F32), vbias);
    let zlb = entry_offset(&tiny(F32), lvbias);

    expect(crafted(F32, false, |b| b.truncate(10)), BlobError::TooShort { len: 10 });
    expect(crafted(F32, false, |b| b[0] = b'X'), BlobError::BadMagic { found: *b"XFW1" });
    expect(crafted(F32, false, |b| b[4] = 3), BlobError::UnsupportedVersion { found: 3 });
    let e = crafted(F32, false, |b| b[20] ^= 1);
    assert!(matches!(e, BlobError::HeaderCrc { .. }), "{e:?}");
    seen.borrow_mut().insert(variant(&e));
    expect(crafted(F32, true, |b| b[6] = 32), BlobError::BadHeaderLength { found: 32 });
    expect(
        crafted(F32, false, |b| b.push(0)),
        BlobError::LengthMismatch { header: f32_len as u32, actual: f32_len + 1 },
    );
    expect(
        crafted(F32, false, |b| {
            b.pop();
        }),
        BlobError::LengthMismatch { header: f32_len as u32, actual: f32_len - 1 },
    );
    let e = crafted(F32, false, |b| *b.last_mut().unwrap() ^= 0x40);
    assert!(matches!(e, BlobError::BodyCrc { .. }), "{e:?}");
    seen.borrow_mut().insert(variant(&e));
    expect(crafted(F32, true, |b| b[8] = 7), BlobError::UnknownStorage { code: 7 });
    expect(crafted(F32, true, |b| b[9] = 5), BlobError::UnknownSchedule { code: 5 });
    expect(crafted(F32, true, |b| b[10] = 3), BlobError::UnsupportedHeads { found: 3 });
    // Byte 11 is reserved in version 1 and the re-anchor period (1..=255) in version 2.
    expect(crafted(F32, true, |b| b[11] = 1), BlobError::ReservedNonZero { offset: 11 });
    expect(crafted(F32, true, |b| b[4] = 2), BlobError::BadScalar { field: "anchor_every", bits: 0 });
    expect(
        crafted(F32, true, |b| put_u32(b, 12 + 16, 6)),
        BlobError::DimensionMismatch { dim: Dim::NOut, blob: 6, decoder: N_OUT as u32 },
    );
    {
        let mut b = tiny(F32);
        put_u32(&mut b, 16, 6); // H = 6 breaks H % 4 == 0
        put_u32(&mut b, 20, 18);
        reseal(&mut b);
        let a = Aligned::new(&b);
        expect(Blob::parse(a.bytes(), None).unwrap_err(), BlobError::InconsistentDims { dim: Dim::Hidden, value: 6 });
    }
    expect(
        crafted(F32, true, |b| put_u32(b, 40, 2.0f32.to_bits())),
        BlobError::BadScalar { field: "gamma", bits: 2.0f32.to_bits() },
    );
    let e = crafted(F32, true, |b| put_u32(b, 44, f32::NAN.to_bits()));
    assert!(matches!(e, BlobError::BadScalar { field: "eps", .. }), "{e:?}");
    expect(crafted(F32, true, |b| put_u32(b, 48, 1000)), BlobError::BadSectionCount { count: 1000 });
    expect(
        crafted(F32, true, |b| {
            let at = zmb;
            b[at..at + 2].copy_from_slice(&0x99u16.to_le_bytes());
        }),
        BlobError::UnknownSection { index: (entry_offset(&tiny(F32), vbias) - 64) / 24, id: 0x99 },
    );
    expect(
        crafted(F32, true, |b| {
            let at = zlb;
            b[at..at + 2].copy_from_slice(&vbias.to_le_bytes());
        }),
        BlobError::DuplicateSection { section: SectionId::Values(Tensor::ZMeansBias) },
    );
    expect(
        crafted(F32, true, |b| {
            let count = u32_at(b, 48);
            put_u32(b, 48, count - 1);
        }),
        BlobError::MissingSection { section: SectionId::Values(Tensor::VelocityBias) },
    );
    expect(
        crafted(I8, true, |b| {
            let count = u32_at(b, 48);
            let last = 64 + 24 * (count as usize - 1);
            // Move the last entry (velocity bias) over the scales of the readout weight.
            let scales_at = entry_offset(b, Tensor::ReadoutWeight.id() | 0x100);
            let last_entry: Vec<u8> = b[last..last + 24].to_vec();
            b[scales_at..scales_at + 24].copy_from_slice(&last_entry);
            put_u32(b, 48, count - 1);
        }),
        BlobError::MissingSection { section: SectionId::Scales(Tensor::ReadoutWeight) },
    );
    expect(
        crafted(F32, true, |b| b[zmb + 2] = 1),
        BlobError::WrongDtype { section: SectionId::Values(Tensor::ZMeansBias), expected: 0, found: 1 },
    );
    expect(
        crafted(F32, true, |b| put_u32(b, zmb + 4, 5)),
        BlobError::WrongShape { section: SectionId::Values(Tensor::ZMeansBias), expected: (4, 1), found: (5, 1) },
    );
    expect(
        crafted(F32, true, |b| put_u32(b, zmb + 16, 20)),
        BlobError::WrongLength { section: SectionId::Values(Tensor::ZMeansBias), expected: 16, found: 20 },
    );
    expect(
        crafted(F32, true, |b| put_u32(b, zmb + 12, 16)),
        BlobError::SectionOutOfBounds { section: SectionId::Values(Tensor::ZMeansBias), offset: 16, len: 16 },
    );
    expect(
        crafted(F32, true, |b| {
            let off = u32_at(b, zlb + 12);
            put_u32(b, zmb + 12, off);
        }),
        BlobError::SectionOverlap {
            first: SectionId::Values(Tensor::ZMeansBias),
            second: SectionId::Values(Tensor::ZLogvarBias),
        },
    );
    {
        let off = u32_at(&tiny(F32), zmb + 12);
        expect(
            crafted(F32, true, |b| put_u32(b, zmb + 12, off + 4)),
            BlobError::Misaligned { section: SectionId::Values(Tensor::ZMeansBias), offset: off + 4 },
        );
    }
    {
        // A blob whose start in memory is not 4-byte aligned cannot be borrowed as f32.
        let b = tiny(F32);
        let mut shifted = vec![0u8; 1];
        shifted.extend_from_slice(&b);
        let a = Aligned::new(&shifted);
        let e = Tiny::from_blob(&a.bytes()[1..]).err().unwrap();
        assert!(matches!(e, BlobError::Misaligned { .. }), "{e:?}");
    }
    expect(
        crafted(F32, true, |b| {
            let off = u32_at(b, zmb + 12) as usize;
            b[off + 4..off + 8].copy_from_slice(&f32::NAN.to_le_bytes());
        }),
        BlobError::NonFinite { section: SectionId::Values(Tensor::ZMeansBias), index: 1 },
    );
    expect(
        crafted(F16, true, |b| {
            let off = u32_at(b, entry_offset(b, Tensor::ReadoutWeight.id()) + 12) as usize;
            b[off + 6..off + 8].copy_from_slice(&f16::INFINITY.to_le_bytes());
        }),
        BlobError::NonFinite { section: SectionId::Values(Tensor::ReadoutWeight), index: 3 },
    );
    expect(
        crafted(I8, true, |b| {
            let off = u32_at(b, entry_offset(b, Tensor::ReadoutWeight.id() | 0x100) + 12) as usize;
            b[off..off + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
        }),
        BlobError::NonFinite { section: SectionId::Scales(Tensor::ReadoutWeight), index: 0 },
    );
    // An int8 blob from before int16 activations (storage code 2) is refused, not misread.
    expect(crafted(I8, true, |b| b[8] = 2), BlobError::RetiredStorage { code: 2 });
    expect(
        crafted(I8, true, |b| {
            let off = u32_at(b, entry_offset(b, Tensor::ReadoutWeight.id()) + 12) as usize;
            b[off + 5] = 0x80;
        }),
        BlobError::Int8OutOfRange { section: SectionId::Values(Tensor::ReadoutWeight), index: 5 },
    );
    {
        // ff = 600 inputs to linear2: past the int8 kernel's accumulator bound (512).
        let wide = Dims { ff: 600, ..DIMS };
        let e = BlobWriter::new(wide, I8, InputSchedule::CurrentBin, 0.5, 0.1).err().unwrap();
        assert_eq!(e, WriteError::Dims(BlobError::Int8TooWide { dim: Dim::Ff, value: 600 }));
        let mut b = tiny(I8);
        put_u32(&mut b, 24, 600);
        reseal(&mut b);
        let a = Aligned::new(&b);
        expect(Blob::parse(a.bytes(), None).unwrap_err(), BlobError::Int8TooWide { dim: Dim::Ff, value: 600 });
        BlobWriter::new(wide, F16, InputSchedule::CurrentBin, 0.5, 0.1).unwrap();
    }
    let seen = seen.into_inner();
    assert_eq!(seen.len(), ALL_VARIANTS, "variants reached: {seen:?}");
}

#[test]
fn scale_sections_are_unknown_outside_i8() {
    let e = crafted(StorageFormat::F32, true, |b| {
        let at = entry_offset(b, Tensor::ReadoutBias.id());
        b[at..at + 2].copy_from_slice(&(Tensor::ReadoutWeight.id() | 0x100).to_le_bytes());
    });
    assert!(matches!(e, BlobError::UnknownSection { .. }), "{e:?}");
}

#[test]
fn writer_rejects_bad_tensors() {
    let mut w = BlobWriter::new(DIMS, StorageFormat::F16, InputSchedule::PreviousBin, 0.55, 0.01).unwrap();
    assert_eq!(
        w.tensor(Tensor::ReadoutBias, &[0.0; 4]).unwrap_err(),
        WriteError::WrongLength { tensor: Tensor::ReadoutBias, expected: 5, found: 4 }
    );
    assert_eq!(
        w.tensor(Tensor::ReadoutBias, &[0.0, 1.0, f32::NAN, 0.0, 0.0]).unwrap_err(),
        WriteError::NonFinite { tensor: Tensor::ReadoutBias, index: 2 }
    );
    assert_eq!(w.finish().unwrap_err(), WriteError::Missing { tensor: Tensor::EncoderWeightIh });
    let mut big = vec![0.0f32; 3 * H * N_IN];
    big[7] = 1e6; // overflows f16
    w.tensor(Tensor::EncoderWeightIh, &big).unwrap();
    for t in Tensor::ALL.into_iter().skip(1) {
        let (r, c) = t.shape(&DIMS);
        w.tensor(t, &vec![0.0; (r * c) as usize]).unwrap();
    }
    assert_eq!(w.finish().unwrap_err(), WriteError::NonFinite { tensor: Tensor::EncoderWeightIh, index: 7 });
    assert!(matches!(
        BlobWriter::new(DIMS, StorageFormat::F32, InputSchedule::PreviousBin, 1.5, 0.01),
        Err(WriteError::BadScalar { field: "gamma" })
    ));
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    // All 255 wrong values at every byte of the smallest blob, and a few at every byte of the others.
    for storage in FORMATS {
        let clean = tiny(storage);
        let mut buf = Aligned::new(&clean);
        let values: Vec<u8> = if storage == StorageFormat::I8 { (1..=255).collect() } else { vec![0x01, 0x80, 0xff] };
        for (at, &byte) in clean.iter().enumerate() {
            for &x in &values {
                buf.bytes_mut()[at] = byte ^ x;
                assert!(Tiny::from_blob(buf.bytes()).is_err(), "{storage:?}: byte {at} ^ {x:#x} accepted");
            }
            buf.bytes_mut()[at] = byte;
        }
        assert!(Tiny::from_blob(buf.bytes()).is_ok());
    }
}

proptest! {
    #[test]
    fn random_bytes_are_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..4096), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(b"LFW1");
            bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
        }
        let a = Aligned::new(&bytes);
        prop_assert!(Tiny::from_blob(a.bytes()).is_err());
        prop_assert!(Blob::parse(a.bytes(), None).is_err());
    }

    /// Resealed random corruption may parse (its weights are finite); then decoding
    /// arbitrary spikes must return outputs or errors, never panic.
    #[test]
    fn resealed_corruption_never_panics(
        storage in prop::sample::select(FORMATS.to_vec()),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        spikes in proptest::collection::vec(proptest::array::uniform3(any::<u16>()), 1..12),
    ) {
        let mut bytes = tiny(storage);
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        reseal(&mut bytes);
        let a = Aligned::new(&bytes);
        if let Ok(mut dec) = Tiny::from_blob(a.bytes()) {
            let mut noise = Seeded::new(1);
            for s in &spikes {
                if let Ok(out) = dec.step(s, &mut noise) {
                    prop_assert!(out.rates.iter().all(|r| r.is_finite()));
                }
                let _ = dec.step(s, &mut Mean);
            }
        }
    }
}
