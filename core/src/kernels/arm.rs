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

use super::portable::{dequantise, dot_i8};
use super::quantise::{quantise, Activations, Layout};
use crate::matrix::{Matrix, MatrixData, MAX_I8_COLS};
use core::arch::asm;
use half::f16;

/// `y = W x + bias` (the twin: `portable::matvec`).
pub fn matvec(w: &Matrix<'_>, x: &[f32], bias: &[f32], y: &mut [f32]) {
    let cols = w.cols();
    match w.data() {
        MatrixData::F32(data) => matvec_f32(w, data, x, bias, y),
        MatrixData::F16(data) => matvec_f16(w, data, x, bias, y),
        MatrixData::I8 { weights, scales } => matvec_i8(w, weights, scales, x, bias, y),
    }
    if cols == 0 {
        for (yi, bi) in y.iter_mut().zip(bias) {
            *yi = *bi;
        }
    }
}

fn aligned<T>(p: *const T) -> bool {
    (p as usize).is_multiple_of(4)
}

// ---------------------------------------------------------------- int8

/// Three rows by 4 columns: `{a0}`..`{a2}` += rows `{p}`, `{p} + {s}`,
/// `{p} + 2 {s}` times the activation pairs `(x0, x2)`, `(x1, x3)`.
macro_rules! i8_quad {
    () => {
        concat!(
            "ldrd {x02}, {x13}, [{x}], #8\n",
            "ldr {w}, [{p}, {s}]\n",
            "sxtb16 {t}, {w}\n",
            "smlad {a1}, {t}, {x02}, {a1}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a1}, {w}, {x13}, {a1}\n",
            "ldr {w}, [{p}, {s}, lsl #1]\n",
            "sxtb16 {t}, {w}\n",
            "smlad {a2}, {t}, {x02}, {a2}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a2}, {w}, {x13}, {a2}\n",
            "ldr {w}, [{p}], #4\n",
            "sxtb16 {t}, {w}\n",
            "smlad {a0}, {t}, {x02}, {a0}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a0}, {w}, {x13}, {a0}\n",
        )
    };
}

/// Four quads: 16 columns of three rows.
macro_rules! i8_quads4 {
    () => {
        concat!(i8_quad!(), i8_quad!(), i8_quad!(), i8_quad!())
    };
}

/// Continue three rows' sums over `n` passes of the quads given.
macro_rules! i8_rows3_loop {
    ($p:ident, $s:expr, $x:ident, $n:expr, $acc:ident, $($quad:expr),+) => {
        // SAFETY: see `i8_rows3`.
        unsafe {
            asm!(
                "2:",
                $($quad,)+
                "subs {n}, {n}, #1",
                "bne 2b",
                x = inout(reg) $x, p = inout(reg) $p, s = in(reg) $s, n = inout(reg) $n => _,
                a0 = inout(reg) $acc[0], a1 = inout(reg) $acc[1], a2 = inout(reg) $acc[2],
                x02 = out(reg) _, x13 = out(reg) _, w = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            );
        }
    };
}

/// The integer sums of the rows at `row`, `row + stride`, `row + 2 stride`
/// over the first `4 * quads` columns of the `Layout::Paired` activations `q`.
///
/// # Safety
/// The three rows hold at least `4 * quads` weights each and `q` as many
/// activations, and `q` is word-aligned.
#[inline(always)]
unsafe fn i8_rows3(row: *const i8, stride: usize, q: *const i16, quads: usize) -> [i32; 3] {
    let mut acc = [0i32; 3];
    let (mut p, mut x) = (row, q);
    let (fours, ones) = (quads / 4, quads % 4);
    if fours > 0 {
        i8_rows3_loop!(p, stride, x, fours, acc, i8_quads4!());
    }
    if ones > 0 {
        i8_rows3_loop!(p, stride, x, ones, acc, i8_quad!());
    }
    let _ = (p, x); // advanced past the columns summed
    acc
}

