//! The encoder: a GRU cell in PyTorch `GRUCell` conventions (MODEL.md section 1).
//!
//! Stacked weights `weight_ih [3H, N_in]`, `weight_hh [3H, H]`, biases `[3H]`,
//! gate order r, z (here `u`, the update gate), n:
//!
//! ```text
//! r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//! u  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//! n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//! h' = (1 - u) * n + u * h
//! ```

use crate::linear::Linear;
use crate::math::{sigmoid, tanh};

/// The encoder's weights, borrowed from a blob.
#[derive(Clone, Copy, Debug)]
pub struct GruCell<'a> {
    /// `weight_ih [3H, N_in]`, `bias_ih [3H]`.
    pub input: Linear<'a>,
    /// `weight_hh [3H, H]`, `bias_hh [3H]`.
    pub hidden: Linear<'a>,
}

/// Gate pre-activations of one step, `[r, u, n]` each `[H]`.
pub type Gates<const H: usize> = [[f32; H]; 3];

impl GruCell<'_> {
    /// One step: `h <- GRU(x, h)`; `gi`, `gh` are scratch for the gate pre-activations.
    pub fn step<const N_IN: usize, const H: usize>(
        &self,
        x: &[f32; N_IN],
        h: &mut [f32; H],
        gi: &mut Gates<H>,
        gh: &mut Gates<H>,
    ) {
        self.step_slice(x, h, gi.as_flattened_mut(), gh.as_flattened_mut());
    }

    /// [`GruCell::step`] at run-time sizes: `x [N_in]`, `h [H]`, `gi` and `gh` `[3H]`.
    pub fn step_slice(&self, x: &[f32], h: &mut [f32], gi: &mut [f32], gh: &mut [f32]) {
        self.input.apply(x, gi);
        self.hidden.apply(h, gh);
        cell_update(gi, gh, h);
    }
}

/// One unit's gate activations and new state (see [`unit_update`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GruUnit {
    /// Reset gate `r = sigmoid(gi_r + gh_r)`.
    pub r: f32,
    /// Update gate `u = sigmoid(gi_z + gh_z)` (PyTorch's `z`).
    pub u: f32,
    /// Candidate `n = tanh(gi_n + r * gh_n)`.
    pub n: f32,
    /// New state `h' = (1 - u) * n + u * h_prev`.
    pub h: f32,
}

/// One unit of the GRU update from its gate pre-activations, in this order of
/// f32 operations (with [`crate::math`]'s `sigmoid` and `tanh`):
///
/// ```text
/// r  = sigmoid(gi[0] + gh[0])
/// u  = sigmoid(gi[1] + gh[1])
/// n  = tanh(gi[2] + r * gh[2])
/// h' = (1 - u) * n + u * h_prev
/// ```
///
/// `gi = [r, z, n]` are the unit's input-side pre-activations `W_i x + b_i`,
/// `gh` the hidden-side ones `W_h h + b_h` (PyTorch `GRUCell` gate order).
#[inline(always)]
pub fn unit_update(gi: [f32; 3], gh: [f32; 3], h_prev: f32) -> GruUnit {
    unit_update_with(gi, gh, h_prev, sigmoid, tanh)
}

/// [`unit_update`] with the caller's `sigmoid` and `tanh`, the same f32
/// operations in the same order (the host's trainer passes its polynomial
/// ones).
#[inline(always)]
pub fn unit_update_with(
    gi: [f32; 3],
    gh: [f32; 3],
    h_prev: f32,
    sigmoid: impl Fn(f32) -> f32,
    tanh: impl Fn(f32) -> f32,
) -> GruUnit {
    let [ir, iu, in_] = gi;
    let [hr, hu, hn] = gh;
    let r = sigmoid(ir + hr);
    let u = sigmoid(iu + hu);
    let n = tanh(in_ + r * hn);
    GruUnit { r, u, n, h: (1.0 - u) * n + u * h_prev }
}

