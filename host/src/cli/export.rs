//! `lflow export`: the arguments of [`export_run`].

use super::CliError;
use clap::{Args, ValueEnum};
use lflow_core::StorageFormat;
use lflow_host::deploy::export::export_run;
use std::path::PathBuf;

/// `--format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// 4 bytes per weight.
    F32,
    /// 2 bytes per weight.
    F16,
    /// 1 byte per weight plus an f32 scale per row.
    I8,
}

impl From<FormatArg> for StorageFormat {
    fn from(f: FormatArg) -> StorageFormat {
        match f {
            FormatArg::F32 => StorageFormat::F32,
            FormatArg::F16 => StorageFormat::F16,
            FormatArg::I8 => StorageFormat::I8,
        }
    }
}

/// Arguments of `lflow export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The run folder of a streaming-mode run.
    pub run: PathBuf,
    /// Weight storage of the blob.
    #[arg(long, value_enum, default_value_t = FormatArg::I8)]
    pub format: FormatArg,
    /// The blob to write.
    #[arg(long, default_value = "model.lfw")]
    pub out: PathBuf,
    /// Fit the velocity decoder and measure on this data set instead of the run's.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Export; returns the summary to print.
pub fn export(a: &ExportArgs) -> Result<String, CliError> {
    Ok(export_run(&a.run, a.format.into(), &a.out, a.data.as_deref(), a.threads)?.to_string())
}
