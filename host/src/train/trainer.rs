//! The training loop: batches, coordinated dropout, KL and L2 ramps, Adam,
//! ReduceLROnPlateau on the validation NLL, best-checkpoint selection
//! (MODEL.md sections 6-7). Every random draw comes from per-trial streams
//! seeded from one `Seeded` generator, so a seed and a thread count fix the run.

use crate::config::ModelConfig;
use crate::data::{Dataset, Split};
use crate::train::adam::{Adam, AdamConfig};
use crate::train::backend::{AdamStep, Backend, BackendError, Batch, OptimizerState, Pass};
use crate::train::batches::fill;
use crate::train::model::LossScale;
use crate::train::params::Params;
use crate::train::predictor::Predictor;
use crate::train::schedule::clip_global_norm;
use crate::train::state::TrainState;
use crate::train::train_config::{Schedule, TrainConfig};
use lflow_core::blob::Tensor;
use lflow_core::Seeded;

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean training loss over batches (NLL mean + beta * KL / B).
    pub train_loss: f64,
    /// Mean training Poisson NLL per element over batches (without the KL term).
    pub train_nll: f64,
    /// Validation Poisson NLL per element, mean mode (`NaN` without validation trials).
    pub valid_nll: f64,
    /// Validation co-bps (held-out neurons, observed bins, mean mode; `NaN` without them).
    pub valid_co_bps: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Whether the validation NLL is the best so far.
    pub improved: bool,
    /// Training trials per second (forward + backward + Adam).
    pub trials_per_s: f64,
}

/// Trains one model on one backend.
pub struct Trainer<B: Backend> {
    /// The model's sizes.
    pub model: ModelConfig,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Mutable state.
    pub state: TrainState,
    backend: B,
    batch: Batch,
    grads: Params,
}

/// Log of each neuron's mean spikes per bin `[N_out]` over every bin of the
/// training trials, floored at `1e-3` spikes per bin (a neuron that never fires).
pub fn log_mean_rates(data: &Dataset) -> Vec<f32> {
    let n = data.n_out;
    let train = data.indices(Split::Train);
    let mut sums = vec![0.0f64; n];
    for &i in &train {
        for row in data.trial_spikes(i).chunks_exact(n) {
            sums.iter_mut().zip(row).for_each(|(s, x)| *s += *x as f64);
        }
    }
    let count = (train.len() * data.bins()).max(1) as f64;
    sums.iter().map(|s| (s / count).max(1e-3).ln() as f32).collect()
}

impl<B: Backend> Trainer<B> {
    /// A fresh run: PyTorch-style initialisation from `config.seed`.
    pub fn new(model: ModelConfig, config: TrainConfig, backend: B) -> Trainer<B> {
        let mut rng = Seeded::new(config.seed);
        let params = Params::init(&model, &mut rng);
        let state = TrainState {
            adam: Adam::new(&model),
            lr: config.lr,
            epoch: 0,
            rng,
            best_valid: f64::INFINITY,
            bad_epochs: 0,
            best_epoch: 0,
            params,
        };
        Trainer::resume(model, config, state, backend)
    }

    /// A fresh run on `data`: [`Trainer::new`], then, with
    /// `init_rates_from_data`, the readout bias at [`log_mean_rates`] of the training trials.
    pub fn for_data(model: ModelConfig, config: TrainConfig, backend: B, data: &Dataset) -> Trainer<B> {
        let mut t = Trainer::new(model, config, backend);
        if t.config.init_rates_from_data {
            let bias = log_mean_rates(data);
            t.state.params.get_mut(Tensor::ReadoutBias).copy_from_slice(&bias);
        }
        t
    }

