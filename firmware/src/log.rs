//! Log lines (feature `defmt`); without it every function is empty.

use lflow_core::wire::DeviceError;
use lflow_core::BlobError;

#[cfg(all(feature = "defmt", target_os = "none", feature = "qemu", not(feature = "stm32h7")))]
use defmt_semihosting as _;

#[cfg(all(feature = "defmt", target_os = "none", feature = "stm32h7"))]
use defmt_rtt as _;

/// The blob validated.
pub fn ready(blob_len: usize) {
    #[cfg(all(feature = "defmt", target_os = "none"))]
    defmt::info!("blob of {=usize} bytes validated; decoding", blob_len);
    let _ = blob_len;
}

/// The blob was refused.
pub fn blob_refused(e: &BlobError) {
    #[cfg(all(feature = "defmt", target_os = "none"))]
    defmt::error!("blob refused: {}", e);
    let _ = e;
}

/// An error reply.
pub fn error(e: &DeviceError) {
    #[cfg(all(feature = "defmt", target_os = "none"))]
    defmt::warn!("error reply: {}", e);
    let _ = e;
}
