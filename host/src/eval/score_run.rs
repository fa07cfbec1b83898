//! `lflow eval`: a run's best model scored on a data set, as the benchmark
//! scores it, into `RUN/eval.json`.

use crate::data::nlb::predicted::score_rates;
use crate::data::nlb::score::{format_results, ScoreError};
use crate::data::{DataError, Dataset};
use crate::eval::evaluate::{evaluate, EvalReport};
use crate::train::backend::Backend;
use crate::train::predictor::{PredictError, Predictor};
use crate::train::run::{RunDir, RunError};

/// Why a run cannot be scored.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The run folder.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run's weights could not predict.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// The NLB targets stored with the data set could not score the rates.
    #[error("scoring against the stored NLB eval targets")]
    Score(#[source] ScoreError),
}

/// Score `p`'s rates on `data`, averaged over `samples` noisy passes (0: mean
/// mode), smoothing PSTHs with a Gaussian of `psth_sd_ms`. An NLB import with
/// eval targets is scored exactly as `nlb_tools` does; a test-phase import
/// scores nothing of the eval trials (EvalAI holds their targets).
pub fn score<B: Backend>(
    p: &mut Predictor<B>,
    data: &Dataset,
    samples: usize,
    psth_sd_ms: f64,
) -> Result<EvalReport, EvalError> {
    let rates = p.rates(data, samples)?;
    let mut report = evaluate(data, &rates, psth_sd_ms);
    if let Some((m, results)) = score_rates(data, &rates).map_err(EvalError::Score)? {
        report.co_bps = Some(m.co_bps);
        report.fp_bps = m.fp_bps;
        report.vel_r2 = m.vel_r2.or(m.tp_corr);
        report.psth_r2 = m.psth_r2;
        report.nlb = serde_json::from_str(&format_results(&results, true)).ok();
    } else if data.nlb.is_some() {
        report.co_bps = None;
        report.fp_bps = None;
        report.vel_r2 = None;
        report.psth_r2 = None;
    }
    Ok(report)
}

/// Score the best model of the run in `dir` on `data` ([`score`], the run's
/// `[eval]` settings unless `samples` is given) and write `RUN/eval.json`.
pub fn score_run(
    dir: &RunDir,
    data: &Dataset,
    samples: Option<usize>,
    device: crate::train::device::Device,
    threads: usize,
) -> Result<EvalReport, EvalError> {
    let (_, record) = RunDir::open(&dir.path)?;
    let mut p = Predictor::open_run(dir, device, threads)?;
    let samples = samples.unwrap_or(record.config.eval.samples);
    let report = score(&mut p, data, samples, record.config.eval.psth_sd_ms)?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    dir.write(&dir.eval_json(), json.as_bytes())?;
    Ok(report)
}
