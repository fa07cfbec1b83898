//! What a data set file keeps of an NLB import: which benchmark dataset and
//! phase, how its trials map to the benchmark's, and (val phase) the eval
//! target group, so `lflow eval` scores exactly as `nlb_tools` and `lflow nlb
//! submit` writes the right group. Stored in the safetensors data file as
//! metadata key `nlb` and tensors `nlb.<target array>` (see `host/DATA.md`).

use super::score::{Array, Target};
use serde::{Deserialize, Serialize};

/// The benchmark side of an imported data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NlbMeta {
    /// Benchmark dataset (`mc_maze_small`).
    pub dataset: String,
    /// Bin width, 5 or 20 ms.
    pub bin_ms: u32,
    /// `val` (eval targets known) or `test`.
    pub phase: String,
    /// The benchmark's train trials: the data set's first trials, in order.
    pub train_trials: usize,
    /// The benchmark's eval trials: the data set's last trials, in order.
    pub eval_trials: usize,
}

/// An imported NLB dataset: its description and, in the val phase, its targets.
#[derive(Clone, Debug, PartialEq)]
pub struct NlbData {
    /// Names and trial counts.
    pub meta: NlbMeta,
    /// The eval target group (val phase).
    pub target: Option<Target>,
}

impl NlbData {
    /// The submission and target group name (`mc_maze_small_20`).
    pub fn group(&self) -> String {
        super::names::group(&self.meta.dataset, self.meta.bin_ms)
    }
}

/// The optional arrays of a target, by name (condition indices and jitter apart).
pub fn target_arrays(t: &Target) -> Vec<(&'static str, &Array)> {
    let mut out = vec![("eval_spikes_heldout", &t.eval_spikes_heldout)];
    let optional = [
        ("train_behavior", &t.train_behavior),
        ("eval_behavior", &t.eval_behavior),
        ("eval_spikes_heldin_forward", &t.eval_spikes_heldin_forward),
        ("eval_spikes_heldout_forward", &t.eval_spikes_heldout_forward),
        ("train_decode_mask", &t.train_decode_mask),
        ("eval_decode_mask", &t.eval_decode_mask),
        ("psth", &t.psth),
    ];
    out.extend(optional.into_iter().filter_map(|(n, a)| a.as_ref().map(|a| (n, a))));
    out
}

/// Put array `name` back into a target.
pub fn set_target_array(t: &mut Target, name: &str, a: Array) -> bool {
    let slot = match name {
        "eval_spikes_heldout" => {
            t.eval_spikes_heldout = a;
            return true;
        }
        "train_behavior" => &mut t.train_behavior,
        "eval_behavior" => &mut t.eval_behavior,
        "eval_spikes_heldin_forward" => &mut t.eval_spikes_heldin_forward,
        "eval_spikes_heldout_forward" => &mut t.eval_spikes_heldout_forward,
        "train_decode_mask" => &mut t.train_decode_mask,
        "eval_decode_mask" => &mut t.eval_decode_mask,
        "psth" => &mut t.psth,
        _ => return false,
    };
    *slot = Some(a);
    true
}

/// Flatten lists to values and lengths (condition indices).
pub fn flatten_lists(lists: &[Vec<i32>]) -> (Vec<i32>, Vec<i32>) {
    (lists.iter().flatten().copied().collect(), lists.iter().map(|l| l.len() as i32).collect())
}

/// Undo [`flatten_lists`]; `None` when the lengths do not add up.
pub fn unflatten_lists(values: &[i32], lengths: &[i32]) -> Option<Vec<Vec<i32>>> {
    let mut out = Vec::with_capacity(lengths.len());
    let mut at = 0usize;
    for &n in lengths {
        let n = usize::try_from(n).ok()?;
        out.push(values.get(at..at + n)?.to_vec());
        at += n;
    }
    (at == values.len()).then_some(out)
}
