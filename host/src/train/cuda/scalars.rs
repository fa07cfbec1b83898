//! The numbers that change from one training step to the next (the loss's
//! scales, Adam's bias-corrected constants and weight decay, where the batch
//! starts in the epoch's order), kept in device memory. Kernels read them
//! there rather than as launch arguments, so a step captured once as a CUDA
//! graph replays with each step's own values: the host writes these 48 bytes,
//! then replays.

use crate::train::adam::StepConstants;
use crate::train::model::LossScale;

/// One step's scalars, laid out as `StepScalars` in `host/cuda/common.cuh`
/// (twelve 4-byte fields; both sides assert 48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepScalars {
    /// Scale of the NLL's gradient, `1 / (B * TT * N_out)`.
    pub nll_scale: f32,
    /// Scale of the KL terms, `beta / B`.
    pub kl_scale: f32,
    /// Adam's constants of the step (seven f32, in `common.cuh`'s order).
    pub adam: StepConstants,
    /// Weight decay of this epoch.
    pub weight_decay: f32,
    /// The batch's first position in the epoch's trial order.
    pub batch_start: i32,
    /// Unused; keeps the size a multiple of 8.
    pub reserved: i32,
}

const _: () = assert!(core::mem::size_of::<StepScalars>() == 48);

impl StepScalars {
    /// The scalars of a pass with loss scale `scale` (none for a pass without
    /// gradients), Adam's step `adam` (constants, weight decay) and a batch
    /// starting at `batch_start` in the order on the device.
    pub fn new(scale: Option<LossScale>, adam: Option<(StepConstants, f32)>, batch_start: usize) -> StepScalars {
        let (nll_scale, kl_scale) = scale.map_or((0.0, 0.0), |s| (s.nll, s.kl));
        let (adam, weight_decay) = adam.unwrap_or_default();
        StepScalars { nll_scale, kl_scale, adam, weight_decay, batch_start: batch_start as i32, reserved: 0 }
    }

    /// The bytes the kernels read.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}
