//! Where a model trains: the one place that names the backends ([`Device`],
//! [`AnyBackend`]).

use crate::config::ModelConfig;
use crate::train::backend::{Backend, BackendError, Batch, Pass, Resident};
use crate::train::cpu::CpuBackend;
use crate::train::cuda::{driver::CudaGpu, CudaBackend};
use crate::train::gemm::GemmImpl;
use crate::train::model::LossSums;
use crate::train::params::Params;

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
    Cuda(Box<CudaBackend<CudaGpu>>),
}

/// A [`Device`] that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The CPU's worker threads could not start.
    #[error("cannot start the worker threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// No usable CUDA device (libraries, driver, device, kernels).
    #[error(transparent)]
    Cuda(crate::train::cuda::GpuError),
}

impl AnyBackend {
    /// Open `device` (`threads` is the CPU backend's thread count, 0: one per core).
    pub fn open(device: Device, threads: usize) -> Result<AnyBackend, OpenError> {
        match device {
            Device::Cpu => CpuBackend::new(threads).map(AnyBackend::Cpu).map_err(OpenError::Threads),
            Device::Cuda(n) => CudaBackend::open(n).map(|b| AnyBackend::Cuda(Box::new(b))).map_err(OpenError::Cuda),
        }
    }
}

impl AnyBackend {
    /// The same backend with the CPU's matrix products through `gemm` (a GPU ignores it).
    pub fn with_gemm(self, gemm: GemmImpl) -> AnyBackend {
        match self {
            AnyBackend::Cpu(c) => AnyBackend::Cpu(c.with_gemm(gemm)),
            other => other,
        }
    }

    /// Kernel launches and GEMM calls so far on a GPU (`None` on the CPU).
    pub fn launches(&self) -> Option<usize> {
        match self {
            AnyBackend::Cpu(_) => None,
            AnyBackend::Cuda(b) => Some(b.launches()),
        }
    }

    /// Graph replays so far (the GPU's; `None` on the CPU).
    pub fn graph_replays(&self) -> Option<usize> {
        match self {
            AnyBackend::Cpu(_) => None,
            AnyBackend::Cuda(b) => Some(b.graph_replays()),
        }
    }

    /// The CPU backend's worker threads (0 on a GPU).
    pub fn threads(&self) -> usize {
        match self {
            AnyBackend::Cpu(c) => c.threads(),
            AnyBackend::Cuda(_) => 0,
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

    fn run(
        &mut self,
        cfg: &ModelConfig,
        params: &Params,
        batch: &Batch,
        pass: Pass<'_>,
    ) -> Result<LossSums, BackendError> {
        match self {
            AnyBackend::Cpu(b) => b.run(cfg, params, batch, pass),
            AnyBackend::Cuda(b) => b.run(cfg, params, batch, pass),
        }
    }

    fn resident(&mut self) -> Option<&mut dyn Resident> {
        match self {
            AnyBackend::Cpu(b) => b.resident(),
            AnyBackend::Cuda(b) => b.resident(),
        }
    }
}
