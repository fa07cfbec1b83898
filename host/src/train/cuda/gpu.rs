//! The device layer the CUDA backend drives: memory, kernel launches by name
//! and `cublasSgemm`'s column-major GEMM. Two implementations: the real GPU
//! through cudarc ([`super::driver::CudaGpu`]) and, for tests on machines
//! without one, the kernels compiled for the CPU ([`super::emulator::EmulatedGpu`]).

/// A device allocation, owned by the [`Gpu`] that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufId(pub(crate) usize);

/// A recorded sequence of device work ([`Gpu::end_capture`]), replayed with
/// one call ([`Gpu::replay`]); owned by the [`Gpu`] that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphId(pub(crate) usize);

/// A place in device memory: a buffer and a byte offset into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevPtr {
    /// The allocation.
    pub buf: BufId,
    /// Bytes from its start.
    pub offset: usize,
}

impl DevPtr {
    /// The pointer `elems` f32 elements further on.
    pub fn at_f32(self, elems: usize) -> DevPtr {
        DevPtr { buf: self.buf, offset: self.offset + 4 * elems }
    }
}

/// One kernel argument, as `cuLaunchKernel` receives it.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// A device pointer.
    Ptr(DevPtr),
    /// A null pointer (an optional input left out).
    Null,
    /// `int`.
    I32(i32),
    /// `long` (64-bit).
    I64(i64),
    /// `unsigned long long`.
    U64(u64),
    /// `float`.
    F32(f32),
}

impl Arg {
    /// The argument as `cuLaunchKernel` reads it: its bits in the low bytes of
    /// an 8-byte slot (little endian); `address` resolves a device pointer.
    pub fn word(self, address: impl FnOnce(DevPtr) -> Result<u64, GpuError>) -> Result<u64, GpuError> {
        Ok(match self {
            Arg::Ptr(p) => address(p)?,
            Arg::Null => 0,
            Arg::I32(v) => v as u32 as u64,
            Arg::I64(v) => v as u64,
            Arg::U64(v) => v,
            Arg::F32(v) => v.to_bits() as u64,
        })
    }
}

/// Grid, block and dynamic shared memory of a launch (blocks are one-dimensional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x and y.
    pub grid: (u32, u32),
    /// Threads per block.
    pub block: u32,
    /// Dynamic shared memory in bytes.
    pub smem: u32,
}

/// `C = alpha op(A) op(B) + beta C` in cuBLAS's column-major convention
/// (`C` is `m x n`, `op(A)` is `m x k`, `op(B)` is `k x n`); `beta = 0` does not read `C`.
#[derive(Clone, Copy, Debug)]
pub struct Sgemm {
    /// Transpose A.
    pub trans_a: bool,
    /// Transpose B.
    pub trans_b: bool,
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Scale of the product.
    pub alpha: f32,
    /// `A` and its leading dimension.
    pub a: DevPtr,
    /// Leading dimension of `A`.
    pub lda: usize,
    /// `B`.
    pub b: DevPtr,
    /// Leading dimension of `B`.
    pub ldb: usize,
    /// Scale of the old `C`.
    pub beta: f32,
    /// `C`.
    pub c: DevPtr,
    /// Leading dimension of `C`.
    pub ldc: usize,
}

