//! The host <-> device wire protocol (feature `wire`), specified in
//! `firmware/PROTOCOL.md`: each message is serialised with `postcard`,
//! followed by the CRC-32 of those bytes (little-endian), COBS-encoded and
//! terminated by one `0x00`. Both sides use this module; nothing it receives
//! can make it panic.

use serde::{Deserialize, Serialize};

/// Protocol version, sent in [`DeviceMessage::Hello`].
pub const WIRE_VERSION: u16 = 1;
/// Largest encoded frame, terminator included; longer frames are dropped as `Oversize`.
pub const MAX_FRAME: usize = 1024;

/// Host to device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMessage<'a> {
    /// One bin of spike counts, `N_IN` little-endian `u16`s. `seq` counts bins from 0.
    Bin {
        /// Sequence number.
        seq: u32,
        /// Counts, two bytes each.
        counts: &'a [u8],
    },
    /// Start a new trial (the decoder's state is cleared); the next `seq` is 0.
    Reset,
    /// Ask for a [`DeviceMessage::Stats`].
    Stats,
    /// Run every weight matrix of the model once through the device's kernels
    /// and once through their portable twins, on inputs drawn from `seed`, and
    /// answer with a [`DeviceMessage::KernelCheck`] (`core/KERNELS.md`).
    KernelCheck {
        /// Seed of the standard-normal inputs.
        seed: u32,
    },
}

/// Device to host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceMessage<'a> {
    /// Sent at boot, and in reply to a frame before the blob validated.
    Hello {
        /// Firmware version.
        firmware: u16,
        /// [`WIRE_VERSION`].
        wire: u16,
        /// `N_IN, H, D, FF, N_OUT, W, N_BEH` of the embedded model.
        dims: [u32; 7],
        /// Storage format code of the blob.
        storage: u8,
        /// Input schedule code of the blob.
        schedule: u8,
        /// `None` when the blob validated; otherwise why it was refused (a `BlobError` name).
        blob_error: Option<&'a str>,
    },
    /// One decoded bin.
    Decoded {
        /// The bin's sequence number.
        seq: u32,
        /// Decoded velocity, `N_BEH` little-endian `f32`s.
        velocity: &'a [u8],
        /// CRC-32 of the rates' `N_OUT` little-endian `f32`s (the host checks them bit for bit).
        rates_crc: u32,
        /// Instructions the step took (QEMU; cycles on a board), as the device counts them.
        instructions: u32,
    },
    /// Counters since boot.
    Stats {
        /// Bins decoded.
        bins: u32,
        /// Error replies sent.
        errors: u32,
        /// Spike counts clamped to the ceiling.
        clamped: u32,
        /// Decoder resets after a non-finite value.
        resets: u32,
    },
    /// Something went wrong; decoding goes on with the next frame.
    Error(DeviceError),
    /// The reply to [`HostMessage::KernelCheck`]. The decoder's state is untouched.
    KernelCheck {
        /// Weight multiply-accumulates run (one pass over every matrix).
        macs: u32,
        /// Instructions (cycles on a board) the device's kernels took for them.
        instructions: u32,
        /// Instructions the portable twins took for the same products.
        portable_instructions: u32,
        /// The kernels' instructions per matrix, in `StreamingDecoder::linears` order.
        per_matrix: [u32; 12],
        /// Outputs whose bits differ between kernel and twin (0: equal).
        mismatches: u32,
        /// Outputs compared.
        outputs: u32,
        /// Counter ticks of a loop of exactly [`CALIBRATION_INSTRUCTIONS`]
        /// instructions, timed at boot (0 on a board, whose counter counts
        /// cycles): under QEMU's `-icount` SysTick ticks at the board's 25 MHz,
        /// not once per instruction, and every instruction count the device
        /// reports is converted with it.
        calibration: u32,
    },
}

/// Instructions in the calibration loop of [`DeviceMessage::KernelCheck`].
pub const CALIBRATION_INSTRUCTIONS: u32 = 200_000;

