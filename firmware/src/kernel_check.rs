//! `HostMessage::KernelCheck`: every weight matrix of the embedded model once
//! through the device's kernels and once through their portable twins, timed
//! and compared bit for bit (`core/KERNELS.md`).

use crate::board::Counter;
use crate::config::{D, FF, H, N_BEH, N_IN, N_OUT};
use lflow_core::kernels::{accumulate4, dots4, matvec, matvec_portable, portable};
use lflow_core::linear::Linear;
use lflow_core::wire::DeviceMessage;
use lflow_core::Seeded;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The widest input and the longest output of any matrix.
const COLS: usize = max(max(N_IN, H), max(D, FF));
const ROWS: usize = max(max(3 * D, 3 * H), max(FF, max(N_OUT, N_BEH)));

/// Run the check over `linears` with inputs drawn from `seed`.
pub fn run(linears: &[Linear<'_>], seed: u32, counter: Option<&Counter>) -> DeviceMessage<'static> {
    let mut x = [0.0f32; COLS];
    let (mut fast, mut twin) = ([0.0f32; ROWS], [0.0f32; ROWS]);
    let mut rng = Seeded::new(u64::from(seed));
    let time = |f: &mut dyn FnMut()| match counter {
        Some(c) => {
            let start = c.now();
            f();
            c.since(start)
        }
        None => {
            f();
            0
        }
    };
    let (mut macs, mut instructions, mut portable_instructions, mut mismatches, mut outputs) = (0, 0, 0, 0, 0);
    let mut per_matrix = [0u32; 12];
    for (linear, spent) in linears.iter().zip(per_matrix.iter_mut()) {
        let (rows, cols) = (linear.weight.rows(), linear.weight.cols());
        let (Some(x), Some(fast), Some(twin)) = (x.get_mut(..cols), fast.get_mut(..rows), twin.get_mut(..rows)) else {
            continue;
        };
        for v in x.iter_mut() {
            *v = rng.next_normal();
        }
        *spent = time(&mut || matvec(&linear.weight, x, linear.bias, fast));
        instructions += *spent;
        portable_instructions += time(&mut || matvec_portable(&linear.weight, x, linear.bias, twin));
        mismatches += fast.iter().zip(twin.iter()).filter(|(a, b)| a.to_bits() != b.to_bits()).count() as u32;
        outputs += rows as u32;
        macs += (rows * cols) as u32;
    }
    // The attention's kernels, at the head width and at odd widths.
    for width in [D / 2, 13, 3] {
        let (Some(rows_data), Some(x)) = (fast.get_mut(..4 * width), x.get_mut(..width)) else { continue };
        for v in rows_data.iter_mut().chain(x.iter_mut()) {
            *v = rng.next_normal();
        }
        let rows: [&[f32]; 4] = core::array::from_fn(|i| rows_data.get(i * width..(i + 1) * width).unwrap_or(&[]));
        let (a, b) = (dots4(rows, x), portable::dots4(rows, x));
        mismatches += a.iter().zip(&b).filter(|(p, q)| p.to_bits() != q.to_bits()).count() as u32;
        let w = [rng.next_normal(), rng.next_normal(), rng.next_normal(), 0.0];
        let Some(c) = twin.get_mut(..2 * width) else { continue };
        for v in c.iter_mut() {
            *v = rng.next_normal();
        }
        let Some((c0, c1)) = c.split_at_mut_checked(width) else { continue };
        for (b, a) in c1.iter_mut().zip(c0.iter()) {
            *b = *a;
        }
        accumulate4(c0, w, rows);
        portable::accumulate4(c1, w, rows);
        mismatches += c0.iter().zip(c1.iter()).filter(|(p, q)| p.to_bits() != q.to_bits()).count() as u32;
        outputs += (4 + width) as u32;
    }
    let calibration = counter.map_or(0, |c| c.calibration());
    DeviceMessage::KernelCheck {
        macs,
        instructions,
        portable_instructions,
        per_matrix,
        mismatches,
        outputs,
        calibration,
    }
}
