//! Deployment: a streaming run as an LFW1 blob for `lflow-core` with its
//! velocity decoder ([`export`]), the blob decoded bin by bin without resets
//! as a device decodes it ([`stream`]), the firmware and its wire link
//! (QEMU, a board's serial port or the host twin, [`link`]), the closed loop
//! over that link ([`closed_loop`]) and the microcontroller benchmarks
//! ([`mcu_bench`]).
//!
//! Uses every layer below: [`crate::eval`], [`crate::train`], [`crate::data`]
//! and the foundation.

pub mod closed_loop;
pub mod export;
pub mod link;
pub mod mcu_bench;
pub mod stream;
