//! The training loop: batches, coordinated dropout, KL and L2 ramps, Adam,
//! ReduceLROnPlateau on the validation NLL, best-checkpoint selection
//! (MODEL.md sections 6-7). Every random draw comes from per-trial streams
//! seeded from one `Seeded` generator, so a seed and a thread count fix the run.

use crate::config::{Mode, ModelConfig};
use crate::data::{Dataset, Split};
use crate::train::adam::{Adam, AdamConfig};
use crate::train::backend::{AdamStep, Backend, Batch, Features, Pass};
use crate::train::model::{LossScale, LossSums};
use crate::train::params::Params;
pub use crate::train::schedule::{clip_global_norm, Schedule};
use lflow_core::blob::Tensor;
use lflow_core::Seeded;
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
    /// the training trials ([`Trainer::for_data`]) instead of PyTorch's uniform
    /// draw, so that training starts at the null model. false: as the paper.
    pub init_rates_from_data: bool,
    /// Seed of initialisation, batching and every draw.
    pub seed: u64,
    /// Train on windows of `stream_window_bins` bins (default `T + F`) cut every
    /// this many bins from the training trials laid end to end ([`Dataset::stream_windows`]): windows
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

/// Per-trial random streams: noise, dropout and coordinated-dropout masks.
fn trial_stream(seed: u64, which: u64) -> Seeded {
    Seeded::new(seed ^ which.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// The noise source of trial `trial` in a prediction pass seeded with `seed`
/// ([`Trainer::predict`] with one sample uses `seed` itself). A device decoding
/// that trial with this `Seeded` source draws exactly the host's noise, in the
/// same order (`e_z`, `e_v`, then one `e_t` per bin).
pub fn prediction_noise(seed: u64, trial: usize) -> Seeded {
    trial_stream(seed ^ (trial as u64).wrapping_mul(0x9E37_79B9), 1)
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

    /// The backend, mutable (to ask it for errors).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Fill `self.batch` with `trials` of `data`; `train` enables coordinated
    /// dropout; without `draw_noise` every draw is 0 (mean mode).
    fn fill_batch(&mut self, data: &Dataset, trials: &[usize], seeds: &[u64], train: bool, draw_noise: bool) {
        let (m, b) = (&self.model, &mut self.batch);
        let (t_obs, tt, h) = (data.observed, data.bins(), m.hidden);
        b.trials = trials.len();
        b.observed = t_obs;
        b.bins = tt;
        b.input.clear();
        b.targets.clear();
        b.grad_mask.clear();
        b.noise.resize(trials.len() * (tt + 1) * h, 0.0);
        b.seeds.clear();
        b.seeds.extend_from_slice(seeds);
        let cd = self.config.cd_rate;
        let use_cd = train && cd > 0.0 && cd < 1.0;
        // Box-Muller draws dominate batch assembly: one trial's stream per task
        // (the streams are per trial, so the thread count changes nothing).
        if draw_noise {
            use rayon::prelude::*;
            b.noise.par_chunks_mut((tt + 1) * h).zip(seeds.par_iter()).for_each(|(draws, &seed)| {
                let mut noise = trial_stream(seed, 1);
                draws.iter_mut().for_each(|x| *x = noise.next_normal());
            });
        } else {
            b.noise.fill(0.0);
        }
        for (&i, &seed) in trials.iter().zip(seeds) {
            b.targets.extend_from_slice(data.trial_spikes(i));
            let start = b.input.len();
            data.push_input(i, &mut b.input);
            if use_cd {
                let mut rng = trial_stream(seed, 2);
                let uniform = |rng: &mut Seeded| (rng.next_u32() >> 8) as f32 / 16_777_216.0;
                for x in &mut b.input[start..] {
                    let kept = uniform(&mut rng) < cd;
                    let pass = uniform(&mut rng) < 1.0 - cd;
                    *x = if kept { *x / cd } else { 0.0 };
                    let grad = match m.mode {
                        Mode::Paper => !kept || pass,
                        Mode::Streaming => !kept,
                    };
                    b.grad_mask.push(if grad { 1.0 } else { 0.0 });
                }
            }
        }
    }

    fn next_seed(&mut self) -> u64 {
        (u64::from(self.state.rng.next_u32()) << 32) | u64::from(self.state.rng.next_u32())
    }

    /// One epoch over the training trials, then validation and the scheduler.
    pub fn epoch(&mut self, data: &Dataset) -> EpochStats {
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
            device.begin_epoch(&self.model, data, &self.state, &order, &seeds);
            for (k, trials) in order.chunks(batch_size).enumerate() {
                let elements = trials.len() * per_trial;
                let scale = LossScale { nll: 1.0 / elements as f32, kl: beta / trials.len() as f32 };
                self.state.adam.step += 1;
                let step = AdamStep { adam, weight_decay: wd, step: self.state.adam.step };
                let (cd, dropout) = (self.config.cd_rate, self.config.dropout);
                let sums = device.train_batch(&self.model, k * batch_size, trials.len(), cd, dropout, scale, step);
                loss_sum += sums.nll / elements as f64 + beta as f64 * sums.kl / trials.len() as f64;
                nll_sum += sums.nll / elements as f64;
                batches += 1;
            }
            device.end_epoch(&mut self.state);
        } else {
            for (k, trials) in order.chunks(batch_size).enumerate() {
                let seeds = &seeds[k * batch_size..k * batch_size + trials.len()];
                self.fill_batch(data, trials, seeds, true, true);
                let elements = trials.len() * per_trial;
                let scale = LossScale { nll: 1.0 / elements as f32, kl: beta / trials.len() as f32 };
                let pass = Pass {
                    dropout: self.config.dropout,
                    scale,
                    grads: Some(&mut self.grads),
                    log_rates: None,
                    features: None,
                };
                let sums = self.backend.run(&self.model, &self.state.params, &self.batch, pass);
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
        let (valid_nll, valid_co_bps) = if validate { self.validation(data) } else { (f64::NAN, f64::NAN) };
        let reduces = self.config.schedule == Schedule::Plateau && epoch >= self.config.warmup_epochs;
        let st = &mut self.state;
        let improved = self.config.plateau_step(&mut st.best_valid, &mut st.bad_epochs, &mut st.lr, valid_nll, reduces);
        if improved {
            st.best_epoch = epoch;
        }
        self.state.epoch += 1;
        EpochStats {
            epoch,
            train_loss: loss_sum / batches.max(1) as f64,
            train_nll: nll_sum / batches.max(1) as f64,
            valid_nll,
            valid_co_bps,
            lr: adam.lr,
            improved,
            trials_per_s: order.len() as f64 / train_time.max(1e-9),
        }
    }

    /// Poisson NLL per element and co-bps on the validation trials,
    /// deterministic (mean mode, no dropout); `NaN` without validation trials.
    pub fn validation(&mut self, data: &Dataset) -> (f64, f64) {
        let valid = data.indices(Split::Valid);
        if valid.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let per = data.bins() * self.model.n_out;
        let mut lr = vec![0.0f32; valid.len() * per];
        let sums = self.evaluate(data, &valid, None, Some(&mut lr));
        let (n, nin) = (data.n_out, data.n_in);
        if n == nin {
            return (sums.nll / sums.elements as f64, f64::NAN);
        }
        let (mut rates, mut spikes) = (Vec::new(), Vec::new());
        for (k, &i) in valid.iter().enumerate() {
            let s = data.trial_spikes(i);
            for t in 0..data.observed {
                for j in nin..n {
                    rates.push((lr[k * per + t * n + j] as f64).exp());
                    spikes.push(s[t * n + j] as f64);
                }
            }
        }
        (sums.nll / sums.elements as f64, crate::metrics::bits_per_spike(&rates, &spikes, n - nin))
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
    ) -> LossSums {
        self.forward_only(data, trials, noise_seed, log_rates, None)
    }

    /// Latents `[n, T + F, 3H]` (`[z, v, h]`) of `trials` in mean mode.
    pub fn latents(&mut self, data: &Dataset, trials: &[usize]) -> Vec<f32> {
        self.features(data, trials, Features::Latents)
    }

    /// Per-bin features `[n, T + F, 3H]` of `trials` in mean mode.
    pub fn features(&mut self, data: &Dataset, trials: &[usize], which: Features) -> Vec<f32> {
        let mut out = vec![0.0f32; trials.len() * data.bins() * self.model.d_model()];
        self.forward_only(data, trials, None, None, Some((which, &mut out)));
        out
    }

    fn forward_only(
        &mut self,
        data: &Dataset,
        trials: &[usize],
        noise_seed: Option<u64>,
        mut log_rates: Option<&mut [f32]>,
        mut features: Option<(Features, &mut [f32])>,
    ) -> LossSums {
        let mut total = LossSums::default();
        let per = data.bins() * self.model.n_out;
        let per_latent = data.bins() * self.model.d_model();
        let batch_size = self.config.batch_size.max(1);
        for (k, chunk) in trials.chunks(batch_size).enumerate() {
            // Must match `prediction_noise`.
            let seeds: Vec<u64> =
                chunk.iter().map(|&i| noise_seed.map_or(0, |s| s ^ (i as u64).wrapping_mul(0x9E37_79B9))).collect();
            self.fill_batch(data, chunk, &seeds, false, noise_seed.is_some());
            let scale = LossScale { nll: 0.0, kl: 0.0 };
            let out = log_rates.as_deref_mut().map(|o| &mut o[k * batch_size * per..][..chunk.len() * per]);
            let feat =
                features.as_mut().map(|(w, o)| (*w, &mut o[k * batch_size * per_latent..][..chunk.len() * per_latent]));
            let pass = Pass { dropout: 0.0, scale, grads: None, log_rates: out, features: feat };
            let sums = self.backend.run(&self.model, &self.state.params, &self.batch, pass);
            total.nll += sums.nll;
            total.kl += sums.kl;
            total.elements += sums.elements;
        }
        total
    }

    /// Log-rates `[n, T + F, N_out]` of `trials` averaged over `samples` noisy
    /// passes (the paper's prediction, default 50), or mean mode for `samples == 0`.
    pub fn predict(&mut self, data: &Dataset, trials: &[usize], samples: usize, seed: u64) -> Vec<f32> {
        let n = trials.len() * data.bins() * self.model.n_out;
        let mut mean = vec![0.0f32; n];
        if samples == 0 {
            self.evaluate(data, trials, None, Some(&mut mean));
            return mean;
        }
        let mut one = vec![0.0f32; n];
        for s in 0..samples {
            self.evaluate(data, trials, Some(seed.wrapping_add(s as u64 * 0x51_7CC1_B727)), Some(&mut one));
            for (m, x) in mean.iter_mut().zip(&one) {
                *m += x / samples as f32;
            }
        }
        mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paper-mode model of H=4 for `data`'s neurons.
    fn tiny_model(data: &Dataset) -> ModelConfig {
        ModelConfig::paper(data.n_in, data.n_out, 4, 8)
    }

    #[test]
    fn coordinated_dropout_keeps_cd_scales_by_1_over_cd_and_masks_gradients_per_mode() {
        // Every held-in count is 2, so the input shows the keep mask m: 2 / cd where kept, else 0.
        let (trials, observed, n_in) = (40usize, 10usize, 20usize);
        let data = Dataset {
            n_in,
            n_out: 25,
            observed,
            forward: 2,
            bin_ms: 10.0,
            spikes: vec![2.0; trials * 12 * 25],
            true_rates: None,
            behavior: None,
            n_beh: 0,
            conditions: None,
            split: vec![Split::Train; trials],
            nlb: None,
            segments: None,
        };
        let cd = 0.3f32; // not 0.5: an inverted keep mask shows
        let picked: Vec<usize> = (0..trials).collect();
        let seeds: Vec<u64> = (0..trials as u64).map(|i| 1000 + i).collect();
        let elements = (trials * observed * n_in) as f64;
        // Binomial fractions over 8000 elements: 4 standard deviations is about 0.02.
        let near = |got: f64, want: f64, what: &str| assert!((got - want).abs() < 0.02, "{what}: {got:.4} vs {want}");
        for mode in [Mode::Paper, Mode::Streaming] {
            let model = ModelConfig { mode, window: (mode == Mode::Streaming).then_some(4), ..tiny_model(&data) };
            let config = TrainConfig { cd_rate: cd, ..TrainConfig::default() };
            let mut t = Trainer::new(model, config, crate::train::backend::CpuBackend::new(1).unwrap());
            t.fill_batch(&data, &picked, &seeds, true, false);
            let b = &t.batch;
            assert_eq!((b.input.len(), b.grad_mask.len()), (trials * observed * n_in, trials * observed * n_in));
            let (mut kept, mut kept_with_grad, mut dropped_with_grad) = (0usize, 0usize, 0usize);
            for (x, g) in b.input.iter().zip(&b.grad_mask) {
                assert!(*x == 0.0 || *x == 2.0 / cd, "{mode:?}: input {x}, not 0 or 2 / cd");
                assert!(*g == 0.0 || *g == 1.0);
                if *x > 0.0 {
                    kept += 1;
                    kept_with_grad += *g as usize;
                } else {
                    dropped_with_grad += *g as usize;
                }
            }
            let dropped = b.input.len() - kept;
            near(kept as f64 / elements, cd as f64, &format!("{mode:?}: kept fraction (m ~ Bernoulli(cd))"));
            // Where the input was dropped the loss always gets gradient (`!m`).
            assert_eq!(dropped_with_grad, dropped, "{mode:?}: a dropped input's loss element without gradient");
            match mode {
                // Paper: `!m || q`, q ~ Bernoulli(1 - cd): kept elements pass with probability 1 - cd.
                Mode::Paper => near(kept_with_grad as f64 / kept as f64, 1.0 - cd as f64, "paper: q among kept"),
                // Streaming (MODEL.md section 9): `!m` only.
                Mode::Streaming => assert_eq!(kept_with_grad, 0, "streaming: a kept input's loss element has gradient"),
            }
            // Evaluation (train = false): no coordinated dropout at all.
            t.fill_batch(&data, &picked, &seeds, false, false);
            assert!(t.batch.input.iter().all(|x| *x == 2.0) && t.batch.grad_mask.is_empty());
        }
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
        let backend = || crate::train::backend::CpuBackend::new(1).unwrap();
        let bias = |t: &Trainer<crate::train::backend::CpuBackend>| t.state.params.get(Tensor::ReadoutBias).to_vec();
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
        let mut t = Trainer::new(model, config, crate::train::backend::CpuBackend::new(1).unwrap());
        let validated: Vec<bool> = (0..5).map(|_| t.epoch(&data).valid_nll.is_finite()).collect();
        // Epochs 1 and 3 (every second), and 4, the last.
        assert_eq!(validated, [false, true, false, true, true]);
        assert!(t.state.best_epoch % 2 == 1 || t.state.best_epoch == 4);
    }
}
