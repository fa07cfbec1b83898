//! Every device buffer of one batch shape, carved out of one allocation, and
//! the resident parameters with their gradients and Adam moments.

use super::gpu::{BufId, DevPtr, Gpu, GpuError};
use crate::config::ModelConfig;
use crate::train::buffers::{step_buffers, StepShape};

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

/// Buffers only the device holds: the step's scalars, the batch's inputs and
/// seeds, the loss's partial sums, the potential's taps, and the extra buffers of its kernels.
/// `name: (elements, bytes each)`.
macro_rules! device_only {
    ($consumer:ident, $($shared:tt)*) => {
        $consumer! {
            [
                taps: |_s: &Shape, _c: &StepShape| (12, 4),
                scalars: |_s: &Shape, _c: &StepShape| (1, core::mem::size_of::<super::scalars::StepScalars>()),
                dtaps: |s: &Shape, _c: &StepShape| (s.trials * 12, 8),
                partials: |_s: &Shape, _c: &StepShape| (LOSS_BLOCKS * 2, 8),
                input: |s: &Shape, c: &StepShape| (s.trials * s.observed * c.n_in, 4),
                targets: |_s: &Shape, c: &StepShape| (c.rows() * c.n_out, 4),
                grad_mask: |s: &Shape, c: &StepShape| (s.trials * s.observed * c.n_in, 4),
                noise: |s: &Shape, c: &StepShape| (s.trials * (s.bins + 1) * c.hidden, 4),
                seeds: |s: &Shape, _c: &StepShape| (s.trials, 8),
                branch: |_s: &Shape, c: &StepShape| (c.rows() * c.d, 4),
                ds: |s: &Shape, _c: &StepShape| (s.trials * 2 * s.bins * s.bins, 4),
                dmu_z: |s: &Shape, c: &StepShape| (s.trials * c.hidden, 4),
                dlv_z: |s: &Shape, c: &StepShape| (s.trials * c.hidden, 4),
                dmu_v: |s: &Shape, c: &StepShape| (s.trials * c.hidden, 4),
                dlv_v: |s: &Shape, c: &StepShape| (s.trials * c.hidden, 4),
            ]
            $($shared)*
        }
    };
}

macro_rules! with_shared {
    ($($name:ident: $elems:expr,)*) => {
        device_only!(arena, $($name: $elems,)*);
    };
}

macro_rules! arena {
    ([$($own:ident: $own_size:expr,)*] $($name:ident: $elems:expr,)*) => {
        /// Device pointers of every activation, gradient and input of a step,
        /// each its own allocation (so that a kernel writing past one is
        /// caught by the emulator's guards, not silently into the next).
        #[derive(Clone, Copy, Debug)]
        #[allow(missing_docs)]
        pub struct Arena {
            $(pub $own: DevPtr,)*
            $(pub $name: DevPtr,)*
        }

        impl Arena {
            /// Allocate the buffers of `shape` on `gpu` (on an error, what was allocated is freed).
            pub fn new(gpu: &mut dyn Gpu, cfg: &ModelConfig, s: Shape) -> Result<Arena, GpuError> {
                let c = StepShape::new(cfg, s.trials, s.bins);
                let mut made: Vec<BufId> = Vec::new();
                let mut region = |gpu: &mut dyn Gpu, (elems, size): (usize, usize)| -> Result<DevPtr, GpuError> {
                    match gpu.alloc(elems.max(1) * size) {
                        Ok(buf) => {
                            made.push(buf);
                            Ok(DevPtr { buf, offset: 0 })
                        }
                        Err(e) => {
                            made.iter().for_each(|b| gpu.free(*b));
                            Err(e)
                        }
                    }
                };
                $(let $own = region(gpu, ($own_size)(&s, &c))?;)*
                $(let $name = region(gpu, (($elems)(&c), 4))?;)*
                Ok(Arena { $($own,)* $($name,)* })
            }

            /// Release every buffer.
            pub fn free(self, gpu: &mut dyn Gpu) {
                $(gpu.free(self.$own.buf);)*
                $(gpu.free(self.$name.buf);)*
            }
        }
    };
}

step_buffers!(with_shared);

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
