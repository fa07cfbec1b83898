//! `lflow bench train`: training throughput for one configuration.

use crate::config::{Mode, ModeName, ModelConfig};
use crate::data::{Dataset, Split};
use crate::train::backend::{Backend, BackendError};
use crate::train::device::{AnyBackend, Device, OpenError};
use crate::train::gemm::GemmImpl;
use crate::train::train_config::TrainConfig;
use crate::train::trainer::Trainer;
use lflow_core::Seeded;
use serde::Serialize;

/// What to measure.
#[derive(Clone, Debug)]
pub struct TrainBench {
    /// Latent size `H`.
    pub hidden: usize,
    /// Trials per batch.
    pub batch: usize,
    /// Worker threads (CPU).
    pub threads: usize,
    /// Where to train.
    pub device: Device,
    /// Paper or streaming.
    pub mode: ModeName,
    /// Observed bins.
    pub observed: usize,
    /// Forward bins.
    pub forward: usize,
    /// Held-in neurons.
    pub n_in: usize,
    /// All neurons.
    pub n_out: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Streaming window.
    pub window: usize,
    /// Timed batches (after one warm-up batch).
    pub batches: usize,
    /// The CPU backend's matrix products.
    pub gemm: GemmImpl,
}

/// The figures, as `--json` prints them.
#[derive(Clone, Debug, Serialize)]
pub struct TrainBenchResult {
    /// Training trials per second (forward + backward + Adam).
    pub trials_per_s: f64,
    /// Latent size.
    pub hidden: usize,
    /// Batch size.
    pub batch: usize,
    /// Threads (CPU; 0 on a GPU).
    pub threads: usize,
    /// The backend that ran (`cpu x2`, `cuda: <device name>`).
    pub device: String,
    /// `paper` or `streaming`.
    pub mode: ModeName,
    /// Floating-point operations per trial, forward + backward (counted, see [`flops_per_trial`]).
    pub flops_per_trial: f64,
    /// Achieved rate.
    pub gflops_per_s: f64,
    /// Share of the worker threads' time spent inside gemm (CPU; null on a GPU).
    pub gemm_share: Option<f64>,
    /// Milliseconds per training step (one batch: forward, backward, Adam).
    pub ms_per_step: f64,
    /// Kernel launches and GEMM calls run per step, those inside replayed
    /// graphs included (GPU; null on the CPU).
    pub launches_per_step: Option<f64>,
    /// Graph replays per step: the host's launch calls when steps replay
    /// captured graphs (GPU; null on the CPU).
    pub graph_replays_per_step: Option<f64>,
}

/// FLOPs of one trial's forward and backward pass: every matrix product
/// (2 per multiply-add; backward twice the forward: input and weight
/// gradients) and the attention's score and context products. Element-wise
/// work is not counted.
pub fn flops_per_trial(cfg: &ModelConfig, bins: usize) -> f64 {
    let (h, d, ff, nin, nout) =
        (cfg.hidden, cfg.d_model(), cfg.ff, cfg.n_in, cfg.n_out) as (usize, usize, usize, usize, usize);
    let per_bin = 3 * h * nin + 3 * h * h + 3 * d * d + d * d + 2 * d * ff + d * nout;
    let heads = 4 * h * h / bins.max(1); // four posterior heads, once per trial
    let attended: usize = (0..bins).map(|t| (0..bins).filter(|&j| cfg.attends(t, j)).count()).sum();
    let attention = 2 * attended * d; // scores and context, all heads
    let forward = 2.0 * ((per_bin + heads) * bins + attention) as f64;
    3.0 * forward
}

fn random_dataset(b: &TrainBench, seed: u64) -> Dataset {
    let mut rng = Seeded::new(seed);
    let bins = b.observed + b.forward;
    let spikes = (0..b.batch * bins * b.n_out).map(|_| (rng.next_u32() % 3) as f32).collect();
    Dataset {
        n_in: b.n_in,
        n_out: b.n_out,
        observed: b.observed,
        forward: b.forward,
        bin_ms: 20.0,
        spikes,
        true_rates: None,
        behavior: None,
        n_beh: 0,
        conditions: None,
        split: vec![Split::Train; b.batch],
        nlb: None,
        segments: None,
    }
}

/// Why the training benchmark cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The device could not be opened.
    #[error("--device {device}: cannot train there")]
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
}

/// Run the benchmark.
pub fn run(b: &TrainBench) -> Result<TrainBenchResult, BenchError> {
    let cfg = ModelConfig {
        n_in: b.n_in,
        n_out: b.n_out,
        hidden: b.hidden,
        ff: b.ff,
        gamma: 0.55,
        eps: 0.01,
        mode: Mode::new(b.mode, b.window),
        anchor_every: 0,
    };
    let data = random_dataset(b, 1);
    let train = TrainConfig { batch_size: b.batch, ..TrainConfig::default() };
    let backend = AnyBackend::open(b.device, b.threads)
        .map_err(|source| BenchError::Open { device: b.device, source })?
        .with_gemm(b.gemm);
    let mut trainer = Trainer::new(cfg.clone(), train, backend);
    trainer.epoch(&data)?; // warm-up: sizes every workspace (and compiles nothing: kernels are compiled at open)
    crate::train::gemm::take_gemm_nanos();
    crate::train::gemm::set_profiling(true);
    let launches_before = trainer.backend().launches();
    let replays_before = trainer.backend().graph_replays();
    let started = std::time::Instant::now();
    let mut trials = 0usize;
    let mut train_secs = 0.0f64;
    for _ in 0..b.batches.max(1) {
        let s = trainer.epoch(&data)?;
        trials += b.batch;
        train_secs += b.batch as f64 / s.trials_per_s;
    }
    let wall = started.elapsed().as_secs_f64();
    crate::train::gemm::set_profiling(false);
    let threads = trainer.backend().threads();
    let gemm_secs = crate::train::gemm::take_gemm_nanos() as f64 * 1e-9;
    let trials_per_s = trials as f64 / train_secs;
    let flops = flops_per_trial(&cfg, b.observed + b.forward);
    Ok(TrainBenchResult {
        trials_per_s,
        hidden: b.hidden,
        batch: b.batch,
        threads,
        device: trainer.backend().name(),
        mode: b.mode,
        flops_per_trial: flops,
        gflops_per_s: flops * trials_per_s * 1e-9,
        gemm_share: (threads > 0).then(|| gemm_secs / (wall * threads as f64)),
        ms_per_step: 1e3 * b.batch as f64 / trials_per_s,
        launches_per_step: trainer
            .backend()
            .launches()
            .zip(launches_before)
            .map(|(after, before)| (after - before) as f64 / b.batches.max(1) as f64),
        graph_replays_per_step: trainer
            .backend()
            .graph_replays()
            .zip(replays_before)
            .map(|(after, before)| (after - before) as f64 / b.batches.max(1) as f64),
    })
}
