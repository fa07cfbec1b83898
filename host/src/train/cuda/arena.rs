//! Every device buffer of one batch shape, carved out of one allocation, and
//! the resident parameters with their gradients and Adam moments.

use super::gpu::{BufId, DevPtr, Gpu, GpuError};
use crate::config::ModelConfig;

/// The shape the arena was laid out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Trials `Bc`.
    pub trials: usize,
    /// Observed bins `T`.
    pub observed: usize,
    /// Observed plus forward bins `TT`.
    pub bins: usize,
}

impl Shape {
    /// Whether an arena laid out for `self` holds a batch of shape `other`
    /// (fewer trials fit: every layout indexes with the batch's own trial count).
    pub fn holds(&self, other: &Shape) -> bool {
        other.trials <= self.trials && other.observed == self.observed && other.bins == self.bins
    }
}

/// Blocks of the fused loss kernel; its partial sums are downloaded.
pub const LOSS_BLOCKS: usize = 32;

macro_rules! arena {
    ($($name:ident),* $(,)?) => {
        /// Device pointers of every activation, gradient and input of a step.
        #[derive(Clone, Copy, Debug)]
        #[allow(missing_docs)]
        pub struct Arena { pub buf: BufId, $(pub $name: DevPtr,)* }
    };
}

arena!(
    taps, dtaps, partials, input, targets, grad_mask, noise, seeds, // inputs and sums
    xg, gi, gh, r, u, n, ghn, h, h_mask, // encoder [TT, Bc, .]
    mu_z, lv_z, mu_v, lv_v, z, v, // latent
    l, qkv, probs, ctx, attn_mask, y, xhat1, rstd1, f1, f1_mask, f2_mask, xhat2, rstd2, y2, log_rates,
    branch, // decoder
    d_lr, d_rows, d_rows2, d_ff, d_qkv, ds, dz, dv, dh, dgi, dgh, h_prev, dmu_z, dlv_z, dmu_v, dlv_v, // backward
);