/// Errors the device reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceError {
    /// The frame's COBS encoding is broken.
    BadFrame,
    /// The CRC does not match.
    BadCrc,
    /// The payload is not a host message.
    Malformed,
    /// The frame exceeded [`MAX_FRAME`] bytes.
    Oversize,
    /// A bin arrived out of order; it was decoded and the count restarts from it.
    SequenceGap {
        /// The sequence number expected.
        expected: u32,
        /// The one received.
        got: u32,
    },
    /// A bin with another number of counts than the model's `N_IN`.
    WrongCount {
        /// `N_IN`.
        expected: u16,
        /// Counts received.
        got: u16,
    },
    /// A non-finite value appeared; the state was reset (a new trial starts).
    StateReset {
        /// The bin.
        seq: u32,
        /// The stage (`lflow_core::Stage` as its index).
        stage: u8,
    },
    /// The embedded blob was refused at boot: nothing is decoded.
    BlobRejected,
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::BadFrame => f.write_str("frame has a broken COBS encoding"),
            DeviceError::BadCrc => f.write_str("frame CRC-32 does not match its payload"),
            DeviceError::Malformed => f.write_str("frame payload is not a host message"),
            DeviceError::Oversize => write!(f, "frame exceeded {MAX_FRAME} bytes"),
            DeviceError::SequenceGap { expected, got } => {
                write!(f, "bin {got} arrived where bin {expected} was expected; the count restarts from it")
            }
            DeviceError::WrongCount { expected, got } => {
                write!(f, "bin has {got} spike counts, the model reads n_in = {expected}")
            }
            DeviceError::StateReset { seq, stage } => {
                write!(f, "non-finite value at stage index {stage} of bin {seq}; the decoder state was reset")
            }
            DeviceError::BlobRejected => f.write_str("the embedded blob was refused at boot; nothing is decoded"),
        }
    }
}

impl core::error::Error for DeviceError {}

/// Why a frame could not be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The output buffer is too small for the message.
    BufferTooSmall,
    /// Broken COBS encoding.
    Cobs,
    /// Shorter than a CRC.
    Truncated,
    /// CRC mismatch.
    Crc,
    /// The payload does not deserialise.
    Postcard,
    /// The frame exceeded the reader's buffer.
    Oversize,
}

impl WireError {
    /// The [`DeviceError`] a device reports for it.
    pub fn device_error(self) -> DeviceError {
        match self {
            WireError::Cobs | WireError::BufferTooSmall => DeviceError::BadFrame,
            WireError::Truncated | WireError::Crc => DeviceError::BadCrc,
            WireError::Postcard => DeviceError::Malformed,
            WireError::Oversize => DeviceError::Oversize,
        }
    }
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            WireError::BufferTooSmall => "buffer too small for the encoded frame",
            WireError::Cobs => "frame has a broken COBS encoding",
            WireError::Truncated => "frame is shorter than its 4-byte CRC",
            WireError::Crc => "frame CRC-32 does not match its payload",
            WireError::Postcard => "frame payload does not deserialise as the expected message",
            WireError::Oversize => "frame exceeded the reader's buffer",
        })
    }
}

impl core::error::Error for WireError {}

/// Encode `msg` into `out` as one frame (terminator included), using
/// `scratch` for the payload; returns the frame's length.
pub fn encode<T: Serialize>(msg: &T, scratch: &mut [u8], out: &mut [u8]) -> Result<usize, WireError> {
    let used = postcard::to_slice(msg, scratch).map_err(|_| WireError::BufferTooSmall)?.len();
    let crc = crate::blob::crc32(scratch.get(..used).ok_or(WireError::BufferTooSmall)?);
    let end = used + 4;
    scratch.get_mut(used..end).ok_or(WireError::BufferTooSmall)?.copy_from_slice(&crc.to_le_bytes());
    let payload = scratch.get(..end).ok_or(WireError::BufferTooSmall)?;
    let n = cobs::try_encode(payload, out).map_err(|_| WireError::BufferTooSmall)?;
    *out.get_mut(n).ok_or(WireError::BufferTooSmall)? = 0;
    Ok(n + 1)
}