/// What can go wrong on the GPU side. The CUDA libraries' own errors are
/// kept as sources.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// A CUDA library could not be loaded.
    #[error(
        "the CUDA {what} library could not be loaded: tried {} (CUDA 12 or 13; no NVIDIA driver or toolkit on \
         this machine, or not on the library path: set LD_LIBRARY_PATH to the folder that holds it); train on \
         the CPU instead with --device cpu",
        tried.join(", ")
    )]
    Missing {
        /// Which library (`driver (libcuda)`, `NVRTC (libnvrtc)`, `cuBLAS (libcublas)`).
        what: &'static str,
        /// The file names the loader tried, in order.
        tried: Vec<String>,
    },
    /// The driver loaded but there is no such device.
    #[error("no CUDA device {ordinal}; train on the CPU instead with --device cpu")]
    NoDevice {
        /// The requested ordinal.
        ordinal: usize,
        /// The driver's error.
        #[source]
        source: cudarc::driver::DriverError,
    },
    /// NVRTC rejected a kernel file.
    #[error("NVRTC could not compile {file}")]
    Compile {
        /// The `.cu` file.
        file: &'static str,
        /// NVRTC's error, with its log.
        #[source]
        source: cudarc::nvrtc::CompileError,
    },
    /// A driver call (memory, copy, launch) failed.
    #[error("CUDA {what} failed")]
    Driver {
        /// What was being done (`launch attention_forward`, `upload`, ...).
        what: String,
        /// The driver's error.
        #[source]
        source: cudarc::driver::DriverError,
    },
    /// A cuBLAS call failed.
    #[error("cuBLAS {what} failed")]
    Blas {
        /// What was being done.
        what: &'static str,
        /// cuBLAS's error.
        #[source]
        source: cudarc::cublas::result::CublasError,
    },
    /// A call the device layer refused before reaching any library: an unknown
    /// kernel, a bad launch shape, a call out of order.
    #[error("{what}: {detail}")]
    Refused {
        /// What was being done.
        what: String,
        /// Why.
        detail: String,
    },
    /// A model option the CUDA kernels do not compute.
    #[error("the CUDA backend does not compute {what} (the CPU backend does: --device cpu)")]
    Unsupported {
        /// The option.
        what: &'static str,
    },
    /// A buffer access outside its allocation (a bug in the caller, caught).
    #[error("{what}: access outside a device buffer")]
    OutOfBounds {
        /// What was being done.
        what: String,
    },
}

impl GpuError {
    /// The library `lib` (`cuda`, `nvrtc`, `cublas`) is missing: the error
    /// names the files cudarc's loader tries for it.
    pub fn missing(what: &'static str, lib: &str) -> GpuError {
        let mut tried: Vec<String> = Vec::new();
        for name in cudarc::get_lib_name_candidates(lib) {
            if !tried.contains(&name) {
                tried.push(name);
            }
        }
        GpuError::Missing { what, tried }
    }
}

/// A CUDA device as the backend uses it. Calls are ordered (one stream).
pub trait Gpu {
    /// A short description (device name or `emulated`).
    fn name(&self) -> String;
    /// A zeroed allocation of `bytes` bytes.
    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError>;
    /// Release an allocation.
    fn free(&mut self, buf: BufId);
    /// Copy host bytes to the device.
    fn upload(&mut self, dst: DevPtr, data: &[u8]) -> Result<(), GpuError>;
    /// Copy device bytes to the host (waits for the work before it).
    fn download(&mut self, src: DevPtr, out: &mut [u8]) -> Result<(), GpuError>;
    /// Copy `bytes` bytes on the device.
    fn copy(&mut self, dst: DevPtr, src: DevPtr, bytes: usize) -> Result<(), GpuError>;
    /// Zero `bytes` bytes.
    fn zero(&mut self, dst: DevPtr, bytes: usize) -> Result<(), GpuError>;
    /// Launch a kernel of `host/cuda/` by name.
    fn launch(&mut self, kernel: &'static str, dims: LaunchDims, args: &[Arg]) -> Result<(), GpuError>;
    /// `cublasSgemm`.
    fn sgemm(&mut self, g: &Sgemm) -> Result<(), GpuError>;
    /// Start recording the launches, GEMMs, copies and zeroings that follow
    /// into a graph instead of running them (CUDA stream capture). Until
    /// [`Gpu::end_capture`], uploads, downloads, allocations and frees are refused.
    fn begin_capture(&mut self) -> Result<(), GpuError>;
    /// Finish recording: the graph of what was recorded, ready to replay.
    /// After an error in between, call it anyway (and drop what it returns)
    /// to leave capture.
    fn end_capture(&mut self) -> Result<GraphId, GpuError>;
    /// Run a recorded graph: its work, in its order, on the buffers it
    /// recorded (which must still be allocated) with their current contents.
    fn replay(&mut self, graph: GraphId) -> Result<(), GpuError>;
    /// Release a graph.
    fn drop_graph(&mut self, graph: GraphId);
}

/// Upload f32 values.
pub fn upload_f32(gpu: &mut dyn Gpu, dst: DevPtr, data: &[f32]) -> Result<(), GpuError> {
    gpu.upload(dst, bytemuck::cast_slice(data))
}

/// Download f32 values.
pub fn download_f32(gpu: &mut dyn Gpu, src: DevPtr, out: &mut [f32]) -> Result<(), GpuError> {
    gpu.download(src, bytemuck::cast_slice_mut(out))
}
