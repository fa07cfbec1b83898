//! Posterior heads, Langevin dynamics and the KL terms over a chunk
//! (MODEL.md sections 2-4 and 6), with their backward passes.

use super::chunk::{Chunk, LossScale};
use super::workspace::Workspace;
use crate::config::ModelConfig;
use crate::train::gemm::{add_bias, add_column_sums, matmul, Op};
use crate::train::params::Params;
use lflow_core::blob::Tensor;
use lflow_core::langevin::LangevinStep;
use lflow_core::posterior::reparameterise;
use lflow_core::potential::Potential;

/// Prior variance of the velocity KL (`kl(v_t, 2 gamma; 0, 0.1)`).
pub const V_PRIOR_VAR: f32 = 0.1;

fn potential(p: &Params) -> Potential {
    Potential::from_flat_kernel(p.get(Tensor::PotentialKernel)).unwrap_or_default()
}

/// The posterior's four heads on `h_0`, in order `mu_z`, `logvar_z`, `mu_v`,
/// `logvar_v`: (weight, bias) of each.
pub const POSTERIOR_HEADS: [(Tensor, Tensor); 4] = [
    (Tensor::ZMeansWeight, Tensor::ZMeansBias),
    (Tensor::ZLogvarWeight, Tensor::ZLogvarBias),
    (Tensor::VMeansWeight, Tensor::VMeansBias),
    (Tensor::VLogvarWeight, Tensor::VLogvarBias),
];

pub(super) fn forward(cfg: &ModelConfig, p: &Params, c: &Chunk<'_>, ws: &mut Workspace) {
    let (bc, tt, h, d) = (c.trials, c.bins, cfg.hidden, cfg.d_model());
    let ne = tt + 1;
    let h0 = &ws.h[..bc * h];
    for ((w, bias), out) in POSTERIOR_HEADS.iter().zip([&mut ws.mu_z, &mut ws.lv_z, &mut ws.mu_v, &mut ws.lv_v]) {
        matmul(out, h0, Op::N, p.get(*w), Op::T, bc, h, h, false);
        add_bias(out, p.get(*bias));
    }
    let step = bc * h;
    for b in 0..bc {
        let e = &c.noise[b * ne * h..];
        for k in 0..h {
            let j = b * h + k;
            ws.z[j] = reparameterise(ws.mu_z[j], ws.lv_z[j], e[k]);
            ws.v[j] = reparameterise(ws.mu_v[j], ws.lv_v[j], e[h + k]);
        }
    }
    let pot = potential(p);
    let langevin = LangevinStep { gamma: cfg.gamma, eps: cfg.eps };
    let force = &mut ws.scratch[..h];
    for t in 1..tt {
        if cfg.anchors_at(t) {
            // Re-anchor (core/CONTINUOUS.md): the posterior means on h_t, no noise.
            let h_t = &ws.h[t * step..(t + 1) * step];
            for ((w, bias), out) in [POSTERIOR_HEADS[0], POSTERIOR_HEADS[2]].iter().zip([&mut ws.z, &mut ws.v]) {
                let out = &mut out[t * step..(t + 1) * step];
                matmul(out, h_t, Op::N, p.get(*w), Op::T, bc, h, h, false);
                add_bias(out, p.get(*bias));
            }
            continue;
        }
        let (past, now) = ws.z.split_at_mut(t * step);
        now[..step].copy_from_slice(&past[(t - 1) * step..]);
        let (vpast, vnow) = ws.v.split_at_mut(t * step);
        vnow[..step].copy_from_slice(&vpast[(t - 1) * step..]);
        for b in 0..bc {
            let e = &c.noise[(b * ne + 1 + t) * h..(b * ne + 2 + t) * h];
            langevin.step_slice(&pot, &mut now[b * h..(b + 1) * h], &mut vnow[b * h..(b + 1) * h], force, e);
        }
    }
    for b in 0..bc {
        for t in 0..tt {
            let row = &mut ws.l[(b * tt + t) * d..(b * tt + t + 1) * d];
            let src = (t * bc + b) * h;
            row[..h].copy_from_slice(&ws.z[src..src + h]);
            row[h..2 * h].copy_from_slice(&ws.v[src..src + h]);
            row[2 * h..].copy_from_slice(&ws.h[src..src + h]);
        }
    }
}

