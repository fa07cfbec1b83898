//! Prediction from a model's weights: log-rates, rates, latents and decoder
//! features of a data set's trials, in mean mode or averaged over noisy
//! passes (MODEL.md section 7), on any [`Backend`].

use crate::config::ModelConfig;
use crate::data::Dataset;
use crate::train::backend::{Backend, BackendError, Batch, Features, Pass};
use crate::train::batches::{fill, prediction_seed};
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::device::{AnyBackend, Device, OpenError};
use crate::train::model::{LossScale, LossSums};
use crate::train::params::Params;
use crate::train::run::{RunDir, RunError};

/// The seed of every prediction the CLI makes (`lflow eval`, `plot`, `nlb submit`).
pub const PREDICTION_SEED: u64 = 0x5EED;

/// Why a model cannot predict.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The run folder.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Its best checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The device could not be opened.
    #[error("--device {device}: cannot predict there")]
    Open {
        /// The device asked for.
        device: Device,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// A pass failed on the device.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The data set's neurons are not the model's.
    #[error(
        "the model reads {model_in} held-in and predicts {model_out} neurons; the data set has {data_in} and {data_out}"
    )]
    Neurons {
        /// Held-in neurons the model reads.
        model_in: usize,
        /// Neurons the model predicts.
        model_out: usize,
        /// Held-in neurons of the data set.
        data_in: usize,
        /// All neurons of the data set.
        data_out: usize,
    },
}

/// A model's weights on a backend, ready to predict.
pub struct Predictor<B: Backend = AnyBackend> {
    /// The model's sizes.
    pub model: ModelConfig,
    /// Its parameters.
    pub params: Params,
    backend: B,
    batch: Batch,
    batch_size: usize,
}

impl Predictor<AnyBackend> {
    /// The best checkpoint of the run in `dir` on `device` (`threads`: the CPU
    /// backend's, 0 one per core), passing batches of the run's batch size.
    pub fn open_run(dir: &RunDir, device: Device, threads: usize) -> Result<Self, PredictError> {
        let (model, params) = checkpoint::load_params(&dir.best())?;
        let (_, record) = RunDir::open(&dir.path)?;
        let backend = AnyBackend::open(device, threads).map_err(|source| PredictError::Open { device, source })?;
        Ok(Predictor::new(model, params, backend).with_batch_size(record.config.train.batch_size))
    }
}

impl<B: Backend> Predictor<B> {
    /// `params` of `model` on `backend`, in batches of 256 trials.
    pub fn new(model: ModelConfig, params: Params, backend: B) -> Self {
        Predictor { model, params, backend, batch: Batch::default(), batch_size: 256 }
    }

    /// The same, passing at most `trials` trials to the backend at once (0: 1).
    pub fn with_batch_size(mut self, trials: usize) -> Self {
        self.batch_size = trials.max(1);
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether `data` has the model's neurons.
    pub fn check(&self, data: &Dataset) -> Result<(), PredictError> {
        let m = &self.model;
        if m.n_in != data.n_in || m.n_out != data.n_out {
            return Err(PredictError::Neurons {
                model_in: m.n_in,
                model_out: m.n_out,
                data_in: data.n_in,
                data_out: data.n_out,
            });
        }
        Ok(())
    }

    /// Rates (spikes per bin) `[trials, T + F, N_out]` of every trial of
    /// `data`, averaged over `samples` noisy passes seeded with
    /// [`PREDICTION_SEED`] (0: mean mode).
    pub fn rates(&mut self, data: &Dataset, samples: usize) -> Result<Vec<f32>, PredictError> {
        self.check(data)?;
        let all: Vec<usize> = (0..data.trials()).collect();
        Ok(self.log_rates(data, &all, samples, PREDICTION_SEED)?.iter().map(|l| l.exp()).collect())
    }

    /// Log-rates `[n, T + F, N_out]` of `trials` averaged over `samples` noisy
    /// passes (the paper's prediction, default 50), or mean mode for `samples == 0`.
    pub fn log_rates(
        &mut self,
        data: &Dataset,
        trials: &[usize],
        samples: usize,
        seed: u64,
    ) -> Result<Vec<f32>, BackendError> {
        let n = trials.len() * data.bins() * self.model.n_out;
        let mut mean = vec![0.0f32; n];
        if samples == 0 {
            self.evaluate(data, trials, None, Some(&mut mean))?;
            return Ok(mean);
        }
        let mut one = vec![0.0f32; n];
        for s in 0..samples {
            self.evaluate(data, trials, Some(seed.wrapping_add(s as u64 * 0x51_7CC1_B727)), Some(&mut one))?;
            for (m, x) in mean.iter_mut().zip(&one) {
                *m += x / samples as f32;
            }
        }
        Ok(mean)
    }

    /// Forward `trials` without dropout or coordinated dropout. `noise_seed:
    /// None` is mean mode (every draw 0); `Some(seed)` draws noise from `seed`.
    /// Writes log-rates `[n, T + F, N_out]` to `log_rates` when given.
    pub fn evaluate(
        &mut self,
        data: &Dataset,
        trials: &[usize],
        noise_seed: Option<u64>,
        log_rates: Option<&mut [f32]>,
    ) -> Result<LossSums, BackendError> {
        self.forward_only(data, trials, noise_seed, log_rates, None)
    }

    /// Latents `[n, T + F, 3H]` (`[z, v, h]`) of `trials` in mean mode.
    pub fn latents(&mut self, data: &Dataset, trials: &[usize]) -> Result<Vec<f32>, BackendError> {
        self.features(data, trials, Features::Latents)
    }

    /// Per-bin features `[n, T + F, 3H]` of `trials` in mean mode.
    pub fn features(&mut self, data: &Dataset, trials: &[usize], which: Features) -> Result<Vec<f32>, BackendError> {
        let mut out = vec![0.0f32; trials.len() * data.bins() * self.model.d_model()];
        self.forward_only(data, trials, None, None, Some((which, &mut out)))?;
        Ok(out)
    }

    fn forward_only(
        &mut self,
        data: &Dataset,
        trials: &[usize],
        noise_seed: Option<u64>,
        mut log_rates: Option<&mut [f32]>,
        mut features: Option<(Features, &mut [f32])>,
    ) -> Result<LossSums, BackendError> {
        let mut total = LossSums::default();
        let per = data.bins() * self.model.n_out;
        let per_latent = data.bins() * self.model.d_model();
        let batch_size = self.batch_size;
        for (k, chunk) in trials.chunks(batch_size).enumerate() {
            let seeds: Vec<u64> = chunk.iter().map(|&i| prediction_seed(noise_seed, i)).collect();
            fill(&mut self.batch, &self.model, data, chunk, &seeds, None, noise_seed.is_some());
            let scale = LossScale { nll: 0.0, kl: 0.0 };
            let out = log_rates.as_deref_mut().map(|o| &mut o[k * batch_size * per..][..chunk.len() * per]);
            let feat =
                features.as_mut().map(|(w, o)| (*w, &mut o[k * batch_size * per_latent..][..chunk.len() * per_latent]));
            let pass = Pass { dropout: 0.0, scale, grads: None, log_rates: out, features: feat };
            let sums = self.backend.run(&self.model, &self.params, &self.batch, pass)?;
            total.nll += sums.nll;
            total.kl += sums.kl;
            total.elements += sums.elements;
        }
        Ok(total)
    }
}
