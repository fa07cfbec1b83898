//! The CUDA execution model on the CPU, for tests: the kernels of `host/cuda/`
//! compiled by the host C++ compiler against `host/cuda/emu/shim.h` (threads
//! of a block as OS threads, `__syncthreads` as a barrier; several blocks at
//! once in a seeded random order; shuffles and `__syncwarp` within a warp;
//! shared memory per block, NaN bytes until written), device memory as host
//! buffers, `cublasSgemm` as a naive column-major GEMM with cuBLAS's exact
//! argument conventions, and stream capture as a recorded list of calls that
//! a replay runs again (refusing, as CUDA does, work that cannot be captured).

use super::gpu::{Arg, BufId, DevPtr, Gpu, GpuError, GraphId, LaunchDims, Sgemm};
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CString};

extern "C" {
    fn lflow_emu_launch(
        name: *const c_char,
        gx: c_uint,
        gy: c_uint,
        gz: c_uint,
        bx: c_uint,
        by: c_uint,
        bz: c_uint,
        smem: c_ulong,
        args: *mut *mut c_void,
        broke: *mut c_char,
        broke_len: c_ulong,
    ) -> c_int;
}

/// Bytes of guard before and after every buffer: NaN bytes (0xFF) that a
/// kernel must neither write (checked after every launch) nor read (a NaN
/// that reaches a result shows).
const GUARD: usize = 4096;
const GUARD_WORDS: usize = GUARD / 8;

/// One call recorded during a capture.
#[derive(Clone, Debug)]
enum Recorded {
    Launch(&'static str, LaunchDims, Vec<Arg>),
    Sgemm(Sgemm),
    Copy(DevPtr, DevPtr, usize),
    Zero(DevPtr, usize),
}

/// A capture in progress: what it recorded, and the first call it had to
/// refuse (which, as in CUDA, invalidates the whole capture).
#[derive(Default)]
struct Capture {
    calls: Vec<Recorded>,
    broken: Option<String>,
}

/// Device memory and kernels emulated on the CPU.
#[derive(Default)]
pub struct EmulatedGpu {
    // 8-byte words keep every buffer aligned for f64 and u64 kernels' arguments.
    buffers: Vec<Option<Vec<u64>>>,
    sizes: Vec<usize>,
    launches: usize,
    uploaded: usize,
    capture: Option<Capture>,
    graphs: Vec<Option<Vec<Recorded>>>,
    captures: usize,
    replays: usize,
    cannot_capture: bool,
}

impl EmulatedGpu {
    /// An empty emulated device.
    pub fn new() -> EmulatedGpu {
        EmulatedGpu::default()
    }

    /// Kernel launches and GEMMs so far.
    pub fn launches(&self) -> usize {
        self.launches
    }

    /// Bytes copied from the host so far.
    pub fn uploaded(&self) -> usize {
        self.uploaded
    }

    /// A device whose driver refuses stream capture (as an old driver or a
    /// library that cannot be captured would): for tests of the fallback.
    pub fn without_capture(mut self) -> Self {
        self.cannot_capture = true;
        self
    }

    /// Graphs captured so far.
    pub fn captures(&self) -> usize {
        self.captures
    }

    /// Graph replays so far.
    pub fn replays(&self) -> usize {
        self.replays
    }

    /// Kernel launches and GEMMs in a graph (its nodes), if it exists.
    pub fn graph_len(&self, graph: GraphId) -> Option<usize> {
        self.graphs
            .get(graph.0)?
            .as_ref()
            .map(|calls| calls.iter().filter(|c| !matches!(c, Recorded::Copy(..) | Recorded::Zero(..))).count())
    }

