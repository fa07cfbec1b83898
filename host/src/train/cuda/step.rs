//! One pass of the model over a batch on the device: the same computation as
//! `crate::train::model` (MODEL.md sections 1-6), as cuBLAS GEMMs and the fused
//! kernels of `host/cuda/`. Rows of row-major matrices map to cuBLAS's
//! column-major convention in [`Step::mm`]. Nothing here copies between host
//! and device, and the numbers that change from step to step are read from
//! the arena's `scalars`, so a step can be captured as a graph.

use super::arena::{Arena, Weights, LOSS_BLOCKS};
use super::gpu::{Arg, DevPtr, Gpu, GpuError, LaunchDims, Sgemm};
use crate::config::ModelConfig;
use crate::train::gemm::Op;
use crate::train::model::{LossSums, POSTERIOR_HEADS, V_PRIOR_VAR};
use crate::train::params::Params;
use lflow_core::blob::Tensor;
use lflow_core::layer_norm::LAYER_NORM_EPS;

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 128;
/// Threads per block of the attention kernels (one query or key row each).
const ATTENTION_THREADS: u32 = 64;
/// One warp per LayerNorm row: D = 3H is a few hundred wide, and a warp's
/// reduction needs no shared-memory round trip between warps.
const LAYER_NORM_THREADS: u32 = 32;
/// Trials per block of the persistent GRU kernels (`LFLOW_GRU_TRIALS` in
/// `host/cuda/encoder.cu`: the two must agree).
const GRU_TRIALS: usize = 4;
/// Threads per block of the fused loss (a grid-stride reduction).
const LOSS_THREADS: u32 = 128;
/// Largest dynamic shared memory a kernel asks for (the default limit).
const SMEM_LIMIT: usize = 48 * 1024;

use Arg::{Null, Ptr, F32, I32, I64};

fn grid_for(n: usize) -> (u32, u32) {
    ((n.div_ceil(THREADS as usize)).clamp(1, 4096) as u32, 1)
}

/// A block of at least `h` threads (a whole number of warps, at least one).
fn block_for(h: usize) -> u32 {
    (h.div_ceil(32) * 32).max(32) as u32
}

/// The sizes of one pass.
pub(crate) struct Step<'a> {
    pub gpu: &'a mut dyn Gpu,
    pub cfg: &'a ModelConfig,
    pub params: &'a Params,
    pub a: Arena,
    pub wts: Weights,
    pub trials: usize,
    pub observed: usize,
    pub bins: usize,
    pub has_grad_mask: bool,
    /// Kernel launches and GEMM calls made.
    pub launches: usize,
}

