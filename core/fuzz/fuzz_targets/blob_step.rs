//! `from_blob` then `step` on arbitrary bytes.
//!
//! Input: one mode byte, the blob, then `mode >> 4` bins of 3 spike counts
//! (u16 little-endian). Mode bit 0 reseals both CRCs first, so the fuzzer
//! also reaches the checks behind them; bit 1 picks seeded noise over mean mode.
#![no_main]

use lflow_core::blob::writer::reseal;
use lflow_core::{Mean, Seeded, StreamingDecoder};
use libfuzzer_sys::fuzz_target;

type Tiny<'a> = StreamingDecoder<'a, 3, 4, 12, 8, 5, 2, 2>;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let spike_bytes = usize::from(mode >> 4) * 6;
    if rest.len() < spike_bytes {
        return;
    }
    let (blob, spikes) = rest.split_at(rest.len() - spike_bytes);
    let mut words = vec![0u128; blob.len().div_ceil(16)];
    // A 16-byte aligned copy, as a blob sits in flash.
    let buf = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..blob.len()];
    buf.copy_from_slice(blob);
    if mode & 1 != 0 {
        reseal(buf);
    }
    let Ok(mut dec) = Tiny::from_blob(buf) else { return };
    let mut seeded = Seeded::new(u64::from(mode));
    for bin in spikes.chunks_exact(6) {
        let x = [
            u16::from_le_bytes([bin[0], bin[1]]),
            u16::from_le_bytes([bin[2], bin[3]]),
            u16::from_le_bytes([bin[4], bin[5]]),
        ];
        let result = if mode & 2 != 0 {
            dec.step(&x, &mut seeded).map(|o| o.rates[0])
        } else {
            dec.step(&x, &mut Mean).map(|o| o.rates[0])
        };
        if let Ok(rate) = result {
            assert!(rate.is_finite());
        }
    }
});