/// COBS-decode `buf` (no `0x00` inside) in place; returns the decoded length.
///
/// Hand-written rather than `cobs::decode_in_place` because that one keeps
/// (unreachable) bounds-check panics in the firmware, which is linked with a
/// panic handler that must never be referenced (`panic-never`). Checked
/// against the crate on random input in this module's tests.
pub fn cobs_decode_in_place(buf: &mut [u8]) -> Result<usize, WireError> {
    let end = buf.len();
    if end == 0 {
        return Err(WireError::Cobs);
    }
    let (mut src, mut dst) = (0usize, 0usize);
    while src < end {
        let code = usize::from(*buf.get(src).ok_or(WireError::Cobs)?);
        if code == 0 || src + code > end {
            return Err(WireError::Cobs);
        }
        src += 1;
        for _ in 1..code {
            let byte = *buf.get(src).ok_or(WireError::Cobs)?;
            *buf.get_mut(dst).ok_or(WireError::Cobs)? = byte;
            src += 1;
            dst += 1;
        }
        if code != 0xFF && src < end {
            *buf.get_mut(dst).ok_or(WireError::Cobs)? = 0;
            dst += 1;
        }
    }
    Ok(dst)
}

/// Decode one frame (without its `0x00` terminator) in place.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, WireError> {
    let n = cobs_decode_in_place(frame)?;
    let payload = frame.get(..n).ok_or(WireError::Cobs)?;
    let split = n.checked_sub(4).ok_or(WireError::Truncated)?;
    let (body, crc) = payload.split_at(split);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| WireError::Truncated)?);
    if crate::blob::crc32(body) != stored {
        return Err(WireError::Crc);
    }
    postcard::from_bytes(body).map_err(|_| WireError::Postcard)
}