    /// Refuse `what` while capturing (it cannot be captured: the capture
    /// is invalidated, as CUDA's is).
    fn outside_capture(&mut self, what: &str) -> Result<(), GpuError> {
        match self.capture.as_mut() {
            None => Ok(()),
            Some(c) => {
                let detail = "not allowed during stream capture".to_string();
                c.broken.get_or_insert_with(|| format!("{what}: {detail}"));
                Err(GpuError::Refused { what: what.into(), detail })
            }
        }
    }

    /// Record `call` if capturing (after checking its buffers exist); `false` to run it now.
    fn recorded(&mut self, call: &Recorded) -> Result<bool, GpuError> {
        if self.capture.is_none() {
            return Ok(false);
        }
        self.live(call, "capture")?;
        if let Some(c) = self.capture.as_mut() {
            c.calls.push(call.clone());
        }
        Ok(true)
    }

    /// Every buffer `call` names is allocated.
    fn live(&self, call: &Recorded, what: &str) -> Result<(), GpuError> {
        let ptrs: Vec<DevPtr> = match call {
            Recorded::Launch(_, _, args) => {
                args.iter().filter_map(|a| if let Arg::Ptr(p) = a { Some(*p) } else { None }).collect()
            }
            Recorded::Sgemm(g) => vec![g.a, g.b, g.c],
            Recorded::Copy(d, s, _) => vec![*d, *s],
            Recorded::Zero(d, _) => vec![*d],
        };
        match ptrs.iter().find(|p| self.buffers.get(p.buf.0).is_none_or(|b| b.is_none())) {
            Some(p) => Err(GpuError::Refused {
                what: what.into(),
                detail: format!("buffer {} is not allocated (freed after the graph was captured?)", p.buf.0),
            }),
            None => Ok(()),
        }
    }

    fn bytes(&mut self, p: DevPtr, len: usize, what: &str) -> Result<&mut [u8], GpuError> {
        let size = self.sizes.get(p.buf.0).copied().unwrap_or(0);
        let words = self.buffers.get_mut(p.buf.0).and_then(|b| b.as_mut());
        match words {
            Some(w) if p.offset.checked_add(len).is_some_and(|end| end <= size) => {
                Ok(&mut bytemuck::cast_slice_mut::<u64, u8>(w)[GUARD + p.offset..GUARD + p.offset + len])
            }
            _ => Err(GpuError::OutOfBounds { what: what.to_string() }),
        }
    }

    fn address(&mut self, p: DevPtr, what: &str) -> Result<u64, GpuError> {
        Ok(self.bytes(p, 0, what)?.as_mut_ptr() as u64)
    }

    fn f32_at(&mut self, p: DevPtr, elems: usize, what: &str) -> Result<Vec<f32>, GpuError> {
        Ok(bytemuck::pod_collect_to_vec(self.bytes(p, elems * 4, what)?))
    }

    /// After `what`: every buffer's guards still hold their NaN bytes, or the
    /// first write outside a buffer (within 4 KiB of it, of a byte other than
    /// 0xFF). Every damaged guard is restored, so the next launch starts clean.
    fn check_guards(&mut self, what: &str) -> Result<(), GpuError> {
        let mut first = None;
        for (id, (words, size)) in self.buffers.iter_mut().zip(&self.sizes).enumerate() {
            let Some(w) = words.as_mut() else { continue };
            let bytes = bytemuck::cast_slice_mut::<u64, u8>(w);
            let end = GUARD + size;
            let before = bytes[..GUARD].iter().rposition(|b| *b != 0xFF);
            let after = bytes[end..].iter().position(|b| *b != 0xFF);
            let at = match (before, after) {
                (Some(i), _) => format!("at byte offset -{}", GUARD - i),
                (None, Some(i)) => format!("at byte offset {}", size + i),
                (None, None) => continue,
            };
            bytes[..GUARD].fill(0xFF);
            bytes[end..].fill(0xFF);
            first.get_or_insert_with(|| format!("{what}: a write {at} of buffer {id}, outside its {size} bytes"));
        }
        first.map_or(Ok(()), |what| Err(GpuError::OutOfBounds { what }))
    }
}

impl Gpu for EmulatedGpu {
    fn name(&self) -> String {
        "emulated on the CPU".into()
    }

    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError> {
        self.outside_capture("alloc")?;
        // Zeroed, as the backend's allocations are, between NaN guards; the
        // after-guard starts right at the buffer's last byte.
        let mut words = vec![u64::MAX; 2 * GUARD_WORDS + bytes.div_ceil(8) + 1];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[GUARD..GUARD + bytes].fill(0);
        self.buffers.push(Some(words));
        self.sizes.push(bytes);
        Ok(BufId(self.buffers.len() - 1))
    }

