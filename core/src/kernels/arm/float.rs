//! f32 and f16: four rows per pass, `VFMA.F32`, f16 widened by
//! `VCVTB`/`VCVTT` (see the parent module and `core/KERNELS.md`); and the
//! attention's two kernels on the same blocks.

use crate::matrix::Matrix;
use core::arch::asm;
use half::f16;

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
        pub(super) fn $name(w: &Matrix<'_>, data: &[$t], x: &[f32], bias: &[f32], y: &mut [f32]) {
            let (nrows, cols) = (w.rows(), w.cols());
            let fits = data.len() == nrows * cols && y.len() >= nrows && bias.len() >= nrows;
            let Some(x) = x.get(..cols).filter(|x| fits && cols > 0 && aligned(x.as_ptr())) else {
                return crate::kernels::portable::matvec(w, x, bias, y);
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
        return crate::kernels::portable::dots4(rows, x);
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
        crate::kernels::portable::accumulate4(rest, w, v.map(|r| r.get(done..).unwrap_or(&[])));
    }
}
matvec_fp!(matvec_f16, f16, f16_half, f16_column);

/// Word-aligned (for `LDRD`, `VLDM`, `VSTM`).
fn aligned<T>(p: *const T) -> bool {
    (p as usize).is_multiple_of(4)
}
