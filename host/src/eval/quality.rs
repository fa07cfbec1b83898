//! `lflow bench quality`: how long a configuration takes to become good.
//!
//! Trains one configuration on one data set for a time or epoch budget,
//! scores the current parameters on the eval trials every few epochs (rate R²
//! against the true rates in mean mode, and co-bps), and reports the training
//! wall time at which rate R² first reached each threshold, then the final
//! metrics of the best-validation parameters (as `lflow eval` would score
//! them). Scoring time is excluded from the clock: the clock is what
//! `lflow train` would have spent (training, validation, the scheduler).

use crate::data::{Dataset, Split};
use crate::eval::evaluate::{co_bps, evaluate, rate_r2, EvalReport};
use crate::train::backend::BackendError;
use crate::train::device::{AnyBackend, Device, OpenError};
use crate::train::predictor::PREDICTION_SEED;
use crate::train::run::RunConfig;
use crate::train::trainer::Trainer;
use serde::Serialize;

/// Rate-R² thresholds whose first crossing is timed.
pub const THRESHOLDS: [f64; 2] = [0.90, 0.93];

/// What to measure.
#[derive(Clone, Debug)]
pub struct QualitySpec {
    /// The configuration (its `train.epochs` bounds the run).
    pub config: RunConfig,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Stop once this much training wall time has passed, seconds.
    pub seconds: Option<f64>,
    /// Score the current parameters every this many epochs (and after the last).
    pub eval_every: usize,
    /// Noisy passes averaged for the final metrics (0: mean mode only).
    pub samples: usize,
}

/// One scoring of the current parameters.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CurvePoint {
    /// Epochs completed.
    pub epoch: usize,
    /// Training wall time so far, seconds.
    pub seconds: f64,
    /// Rate R² on the eval trials, mean mode (`null` without true rates).
    pub rate_r2: Option<f64>,
    /// co-bps on the eval trials, mean mode (`null` without held-out neurons).
    pub co_bps: Option<f64>,
    /// Validation NLL of the epoch.
    pub valid_nll: f64,
}

/// The result on one data set.
#[derive(Clone, Debug, Serialize)]
pub struct QualityRun {
    /// The data set.
    pub data: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Training wall time, seconds.
    pub seconds: f64,
    /// Seconds spent scoring (not in `seconds`).
    pub scoring_seconds: f64,
    /// Training wall time at which rate R² first reached 0.90 (`null`: never).
    pub seconds_to_r2_090: Option<f64>,
    /// Training wall time at which rate R² first reached 0.93 (`null`: never).
    pub seconds_to_r2_093: Option<f64>,
    /// Epoch of the best validation NLL (the parameters scored last).
    pub best_epoch: usize,
    /// Final metrics of the best parameters on the eval trials, rates averaged
    /// over `samples` noisy passes (MODEL.md section 7's prediction).
    pub report: EvalReport,
    /// The same in mean mode (no noise: as a device decodes).
    pub mean_mode: EvalReport,
    /// co-bps of the true rates minus the model's (smaller is better; `null`
    /// without true rates or held-out neurons).
    pub co_bps_gap: Option<f64>,
    /// Every scoring.
    pub curve: Vec<CurvePoint>,
}

/// Mean, smallest and largest of one figure over the data sets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Data sets that have the figure (a threshold never reached counts out).
    pub count: usize,
}

impl Spread {
    /// Over the values present; `None` when none is.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Spread> {
        let v: Vec<f64> = values.into_iter().flatten().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Spread { mean, min, max, count: v.len() })
    }
}

/// The figures over all data sets.
#[derive(Clone, Debug, Serialize)]
pub struct QualitySummary {
    /// Data sets measured.
    pub runs: usize,
    /// Training wall time to rate R² 0.90, seconds.
    pub seconds_to_r2_090: Option<Spread>,
    /// Training wall time to rate R² 0.93, seconds.
    pub seconds_to_r2_093: Option<Spread>,
    /// Training wall time, seconds.
    pub seconds: Option<Spread>,
    /// Final rate R².
    pub rate_r2: Option<Spread>,
    /// Final rate R², mean mode.
    pub rate_r2_mean_mode: Option<Spread>,
    /// Final rate R², held-in neurons.
    pub rate_r2_held_in: Option<Spread>,
    /// Final rate R², held-out neurons.
    pub rate_r2_held_out: Option<Spread>,
    /// Final co-bps.
    pub co_bps: Option<Spread>,
    /// True rates' co-bps minus the model's.
    pub co_bps_gap: Option<Spread>,
}

/// Summarise runs on several data sets.
pub fn summarise(runs: &[QualityRun]) -> QualitySummary {
    let f = |g: fn(&QualityRun) -> Option<f64>| Spread::of(runs.iter().map(g));
    QualitySummary {
        runs: runs.len(),
        seconds_to_r2_090: f(|r| r.seconds_to_r2_090),
        seconds_to_r2_093: f(|r| r.seconds_to_r2_093),
        seconds: f(|r| Some(r.seconds)),
        rate_r2: f(|r| r.report.rate_r2),
        rate_r2_mean_mode: f(|r| r.mean_mode.rate_r2),
        rate_r2_held_in: f(|r| r.report.rate_r2_held_in),
        rate_r2_held_out: f(|r| r.report.rate_r2_held_out),
        co_bps: f(|r| r.report.co_bps),
        co_bps_gap: f(|r| r.co_bps_gap),
    }
}

