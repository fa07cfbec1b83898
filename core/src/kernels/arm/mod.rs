//! The Cortex-M4F/M7 kernels, in inline assembly: the one module of
//! `lflow-core` where `unsafe` is allowed. Every function here computes
//! exactly what its portable twin in `portable` computes (to the bit, for
//! finite values; NaN payloads may differ, and the decoder refuses NaN
//! anyway); the host's tests check the twins against the arithmetic's
//! definition, and the firmware's kernel check (`HostMessage::KernelCheck`)
//! runs both on the device under QEMU and compares every output.
//!
//! - int8: three rows per pass, 64 columns per loop: `LDRD` loads 4 int16
//!   activations (stored pairwise by `Layout::Paired`), `LDR` four int8
//!   weights of a row, `SXTB16` / `SXTB16 ROR #8` widen them in pairs, and
//!   `SMLAD` adds two 16x16 products to a row's i32 sum (cannot overflow:
//!   `matrix::MAX_I8_COLS`). 258 instructions per 192 MACs; the pass also
//!   converts each group's sums to f32 outputs.
//! - f32: four rows per pass, 16 columns per loop: `VLDM` loads four inputs
//!   once for the four rows and four weights of each row; `VFMA.F32` (one
//!   rounding, as the twin's correctly rounded `fma`) continues each row's
//!   chain in column order.
//!   86 instructions per 64 MACs.
//! - f16: as f32, with `VCVTB`/`VCVTT.F32.F16` widening each half exactly.
//!   150 instructions per 64 MACs.
//!
//! Only `LDR` and `LDRH` may meet an unaligned address (int8 and f16 rows of
//! odd width; allowed on ARMv7-M). `LDRD` reads the int16 activations, which
//! `Activations` aligns to 8 bytes; `VLDM`/`VSTM` addresses are word-aligned:
//! f32 data always, f16 rows after their group's head column, and an input
//! vector that is not falls back to the twin.
#![allow(unsafe_code)]

mod float;
mod int8;

use crate::matrix::{Matrix, MatrixData};
pub use float::{accumulate4, dots4};

/// `y = W x + bias` (the twin: `portable::matvec`, which also takes every
/// case the assembly does not: no columns, short slices, a misaligned input).
pub fn matvec(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    match w.data() {
        MatrixData::F32(data) => float::matvec_f32(w, data, x, bias, y),
        MatrixData::F16(data) => float::matvec_f16(w, data, x, bias, y),
        MatrixData::I8 { weights, scales } => int8::matvec_i8(w, weights, scales, x, bias, y),
    }
}
