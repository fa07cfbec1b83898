//! `lflow generate lorenz`.

use super::CliError;
use clap::Args;
use lflow_host::data::lorenz::{generate, generate_continuous, Continuous, LorenzConfig};
use std::path::{Path, PathBuf};

/// Arguments of `lflow generate lorenz`.
#[derive(Args, Debug, Clone)]
pub struct LorenzArgs {
    /// The data set file to write (safetensors, see host/DATA.md).
    #[arg(long, default_value = "lorenz.safetensors")]
    pub out: PathBuf,
    /// Trials in all (train + validation + eval); with --continuous, the
    /// training and validation windows (the eval recording is --stream-bins long).
    #[arg(long, default_value_t = 1000)]
    pub trials: usize,
    /// Trials kept for evaluation (not with --continuous).
    #[arg(long, default_value_t = 200)]
    pub eval_trials: usize,
    /// Fraction of the remaining trials used for validation.
    #[arg(long, default_value_t = 0.2)]
    pub valid_fraction: f32,
    /// Observed bins per trial (default 50; with --continuous, the window: 60).
    #[arg(long)]
    pub observed: Option<usize>,
    /// Forward (prediction) bins per trial (default 10; none with --continuous).
    #[arg(long)]
    pub forward: Option<usize>,
    /// Held-in neurons (the model's input).
    #[arg(long, default_value_t = 40)]
    pub held_in: usize,
    /// Held-out neurons (predicted only).
    #[arg(long, default_value_t = 10)]
    pub held_out: usize,
    /// Bin width, ms.
    #[arg(long, default_value_t = 10.0)]
    pub bin_ms: f32,
    /// Baseline firing rate, spikes per second.
    #[arg(long, default_value_t = 15.0)]
    pub base_hz: f32,
    /// Gain of the z-scored latents on the log-rate.
    #[arg(long, default_value_t = 1.0)]
    pub gain: f32,
    /// Seed: the same seed writes a byte-identical file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continuous recordings instead of trials: --sessions training recordings
    /// of --session-bins each, cut into --trials windows at random starts (a
    /// --valid-fraction of them from one more recording), and one eval
    /// recording of --stream-bins kept whole (abutting windows), for
    /// `lflow eval --stream`. See host/DATA.md.
    #[arg(long)]
    pub continuous: bool,
    /// Training recordings (--continuous).
    #[arg(long, default_value_t = 8, requires = "continuous")]
    pub sessions: usize,
    /// Bins of each training and validation recording (--continuous; 6000 = 1 min of 10 ms bins).
    #[arg(long, default_value_t = 6000, requires = "continuous")]
    pub session_bins: usize,
    /// Bins of the eval recording (--continuous; 60000 = 10 min of 10 ms bins).
    #[arg(long, default_value_t = 60000, requires = "continuous")]
    pub stream_bins: usize,
}

impl LorenzArgs {
    /// The continuous variant's configuration, with --continuous.
    pub fn continuous(&self) -> Option<Continuous> {
        self.continuous.then_some(Continuous {
            sessions: self.sessions,
            session_bins: self.session_bins,
            stream_bins: self.stream_bins,
        })
    }

    /// The generator's configuration.
    pub fn config(&self) -> LorenzConfig {
        LorenzConfig {
            trials: self.trials,
            eval_trials: self.eval_trials,
            valid_fraction: self.valid_fraction,
            observed: self.observed.unwrap_or(if self.continuous { 60 } else { 50 }),
            forward: self.forward.unwrap_or(if self.continuous { 0 } else { 10 }),
            held_in: self.held_in,
            held_out: self.held_out,
            bin_ms: self.bin_ms,
            base_hz: self.base_hz,
            gain: self.gain,
            seed: self.seed,
        }
    }
}

/// Generate and write the data set; returns a one-line summary.
pub fn lorenz(a: &LorenzArgs) -> Result<String, CliError> {
    let c = a.config();
    if let Some(k) = a.continuous() {
        if c.forward != 0 {
            return Err(CliError::Usage("--continuous windows have no forward bins: drop --forward".into()));
        }
        let valid = (c.trials as f32 * c.valid_fraction).round() as usize;
        if c.trials <= valid || c.observed == 0 || c.held_in == 0 || k.sessions == 0 {
            return Err(CliError::Usage(
                "need --trials above the validation windows, --observed, --held-in and --sessions > 0".into(),
            ));
        }
        if k.session_bins < c.observed || k.stream_bins < c.observed {
            return Err(CliError::Usage(format!(
                "--session-bins and --stream-bins must hold at least one window of {} bins",
                c.observed
            )));
        }
    } else if a.trials == 0 || c.observed == 0 || a.held_in == 0 || a.eval_trials >= a.trials {
        return Err(CliError::Usage("need --trials > --eval-trials, --observed > 0 and --held-in > 0".into()));
    }
    if a.bin_ms.is_nan() || a.bin_ms <= 0.0 || !(0.0..1.0).contains(&a.valid_fraction) {
        return Err(CliError::Usage("need --bin-ms > 0 and --valid-fraction in [0, 1)".into()));
    }
    match a.continuous() {
        Some(k) => write_dataset(&a.out, &generate_continuous(&c, &k)),
        None => write(&a.out, &c),
    }
}

/// Generate the data set of `c` into `out`; returns a one-line summary.
pub fn write(out: &Path, c: &LorenzConfig) -> Result<String, CliError> {
    write_dataset(out, &generate(c))
}

/// Write `d` into `out`; returns a one-line summary.
pub fn write_dataset(out: &Path, d: &lflow_host::data::Dataset) -> Result<String, CliError> {
    lflow_host::data::save(out, d)?;
    let spikes: f64 = d.spikes.iter().map(|x| *x as f64).sum();
    let streams = match &d.segments {
        Some(_) => {
            let s = d.eval_streams();
            let bins: usize = s.iter().map(|t| t.len() * d.observed).sum();
            format!("; eval: {} stream(s), {bins} bins in all", s.len())
        }
        None => String::new(),
    };
    Ok(format!(
        "{}: {} trials x {}+{} bins of {} ms, {}+{} neurons, {:.3} spikes per bin per neuron{streams}",
        out.display(),
        d.trials(),
        d.observed,
        d.forward,
        d.bin_ms,
        d.n_in,
        d.n_out - d.n_in,
        spikes / d.spikes.len() as f64
    ))
}
