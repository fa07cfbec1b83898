//! `lflow eval`: the benchmark's metrics of a run's best model.

use super::train::{check_backend, load_best};
use super::CliError;
use clap::Args;
use lflow_host::data::Dataset;
use lflow_host::deploy::stream::{evaluate_streams, table as stream_table, StreamOptions};
use lflow_host::eval::evaluate::{evaluate, EvalReport};
use lflow_host::train::backend::Device;
use lflow_host::train::run::RunDir;
use std::path::PathBuf;

/// Arguments of `lflow eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The run folder (`lflow train --out`).
    pub run: PathBuf,
    /// Evaluate on this data set instead of the one trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Noisy passes averaged (default: the run's [eval] samples, 50); 0 = mean mode.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Evaluate this LFW1 blob (`lflow export`) instead: its weights as the device reads them, mean mode.
    #[arg(long)]
    pub blob: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to run the model: cpu, or cuda / cuda:N (a --blob is always read on the CPU, as lflow-core does).
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Decode the eval trials (or the continuous eval recording) as one stream
    /// without resets, through lflow-core bin by bin in mean mode (the --blob,
    /// or the run's f32 weights), and compare with a reset at every trial
    /// start: overall, per --stretch bins of stream time, and for streams of
    /// 1, 2, 5 and 40 trials back to back. Writes RUN/eval_stream.json and
    /// RUN/plots/stream.png.
    #[arg(long)]
    pub stream: bool,
    /// Bins per stretch of stream time (--stream).
    #[arg(long, default_value_t = 100, requires = "stream")]
    pub stretch: usize,
    /// Bins at the start of each stream left out of the stretches (--stream).
    #[arg(long, default_value_t = 50, requires = "stream")]
    pub skip: usize,
    /// Start each stream this many bins into its first trial, so that trial
    /// boundaries fall at another phase of the re-anchor period (--stream).
    #[arg(long, default_value_t = 0, requires = "stream")]
    pub offset: usize,
}

/// Rates (spikes per bin) of every trial of `data` from a run's best model.
pub fn predict_rates(
    dir: &RunDir,
    data: &Dataset,
    samples: usize,
    threads: usize,
    device: Device,
) -> Result<Vec<f32>, CliError> {
    let mut t = load_best(dir, threads, device)?;
    if t.model.n_in != data.n_in || t.model.n_out != data.n_out {
        return Err(CliError::Usage(format!(
            "the model reads {} held-in and predicts {} neurons; the data set has {} and {}",
            t.model.n_in, t.model.n_out, data.n_in, data.n_out
        )));
    }
    let all: Vec<usize> = (0..data.trials()).collect();
    let rates = t.predict(data, &all, samples, 0x5EED).iter().map(|lr| lr.exp()).collect();
    check_backend(&mut t)?;
    Ok(rates)
}

/// Evaluate, write `RUN/eval.json`, return the report.
pub fn eval(a: &EvalArgs) -> Result<EvalReport, CliError> {
    let (dir, record) = RunDir::open(&a.run)?;
    let data_path = record.data_or(&dir.path, a.data.as_deref())?;
    let data = lflow_host::data::load(&data_path)?;
    let samples = a.samples.unwrap_or(record.config.eval.samples);
    let rates = predict_rates(&dir, &data, samples, a.threads, a.device)?;
    let mut report = evaluate(&data, &rates, record.config.eval.psth_sd_ms);
    // An NLB import with targets is scored exactly as the benchmark does.
    if let Some((m, results)) =
        lflow_host::data::nlb::predicted::score_rates(&data, &rates).map_err(|e| CliError::Usage(e.to_string()))?
    {
        report.co_bps = Some(m.co_bps);
        report.fp_bps = m.fp_bps;
        report.vel_r2 = m.vel_r2.or(m.tp_corr);
        report.psth_r2 = m.psth_r2;
        let list = super::nlb::format_results(&results, true);
        report.nlb = serde_json::from_str(&list).ok();
    } else if data.nlb.is_some() {
        // Test phase: the eval trials' targets are EvalAI's; nothing to score locally.
        report.co_bps = None;
        report.fp_bps = None;
        report.vel_r2 = None;
        report.psth_r2 = None;
    }
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    dir.write(&dir.eval_json(), json.as_bytes())?;
    Ok(report)
}

/// The report as a table.
pub fn table(r: &EvalReport) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let rows = [
        ("co-bps", r.co_bps, r.oracle_co_bps),
        ("fp-bps", r.fp_bps, r.oracle_fp_bps),
        ("vel R2", r.vel_r2, None),
        ("psth R2", r.psth_r2, None),
        ("rate R2", r.rate_r2, None),
    ];
    let mut out = format!("{:<8} {:>9} {:>12}\n", "metric", "model", "true rates");
    for (name, model, oracle) in rows {
        out += &format!("{name:<8} {:>9} {:>12}\n", f(model), f(oracle));
    }
    out
}

/// `lflow eval RUN --stream`: decode without resets; returns the table to print.
pub fn eval_stream(a: &EvalArgs) -> Result<String, CliError> {
    let (dir, record) = RunDir::open(&a.run)?;
    let data = lflow_host::data::load(&record.data_or(&dir.path, a.data.as_deref())?)?;
    let bytes = match &a.blob {
        Some(file) => {
            std::fs::read(file).map_err(|source| lflow_host::train::run::RunError::Io { path: file.clone(), source })?
        }
        None => {
            let mut t = load_best(&dir, a.threads, Device::Cpu)?;
            if t.model.mode == lflow_host::Mode::Paper {
                return Err(CliError::Usage(format!(
                    "{} is a paper-mode run (attention over the whole trial): only a streaming run decodes bin by bin",
                    a.run.display()
                )));
            }
            let velocity = lflow_host::deploy::export::fit_device_velocity(&mut t, &data)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            lflow_host::deploy::export::blob(
                &t.model,
                &t.state.params,
                lflow_core::StorageFormat::F32,
                velocity.as_ref(),
            )
            .map_err(|e| CliError::Usage(format!("cannot make the run's blob: {e}")))?
        }
    };
    // The decoder borrows the blob in place: give it 16-byte alignment.
    let aligned = lflow_host::deploy::export::aligned(&bytes);
    let opt = StreamOptions { stretch: a.stretch, skip: a.skip, offset: a.offset, ..StreamOptions::default() };
    let report = evaluate_streams(aligned.bytes(), &data, &opt).map_err(|e| CliError::Usage(e.to_string()))?;
    dir.write(
        &dir.path.join("eval_stream.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default().as_bytes(),
    )?;
    let plot = super::plot::stream_plot(&report, &dir.plots())?;
    Ok(format!("{}plot: {}\n", stream_table(&report), plot.display()))
}
