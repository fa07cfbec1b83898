//! `lflow train`: the training loop with progress, metrics, checkpoints and Ctrl-C.

use super::CliError;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lflow_host::data::Dataset;
use lflow_host::train::backend::{AnyBackend, Backend, Device};
use lflow_host::train::checkpoint::{self, Checkpoint};
use lflow_host::train::run::{RunConfig, RunDir, RunRecord};
use lflow_host::train::trainer::{TrainState, Trainer};
use lflow_host::Mode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `--mode`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Full attention, previous-bin input: the published model.
    Paper,
    /// Causal window, current-bin input: the model a device runs.
    Streaming,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Paper => Mode::Paper,
            ModeArg::Streaming => Mode::Streaming,
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

static STOP: AtomicBool = AtomicBool::new(false);

fn install_ctrl_c() {
    // A second installation (e.g. `demo` calling train twice) is refused: keep the first.
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
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
    // Read and check every input before the run folder is touched.
    let config = resolve_config(a)?;
    let data = lflow_host::data::load(&a.data)?;
    let backend = open_backend(a.device, a.threads)?;
    if a.device != Device::Cpu && config.model.anchor_every > 0 {
        return Err(CliError::Usage(format!(
            "--device {}: model.anchor_every = {} (re-anchored latents) trains on the CPU backend only for now: use --device cpu",
            a.device, config.model.anchor_every
        )));
    }
    if a.device != Device::Cpu && config.train.grad_clip > 0.0 {
        return Err(CliError::Usage(format!(
            "--device {}: train.grad_clip = {} (gradient clipping) runs on the CPU backend only for now: use --device cpu",
            a.device, config.train.grad_clip
        )));
    }
    let (stride, bins) = (config.train.stream_windows, config.train.stream_window_bins);
    if !a.resume && data.stream_windows(stride, bins).indices(lflow_host::data::Split::Train).is_empty() {
        return Err(CliError::Usage(format!(
            "train.stream_window_bins = {bins}: longer than the training trials of {} laid end to end",
            a.data.display()
        )));
    }
    let (dir, mut trainer) = if a.resume {
        let (dir, record) = RunDir::open(&a.out)?;
        let c = checkpoint::load(&dir.last())?;
        if c.model.n_in != data.n_in || c.model.n_out != data.n_out {
            return Err(CliError::Usage(format!(
                "{}: the run was trained on {} held-in / {} neurons, {} has {} / {}",
                a.out.display(),
                c.model.n_in,
                c.model.n_out,
                a.data.display(),
                data.n_in,
                data.n_out
            )));
        }
        if record.other_data(&a.data)?.is_some() {
            return Err(CliError::Usage(format!(
                "{}: not the data {} was trained on ({}): resume with that file, or train a new run (another \
                 --out) on this one",
                a.data.display(),
                a.out.display(),
                record.data.display()
            )));
        }
        let mut train = record.config.train.clone();
        train.epochs = a.epochs.unwrap_or(train.epochs);
        (dir, Trainer::resume(c.model, train, c.state, backend))
    } else {
        let model = config.model_config(&data);
        let record = RunRecord::new(&a.data, config.clone())?;
        let dir = RunDir::create(&a.out, &record)?;
        (dir, Trainer::for_data(model, config.train.clone(), backend, &data))
    };
    // A decoder that is never reset trains on windows that start anywhere.
    let data = data.stream_windows(trainer.config.stream_windows, trainer.config.stream_window_bins);
    run_epochs(&dir, &data, &mut trainer, a.quiet)?;
    Ok(dir)
}

fn save<B: Backend>(t: &Trainer<B>, path: &Path, optimizer: bool) -> Result<(), CliError> {
    let c = Checkpoint { model: t.model.clone(), train: t.config.clone(), state: t.state.clone() };
    checkpoint::save(path, &c, optimizer)?;
    Ok(())
}

