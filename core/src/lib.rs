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
//!
//! # Example
//!
//! Build a blob (a device embeds a trained one in flash instead:
//! `static BLOB: AlignedBlob<N> = AlignedBlob(*include_bytes!("model.lfw"));`),
//! validate it with [`StreamingDecoder::from_blob`], then [`step`](StreamingDecoder::step)
//! once per bin. [`BlobWriter`](blob::BlobWriter) needs the feature `std`.
//!
//! ```
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use lflow_core::blob::{AlignedBlob, BlobWriter, Tensor};
//! use lflow_core::{InputSchedule, Mean, StorageFormat, StreamingDecoder};
//!
//! // N_IN, H, D = 3H, FF, N_OUT, W, N_BEH: checked at compile time.
//! type Decoder<'a> = StreamingDecoder<'a, 3, 4, 12, 8, 5, 2, 2>;
//!
//! // A blob of the decoder's sizes, every weight 0.1.
//! let dims = Decoder::DIMS;
//! let mut writer = BlobWriter::new(dims, StorageFormat::F32, InputSchedule::CurrentBin, 0.55, 0.01)?;
//! for t in Tensor::ALL {
//!     let (rows, cols) = t.shape(&dims);
//!     writer.tensor(t, &vec![0.1; (rows * cols) as usize])?;
//! }
//! let bytes = writer.finish()?;
//! let mut flash = AlignedBlob([0u8; 8192]); // aligned, as a blob embedded in flash
//! let blob = flash.0.get_mut(..bytes.len()).ok_or("blob larger than the buffer")?;
//! blob.copy_from_slice(&bytes);
//!
//! let mut dec = Decoder::from_blob(blob)?; // validated, zero-copy
//! for spike_counts in [[0u16, 2, 1], [1, 0, 3], [4, 1, 0]] {
//!     let out = dec.step(&spike_counts, &mut Mean)?; // one bin: [u16; N_IN]
//!     // out.rates [N_OUT] spikes/bin, out.log_rates, out.velocity [N_BEH], out.latents [D]
//!     assert!(out.rates.iter().all(|r| r.is_finite() && *r > 0.0));
//! }
//! assert_eq!(dec.bin(), 3);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```
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
