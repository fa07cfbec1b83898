//! Deployment: trained parameters as an LFW1 blob for `lflow-core` and back
//! ([`blob`]), the device's velocity decoder ([`velocity`]), the blob decoded
//! bin by bin without resets as a device decodes it ([`stream`],
//! [`stream_plot`]), a run exported and its blob measured ([`export`]), the
//! firmware and its wire link
//! (QEMU, a board's serial port or the host twin, [`link`]), the closed loop
//! over that link ([`closed_loop`]) and the microcontroller benchmarks
//! ([`mcu_bench`]).
//!
//! Uses every layer below: [`crate::eval`], [`crate::train`], [`crate::data`]
//! and the foundation.

pub mod blob;
pub mod closed_loop;
pub mod export;
pub mod link;
pub mod mcu_bench;
pub mod stream;
pub mod stream_plot;
pub mod velocity;
