//! The CUDA backend: the whole forward and backward pass of a batch on a GPU,
//! matrix products through cuBLAS and everything else in the fused kernels of
//! `host/cuda/` (compiled at run time by NVRTC), behind the same
//! [`Backend`] the CPU backend implements.
//!
//! cudarc loads the CUDA libraries at run time, so this builds on machines
//! without CUDA; [`check_libraries`] finds out first what is missing (cudarc
//! would panic). Without a GPU the same kernels run on the CPU through the
//! test-only emulator (`cuda-emu` feature, [`emulator::EmulatedGpu`]).

mod arena;
pub mod driver;
#[cfg(feature = "cuda-emu")]
pub mod emulator;
pub mod gpu;
pub mod kernels;
mod step;

pub use gpu::{Gpu, GpuError};

use crate::backend::{Backend, Batch, Features, Pass};
use crate::config::ModelConfig;
use crate::model::LossSums;
use crate::params::Params;
use arena::{Arena, Shape};
use gpu::{download_f32, upload_f32};

/// Whether NVRTC can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Check that the driver, NVRTC and cuBLAS libraries load, naming the first missing one.
pub fn check_libraries() -> Result<(), GpuError> {
    // SAFETY: each call only tries to dlopen a library.
    let (driver, blas) = unsafe { (cudarc::driver::sys::is_culib_present(), cudarc::cublas::sys::is_culib_present()) };
    if !driver {
        return Err(GpuError::Missing { what: "driver (libcuda)" });
    }
    if !nvrtc_present() {
        return Err(GpuError::Missing { what: "NVRTC (libnvrtc)" });
    }
    if !blas {
        return Err(GpuError::Missing { what: "cuBLAS (libcublas)" });
    }
    Ok(())
}

/// Trains on a [`Gpu`]: the real one or the emulated one.
pub struct CudaBackend<G: Gpu> {
    gpu: G,
    arena: Option<(Shape, Arena)>,
    error: Option<GpuError>,
    launches: usize,
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
        CudaBackend { gpu, arena: None, error: None, launches: 0 }
    }

    /// The device.
    pub fn gpu(&self) -> &G {
        &self.gpu
    }

    /// Kernel launches and GEMM calls so far (memory copies not counted).
    pub fn launches(&self) -> usize {
        self.launches
    }

    /// Bytes of device memory the current batch shape uses (activations,
    /// gradients, parameters and the batch), 0 before the first batch.
    pub fn device_bytes(&self) -> usize {
        self.arena.as_ref().map_or(0, |(_, a)| a.bytes)
    }

    /// The first device error since the last call, if any ([`Backend::run`]
    /// cannot return one; the trainer asks after each epoch).
    pub fn take_gpu_error(&mut self) -> Option<GpuError> {
        self.error.take()
    }

    fn arena(&mut self, cfg: &ModelConfig, shape: Shape) -> Result<Arena, GpuError> {
        match &self.arena {
            Some((s, a)) if *s == shape => Ok(*a),
            _ => {
                if let Some((_, old)) = self.arena.take() {
                    self.gpu.free(old.buf);
                }
                let a = Arena::new(&mut self.gpu, cfg, shape)?;
                self.arena = Some((shape, a));
                Ok(a)
            }
        }
    }

    /// [`Backend::run`] with its errors.
    pub fn try_run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, GpuError> {
        let Pass { dropout, scale, grads, log_rates, features } = pass;
        let shape = Shape {
            trials: batch.trials,
            observed: batch.observed,
            bins: batch.bins,
            params: params.len(),
            grad_mask: !batch.grad_mask.is_empty(),
        };
        let a = self.arena(cfg, shape)?;
        let gpu: &mut dyn Gpu = &mut self.gpu;
        upload_f32(gpu, a.params, &params.data)?;
        upload_f32(gpu, a.input, &batch.input)?;
        upload_f32(gpu, a.targets, &batch.targets)?;
        upload_f32(gpu, a.noise, &batch.noise)?;
        if shape.grad_mask {
            upload_f32(gpu, a.grad_mask, &batch.grad_mask)?;
        }
        let mut seeds = batch.seeds.clone();
        seeds.resize(batch.trials, 0);
        gpu.upload(a.seeds, bytemuck::cast_slice(&seeds))?;
        let mut step = step::Step {
            gpu,
            cfg,
            params,
            a,
            trials: batch.trials,
            observed: batch.observed,
            bins: batch.bins,
            has_grad_mask: shape.grad_mask,
            launches: 0,
        };
        let want = grads.is_some().then_some(scale);
        let sums = step.forward(dropout, want)?;
        if let Some(g) = grads {
            step.backward(scale)?;
            download_f32(step.gpu, a.grads, &mut g.data)?;
        }
        let rows = batch.trials * batch.bins;
        if let Some(out) = log_rates {
            download_f32(step.gpu, a.lr, &mut out[..rows * cfg.n_out])?;
        }
        if let Some((which, out)) = features {
            let src = match which {
                Features::Latents => a.l,
                Features::DecoderOutput => a.y2,
            };
            download_f32(step.gpu, src, &mut out[..rows * cfg.d_model()])?;
        }
        self.launches += step.launches;
        Ok(sums)
    }
}

impl<G: Gpu> Backend for CudaBackend<G> {
    fn name(&self) -> String {
        format!("cuda: {}", self.gpu.name())
    }

    fn run(&mut self, cfg: &ModelConfig, params: &Params, batch: &Batch, pass: Pass<'_>) -> LossSums {
        match self.try_run(cfg, params, batch, pass) {
            Ok(sums) => sums,
            Err(e) => {
                self.error.get_or_insert(e);
                LossSums { nll: f64::NAN, kl: f64::NAN, elements: 0 }
            }
        }
    }

    fn take_error(&mut self) -> Option<String> {
        self.take_gpu_error().map(|e| e.to_string())
    }
}
