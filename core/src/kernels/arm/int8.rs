//! int8 weights times int16 activations: three rows per pass, `SXTB16` and
//! `SMLAD` (see the parent module and `core/KERNELS.md`).

use super::super::quantise::{quantise, Activations, Layout};
use crate::matrix::{Matrix, MAX_I8_COLS};
use core::arch::asm;

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
/// The rows of a group are `row`, `row + stride`, `row + 2 stride`; the next
/// group starts at `row + 3 stride`. A stride of 0 reads one row three times.
///
/// # Safety
/// `row` is the first of `3 * pass.groups` rows (`stride` apart) of `cols`
/// weights each, or with `stride` 0 and one group, one row; `pass.q` holds
/// `cols` word-aligned activations with `cols = 4 * (16 * sixteens + ones) +
/// tail`; `y`, `bias`, `scales` hold `3 * groups` values; `groups >= 1`.
#[inline(never)] // one copy of the 1 KiB loop for the main and the left-over calls
unsafe fn i8_matrix_pass(row: *const i8, stride: usize, pass: &mut I8Pass) {
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
            c = in(reg) pass as *mut I8Pass, p = inout(reg) row => _, s = in(reg) stride,
            a0 = out(reg) _, a1 = out(reg) _, a2 = out(reg) _, x = out(reg) _, n = out(reg) _,
            x02 = out(reg) _, x13 = out(reg) _, w = out(reg) _, t = out(reg) _,
        );
    }
}

pub(super) fn matvec_i8(w: &Matrix<'_>, weights: &[i8], scales: &[f32], x: &[f32], bias: &[f32], y: &mut [f32]) {
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
        return crate::kernels::portable::matvec(w, x, bias, y);
    };
    let mut q = Activations::<N>::new();
    let x_scale = quantise(x, &mut q.0, Layout::Paired);
    let q = q.0.get(..cols).unwrap_or(&[]);
    let quads = cols / 4;
    // A pass over `groups` groups of three rows from `row`, the rows `stride` weights apart.
    let run = |row: usize, stride: usize, groups: usize, y: *mut f32, bias: *const f32, scales: *const f32| {
        let mut pass = I8Pass {
            q: q.as_ptr(),
            sixteens: quads / 16,
            ones: quads % 16,
            tail: cols % 4,
            y,
            bias,
            scales,
            groups,
            x_scale,
        };
        // SAFETY (the callers): rows `row .. row + 3 * groups` (stride `cols`), or one row
        // (stride 0, one group), lie below `nrows`, and `weights` holds `nrows * cols`;
        // `q` holds `cols` activations, 8-byte aligned; `y`, `bias`, `scales` hold
        // `3 * groups` values from where they point.
        unsafe { i8_matrix_pass(weights.as_ptr().wrapping_add(row * cols), stride, &mut pass) };
    };
    let full = nrows / 3;
    if full > 0 {
        run(0, cols, full, y.as_mut_ptr(), bias.as_ptr(), scales.as_ptr());
    }
    // One or two rows left: the last three rows once more, or (fewer than three
    // rows in all) each row three times; only the sums needed are kept.
    let (first, rest) = (3 * full, nrows % 3);
    if rest > 0 && nrows >= 3 {
        let mut out = [0.0f32; 3];
        let (b3, s3) = (bias.get(nrows - 3..).unwrap_or(&[]), scales.get(nrows - 3..).unwrap_or(&[]));
        if b3.len() >= 3 && s3.len() >= 3 {
            run(nrows - 3, cols, 1, out.as_mut_ptr(), b3.as_ptr(), s3.as_ptr());
        }
        for (yi, o) in y.get_mut(first..nrows).unwrap_or(&mut []).iter_mut().zip(out.iter().skip(3 - rest)) {
            *yi = *o;
        }
    } else {
        for r in first..nrows {
            let (Some(&b), Some(&s)) = (bias.get(r), scales.get(r)) else { continue };
            let (mut out, b3, s3) = ([0.0f32; 3], [b; 3], [s; 3]);
            run(r, 0, 1, out.as_mut_ptr(), b3.as_ptr(), s3.as_ptr());
            if let Some(yi) = y.get_mut(r) {
                *yi = out[0];
            }
        }
    }
}
