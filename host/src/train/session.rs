//! A training session: a run folder, its data set and a [`Trainer`] on a
//! [`Device`], trained epoch by epoch with `metrics.csv`, the best and the
//! last checkpoint written as it goes. The CLI drives it with a progress bar
//! and Ctrl-C; a Python notebook or a sweep worker drives it the same way.
//!
//! ```no_run
//! use lflow_host::train::run::RunConfig;
//! use lflow_host::train::session::{stop_on_ctrl_c, Progress, Session};
//! use lflow_host::train::{Device, Predictor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = RunConfig::load("configs/lorenz.toml".as_ref())?;
//! let mut session = Session::create("lorenz.safetensors".as_ref(), config, "runs/lorenz".as_ref(), Device::Cpu, 0)?;
//! session.run(Progress::Bar, stop_on_ctrl_c())?; // or session.epoch()? one epoch at a time
//! let data = lflow_host::data::load("lorenz.safetensors".as_ref())?;
//! let mut p = Predictor::open_run(session.dir(), Device::Cpu, 0)?;
//! let rates = p.rates(&data, 50)?; // [trials, T + F, N_out] spikes per bin
//! # let _ = rates;
//! # Ok(())
//! # }
//! ```

use crate::data::{DataError, Dataset, Split};
use crate::train::backend::BackendError;
use crate::train::checkpoint::{self, Checkpoint, CheckpointError};
use crate::train::device::{AnyBackend, Device, OpenError};
use crate::train::run::{RunConfig, RunDir, RunError, RunRecord};
use crate::train::train_config::Retune;
use crate::train::trainer::{EpochStats, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first line of `metrics.csv` (one row per epoch follows).
pub const METRICS_HEADER: &str = "epoch,train_loss,train_nll,valid_nll,valid_co_bps,lr,trials_per_s,seconds\n";

/// Epochs between two writes of the resumable checkpoint (`last.safetensors`).
pub const SAVE_EVERY: usize = 10;

/// Why a session cannot start or go on. Nothing is written before the
/// checks that can fail on the inputs have passed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The run folder, its configuration or one of its files.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The data set file.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The device could not be opened.
    #[error("--device {device}: cannot train there")]
    Open {
        /// The device asked for.
        device: Device,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// A configuration option the device does not train yet.
    #[error("--device {device}: {option} = {value} ({what}) trains on the CPU backend only for now: use --device cpu")]
    Unsupported {
        /// The device asked for.
        device: Device,
        /// The configuration key.
        option: &'static str,
        /// Its value.
        value: String,
        /// What it does.
        what: &'static str,
    },
    /// Windows longer than the training trials laid end to end.
    #[error("train.stream_window_bins = {bins}: longer than the training trials of {} laid end to end", data.display())]
    WindowsTooLong {
        /// The window length, bins.
        bins: usize,
        /// The data set.
        data: PathBuf,
    },
    /// A resumed run and a data set of other neurons.
    #[error(
        "{}: the run was trained on {run_in} held-in / {run_out} neurons, {} has {data_in} / {data_out}",
        run.display(),
        data.display()
    )]
    OtherNeurons {
        /// The run folder.
        run: PathBuf,
        /// Its held-in neurons.
        run_in: usize,
        /// Its neurons.
        run_out: usize,
        /// The data set.
        data: PathBuf,
        /// Its held-in neurons.
        data_in: usize,
        /// Its neurons.
        data_out: usize,
    },
    /// A resumed run and other spikes of the same dimensions.
    #[error(
        "{}: not the data {} was trained on ({}): resume with that file, or train a new run (another --out) on this one",
        data.display(),
        run.display(),
        trained_on.display()
    )]
    OtherData {
        /// The data set given.
        data: PathBuf,
        /// The run folder.
        run: PathBuf,
        /// The data set of the run.
        trained_on: PathBuf,
    },
    /// A pass failed on the device; the last checkpoint is still the one to resume from.
    #[error("epoch {epoch}: stopped by a device error")]
    Backend {
        /// The epoch that failed (0-based).
        epoch: usize,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
}

/// How a session shows its progress on the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar with the latest metrics and the time left.
    Bar,
    /// One line on stderr per 10% of the epochs.
    Lines,
    /// Nothing.
    Silent,
}

/// A run being trained.
pub struct Session {
    dir: RunDir,
    data: Dataset,
    trainer: Trainer<AnyBackend>,
    last_saved: usize,
    began: std::time::Instant,
}

fn open(device: Device, threads: usize) -> Result<AnyBackend, SessionError> {
    AnyBackend::open(device, threads).map_err(|source| SessionError::Open { device, source })
}