/// What the int8 matrix pass reads and advances, in memory (the pass needs
/// every core register for its loops).
#[repr(C)]
struct I8Pass {
    /// `Layout::Paired` activations (offset 0).
    q: *const i16,
    /// Passes of 16 quads (4).
    sixteens: usize,
    /// Quads after them (8).
    ones: usize,
    /// Columns after the quads (12).
    tail: usize,
    /// The next output (16), bias (20) and row scale (24).
    y: *mut f32,
    bias: *const f32,
    scales: *const f32,
    /// Groups of three rows left (28).
    groups: usize,
    /// The activations' scale (32).
    x_scale: f32,
}

// The assembly reads the fields at these offsets.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(I8Pass, q) == 0 && offset_of!(I8Pass, sixteens) == 4 && offset_of!(I8Pass, ones) == 8);
    assert!(offset_of!(I8Pass, tail) == 12 && offset_of!(I8Pass, y) == 16 && offset_of!(I8Pass, bias) == 20);
    assert!(offset_of!(I8Pass, scales) == 24 && offset_of!(I8Pass, groups) == 28);
    assert!(offset_of!(I8Pass, x_scale) == 32);
};

/// Every group of three rows of an int8 matrix: the integer sums (quads, then
/// single tail columns), then `y = f32(acc) * (row_scale * x_scale) + bias`
/// exactly as [`dequantise`] computes it (`VMUL`, then `VMLA`, which rounds
/// the product before the sum).
///
/// # Safety
/// `row` is the first of `3 * pass.groups` rows of `cols` weights each;
/// `pass.q` holds `cols` word-aligned activations with `cols = 4 * (16 *
/// sixteens + ones) + tail`; `y`, `bias`, `scales` hold `3 * groups` values; `groups >= 1`.
unsafe fn i8_matrix_pass(row: *const i8, cols: usize, pass: &mut I8Pass) {
    // SAFETY: as the function's contract; the FPU registers used are saved and restored.
    unsafe {
        asm!(
            "vpush {{s0-s10}}",
            "vldr s3, [{c}, #32]",
            "1:",
            "ldr {x}, [{c}]",
            "mov {a0}, #0",
            "mov {a1}, #0",
            "mov {a2}, #0",
            "ldr {n}, [{c}, #4]",
            "cmp {n}, #0",
            "beq 3f",
            "2:",
            i8_quads4!(),
            i8_quads4!(),
            i8_quads4!(),
            i8_quads4!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "3:",
            "ldr {n}, [{c}, #8]",
            "cmp {n}, #0",
            "beq 5f",
            "4:",
            i8_quad!(),
            "subs {n}, {n}, #1",
            "bne 4b",
            "5:",
            "ldr {n}, [{c}, #12]",
            "cmp {n}, #0",
            "beq 7f",
            "6:",
            "ldrsh {x02}, [{x}], #2",
            "ldrsb {w}, [{p}, {s}]",
            "smlabb {a1}, {w}, {x02}, {a1}",
            "ldrsb {w}, [{p}, {s}, lsl #1]",
            "smlabb {a2}, {w}, {x02}, {a2}",
            "ldrsb {w}, [{p}], #1",
            "smlabb {a0}, {w}, {x02}, {a0}",
            "subs {n}, {n}, #1",
            "bne 6b",
            "7:",
            "ldr {t}, [{c}, #24]",
            "vldm {t}!, {{s4-s6}}",
            "str {t}, [{c}, #24]",
            "ldr {t}, [{c}, #20]",
            "vldm {t}!, {{s8-s10}}",
            "str {t}, [{c}, #20]",
            "vmov s0, {a0}",
            "vmov s1, {a1}",
            "vmov s2, {a2}",
            "vcvt.f32.s32 s0, s0",
            "vcvt.f32.s32 s1, s1",
            "vcvt.f32.s32 s2, s2",
            "vmul.f32 s4, s4, s3",
            "vmul.f32 s5, s5, s3",
            "vmul.f32 s6, s6, s3",
            "vmla.f32 s8, s0, s4",
            "vmla.f32 s9, s1, s5",
            "vmla.f32 s10, s2, s6",
            "ldr {t}, [{c}, #16]",
            "vstm {t}!, {{s8-s10}}",
            "str {t}, [{c}, #16]",
            "add {p}, {p}, {s}, lsl #1",
            "ldr {t}, [{c}, #28]",
            "subs {t}, {t}, #1",
            "str {t}, [{c}, #28]",
            "bne 1b",
            "vpop {{s0-s10}}",
            c = in(reg) pass as *mut I8Pass, p = inout(reg) row => _, s = in(reg) cols,
            a0 = out(reg) _, a1 = out(reg) _, a2 = out(reg) _, x = out(reg) _, n = out(reg) _,
            x02 = out(reg) _, x13 = out(reg) _, w = out(reg) _, t = out(reg) _,
        );
    }
}

