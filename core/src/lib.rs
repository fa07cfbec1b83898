//! `lflow-core`: the LangevinFlow model run bin by bin on a microcontroller.
//!
//! The data flow of one bin (`../shared/MODEL.md`, sections 1-5 and 9):
//!
//! ```text
//! spikes [N_IN] -> gru (encoder) -> posterior (t = 0) / langevin (t >= 1)
//!   -> l = [z, v, h] [D] -> attention over the KV ring of the last W bins
//!   -> layer_norm -> feed_forward -> layer_norm -> readout (log-rates [N_OUT])
//!   -> velocity [N_BEH]
//! ```
//!
//! `#![no_std]`, no heap, and no panic on any input; `unsafe` only in the
//! Cortex-M kernels (`kernels::arm`, each with a portable twin that tests
//! prove equal, `core/KERNELS.md`); every size is
//! a const generic of [`StreamingDecoder`], weights are borrowed zero-copy from
//! a validated [`blob`] (`LFW1`, see `core/FORMAT.md`), and errors are enums.
#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod attention;
pub mod blob;
pub mod decoder;
pub mod feed_forward;
pub mod gru;
pub mod kernels;
pub mod langevin;
pub mod layer_norm;
pub mod linear;
pub mod math;
pub mod matrix;
pub mod noise;
pub mod posterior;
pub mod potential;
pub mod readout;
pub mod schedule;
pub mod velocity;
#[cfg(feature = "wire")]
pub mod wire;

pub use blob::{BlobError, Dims};
pub use decoder::{DecoderState, Stage, StepError, StepOutput, StreamingDecoder, SPIKE_CEILING};
#[cfg(feature = "std")]
pub use decoder::{DynDecoder, DynOutput};
pub use matrix::{Kernel, Matrix, StorageFormat};
pub use noise::{Mean, NoiseError, NoiseSource, Provided, Seeded};
pub use schedule::InputSchedule;
