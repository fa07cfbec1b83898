//! The real GPU through cudarc: the driver API for memory and launches, NVRTC
//! for the kernels (compiled once per process for the device's architecture),
//! cuBLAS for the GEMMs. Everything runs on one stream of its own (the legacy
//! default stream cannot be captured into a graph), and cuBLAS gets a
//! workspace of its own, as its documentation asks of graph capture.

use super::gpu::{Arg, BufId, DevPtr, Gpu, GpuError, GraphId, LaunchDims, Sgemm};
use super::kernels;
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaContext, CudaFunction, CudaGraph, CudaStream};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

fn call_err(what: impl Into<String>) -> impl FnOnce(cudarc::driver::DriverError) -> GpuError {
    let what = what.into();
    move |source| GpuError::Driver { what, source }
}

/// Check that the driver, NVRTC and cuBLAS libraries load, naming the first
/// missing one (cudarc would panic on it).
pub fn check_libraries() -> Result<(), GpuError> {
    // SAFETY: each call only tries to dlopen a library.
    let (driver, blas) = unsafe { (cudarc::driver::sys::is_culib_present(), cudarc::cublas::sys::is_culib_present()) };
    if !driver {
        return Err(GpuError::missing("driver (libcuda)", "cuda"));
    }
    if !kernels::nvrtc_present() {
        return Err(GpuError::missing("NVRTC (libnvrtc)", "nvrtc"));
    }
    if !blas {
        return Err(GpuError::missing("cuBLAS (libcublas)", "cublas"));
    }
    Ok(())
}

/// A CUDA device: its context, stream, cuBLAS handle and compiled kernels.
pub struct CudaGpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// cuBLAS's handle; `None` only while dropping (it goes before its workspace).
    blas: Option<cudarc::cublas::CudaBlas>,
    functions: HashMap<&'static str, CudaFunction>,
    buffers: Vec<Option<(CUdeviceptr, usize)>>,
    /// cuBLAS's workspace (bytes), set on the handle so that captured GEMMs allocate nothing.
    workspace: (CUdeviceptr, usize),
    capturing: bool,
    graphs: Graphs,
}

/// The graphs captured on one [`CudaGpu`]. CUDA's graph objects are not
/// internally synchronised: two threads must not use one at once. These are
/// owned by one `CudaGpu` and reached only through `&mut self`, so they move
/// between threads with it (a training session handed to a worker thread).
#[derive(Default)]
struct Graphs(Vec<Option<CudaGraph>>);

// SAFETY: exclusive ownership; every use goes through `&mut CudaGpu`, so no
// two threads touch a graph at once (see `Graphs`).
unsafe impl Send for Graphs {}

/// cuBLAS's workspace: 32 MiB, what its documentation recommends for Hopper.
const CUBLAS_WORKSPACE: usize = 32 << 20;

impl CudaGpu {
    /// Open device `ordinal`, after checking that the driver, NVRTC and cuBLAS
    /// libraries load (cudarc would panic on a missing one), and compile every
    /// kernel file for the device's architecture.
    pub fn new(ordinal: usize) -> Result<CudaGpu, GpuError> {
        check_libraries()?;
        let ctx = CudaContext::new(ordinal).map_err(|source| GpuError::NoDevice { ordinal, source })?;
        let stream = ctx.new_stream().map_err(call_err("create a stream"))?;
        let blas =
            cudarc::cublas::CudaBlas::new(stream.clone()).map_err(|source| GpuError::Blas { what: "init", source })?;
        // SAFETY: a fresh allocation, owned by this CudaGpu and freed in Drop.
        let ws = unsafe { cudarc::driver::result::malloc_sync(CUBLAS_WORKSPACE) }.map_err(call_err("cuMemAlloc"))?;
        // SAFETY: the handle is live; the workspace outlives it (freed after it in Drop).
        let status =
            unsafe { cudarc::cublas::sys::cublasSetWorkspace_v2(*blas.handle(), ws as *mut c_void, CUBLAS_WORKSPACE) };
        if let Err(source) = status.result() {
            // SAFETY: allocated above, not handed to anything that outlives this call.
            unsafe {
                let _ = cudarc::driver::result::free_sync(ws);
            }
            return Err(GpuError::Blas { what: "cublasSetWorkspace", source });
        }
        let (major, minor) = ctx.compute_capability().map_err(call_err("compute capability"))?;
        let arch: &'static str = Box::leak(format!("sm_{major}{minor}").into_boxed_str());
        let mut functions = HashMap::new();
        let cache = kernels::cache_dir();
        for file in &kernels::FILES {
            // Compiled once per GPU architecture and source, then read from the cache.
            let (ptx, _) = kernels::cached_ptx(file, arch, cache.as_deref())?;
            let ptx = cudarc::nvrtc::Ptx::from_src(ptx);
            let module = ctx.load_module(ptx).map_err(call_err(format!("load {}", file.file)))?;
            for &k in file.kernels {
                functions.insert(k, module.load_function(k).map_err(call_err(format!("load kernel {k}")))?);
            }
        }
        Ok(CudaGpu {
            ctx,
            stream,
            blas: Some(blas),
            functions,
            buffers: Vec::new(),
            workspace: (ws, CUBLAS_WORKSPACE),
            capturing: false,
            graphs: Graphs::default(),
        })
    }

