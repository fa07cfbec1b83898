//! `lflow nlb submit`: a run's rates of an imported NLB data set as an EvalAI
//! submission file, scored against the stored eval targets in the val phase.

use crate::data::nlb::predicted::{score_rates, submission};
use crate::data::nlb::score::{format_results, ScoreError};
use crate::data::nlb::submit::write_submission;
use crate::data::nlb::NlbError;
use crate::data::DataError;
use crate::train::device::Device;
use crate::train::predictor::{PredictError, Predictor};
use crate::train::run::{RunDir, RunError};
use std::path::{Path, PathBuf};

/// Why a submission cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The run folder.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The data set is not an NLB import.
    #[error("{}: not an NLB import (make one with `lflow nlb import`)", data.display())]
    NotNlb {
        /// The data set.
        data: PathBuf,
    },
    /// The run's weights could not predict.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// The submission file.
    #[error(transparent)]
    Nlb(#[from] NlbError),
    /// Scoring against the stored eval targets.
    #[error("scoring against the stored NLB eval targets")]
    Score(#[source] ScoreError),
}

/// Write the rates of the run in `run` on `data` (the run's own data set
/// when `None`), averaged over `samples` noisy passes (the run's `[eval]`
/// setting when `None`), as a submission to `out`; returns what to print.
pub fn submit_run(
    run: &Path,
    data: Option<&Path>,
    out: &Path,
    samples: Option<usize>,
    device: Device,
    threads: usize,
) -> Result<String, SubmitError> {
    let (dir, record) = RunDir::open(run)?;
    let data_path = record.data_or(&dir.path, data)?;
    let data = crate::data::load(&data_path)?;
    let not_nlb = || SubmitError::NotNlb { data: data_path.clone() };
    let info = data.nlb.clone().ok_or_else(not_nlb)?;
    let samples = samples.unwrap_or(record.config.eval.samples);
    let rates = Predictor::open_run(&dir, device, threads)?.rates(&data, samples)?;
    let sub = submission(&data, &rates).ok_or_else(not_nlb)?;
    write_submission(out, &info.group(), &sub)?;
    let mut s = format!("{}: group {} ({samples} samples averaged)", out.display(), info.group());
    if let Some((_, results)) = score_rates(&data, &rates).map_err(SubmitError::Score)? {
        s += &format!("\nscored against the stored eval targets:\n{}", format_results(&results, false));
    }
    Ok(s)
}
