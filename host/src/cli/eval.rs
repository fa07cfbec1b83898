//! `lflow eval`: the arguments, for [`score_run`], [`blob_report`] or [`stream_report`].

use super::CliError;
use clap::Args;
use lflow_host::deploy::export::{blob_report, stream_report};
use lflow_host::deploy::stream::{table as stream_table, StreamOptions};
use lflow_host::deploy::stream_plot::stream_plot;
use lflow_host::eval::evaluate::EvalReport;
use lflow_host::eval::score_run::score_run;
use lflow_host::train::run::RunDir;
use lflow_host::train::Device;
use std::path::{Path, PathBuf};

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

/// Evaluate, write `RUN/eval.json`, return the report.
pub fn eval(a: &EvalArgs) -> Result<EvalReport, CliError> {
    let (dir, record) = RunDir::open(&a.run)?;
    let data = lflow_host::data::load(&record.data_or(&dir.path, a.data.as_deref())?)?;
    Ok(score_run(&dir, &data, a.samples, a.device, a.threads)?)
}

/// `lflow eval RUN --blob FILE`: the blob's metrics as a table.
pub fn eval_blob(a: &EvalArgs, blob: &Path) -> Result<String, CliError> {
    let report = blob_report(&a.run, blob, a.data.as_deref(), a.threads)?;
    let extra = report
        .decoder_vel_r2
        .map_or(String::new(), |v| format!("behaviour R2 of the blob's velocity decoder: {v:.4}\n"));
    Ok(format!("{} (mean mode)\n{}{extra}", blob.display(), report.table()))
}

/// `lflow eval RUN --stream`: decode without resets; returns the table to print.
pub fn eval_stream(a: &EvalArgs) -> Result<String, CliError> {
    let opt = StreamOptions { stretch: a.stretch, skip: a.skip, offset: a.offset, ..StreamOptions::default() };
    let (dir, report) = stream_report(&a.run, a.blob.as_deref(), a.data.as_deref(), &opt, a.threads)?;
    let plot = stream_plot(&report, &dir.plots())?;
    Ok(format!("{}plot: {}\n", stream_table(&report), plot.display()))
}