/// What the CUDA backend does not train yet.
fn check_device(device: Device, config: &RunConfig) -> Result<(), SessionError> {
    if device == Device::Cpu {
        return Ok(());
    }
    let unsupported = |option, value: String, what| Err(SessionError::Unsupported { device, option, value, what });
    if config.model.anchor_every > 0 {
        return unsupported("model.anchor_every", config.model.anchor_every.to_string(), "re-anchored latents");
    }
    if config.train.grad_clip > 0.0 {
        return unsupported("train.grad_clip", config.train.grad_clip.to_string(), "gradient clipping");
    }
    Ok(())
}

impl Session {
    /// A new run in the folder `out` (which must not hold one) on the data set
    /// file `data`, with `config` (checked), on `device` (`threads`: the CPU
    /// backend's, 0 one per core). Reads and checks every input before the
    /// folder is touched.
    pub fn create(
        data: &Path,
        config: RunConfig,
        out: &Path,
        device: Device,
        threads: usize,
    ) -> Result<Session, SessionError> {
        let set = crate::data::load(data)?;
        let backend = open(device, threads)?;
        check_device(device, &config)?;
        let (stride, bins) = (config.train.stream_windows, config.train.stream_window_bins);
        if set.stream_windows(stride, bins).indices(Split::Train).is_empty() {
            return Err(SessionError::WindowsTooLong { bins, data: data.to_path_buf() });
        }
        let model = config.model_config(&set);
        let record = RunRecord::new(data, config.clone())?;
        let dir = RunDir::create(out, &record)?;
        let trainer = Trainer::for_data(model, config.train, backend, &set);
        Session::start(dir, &set, trainer)
    }

    /// Continue the run in `out` from its last checkpoint, on the data set it
    /// was trained on (`data`, checked by content), up to `epochs` in all
    /// (`None`: the run's own).
    pub fn resume(
        out: &Path,
        data: &Path,
        epochs: Option<usize>,
        device: Device,
        threads: usize,
    ) -> Result<Session, SessionError> {
        Session::resume_retuned(out, data, epochs, device, threads, &Retune::default())
    }

    /// [`Session::resume`] with the hyper-parameters of `retune` replaced
    /// (checked as a configuration is, and recorded in `run.json`); the
    /// parameters, the optimiser's state and the random stream carry on.
    pub fn resume_retuned(
        out: &Path,
        data: &Path,
        epochs: Option<usize>,
        device: Device,
        threads: usize,
        retune: &Retune,
    ) -> Result<Session, SessionError> {
        let set = crate::data::load(data)?;
        let backend = open(device, threads)?;
        let (dir, record) = RunDir::open(out)?;
        check_device(device, &record.config)?;
        let c = checkpoint::load(&dir.last())?;
        if c.model.n_in != set.n_in || c.model.n_out != set.n_out {
            return Err(SessionError::OtherNeurons {
                run: out.to_path_buf(),
                run_in: c.model.n_in,
                run_out: c.model.n_out,
                data: data.to_path_buf(),
                data_in: set.n_in,
                data_out: set.n_out,
            });
        }
        if record.other_data(data)?.is_some() {
            return Err(SessionError::OtherData {
                data: data.to_path_buf(),
                run: out.to_path_buf(),
                trained_on: record.data.clone(),
            });
        }
        let mut config = record.config.clone();
        config.train.epochs = epochs.unwrap_or(config.train.epochs);
        let mut state = c.state;
        if !retune.is_empty() {
            retune.apply(&mut config.train);
            config.check(&dir.run_json())?;
            state.lr = retune.lr.unwrap_or(state.lr);
            let record = RunRecord { config: config.clone(), ..record };
            dir.write(&dir.run_json(), serde_json::to_string_pretty(&record).unwrap_or_default().as_bytes())?;
        }
        Session::start(dir, &set, Trainer::resume(c.model, config.train, state, backend))
    }

    fn start(dir: RunDir, set: &Dataset, trainer: Trainer<AnyBackend>) -> Result<Session, SessionError> {
        // A decoder that is never reset trains on windows that start anywhere.
        let data = set.stream_windows(trainer.config.stream_windows, trainer.config.stream_window_bins);
        let last_saved = trainer.state.epoch;
        let session = Session { dir, data, trainer, last_saved, began: std::time::Instant::now() };
        let metrics = session.dir.metrics();
        if !metrics.exists() {
            std::fs::write(&metrics, METRICS_HEADER).map_err(|e| session.io(e))?;
        }
        Ok(session)
    }

