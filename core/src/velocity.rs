//! The linear velocity decoder `[N_BEH, D]` plus bias, applied to `y2`
//! (MODEL.md section 9; fit on the host by ridge regression).

use crate::linear::Linear;

/// `velocity [N_BEH, D]`, output in the units of the training behaviour.
#[derive(Clone, Copy, Debug)]
pub struct VelocityDecoder<'a>(pub Linear<'a>);

impl VelocityDecoder<'_> {
    /// `velocity [N_BEH] = W y2 + b`.
    pub fn apply(&self, y2: &[f32], velocity: &mut [f32]) {
        self.0.apply(y2, velocity);
    }
}