    /// Refuse `what` while capturing: it would synchronise or allocate, which
    /// a capture cannot hold (CUDA would invalidate the capture).
    fn outside_capture(&self, what: &str) -> Result<(), GpuError> {
        if self.capturing {
            return Err(GpuError::Refused { what: what.into(), detail: "not allowed during stream capture".into() });
        }
        Ok(())
    }

    fn ptr(&self, p: DevPtr, len: usize, what: &str) -> Result<CUdeviceptr, GpuError> {
        match self.buffers.get(p.buf.0).copied().flatten() {
            Some((base, size)) if p.offset.checked_add(len).is_some_and(|end| end <= size) => {
                Ok(base + p.offset as u64)
            }
            _ => Err(GpuError::OutOfBounds { what: what.to_string() }),
        }
    }
}

impl Drop for CudaGpu {
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
        self.graphs.0.clear();
        self.blas = None;
        let (ws, _) = self.workspace;
        for (ptr, _) in self.buffers.drain(..).flatten().chain([(ws, 0)]) {
            // SAFETY: allocated by `alloc` in this context and freed once.
            unsafe {
                let _ = cudarc::driver::result::free_sync(ptr);
            }
        }
    }
}

impl Gpu for CudaGpu {
    fn name(&self) -> String {
        let name = self.ctx.name().unwrap_or_else(|_| "CUDA device".into());
        format!("{name} (cuda:{})", self.ctx.ordinal())
    }

    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError> {
        self.outside_capture("alloc")?;
        self.ctx.bind_to_thread().map_err(call_err("bind context"))?;
        // SAFETY: a fresh allocation, zeroed on the stream before any use.
        let ptr = unsafe { cudarc::driver::result::malloc_sync(bytes.max(1)) }.map_err(call_err("cuMemAlloc"))?;
        self.buffers.push(Some((ptr, bytes)));
        let id = BufId(self.buffers.len() - 1);
        self.zero(DevPtr { buf: id, offset: 0 }, bytes)?;
        Ok(id)
    }

    fn free(&mut self, buf: BufId) {
        if self.capturing {
            return;
        }
        if let Some(slot) = self.buffers.get_mut(buf.0) {
            if let Some((ptr, _)) = slot.take() {
                let _ = self.stream.synchronize();
                // SAFETY: allocated by `alloc`, no work pending after the synchronisation.
                unsafe {
                    let _ = cudarc::driver::result::free_sync(ptr);
                }
            }
        }
    }

    fn upload(&mut self, dst: DevPtr, data: &[u8]) -> Result<(), GpuError> {
        self.outside_capture("upload")?;
        let ptr = self.ptr(dst, data.len(), "upload")?;
        // SAFETY: in bounds; the host slice outlives the copy because we synchronise.
        unsafe { cudarc::driver::result::memcpy_htod_async(ptr, data, self.stream.cu_stream()) }
            .map_err(call_err("upload"))?;
        self.stream.synchronize().map_err(call_err("upload"))
    }

    fn download(&mut self, src: DevPtr, out: &mut [u8]) -> Result<(), GpuError> {
        self.outside_capture("download")?;
        let ptr = self.ptr(src, out.len(), "download")?;
        // SAFETY: in bounds; synchronised before `out` is read.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(out, ptr, self.stream.cu_stream()) }
            .map_err(call_err("download"))?;
        self.stream.synchronize().map_err(call_err("download"))
    }

