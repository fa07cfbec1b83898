//! Writing a submission file in the layout EvalAI and
//! `nlb_tools.evaluation.evaluate` accept: one group per dataset and bin width
//! (`mc_maze_small_20`), float32 gzip datasets of rates in spikes per bin.

use super::h5::H5;
use super::score::{Array, Submission};
use super::NlbError;
use std::path::Path;

/// Write `sub` as group `group` of a new file at `path` (atomically: a
/// temporary file beside it, then a rename).
pub fn write_submission(path: &Path, group: &str, sub: &Submission) -> Result<(), NlbError> {
    let tmp = path.with_extension("h5.partial");
    let result = (|| {
        let f = H5::create(&tmp)?;
        f.group(group)?;
        let arrays: [(&str, Option<&Array>); 6] = [
            ("eval_rates_heldin", Some(&sub.eval_rates_heldin)),
            ("eval_rates_heldout", Some(&sub.eval_rates_heldout)),
            ("train_rates_heldin", sub.train_rates_heldin.as_ref()),
            ("train_rates_heldout", sub.train_rates_heldout.as_ref()),
            ("eval_rates_heldin_forward", sub.eval_rates_heldin_forward.as_ref()),
            ("eval_rates_heldout_forward", sub.eval_rates_heldout_forward.as_ref()),
        ];
        for (name, a) in arrays {
            if let Some(a) = a {
                let vals: Vec<f32> = a.data.iter().map(|&x| x as f32).collect();
                f.write_f32(&format!("{group}/{name}"), &a.shape, &vals)?;
            }
        }
        f.close()?;
        let file =
            std::fs::File::open(&tmp).map_err(|e| NlbError::Open { file: tmp.clone(), reason: e.to_string() })?;
        file.sync_all().map_err(|e| NlbError::Open { file: tmp.clone(), reason: e.to_string() })?;
        std::fs::rename(&tmp, path).map_err(|e| NlbError::Open { file: path.into(), reason: e.to_string() })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
