//! `lflow demo`: generate Lorenz, train the streaming model, evaluate, plot.

use super::eval::{eval, table, EvalArgs};
use super::generate::write;
use super::plot::{plot, PlotArgs};
use super::train::{train, TrainArgs};
use super::CliError;
use clap::Args;
use lflow_host::lorenz::LorenzConfig;
use lflow_host::run::RunConfig;
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
}

/// Run the whole job; returns the summary to print.
pub fn demo(a: &DemoArgs) -> Result<String, CliError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&a.out).map_err(|source| lflow_host::run::RunError::Io { path: a.out.clone(), source })?;
    let data = a.out.join("lorenz.safetensors");
    let config_path = a.out.join("lorenz.toml");
    let config = RunConfig::from_toml(LORENZ_TOML, Path::new("configs/lorenz.toml"))?;
    std::fs::write(&config_path, LORENZ_TOML)
        .map_err(|source| lflow_host::run::RunError::Io { path: config_path.clone(), source })?;
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
        std::fs::remove_dir_all(&run).map_err(|source| lflow_host::run::RunError::Io { path: run.clone(), source })?;
    }
    let args = TrainArgs {
        data: data.clone(),
        config: Some(config_path),
        out: run.clone(),
        mode: None,
        window: None,
        threads: a.threads,
        epochs: a.epochs,
        resume: false,
        quiet: a.quiet,
    };
    train(&args)?;
    let report = eval(&EvalArgs { run: run.clone(), data: None, samples: a.samples, blob: None, threads: a.threads })?;
    let plots = plot(&PlotArgs { run: run.clone(), data: None, threads: a.threads })?;
    summary += &format!("run: {} (streaming mode, window {})\n", run.display(), config.model.window);
    summary += &table(&report);
    summary += &format!("metrics: {}\n", run.join("eval.json").display());
    for p in plots {
        summary += &format!("plot: {}\n", p.display());
    }
    summary += &format!("wall time: {:.1} s\n", started.elapsed().as_secs_f64());
    Ok(summary)
}