    fn free(&mut self, buf: BufId) {
        if self.outside_capture("free").is_err() {
            return;
        }
        if let Some(slot) = self.buffers.get_mut(buf.0) {
            *slot = None;
        }
    }

    fn upload(&mut self, dst: DevPtr, data: &[u8]) -> Result<(), GpuError> {
        self.outside_capture("upload")?;
        self.bytes(dst, data.len(), "upload")?.copy_from_slice(data);
        self.uploaded += data.len();
        Ok(())
    }

    fn download(&mut self, src: DevPtr, out: &mut [u8]) -> Result<(), GpuError> {
        self.outside_capture("download")?;
        out.copy_from_slice(self.bytes(src, out.len(), "download")?);
        Ok(())
    }

    fn copy(&mut self, dst: DevPtr, src: DevPtr, bytes: usize) -> Result<(), GpuError> {
        if self.recorded(&Recorded::Copy(dst, src, bytes))? {
            return Ok(());
        }
        let data = self.bytes(src, bytes, "copy")?.to_vec();
        self.bytes(dst, bytes, "copy")?.copy_from_slice(&data);
        Ok(())
    }

    fn zero(&mut self, dst: DevPtr, bytes: usize) -> Result<(), GpuError> {
        if self.recorded(&Recorded::Zero(dst, bytes))? {
            return Ok(());
        }
        self.bytes(dst, bytes, "zero")?.fill(0);
        Ok(())
    }

    fn launch(&mut self, kernel: &'static str, dims: LaunchDims, args: &[Arg]) -> Result<(), GpuError> {
        if self.recorded(&Recorded::Launch(kernel, dims, args.to_vec()))? {
            return Ok(());
        }
        let what = format!("launch {kernel}");
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            values.push(a.word(|p| self.address(p, &what))?);
        }
        // Each argument sits in the low bytes of its own 8-byte slot (little endian).
        let mut pointers: Vec<*mut c_void> = values.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
        let name = CString::new(kernel).map_err(|_| GpuError::Refused { what: what.clone(), detail: "name".into() })?;
        // What the kernel broke, if it did (race, static shared memory), NUL-terminated.
        let mut broke: Vec<c_char> = vec![0; 512];
        // SAFETY: the emulator reads one argument per kernel parameter from
        // `pointers`, each pointing to 8 live bytes; every device pointer is the
        // start of a live buffer plus an in-bounds offset. Kernels index within
        // the shapes the backend sized those buffers for.
        let code = unsafe {
            lflow_emu_launch(
                name.as_ptr(),
                dims.grid.0,
                dims.grid.1,
                1,
                dims.block,
                1,
                1,
                dims.smem as c_ulong,
                pointers.as_mut_ptr(),
                broke.as_mut_ptr(),
                broke.len() as c_ulong,
            )
        };
        self.launches += 1;
        self.check_guards(&what)?;
        match code {
            0 => Ok(()),
            -1 => Err(GpuError::Refused { what, detail: "no such kernel in the emulator".into() }),
            -3 => {
                let end = broke.iter().position(|c| *c == 0).unwrap_or(broke.len());
                let text: Vec<u8> = broke[..end].iter().map(|c| *c as u8).collect();
                Err(GpuError::Refused { what, detail: String::from_utf8_lossy(&text).into_owned() })
            }
            _ => Err(GpuError::Refused { what, detail: format!("bad launch shape {dims:?}") }),
        }
    }

