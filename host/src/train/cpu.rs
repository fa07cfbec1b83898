//! The CPU backend: a batch split over rayon threads, each with its own
//! workspace and gradient buffer, its share run in pieces of at most
//! [`PIECE_TRIALS`] trials; matrix products through the `gemm` crate
//! ([`crate::train::gemm`]).

use crate::config::ModelConfig;
use crate::train::backend::{Backend, BackendError, Batch, Features, Pass};
use crate::train::gemm::{with_impl, GemmImpl};
use crate::train::model::{self, Dropout, LossSums, Workspace};
use crate::train::params::Params;

/// `out` (trial-major, `per` values per trial) cut at `bounds`' trial ranges, one part each.
fn split_trials<'a>(out: Option<&'a mut [f32]>, bounds: &[(usize, usize)], per: usize) -> Vec<Option<&'a mut [f32]>> {
    let Some(mut rest) = out else { return bounds.iter().map(|_| None).collect() };
    let mut parts = Vec::with_capacity(bounds.len());
    for &(_, len) in bounds {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(len * per);
        parts.push(Some(part));
        rest = tail;
    }
    parts
}

struct Worker {
    ws: Workspace,
    grads: Params,
    sums: LossSums,
}

/// Multi-threaded CPU backend (rayon): each thread trains its share of a batch.
pub struct CpuBackend {
    pool: rayon::ThreadPool,
    threads: usize,
    workers: Vec<Worker>,
    gemm: GemmImpl,
}

/// Trials a worker forwards and backpropagates at once: its share of a batch
/// runs in pieces of at most this many, each through the whole forward and
/// backward pass. At H=64, batch 256, 2 threads this keeps `lflow bench train`
/// at 124 MiB instead of 397 MiB and its median wall time 0.93x (README,
/// "Training speed").
pub const PIECE_TRIALS: usize = 32;

