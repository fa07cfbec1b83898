//! `lflow generate lorenz`.

use super::CliError;
use clap::Args;
use lflow_host::lorenz::{generate, LorenzConfig};
use std::path::{Path, PathBuf};

/// Arguments of `lflow generate lorenz`.
#[derive(Args, Debug, Clone)]
pub struct LorenzArgs {
    /// The data set file to write (safetensors, see host/DATA.md).
    #[arg(long, default_value = "lorenz.safetensors")]
    pub out: PathBuf,
    /// Trials in all (train + validation + eval).
    #[arg(long, default_value_t = 1000)]
    pub trials: usize,
    /// Trials kept for evaluation.
    #[arg(long, default_value_t = 200)]
    pub eval_trials: usize,
    /// Fraction of the remaining trials used for validation.
    #[arg(long, default_value_t = 0.2)]
    pub valid_fraction: f32,
    /// Observed bins per trial.
    #[arg(long, default_value_t = 50)]
    pub observed: usize,
    /// Forward (prediction) bins per trial.
    #[arg(long, default_value_t = 10)]
    pub forward: usize,
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
}

impl LorenzArgs {
    /// The generator's configuration.
    pub fn config(&self) -> LorenzConfig {
        LorenzConfig {
            trials: self.trials,
            eval_trials: self.eval_trials,
            valid_fraction: self.valid_fraction,
            observed: self.observed,
            forward: self.forward,
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
    if a.trials == 0 || a.observed == 0 || a.held_in == 0 || a.eval_trials >= a.trials {
        return Err(CliError::Usage("need --trials > --eval-trials, --observed > 0 and --held-in > 0".into()));
    }
    if a.bin_ms.is_nan() || a.bin_ms <= 0.0 || !(0.0..1.0).contains(&a.valid_fraction) {
        return Err(CliError::Usage("need --bin-ms > 0 and --valid-fraction in [0, 1)".into()));
    }
    write(&a.out, &a.config())
}

/// Generate the data set of `c` into `out`; returns a one-line summary.
pub fn write(out: &Path, c: &LorenzConfig) -> Result<String, CliError> {
    let d = generate(c);
    lflow_host::data::save(out, &d)?;
    let spikes: f64 = d.spikes.iter().map(|x| *x as f64).sum();
    Ok(format!(
        "{}: {} trials x {}+{} bins of {} ms, {}+{} neurons, {:.3} spikes per bin per neuron",
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
