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
