//! Training hyper-parameters (the `[train]` table of a run's TOML).

use serde::{Deserialize, Serialize};

/// Training hyper-parameters; defaults are MODEL.md section 7 (MC_Maze).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training trials.
    pub epochs: usize,
    /// Trials per batch.
    pub batch_size: usize,
    /// Adam's initial learning rate.
    pub lr: f32,
    /// Final coupled weight decay (ramped from 0).
    pub weight_decay: f32,
    /// Final KL weight `beta` (ramped from 0).
    pub kl_weight: f32,
    /// Epochs of the KL and L2 ramps.
    pub ramp_epochs: usize,
    /// Coordinated dropout keep rate `cd` (1 = off).
    pub cd_rate: f32,
    /// Dropout rate.
    pub dropout: f32,
    /// ReduceLROnPlateau factor.
    pub plateau_factor: f32,
    /// ReduceLROnPlateau patience, epochs.
    pub plateau_patience: usize,
    /// Smallest learning rate.
    pub min_lr: f32,
    /// How the learning rate moves: the paper's ReduceLROnPlateau, or a
    /// warm-up then cosine decay over `epochs` ([`Schedule`]).
    pub schedule: Schedule,
    /// Epochs of linear learning-rate warm-up (epoch `e < warmup_epochs` runs
    /// at `lr * (e + 1) / warmup_epochs`); 0: none, as in the paper. A run
    /// shorter than its warm-up (`--epochs 4`) never leaves it.
    pub warmup_epochs: usize,
    /// Largest global L2 norm of a batch's gradient (all parameters, before
    /// Adam); larger gradients are scaled down to it. 0: no clipping, as in the paper.
    pub grad_clip: f32,
    /// Validate every this many epochs and after the last (1: every epoch, as
    /// the paper). Epochs in between report NaN and count neither for the best
    /// checkpoint nor for the plateau scheduler's patience.
    pub valid_every: usize,
    /// Start the readout bias at each neuron's log mean spikes per bin over
    /// the training trials ([`crate::train::trainer::Trainer::for_data`]) instead of PyTorch's uniform
    /// draw, so that training starts at the null model. false: as the paper.
    pub init_rates_from_data: bool,
    /// Seed of initialisation, batching and every draw.
    pub seed: u64,
    /// Train on windows of `stream_window_bins` bins (default `T + F`) cut every
    /// this many bins from the training trials laid end to end ([`crate::data::Dataset::stream_windows`]): windows
    /// that start anywhere and may straddle a trial boundary, as a decoder
    /// that is never reset sees them. 0: on the trials as they are.
    pub stream_windows: usize,
    /// Bins per such window (0: `T + F`, the trials' own). Longer windows
    /// show the GRU longer histories; validation then runs on windows of the
    /// same length cut from the validation trials laid end to end.
    pub stream_window_bins: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 2000,
            batch_size: 256,
            lr: 3e-3,
            weight_decay: 2e-5,
            kl_weight: 0.1,
            ramp_epochs: 500,
            cd_rate: 0.5,
            dropout: 0.05,
            plateau_factor: 0.95,
            plateau_patience: 10,
            min_lr: 1e-5,
            schedule: Schedule::Plateau,
            warmup_epochs: 0,
            grad_clip: 0.0,
            init_rates_from_data: false,
            valid_every: 1,
            seed: 0,
            stream_windows: 0,
            stream_window_bins: 0,
        }
    }
}

/// The learning-rate schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The paper's `ReduceLROnPlateau` on the validation NLL: after more than
    /// `plateau_patience` epochs without a strict improvement the rate is
    /// multiplied by `plateau_factor`, down to `min_lr` (MODEL.md section 7).
    #[default]
    Plateau,
    /// Warm-up over `warmup_epochs`, then cosine decay from `lr` to `min_lr`
    /// at the last epoch: `min_lr + (lr - min_lr) (1 + cos(pi k / K)) / 2` for
    /// the `k`-th of the `K = epochs - warmup_epochs - 1` epochs after warm-up.
    Cosine,
}

/// Hyper-parameters replaced when a run resumes: population-based
/// training's explore step (AutoLFADS's search space). Each `Some` replaces
/// the configuration's value; a new `lr` also replaces the current learning
/// rate (which the plateau schedule lowers); everything else of the run (its
/// parameters, Adam's moments and step, the random stream, the schedule's
/// counters) carries on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retune {
    /// `train.lr`.
    pub lr: Option<f32>,
    /// `train.dropout`.
    pub dropout: Option<f32>,
    /// `train.cd_rate`.
    pub cd_rate: Option<f32>,
    /// `train.kl_weight`.
    pub kl_weight: Option<f32>,
    /// `train.weight_decay`.
    pub weight_decay: Option<f32>,
}

impl Retune {
    /// The names a retune takes, as in the `[train]` section.
    pub const NAMES: [&'static str; 5] = ["lr", "dropout", "cd_rate", "kl_weight", "weight_decay"];

    /// Set `name` (one of [`Retune::NAMES`]) to `value`; `false` for another name.
    pub fn set(&mut self, name: &str, value: f32) -> bool {
        let slot = match name {
            "lr" => &mut self.lr,
            "dropout" => &mut self.dropout,
            "cd_rate" => &mut self.cd_rate,
            "kl_weight" => &mut self.kl_weight,
            "weight_decay" => &mut self.weight_decay,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Retune::default()
    }

    /// Write the replaced values into `c`.
    pub fn apply(&self, c: &mut TrainConfig) {
        let pairs = [
            (self.lr, &mut c.lr),
            (self.dropout, &mut c.dropout),
            (self.cd_rate, &mut c.cd_rate),
            (self.kl_weight, &mut c.kl_weight),
            (self.weight_decay, &mut c.weight_decay),
        ];
        for (new, slot) in pairs {
            if let Some(v) = new {
                *slot = v;
            }
        }
    }
}