/// Why a quality run cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// The CPU's worker threads could not start.
    #[error("cannot start the worker threads")]
    Open(#[source] OpenError),
    /// The data set has no eval trials to score.
    #[error("{name}: no eval trials to score")]
    NoEval {
        /// The data set's name.
        name: String,
    },
    /// A pass failed on the backend.
    #[error("{name}: epoch {epoch}")]
    Backend {
        /// The data set's name.
        name: String,
        /// Epochs completed when it failed.
        epoch: usize,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
}

/// Rates (spikes per bin) `[B, TT, N_out]` of every trial of `data`, filled for
/// `trials` only (zeros elsewhere): what [`evaluate`] reads of the eval trials.
fn eval_rates(
    t: &mut Trainer<AnyBackend>,
    data: &Dataset,
    trials: &[usize],
    samples: usize,
) -> Result<Vec<f32>, BackendError> {
    let per = data.bins() * data.n_out;
    let mut rates = vec![0.0f32; data.trials() * per];
    let log_rates = t.predictor().log_rates(data, trials, samples, PREDICTION_SEED)?;
    for (k, &i) in trials.iter().enumerate() {
        for (r, l) in rates[i * per..(i + 1) * per].iter_mut().zip(&log_rates[k * per..(k + 1) * per]) {
            *r = l.exp();
        }
    }
    Ok(rates)
}

/// Train `spec.config` on `data` (named `name` in the result), scoring as it
/// goes; `progress` sees every scoring.
pub fn run(
    spec: &QualitySpec,
    data: &Dataset,
    name: &str,
    mut progress: impl FnMut(&CurvePoint),
) -> Result<QualityRun, QualityError> {
    let model = spec.config.model_config(data);
    let train = spec.config.train.clone();
    let backend = AnyBackend::open(Device::Cpu, spec.threads).map_err(QualityError::Open)?;

    let failed = |epoch, source| QualityError::Backend { name: name.to_string(), epoch, source };
    let windows = data.stream_windows(train.stream_windows, train.stream_window_bins);
    let mut t = Trainer::for_data(model, train.clone(), backend, &windows);
    let eval = data.indices(Split::Eval);
    if eval.is_empty() {
        return Err(QualityError::NoEval { name: name.to_string() });
    }
    let score = |t: &mut Trainer<AnyBackend>| -> Result<_, BackendError> {
        let rates = eval_rates(t, data, &eval, 0)?;
        Ok((rate_r2(data, &rates, &eval, 0..data.n_out), co_bps(data, &rates, &eval)))
    };
    let (mut seconds, mut scoring) = (0.0f64, 0.0f64);
    let mut curve = Vec::new();
    let mut best = t.state.params.clone();
    let mut crossed: [Option<f64>; 2] = [None, None];
    while t.state.epoch < train.epochs {
        let began = std::time::Instant::now();
        let s = t.epoch(&windows).map_err(|source| failed(t.state.epoch, source))?;
        seconds += began.elapsed().as_secs_f64();
        if s.improved || !t.state.best_valid.is_finite() {
            best.data.copy_from_slice(&t.state.params.data);
        }
        let last = t.state.epoch == train.epochs || spec.seconds.is_some_and(|b| seconds >= b);
        if t.state.epoch % spec.eval_every.max(1) == 0 || last {
            let began = std::time::Instant::now();
            let (rate_r2, co_bps) = score(&mut t).map_err(|source| failed(t.state.epoch, source))?;
            scoring += began.elapsed().as_secs_f64();
            let p = CurvePoint { epoch: t.state.epoch, seconds, rate_r2, co_bps, valid_nll: s.valid_nll };
            for (c, th) in crossed.iter_mut().zip(THRESHOLDS) {
                if c.is_none() && rate_r2.is_some_and(|r| r >= th) {
                    *c = Some(seconds);
                }
            }
            progress(&p);
            curve.push(p);
        }
        if last {
            break;
        }
    }
    let began = std::time::Instant::now();
    t.state.params.data.copy_from_slice(&best.data);
    let final_report = |t: &mut Trainer<AnyBackend>, samples: usize| -> Result<EvalReport, BackendError> {
        let rates = eval_rates(t, data, &eval, samples)?;
        let mut report = evaluate(data, &rates, spec.config.eval.psth_sd_ms);
        report.vel_r2 = None; // the training trials' rates were not predicted
        Ok(report)
    };
    let epoch = t.state.epoch;
    let report = final_report(&mut t, spec.samples).map_err(|source| failed(epoch, source))?;
    let mean_mode = if spec.samples == 0 {
        report.clone()
    } else {
        final_report(&mut t, 0).map_err(|source| failed(epoch, source))?
    };
    scoring += began.elapsed().as_secs_f64();
    let co_bps_gap = report.oracle_co_bps.zip(report.co_bps).map(|(o, c)| o - c);
    Ok(QualityRun {
        data: name.to_string(),
        epochs: t.state.epoch,
        seconds,
        scoring_seconds: scoring,
        seconds_to_r2_090: crossed[0],
        seconds_to_r2_093: crossed[1],
        best_epoch: t.state.best_epoch,
        report,
        mean_mode,
        co_bps_gap,
        curve,
    })
}
