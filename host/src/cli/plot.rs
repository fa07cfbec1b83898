//! `lflow plot`: the arguments of [`plot_run`].

use super::CliError;
use clap::Args;
use lflow_host::eval::plots::plot_run;
use std::path::PathBuf;

/// Arguments of `lflow plot`.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// The run folder (`lflow train --out`).
    pub run: PathBuf,
    /// Plot on this data set instead of the one trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Draw every plot of the run; returns the files written.
pub fn plot(a: &PlotArgs) -> Result<Vec<PathBuf>, CliError> {
    Ok(plot_run(&a.run, a.data.as_deref(), a.threads)?)
}
