//! The `nlb_tools` file layouts (`../shared/nlb/NLB_FORMAT.md`): an eval
//! target group, a submission group, and scoring one file against another.

use super::h5::{Dim, H5};
use super::names;
use super::score::{self, Array, Submission, Target};
use super::NlbError;
use std::path::Path;

/// One group of an eval target file.
pub fn read_target(f: &H5, group: &str) -> Result<Target, NlbError> {
    let p = |name: &str| format!("{group}/{name}");
    let held_out = f.array(&p("eval_spikes_heldout"), &[Dim::Any, Dim::Any, Dim::Any])?;
    let (e, t, no) = (held_out.dim(0), held_out.dim(1), held_out.dim(2));
    let behavior = |name: &str, trials: Option<usize>| -> Result<Option<Array>, NlbError> {
        let lead = trials.map_or(Dim::Any, Dim::Is);
        if !f.has(&p(name)) {
            return Ok(None);
        }
        // Per-bin behaviour [trials, T, B], or per-trial [trials, B] (dmfc_rsg).
        match f.array(&p(name), &[lead, Dim::Is(t), Dim::Any]) {
            Ok(a) => Ok(Some(a)),
            Err(NlbError::Shape { .. }) => f.array(&p(name), &[lead, Dim::Any]).map(Some),
            Err(e) => Err(e),
        }
    };
    let train_behavior = behavior("train_behavior", None)?;
    let r = train_behavior.as_ref().map(|b| b.dim(0));
    let heldin_fwd = f.optional(&p("eval_spikes_heldin_forward"), &[Dim::Is(e), Dim::Any, Dim::Any])?;
    let tf = heldin_fwd.as_ref().map_or(Dim::Any, |a| Dim::Is(a.dim(1)));
    let psth = f.optional(&p("psth"), &[Dim::Any, Dim::Is(t), Dim::Any])?;
    let jitter = |name: &str, n: Option<usize>| -> Result<Option<Vec<i32>>, NlbError> {
        Ok(f.optional(&p(name), &[n.map_or(Dim::Any, Dim::Is)])?.map(|a| a.data.iter().map(|&x| x as i32).collect()))
    };
    Ok(Target {
        eval_behavior: behavior("eval_behavior", Some(e))?,
        eval_spikes_heldout_forward: f.optional(&p("eval_spikes_heldout_forward"), &[Dim::Is(e), tf, Dim::Is(no)])?,
        eval_spikes_heldin_forward: heldin_fwd,
        train_decode_mask: f.optional(&p("train_decode_mask"), &[r.map_or(Dim::Any, Dim::Is), Dim::Any])?,
        eval_decode_mask: f.optional(&p("eval_decode_mask"), &[Dim::Is(e), Dim::Any])?,
        psth,
        eval_cond_idx: f.vlen_i32(&p("eval_cond_idx"))?,
        train_cond_idx: f.vlen_i32(&p("train_cond_idx"))?,
        eval_jitter: jitter("eval_jitter", Some(e))?,
        train_jitter: jitter("train_jitter", r)?,
        train_behavior,
        eval_spikes_heldout: held_out,
    })
}

/// One group of a submission file, shaped against its target.
pub fn read_submission(f: &H5, group: &str, target: &Target) -> Result<Submission, NlbError> {
    let p = |name: &str| format!("{group}/{name}");
    let (e, t, no) =
        (target.eval_spikes_heldout.dim(0), target.eval_spikes_heldout.dim(1), target.eval_spikes_heldout.dim(2));
    let r = target.train_behavior.as_ref().map_or(Dim::Any, |b| Dim::Is(b.dim(0)));
    let heldin = f.array(&p("eval_rates_heldin"), &[Dim::Is(e), Dim::Is(t), Dim::Any])?;
    let ni = Dim::Is(heldin.dim(2));
    let tf = target.eval_spikes_heldin_forward.as_ref().map_or(Dim::Any, |a| Dim::Is(a.dim(1)));
    Ok(Submission {
        eval_rates_heldout: f.array(&p("eval_rates_heldout"), &[Dim::Is(e), Dim::Is(t), Dim::Is(no)])?,
        train_rates_heldin: f.optional(&p("train_rates_heldin"), &[r, Dim::Is(t), ni])?,
        train_rates_heldout: f.optional(&p("train_rates_heldout"), &[r, Dim::Is(t), Dim::Is(no)])?,
        eval_rates_heldin_forward: f.optional(&p("eval_rates_heldin_forward"), &[Dim::Is(e), tf, ni])?,
        eval_rates_heldout_forward: f.optional(&p("eval_rates_heldout_forward"), &[Dim::Is(e), tf, Dim::Is(no)])?,
        eval_rates_heldin: heldin,
    })
}

/// Score a submission file against a target file as `nlb_tools.evaluation.evaluate`
/// does: every benchmark group present in both (a submission group the target
/// lacks is skipped, as there).
pub fn score_files(submission: &Path, target: &Path) -> Result<score::Results, NlbError> {
    let (sf, tf) = (H5::open(submission)?, H5::open(target)?);
    let mut targets = Vec::new();
    let mut subs = Vec::new();
    for dataset in names::DATASETS {
        for bin_ms in [5, 20] {
            let group = names::group(dataset, bin_ms);
            if !sf.has(&group) || !tf.has(&group) || !sf.has(&format!("{group}/eval_rates_heldout")) {
                continue;
            }
            let t = read_target(&tf, &group)?;
            subs.push((group.clone(), read_submission(&sf, &group, &t)?));
            targets.push((group, t));
        }
    }
    if subs.is_empty() {
        return Err(NlbError::Usage(format!(
            "{}: no benchmark group (e.g. mc_maze_small_20) in both this submission and {}",
            submission.display(),
            target.display()
        )));
    }
    Ok(score::evaluate(&targets, &subs)?)
}
