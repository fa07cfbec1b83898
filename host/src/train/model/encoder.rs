//! The GRU encoder over a chunk: forward through time and backpropagation
//! through time (MODEL.md section 1; gate order r, z (`u`), n).

use super::chunk::{Chunk, Dropout};
use super::fast_math::{sigmoid, tanh};
use super::workspace::Workspace;
use crate::config::ModelConfig;
use crate::train::gemm::{add_bias, add_column_sums, matmul, Op};
use crate::train::params::Params;
use lflow_core::blob::Tensor;
use lflow_core::gru::unit_update_with;

/// Per-trial random streams (dropout masks), independent of the thread split.
pub(crate) fn stream(seed: u64, which: u64) -> lflow_core::Seeded {
    lflow_core::Seeded::new(seed ^ which.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Fill `mask` with inverted-dropout factors: 0 with probability `rate`, else `1 / (1 - rate)`.
pub(crate) fn dropout_mask(rng: &mut lflow_core::Seeded, rate: f32, mask: &mut [f32]) {
    let keep = 1.0 / (1.0 - rate);
    for m in mask {
        let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
        *m = if u < rate { 0.0 } else { keep };
    }
}

pub(super) fn forward(cfg: &ModelConfig, p: &Params, c: &Chunk<'_>, dropout: Option<Dropout<'_>>, ws: &mut Workspace) {
    let (bc, tt, t_obs, h, nin) = (c.trials, c.bins, c.observed, cfg.hidden, cfg.n_in);
    for t in 0..tt {
        let s = cfg.input_bin(t, t_obs);
        for b in 0..bc {
            let src = &c.input[(b * t_obs + s) * nin..(b * t_obs + s + 1) * nin];
            ws.xg[(t * bc + b) * nin..(t * bc + b + 1) * nin].copy_from_slice(src);
        }
    }
    match dropout {
        Some(d) if d.rate > 0.0 => {
            for b in 0..bc {
                let mut rng = stream(d.seeds[b], 1);
                for t in 0..tt {
                    dropout_mask(&mut rng, d.rate, &mut ws.h_mask[(t * bc + b) * h..(t * bc + b + 1) * h]);
                }
            }
        }
        _ => ws.h_mask.fill(1.0),
    }
    let (w_ih, w_hh) = (p.get(Tensor::EncoderWeightIh), p.get(Tensor::EncoderWeightHh));
    let (b_ih, b_hh) = (p.get(Tensor::EncoderBiasIh), p.get(Tensor::EncoderBiasHh));
    let step = bc * h;
    let zeros = vec![0.0f32; step];
    // The input projection does not depend on h: one gemm for every step.
    matmul(&mut ws.gi, &ws.xg, Op::N, w_ih, Op::T, tt * bc, nin, 3 * h, false);
    add_bias(&mut ws.gi, b_ih);
    for t in 0..tt {
        if t == 0 {
            for row in ws.gh.chunks_exact_mut(3 * h) {
                row.copy_from_slice(b_hh);
            }
        } else {
            matmul(&mut ws.gh, &ws.h[(t - 1) * step..], Op::N, w_hh, Op::T, bc, h, 3 * h, false);
            add_bias(&mut ws.gh, b_hh);
        }
        let (past, now) = ws.h.split_at_mut(t * step);
        let prev_bin = if t == 0 { &zeros[..] } else { &past[(t - 1) * step..] };
        let span = t * step..(t + 1) * step;
        let (rs, us, ns) = (&mut ws.r[span.clone()], &mut ws.u[span.clone()], &mut ws.n[span.clone()]);
        let (ghns, masks) = (&mut ws.ghn[span.clone()], &ws.h_mask[span]);
        // One trial's H units at a time, as straight slices (no index arithmetic), so that it vectorises.
        for b in 0..bc {
            let unit = b * h..(b + 1) * h;
            let gi = &ws.gi[(t * bc + b) * 3 * h..(t * bc + b + 1) * 3 * h];
            let gh = &ws.gh[b * 3 * h..(b + 1) * 3 * h];
            let (gi_r, gi_rest) = gi.split_at(h);
            let (gi_u, gi_n) = gi_rest.split_at(h);
            let (gh_r, gh_rest) = gh.split_at(h);
            let (gh_u, gh_n) = gh_rest.split_at(h);
            let prev = &prev_bin[unit.clone()];
            let outs = rs[unit.clone()].iter_mut().zip(&mut us[unit.clone()]).zip(&mut ns[unit.clone()]);
            let outs = outs.zip(&mut ghns[unit.clone()]).zip(&mut now[unit.clone()]).zip(&masks[unit]);
            let ins = gi_r.iter().zip(gh_r).zip(gi_u.iter().zip(gh_u)).zip(gi_n.iter().zip(gh_n)).zip(prev);
            for ((((((r, u), n), ghn_out), h_out), m), ((((a_r, b_r), (a_u, b_u)), (a_n, ghn)), p)) in outs.zip(ins) {
                let g = unit_update_with([*a_r, *a_u, *a_n], [*b_r, *b_u, *ghn], *p, sigmoid, tanh);
                (*r, *u, *n, *ghn_out) = (g.r, g.u, g.n, *ghn);
                *h_out = g.h * m;
            }
        }
    }
}

/// BPTT: `ws.dh [TT, Bc, H]` holds d loss / d (dropped) `h_t` from the decoder
/// and the posterior heads; adds the encoder's weight gradients to `g`.
pub(super) fn backward(cfg: &ModelConfig, p: &Params, c: &Chunk<'_>, ws: &mut Workspace, g: &mut Params) {
    let (bc, tt, h, nin) = (c.trials, c.bins, cfg.hidden, cfg.n_in);
    let step = bc * h;
    let w_hh = p.get(Tensor::EncoderWeightHh);
    for t in (0..tt).rev() {
        for b in 0..bc {
            let gate = (t * bc + b) * 3 * h;
            for k in 0..h {
                let i = t * step + b * h + k;
                let dh = ws.dh[i] * ws.h_mask[i];
                let (r, u, n, ghn) = (ws.r[i], ws.u[i], ws.n[i], ws.ghn[i]);
                let prev = if t == 0 { 0.0 } else { ws.h[i - step] };
                let dn = dh * (1.0 - u);
                let du = dh * (prev - n);
                let dan = dn * (1.0 - n * n);
                let dar = dan * ghn * r * (1.0 - r);
                let dau = du * u * (1.0 - u);
                ws.dgi[gate + k] = dar;
                ws.dgi[gate + h + k] = dau;
                ws.dgi[gate + 2 * h + k] = dan;
                ws.dgh[gate + k] = dar;
                ws.dgh[gate + h + k] = dau;
                ws.dgh[gate + 2 * h + k] = dan * r;
                if t > 0 {
                    ws.dh[i - step] += dh * u;
                }
            }
        }
        if t > 0 {
            let (before, _) = ws.dh.split_at_mut(t * step);
            matmul(&mut before[(t - 1) * step..], &ws.dgh[t * bc * 3 * h..], Op::N, w_hh, Op::N, bc, 3 * h, h, true);
        }
    }
    // Weight gradients over all steps at once.
    let rows = tt * bc;
    matmul(g.get_mut(Tensor::EncoderWeightIh), &ws.dgi, Op::T, &ws.xg, Op::N, 3 * h, rows, nin, true);
    add_column_sums(g.get_mut(Tensor::EncoderBiasIh), &ws.dgi[..rows * 3 * h]);
    ws.h_prev[..step].fill(0.0);
    ws.h_prev[step..rows * h].copy_from_slice(&ws.h[..(rows - bc) * h]);
    matmul(g.get_mut(Tensor::EncoderWeightHh), &ws.dgh, Op::T, &ws.h_prev, Op::N, 3 * h, rows, h, true);
    add_column_sums(g.get_mut(Tensor::EncoderBiasHh), &ws.dgh[..rows * 3 * h]);
}
