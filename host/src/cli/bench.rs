//! `lflow bench train`.

use super::train::ModeArg;
use super::CliError;
use clap::{Args, ValueEnum};
use lflow_host::deploy::link::Core;
use lflow_host::train::bench::{self, TrainBench};
use lflow_host::train::gemm::GemmImpl;
use lflow_host::train::Device;

/// `--gemm`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GemmArg {
    /// The `gemm` crate.
    Gemm,
    /// The `matrixmultiply` crate.
    Matrixmultiply,
}

/// Arguments of `lflow bench train`.
#[derive(Args, Debug, Clone)]
pub struct TrainBenchArgs {
    /// Latent size H (the decoder is 3H wide).
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Trials per batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Paper (full attention) or streaming (causal window) mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Paper)]
    pub mode: ModeArg,
    /// Observed bins per trial.
    #[arg(long, default_value_t = 50)]
    pub bins: usize,
    /// Forward (prediction) bins per trial.
    #[arg(long, default_value_t = 10)]
    pub forward: usize,
    /// Held-in neurons.
    #[arg(long, default_value_t = 40)]
    pub n_in: usize,
    /// All neurons (held-in + held-out).
    #[arg(long, default_value_t = 50)]
    pub n_out: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 512)]
    pub ff: usize,
    /// Causal window in bins (streaming mode).
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Timed batches (after one warm-up batch).
    #[arg(long, default_value_t = 5)]
    pub batches: usize,
    /// The gemm crate to multiply with.
    #[arg(long, value_enum, default_value_t = GemmArg::Gemm)]
    pub gemm: GemmArg,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Where to train: cpu, or cuda / cuda:N.
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
}

/// Run the benchmark and format its result.
pub fn train(a: &TrainBenchArgs) -> Result<String, CliError> {
    if a.hidden == 0 || !a.hidden.is_multiple_of(4) {
        return Err(CliError::Usage(format!(
            "--hidden {}: the latent size must be a positive multiple of 4",
            a.hidden
        )));
    }
    if a.n_in == 0 || a.n_out < a.n_in || a.batch == 0 || a.bins == 0 || a.ff == 0 {
        return Err(CliError::Usage("need --batch, --bins, --ff > 0 and 0 < --n-in <= --n-out".into()));
    }
    let spec = TrainBench {
        hidden: a.hidden,
        batch: a.batch,
        threads: a.threads,
        device: a.device,
        mode: a.mode.into(),
        observed: a.bins,
        forward: a.forward,
        n_in: a.n_in,
        n_out: a.n_out,
        ff: a.ff,
        window: a.window,
        batches: a.batches,
        gemm: match a.gemm {
            GemmArg::Gemm => GemmImpl::Gemm,
            GemmArg::Matrixmultiply => GemmImpl::MatrixMultiply,
        },
    };
    let r = bench::run(&spec)?;
    Ok(if a.json {
        serde_json::to_string(&r).unwrap_or_default()
    } else {
        let gemm = r.gemm_share.map_or(String::new(), |g| format!(", gemm {:.0}% of thread time", 100.0 * g));
        format!(
            "{:.0} trials/s ({}, H={}, batch {}, {:?}): {:.1} MFLOP/trial, {:.1} GFLOP/s{gemm}",
            r.trials_per_s,
            r.device,
            r.hidden,
            r.batch,
            r.mode,
            r.flops_per_trial * 1e-6,
            r.gflops_per_s,
        )
    })
}

/// Arguments of `lflow bench device`.
#[derive(Args, Debug, Clone)]
pub struct McuBenchArgs {
    /// Timed bins per core and format (past the reference window of 32 bins,
    /// so the attention runs over a full window).
    #[arg(long, default_value_t = 48)]
    pub bins: usize,
    /// Cores to measure (default: both).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub core: Vec<Core>,
    /// Print one JSON object keyed by `core/format`.
    #[arg(long)]
    pub json: bool,
}

/// Run `lflow bench device`.
pub fn mcu(a: &McuBenchArgs) -> Result<String, CliError> {
    let work = lflow_host::deploy::link::firmware_target_dir().join("bench-device");
    let cores = if a.core.is_empty() { Core::ALL.to_vec() } else { a.core.clone() };
    let progress = |core: Core, name: &str| {
        if !a.json {
            eprintln!("building and running the {name} firmware for the {} ...", core.cpu());
        }
    };
    let figures = lflow_host::deploy::mcu_bench::run(&cores, a.bins, &work, progress)?;
    if a.json {
        return Ok(serde_json::to_string(&figures).unwrap_or_default());
    }
    Ok(mcu_table(&figures))
}

/// The figures as a text table.
pub fn mcu_table(figures: &std::collections::BTreeMap<String, lflow_host::deploy::mcu_bench::McuFigures>) -> String {
    let mut s = format!(
        "reference MCU configuration (N_IN=137, H=64, D=192, FF=256, N_OUT=182, W=32, N_BEH=2), QEMU -icount,\n\
         one instruction per cycle; instr/MAC of the matrix kernels (Rust twin in brackets), of the bin in all\n\
         {:<17} {:>15} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9}\n",
        "", "kernel MAC", "bin MAC", "instr/bin", "max/bin", "ms@64", "ms@120", "ms@480", "max ms@64", "RAM", "flash"
    );
    for (name, f) in figures {
        s += &format!(
            "{name:<17} {:>6.2} ({:>6.2}) {:>8.2} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>8.3} {:>10.2} {:>8} {:>9}{}\n",
            f.instructions_per_mac,
            f.portable_instructions_per_mac,
            f.bin_instructions_per_mac,
            f.instructions_per_bin,
            f.instructions_per_bin_max,
            f.ms_per_bin_at_64mhz,
            f.ms_per_bin_at_120mhz,
            f.ms_per_bin_at_480mhz,
            f.max_ms_per_bin_at_64mhz,
            f.ram_bytes,
            f.flash_bytes,
            if f.kernel_mismatches > 0 {
                format!("  {} KERNEL MISMATCHES", f.kernel_mismatches)
            } else {
                String::new()
            },
        );
    }
    s += &format!(
        "i8-continuous re-anchors every {} bins (core/CONTINUOUS.md); every firmware links with panic-never\n",
        lflow_host::deploy::mcu_bench::CONTINUOUS_ANCHOR
    );
    s
}
