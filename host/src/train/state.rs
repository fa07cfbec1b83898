//! What changes during training and a checkpoint keeps.

use crate::train::adam::Adam;
use crate::train::params::Params;
use lflow_core::Seeded;

/// Everything that changes during training (saved in checkpoints).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Current parameters.
    pub params: Params,
    /// Optimiser moments.
    pub adam: Adam,
    /// Current learning rate.
    pub lr: f32,
    /// Epochs completed.
    pub epoch: usize,
    /// The run's generator.
    pub rng: Seeded,
    /// Best validation NLL so far (for the plateau scheduler and the best checkpoint).
    pub best_valid: f64,
    /// Epochs since the plateau scheduler last saw an improvement.
    pub bad_epochs: usize,
    /// Epoch of the best validation NLL.
    pub best_epoch: usize,
}
