//! The CUDA backend: the whole forward and backward pass of a batch on a GPU,
//! matrix products through cuBLAS and everything else in the fused kernels of
//! `host/cuda/` (compiled at run time by NVRTC), behind the same
//! [`Backend`] the CPU backend implements.
//!
//! cudarc loads the CUDA libraries at run time, so this builds on machines
//! without CUDA; [`driver::check_libraries`] finds out first what is missing
//! (cudarc would panic). Without a GPU the same kernels run on the CPU through the
//! test-only emulator (`cuda-emu` feature, [`emulator::EmulatedGpu`]).
//!
//! A training step (batch assembly, forward, backward, Adam) is captured once
//! per batch shape as a graph and replayed ([`graphs`]); the encoder's
//! recurrence is one persistent kernel each way (`host/cuda/encoder.cu`).

mod arena;
pub mod driver;
#[cfg(feature = "cuda-emu")]
pub mod emulator;
pub mod gpu;
pub mod graphs;
pub mod kernels;
pub mod scalars;
mod step;
mod work;

pub use gpu::{Gpu, GpuError};
pub use kernels::nvrtc_present;
pub use work::adam_step;

use crate::config::ModelConfig;
use crate::data::Dataset;
use crate::train::adam::Adam;
use crate::train::backend::{AdamStep, Backend, BackendError, Batch, Features, OptimizerState, Pass, Resident};
use crate::train::model::{LossScale, LossSums};
use crate::train::params::Params;
use arena::{Arena, Shape, Weights};
use gpu::{download_f32, upload_f32};
use graphs::{StepGraphs, StepKey};
use scalars::StepScalars;
use work::{assemble, index_buffer, StepWork};

/// The model options the kernels compute.
fn supported(cfg: &ModelConfig) -> Result<(), GpuError> {
    if cfg.anchor_every > 0 {
        return Err(GpuError::Unsupported { what: "model.anchor_every (re-anchored latents)" });
    }
    Ok(())
}

/// The data set and the epoch's trial order as the device holds them.
struct ResidentData {
    /// Which data set: its spike count and an FNV-1a hash of its spikes (a
    /// host address could be reused by another data set after a drop).
    identity: (usize, u64),
    buf: gpu::BufId,
    spikes: gpu::DevPtr,
    /// The epoch's order `[n]` (i32) and seeds `[n]` (u64), rewritten each epoch.
    epoch: Option<(gpu::BufId, usize)>,
    order: gpu::DevPtr,
    seeds: gpu::DevPtr,
    observed: usize,
    bins: usize,
}

/// Trains on a [`Gpu`]: the real one or the emulated one.
pub struct CudaBackend<G: Gpu> {
    gpu: G,
    /// The arena, the shape and model it was laid out for.
    arena: Option<(Shape, ModelConfig, Arena)>,
    weights: Option<Weights>,
    data: Option<ResidentData>,
    /// The flat parameters' layout (offsets only) of the model being trained.
    layout: Option<(ModelConfig, Params)>,
    /// Validation's trial indices and seeds on the device, and their capacity in bytes.
    eval_indices: Option<(gpu::BufId, usize)>,
    launches: usize,
    graphs: StepGraphs,
}

impl CudaBackend<driver::CudaGpu> {
    /// The backend on CUDA device `ordinal`, or why it cannot run here.
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        Ok(CudaBackend::new(driver::CudaGpu::new(ordinal)?))
    }
}

impl<G: Gpu> CudaBackend<G> {
    /// The backend over `gpu`.
    pub fn new(gpu: G) -> Self {
        CudaBackend {
            gpu,
            arena: None,
            weights: None,
            data: None,
            layout: None,
            eval_indices: None,
            launches: 0,
            graphs: StepGraphs::from_env(),
        }
    }

    /// Capture training steps as graphs and replay them (the default, unless
    /// `LFLOW_CUDA_GRAPHS=0`), or launch each kernel of every step.
    pub fn with_graphs(mut self, on: bool) -> Self {
        self.graphs.forget(&mut self.gpu);
        self.graphs.enabled = on;
        self
    }

