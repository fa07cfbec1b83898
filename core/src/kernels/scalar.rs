//! The scalar steps every kernel shares: the fused multiply-add, a matrix's
//! rows, and the f16 widening.

use half::f16;

/// `a * b + c` rounded once: the IEEE operation of the FPU's `VFMA.F32`.
/// `libm::fmaf` without `std`; with it, the platform's `fmaf` (glibc's uses
/// the CPU's FMA instruction where there is one), both correctly rounded, so
/// every target gets the same bits.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(feature = "std")]
    return a.mul_add(b, c);
    #[cfg(not(feature = "std"))]
    return libm::fmaf(a, b, c);
}

/// The rows of a row-major matrix, front to back.
///
/// On the device, [`Rows`]: `chunks_exact` without its chunk-size assertion,
/// an unreachable panic path the firmware's `panic-never` build must not
/// link. On the host, `chunks_exact` itself, whose iterator lets the int8
/// kernel vectorise (measured 94 us per step against 231 us). Both hand the
/// same rows to the same dot products, so host and device stay bit-identical.
#[cfg(target_os = "none")]
pub(crate) fn rows<T>(data: &[T], cols: usize) -> Rows<'_, T> {
    Rows { rest: data, cols }
}

/// See the device version.
#[cfg(not(target_os = "none"))]
pub(crate) fn rows<T>(data: &[T], cols: usize) -> core::slice::ChunksExact<'_, T> {
    data.chunks_exact(cols.max(1))
}

/// `chunks_exact` without the assertion (see [`rows`]).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) struct Rows<'a, T> {
    rest: &'a [T],
    cols: usize,
}

impl<'a, T> Iterator for Rows<'a, T> {
    type Item = &'a [T];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [T]> {
        if self.cols == 0 {
            return None;
        }
        let (row, tail) = self.rest.split_at_checked(self.cols)?;
        self.rest = tail;
        Some(row)
    }
}

/// f16 bits to f32 for finite values (normal, subnormal, zero), branch-free:
/// shift the exponent and mantissa into f32 position, then rescale the
/// exponent bias (15 to 127) by an exact multiplication with `2^112`.
/// Infinities and NaN never reach a kernel (blobs reject them).
#[inline(always)]
pub fn f16_to_f32_finite(h: f16) -> f32 {
    const BIAS_FIX: f32 = f32::from_bits(0x7780_0000); // 2^112
    let bits = u32::from(h.to_bits());
    // Sign to bit 31, exponent and mantissa to bits 13..=27; the product keeps the sign.
    f32::from_bits(((bits & 0x8000) << 16) | ((bits & 0x7fff) << 13)) * BIAS_FIX
}