fn run_epochs<B: Backend>(dir: &RunDir, data: &Dataset, t: &mut Trainer<B>, quiet: bool) -> Result<(), CliError> {
    install_ctrl_c();
    STOP.store(false, Ordering::SeqCst);
    let total = t.config.epochs;
    let start = t.state.epoch;
    let metrics = dir.metrics();
    let new_file = !metrics.exists();
    let io = |source| CliError::Run(lflow_host::train::run::RunError::Io { path: metrics.clone(), source });
    let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&metrics).map_err(io)?;
    if new_file {
        writeln!(csv, "epoch,train_loss,train_nll,valid_nll,valid_co_bps,lr,trials_per_s,seconds").map_err(io)?;
    }
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total as u64) };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg} [{elapsed_precise} < {eta_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(start as u64);
    let began = std::time::Instant::now();
    let mut last_saved = start;
    while t.state.epoch < total {
        let s = t.epoch(data);
        if let Some(e) = t.backend_mut().take_error() {
            // Nothing of this epoch is saved: the last checkpoint stays resumable.
            bar.abandon_with_message("stopped by a device error");
            return Err(CliError::Usage(format!("epoch {}: {e}", s.epoch)));
        }
        writeln!(
            csv,
            "{},{:.6},{:.6},{:.6},{:.6},{:e},{:.1},{:.2}",
            s.epoch,
            s.train_loss,
            s.train_nll,
            s.valid_nll,
            s.valid_co_bps,
            s.lr,
            s.trials_per_s,
            began.elapsed().as_secs_f64()
        )
        .map_err(io)?;
        if s.improved || !t.state.best_valid.is_finite() {
            save(t, &dir.best(), false)?;
        }
        if t.state.epoch - last_saved >= 10 {
            save(t, &dir.last(), true)?;
            last_saved = t.state.epoch;
        }
        bar.set_position(t.state.epoch as u64);
        bar.set_message(format!(
            "loss {:.4} valid NLL {:.4} co-bps {:.3} lr {:.1e} {:.0} trials/s",
            s.train_loss, s.valid_nll, s.valid_co_bps, s.lr, s.trials_per_s
        ));
        if quiet && (t.state.epoch * 10 / total.max(1) != s.epoch * 10 / total.max(1) || t.state.epoch == total) {
            eprintln!(
                "epoch {}/{}: loss {:.4}, valid NLL {:.4}, valid co-bps {:.3}, lr {:.1e}, {:.0} trials/s",
                t.state.epoch, total, s.train_loss, s.valid_nll, s.valid_co_bps, s.lr, s.trials_per_s
            );
        }
        if STOP.load(Ordering::SeqCst) {
            bar.abandon_with_message("stopped: resume with --resume");
            break;
        }
    }
    csv.flush().map_err(io)?;
    save(t, &dir.last(), true)?;
    if !dir.best().exists() {
        save(t, &dir.best(), false)?;
    }
    bar.finish();
    Ok(())
}

/// Parameters of a run's best checkpoint in a trainer on `device`, ready to predict.
pub fn load_best(dir: &RunDir, threads: usize, device: Device) -> Result<Trainer<AnyBackend>, CliError> {
    let (model, params) = checkpoint::load_params(&dir.best())?;
    let (_, record) = RunDir::open(&dir.path)?;
    predictor(model, params, record.config.train, threads, device)
}

/// Open the backend `device` names, or say why it cannot run.
pub fn open_backend(device: Device, threads: usize) -> Result<AnyBackend, CliError> {
    AnyBackend::open(device, threads).map_err(|e| CliError::Usage(format!("--device {device}: {e}")))
}

/// Stop with the backend's error, if a pass failed on the device.
pub fn check_backend<B: Backend>(t: &mut Trainer<B>) -> Result<(), CliError> {
    match t.backend_mut().take_error() {
        Some(e) => Err(CliError::Usage(e)),
        None => Ok(()),
    }
}

/// A trainer holding `params`, used for prediction only.
pub fn predictor(
    model: lflow_host::ModelConfig,
    params: lflow_host::Params,
    train: lflow_host::train::trainer::TrainConfig,
    threads: usize,
    device: Device,
) -> Result<Trainer<AnyBackend>, CliError> {
    let state = TrainState {
        adam: lflow_host::train::adam::Adam::new(&model),
        lr: 0.0,
        epoch: 0,
        rng: lflow_core::Seeded::new(0),
        best_valid: f64::INFINITY,
        bad_epochs: 0,
        best_epoch: 0,
        params,
    };
    Ok(Trainer::resume(model, train, state, open_backend(device, threads)?))
}