impl CpuBackend {
    /// A backend with `threads` worker threads (0: one per core).
    pub fn new(threads: usize) -> Result<CpuBackend, rayon::ThreadPoolBuildError> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        Ok(CpuBackend { pool, threads, workers: Vec::new(), gemm: GemmImpl::default() })
    }

    /// The same backend with its matrix products through `gemm`.
    pub fn with_gemm(mut self, gemm: GemmImpl) -> CpuBackend {
        self.gemm = gemm;
        self
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

    fn run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, BackendError> {
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
        let which = features.as_ref().map(|(w, _)| *w);
        let rate_parts = split_trials(log_rates, &bounds, batch.bins * cfg.n_out);
        let feature_parts = split_trials(features.map(|(_, out)| out), &bounds, batch.bins * cfg.d_model());
        let jobs: Vec<_> = bounds.iter().copied().zip(rate_parts).zip(feature_parts).collect();
        let workers = &mut self.workers[..parts];
        let gemm = self.gemm;
        self.pool.install(|| {
            workers.par_iter_mut().zip(jobs).for_each(|(w, (((start, len), mut rates), mut feats))| {
                with_impl(gemm, || {
                    if want_grads {
                        if w.grads.len() != params.len() {
                            w.grads = Params::zeros(cfg);
                        }
                        w.grads.clear();
                    }
                    w.sums = LossSums::default();
                    // Pieces of at most PIECE_TRIALS trials, as even as possible.
                    let pieces = len.div_ceil(PIECE_TRIALS).max(1);
                    for i in 0..pieces {
                        let (from, to) = (i * len / pieces, (i + 1) * len / pieces);
                        let (s, n) = (start + from, to - from);
                        let chunk = batch.chunk(cfg, s, n);
                        let drop = Dropout { rate: dropout, seeds: &batch.seeds[s..s + n] };
                        let sums = model::forward(cfg, params, &chunk, Some(drop), &mut w.ws);
                        w.sums.nll += sums.nll;
                        w.sums.kl += sums.kl;
                        w.sums.elements += sums.elements;
                        if want_grads {
                            model::backward(cfg, params, &chunk, scale, &mut w.ws, &mut w.grads);
                        }
                        if let Some(out) = rates.as_deref_mut() {
                            let per = batch.bins * cfg.n_out;
                            out[from * per..to * per].copy_from_slice(&model::log_rates(&w.ws)[..n * per]);
                        }
                        if let (Some(out), Some(which)) = (feats.as_deref_mut(), which) {
                            let per = batch.bins * cfg.d_model();
                            let src = match which {
                                Features::Latents => model::latents(&w.ws),
                                Features::DecoderOutput => model::decoder_output(&w.ws),
                            };
                            out[from * per..to * per].copy_from_slice(&src[..n * per]);
                        }
                    }
                })
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
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::model::LossScale;
    use lflow_core::Seeded;

    fn random_batch(cfg: &ModelConfig, trials: usize, observed: usize, bins: usize) -> Batch {
        let mut rng = Seeded::new(11);
        let mut counts = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.next_u32() % 4) as f32).collect() };
        let input = counts(trials * observed * cfg.n_in);
        let targets = counts(trials * bins * cfg.n_out);
        let grad_mask = (0..trials * observed * cfg.n_in).map(|i| (i % 3 != 0) as u32 as f32).collect();
        let mut rng = Seeded::new(12);
        let noise = (0..trials * (bins + 1) * cfg.hidden).map(|_| rng.next_normal()).collect();
        let seeds = (0..trials as u64).map(|i| i * 31 + 7).collect();
        Batch { input, targets, grad_mask, noise, seeds, trials, observed, bins }
    }

    #[test]
    fn the_backends_gemm_choice_reaches_every_matrix_product_of_its_pass() {
        let cfg = ModelConfig::paper(6, 8, 16, 32);
        let batch = random_batch(&cfg, 20, 9, 11);
        let params = Params::init(&cfg, &mut Seeded::new(5));
        let scale = LossScale { nll: 0.01, kl: 0.02 };
        // The reference: the model on the whole batch (one piece), `matrixmultiply` set on this thread.
        let reference = |which: GemmImpl| {
            with_impl(which, || {
                let mut ws = Workspace::new();
                let chunk = batch.chunk(&cfg, 0, batch.trials);
                let drop = Dropout { rate: 0.0, seeds: &batch.seeds };
                model::forward(&cfg, &params, &chunk, Some(drop), &mut ws);
                let mut g = Params::zeros(&cfg);
                model::backward(&cfg, &params, &chunk, scale, &mut ws, &mut g);
                (model::log_rates(&ws).to_vec(), g)
            })
        };
        let run = |which: GemmImpl| {
            let mut backend = CpuBackend::new(1).unwrap().with_gemm(which);
            let mut grads = Params::zeros(&cfg);
            let mut rates = vec![0.0; batch.trials * batch.bins * cfg.n_out];
            let pass =
                Pass { dropout: 0.0, scale, grads: Some(&mut grads), log_rates: Some(&mut rates), features: None };
            backend.run(&cfg, &params, &batch, pass).unwrap();
            (rates, grads)
        };
        let (mm, gemm) = (run(GemmImpl::MatrixMultiply), run(GemmImpl::Gemm));
        assert_eq!(mm, reference(GemmImpl::MatrixMultiply), "matrixmultiply: not bit for bit its reference");
        assert_eq!(gemm, reference(GemmImpl::Gemm), "gemm: not bit for bit its reference");
        // The two crates round differently, so the choice shows in the bits.
        assert_ne!(mm.1, gemm.1, "the two choices gave the same bits: the test cannot tell them apart");
    }

    #[test]
    fn a_batch_in_pieces_over_threads_equals_one_chunk() {
        let cfg = ModelConfig::paper(3, 4, 4, 8);
        // 75 trials: 3 pieces on one thread (25 each), 2 + 2 on two (18/19 and 19/19).
        let batch = random_batch(&cfg, 75, 5, 7);
        let params = Params::init(&cfg, &mut Seeded::new(3));
        let scale = LossScale { nll: 0.01, kl: 0.02 };
        // The reference: the model on the whole batch as one chunk, without the backend.
        let mut ws = Workspace::new();
        let chunk = batch.chunk(&cfg, 0, batch.trials);
        let drop = Dropout { rate: 0.3, seeds: &batch.seeds };
        let want_sums = model::forward(&cfg, &params, &chunk, Some(drop), &mut ws);
        let mut want_grads = Params::zeros(&cfg);
        model::backward(&cfg, &params, &chunk, scale, &mut ws, &mut want_grads);
        let rel = |a: &[f32], b: &[f32]| {
            let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
            (num / den).sqrt()
        };
        for threads in [1, 2] {
            let mut backend = CpuBackend::new(threads).unwrap();
            let mut grads = Params::zeros(&cfg);
            let mut rates = vec![f32::NAN; 75 * 7 * cfg.n_out];
            let mut features = vec![f32::NAN; 75 * 7 * cfg.d_model()];
            let pass = Pass {
                dropout: 0.3,
                scale,
                grads: Some(&mut grads),
                log_rates: Some(&mut rates),
                features: Some((Features::DecoderOutput, &mut features)),
            };
            let sums = backend.run(&cfg, &params, &batch, pass).unwrap();
            assert_eq!(sums.elements, want_sums.elements);
            assert!((sums.nll - want_sums.nll).abs() < 1e-6 * want_sums.nll.abs(), "{threads} threads: nll");
            assert!((sums.kl - want_sums.kl).abs() < 1e-6 * want_sums.kl.abs(), "{threads} threads: kl");
            // gemm's rounding depends on the number of rows, so not to the bit.
            let e = rel(&rates, model::log_rates(&ws));
            assert!(e < 1e-6, "{threads} threads: log-rates off by {e:.2e}");
            let e = rel(&features, model::decoder_output(&ws));
            assert!(e < 1e-6, "{threads} threads: features off by {e:.2e}");
            for t in crate::train::params::PARAMS {
                let e = rel(grads.get(t), want_grads.get(t));
                assert!(e < 1e-5, "{threads} threads: gradient of {t:?} off by {e:.2e}");
            }
        }
    }
}