impl Arena {
    /// Lay out and allocate the buffers of `shape` on `gpu`.
    pub fn new(gpu: &mut dyn Gpu, cfg: &ModelConfig, s: Shape) -> Result<Arena, GpuError> {
        let (bc, t, tt) = (s.trials, s.observed, s.bins);
        let (h, d, ff, nin, nout) = (cfg.hidden, cfg.d_model(), cfg.ff, cfg.n_in, cfg.n_out);
        let (enc, rows) = (tt * bc, bc * tt);
        let mut next = 0usize;
        // Each region 256-byte aligned, as cudaMalloc's own allocations.
        let mut region = |elems: usize, size: usize| {
            let start = next;
            next = (next + elems.max(1) * size).div_ceil(256) * 256;
            start
        };
        let f = 4;
        let o_taps = region(12, f);
        let o_dtaps = region(bc * 12, 8);
        let o_partials = region(LOSS_BLOCKS * 2, 8);
        let o_input = region(bc * t * nin, f);
        let o_targets = region(rows * nout, f);
        let o_grad_mask = region(bc * t * nin, f);
        let o_noise = region(bc * (tt + 1) * h, f);
        let o_seeds = region(bc, 8);
        let o_xg = region(enc * nin, f);
        let o_gi = region(enc * 3 * h, f);
        let o_gh = region(bc * 3 * h, f);
        let o_r = region(enc * h, f);
        let o_u = region(enc * h, f);
        let o_n = region(enc * h, f);
        let o_ghn = region(enc * h, f);
        let o_h = region(enc * h, f);
        let o_h_mask = region(enc * h, f);
        let o_mu_z = region(bc * h, f);
        let o_lv_z = region(bc * h, f);
        let o_mu_v = region(bc * h, f);
        let o_lv_v = region(bc * h, f);
        let o_z = region(enc * h, f);
        let o_v = region(enc * h, f);
        let o_l = region(rows * d, f);
        let o_qkv = region(rows * 3 * d, f);
        let o_probs = region(bc * 2 * tt * tt, f);
        let o_ctx = region(rows * d, f);
        let o_attn_mask = region(rows * d, f);
        let o_y = region(rows * d, f);
        let o_xhat1 = region(rows * d, f);
        let o_rstd1 = region(rows, f);
        let o_f1 = region(rows * ff, f);
        let o_f1_mask = region(rows * ff, f);
        let o_f2_mask = region(rows * d, f);
        let o_xhat2 = region(rows * d, f);
        let o_rstd2 = region(rows, f);
        let o_y2 = region(rows * d, f);
        let o_log_rates = region(rows * nout, f);
        let o_branch = region(rows * d, f);
        let o_d_lr = region(rows * nout, f);
        let o_d_rows = region(rows * d, f);
        let o_d_rows2 = region(rows * d, f);
        let o_d_ff = region(rows * ff, f);
        let o_d_qkv = region(rows * 3 * d, f);
        let o_ds = region(bc * 2 * tt * tt, f);
        let o_dz = region(enc * h, f);
        let o_dv = region(enc * h, f);
        let o_dh = region(enc * h, f);
        let o_dgi = region(enc * 3 * h, f);
        let o_dgh = region(enc * 3 * h, f);
        let o_h_prev = region(enc * h, f);
        let o_dmu_z = region(bc * h, f);
        let o_dlv_z = region(bc * h, f);
        let o_dmu_v = region(bc * h, f);
        let o_dlv_v = region(bc * h, f);
        let buf = gpu.alloc(next)?;
        let at = |offset: usize| DevPtr { buf, offset };
        Ok(Arena {
            buf,
            taps: at(o_taps),
            dtaps: at(o_dtaps),
            partials: at(o_partials),
            input: at(o_input),
            targets: at(o_targets),
            grad_mask: at(o_grad_mask),
            noise: at(o_noise),
            seeds: at(o_seeds),
            xg: at(o_xg),
            gi: at(o_gi),
            gh: at(o_gh),
            r: at(o_r),
            u: at(o_u),
            n: at(o_n),
            ghn: at(o_ghn),
            h: at(o_h),
            h_mask: at(o_h_mask),
            mu_z: at(o_mu_z),
            lv_z: at(o_lv_z),
            mu_v: at(o_mu_v),
            lv_v: at(o_lv_v),
            z: at(o_z),
            v: at(o_v),
            l: at(o_l),
            qkv: at(o_qkv),
            probs: at(o_probs),
            ctx: at(o_ctx),
            attn_mask: at(o_attn_mask),
            y: at(o_y),
            xhat1: at(o_xhat1),
            rstd1: at(o_rstd1),
            f1: at(o_f1),
            f1_mask: at(o_f1_mask),
            f2_mask: at(o_f2_mask),
            xhat2: at(o_xhat2),
            rstd2: at(o_rstd2),
            y2: at(o_y2),
            log_rates: at(o_log_rates),
            branch: at(o_branch),
            d_lr: at(o_d_lr),
            d_rows: at(o_d_rows),
            d_rows2: at(o_d_rows2),
            d_ff: at(o_d_ff),
            d_qkv: at(o_d_qkv),
            ds: at(o_ds),
            dz: at(o_dz),
            dv: at(o_dv),
            dh: at(o_dh),
            dgi: at(o_dgi),
            dgh: at(o_dgh),
            h_prev: at(o_h_prev),
            dmu_z: at(o_dmu_z),
            dlv_z: at(o_dlv_z),
            dmu_v: at(o_dmu_v),
            dlv_v: at(o_dlv_v),
        })
    }
}

/// The flat parameters, their gradients and Adam's moments, resident on the
/// device for as long as the parameter count stays the same.
#[derive(Clone, Copy, Debug)]
pub struct Weights {
    /// The allocation.
    pub buf: BufId,
    /// Parameters in each buffer.
    pub len: usize,
    /// `[P]` parameters.
    pub params: DevPtr,
    /// `[P]` d loss / d params of the last backward pass.
    pub grads: DevPtr,
    /// `[P]` Adam's first moments.
    pub m: DevPtr,
    /// `[P]` Adam's second moments.
    pub v: DevPtr,
}

impl Weights {
    /// Allocate (zeroed) for `len` parameters.
    pub fn new(gpu: &mut dyn Gpu, len: usize) -> Result<Weights, GpuError> {
        let stride = (len.max(1) * 4).div_ceil(256) * 256;
        let buf = gpu.alloc(4 * stride)?;
        let at = |i: usize| DevPtr { buf, offset: i * stride };
        Ok(Weights { buf, len, params: at(0), grads: at(1), m: at(2), v: at(3) })
    }
}