    /// Continue from a saved state.
    pub fn resume(model: ModelConfig, config: TrainConfig, state: TrainState, backend: B) -> Trainer<B> {
        let grads = Params::zeros(&model);
        Trainer { model, config, state, backend, batch: Batch::default(), grads }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The current parameters on the trainer's backend, to predict with.
    pub fn predictor(&mut self) -> Predictor<&mut B> {
        Predictor::new(self.model.clone(), self.state.params.clone(), &mut self.backend)
            .with_batch_size(self.config.batch_size)
    }

    fn next_seed(&mut self) -> u64 {
        (u64::from(self.state.rng.next_u32()) << 32) | u64::from(self.state.rng.next_u32())
    }

    /// One epoch over the training trials, then validation and the scheduler.
    /// After a backend error the state (parameters, Adam, learning rate,
    /// generator, scheduler) is as it was before the epoch, so the epoch can
    /// be run again or the run saved as it stood.
    pub fn epoch(&mut self, data: &Dataset) -> Result<EpochStats, BackendError> {
        let before = self.state.clone();
        let result = self.try_epoch(data);
        if result.is_err() {
            self.state = before;
        }
        result
    }

    fn try_epoch(&mut self, data: &Dataset) -> Result<EpochStats, BackendError> {
        let started = std::time::Instant::now();
        let epoch = self.state.epoch;
        let mut order = data.indices(Split::Train);
        for i in (1..order.len()).rev() {
            let j = (self.state.rng.next_u32() as usize) % (i + 1);
            order.swap(i, j);
        }
        let ramp = self.config.ramp(epoch);
        let (beta, wd) = (self.config.kl_weight * ramp, self.config.weight_decay * ramp);
        // Plateau reductions act on `state.lr` once warm-up is over; cosine
        // and warm-up are functions of the epoch alone (a resumed run agrees).
        // (The epoch right after warm-up resets a plateau run to `lr`.)
        let warm_up = self.config.warmup_epochs > 0 && epoch <= self.config.warmup_epochs;
        if warm_up || self.config.schedule == Schedule::Cosine {
            self.state.lr = self.config.scheduled_lr(epoch);
        }
        let adam = AdamConfig { lr: self.state.lr, ..AdamConfig::default() };
        let mut loss_sum = 0.0f64;
        let mut nll_sum = 0.0f64;
        let mut batches = 0usize;
        let batch_size = self.config.batch_size.max(1);
        // One seed per trial, drawn in order (as the batches take them).
        let seeds: Vec<u64> = (0..order.len()).map(|_| self.next_seed()).collect();
        let per_trial = data.bins() * self.model.n_out;
        if let Some(device) = self.backend.resident() {
            // Everything on the device; only the loss sums come back per batch.
            let state = OptimizerState { params: &self.state.params, adam: &self.state.adam };
            device.begin_epoch(&self.model, data, state, &order, &seeds)?;
            for (k, trials) in order.chunks(batch_size).enumerate() {
                let elements = trials.len() * per_trial;
                let scale = LossScale { nll: 1.0 / elements as f32, kl: beta / trials.len() as f32 };
                self.state.adam.step += 1;
                let step = AdamStep { adam, weight_decay: wd, step: self.state.adam.step };
                let (cd, dropout) = (self.config.cd_rate, self.config.dropout);
                let sums = device.train_batch(&self.model, k * batch_size, trials.len(), cd, dropout, scale, step)?;
                loss_sum += sums.nll / elements as f64 + beta as f64 * sums.kl / trials.len() as f64;
                nll_sum += sums.nll / elements as f64;
                batches += 1;
            }
            device.end_epoch(&mut self.state.params, &mut self.state.adam)?;
        } else {
            for (k, trials) in order.chunks(batch_size).enumerate() {
                let seeds = &seeds[k * batch_size..k * batch_size + trials.len()];
                fill(&mut self.batch, &self.model, data, trials, seeds, Some(self.config.cd_rate), true);
                let elements = trials.len() * per_trial;
                let scale = LossScale { nll: 1.0 / elements as f32, kl: beta / trials.len() as f32 };
                let pass = Pass {
                    dropout: self.config.dropout,
                    scale,
                    grads: Some(&mut self.grads),
                    log_rates: None,
                    features: None,
                };
                let sums = self.backend.run(&self.model, &self.state.params, &self.batch, pass)?;
                loss_sum += sums.nll / elements as f64 + beta as f64 * sums.kl / trials.len() as f64;
                nll_sum += sums.nll / elements as f64;
                batches += 1;
                clip_global_norm(&mut self.grads.data, self.config.grad_clip);
                self.state.adam.update(&adam, self.state.lr, wd, &mut self.state.params, &self.grads);
            }
        }
        let train_time = started.elapsed().as_secs_f64();
        let every = self.config.valid_every.max(1);
        let validate = (epoch + 1).is_multiple_of(every) || epoch + 1 >= self.config.epochs;
        let on_device = self.backend.resident().is_some();
        let (valid_nll, valid_co_bps) = if validate { self.validate(data, on_device)? } else { (f64::NAN, f64::NAN) };
        let reduces = self.config.schedule == Schedule::Plateau && epoch >= self.config.warmup_epochs;
        let st = &mut self.state;
        let improved = self.config.plateau_step(&mut st.best_valid, &mut st.bad_epochs, &mut st.lr, valid_nll, reduces);
        if improved {
            st.best_epoch = epoch;
        }
        self.state.epoch += 1;
        Ok(EpochStats {
            epoch,
            train_loss: loss_sum / batches.max(1) as f64,
            train_nll: nll_sum / batches.max(1) as f64,
            valid_nll,
            valid_co_bps,
            lr: adam.lr,
            improved,
            trials_per_s: order.len() as f64 / train_time.max(1e-9),
        })
    }

    /// Poisson NLL per element and co-bps on the validation trials,
    /// deterministic (mean mode, no dropout); `NaN` without validation trials.
    pub fn validation(&mut self, data: &Dataset) -> Result<(f64, f64), BackendError> {
        self.validate(data, false)
    }

    /// [`Trainer::validation`]; `on_device`: batches assembled by a resident
    /// backend from the data set its epoch uploaded (right after that epoch).
    fn validate(&mut self, data: &Dataset, on_device: bool) -> Result<(f64, f64), BackendError> {
        let valid = data.indices(Split::Valid);
        if valid.is_empty() {
            return Ok((f64::NAN, f64::NAN));
        }
        let per = data.bins() * self.model.n_out;
        let mut log_rates = vec![0.0f32; valid.len() * per];
        let sums = match self.backend.resident().filter(|_| on_device) {
            Some(device) => {
                let mut total = crate::train::model::LossSums::default();
                let size = self.config.batch_size.max(1);
                for (k, chunk) in valid.chunks(size).enumerate() {
                    let out = &mut log_rates[k * size * per..][..chunk.len() * per];
                    let s = device.evaluate(&self.model, chunk, out)?;
                    (total.nll, total.kl, total.elements) =
                        (total.nll + s.nll, total.kl + s.kl, total.elements + s.elements);
                }
                total
            }
            None => self.predictor().evaluate(data, &valid, None, Some(&mut log_rates))?,
        };
        let (n, nin) = (data.n_out, data.n_in);
        if n == nin {
            return Ok((sums.nll / sums.elements as f64, f64::NAN));
        }
        let (mut rates, mut spikes) = (Vec::new(), Vec::new());
        for (k, &i) in valid.iter().enumerate() {
            let s = data.trial_spikes(i);
            for t in 0..data.observed {
                for j in nin..n {
                    rates.push((log_rates[k * per + t * n + j] as f64).exp());
                    spikes.push(s[t * n + j] as f64);
                }
            }
        }
        Ok((sums.nll / sums.elements as f64, crate::metrics::bits_per_spike(&rates, &spikes, n - nin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::cpu::CpuBackend;

    /// A paper-mode model of H=4 for `data`'s neurons.
    fn tiny_model(data: &Dataset) -> ModelConfig {
        ModelConfig::paper(data.n_in, data.n_out, 4, 8)
    }

    #[test]
    fn readout_bias_starts_at_the_log_mean_rates_of_the_training_trials() {
        // 3 trials of 2 bins (1 observed + 1 forward), 1 held-in + 1 held-out neuron:
        // trials 0 and 2 train, trial 1 validates (its spikes must not count).
        let data = Dataset {
            n_in: 1,
            n_out: 2,
            observed: 1,
            forward: 1,
            bin_ms: 10.0,
            spikes: vec![1., 0., 3., 0., /**/ 9., 9., 9., 9., /**/ 0., 0., 2., 0.],
            true_rates: None,
            behavior: None,
            n_beh: 0,
            conditions: None,
            split: vec![Split::Train, Split::Valid, Split::Train],
            nlb: None,
            segments: None,
        };
        // Neuron 0: (1 + 3 + 0 + 2) / 4 = 1.5; neuron 1 never fires: floor 1e-3.
        let want = [1.5f32.ln(), 1e-3f32.ln()];
        let got = log_mean_rates(&data);
        assert!((got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-5, "{got:?}");
        let model = tiny_model(&data);
        let backend = || CpuBackend::new(1).unwrap();
        let bias = |t: &Trainer<CpuBackend>| t.state.params.get(Tensor::ReadoutBias).to_vec();
        let on = TrainConfig { init_rates_from_data: true, ..TrainConfig::default() };
        let t = Trainer::for_data(model.clone(), on.clone(), backend(), &data);
        assert_eq!(bias(&t), got);
        // Off (the paper): PyTorch's draw, the same as `Trainer::new`, everything else untouched.
        let off = Trainer::for_data(model.clone(), TrainConfig::default(), backend(), &data);
        let new = Trainer::new(model, TrainConfig::default(), backend());
        assert_eq!(off.state.params, new.state.params);
        assert_ne!(bias(&off), got);
        let mut rest = t.state.params.clone();
        rest.get_mut(Tensor::ReadoutBias).copy_from_slice(&bias(&new));
        assert_eq!(rest, new.state.params);
    }

    /// The CPU backend, failing its `fail_at`-th call (from 0).
    struct Failing {
        cpu: CpuBackend,
        calls: usize,
        fail_at: usize,
    }

    impl Backend for Failing {
        fn name(&self) -> String {
            "failing".into()
        }

        fn run(
            &mut self,
            cfg: &ModelConfig,
            params: &Params,
            batch: &Batch,
            pass: Pass<'_>,
        ) -> Result<crate::train::model::LossSums, BackendError> {
            self.calls += 1;
            if self.calls - 1 == self.fail_at {
                let source = std::io::Error::other("injected");
                return Err(BackendError::Gpu { backend: self.name(), source: Box::new(source) });
            }
            self.cpu.run(cfg, params, batch, pass)
        }
    }

    #[test]
    fn an_epoch_that_fails_leaves_the_state_as_it_was_and_runs_again_the_same() {
        let lorenz = crate::data::lorenz::LorenzConfig {
            trials: 40,
            eval_trials: 5,
            observed: 6,
            forward: 2,
            ..crate::data::lorenz::LorenzConfig::default()
        };
        let data = crate::data::lorenz::generate(&lorenz);
        let model = tiny_model(&data);
        // Warm-up and cosine move the learning rate in the epoch itself.
        let config = TrainConfig { batch_size: 8, warmup_epochs: 3, ..TrainConfig::default() };
        let backend = |fail_at| Failing { cpu: CpuBackend::new(1).unwrap(), calls: 0, fail_at };
        let mut straight = Trainer::new(model.clone(), config.clone(), backend(usize::MAX));
        straight.epoch(&data).unwrap();
        let first_epoch_calls = straight.backend().calls;
        let want = straight.epoch(&data).unwrap();
        assert!(straight.backend().calls > first_epoch_calls + 2);
        // Fail in the second epoch's third batch.
        let mut t = Trainer::new(model, config, backend(first_epoch_calls + 2));
        t.epoch(&data).unwrap();
        let before = t.state.clone();
        assert!(t.epoch(&data).is_err());
        assert!(t.state == before, "the failed epoch left its updates, generator or learning rate behind");
        let got = t.epoch(&data).unwrap();
        assert!(t.state == straight.state, "the rerun epoch differs from an uninterrupted one");
        assert_eq!((got.train_loss, got.valid_nll), (want.train_loss, want.valid_nll));
    }

    #[test]
    fn validation_runs_every_valid_every_epochs_and_after_the_last() {
        let lorenz = crate::data::lorenz::LorenzConfig {
            trials: 30,
            eval_trials: 5,
            observed: 6,
            forward: 2,
            ..crate::data::lorenz::LorenzConfig::default()
        };
        let data = crate::data::lorenz::generate(&lorenz);
        let model = tiny_model(&data);
        let config = TrainConfig { epochs: 5, batch_size: 8, valid_every: 2, ..TrainConfig::default() };
        let mut t = Trainer::new(model, config, CpuBackend::new(1).unwrap());
        let validated: Vec<bool> = (0..5).map(|_| t.epoch(&data).unwrap().valid_nll.is_finite()).collect();
        // Epochs 1 and 3 (every second), and 4, the last.
        assert_eq!(validated, [false, true, false, true, true]);
        assert!(t.state.best_epoch % 2 == 1 || t.state.best_epoch == 4);
    }
}