/// Sum over the chunk's trials of `KL0 + sum_{t >= 1} KL_t`.
pub(super) fn kl(cfg: &ModelConfig, c: &Chunk<'_>, ws: &Workspace) -> f64 {
    let (bc, h) = (c.trials, cfg.hidden);
    let gauss = |m: f32, lv: f32| 0.5 * (-(lv as f64) - 1.0 + (m as f64).powi(2) + (lv as f64).exp());
    let mut total = 0.0f64;
    for j in 0..bc * h {
        total += gauss(ws.mu_z[j], ws.lv_z[j]) + gauss(ws.mu_v[j], ws.lv_v[j]);
    }
    let (var2, lv) = (V_PRIOR_VAR as f64, 2.0 * cfg.gamma as f64);
    let constant = var2.ln() - lv - 1.0 + lv.exp() / var2;
    for &v in &ws.v[bc * h..c.bins * bc * h] {
        total += 0.5 * (constant + (v as f64).powi(2) / var2);
    }
    total
}

/// `d (f(z) . w) / d a[i][j]` for the effective taps `a [4, 3]` of the potential:
/// `sum_m W[m] z_i[m + j - 1] + sum_m w_i[m] s[m - j + 1]`, `W = sum_c w_c`, `s = sum_c z_c`.
pub fn potential_taps_vjp(z: &[f32], w: &[f32], out: &mut [[f64; 3]; 4]) {
    let len = z.len() / 4;
    let at =
        |x: &[f32], c: usize, k: isize| if k < 0 || k >= len as isize { 0.0 } else { x[c * len + k as usize] as f64 };
    for m in 0..len as isize {
        let wsum: f64 = (0..4).map(|c| at(w, c, m)).sum();
        for (i, row) in out.iter_mut().enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                let j = j as isize;
                let s: f64 = (0..4).map(|c| at(z, c, m - j + 1)).sum();
                *o += wsum * at(z, i, m + j - 1) + at(w, i, m) * s;
            }
        }
    }
}

/// Chain `d loss / d a` through `a[i][j] = sum_o Kn[o,i,j]` and the row
/// normalisation `Kn = K / max(|K|, 1e-12)` to `d loss / d K [4, 4, 3]`
/// (added to `out`). At `|K| <= 1e-12` the clamp makes the gradient `1e12 * dKn`.
pub fn taps_to_kernel_grad(kernel: &[f32], da: &[[f64; 3]; 4], out: &mut [f32]) {
    for o in 0..4 {
        for (i, da_i) in da.iter().enumerate() {
            let base = (o * 4 + i) * 3;
            let k = &kernel[base..base + 3];
            let norm = k.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if norm > 1e-12 {
                let kn: Vec<f64> = k.iter().map(|x| *x as f64 / norm).collect();
                let dot: f64 = kn.iter().zip(da_i).map(|(a, b)| a * b).sum();
                for j in 0..3 {
                    out[base + j] += ((da_i[j] - kn[j] * dot) / norm) as f32;
                }
            } else {
                for j in 0..3 {
                    out[base + j] += (da_i[j] / 1e-12) as f32;
                }
            }
        }
    }
}

