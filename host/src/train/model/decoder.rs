//! The Transformer decoder layer, readout and Poisson loss over a chunk
//! (MODEL.md sections 5-6), with their backward passes. Rows are trial-major.

use super::chunk::{Chunk, Dropout, LossScale};
use super::encoder::{dropout_mask, stream};
use super::workspace::Workspace;
use crate::config::ModelConfig;
use crate::train::gemm::{add_bias, add_column_sums, matmul, matmul_strided, Op, Strided};
use crate::train::params::Params;
use lflow_core::blob::Tensor;
use lflow_core::layer_norm::normalise_row;

/// Views of one head's queries, keys and values `[TT, D/2]` in a trial's `qkv` rows `[TT, 3D]`.
fn head_views(rows: &[f32], d: usize, hd: usize, head: usize) -> (Strided<'_>, Strided<'_>, Strided<'_>) {
    let view = |start: usize| Strided { data: &rows[start + head * hd..], op: Op::N, ld: 3 * d };
    (view(0), view(d), view(2 * d))
}

/// LayerNorm of each row of `x` in place; keeps `x_hat` and `1 / std` per row.
fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], xhat: &mut [f32], rstd: &mut [f32]) {
    let d = w.len();
    for ((row, xh), rs) in x.chunks_exact_mut(d).zip(xhat.chunks_exact_mut(d)).zip(rstd.iter_mut()) {
        *rs = normalise_row(row, xh);
        for (((v, xh), wi), bi) in row.iter_mut().zip(xh.iter()).zip(w).zip(b) {
            *v = xh * wi + bi;
        }
    }
}

/// LayerNorm backward: `dx` from `dy`, adding to the affine parameters' gradients.
fn layer_norm_backward(
    dy: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    w: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
) {
    let d = w.len();
    for (((dyr, xh), rs), dxr) in dy.chunks_exact(d).zip(xhat.chunks_exact(d)).zip(rstd).zip(dx.chunks_exact_mut(d)) {
        let (mut m1, mut m2) = (0.0f32, 0.0f32);
        for ((g, x), wi) in dyr.iter().zip(xh).zip(w) {
            m1 += g * wi;
            m2 += g * wi * x;
        }
        m1 /= d as f32;
        m2 /= d as f32;
        for ((((o, g), x), wi), (dwi, dbi)) in
            dxr.iter_mut().zip(dyr).zip(xh).zip(w).zip(dw.iter_mut().zip(db.iter_mut()))
        {
            *o = rs * (g * wi - m1 - x * m2);
            *dwi += g * x;
            *dbi += g;
        }
    }
}

fn masks(d: Option<Dropout<'_>>, which: u64, trials: usize, mask: &mut [f32]) {
    match d {
        Some(d) if d.rate > 0.0 => {
            let per = mask.len() / trials.max(1);
            for (b, m) in mask.chunks_exact_mut(per.max(1)).enumerate() {
                dropout_mask(&mut stream(d.seeds[b], which), d.rate, m);
            }
        }
        _ => mask.fill(1.0),
    }
}

