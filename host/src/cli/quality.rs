//! `lflow bench quality`: wall time to a good model, and its final metrics.

use super::train::ModeArg;
use super::CliError;
use clap::Args;
use lflow_host::eval::quality::{self, QualityRun, QualitySpec, QualitySummary, Spread};
use lflow_host::train::run::RunConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `lflow bench quality`.
#[derive(Args, Debug, Clone)]
pub struct QualityBenchArgs {
    /// Data sets to train on, one run each (e.g. three seeds of `lflow generate lorenz`).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// TOML configuration (default: configs/lorenz.toml, embedded).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override the configuration's mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Override the configuration's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop each run after this much training wall time, seconds (default: the epochs alone).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Score the current parameters every this many epochs.
    #[arg(long, default_value_t = 5)]
    pub eval_every: usize,
    /// Noisy passes averaged for the final metrics (default: the configuration's
    /// eval.samples; mean mode, as a device decodes, is reported too).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Override the configuration's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object (every run with its curve, and the summary).
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct QualityJson<'a> {
    config: &'a RunConfig,
    summary: QualitySummary,
    runs: &'a [QualityRun],
}

fn fmt(s: &Option<Spread>, digits: usize) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.count == 1 => format!("{:.*}", digits, s.mean),
        Some(s) => format!("{:.*} [{:.*}, {:.*}]", digits, s.mean, digits, s.min, digits, s.max),
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("never".into(), |v| format!("{v:.digits$}"))
}

/// Run the benchmark and format its result.
pub fn quality(a: &QualityBenchArgs) -> Result<String, CliError> {
    let mut config = match &a.config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::from_toml(super::demo::LORENZ_TOML, Path::new("configs/lorenz.toml"))?,
    };
    if let Some(m) = a.mode {
        config.model.mode = m.into();
    }
    if let Some(e) = a.epochs {
        config.train.epochs = e;
    }
    if let Some(s) = a.seed {
        config.train.seed = s;
    }
    config.check(a.config.as_deref().unwrap_or(Path::new("<flags>")))?;
    if a.seconds.is_some_and(|s| s.is_nan() || s <= 0.0) {
        return Err(CliError::Usage("--seconds must be positive".into()));
    }
    let spec = QualitySpec {
        config: config.clone(),
        threads: a.threads,
        seconds: a.seconds,
        eval_every: a.eval_every,
        samples: a.samples.unwrap_or(config.eval.samples),
    };
    // Read every data set first: a typo in the third is found before an hour of training.
    let sets = a.data.iter().map(|p| lflow_host::data::load(p).map(|d| (p, d))).collect::<Result<Vec<_>, _>>()?;
    let mut runs = Vec::new();
    for (path, data) in &sets {
        let name = path.display().to_string();
        if data.true_rates.is_none() && !a.json {
            eprintln!("{name}: no true rates: rate R² and the times to it are not measured");
        }
        let show = |p: &quality::CurvePoint| {
            if !a.json {
                eprintln!(
                    "{name}: epoch {:>4} {:>7.1} s  rate R2 {}  co-bps {}  valid NLL {:.5}",
                    p.epoch,
                    p.seconds,
                    opt(p.rate_r2, 4),
                    opt(p.co_bps, 4),
                    p.valid_nll
                );
            }
        };
        runs.push(quality::run(&spec, data, &name, show)?);
    }
    let summary = quality::summarise(&runs);
    if a.json {
        return Ok(serde_json::to_string(&QualityJson { config: &config, summary, runs: &runs }).unwrap_or_default());
    }
    let mut s = format!(
        "{:?} mode, H={}, FF={}, batch {}, lr {}, {:?} schedule; final metrics of the best-validation parameters ({}):\n",
        config.model.mode,
        config.model.hidden,
        config.model.ff,
        config.train.batch_size,
        config.train.lr,
        config.train.schedule,
        if spec.samples == 0 { "mean mode".to_string() } else { format!("{} samples; mean mode in the last column", spec.samples) }
    );
    s += &format!(
        "{:<40} {:>6} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}\n",
        "data",
        "epochs",
        "seconds",
        "s to .90",
        "s to .93",
        "rate R2",
        "held-in",
        "held-out",
        "co-bps",
        "gap",
        "mean R2"
    );
    for r in &runs {
        let e = &r.report;
        s += &format!(
            "{:<40} {:>6} {:>8.1} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}\n",
            r.data,
            r.epochs,
            r.seconds,
            opt(r.seconds_to_r2_090, 1),
            opt(r.seconds_to_r2_093, 1),
            opt(e.rate_r2, 4),
            opt(e.rate_r2_held_in, 4),
            opt(e.rate_r2_held_out, 4),
            opt(e.co_bps, 4),
            opt(r.co_bps_gap, 4),
            opt(r.mean_mode.rate_r2, 4),
        );
    }
    if runs.len() > 1 {
        s += &format!("mean [min, max] over {} data sets (a threshold never reached counts out):\n", summary.runs);
        let rows = [
            ("seconds to rate R2 0.90", fmt(&summary.seconds_to_r2_090, 1)),
            ("seconds to rate R2 0.93", fmt(&summary.seconds_to_r2_093, 1)),
            ("training seconds", fmt(&summary.seconds, 1)),
            ("rate R2", fmt(&summary.rate_r2, 4)),
            ("rate R2 mean mode", fmt(&summary.rate_r2_mean_mode, 4)),
            ("rate R2 held-in", fmt(&summary.rate_r2_held_in, 4)),
            ("rate R2 held-out", fmt(&summary.rate_r2_held_out, 4)),
            ("co-bps", fmt(&summary.co_bps, 4)),
            ("co-bps gap to the true rates", fmt(&summary.co_bps_gap, 4)),
        ];
        for (k, v) in rows {
            s += &format!("  {k:<30} {v}\n");
        }
    }
    Ok(s)
}
