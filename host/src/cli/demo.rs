//! `lflow demo`: generate Lorenz, train the streaming model, evaluate, plot.

use super::closed_loop::{closed_loop, ClosedLoopArgs, Pace};
use super::eval::{eval, EvalArgs};
use super::export::{export, ExportArgs, FormatArg};
use super::generate::write;
use super::plot::{plot, PlotArgs};
use super::train::{train, TrainArgs};
use super::CliError;
use clap::Args;
use lflow_host::data::lorenz::LorenzConfig;
use lflow_host::train::run::RunConfig;
use std::path::{Path, PathBuf};

/// The tuned Lorenz configuration, embedded so the demo runs from any folder.
pub const LORENZ_TOML: &str = include_str!("../../../configs/lorenz.toml");

/// Arguments of `lflow demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Folder for the data set, the run and its plots.
    #[arg(long, default_value = "demo")]
    pub out: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Override the configuration's epochs (smaller: faster, worse).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Trials to generate (default 1000; 200 of them, at most a fifth, are eval trials).
    #[arg(long, default_value_t = 1000)]
    pub trials: usize,
    /// Noisy passes averaged in evaluation (0: mean mode, as the device decodes).
    #[arg(long)]
    pub samples: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Skip the export and the closed loop under QEMU.
    #[arg(long)]
    pub no_device: bool,
    /// Stream through the firmware's host twin even where QEMU is installed
    /// (without QEMU the demo does so anyway).
    #[arg(long)]
    pub twin: bool,
    /// Eval trials streamed through the device.
    #[arg(long, default_value_t = 10)]
    pub device_trials: usize,
}

/// Export the run as an int8 blob and stream eval trials through the firmware
/// under QEMU, or through its host twin where QEMU is missing (or `--twin`).
fn device_part(a: &DemoArgs, run: &Path, data: &Path) -> String {
    if a.no_device {
        return String::new();
    }
    let blob = a.out.join("model-i8.lfw");
    let export_args =
        ExportArgs { run: run.to_path_buf(), format: FormatArg::I8, out: blob.clone(), data: None, threads: a.threads };
    let mut out = match export(&export_args) {
        Ok(s) => s,
        Err(e) => return format!("export failed: {e}\n"),
    };
    // Without QEMU the firmware's host twin decodes: the same program, built for this machine.
    let no_qemu = std::process::Command::new("qemu-system-arm").arg("--version").output().is_err();
    let args = ClosedLoopArgs {
        blob,
        data: data.to_path_buf(),
        qemu: None,
        twin: None,
        serial: None,
        pace: Pace::Max,
        core: lflow_host::deploy::link::Core::M7,
        trials: a.device_trials,
        json: true,
        continuous: false,
        twin_only: a.twin || no_qemu,
    };
    match closed_loop(&args) {
        Ok(r) => {
            let path = a.out.join("closed_loop.json");
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            if let Err(e) = lflow_host::io::write_atomically(&path, json.as_bytes()) {
                return out + &format!("closed loop: {e}\n");
            }
            out += &r.summary();
            out + &format!("closed loop: {}\n", path.display())
        }
        Err(e) => out + &format!("closed loop skipped: {e} (tools/test.sh installs what it needs)\n"),
    }
}

/// Run the whole job; returns the summary to print.
pub fn demo(a: &DemoArgs) -> Result<String, CliError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&a.out)
        .map_err(|source| lflow_host::train::run::RunError::Io { path: a.out.clone(), source })?;
    let data = a.out.join("lorenz.safetensors");
    let config_path = a.out.join("lorenz.toml");
    let config = RunConfig::from_toml(LORENZ_TOML, Path::new("configs/lorenz.toml"))?;
    std::fs::write(&config_path, LORENZ_TOML)
        .map_err(|source| lflow_host::train::run::RunError::Io { path: config_path.clone(), source })?;
    let lorenz = LorenzConfig {
        trials: a.trials,
        eval_trials: (a.trials / 5).min(200),
        seed: config.train.seed,
        ..LorenzConfig::default()
    };
    let mut summary = format!("data: {}\n", write(&data, &lorenz)?);
    let run = a.out.join("run-streaming");
    if run.join("run.json").exists() {
        // The demo owns this folder: a rerun starts it afresh.
        std::fs::remove_dir_all(&run)
            .map_err(|source| lflow_host::train::run::RunError::Io { path: run.clone(), source })?;
    }
    let args = TrainArgs {
        data: data.clone(),
        config: Some(config_path),
        out: run.clone(),
        mode: None,
        window: None,
        threads: a.threads,
        device: lflow_host::train::Device::Cpu,
        epochs: a.epochs,
        resume: false,
        quiet: a.quiet,
    };
    train(&args)?;
    let report = eval(&EvalArgs {
        run: run.clone(),
        data: None,
        samples: a.samples,
        blob: None,
        threads: a.threads,
        device: lflow_host::train::Device::Cpu,
        stream: false,
        stretch: 100,
        skip: 50,
        offset: 0,
    })?;
    let plots = plot(&PlotArgs { run: run.clone(), data: None, threads: a.threads })?;
    summary += &format!("run: {} (streaming mode, window {})\n", run.display(), config.model.window);
    summary += &report.table();
    summary += &format!("metrics: {}\n", run.join("eval.json").display());
    for p in plots {
        summary += &format!("plot: {}\n", p.display());
    }
    summary += &device_part(a, &run, &data);
    summary += &format!("wall time: {:.1} s\n", started.elapsed().as_secs_f64());
    Ok(summary)
}