/// The GRU cell update from pre-activations, in place: `h [H]` holds
/// `h_{t-1}` on entry and `h_t` on return, unit `k` by [`unit_update`] from
/// `gi [3H]` (input side `W_ih x + b_ih`) and `gh [3H]` (hidden side
/// `W_hh h + b_hh`), each the r, z, n gates' `[H]` blocks in PyTorch order.
///
/// `H` is `h.len()`. Shorter `gi` or `gh` are not an error (no panic): units
/// past what both hold are left unchanged.
pub fn cell_update(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    let n = h.len();
    let (ir, rest) = gi.split_at(n.min(gi.len()));
    let (iu, in_) = rest.split_at(n.min(rest.len()));
    let (hr, rest) = gh.split_at(n.min(gh.len()));
    let (hu, hn) = rest.split_at(n.min(rest.len()));
    let gates = ir.iter().zip(iu.iter()).zip(in_.iter()).zip(hr.iter().zip(hu.iter()).zip(hn.iter()));
    for (hk, (((ir, iu), in_), ((hr, hu), hn))) in h.iter_mut().zip(gates) {
        *hk = unit_update([*ir, *iu, *in_], [*hr, *hu, *hn], *hk).h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Matrix, MatrixData};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// PyTorch's GRUCell in f64, written from its documentation.
    fn gru64(wih: &[f32], whh: &[f32], bih: &[f32], bhh: &[f32], x: &[f32], h: &[f32]) -> Vec<f64> {
        let (n_in, hs) = (x.len(), h.len());
        let lin = |w: &[f32], b: &[f32], v: &[f32], n: usize, row: usize| -> f64 {
            (0..n).map(|c| w[row * n + c] as f64 * v[c] as f64).sum::<f64>() + b[row] as f64
        };
        (0..hs)
            .map(|k| {
                let r = sig(lin(wih, bih, x, n_in, k) + lin(whh, bhh, h, hs, k));
                let u = sig(lin(wih, bih, x, n_in, hs + k) + lin(whh, bhh, h, hs, hs + k));
                let n = (lin(wih, bih, x, n_in, 2 * hs + k) + r * lin(whh, bhh, h, hs, 2 * hs + k)).tanh();
                (1.0 - u) * n + u * h[k] as f64
            })
            .collect()
    }

    const N_IN: usize = 5;
    const H: usize = 8;

    /// The update as it was written inline in `GruCell::step_slice` before
    /// [`cell_update`] was factored out, for the bit-for-bit comparison.
    fn inline_update(gi: &[f32], gh: &[f32], h: &mut [f32]) {
        let n = h.len();
        for k in 0..n {
            let r = sigmoid(gi[k] + gh[k]);
            let u = sigmoid(gi[n + k] + gh[n + k]);
            let c = tanh(gi[2 * n + k] + r * gh[2 * n + k]);
            h[k] = (1.0 - u) * c + u * h[k];
        }
    }

    #[test]
    fn short_gates_leave_the_rest_unchanged() {
        // gh holds the n gate of unit 0 only: units 1..4 keep h_prev.
        let mut h = [0.5f32; 4];
        cell_update(&[0.0; 12], &[0.0; 9], &mut h);
        assert_eq!(h, [unit_update([0.0; 3], [0.0; 3], 0.5).h, 0.5, 0.5, 0.5]);
        let mut h = [0.5f32; 4];
        cell_update(&[0.0; 7], &[0.0; 12], &mut h);
        assert_eq!(h, [0.5; 4]);
        cell_update(&[], &[], &mut h);
        assert_eq!(h, [0.5; 4]);
    }

    proptest! {
        #[test]
        fn step_matches_f64_reference(
            wih in proptest::collection::vec(-1.0f32..1.0, 3 * H * N_IN),
            whh in proptest::collection::vec(-1.0f32..1.0, 3 * H * H),
            bih in proptest::collection::vec(-1.0f32..1.0, 3 * H),
            bhh in proptest::collection::vec(-1.0f32..1.0, 3 * H),
            x in proptest::array::uniform5(0.0f32..6.0),
            h0 in proptest::array::uniform8(-1.0f32..1.0),
        ) {
            let cell = GruCell {
                input: Linear {
                    weight: Matrix::new(3 * H, N_IN, MatrixData::F32(&wih)).ok_or(TestCaseError::fail("ih"))?,
                    bias: &bih,
                },
                hidden: Linear {
                    weight: Matrix::new(3 * H, H, MatrixData::F32(&whh)).ok_or(TestCaseError::fail("hh"))?,
                    bias: &bhh,
                },
            };
            let want = gru64(&wih, &whh, &bih, &bhh, &x, &h0);
            let mut h = h0;
            cell.step(&x, &mut h, &mut [[0.0; H]; 3], &mut [[0.0; H]; 3]);
            for (g, w) in h.iter().zip(&want) {
                prop_assert!((*g as f64 - w).abs() < 2e-5 + crate::math::TEST_SLACK, "got {g} want {w}");
            }
        }

        #[test]
        fn cell_update_is_the_inline_update_bit_for_bit(
            gi in proptest::collection::vec(-8.0f32..8.0, 3 * H),
            gh in proptest::collection::vec(-8.0f32..8.0, 3 * H),
            h0 in proptest::array::uniform8(-1.0f32..1.0),
        ) {
            let (mut a, mut b) = (h0, h0);
            cell_update(&gi, &gh, &mut a);
            inline_update(&gi, &gh, &mut b);
            prop_assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
            for k in 0..H {
                let u = unit_update([gi[k], gi[H + k], gi[2 * H + k]], [gh[k], gh[H + k], gh[2 * H + k]], h0[k]);
                prop_assert_eq!(u.h.to_bits(), a[k].to_bits());
                prop_assert_eq!(u.r.to_bits(), sigmoid(gi[k] + gh[k]).to_bits());
            }
        }
    }
}
