//! The compute seam: what the trainer and the predictor ask of a backend
//! ([`Backend`], [`Resident`]) and what crosses it ([`Batch`], [`Pass`]).
//! Every call returns a `Result`: a failed device call is a [`BackendError`]
//! carrying the backend's own error as its source. The backends are
//! [`crate::train::cpu`] and [`crate::train::cuda`]; [`crate::train::device`]
//! is the one place that names them.

use crate::config::ModelConfig;
use crate::data::Dataset;
use crate::train::adam::{Adam, AdamConfig};
use crate::train::model::{Chunk, LossScale, LossSums};
use crate::train::params::Params;

/// One batch as every backend receives it (all trial-major).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Encoder input `[B, T, N_in]` after coordinated dropout.
    pub input: Vec<f32>,
    /// Targets `[B, T + F, N_out]`.
    pub targets: Vec<f32>,
    /// Coordinated-dropout gradient mask `[B, T, N_in]` (empty: none).
    pub grad_mask: Vec<f32>,
    /// Standard-normal draws `[B, T + F + 1, H]`.
    pub noise: Vec<f32>,
    /// One seed per trial for dropout masks.
    pub seeds: Vec<u64>,
    /// Trials.
    pub trials: usize,
    /// Observed bins.
    pub observed: usize,
    /// Observed plus forward bins.
    pub bins: usize,
}

impl Batch {
    /// Trials `start .. start + len` as the model's forward pass reads them.
    pub fn chunk(&self, cfg: &ModelConfig, start: usize, len: usize) -> Chunk<'_> {
        let (t, tt, h) = (self.observed, self.bins, cfg.hidden);
        let span = |per: usize| start * per..(start + len) * per;
        Chunk {
            input: &self.input[span(t * cfg.n_in)],
            targets: &self.targets[span(tt * cfg.n_out)],
            grad_mask: (!self.grad_mask.is_empty()).then(|| &self.grad_mask[span(t * cfg.n_in)]),
            noise: &self.noise[span((tt + 1) * h)],
            trials: len,
            observed: t,
            bins: tt,
        }
    }
}

/// What one pass over a batch computes besides the loss.
pub struct Pass<'a> {
    /// Dropout rate (0 in evaluation).
    pub dropout: f32,
    /// Loss scaling of the gradient.
    pub scale: LossScale,
    /// When given, backward too: d loss / d params is written here (overwritten, not added).
    pub grads: Option<&'a mut Params>,
    /// When given, the log-rates `[B, T + F, N_out]` are copied here.
    pub log_rates: Option<&'a mut [f32]>,
    /// When given, these per-bin features `[B, T + F, 3H]` are copied here.
    pub features: Option<(Features, &'a mut [f32])>,
}

/// Per-bin activations of width `3H` a pass can hand back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Features {
    /// The decoder's input `l = [z, v, h]`.
    Latents,
    /// The decoder's output `y2` (what the readout and the velocity decoder read).
    DecoderOutput,
}

/// What the trainer asks of a backend.
pub trait Backend {
    /// A short name for logs and benchmarks.
    fn name(&self) -> String;

    /// Forward the batch, and what `pass` asks for; returns the loss sums. On
    /// an error nothing `pass` points at is to be used.
    fn run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, BackendError>;

    /// A backend that keeps the data set, parameters and optimiser on its
    /// device trains through [`Resident`]; `None` (the CPU): the trainer
    /// assembles batches, calls [`Backend::run`] and steps Adam on the host.
    fn resident(&mut self) -> Option<&mut dyn Resident> {
        None
    }
}

/// A backend's failure: a GPU backend's on any call, its own error (cudarc's,
/// the emulator's) kept as the source. The CPU backend does not fail once
/// its threads have started.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A call on a GPU failed.
    #[error("{backend} failed")]
    Gpu {
        /// The backend ([`Backend::name`]).
        backend: String,
        /// What the GPU layer said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One Adam step's constants (coupled weight decay, as [`Adam`]).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Adam's constants with this step's learning rate.
    pub adam: AdamConfig,
    /// Weight decay of this epoch (ramped).
    pub weight_decay: f32,
    /// The step's number, from 1 (bias corrections).
    pub step: u64,
}

/// The optimiser's state a [`Resident`] backend takes over for an epoch.
#[derive(Clone, Copy, Debug)]
pub struct OptimizerState<'a> {
    /// The parameters being trained.
    pub params: &'a Params,
    /// Adam's moments.
    pub adam: &'a Adam,
}

/// Training with everything on the device: between [`Resident::begin_epoch`]
/// and [`Resident::end_epoch`] only the loss scalars cross to the host. The
/// results equal the host path's (same streams, same Adam) up to rounding.
/// After an error the host's state stays as it was at the epoch's start.
pub trait Resident {
    /// Upload what the epoch needs: the data set (once per data set), the
    /// parameters and Adam's moments, the epoch's trial order and one seed per
    /// trial (in order).
    fn begin_epoch(
        &mut self,
        model: &ModelConfig,
        data: &Dataset,
        state: OptimizerState<'_>,
        order: &[usize],
        seeds: &[u64],
    ) -> Result<(), BackendError>;

    /// One batch: trials `order[start .. start + len]` assembled on the device
    /// (coordinated dropout at `cd_rate`, noise, dropout at `dropout`), forward,
    /// backward, then one Adam step. Returns the loss sums.
    #[allow(clippy::too_many_arguments)]
    fn train_batch(
        &mut self,
        model: &ModelConfig,
        start: usize,
        len: usize,
        cd_rate: f32,
        dropout: f32,
        scale: LossScale,
        step: AdamStep,
    ) -> Result<LossSums, BackendError>;

    /// Bring the parameters and Adam's moments back to the host.
    fn end_epoch(&mut self, params: &mut Params, adam: &mut Adam) -> Result<(), BackendError>;

    /// Validation on the device: `trials` (at most a training batch) of the
    /// data set of the last [`Resident::begin_epoch`], assembled there in
    /// mean mode (no noise, dropout or coordinated dropout) and forwarded with
    /// the parameters the device holds; their log-rates `[n, T + F, N_out]`
    /// are copied into `log_rates`. Returns the loss sums.
    fn evaluate(
        &mut self,
        model: &ModelConfig,
        trials: &[usize],
        log_rates: &mut [f32],
    ) -> Result<LossSums, BackendError>;
}

/// A borrowed backend is a backend (a [`crate::train::predictor::Predictor`]
/// over a trainer's own).
impl<B: Backend + ?Sized> Backend for &mut B {
    fn name(&self) -> String {
        (**self).name()
    }

    fn run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, BackendError> {
        (**self).run(cfg, params, batch, pass)
    }

    fn resident(&mut self) -> Option<&mut dyn Resident> {
        (**self).resident()
    }
}
