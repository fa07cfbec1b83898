//! The CUDA C sources of `host/cuda/` (one file per model part) and their
//! compilation with NVRTC. `common.cuh` is inlined, so every file compiles on
//! its own, with no include path at run time.

use super::gpu::GpuError;
use std::path::{Path, PathBuf};

/// The shared header every kernel file includes.
pub const COMMON: &str = include_str!("../../../cuda/common.cuh");

/// A kernel file and the kernels it defines.
#[derive(Clone, Copy, Debug)]
pub struct KernelFile {
    /// File name under `host/cuda/`.
    pub file: &'static str,
    /// Its source.
    pub source: &'static str,
    /// The `extern "C"` kernels in it.
    pub kernels: &'static [&'static str],
}

/// Every kernel file of the backend.
pub const FILES: [KernelFile; 8] = [
    KernelFile {
        file: "encoder.cu",
        source: include_str!("../../../cuda/encoder.cu"),
        kernels: &["gather_input", "dropout_masks", "gru_forward", "gru_backward"],
    },
    KernelFile {
        file: "latent.cu",
        source: include_str!("../../../cuda/latent.cu"),
        kernels: &[
            "potential_taps",
            "posterior_sample",
            "langevin_forward",
            "assemble_latents",
            "langevin_backward",
            "potential_kernel_grad",
            "posterior_backward",
        ],
    },
    KernelFile {
        file: "attention.cu",
        source: include_str!("../../../cuda/attention.cu"),
        kernels: &["attention_forward", "attention_backward"],
    },
    KernelFile {
        file: "layer_norm.cu",
        source: include_str!("../../../cuda/layer_norm.cu"),
        kernels: &["layer_norm_forward", "layer_norm_backward", "layer_norm_param_grads"],
    },
    KernelFile {
        file: "feed_forward.cu",
        source: include_str!("../../../cuda/feed_forward.cu"),
        kernels: &["add_bias", "column_sums", "residual_dropout", "relu_dropout", "mul_mask", "split_latent_grads"],
    },
    KernelFile { file: "loss.cu", source: include_str!("../../../cuda/loss.cu"), kernels: &["poisson_kl_loss"] },
    KernelFile { file: "batch.cu", source: include_str!("../../../cuda/batch.cu"), kernels: &["assemble_batch"] },
    KernelFile { file: "adam.cu", source: include_str!("../../../cuda/adam.cu"), kernels: &["adam_step"] },
];

impl KernelFile {
    /// The source with `common.cuh` inlined: what NVRTC compiles.
    pub fn standalone(&self) -> String {
        self.source.replace("#include \"common.cuh\"", COMMON)
    }
}