pub(super) fn forward(cfg: &ModelConfig, p: &Params, c: &Chunk<'_>, dropout: Option<Dropout<'_>>, ws: &mut Workspace) {
    let (bc, tt, d, ff, nout) = (c.trials, c.bins, cfg.d_model(), cfg.ff, cfg.n_out);
    let rows = bc * tt;
    let hd = cfg.head_dim();
    let scale = 1.0 / (hd as f32).sqrt();
    matmul(&mut ws.qkv, &ws.l, Op::N, p.get(Tensor::AttnInProjWeight), Op::T, rows, d, 3 * d, false);
    add_bias(&mut ws.qkv, p.get(Tensor::AttnInProjBias));
    for b in 0..bc {
        let rows_b = &ws.qkv[b * tt * 3 * d..(b + 1) * tt * 3 * d];
        for head in 0..2 {
            let (q, k, v) = head_views(rows_b, d, hd, head);
            let probs = &mut ws.probs[(b * 2 + head) * tt * tt..][..tt * tt];
            matmul_strided(q, Strided { op: Op::T, ..k }, probs, tt, tt, hd, tt, scale, 0.0);
            for (t, row) in probs.chunks_exact_mut(tt).enumerate() {
                let keys = cfg.attended_keys(t, tt);
                let max = row[keys.clone()].iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
                row[..keys.start].fill(0.0);
                row[keys.end..].fill(0.0);
                let live = &mut row[keys];
                live.iter_mut().for_each(|s| *s = super::fast_math::exp(*s - max));
                let total = live.iter().fold(0.0f32, |a, s| a + s);
                row.iter_mut().for_each(|s| *s /= total);
            }
            let ctx = &mut ws.ctx[b * tt * d + head * hd..];
            matmul_strided(Strided { data: probs, op: Op::N, ld: tt }, v, ctx, d, tt, tt, hd, 1.0, 0.0);
        }
    }
    // Residual 1: y = LN1(l + dropout(out_proj(ctx))).
    masks(dropout, 2, bc, &mut ws.attn_mask);
    let attn = &mut ws.d_rows;
    matmul(attn, &ws.ctx, Op::N, p.get(Tensor::AttnOutProjWeight), Op::T, rows, d, d, false);
    add_bias(attn, p.get(Tensor::AttnOutProjBias));
    for (((y, l), a), m) in ws.y.iter_mut().zip(&ws.l).zip(attn.iter()).zip(&ws.attn_mask) {
        *y = l + a * m;
    }
    layer_norm(&mut ws.y, p.get(Tensor::Norm1Weight), p.get(Tensor::Norm1Bias), &mut ws.xhat1, &mut ws.rstd1);
    // Feed-forward with dropout inside and after; residual 2.
    matmul(&mut ws.f1, &ws.y, Op::N, p.get(Tensor::Linear1Weight), Op::T, rows, d, ff, false);
    add_bias(&mut ws.f1, p.get(Tensor::Linear1Bias));
    masks(dropout, 3, bc, &mut ws.f1_mask);
    for (f, m) in ws.f1.iter_mut().zip(ws.f1_mask.iter_mut()) {
        if *f <= 0.0 {
            *m = 0.0;
        }
        *f *= *m;
    }
    masks(dropout, 4, bc, &mut ws.f2_mask);
    let f2 = &mut ws.d_rows;
    matmul(f2, &ws.f1, Op::N, p.get(Tensor::Linear2Weight), Op::T, rows, ff, d, false);
    add_bias(f2, p.get(Tensor::Linear2Bias));
    for (((y2, y), f), m) in ws.y2.iter_mut().zip(&ws.y).zip(f2.iter()).zip(&ws.f2_mask) {
        *y2 = y + f * m;
    }
    layer_norm(&mut ws.y2, p.get(Tensor::Norm2Weight), p.get(Tensor::Norm2Bias), &mut ws.xhat2, &mut ws.rstd2);
    matmul(&mut ws.log_rates, &ws.y2, Op::N, p.get(Tensor::ReadoutWeight), Op::T, rows, d, nout, false);
    add_bias(&mut ws.log_rates, p.get(Tensor::ReadoutBias));
}

/// Sum of `exp(log_rate) - y * log_rate` over the chunk.
pub(super) fn poisson_nll(cfg: &ModelConfig, c: &Chunk<'_>, ws: &Workspace) -> f64 {
    let n = c.trials * c.bins * cfg.n_out;
    ws.log_rates[..n].iter().zip(c.targets).map(|(r, y)| (r.exp() as f64) - (*y as f64) * (*r as f64)).sum()
}