/// `ws.dz`, `ws.dv`, `ws.dh [TT, Bc, H]` hold the decoder's gradients; runs the
/// Langevin steps and the posterior backwards, adds to `g` and to `ws.dh[0]`.
pub(super) fn backward(
    cfg: &ModelConfig,
    p: &Params,
    c: &Chunk<'_>,
    scale: LossScale,
    ws: &mut Workspace,
    g: &mut Params,
) {
    let (bc, tt, h) = (c.trials, c.bins, cfg.hidden);
    let (ne, step) = (tt + 1, bc * h);
    let (gamma, eps) = (cfg.gamma, cfg.eps);
    for (dv, v) in ws.dv[step..tt * step].iter_mut().zip(&ws.v[step..tt * step]) {
        *dv += scale.kl * v / V_PRIOR_VAR;
    }
    let pot = potential(p);
    let mut da = [[0.0f64; 3]; 4];
    let sg = &mut ws.scratch[..h];
    for t in (1..tt).rev() {
        if cfg.anchors_at(t) {
            // z_t, v_t = mu(h_t): into the mean heads and h_t; nothing reaches bin t - 1.
            let span = t * step..(t + 1) * step;
            for ((w, bias), dout) in
                [POSTERIOR_HEADS[0], POSTERIOR_HEADS[2]].iter().zip([&ws.dz[span.clone()], &ws.dv[span.clone()]])
            {
                matmul(g.get_mut(*w), dout, Op::T, &ws.h[span.clone()], Op::N, h, bc, h, true);
                add_column_sums(g.get_mut(*bias), dout);
                matmul(&mut ws.dh[span.clone()], dout, Op::N, p.get(*w), Op::N, bc, h, h, true);
            }
            continue;
        }
        for b in 0..bc {
            let now = t * step + b * h;
            let prev = now - step;
            pot.gradient_slice(&ws.dv[now..now + h], sg);
            let mut taps = [[0.0f64; 3]; 4];
            potential_taps_vjp(&ws.z[prev..prev + h], &ws.dv[now..now + h], &mut taps);
            for (acc, x) in da.iter_mut().flatten().zip(taps.iter().flatten()) {
                *acc += -((1.0 - gamma) * eps) as f64 * x;
            }
            for (k, s) in sg.iter().enumerate() {
                let (gz, gv) = (ws.dz[now + k], ws.dv[now + k]);
                ws.dv[prev + k] += eps * gz + (1.0 - gamma) * gv;
                ws.dz[prev + k] += gz - (1.0 - gamma) * eps * s;
            }
        }
    }
    taps_to_kernel_grad(p.get(Tensor::PotentialKernel), &da, g.get_mut(Tensor::PotentialKernel));

    // Bin 0: reparameterisation and KL0, into d mu / d logvar of both heads.
    let (dmu_z, rest) = ws.scratch.split_at_mut(step);
    let (dlv_z, rest) = rest.split_at_mut(step);
    let (dmu_v, rest) = rest.split_at_mut(step);
    let dlv_v = &mut rest[..step];
    for b in 0..bc {
        let e = &c.noise[b * ne * h..];
        for k in 0..h {
            let j = b * h + k;
            let (sz, sv) = (lflow_core::math::exp(0.5 * ws.lv_z[j]), lflow_core::math::exp(0.5 * ws.lv_v[j]));
            dmu_z[j] = ws.dz[j] + scale.kl * ws.mu_z[j];
            dlv_z[j] = ws.dz[j] * e[k] * 0.5 * sz + scale.kl * 0.5 * (sz * sz - 1.0);
            dmu_v[j] = ws.dv[j] + scale.kl * ws.mu_v[j];
            dlv_v[j] = ws.dv[j] * e[h + k] * 0.5 * sv + scale.kl * 0.5 * (sv * sv - 1.0);
        }
    }
    let h0 = &ws.h[..step];
    for ((w, bias), dout) in POSTERIOR_HEADS.iter().zip([&*dmu_z, &*dlv_z, &*dmu_v, &*dlv_v]) {
        matmul(g.get_mut(*w), dout, Op::T, h0, Op::N, h, bc, h, true);
        add_column_sums(g.get_mut(*bias), dout);
        matmul(&mut ws.dh[..step], dout, Op::N, p.get(*w), Op::N, bc, h, h, true);
    }
}