    /// The run folder.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// The trainer (model, configuration, state).
    pub fn trainer(&self) -> &Trainer<AnyBackend> {
        &self.trainer
    }

    /// Whether every epoch of the configuration has run.
    pub fn done(&self) -> bool {
        self.trainer.state.epoch >= self.trainer.config.epochs
    }

    fn io(&self, source: std::io::Error) -> SessionError {
        SessionError::Run(RunError::Io { path: self.dir.metrics(), source })
    }

    fn save(&self, path: &Path, optimizer: bool) -> Result<(), SessionError> {
        let t = &self.trainer;
        let c = Checkpoint { model: t.model.clone(), train: t.config.clone(), state: t.state.clone() };
        checkpoint::save(path, &c, optimizer)?;
        Ok(())
    }

    /// One epoch: train, append its row to `metrics.csv`, write the best
    /// checkpoint when validation improved and the resumable one every
    /// [`SAVE_EVERY`] epochs. After a device error nothing of the epoch is
    /// written.
    pub fn epoch(&mut self) -> Result<EpochStats, SessionError> {
        let epoch = self.trainer.state.epoch;
        let s = self.trainer.epoch(&self.data).map_err(|source| SessionError::Backend { epoch, source })?;
        let metrics = self.dir.metrics();
        let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&metrics).map_err(|e| self.io(e))?;
        let text = format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:e},{:.1},{:.2}\n",
            s.epoch,
            s.train_loss,
            s.train_nll,
            s.valid_nll,
            s.valid_co_bps,
            s.lr,
            s.trials_per_s,
            self.began.elapsed().as_secs_f64()
        );
        csv.write_all(text.as_bytes()).and_then(|_| csv.flush()).map_err(|e| self.io(e))?;
        if s.improved || !self.trainer.state.best_valid.is_finite() {
            self.save(&self.dir.best(), false)?;
        }
        if self.trainer.state.epoch - self.last_saved >= SAVE_EVERY {
            self.save(&self.dir.last(), true)?;
            self.last_saved = self.trainer.state.epoch;
        }
        Ok(s)
    }

    /// Write the resumable checkpoint, and the best one if validation never
    /// ran (no validation trials).
    pub fn finish(&mut self) -> Result<(), SessionError> {
        self.save(&self.dir.last(), true)?;
        self.last_saved = self.trainer.state.epoch;
        if !self.dir.best().exists() {
            self.save(&self.dir.best(), false)?;
        }
        Ok(())
    }

    /// Train to the last epoch, showing `progress`; stop early (resumable)
    /// after the epoch in which `stop` became true. Ends with [`Session::finish`].
    pub fn run(&mut self, progress: Progress, stop: &AtomicBool) -> Result<(), SessionError> {
        let total = self.trainer.config.epochs;
        let bar = if progress == Progress::Bar { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg} [{elapsed_precise} < {eta_precise}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(self.trainer.state.epoch as u64);
        while !self.done() {
            let s = match self.epoch() {
                Ok(s) => s,
                Err(e) => {
                    bar.abandon_with_message("stopped by an error");
                    return Err(e);
                }
            };
            let epoch = self.trainer.state.epoch;
            bar.set_position(epoch as u64);
            bar.set_message(format!(
                "loss {:.4} valid NLL {:.4} co-bps {:.3} lr {:.1e} {:.0} trials/s",
                s.train_loss, s.valid_nll, s.valid_co_bps, s.lr, s.trials_per_s
            ));
            let tenth = |e: usize| e * 10 / total.max(1);
            if progress == Progress::Lines && (tenth(epoch) != tenth(s.epoch) || epoch == total) {
                eprintln!(
                    "epoch {epoch}/{total}: loss {:.4}, valid NLL {:.4}, valid co-bps {:.3}, lr {:.1e}, {:.0} trials/s",
                    s.train_loss, s.valid_nll, s.valid_co_bps, s.lr, s.trials_per_s
                );
            }
            if stop.load(Ordering::SeqCst) {
                bar.abandon_with_message("stopped: resume with --resume");
                break;
            }
        }
        self.finish()?;
        bar.finish();
        Ok(())
    }
}

/// A flag that Ctrl-C sets (installed once per process; later calls return
/// the same flag, cleared).
pub fn stop_on_ctrl_c() -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    // A second installation (e.g. `demo` training twice) is refused: keep the first.
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    STOP.store(false, Ordering::SeqCst);
    &STOP
}

// A session moves to another thread: the Python bindings train with the GIL
// released (a backend holding a thread-bound handle would break them).
const _: () = {
    const fn send<T: Send>() {}
    send::<Session>()
};
