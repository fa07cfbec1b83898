//! The `lflow` subcommands, one module each.

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
use std::path::PathBuf;

/// Everything a subcommand can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A run folder or configuration.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A data set file.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A file that could not be written.
    #[error(transparent)]
    Write(#[from] lflow_host::io::WriteError),
    /// A checkpoint file.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A plot could not be drawn or written.
    #[error("{path}: cannot draw the plot: {reason}")]
    Plot {
        /// The PNG.
        path: PathBuf,
        /// What the drawing library said.
        reason: String,
    },
    /// Arguments that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// The thread pool could not start.
    #[error("cannot start the worker threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}