fn matvec_i8(w: &Matrix<'_>, weights: &[i8], scales: &[f32], x: &[f32], bias: &[f32], y: &mut [f32]) {
    let cols = w.cols();
    // The smallest activation buffer that holds the input: zeroing it is part of every product.
    if cols <= 64 {
        matvec_i8_with::<64>(w, weights, scales, x, bias, y)
    } else if cols <= 256 {
        matvec_i8_with::<256>(w, weights, scales, x, bias, y)
    } else {
        matvec_i8_with::<MAX_I8_COLS>(w, weights, scales, x, bias, y)
    }
}

#[inline(always)]
fn matvec_i8_with<const N: usize>(
    w: &Matrix<'_>,
    weights: &[i8],
    scales: &[f32],
    x: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    let (nrows, cols) = (w.rows(), w.cols());
    let fits = weights.len() == nrows * cols && scales.len() >= nrows && bias.len() >= nrows && y.len() >= nrows;
    let Some(x) = x.get(..cols).filter(|_| fits && cols > 0 && cols <= N) else {
        return super::portable::matvec(w, x, bias, y);
    };
    let mut q = Activations::<N>::new();
    let x_scale = quantise(x, &mut q.0, Layout::Paired);
    let q = q.0.get(..cols).unwrap_or(&[]);
    let quads = cols / 4;
    // The sums of rows r, r + step, r + 2 step (each below nrows).
    let rows3 = |r: usize, step: usize| {
        let row = weights.as_ptr().wrapping_add(r * cols);
        // SAFETY: the three rows are below `nrows` and `weights` holds `nrows * cols`,
        // so each has `cols >= 4 * quads` weights; `q` holds `cols` activations, 8-byte aligned.
        let acc = unsafe { i8_rows3(row, step * cols, q.as_ptr(), quads) };
        if cols % 4 == 0 {
            acc
        } else {
            i8_tail3(weights, q, cols, r, step, acc)
        }
    };
    let full = nrows / 3;
    if full > 0 {
        let mut pass = I8Pass {
            q: q.as_ptr(),
            sixteens: quads / 16,
            ones: quads % 16,
            tail: cols % 4,
            y: y.as_mut_ptr(),
            bias: bias.as_ptr(),
            scales: scales.as_ptr(),
            groups: full,
            x_scale,
        };
        // SAFETY: `weights` holds `nrows * cols >= 3 * full * cols` weights; `q` holds `cols`
        // activations (8-byte aligned); `y`, `bias`, `scales` hold at least `nrows` values.
        unsafe { i8_matrix_pass(weights.as_ptr(), cols, &mut pass) };
    }
    // One or two rows left: the last three rows again, or (fewer than three rows) one row three times.
    for r in 3 * full..nrows {
        let (acc, i) = if nrows >= 3 { (rows3(nrows - 3, 1), r + 3 - nrows) } else { (rows3(r, 0), 0) };
        if let (Some(yi), Some(bi), Some(si), Some(a)) = (y.get_mut(r), bias.get(r), scales.get(r), acc.get(i)) {
            *yi = dequantise(*a, *si, x_scale, *bi);
        }
    }
}