pub(super) fn backward(
    cfg: &ModelConfig,
    p: &Params,
    c: &Chunk<'_>,
    scale: LossScale,
    ws: &mut Workspace,
    g: &mut Params,
) {
    let (bc, tt, t_obs, d, ff, nout, h, nin) =
        (c.trials, c.bins, c.observed, cfg.d_model(), cfg.ff, cfg.n_out, cfg.hidden, cfg.n_in);
    let rows = bc * tt;
    let hd = cfg.head_dim();
    let att_scale = 1.0 / (hd as f32).sqrt();
    // Poisson NLL, with coordinated dropout's gradient blocking on held-in observed elements.
    for b in 0..bc {
        for t in 0..tt {
            let r = b * tt + t;
            for n in 0..nout {
                let i = r * nout + n;
                let mut grad = (ws.log_rates[i].exp() - c.targets[i]) * scale.nll;
                if let (Some(mask), true, true) = (c.grad_mask, t < t_obs, n < nin) {
                    grad *= mask[(b * t_obs + t) * nin + n];
                }
                ws.d_log_rates[i] = grad;
            }
        }
    }
    matmul(g.get_mut(Tensor::ReadoutWeight), &ws.d_log_rates, Op::T, &ws.y2, Op::N, nout, rows, d, true);
    add_column_sums(g.get_mut(Tensor::ReadoutBias), &ws.d_log_rates[..rows * nout]);
    let dy2 = &mut ws.d_rows;
    matmul(dy2, &ws.d_log_rates, Op::N, p.get(Tensor::ReadoutWeight), Op::N, rows, nout, d, false);
    // LN2: d_rows2 = d res2.
    let (gw, gb) = g.pair_mut(Tensor::Norm2Weight, Tensor::Norm2Bias);
    layer_norm_backward(&ws.d_rows, &ws.xhat2, &ws.rstd2, p.get(Tensor::Norm2Weight), &mut ws.d_rows2, gw, gb);
    // d y = d res2 (residual) + feed-forward path.
    ws.d_rows.copy_from_slice(&ws.d_rows2);
    for (g2, m) in ws.d_rows2.iter_mut().zip(&ws.f2_mask) {
        *g2 *= m;
    }
    matmul(g.get_mut(Tensor::Linear2Weight), &ws.d_rows2, Op::T, &ws.f1, Op::N, d, rows, ff, true);
    add_column_sums(g.get_mut(Tensor::Linear2Bias), &ws.d_rows2);
    matmul(&mut ws.d_ff, &ws.d_rows2, Op::N, p.get(Tensor::Linear2Weight), Op::N, rows, d, ff, false);
    for (x, m) in ws.d_ff.iter_mut().zip(&ws.f1_mask) {
        *x *= m;
    }
    matmul(g.get_mut(Tensor::Linear1Weight), &ws.d_ff, Op::T, &ws.y, Op::N, ff, rows, d, true);
    add_column_sums(g.get_mut(Tensor::Linear1Bias), &ws.d_ff);
    matmul(&mut ws.d_rows, &ws.d_ff, Op::N, p.get(Tensor::Linear1Weight), Op::N, rows, ff, d, true);
    // LN1: d_rows2 = d res1; d l = d res1 (residual) + attention path.
    let (gw, gb) = g.pair_mut(Tensor::Norm1Weight, Tensor::Norm1Bias);
    layer_norm_backward(&ws.d_rows, &ws.xhat1, &ws.rstd1, p.get(Tensor::Norm1Weight), &mut ws.d_rows2, gw, gb);
    ws.d_rows.copy_from_slice(&ws.d_rows2);
    for (x, m) in ws.d_rows2.iter_mut().zip(&ws.attn_mask) {
        *x *= m;
    }
    matmul(g.get_mut(Tensor::AttnOutProjWeight), &ws.d_rows2, Op::T, &ws.ctx, Op::N, d, rows, d, true);
    add_column_sums(g.get_mut(Tensor::AttnOutProjBias), &ws.d_rows2);
    // d ctx overwrites ctx (no longer needed).
    let dctx = &mut ws.ctx;
    matmul(dctx, &ws.d_rows2, Op::N, p.get(Tensor::AttnOutProjWeight), Op::N, rows, d, d, false);
    let ds = &mut ws.scratch[..tt * tt];
    for b in 0..bc {
        let rows_b = &ws.qkv[b * tt * 3 * d..(b + 1) * tt * 3 * d];
        let d_rows_b = &mut ws.d_qkv[b * tt * 3 * d..(b + 1) * tt * 3 * d];
        for head in 0..2 {
            let (q, k, v) = head_views(rows_b, d, hd, head);
            let probs = &ws.probs[(b * 2 + head) * tt * tt..][..tt * tt];
            let p_view = Strided { data: probs, op: Op::N, ld: tt };
            let dc = Strided { data: &dctx[b * tt * d + head * hd..], op: Op::N, ld: d };
            // dP = dctx V^T; dV = P^T dctx.
            matmul_strided(dc, Strided { op: Op::T, ..v }, ds, tt, tt, hd, tt, 1.0, 0.0);
            let off = head * hd;
            matmul_strided(
                Strided { op: Op::T, ..p_view },
                dc,
                &mut d_rows_b[2 * d + off..],
                3 * d,
                tt,
                tt,
                hd,
                1.0,
                0.0,
            );
            // dS = P (dP - sum_j P dP), folded with the score scale.
            for (prow, srow) in probs.chunks_exact(tt).zip(ds.chunks_exact_mut(tt)) {
                let dot: f32 = prow.iter().zip(srow.iter()).map(|(p, g)| p * g).sum();
                for (g, p) in srow.iter_mut().zip(prow) {
                    *g = p * (*g - dot);
                }
            }
            let ds_view = Strided { data: ds, op: Op::N, ld: tt };
            matmul_strided(ds_view, k, &mut d_rows_b[off..], 3 * d, tt, tt, hd, att_scale, 0.0);
            matmul_strided(
                Strided { op: Op::T, ..ds_view },
                q,
                &mut d_rows_b[d + off..],
                3 * d,
                tt,
                tt,
                hd,
                att_scale,
                0.0,
            );
        }
    }
    matmul(g.get_mut(Tensor::AttnInProjWeight), &ws.d_qkv, Op::T, &ws.l, Op::N, 3 * d, rows, d, true);
    add_column_sums(g.get_mut(Tensor::AttnInProjBias), &ws.d_qkv);
    matmul(&mut ws.d_rows, &ws.d_qkv, Op::N, p.get(Tensor::AttnInProjWeight), Op::N, rows, 3 * d, d, true);
    // Split d l into the latent and encoder gradients (time-major).
    for b in 0..bc {
        for t in 0..tt {
            let row = &ws.d_rows[(b * tt + t) * d..][..d];
            let dst = (t * bc + b) * h;
            ws.dz[dst..dst + h].copy_from_slice(&row[..h]);
            ws.dv[dst..dst + h].copy_from_slice(&row[h..2 * h]);
            ws.dh[dst..dst + h].copy_from_slice(&row[2 * h..]);
        }
    }
}
