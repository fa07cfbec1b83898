//! The CUDA C sources of `host/cuda/` (one file per model part) and their
//! compilation with NVRTC. `common.cuh` is inlined, so every file compiles on
//! its own, with no include path at run time.

/// The shared header every kernel file includes.
pub const COMMON: &str = include_str!("../../cuda/common.cuh");

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
pub const FILES: [KernelFile; 7] = [
    KernelFile {
        file: "encoder.cu",
        source: include_str!("../../cuda/encoder.cu"),
        kernels: &["gather_input", "dropout_masks", "gru_gates_forward", "gru_gates_backward"],
    },
    KernelFile {
        file: "latent.cu",
        source: include_str!("../../cuda/latent.cu"),
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
        source: include_str!("../../cuda/attention.cu"),
        kernels: &["attention_forward", "attention_backward"],
    },
    KernelFile {
        file: "layer_norm.cu",
        source: include_str!("../../cuda/layer_norm.cu"),
        kernels: &["layer_norm_forward", "layer_norm_backward", "layer_norm_param_grads"],
    },
    KernelFile {
        file: "feed_forward.cu",
        source: include_str!("../../cuda/feed_forward.cu"),
        kernels: &["add_bias", "column_sums", "residual_dropout", "relu_dropout", "mul_mask", "split_latent_grads"],
    },
    KernelFile { file: "loss.cu", source: include_str!("../../cuda/loss.cu"), kernels: &["poisson_kl_loss"] },
    KernelFile { file: "adam.cu", source: include_str!("../../cuda/adam.cu"), kernels: &["adam_step"] },
];

impl KernelFile {
    /// The source with `common.cuh` inlined: what NVRTC compiles.
    pub fn standalone(&self) -> String {
        self.source.replace("#include \"common.cuh\"", COMMON)
    }
}

/// The file that defines `kernel`.
pub fn file_of(kernel: &str) -> Option<&'static KernelFile> {
    FILES.iter().find(|f| f.kernels.contains(&kernel))
}

/// NVRTC options every compile uses: exact math (the CPU backend's results are the reference).
pub fn nvrtc_options() -> Vec<String> {
    vec!["--std=c++17".into(), "--fmad=true".into()]
}

/// Compile one kernel file to PTX for a virtual architecture (`compute_80`, ...).
pub fn compile_ptx(file: &KernelFile, arch: &'static str) -> Result<String, super::GpuError> {
    if !super::nvrtc_present() {
        return Err(super::GpuError::Missing { what: "NVRTC" });
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        options: nvrtc_options(),
        name: Some(file.file.to_string()),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(file.standalone(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(e) => Err(super::GpuError::Compile { file: file.file, log: format!("{e:?}") }),
    }
}
