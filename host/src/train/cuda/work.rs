//! One step's work on the device as kernel launches and GEMMs (what a graph
//! records), and the device-side index buffers and kernels around the pass:
//! batch assembly from the resident data set, Adam.

use super::arena::{Arena, Shape, Weights};
use super::gpu::{self, Arg, Gpu, GpuError};
use super::step;
use crate::config::ModelConfig;
use crate::train::params::Params;

/// A buffer of `trials.len()` trial indices (i32, uploaded) followed by as many
/// seeds (u64, left to the caller), reusing `old` (buffer, capacity in bytes)
/// when it is large enough; returns it with its capacity, and both pointers.
pub(super) fn index_buffer(
    gpu: &mut dyn Gpu,
    old: Option<(gpu::BufId, usize)>,
    trials: &[usize],
) -> Result<((gpu::BufId, usize), gpu::DevPtr, gpu::DevPtr), GpuError> {
    let n = trials.len();
    let seeds_at = (n * 4).div_ceil(8) * 8;
    let need = seeds_at + n * 8;
    let held = match old {
        Some((b, cap)) if cap >= need => (b, cap),
        other => {
            if let Some((b, _)) = other {
                gpu.free(b);
            }
            (gpu.alloc(need)?, need)
        }
    };
    let order = gpu::DevPtr { buf: held.0, offset: 0 };
    let idx: Vec<i32> = trials.iter().map(|&i| i as i32).collect();
    gpu.upload(order, bytemuck::cast_slice(&idx))?;
    Ok((held, order, gpu::DevPtr { buf: held.0, offset: seeds_at }))
}

/// `assemble_batch` (`host/cuda/batch.cu`): the trials at `order` (with their
/// seeds), from the arena's `scalars.batch_start` on, of the resident `spikes`
/// into the arena's input, targets and noise;
/// `cd_rate: Some(cd)` applies coordinated dropout, and without `noise` every
/// draw is zero (mean mode: validation).
pub(super) fn assemble(
    gpu: &mut dyn Gpu,
    model: &ModelConfig,
    [spikes, order, seeds]: [gpu::DevPtr; 3],
    a: Arena,
    shape: Shape,
    cd_rate: Option<f32>,
    noise: bool,
) -> Result<(), GpuError> {
    let n = shape.trials;
    let args = [
        Arg::Ptr(spikes),
        Arg::Ptr(order),
        Arg::Ptr(seeds),
        Arg::Ptr(a.scalars),
        Arg::Ptr(a.seeds),
        Arg::Ptr(a.input),
        Arg::Ptr(a.targets),
        Arg::Ptr(a.grad_mask),
        Arg::Ptr(a.noise),
        Arg::I32(n as i32),
        Arg::I32(shape.bins as i32),
        Arg::I32(shape.observed as i32),
        Arg::I32(model.n_in as i32),
        Arg::I32(model.n_out as i32),
        Arg::I32(model.hidden as i32),
        Arg::F32(cd_rate.unwrap_or(1.0)),
        Arg::I32(cd_rate.is_some() as i32),
        Arg::I32(!model.mode.is_streaming() as i32),
        Arg::I32(noise as i32),
    ];
    gpu.launch("assemble_batch", gpu::LaunchDims { grid: (n.div_ceil(32) as u32, 1), block: 32, smem: 0 }, &args)
}

/// `adam_step` (`host/cuda/adam.cu`) over parameters, gradients, first and
/// second moments (`n` f32 each), with the step's constants and weight decay
/// read from `scalars` (a [`StepScalars`] on the device).
pub fn adam_step(
    gpu: &mut dyn Gpu,
    [params, grads, m, v]: [gpu::DevPtr; 4],
    n: usize,
    scalars: gpu::DevPtr,
) -> Result<(), GpuError> {
    let args = [Arg::Ptr(params), Arg::Ptr(grads), Arg::Ptr(m), Arg::Ptr(v), Arg::I64(n as i64), Arg::Ptr(scalars)];
    let blocks = n.div_ceil(256).clamp(1, 1024) as u32;
    gpu.launch("adam_step", gpu::LaunchDims { grid: (blocks, 1), block: 256, smem: 0 }, &args)
}

/// One step's work on the device, everything but the host's copies (what a
/// graph records): a pass forward (and backward), and for a training step
/// batch assembly before it and Adam after.
pub(super) struct StepWork<'a> {
    pub(super) model: &'a ModelConfig,
    /// The parameters' layout (offsets into the device's flat buffer).
    pub(super) layout: &'a Params,
    pub(super) shape: Shape,
    pub(super) a: Arena,
    pub(super) wts: Weights,
    pub(super) dropout: f32,
    /// The backward pass too.
    pub(super) grad: bool,
    /// The loss's gradient is masked (coordinated dropout).
    pub(super) has_mask: bool,
    /// A training step: the resident spikes, the epoch's order and its seeds,
    /// and coordinated dropout's rate when on.
    pub(super) train: Option<([gpu::DevPtr; 3], Option<f32>)>,
}

impl StepWork<'_> {
    /// Launch (or, while capturing, record) the step's kernels and GEMMs;
    /// returns how many.
    pub(super) fn record(&self, gpu: &mut dyn Gpu) -> Result<usize, GpuError> {
        let (shape, a, wts) = (self.shape, self.a, self.wts);
        if let Some((resident, cd_rate)) = self.train {
            assemble(gpu, self.model, resident, a, shape, cd_rate, true)?;
        }
        let mut step = step::Step {
            gpu,
            cfg: self.model,
            params: self.layout,
            a,
            wts,
            trials: shape.trials,
            observed: shape.observed,
            bins: shape.bins,
            has_grad_mask: self.has_mask,
            launches: 0,
        };
        step.forward(self.dropout, self.grad)?;
        if self.grad {
            step.backward()?;
        }
        let launches = step.launches;
        if self.train.is_none() {
            return Ok(launches);
        }
        adam_step(gpu, [wts.params, wts.grads, wts.m, wts.v], wts.len, a.scalars)?;
        Ok(launches + 2)
    }
}