/// Collects bytes into frames: push every received byte; a `0x00` completes a frame.
#[derive(Clone, Debug)]
pub struct FrameReader<const N: usize> {
    buf: heapless::Vec<u8, N>,
    /// The last push completed a frame, still borrowed from `buf` until the next byte.
    delivered: bool,
    overflow: bool,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        FrameReader { buf: heapless::Vec::new(), delivered: false, overflow: false }
    }

    /// Push one byte. Returns `Some(Ok(frame))` when a frame is complete (the
    /// terminator is not included), `Some(Err(Oversize))` when one was too long,
    /// `None` otherwise. Empty frames (two terminators in a row) are skipped.
    pub fn push(&mut self, byte: u8) -> Option<Result<&mut [u8], WireError>> {
        if core::mem::replace(&mut self.delivered, false) {
            self.buf.clear();
        }
        if byte == 0 {
            if core::mem::replace(&mut self.overflow, false) {
                self.buf.clear();
                return Some(Err(WireError::Oversize));
            }
            if self.buf.is_empty() {
                return None;
            }
            self.delivered = true;
            return Some(Ok(self.buf.as_mut_slice()));
        }
        if !self.overflow && self.buf.push(byte).is_err() {
            self.overflow = true;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
        let (mut scratch, mut out) = ([0u8; MAX_FRAME], [0u8; MAX_FRAME + 16]);
        let n = encode(msg, &mut scratch, &mut out).unwrap();
        out[..n].to_vec()
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_the_identity(seq in any::<u32>(), counts in proptest::collection::vec(any::<u8>(), 0..300),
                                              crc in any::<u32>(), vel in proptest::collection::vec(any::<u8>(), 0..16)) {
            let m = HostMessage::Bin { seq, counts: &counts };
            let mut f = frame(&m);
            prop_assert_eq!(f.pop(), Some(0));
            prop_assert!(!f.contains(&0), "COBS leaves no zero inside a frame");
            prop_assert_eq!(decode::<HostMessage<'_>>(&mut f).unwrap(), m);
            let d = DeviceMessage::Decoded { seq, velocity: &vel, rates_crc: crc, instructions: seq ^ crc };
            let mut f = frame(&d);
            f.pop();
            prop_assert_eq!(decode::<DeviceMessage<'_>>(&mut f).unwrap(), d);
        }

        #[test]
        fn cobs_decoder_agrees_with_the_crate(bytes in proptest::collection::vec(1u8..=255, 0..40)) {
            let (mut ours, mut theirs) = (bytes.clone(), bytes.clone());
            let a = cobs_decode_in_place(&mut ours);
            let b = cobs::decode_in_place(&mut theirs);
            match (a, b) {
                (Ok(n), Ok(m)) => {
                    prop_assert_eq!(n, m);
                    prop_assert_eq!(&ours[..n], &theirs[..m]);
                }
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "ours {:?}, the crate's {:?}", a, b.map_err(|_| ())),
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut reader = FrameReader::<256>::new();
            for b in &bytes {
                if let Some(Ok(f)) = reader.push(*b) {
                    let _ = decode::<HostMessage<'_>>(f);
                }
            }
            let mut copy = bytes.clone();
            let _ = decode::<DeviceMessage<'_>>(&mut copy);
        }

        #[test]
        fn any_single_byte_corruption_is_caught(seq in any::<u32>(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
            let counts = [3u8, 0, 255, 1, 0, 0, 7, 9];
            let mut f = frame(&HostMessage::Bin { seq, counts: &counts });
            f.pop();
            let i = at.index(f.len());
            f[i] ^= x;
            prop_assert!(decode::<HostMessage<'_>>(&mut f).is_err());
        }
    }

    /// What a reader of capacity `n` yields for `bytes`, written out plainly:
    /// split at every `0x00`, skip empty frames, refuse frames longer than `n`.
    fn naive_frames(bytes: &[u8], n: usize) -> Vec<Result<Vec<u8>, WireError>> {
        let (mut out, mut current) = (Vec::new(), Vec::new());
        for &b in bytes {
            if b != 0 {
                current.push(b);
            } else if current.len() > n {
                out.push(Err(WireError::Oversize));
                current.clear();
            } else if !current.is_empty() {
                out.push(Ok(core::mem::take(&mut current)));
            }
        }
        out
    }

    fn reader_frames<const N: usize>(bytes: &[u8]) -> Vec<Result<Vec<u8>, WireError>> {
        let mut reader = FrameReader::<N>::new();
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(r) = reader.push(b) {
                out.push(r.map(|f| {
                    let frame = f.to_vec();
                    // The caller may decode in place: the next frame must not see it.
                    f.fill(0xAA);
                    frame
                }));
            }
        }
        out
    }

    proptest! {
        /// Random streams, zeros frequent, frames around the capacity: the
        /// reader equals the plain one, oversize and empty frames included.
        #[test]
        fn reader_equals_a_naive_reader(
            bytes in proptest::collection::vec(prop_oneof![1 => Just(0u8), 5 => 1u8..=255], 0..2000),
        ) {
            prop_assert_eq!(reader_frames::<1>(&bytes), naive_frames(&bytes, 1));
            prop_assert_eq!(reader_frames::<4>(&bytes), naive_frames(&bytes, 4));
            prop_assert_eq!(reader_frames::<9>(&bytes), naive_frames(&bytes, 9));
            prop_assert_eq!(reader_frames::<64>(&bytes), naive_frames(&bytes, 64));
        }

        /// Valid frames between broken (garbage before them), cut (merged
        /// with the next frame) and oversize ones: the reader equals the plain
        /// one, and exactly the intact frames that fit decode, in order.
        #[test]
        fn reader_delivers_the_intact_frames_between_malformed_ones(
            parts in proptest::collection::vec((any::<u32>(), 0usize..40, 0u8..4), 1..30),
        ) {
            const N: usize = 48;
            let (mut stream, mut want) = (Vec::new(), Vec::new());
            let mut merged = false;
            for (seq, len, kind) in &parts {
                let counts: Vec<u8> = (0..*len).map(|i| (i as u32 ^ seq) as u8).collect();
                let mut f = frame(&HostMessage::Bin { seq: *seq, counts: &counts });
                match kind {
                    0 => f.insert(0, 0x55),
                    1 => f.truncate(f.len() / 2),
                    _ if !merged && f.len() - 1 <= N => want.push((*seq, counts.clone())),
                    _ => {}
                }
                merged = *kind == 1;
                stream.extend_from_slice(&f);
            }
            let frames = reader_frames::<N>(&stream);
            prop_assert_eq!(&frames, &naive_frames(&stream, N));
            let mut got = Vec::new();
            for mut f in frames.into_iter().flatten() {
                if let Ok(HostMessage::Bin { seq, counts }) = decode::<HostMessage<'_>>(&mut f) {
                    got.push((seq, counts.to_vec()));
                }
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn reader_resynchronises_after_garbage_and_oversize() {
        let good = frame(&HostMessage::Reset);
        let mut stream = Vec::new();
        stream.extend_from_slice(&[7, 7, 7, 0]); // garbage, then a terminator
        stream.extend_from_slice(&[1u8; 300]); // too long for the reader
        stream.push(0);
        stream.extend_from_slice(&good);
        stream.extend_from_slice(&[0, 0]); // empty frames are skipped
        stream.extend_from_slice(&frame(&HostMessage::Stats));
        let mut reader = FrameReader::<64>::new();
        let mut out = Vec::new();
        for b in stream {
            if let Some(r) = reader.push(b) {
                out.push(r.map_err(|e| e.device_error()).and_then(|f| {
                    decode::<HostMessage<'_>>(f).map(|m| std::format!("{m:?}")).map_err(|e| e.device_error())
                }));
            }
        }
        assert_eq!(
            out,
            std::vec![
                Err(DeviceError::BadFrame),
                Err(DeviceError::Oversize),
                Ok(std::string::String::from("Reset")),
                Ok(std::string::String::from("Stats")),
            ]
        );
    }

    #[test]
    fn errors_display_what_and_where() {
        use std::string::ToString;
        assert_eq!(WireError::Truncated.to_string(), "frame is shorter than its 4-byte CRC");
        assert_eq!(
            DeviceError::SequenceGap { expected: 4, got: 9 }.to_string(),
            "bin 9 arrived where bin 4 was expected; the count restarts from it"
        );
        assert_eq!(DeviceError::Oversize.to_string(), "frame exceeded 1024 bytes");
        for e in [WireError::BufferTooSmall, WireError::Cobs, WireError::Crc, WireError::Postcard, WireError::Oversize]
        {
            let (message, device) = (e.to_string(), e.device_error().to_string());
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
            assert!(device.starts_with(|c: char| c.is_lowercase()), "{device}");
            let _: &dyn core::error::Error = &e;
        }
    }

    #[test]
    fn truncated_and_tampered_frames_are_typed_errors() {
        let mut f = frame(&HostMessage::Stats);
        f.pop();
        let mut short = f[..2].to_vec();
        assert!(matches!(decode::<HostMessage<'_>>(&mut short), Err(WireError::Truncated | WireError::Cobs)));
        let mut bad = frame(&DeviceMessage::Error(DeviceError::Oversize));
        bad.pop();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert!(decode::<DeviceMessage<'_>>(&mut bad).is_err());
        assert!(encode(&HostMessage::Bin { seq: 1, counts: &[1; 64] }, &mut [0u8; 16], &mut [0u8; 128]).is_err());
    }
}
