//! A run's predicted rates of an imported NLB data set as the benchmark's
//! submission arrays, and their score against the stored eval targets.

use super::score::{self, Array, GroupMetrics, ScoreError, Submission};
use crate::data::Dataset;

/// Cut `rates [B, T + F, N]` (spikes per bin) into the submission's arrays:
/// train and eval trials, observed and forward bins, held-in and held-out
/// neurons. `None` when the data set is not an NLB import.
pub fn submission(data: &Dataset, rates: &[f32]) -> Option<Submission> {
    let nlb = data.nlb.as_ref()?;
    let (r, e) = (nlb.meta.train_trials, nlb.meta.eval_trials);
    let (t, tt, n, ni) = (data.observed, data.bins(), data.n_out, data.n_in);
    let cut = |trials: std::ops::Range<usize>, bins: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        let mut out = Vec::with_capacity(trials.len() * bins.len() * cols.len());
        for i in trials.clone() {
            for b in bins.clone() {
                out.extend(rates[(i * tt + b) * n + cols.start..(i * tt + b) * n + cols.end].iter().map(|&x| x as f64));
            }
        }
        Array { shape: vec![trials.len(), bins.len(), cols.len()], data: out }
    };
    let forward = data.forward > 0;
    Some(Submission {
        eval_rates_heldin: cut(r..r + e, 0..t, 0..ni),
        eval_rates_heldout: cut(r..r + e, 0..t, ni..n),
        train_rates_heldin: Some(cut(0..r, 0..t, 0..ni)),
        train_rates_heldout: Some(cut(0..r, 0..t, ni..n)),
        eval_rates_heldin_forward: forward.then(|| cut(r..r + e, t..tt, 0..ni)),
        eval_rates_heldout_forward: forward.then(|| cut(r..r + e, t..tt, ni..n)),
    })
}

/// The benchmark's metrics of `rates` on the stored eval targets (val phase),
/// and the result list as `nlb_tools` returns it; `None` without targets.
pub fn score_rates(data: &Dataset, rates: &[f32]) -> Result<Option<(GroupMetrics, score::Results)>, ScoreError> {
    let Some(nlb) = data.nlb.as_ref() else { return Ok(None) };
    let (Some(target), Some(sub)) = (nlb.target.as_ref(), submission(data, rates)) else { return Ok(None) };
    let group = nlb.group();
    let metrics = score::evaluate_group(&nlb.meta.dataset, &group, target, &sub)?;
    let list = score::evaluate(&[(group.clone(), target.clone())], &[(group, sub)])?;
    Ok(Some((metrics, list)))
}