    fn copy(&mut self, dst: DevPtr, src: DevPtr, bytes: usize) -> Result<(), GpuError> {
        let (d, s) = (self.ptr(dst, bytes, "copy")?, self.ptr(src, bytes, "copy")?);
        // SAFETY: both ranges in bounds of live allocations.
        unsafe { cudarc::driver::result::memcpy_dtod_async(d, s, bytes, self.stream.cu_stream()) }
            .map_err(call_err("copy"))
    }

    fn zero(&mut self, dst: DevPtr, bytes: usize) -> Result<(), GpuError> {
        let d = self.ptr(dst, bytes, "zero")?;
        // SAFETY: in bounds of a live allocation.
        unsafe { cudarc::driver::result::memset_d8_async(d, 0, bytes, self.stream.cu_stream()) }
            .map_err(call_err("zero"))
    }

    fn launch(&mut self, kernel: &'static str, dims: LaunchDims, args: &[Arg]) -> Result<(), GpuError> {
        let what = format!("launch {kernel}");
        let f = self
            .functions
            .get(kernel)
            .ok_or_else(|| GpuError::Refused { what: what.clone(), detail: "no such kernel in host/cuda".into() })?;
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            values.push(a.word(|p| self.ptr(p, 0, &what))?);
        }
        let mut params: Vec<*mut c_void> = values.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
        // SAFETY: one parameter pointer per kernel argument, each to 8 live bytes
        // holding the value in its low bytes (little endian, as the kernel reads it).
        unsafe {
            cudarc::driver::result::launch_kernel(
                f.cu_function(),
                (dims.grid.0, dims.grid.1, 1),
                (dims.block, 1, 1),
                dims.smem,
                self.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(call_err(what))
    }

    fn sgemm(&mut self, g: &Sgemm) -> Result<(), GpuError> {
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let (a, b, c) = (self.ptr(g.a, 0, "sgemm")?, self.ptr(g.b, 0, "sgemm")?, self.ptr(g.c, 0, "sgemm")?);
        let Some(blas) = self.blas.as_ref() else {
            return Err(GpuError::Refused { what: "sgemm".into(), detail: "cuBLAS already released".into() });
        };
        // SAFETY: the handle is bound to this stream; the backend sized the buffers for these shapes.
        unsafe {
            cudarc::cublas::result::sgemm(
                *blas.handle(),
                op(g.trans_a),
                op(g.trans_b),
                g.m as i32,
                g.n as i32,
                g.k as i32,
                &g.alpha,
                a as *const f32,
                g.lda as i32,
                b as *const f32,
                g.ldb as i32,
                &g.beta,
                c as *mut f32,
                g.ldc as i32,
            )
        }
        .map_err(|source| GpuError::Blas { what: "cublasSgemm", source })
    }

    fn begin_capture(&mut self) -> Result<(), GpuError> {
        self.outside_capture("begin_capture")?;
        let mode = cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
        self.stream.begin_capture(mode).map_err(call_err("begin stream capture"))?;
        self.capturing = true;
        Ok(())
    }

    fn end_capture(&mut self) -> Result<GraphId, GpuError> {
        if !self.capturing {
            return Err(GpuError::Refused { what: "end_capture".into(), detail: "no capture begun".into() });
        }
        self.capturing = false;
        let flags = cudarc::driver::sys::CUgraphInstantiate_flags(0);
        let graph = self.stream.end_capture(flags).map_err(call_err("end stream capture"))?;
        let graph = graph.ok_or_else(|| GpuError::Refused {
            what: "end_capture".into(),
            detail: "the capture recorded nothing".into(),
        })?;
        graph.upload().map_err(call_err("upload a graph"))?;
        self.graphs.0.push(Some(graph));
        Ok(GraphId(self.graphs.0.len() - 1))
    }

    fn replay(&mut self, graph: GraphId) -> Result<(), GpuError> {
        self.outside_capture("replay")?;
        let what = format!("replay of graph {}", graph.0);
        match self.graphs.0.get(graph.0).and_then(|g| g.as_ref()) {
            Some(g) => g.launch().map_err(call_err(what)),
            None => Err(GpuError::Refused { what, detail: "no such graph".into() }),
        }
    }

    fn drop_graph(&mut self, graph: GraphId) {
        if let Some(slot) = self.graphs.0.get_mut(graph.0) {
            *slot = None;
        }
    }
}
