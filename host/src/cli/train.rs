//! `lflow train`: the arguments, resolved into a configuration for a [`Session`].

use super::CliError;
use clap::{Args, ValueEnum};
use lflow_host::train::run::{RunConfig, RunDir};
use lflow_host::train::session::{stop_on_ctrl_c, Progress, Session};
use lflow_host::train::Device;
use lflow_host::ModeName;
use std::path::{Path, PathBuf};

/// `--mode`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Full attention, previous-bin input: the published model.
    Paper,
    /// Causal window, current-bin input: the model a device runs.
    Streaming,
}

impl From<ModeArg> for ModeName {
    fn from(m: ModeArg) -> ModeName {
        match m {
            ModeArg::Paper => ModeName::Paper,
            ModeArg::Streaming => ModeName::Streaming,
        }
    }
}

/// Arguments of `lflow train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The data set (safetensors, see host/DATA.md; `lflow generate lorenz` makes one).
    #[arg(long)]
    pub data: PathBuf,
    /// TOML configuration; absent keys take MODEL.md's defaults (configs/lorenz.toml is tuned for Lorenz).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The run folder to create (or continue with --resume).
    #[arg(long)]
    pub out: PathBuf,
    /// Override the configuration's mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Override the causal window (bins, streaming mode).
    #[arg(long)]
    pub window: Option<usize>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to train: cpu, or cuda / cuda:N for CUDA device N (needs an NVIDIA
    /// driver; without one the run stops before anything is written).
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Override the number of epochs (with --resume: the total to reach).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar (one line per 10% of the epochs instead).
    #[arg(long)]
    pub quiet: bool,
}

/// Resolve the configuration: file (or defaults), then the flags.
pub fn resolve_config(a: &TrainArgs) -> Result<RunConfig, CliError> {
    let mut c = match &a.config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    if let Some(m) = a.mode {
        c.model.mode = m.into();
    }
    if let Some(w) = a.window {
        c.model.window = w;
    }
    if let Some(e) = a.epochs {
        c.train.epochs = e;
    }
    c.check(a.config.as_deref().unwrap_or(Path::new("<flags>")))?;
    Ok(c)
}

/// Train; returns the run folder.
pub fn train(a: &TrainArgs) -> Result<RunDir, CliError> {
    let config = resolve_config(a)?;
    let mut session = if a.resume {
        Session::resume(&a.out, &a.data, a.epochs, a.device, a.threads)?
    } else {
        Session::create(&a.data, config, &a.out, a.device, a.threads)?
    };
    let progress = if a.quiet { Progress::Lines } else { Progress::Bar };
    session.run(progress, stop_on_ctrl_c())?;
    Ok(session.dir().clone())
}