/// Whether NVRTC can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The loaded NVRTC's version `(major, minor)`, `None` without NVRTC.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    if !nvrtc_present() {
        return None;
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loaded; both pointers are to live integers.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (status == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// NVRTC options every compile uses. `--fmad=true` (NVRTC's default) lets
/// multiply-adds contract to FMA: the kernels agree with the CPU backend to
/// rounding, not to the bit (the parity tests' tolerances).
pub fn nvrtc_options() -> Vec<String> {
    vec!["--std=c++17".into(), "--fmad=true".into()]
}

/// Compile one kernel file to PTX for a virtual architecture (`compute_80`, ...).
pub fn compile_ptx(file: &KernelFile, arch: &'static str) -> Result<String, GpuError> {
    if !nvrtc_present() {
        return Err(GpuError::missing("NVRTC (libnvrtc)", "nvrtc"));
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        options: nvrtc_options(),
        name: Some(file.file.to_string()),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(file.standalone(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(source) => Err(GpuError::Compile { file: file.file, source }),
    }
}

/// Where compiled kernels are kept between runs: `$LFLOW_KERNEL_CACHE`, else
/// `$XDG_CACHE_HOME/lflow/kernels`, else `~/.cache/lflow/kernels`; `None`
/// (no cache) when none of them is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("LFLOW_KERNEL_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("lflow/kernels")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/lflow/kernels")))
}

/// The cache file of `file` compiled for `arch` (`sm_90`, `compute_80`): named
/// by the architecture, the file and a SHA-256 of everything the PTX depends
/// on (the source with its header inlined, the options, the NVRTC version).
pub fn cache_path(dir: &Path, file: &KernelFile, arch: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(file.standalone().as_bytes());
    h.update(nvrtc_options().join(" ").as_bytes());
    h.update(format!("{arch} {:?}", nvrtc_version()).as_bytes());
    let hex: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(arch).join(format!("{}-{hex}.ptx", file.file))
}

/// `file`'s PTX for `arch`, from the cache in `dir` when it holds it, else
/// compiled by NVRTC and written there (atomically; a cache that cannot be
/// written is skipped, never an error). Returns the PTX and whether it came
/// from the cache.
pub fn cached_ptx(file: &KernelFile, arch: &'static str, dir: Option<&Path>) -> Result<(String, bool), GpuError> {
    let path = dir.map(|d| cache_path(d, file, arch));
    // The entry is the PTX and a last line with its SHA-256: a truncated or
    // altered entry is compiled again.
    if let Some(text) = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        if let Some((ptx, sum)) = text.rsplit_once(SUM_LINE) {
            if sum.trim_end() == sha256_hex(ptx) {
                return Ok((ptx.to_string(), true));
            }
        }
    }
    let ptx = compile_ptx(file, arch)?;
    if let Some(p) = &path {
        let _ = p.parent().map(std::fs::create_dir_all);
        let entry = format!("{ptx}{SUM_LINE}{}\n", sha256_hex(&ptx));
        let _ = crate::io::write_atomically(p, entry.as_bytes());
    }
    Ok((ptx, false))
}

/// The line that ends a cache entry, before the PTX's SHA-256.
const SUM_LINE: &str = "\n// lflow ptx sha256 ";

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What `ptxas -v` says of one kernel compiled to machine code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelResources {
    /// Kernel name.
    pub kernel: String,
    /// Real architecture (`sm_80`, ...).
    pub arch: String,
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory in bytes.
    pub shared_bytes: u32,
    /// Bytes spilled to local memory (stores plus loads).
    pub spill_bytes: u32,
    /// Stack frame in bytes.
    pub stack_bytes: u32,
}

/// Parse the `-v` report of `ptxas` (one entry per kernel).
pub fn parse_ptxas_report(report: &str, arch: &str) -> Vec<KernelResources> {
    let mut out: Vec<KernelResources> = Vec::new();
    let number_before = |line: &str, unit: &str| -> Option<u32> {
        let at = line.find(unit)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    for line in report.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let kernel = rest.split('\'').next().unwrap_or_default().to_string();
            out.push(KernelResources {
                kernel,
                arch: arch.to_string(),
                registers: 0,
                shared_bytes: 0,
                spill_bytes: 0,
                stack_bytes: 0,
            });
        } else if let Some(k) = out.last_mut() {
            if line.contains("spill stores") {
                k.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                k.spill_bytes = number_before(line, "bytes spill stores").unwrap_or(0)
                    + number_before(line, "bytes spill loads").unwrap_or(0);
            }
            if line.contains("Used") && line.contains("registers") {
                k.registers = number_before(line, "registers").unwrap_or(0);
                k.shared_bytes = number_before(line, "bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptxas_report_is_parsed() {
        let report = "ptxas info    : 0 bytes gmem\n\
            ptxas info    : Compiling entry function 'layer_norm_forward' for 'sm_80'\n\
            ptxas info    : Function properties for layer_norm_forward\n\
            \x20   8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
            ptxas info    : Used 23 registers, 128 bytes smem, 400 bytes cmem[0]\n\
            ptxas info    : Compiling entry function 'add_bias' for 'sm_80'\n\
            ptxas info    : Function properties for add_bias\n\
            \x20   0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
            ptxas info    : Used 10 registers, 376 bytes cmem[0]\n";
        let k = parse_ptxas_report(report, "sm_80");
        assert_eq!(k.len(), 2);
        assert_eq!((k[0].kernel.as_str(), k[0].registers, k[0].shared_bytes), ("layer_norm_forward", 23, 128));
        assert_eq!((k[0].spill_bytes, k[0].stack_bytes), (16, 8));
        assert_eq!((k[1].kernel.as_str(), k[1].registers, k[1].shared_bytes, k[1].spill_bytes), ("add_bias", 10, 0, 0));
    }

    #[test]
    fn a_missing_library_error_names_the_cuda_12_and_13_files_tried_and_the_path_variable() {
        let e = GpuError::missing("NVRTC (libnvrtc)", "nvrtc").to_string();
        for want in ["libnvrtc.so.13", "libnvrtc.so.12", "LD_LIBRARY_PATH", "--device cpu"] {
            assert!(e.contains(want), "{want} missing from: {e}");
        }
        // .so.13 is tried before .so.12: a machine with both loads CUDA 13.
        assert!(e.find("libnvrtc.so.13") < e.find("libnvrtc.so.12"), "{e}");
    }

    #[test]
    fn every_kernel_file_is_listed_and_its_kernels_exist() {
        for f in &FILES {
            for k in f.kernels {
                assert!(f.source.contains(&format!("void {k}(")), "{}: no kernel {k}", f.file);
            }
            let declared = f.source.matches("__global__ void").count();
            assert_eq!(declared, f.kernels.len(), "{}: kernels not listed", f.file);
        }
    }
}