/// The last `cols % 4` columns of three rows' sums (kept out of the main loop).
#[cold]
#[inline(never)]
fn i8_tail3(weights: &[i8], q: &[i16], cols: usize, r: usize, step: usize, mut acc: [i32; 3]) -> [i32; 3] {
    let done = cols / 4 * 4;
    let tail = q.get(done..).unwrap_or(&[]);
    for (i, a) in acc.iter_mut().enumerate() {
        let at = (r + i * step) * cols + done;
        *a = dot_i8(weights.get(at..at + tail.len()).unwrap_or(&[]), tail, *a);
    }
    acc
}

// ---------------------------------------------------------------- f32 and f16
//
// Rust's `sreg` operands need double-precision VFP, which the M4F lacks, so
// these blocks take no FPU operands: they save the FPU registers they use
// (`VPUSH`/`VPOP`), and load and store the four rows' chains through memory.

/// Four rows by 4 columns of f32: s16..s19 inputs, s20..s23 the rows' chains.
macro_rules! f32_half {
    () => {
        concat!(
            "vldm {x}!, {{s16-s19}}\n",
            "vldm {p0}!, {{s0-s3}}\n",
            "vldm {p1}!, {{s4-s7}}\n",
            "vldm {p2}!, {{s8-s11}}\n",
            "vldm {p3}!, {{s12-s15}}\n",
            "vfma.f32 s20, s0, s16\n",
            "vfma.f32 s21, s4, s16\n",
            "vfma.f32 s22, s8, s16\n",
            "vfma.f32 s23, s12, s16\n",
            "vfma.f32 s20, s1, s17\n",
            "vfma.f32 s21, s5, s17\n",
            "vfma.f32 s22, s9, s17\n",
            "vfma.f32 s23, s13, s17\n",
            "vfma.f32 s20, s2, s18\n",
            "vfma.f32 s21, s6, s18\n",
            "vfma.f32 s22, s10, s18\n",
            "vfma.f32 s23, s14, s18\n",
            "vfma.f32 s20, s3, s19\n",
            "vfma.f32 s21, s7, s19\n",
            "vfma.f32 s22, s11, s19\n",
            "vfma.f32 s23, s15, s19\n",
        )
    };
}

/// One column of four f32 rows (`{h}` is the f16 column's scratch, unused here).
macro_rules! f32_column {
    () => {
        concat!(
            "@ {h}\n",
            "vldm {x}!, {{s16}}\n",
            "vldm {p0}!, {{s0}}\n",
            "vldm {p1}!, {{s1}}\n",
            "vldm {p2}!, {{s2}}\n",
            "vldm {p3}!, {{s3}}\n",
            "vfma.f32 s20, s0, s16\n",
            "vfma.f32 s21, s1, s16\n",
            "vfma.f32 s22, s2, s16\n",
            "vfma.f32 s23, s3, s16\n",
        )
    };
}