    /// Training-step graphs captured so far.
    pub fn graph_captures(&self) -> usize {
        self.graphs.captures
    }

    /// Training-step graph replays so far.
    pub fn graph_replays(&self) -> usize {
        self.graphs.replays
    }

    /// The device.
    pub fn gpu(&self) -> &G {
        &self.gpu
    }

    /// Kernel launches and GEMM calls run so far, those of replayed graphs
    /// included (memory copies not counted).
    pub fn launches(&self) -> usize {
        self.launches
    }

    fn arena(&mut self, cfg: &ModelConfig, shape: Shape) -> Result<Arena, GpuError> {
        match &self.arena {
            Some((s, m, a)) if s.holds(&shape) && m == cfg => Ok(*a),
            _ => {
                if let Some((_, _, old)) = self.arena.take() {
                    self.graphs.forget(&mut self.gpu);
                    old.free(&mut self.gpu);
                }
                let a = Arena::new(&mut self.gpu, cfg, shape)?;
                self.arena = Some((shape, cfg.clone(), a));
                Ok(a)
            }
        }
    }

    fn weights(&mut self, len: usize) -> Result<Weights, GpuError> {
        match self.weights {
            Some(w) if w.len == len => Ok(w),
            _ => {
                if let Some(old) = self.weights.take() {
                    self.graphs.forget(&mut self.gpu);
                    self.gpu.free(old.buf);
                }
                let w = Weights::new(&mut self.gpu, len)?;
                self.weights = Some(w);
                Ok(w)
            }
        }
    }