impl Step<'_> {
    fn w(&self, t: Tensor) -> DevPtr {
        self.wts.params.at_f32(self.params.offset(t))
    }

    fn g(&self, t: Tensor) -> DevPtr {
        self.wts.grads.at_f32(self.params.offset(t))
    }

    fn launch(&mut self, kernel: &'static str, dims: LaunchDims, args: &[Arg]) -> Result<(), GpuError> {
        self.launches += 1;
        self.gpu.launch(kernel, dims, args)
    }

    fn elementwise(&mut self, kernel: &'static str, n: usize, args: &[Arg]) -> Result<(), GpuError> {
        self.launch(kernel, LaunchDims { grid: grid_for(n), block: THREADS, smem: 0 }, args)
    }

    /// Row-major `C [m, n] = A' [m, k] B' [k, n] (+ C)`, as `crate::train::gemm::matmul`:
    /// computed as the column-major `C^T = B'^T A'^T`.
    #[allow(clippy::too_many_arguments)]
    fn mm(
        &mut self,
        c: DevPtr,
        a: DevPtr,
        op_a: Op,
        b: DevPtr,
        op_b: Op,
        m: usize,
        k: usize,
        n: usize,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        self.launches += 1;
        self.gpu.sgemm(&Sgemm {
            trans_a: op_b == Op::T,
            trans_b: op_a == Op::T,
            m: n,
            n: m,
            k,
            alpha: 1.0,
            a: b,
            lda: if op_b == Op::N { n } else { k },
            b: a,
            ldb: if op_a == Op::N { k } else { m },
            beta: if accumulate { 1.0 } else { 0.0 },
            c,
            ldc: n,
        })
    }

    fn add_bias(&mut self, x: DevPtr, bias: Tensor, rows: usize, cols: usize) -> Result<(), GpuError> {
        let b = self.w(bias);
        self.elementwise("add_bias", rows * cols, &[Ptr(x), Ptr(b), I32(rows as i32), I32(cols as i32)])
    }

    fn column_sums(&mut self, x: DevPtr, out: DevPtr, rows: usize, cols: usize) -> Result<(), GpuError> {
        self.elementwise("column_sums", cols, &[Ptr(x), Ptr(out), I32(rows as i32), I32(cols as i32), I32(0)])
    }

    /// `out = x W^T + b` over `rows` rows: a linear layer of `weight [n, k]`.
    fn linear(&mut self, out: DevPtr, x: DevPtr, weight: Tensor, bias: Tensor, rows: usize) -> Result<(), GpuError> {
        let (n, k) = self.shape(weight);
        self.mm(out, x, Op::N, self.w(weight), Op::T, rows, k, n, false)?;
        self.add_bias(out, bias, rows, n)
    }

    /// Gradients of a linear layer from `dout [rows, n]` and its input `x [rows, k]`;
    /// `dx` (when given) receives `dout W` (added when `accumulate`).
    #[allow(clippy::too_many_arguments)]
    fn linear_backward(
        &mut self,
        dout: DevPtr,
        x: DevPtr,
        weight: Tensor,
        bias: Tensor,
        rows: usize,
        dx: Option<(DevPtr, bool)>,
    ) -> Result<(), GpuError> {
        let (n, k) = self.shape(weight);
        self.mm(self.g(weight), dout, Op::T, x, Op::N, n, rows, k, false)?;
        self.column_sums(dout, self.g(bias), rows, n)?;
        if let Some((dx, acc)) = dx {
            self.mm(dx, dout, Op::N, self.w(weight), Op::N, rows, n, k, acc)?;
        }
        Ok(())
    }

    /// Launch shape of the persistent GRU kernels: a block per [`GRU_TRIALS`]
    /// trials, threads enough for the 3H rows of `W_hh` (256 at most).
    fn gru_launch(&self, smem: u32) -> LaunchDims {
        let grid = self.trials.div_ceil(GRU_TRIALS).max(1) as u32;
        LaunchDims { grid: (grid, 1), block: block_for(3 * self.cfg.hidden).min(256), smem }
    }

    fn shape(&self, t: Tensor) -> (usize, usize) {
        let (r, c) = t.shape(&self.cfg.dims(0));
        (r as usize, c as usize)
    }

    fn masks(&mut self, which: u64, rate: f32, mask: DevPtr, width: usize, time_major: bool) -> Result<(), GpuError> {
        let (bc, tt) = (self.trials, self.bins);
        let dims = LaunchDims { grid: (bc.div_ceil(32) as u32, 1), block: 32, smem: 0 };
        let args = [
            Ptr(self.a.seeds),
            Arg::U64(which),
            F32(rate),
            Ptr(mask),
            I32(bc as i32),
            I32(tt as i32),
            I32(width as i32),
            I32(time_major as i32),
        ];
        self.launch("dropout_masks", dims, &args)
    }

    /// Launch shape of both attention kernels (block per trial and head, key
    /// tiles of `kt` rows in shared memory), `kt` and the score scale `1 / sqrt(D/2)`.
    fn attention_launch(&self) -> (LaunchDims, usize, f32) {
        let hd = self.cfg.head_dim();
        let kt = (SMEM_LIMIT / 4 / hd).clamp(1, 32);
        let dims = LaunchDims { grid: (self.trials as u32, 2), block: ATTENTION_THREADS, smem: (kt * hd * 4) as u32 };
        (dims, kt, 1.0 / (hd as f32).sqrt())
    }

    /// The forward pass and the loss's per-block sums ([`Step::loss_sums`]);
    /// `d_log_rates` too when `grad` (scaled by the arena's `scalars`).
    pub fn forward(&mut self, dropout: f32, grad: bool) -> Result<(), GpuError> {
        let (cfg, a) = (self.cfg, self.a);
        let (bc, t_obs, tt) = (self.trials, self.observed, self.bins);
        let (h, d, ff, nin, nout) = (cfg.hidden, cfg.d_model(), cfg.ff, cfg.n_in, cfg.n_out);
        let (step, rows, enc) = (bc * h, bc * tt, tt * bc);
        // Encoder.
        let previous = (cfg.schedule() == lflow_core::InputSchedule::PreviousBin) as i32;
        let gather = [Ptr(a.input), Ptr(a.xg), I32(bc as i32), I32(t_obs as i32), I32(tt as i32), I32(nin as i32)];
        self.elementwise("gather_input", enc * nin, &[&gather[..], &[I32(previous)]].concat())?;
        self.masks(1, dropout, a.h_mask, h, true)?;
        self.mm(a.gi, a.xg, Op::N, self.w(Tensor::EncoderWeightIh), Op::T, enc, nin, 3 * h, false)?;
        let args = [
            Ptr(a.gi),
            Ptr(self.w(Tensor::EncoderWeightHh)),
            Ptr(self.w(Tensor::EncoderBiasIh)),
            Ptr(self.w(Tensor::EncoderBiasHh)),
            Ptr(a.h_mask),
            Ptr(a.r),
            Ptr(a.u),
            Ptr(a.n),
            Ptr(a.ghn),
            Ptr(a.h),
            I32(bc as i32),
            I32(h as i32),
            I32(tt as i32),
        ];
        self.launch("gru_forward", self.gru_launch((GRU_TRIALS * 3 * h * 4) as u32), &args)?;
        // Posterior at bin 0, then the Langevin steps.
        for ((w, b), out) in POSTERIOR_HEADS.into_iter().zip([a.mu_z, a.lv_z, a.mu_v, a.lv_v]) {
            self.linear(out, a.h, w, b, bc)?;
        }
        let sample = [Ptr(a.mu_z), Ptr(a.lv_z), Ptr(a.mu_v), Ptr(a.lv_v), Ptr(a.noise), Ptr(a.z), Ptr(a.v)];
        self.elementwise(
            "posterior_sample",
            step,
            &[&sample[..], &[I32(bc as i32), I32(h as i32), I32(tt as i32)]].concat(),
        )?;
        let one = LaunchDims { grid: (1, 1), block: 1, smem: 0 };
        self.launch("potential_taps", one, &[Ptr(self.w(Tensor::PotentialKernel)), Ptr(a.taps)])?;
        let block = block_for(h);
        let dims = LaunchDims { grid: (bc as u32, 1), block, smem: ((h + 12) * 4) as u32 };
        let args = [
            Ptr(a.taps),
            Ptr(a.z),
            Ptr(a.v),
            Ptr(a.noise),
            I32(bc as i32),
            I32(tt as i32),
            I32(h as i32),
            F32(cfg.gamma),
            F32(cfg.eps),
        ];
        self.launch("langevin_forward", dims, &args)?;
        let assemble = [Ptr(a.z), Ptr(a.v), Ptr(a.h), Ptr(a.l), I32(bc as i32), I32(tt as i32), I32(h as i32)];
        self.elementwise("assemble_latents", rows * d, &assemble)?;
        // Decoder: attention, residual, LayerNorm, feed-forward, residual, LayerNorm, readout.
        self.linear(a.qkv, a.l, Tensor::AttnInProjWeight, Tensor::AttnInProjBias, rows)?;
        let (dims, kt, att_scale) = self.attention_launch();
        let window = cfg.mode.window().map_or(-1, |w| w as i32);
        let args = [
            Ptr(a.qkv),
            Ptr(a.probs),
            Ptr(a.ctx),
            I32(tt as i32),
            I32(d as i32),
            I32(window),
            F32(att_scale),
            I32(kt as i32),
        ];
        self.launch("attention_forward", dims, &args)?;
        self.masks(2, dropout, a.attn_mask, d, false)?;
        self.linear(a.branch, a.ctx, Tensor::AttnOutProjWeight, Tensor::AttnOutProjBias, rows)?;
        let n = (rows * d) as i64;
        self.elementwise("residual_dropout", rows * d, &[Ptr(a.y), Ptr(a.l), Ptr(a.branch), Ptr(a.attn_mask), I64(n)])?;
        self.layer_norm(a.y, Tensor::Norm1Weight, Tensor::Norm1Bias, a.xhat1, a.rstd1, rows)?;
        self.linear(a.f1, a.y, Tensor::Linear1Weight, Tensor::Linear1Bias, rows)?;
        self.masks(3, dropout, a.f1_mask, ff, false)?;
        self.elementwise("relu_dropout", rows * ff, &[Ptr(a.f1), Ptr(a.f1_mask), I64((rows * ff) as i64)])?;
        self.masks(4, dropout, a.f2_mask, d, false)?;
        self.linear(a.branch, a.f1, Tensor::Linear2Weight, Tensor::Linear2Bias, rows)?;
        self.elementwise("residual_dropout", rows * d, &[Ptr(a.y2), Ptr(a.y), Ptr(a.branch), Ptr(a.f2_mask), I64(n)])?;
        self.layer_norm(a.y2, Tensor::Norm2Weight, Tensor::Norm2Bias, a.xhat2, a.rstd2, rows)?;
        self.linear(a.log_rates, a.y2, Tensor::ReadoutWeight, Tensor::ReadoutBias, rows)?;
        // The loss, fused; the few per-block partial sums come back to the host.
        let mask = if self.has_grad_mask { Ptr(a.grad_mask) } else { Null };
        let args = [
            Ptr(a.log_rates),
            Ptr(a.targets),
            mask,
            Ptr(a.d_log_rates),
            Ptr(a.mu_z),
            Ptr(a.lv_z),
            Ptr(a.mu_v),
            Ptr(a.lv_v),
            Ptr(a.v),
            Ptr(a.partials),
            I32(bc as i32),
            I32(tt as i32),
            I32(t_obs as i32),
            I32(nout as i32),
            I32(nin as i32),
            I32(h as i32),
            Ptr(a.scalars),
            F32(cfg.gamma),
            F32(V_PRIOR_VAR),
            I32(grad as i32),
        ];
        self.launch(
            "poisson_kl_loss",
            LaunchDims { grid: (LOSS_BLOCKS as u32, 1), block: LOSS_THREADS, smem: 0 },
            &args,
        )
    }

    /// The loss of the last [`Step::forward`] on arena `a`: its per-block
    /// sums, downloaded and added up, over `elements` log-rates.
    pub fn loss_sums(gpu: &mut dyn Gpu, a: &Arena, elements: usize) -> Result<LossSums, GpuError> {
        let mut partials = [0u8; LOSS_BLOCKS * 16];
        gpu.download(a.partials, &mut partials)?;
        let sums: &[f64] = bytemuck::cast_slice(&partials);
        let (nll, kl) = sums.chunks_exact(2).fold((0.0, 0.0), |(n, k), p| (n + p[0], k + p[1]));
        Ok(LossSums { nll, kl, elements })
    }

    fn layer_norm(
        &mut self,
        x: DevPtr,
        w: Tensor,
        b: Tensor,
        xhat: DevPtr,
        rstd: DevPtr,
        rows: usize,
    ) -> Result<(), GpuError> {
        let d = self.cfg.d_model();
        let dims = LaunchDims { grid: (rows as u32, 1), block: LAYER_NORM_THREADS, smem: 0 };
        let args = [
            Ptr(x),
            Ptr(self.w(w)),
            Ptr(self.w(b)),
            Ptr(xhat),
            Ptr(rstd),
            I32(rows as i32),
            I32(d as i32),
            F32(LAYER_NORM_EPS),
        ];
        self.launch("layer_norm_forward", dims, &args)
    }

    /// `dx = LN'(dy)`, and the affine parameters' gradients.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        &mut self,
        dy: DevPtr,
        xhat: DevPtr,
        rstd: DevPtr,
        w: Tensor,
        b: Tensor,
        dx: DevPtr,
        rows: usize,
    ) -> Result<(), GpuError> {
        let d = self.cfg.d_model();
        let dims = LaunchDims { grid: (rows as u32, 1), block: LAYER_NORM_THREADS, smem: 0 };
        let args = [Ptr(dy), Ptr(xhat), Ptr(rstd), Ptr(self.w(w)), Ptr(dx), I32(rows as i32), I32(d as i32)];
        self.launch("layer_norm_backward", dims, &args)?;
        let args = [Ptr(dy), Ptr(xhat), Ptr(self.g(w)), Ptr(self.g(b)), I32(rows as i32), I32(d as i32)];
        self.elementwise("layer_norm_param_grads", d, &args)
    }

    /// The backward pass after [`Step::forward`] with `grad`: d loss / d params into `grads`.
    pub fn backward(&mut self) -> Result<(), GpuError> {
        let (cfg, a) = (self.cfg, self.a);
        let (bc, tt) = (self.trials, self.bins);
        let (h, d, ff, nin) = (cfg.hidden, cfg.d_model(), cfg.ff, cfg.n_in);
        let (step, rows, enc) = (bc * h, bc * tt, tt * bc);
        let bytes = |n: usize| n * 4;
        // Readout and LN2.
        self.linear_backward(
            a.d_log_rates,
            a.y2,
            Tensor::ReadoutWeight,
            Tensor::ReadoutBias,
            rows,
            Some((a.d_rows, false)),
        )?;
        self.layer_norm_backward(a.d_rows, a.xhat2, a.rstd2, Tensor::Norm2Weight, Tensor::Norm2Bias, a.d_rows2, rows)?;
        // d y = d res2 (residual) + the feed-forward path.
        let n = (rows * d) as i64;
        self.gpu.copy(a.d_rows, a.d_rows2, bytes(rows * d))?;
        self.elementwise("mul_mask", rows * d, &[Ptr(a.d_rows2), Ptr(a.d_rows2), Ptr(a.f2_mask), I64(n)])?;
        self.linear_backward(a.d_rows2, a.f1, Tensor::Linear2Weight, Tensor::Linear2Bias, rows, Some((a.d_ff, false)))?;
        let nf = (rows * ff) as i64;
        self.elementwise("mul_mask", rows * ff, &[Ptr(a.d_ff), Ptr(a.d_ff), Ptr(a.f1_mask), I64(nf)])?;
        self.linear_backward(a.d_ff, a.y, Tensor::Linear1Weight, Tensor::Linear1Bias, rows, Some((a.d_rows, true)))?;
        // LN1; d l = d res1 (residual) + the attention path.
        self.layer_norm_backward(a.d_rows, a.xhat1, a.rstd1, Tensor::Norm1Weight, Tensor::Norm1Bias, a.d_rows2, rows)?;
        self.gpu.copy(a.d_rows, a.d_rows2, bytes(rows * d))?;
        self.elementwise("mul_mask", rows * d, &[Ptr(a.d_rows2), Ptr(a.d_rows2), Ptr(a.attn_mask), I64(n)])?;
        // d ctx overwrites ctx once the out-projection's weight gradient has read it.
        let (wo, bo) = (Tensor::AttnOutProjWeight, Tensor::AttnOutProjBias);
        self.linear_backward(a.d_rows2, a.ctx, wo, bo, rows, None)?;
        self.mm(a.ctx, a.d_rows2, Op::N, self.w(wo), Op::N, rows, d, d, false)?;
        let (dims, kt, att_scale) = self.attention_launch();
        let args = [
            Ptr(a.qkv),
            Ptr(a.probs),
            Ptr(a.ctx),
            Ptr(a.ds),
            Ptr(a.d_qkv),
            I32(tt as i32),
            I32(d as i32),
            F32(att_scale),
            I32(kt as i32),
        ];
        self.launch("attention_backward", dims, &args)?;
        let (wi, bi) = (Tensor::AttnInProjWeight, Tensor::AttnInProjBias);
        self.linear_backward(a.d_qkv, a.l, wi, bi, rows, Some((a.d_rows, true)))?;
        let split = [Ptr(a.d_rows), Ptr(a.dz), Ptr(a.dv), Ptr(a.dh), I32(bc as i32), I32(tt as i32), I32(h as i32)];
        self.elementwise("split_latent_grads", rows * d, &split)?;
        // Langevin steps backwards, the potential's kernel, bin 0.
        let block = block_for(h);
        let smem = block as usize * 8 + (2 * h + 12) * 4;
        let dims = LaunchDims { grid: (bc as u32, 1), block, smem: smem as u32 };
        let args = [
            Ptr(a.taps),
            Ptr(a.z),
            Ptr(a.v),
            Ptr(a.dz),
            Ptr(a.dv),
            Ptr(a.dtaps),
            I32(bc as i32),
            I32(tt as i32),
            I32(h as i32),
            F32(cfg.gamma),
            F32(cfg.eps),
            Ptr(a.scalars),
            F32(V_PRIOR_VAR),
        ];
        self.launch("langevin_backward", dims, &args)?;
        let one = LaunchDims { grid: (1, 1), block: 1, smem: 0 };
        let kernel_grad =
            [Ptr(self.w(Tensor::PotentialKernel)), Ptr(a.dtaps), I32(bc as i32), Ptr(self.g(Tensor::PotentialKernel))];
        self.launch("potential_kernel_grad", one, &kernel_grad)?;
        let args = [
            Ptr(a.dz),
            Ptr(a.dv),
            Ptr(a.mu_z),
            Ptr(a.lv_z),
            Ptr(a.mu_v),
            Ptr(a.lv_v),
            Ptr(a.noise),
            Ptr(a.dmu_z),
            Ptr(a.dlv_z),
            Ptr(a.dmu_v),
            Ptr(a.dlv_v),
            I32(bc as i32),
            I32(h as i32),
            I32(tt as i32),
            Ptr(a.scalars),
        ];
        self.elementwise("posterior_backward", step, &args)?;
        for ((w, b), dout) in POSTERIOR_HEADS.into_iter().zip([a.dmu_z, a.dlv_z, a.dmu_v, a.dlv_v]) {
            self.linear_backward(dout, a.h, w, b, bc, Some((a.dh, true)))?;
        }
        // GRU backpropagation through time.
        let args = [
            Ptr(a.dh),
            Ptr(self.w(Tensor::EncoderWeightHh)),
            Ptr(a.h_mask),
            Ptr(a.r),
            Ptr(a.u),
            Ptr(a.n),
            Ptr(a.ghn),
            Ptr(a.h),
            Ptr(a.dgi),
            Ptr(a.dgh),
            I32(bc as i32),
            I32(h as i32),
            I32(tt as i32),
        ];
        self.launch("gru_backward", self.gru_launch(0), &args)?;
        self.mm(self.g(Tensor::EncoderWeightIh), a.dgi, Op::T, a.xg, Op::N, 3 * h, enc, nin, false)?;
        self.column_sums(a.dgi, self.g(Tensor::EncoderBiasIh), enc, 3 * h)?;
        self.gpu.zero(a.h_prev, bytes(step))?;
        self.gpu.copy(a.h_prev.at_f32(step), a.h, bytes((enc - bc) * h))?;
        self.mm(self.g(Tensor::EncoderWeightHh), a.dgh, Op::T, a.h_prev, Op::N, 3 * h, enc, h, false)?;
        self.column_sums(a.dgh, self.g(Tensor::EncoderBiasHh), enc, 3 * h)
    }
}