/// Four rows by 4 columns of f16: each row's two words widened into s8..s15.
macro_rules! f16_half {
    () => {
        concat!(
            "vldm {x}!, {{s16-s19}}\n",
            "vldm {p0}!, {{s0-s1}}\n",
            "vldm {p1}!, {{s2-s3}}\n",
            "vldm {p2}!, {{s4-s5}}\n",
            "vldm {p3}!, {{s6-s7}}\n",
            "vcvtb.f32.f16 s8, s0\n",
            "vcvtt.f32.f16 s9, s0\n",
            "vcvtb.f32.f16 s10, s1\n",
            "vcvtt.f32.f16 s11, s1\n",
            "vcvtb.f32.f16 s12, s2\n",
            "vcvtt.f32.f16 s13, s2\n",
            "vcvtb.f32.f16 s14, s3\n",
            "vcvtt.f32.f16 s15, s3\n",
            "vfma.f32 s20, s8, s16\n",
            "vfma.f32 s20, s9, s17\n",
            "vfma.f32 s20, s10, s18\n",
            "vfma.f32 s20, s11, s19\n",
            "vfma.f32 s21, s12, s16\n",
            "vfma.f32 s21, s13, s17\n",
            "vfma.f32 s21, s14, s18\n",
            "vfma.f32 s21, s15, s19\n",
            "vcvtb.f32.f16 s8, s4\n",
            "vcvtt.f32.f16 s9, s4\n",
            "vcvtb.f32.f16 s10, s5\n",
            "vcvtt.f32.f16 s11, s5\n",
            "vcvtb.f32.f16 s12, s6\n",
            "vcvtt.f32.f16 s13, s6\n",
            "vcvtb.f32.f16 s14, s7\n",
            "vcvtt.f32.f16 s15, s7\n",
            "vfma.f32 s22, s8, s16\n",
            "vfma.f32 s22, s9, s17\n",
            "vfma.f32 s22, s10, s18\n",
            "vfma.f32 s22, s11, s19\n",
            "vfma.f32 s23, s12, s16\n",
            "vfma.f32 s23, s13, s17\n",
            "vfma.f32 s23, s14, s18\n",
            "vfma.f32 s23, s15, s19\n",
        )
    };
}

/// One column of four f16 rows (halfword loads: any alignment).
macro_rules! f16_column {
    () => {
        concat!(
            "vldm {x}!, {{s16}}\n",
            "ldrh {h}, [{p0}], #2\n",
            "vmov s0, {h}\n",
            "ldrh {h}, [{p1}], #2\n",
            "vmov s1, {h}\n",
            "ldrh {h}, [{p2}], #2\n",
            "vmov s2, {h}\n",
            "ldrh {h}, [{p3}], #2\n",
            "vmov s3, {h}\n",
            "vcvtb.f32.f16 s0, s0\n",
            "vcvtb.f32.f16 s1, s1\n",
            "vcvtb.f32.f16 s2, s2\n",
            "vcvtb.f32.f16 s3, s3\n",
            "vfma.f32 s20, s0, s16\n",
            "vfma.f32 s21, s1, s16\n",
            "vfma.f32 s22, s2, s16\n",
            "vfma.f32 s23, s3, s16\n",
        )
    };
}

/// Four rows' chains `acc` over `head` single columns, then 16-column passes,
/// at most one 8-column block, and single columns to `cols`.
macro_rules! rows4 {
    ($half:ident, $column:ident, $p:expr, $x:expr, $head:expr, $cols:expr, $acc:expr) => {
        let rest = $cols - $head;
        let (sixteens, eight, tail) = (rest / 16, (rest % 16) / 8, rest % 8);
        // SAFETY: the callers pass rows below `nrows` of a matrix holding exactly
        // `nrows * cols` elements, so every pointer covers `head + 16 * sixteens +
        // 8 * eight + tail = cols` elements; each is word-aligned after `head`
        // columns (for VLDM), as is `x` (f32); `acc` is 4 f32. The FPU registers
        // used are saved and restored.
        unsafe {
            asm!(
                "vpush {{s0-s23}}",
                "vldm {acc}, {{s20-s23}}",
                "cmp {head}, #0",
                "beq 3f",
                "2:",
                $column!(),
                "subs {head}, {head}, #1",
                "bne 2b",
                "3:",
                "cmp {n}, #0",
                "beq 5f",
                "4:",
                $half!(),
                $half!(),
                $half!(),
                $half!(),
                "subs {n}, {n}, #1",
                "bne 4b",
                "5:",
                "cmp {eight}, #0",
                "beq 8f",
                $half!(),
                $half!(),
                "8:",
                "cmp {tail}, #0",
                "beq 7f",
                "6:",
                $column!(),
                "subs {tail}, {tail}, #1",
                "bne 6b",
                "7:",
                "vstm {acc}, {{s20-s23}}",
                "vpop {{s0-s23}}",
                x = inout(reg) $x => _, p0 = inout(reg) $p[0] => _, p1 = inout(reg) $p[1] => _,
                p2 = inout(reg) $p[2] => _, p3 = inout(reg) $p[3] => _,
                head = inout(reg) $head => _, n = inout(reg) sixteens => _, eight = in(reg) eight,
                tail = inout(reg) tail => _, acc = in(reg) $acc.as_mut_ptr(), h = out(reg) _,
            );
        }
    };
}