    /// Forward (and backward when `grads` is asked for) of the batch in the
    /// arena, then what `pass` wants downloaded.
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        shape: Shape,
        has_mask: bool,
        a: Arena,
        wts: Weights,
        dropout: f32,
        grad: bool,
        grads: Option<&mut Params>,
        log_rates: Option<&mut [f32]>,
        features: Option<(Features, &mut [f32])>,
    ) -> Result<LossSums, GpuError> {
        let work = StepWork { model: cfg, layout: params, shape, a, wts, dropout, grad, has_mask, train: None };
        self.run_step(&work)?;
        let rows = shape.trials * shape.bins;
        let sums = step::Step::loss_sums(&mut self.gpu, &a, rows * cfg.n_out)?;
        if let Some(g) = grads {
            download_f32(&mut self.gpu, wts.grads, &mut g.data)?;
        }
        if let Some(out) = log_rates {
            download_f32(&mut self.gpu, a.log_rates, &mut out[..rows * cfg.n_out])?;
        }
        if let Some((which, out)) = features {
            let src = match which {
                Features::Latents => a.l,
                Features::DecoderOutput => a.y2,
            };
            download_f32(&mut self.gpu, src, &mut out[..rows * cfg.d_model()])?;
        }
        Ok(sums)
    }

    fn try_run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, GpuError> {
        supported(cfg)?;
        let Pass { dropout, scale, grads, log_rates, features } = pass;
        let shape = Shape { trials: batch.trials, observed: batch.observed, bins: batch.bins };
        let a = self.arena(cfg, shape)?;
        let wts = self.weights(params.len())?;
        let gpu: &mut dyn Gpu = &mut self.gpu;
        upload_f32(gpu, wts.params, &params.data)?;
        upload_f32(gpu, a.input, &batch.input)?;
        upload_f32(gpu, a.targets, &batch.targets)?;
        upload_f32(gpu, a.noise, &batch.noise)?;
        let has_mask = !batch.grad_mask.is_empty();
        if has_mask {
            upload_f32(gpu, a.grad_mask, &batch.grad_mask)?;
        }
        let mut seeds = batch.seeds.clone();
        seeds.resize(batch.trials, 0);
        gpu.upload(a.seeds, bytemuck::cast_slice(&seeds))?;
        let grad = grads.is_some();
        gpu.upload(a.scalars, StepScalars::new(grad.then_some(scale), None, 0).bytes())?;
        self.pass(cfg, params, shape, has_mask, a, wts, dropout, grad, grads, log_rates, features)
    }

    fn try_begin_epoch(
        &mut self,
        model: &ModelConfig,
        data: &Dataset,
        state: OptimizerState<'_>,
        order: &[usize],
        seeds: &[u64],
    ) -> Result<(), GpuError> {
        supported(model)?;
        let hash = data
            .spikes
            .iter()
            .fold(0xCBF2_9CE4_8422_2325u64, |h, x| (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01B3));
        let identity = (data.spikes.len(), hash);
        if self.data.as_ref().is_none_or(|d| d.identity != identity) {
            if let Some(old) = self.data.take() {
                self.graphs.forget(&mut self.gpu);
                self.gpu.free(old.buf);
                if let Some((b, _)) = old.epoch {
                    self.gpu.free(b);
                }
            }
            let buf = self.gpu.alloc(data.spikes.len() * 4)?;
            let spikes = gpu::DevPtr { buf, offset: 0 };
            upload_f32(&mut self.gpu, spikes, &data.spikes)?;
            self.data = Some(ResidentData {
                identity,
                buf,
                spikes,
                epoch: None,
                order: spikes,
                seeds: spikes,
                observed: data.observed,
                bins: data.bins(),
            });
        }
        let old_epoch = self.data.as_ref().and_then(|d| d.epoch);
        let (epoch_buf, order_ptr, seeds_ptr) = index_buffer(&mut self.gpu, old_epoch, order)?;
        self.gpu.upload(seeds_ptr, bytemuck::cast_slice(seeds))?;
        // The seeds follow the order, so they move when its length does, and
        // both move when the buffer is reallocated: a graph of the last epoch
        // would read them where they were.
        if self.data.as_ref().is_some_and(|d| d.order != order_ptr || d.seeds != seeds_ptr) {
            self.graphs.forget(&mut self.gpu);
        }
        if let Some(d) = self.data.as_mut() {
            d.epoch = Some(epoch_buf);
            d.order = order_ptr;
            d.seeds = seeds_ptr;
        }
        let wts = self.weights(state.params.len())?;
        upload_f32(&mut self.gpu, wts.params, &state.params.data)?;
        upload_f32(&mut self.gpu, wts.m, &state.adam.m.data)?;
        upload_f32(&mut self.gpu, wts.v, &state.adam.v.data)?;
        if self.layout.as_ref().is_none_or(|(m, _)| m != model) {
            self.layout = Some((model.clone(), Params::zeros(model)));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn try_train_batch(
        &mut self,
        model: &ModelConfig,
        start: usize,
        len: usize,
        cd_rate: f32,
        dropout: f32,
        scale: LossScale,
        adam: AdamStep,
    ) -> Result<LossSums, GpuError> {
        let (spikes, order, seeds, observed, bins) = match &self.data {
            Some(d) => (d.spikes, d.order, d.seeds, d.observed, d.bins),
            None => return Err(GpuError::Refused { what: "train_batch".into(), detail: "no epoch begun".into() }),
        };
        let Some(wts) = self.weights else {
            return Err(GpuError::Refused { what: "train_batch".into(), detail: "no parameters".into() });
        };
        let shape = Shape { trials: len, observed, bins };
        let a = self.arena(model, shape)?;
        let use_cd = cd_rate > 0.0 && cd_rate < 1.0;
        let k = adam.adam.constants(adam.adam.lr, adam.step);
        let scalars = StepScalars::new(Some(scale), Some((k, adam.weight_decay)), start);
        self.gpu.upload(a.scalars, scalars.bytes())?;
        // Offsets of each tensor in the flat buffer: the layout only, no values.
        let layout = self.epoch_layout(model, "train_batch")?;
        let work = StepWork {
            model,
            layout: &layout,
            shape,
            a,
            wts,
            dropout,
            grad: true,
            has_mask: use_cd,
            train: Some(([spikes, order, seeds], use_cd.then_some(cd_rate))),
        };
        let ran = self.run_step(&work);
        self.layout = Some((model.clone(), layout));
        ran?;
        step::Step::loss_sums(&mut self.gpu, &a, len * bins * model.n_out)
    }

    /// Run one step's device work: replay its graph (captured first if this
    /// is the first step of its kind), or launch it kernel by kernel.
    fn run_step(&mut self, s: &StepWork<'_>) -> Result<(), GpuError> {
        if !self.graphs.enabled {
            self.launches += s.record(&mut self.gpu)?;
            return Ok(());
        }
        let key = StepKey {
            model: s.model.clone(),
            shape: s.shape,
            dropout: s.dropout.to_bits(),
            grad: s.grad,
            has_mask: s.has_mask,
            train: s.train.map(|(resident, cd)| (resident, cd.map(f32::to_bits))),
        };
        let (graph, launches) = match self.graphs.find(&key) {
            Some(found) => found,
            None => match self.capture(s) {
                Ok((g, n)) => {
                    self.graphs.insert(key, g, n);
                    (g, n)
                }
                Err(e @ GpuError::OutOfBounds { .. }) => return Err(e),
                Err(e) => {
                    // A driver or library that cannot capture this step still
                    // runs it, kernel by kernel; a real fault fails there too.
                    self.graphs.give_up(&mut self.gpu, &e);
                    self.launches += s.record(&mut self.gpu)?;
                    return Ok(());
                }
            },
        };
        self.gpu.replay(graph)?;
        self.graphs.replays += 1;
        self.launches += launches;
        Ok(())
    }

    /// The parameters' layout of the epoch begun, taken out (put it back
    /// after use), refusing `what` for a model other than the epoch's.
    fn epoch_layout(&mut self, model: &ModelConfig, what: &str) -> Result<Params, GpuError> {
        match self.layout.take() {
            Some((begun, layout)) if &begun == model => Ok(layout),
            Some(other) => {
                self.layout = Some(other);
                Err(GpuError::Refused { what: what.into(), detail: "a model other than the epoch's".into() })
            }
            None => Err(GpuError::Refused { what: what.into(), detail: "no epoch begun".into() }),
        }
    }

    /// Record `s` into a new graph: the graph and its launches.
    fn capture(&mut self, s: &StepWork<'_>) -> Result<(gpu::GraphId, usize), GpuError> {
        self.gpu.begin_capture()?;
        let recorded = s.record(&mut self.gpu);
        let ended = self.gpu.end_capture();
        match (recorded, ended) {
            (Ok(n), Ok(g)) => Ok((g, n)),
            (Err(e), Ok(g)) => {
                self.gpu.drop_graph(g);
                Err(e)
            }
            (Err(e), Err(_)) | (Ok(_), Err(e)) => Err(e),
        }
    }

    /// Why graphs were given up on this device, if they were (capture failed;
    /// steps then launch each kernel).
    pub fn graph_fallback(&self) -> Option<&str> {
        self.graphs.fallback.as_deref()
    }

    /// [`Resident::evaluate`] with its errors.
    fn try_evaluate(
        &mut self,
        model: &ModelConfig,
        trials: &[usize],
        log_rates: &mut [f32],
    ) -> Result<LossSums, GpuError> {
        let refused = |detail: &str| GpuError::Refused { what: "evaluate".into(), detail: detail.into() };
        let (spikes, observed, bins) = match &self.data {
            Some(d) => (d.spikes, d.observed, d.bins),
            None => return Err(refused("no epoch begun")),
        };
        supported(model)?;
        let wts = self.weights.ok_or_else(|| refused("no parameters"))?;
        let n = trials.len();
        if n == 0 {
            return Ok(LossSums::default());
        }
        let resident_trials = self.data.as_ref().map_or(0, |d| d.identity.0 / (bins * model.n_out).max(1));
        if let Some(&bad) = trials.iter().find(|&&i| i >= resident_trials) {
            return Err(refused(&format!("trial {bad} of a resident data set of {resident_trials} trials")));
        }
        if log_rates.len() < n * bins * model.n_out {
            return Err(refused(&format!(
                "{} log-rates to fill, {} trials of {bins} bins and {} neurons need {}",
                log_rates.len(),
                n,
                model.n_out,
                n * bins * model.n_out
            )));
        }
        // The trials' indices and (zero) seeds, in a buffer of their own.
        let (buf, order, seeds) = index_buffer(&mut self.gpu, self.eval_indices, trials)?;
        self.eval_indices = Some(buf);
        self.gpu.zero(seeds, n * 8)?;
        let shape = Shape { trials: n, observed, bins };
        let a = self.arena(model, shape)?;
        self.gpu.upload(a.scalars, StepScalars::new(None, None, 0).bytes())?;
        assemble(&mut self.gpu, model, [spikes, order, seeds], a, shape, None, false)?;
        self.launches += 1;
        let layout = self.epoch_layout(model, "evaluate")?;
        let sums = self.pass(model, &layout, shape, false, a, wts, 0.0, false, None, Some(log_rates), None);
        self.layout = Some((model.clone(), layout));
        sums
    }

    fn try_end_epoch(&mut self, params: &mut Params, adam: &mut Adam) -> Result<(), GpuError> {
        let Some(wts) = self.weights else { return Ok(()) };
        // Into copies first: after an error the host's state stays as it was.
        let (mut p, mut m, mut v) = (params.data.clone(), adam.m.data.clone(), adam.v.data.clone());
        download_f32(&mut self.gpu, wts.params, &mut p)?;
        download_f32(&mut self.gpu, wts.m, &mut m)?;
        download_f32(&mut self.gpu, wts.v, &mut v)?;
        (params.data, adam.m.data, adam.v.data) = (p, m, v);
        Ok(())
    }

    /// A GPU error as the backend seam reports it.
    fn failed(&self, e: GpuError) -> BackendError {
        BackendError::Gpu { backend: self.name(), source: Box::new(e) }
    }
}

impl<G: Gpu> Backend for CudaBackend<G> {
    fn name(&self) -> String {
        format!("cuda: {}", self.gpu.name())
    }

    fn run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, BackendError> {
        self.try_run(cfg, params, batch, pass).map_err(|e| self.failed(e))
    }

    fn resident(&mut self) -> Option<&mut dyn Resident> {
        Some(self)
    }
}

impl<G: Gpu> Resident for CudaBackend<G> {
    fn begin_epoch(
        &mut self,
        model: &ModelConfig,
        data: &Dataset,
        state: OptimizerState<'_>,
        order: &[usize],
        seeds: &[u64],
    ) -> Result<(), BackendError> {
        self.try_begin_epoch(model, data, state, order, seeds).map_err(|e| self.failed(e))
    }

    fn train_batch(
        &mut self,
        model: &ModelConfig,
        start: usize,
        len: usize,
        cd_rate: f32,
        dropout: f32,
        scale: LossScale,
        step: AdamStep,
    ) -> Result<LossSums, BackendError> {
        self.try_train_batch(model, start, len, cd_rate, dropout, scale, step).map_err(|e| self.failed(e))
    }

    fn end_epoch(&mut self, params: &mut Params, adam: &mut Adam) -> Result<(), BackendError> {
        self.try_end_epoch(params, adam).map_err(|e| self.failed(e))
    }

    fn evaluate(
        &mut self,
        model: &ModelConfig,
        trials: &[usize],
        log_rates: &mut [f32],
    ) -> Result<LossSums, BackendError> {
        self.try_evaluate(model, trials, log_rates).map_err(|e| self.failed(e))
    }
}
