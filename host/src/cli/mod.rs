//! The `lflow` subcommands, one module each: each parses its arguments, calls
//! the library (`lflow_host`'s layers, `ARCHITECTURE.md`) and returns what to
//! print. `demo` chains the others. No training, scoring or export logic lives here.

pub mod bench;
pub mod closed_loop;
pub mod demo;
pub mod eval;
pub mod export;
pub mod generate;
pub mod nlb;
pub mod plot;
pub mod quality;
pub mod train;

use lflow_host::data::DataError;
use lflow_host::train::checkpoint::CheckpointError;
use lflow_host::train::run::RunError;

/// Everything a subcommand can fail with: the library's errors, kept as
/// sources, and arguments that cannot work together.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A run folder or configuration.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A data set file.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint file.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A file that could not be written.
    #[error(transparent)]
    Write(#[from] lflow_host::io::WriteError),
    /// Training.
    #[error(transparent)]
    Session(#[from] lflow_host::train::session::SessionError),
    /// Prediction from a run's weights.
    #[error(transparent)]
    Predict(#[from] lflow_host::train::predictor::PredictError),
    /// Scoring a run.
    #[error(transparent)]
    Eval(#[from] lflow_host::eval::score_run::EvalError),
    /// Plots.
    #[error(transparent)]
    Plot(#[from] lflow_host::eval::plots::PlotError),
    /// The quality benchmark.
    #[error(transparent)]
    Quality(#[from] lflow_host::eval::quality::QualityError),
    /// Export, blob evaluation, decoding without resets.
    #[error(transparent)]
    Export(#[from] lflow_host::deploy::export::ExportError),
    /// The firmware and its link.
    #[error(transparent)]
    Link(#[from] lflow_host::deploy::link::LinkError),
    /// The closed loop.
    #[error(transparent)]
    ClosedLoop(#[from] lflow_host::deploy::closed_loop::ClosedLoopError),
    /// An NLB submission.
    #[cfg(feature = "nlb")]
    #[error(transparent)]
    Submit(#[from] lflow_host::eval::nlb_submit::SubmitError),
    /// Neural Latents Benchmark files.
    #[error(transparent)]
    Nlb(#[from] lflow_host::data::nlb::NlbError),
    /// The training benchmark.
    #[error(transparent)]
    Bench(#[from] lflow_host::train::bench::BenchError),
    /// Arguments that cannot work together.
    #[error("{0}")]
    Usage(String),
}