/// One f32 or f16 matrix, four rows per pass. A group's rows must reach a
/// word-aligned column together: every row of an f32 matrix is aligned at
/// column 0, and so is every f16 row of an even width; f16 rows of an odd
/// width alternate between column 0 and 1, so they are grouped by parity
/// (rows `r, r + 2, r + 4, r + 6`). Rows left over run as one group (per
/// parity) padded with its last row (the repeats' results are dropped).
macro_rules! matvec_fp {
    ($name:ident, $t:ty, $half:ident, $column:ident) => {
        fn $name(w: &Matrix<'_>, data: &[$t], x: &[f32], bias: &[f32], y: &mut [f32]) {
            let (nrows, cols) = (w.rows(), w.cols());
            let fits = data.len() == nrows * cols && y.len() >= nrows && bias.len() >= nrows;
            let Some(x) = x.get(..cols).filter(|x| fits && cols > 0 && aligned(x.as_ptr())) else {
                return super::portable::matvec(w, x, bias, y);
            };
            // The chains of four rows, each < nrows, that reach an aligned column together.
            let group = |rows: [usize; 4]| {
                let p = rows.map(|r| data.as_ptr().wrapping_add(r * cols));
                let head = usize::from(!aligned(p[0]));
                let mut acc = [0.0f32; 4];
                rows4!($half, $column, p, x.as_ptr(), head, cols, acc);
                acc
            };
            let strided = core::mem::size_of::<$t>() == 2 && cols % 2 == 1;
            let span = if strided { 8 } else { 4 };
            let full = nrows / span * span;
            if strided {
                for base in (0..full).step_by(8) {
                    for parity in [0, 1] {
                        let rows = [0, 2, 4, 6].map(|i| base + parity + i);
                        let acc = group(rows);
                        for (r, a) in rows.into_iter().zip(acc) {
                            if let (Some(yi), Some(bi)) = (y.get_mut(r), bias.get(r)) {
                                *yi = a + bi;
                            }
                        }
                    }
                }
            } else {
                let (ys, _) = y.as_chunks_mut::<4>();
                let (bs, _) = bias.as_chunks::<4>();
                for (g, (yq, bq)) in ys.iter_mut().zip(bs).take(full / 4).enumerate() {
                    let acc = group([4 * g, 4 * g + 1, 4 * g + 2, 4 * g + 3]);
                    yq[0] = acc[0] + bq[0];
                    yq[1] = acc[1] + bq[1];
                    yq[2] = acc[2] + bq[2];
                    yq[3] = acc[3] + bq[3];
                }
            }
            // The rows left (fewer than a span), one group per parity class, padded with its last row.
            for parity in [0, 1].into_iter().take(span / 4) {
                let (mut rows, mut n) = ([0usize; 4], 0);
                for r in (full..nrows).filter(|r| !strided || r % 2 == parity) {
                    if let Some(slot) = rows.get_mut(n) {
                        *slot = r;
                        n += 1;
                    }
                }
                let Some(&last) = rows.get(n.wrapping_sub(1)) else { continue };
                for slot in rows.iter_mut().skip(n) {
                    *slot = last;
                }
                let acc = group(rows);
                for (r, a) in rows.into_iter().zip(acc).take(n) {
                    if let (Some(yi), Some(bi)) = (y.get_mut(r), bias.get(r)) {
                        *yi = a + bi;
                    }
                }
            }
        }
    };
}