    fn sgemm(&mut self, g: &Sgemm) -> Result<(), GpuError> {
        if self.recorded(&Recorded::Sgemm(*g))? {
            return Ok(());
        }
        // Column-major: element (i, j) of a matrix with leading dimension ld is at i + j * ld.
        let (rows_a, cols_a) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
        let (rows_b, cols_b) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
        let extent = |rows: usize, cols: usize, ld: usize| if cols == 0 { 0 } else { (cols - 1) * ld + rows };
        if g.lda < rows_a.max(1) || g.ldb < rows_b.max(1) || g.ldc < g.m.max(1) {
            return Err(GpuError::Refused {
                what: "sgemm".into(),
                detail: format!("leading dimension too small: {g:?}"),
            });
        }
        let a = self.f32_at(g.a, extent(rows_a, cols_a, g.lda), "sgemm A")?;
        let b = self.f32_at(g.b, extent(rows_b, cols_b, g.ldb), "sgemm B")?;
        let mut c = self.f32_at(g.c, extent(g.m, g.n, g.ldc), "sgemm C")?;
        for j in 0..g.n {
            for i in 0..g.m {
                let mut acc = 0.0f32;
                for l in 0..g.k {
                    let x = if g.trans_a { a[l + i * g.lda] } else { a[i + l * g.lda] };
                    let y = if g.trans_b { b[j + l * g.ldb] } else { b[l + j * g.ldb] };
                    acc += x * y;
                }
                let old = &mut c[i + j * g.ldc];
                *old = if g.beta == 0.0 { g.alpha * acc } else { g.alpha * acc + g.beta * *old };
            }
        }
        let n = c.len();
        self.bytes(g.c, n * 4, "sgemm C")?.copy_from_slice(bytemuck::cast_slice(&c));
        self.launches += 1;
        self.check_guards("sgemm")
    }

    fn begin_capture(&mut self) -> Result<(), GpuError> {
        self.outside_capture("begin_capture")?;
        if self.cannot_capture {
            let detail = "stream capture is not supported by this device".into();
            return Err(GpuError::Refused { what: "begin_capture".into(), detail });
        }
        self.capture = Some(Capture::default());
        Ok(())
    }

    fn end_capture(&mut self) -> Result<GraphId, GpuError> {
        let Some(c) = self.capture.take() else {
            return Err(GpuError::Refused { what: "end_capture".into(), detail: "no capture begun".into() });
        };
        if let Some(first) = c.broken {
            return Err(GpuError::Refused {
                what: "end_capture".into(),
                detail: format!("capture invalidated by {first}"),
            });
        }
        self.graphs.push(Some(c.calls));
        self.captures += 1;
        Ok(GraphId(self.graphs.len() - 1))
    }

    fn replay(&mut self, graph: GraphId) -> Result<(), GpuError> {
        self.outside_capture("replay")?;
        let what = format!("replay of graph {}", graph.0);
        let Some(calls) = self.graphs.get(graph.0).cloned().flatten() else {
            return Err(GpuError::Refused { what, detail: "no such graph".into() });
        };
        for call in &calls {
            self.live(call, &what)?;
        }
        self.replays += 1;
        for call in calls {
            match call {
                Recorded::Launch(kernel, dims, args) => self.launch(kernel, dims, &args)?,
                Recorded::Sgemm(g) => self.sgemm(&g)?,
                Recorded::Copy(d, s, n) => self.copy(d, s, n)?,
                Recorded::Zero(d, n) => self.zero(d, n)?,
            }
        }
        Ok(())
    }

    fn drop_graph(&mut self, graph: GraphId) {
        if let Some(slot) = self.graphs.get_mut(graph.0) {
            *slot = None;
        }
    }
}
