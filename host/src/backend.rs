//! The compute seam: the trainer drives a [`Backend`]; the CPU one splits a
//! batch over threads with per-thread workspaces and gradient buffers. A CUDA
//! backend implements the same trait.

use crate::config::ModelConfig;
use crate::model::{self, Chunk, Dropout, LossScale, LossSums, Workspace};
use crate::params::Params;

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
    fn chunk(&self, cfg: &ModelConfig, start: usize, len: usize) -> Chunk<'_> {
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

    /// Forward the batch, and what `pass` asks for; returns the loss sums.
    fn run(&mut self, cfg: &ModelConfig, params: &Params, batch: &Batch, pass: Pass<'_>) -> LossSums;

    /// The first failure since the last call (a device error in the middle of
    /// a pass, whose results are then not to be used); the CPU never fails.
    fn take_error(&mut self) -> Option<String> {
        None
    }

    /// A backend that keeps the data set, parameters and optimiser on its
    /// device trains through [`Resident`]; `None` (the CPU): the trainer
    /// assembles batches, calls [`Backend::run`] and steps Adam on the host.
    fn resident(&mut self) -> Option<&mut dyn Resident> {
        None
    }
}

/// One Adam step's constants (coupled weight decay, as `crate::adam::Adam`).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Adam's constants with this step's learning rate.
    pub adam: crate::adam::AdamConfig,
    /// Weight decay of this epoch (ramped).
    pub weight_decay: f32,
    /// The step's number, from 1 (bias corrections).
    pub step: u64,
}

/// Training with everything on the device: between [`Resident::begin_epoch`]
/// and [`Resident::end_epoch`] only the loss scalars cross to the host. The
/// results equal the host path's (same streams, same Adam) up to rounding.
/// Errors are kept for [`Backend::take_error`]; after one, the calls do nothing.
pub trait Resident {
    /// Upload what the epoch needs: the data set (once per data set), the
    /// parameters and Adam's moments, the epoch's trial order and one seed per
    /// trial (in order).
    fn begin_epoch(
        &mut self,
        model: &ModelConfig,
        data: &crate::data::Dataset,
        state: &crate::train::TrainState,
        order: &[usize],
        seeds: &[u64],
    );

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
        scale: crate::model::LossScale,
        step: AdamStep,
    ) -> LossSums;

    /// Bring the parameters and Adam's moments back into `state`.
    fn end_epoch(&mut self, state: &mut crate::train::TrainState);
}

/// Where a model trains: `cpu`, or `cuda` / `cuda:N` (device N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU backend.
    #[default]
    Cpu,
    /// The CUDA backend on device N.
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: use cpu, cuda or cuda:N (e.g. cuda:1)")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The backend a [`Device`] names.
pub enum AnyBackend {
    /// Threads on the CPU.
    Cpu(CpuBackend),
    /// A CUDA GPU.
    Cuda(Box<crate::cuda::CudaBackend<crate::cuda::driver::CudaGpu>>),
}

impl AnyBackend {
    /// Open `device` (`threads` is the CPU backend's thread count, 0: one per core).
    pub fn open(device: Device, threads: usize) -> Result<AnyBackend, String> {
        match device {
            Device::Cpu => CpuBackend::new(threads)
                .map(AnyBackend::Cpu)
                .map_err(|e| format!("cannot start the worker threads: {e}")),
            Device::Cuda(n) => {
                crate::cuda::CudaBackend::open(n).map(|b| AnyBackend::Cuda(Box::new(b))).map_err(|e| e.to_string())
            }
        }
    }
}

impl Backend for AnyBackend {
    fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.name(),
            AnyBackend::Cuda(b) => b.name(),
        }
    }

    fn run(&mut self, cfg: &ModelConfig, params: &Params, batch: &Batch, pass: Pass<'_>) -> LossSums {
        match self {
            AnyBackend::Cpu(b) => b.run(cfg, params, batch, pass),
            AnyBackend::Cuda(b) => b.run(cfg, params, batch, pass),
        }
    }

    fn take_error(&mut self) -> Option<String> {
        match self {
            AnyBackend::Cpu(b) => b.take_error(),
            AnyBackend::Cuda(b) => Backend::take_error(b.as_mut()),
        }
    }

    fn resident(&mut self) -> Option<&mut dyn Resident> {
        match self {
            AnyBackend::Cpu(b) => b.resident(),
            AnyBackend::Cuda(b) => b.resident(),
        }
    }
}

struct Worker {
    ws: Workspace,
    grads: Params,
    sums: LossSums,
}

/// Multi-threaded CPU backend (rayon), gemm through `matrixmultiply`.
pub struct CpuBackend {
    pool: rayon::ThreadPool,
    threads: usize,
    workers: Vec<Worker>,
}

impl CpuBackend {
    /// A backend with `threads` worker threads (0: one per core).
    pub fn new(threads: usize) -> Result<CpuBackend, rayon::ThreadPoolBuildError> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        Ok(CpuBackend { pool, threads, workers: Vec::new() })
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu x{}", self.threads)
    }

    fn run(&mut self, cfg: &ModelConfig, params: &Params, batch: &Batch, pass: Pass<'_>) -> LossSums {
        use rayon::prelude::*;
        let Pass { dropout, scale, grads, log_rates, features } = pass;
        let parts = self.threads.min(batch.trials).max(1);
        while self.workers.len() < parts {
            self.workers.push(Worker { ws: Workspace::new(), grads: Params::zeros(cfg), sums: LossSums::default() });
        }
        let want_grads = grads.is_some();
        let bounds: Vec<(usize, usize)> = (0..parts)
            .map(|i| (i * batch.trials / parts, (i + 1) * batch.trials / parts - i * batch.trials / parts))
            .collect();
        let workers = &mut self.workers[..parts];
        self.pool.install(|| {
            workers.par_iter_mut().zip(&bounds).for_each(|(w, &(start, len))| {
                let chunk = batch.chunk(cfg, start, len);
                let drop = Dropout { rate: dropout, seeds: &batch.seeds[start..start + len] };
                w.sums = model::forward(cfg, params, &chunk, Some(drop), &mut w.ws);
                if want_grads {
                    if w.grads.len() != params.len() {
                        w.grads = Params::zeros(cfg);
                    }
                    w.grads.clear();
                    model::backward(cfg, params, &chunk, scale, &mut w.ws, &mut w.grads);
                }
            })
        });
        let mut total = LossSums::default();
        for w in workers.iter() {
            total.nll += w.sums.nll;
            total.kl += w.sums.kl;
            total.elements += w.sums.elements;
        }
        if let Some(g) = grads {
            g.clear();
            for w in workers.iter() {
                g.add(&w.grads);
            }
        }
        if let Some(out) = log_rates {
            let per = batch.bins * cfg.n_out;
            for (w, &(start, len)) in workers.iter().zip(&bounds) {
                out[start * per..(start + len) * per].copy_from_slice(&model::log_rates(&w.ws)[..len * per]);
            }
        }
        if let Some((which, out)) = features {
            let per = batch.bins * cfg.d_model();
            for (w, &(start, len)) in workers.iter().zip(&bounds) {
                let src = match which {
                    Features::Latents => model::latents(&w.ws),
                    Features::DecoderOutput => model::decoder_output(&w.ws),
                };
                out[start * per..(start + len) * per].copy_from_slice(&src[..len * per]);
            }
        }
        total
    }
}