matvec_fp!(matvec_f32, f32, f32_half, f32_column);

/// The twin: `portable::dots4`.
pub fn dots4(rows: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let cols = x.len();
    if cols == 0 || rows.iter().any(|r| r.len() != cols) || !aligned(x.as_ptr()) {
        return super::portable::dots4(rows, x);
    }
    let p = rows.map(|r| r.as_ptr());
    let mut acc = [0.0f32; 4];
    // f32 rows are word-aligned: no head column.
    let head = 0usize;
    rows4!(f32_half, f32_column, p, x.as_ptr(), head, cols, acc);
    acc
}

/// Four f32 columns of `c` updated by four weighted rows: `c` in s0..s3, each
/// row's four values in s4..s7, the weights in s16..s19.
macro_rules! accumulate_block {
    () => {
        concat!(
            "vldm {c}, {{s0-s3}}\n",
            "vldm {v0}!, {{s4-s7}}\n",
            "vfma.f32 s0, s16, s4\n",
            "vfma.f32 s1, s16, s5\n",
            "vfma.f32 s2, s16, s6\n",
            "vfma.f32 s3, s16, s7\n",
            "vldm {v1}!, {{s4-s7}}\n",
            "vfma.f32 s0, s17, s4\n",
            "vfma.f32 s1, s17, s5\n",
            "vfma.f32 s2, s17, s6\n",
            "vfma.f32 s3, s17, s7\n",
            "vldm {v2}!, {{s4-s7}}\n",
            "vfma.f32 s0, s18, s4\n",
            "vfma.f32 s1, s18, s5\n",
            "vfma.f32 s2, s18, s6\n",
            "vfma.f32 s3, s18, s7\n",
            "vldm {v3}!, {{s4-s7}}\n",
            "vfma.f32 s0, s19, s4\n",
            "vfma.f32 s1, s19, s5\n",
            "vfma.f32 s2, s19, s6\n",
            "vfma.f32 s3, s19, s7\n",
            "vstm {c}!, {{s0-s3}}\n",
        )
    };
}

/// The twin: `portable::accumulate4`; blocks of four columns in assembly, the rest in the twin.
pub fn accumulate4(c: &mut [f32], w: [f32; 4], v: [&[f32]; 4]) {
    let n = c.len();
    if v.iter().any(|r| r.len() != n) {
        return;
    }
    let blocks = n / 4;
    let all_aligned = aligned(c.as_ptr()) && v.iter().all(|r| aligned(r.as_ptr()));
    let done = if all_aligned && blocks > 0 {
        let p = v.map(|r| r.as_ptr());
        // SAFETY: `c` and every row hold `n >= 4 * blocks` f32, word-aligned (checked);
        // the FPU registers used are saved and restored.
        unsafe {
            asm!(
                "vpush {{s0-s7}}",
                "vpush {{s16-s19}}",
                "vldm {w}, {{s16-s19}}",
                "2:",
                accumulate_block!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "vpop {{s16-s19}}",
                "vpop {{s0-s7}}",
                c = inout(reg) c.as_mut_ptr() => _, w = in(reg) w.as_ptr(),
                v0 = inout(reg) p[0] => _, v1 = inout(reg) p[1] => _, v2 = inout(reg) p[2] => _,
                v3 = inout(reg) p[3] => _, n = inout(reg) blocks => _,
            );
        }
        4 * blocks
    } else {
        0
    };
    if let Some(rest) = c.get_mut(done..) {
        super::portable::accumulate4(rest, w, v.map(|r| r.get(done..).unwrap_or(&[])));
    }
}
matvec_fp!(matvec_f16, f16, f16_half, f16_column);
