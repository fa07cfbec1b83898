//! The device's frame path on arbitrary bytes: `FrameReader`, then `decode`
//! of a host message. Nothing may panic.
#![no_main]

use lflow_core::wire::{decode, FrameReader, HostMessage, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = FrameReader::<MAX_FRAME>::new();
    for &b in data {
        if let Some(Ok(frame)) = reader.push(b) {
            if let Ok(HostMessage::Bin { counts, .. }) = decode::<HostMessage<'_>>(frame) {
                let _ = counts.len();
            }
        }
    }
});
