//! The Neural Latents Benchmark's metrics, as `nlb_tools.evaluation.evaluate`
//! (0.0.4) computes them (`../shared/nlb/NLB_FORMAT.md` section c): co-bps,
//! vel R2 (or tp corr for dmfc_rsg), psth R2 and fp-bps of one submission
//! group against one target group, in f64, from arrays in memory.

pub use super::array::Array;
use super::names;
use super::psth::eval_psth;
pub use super::psth::psth_r2_per_neuron;
use crate::metrics::{bits_per_spike, r2_uniform, ridge_cv};

/// One group of an eval target file (`make_eval_target_tensors`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    /// `[E, T, No]` held-out spikes of the eval trials.
    pub eval_spikes_heldout: Array,
    /// `[R, T, B]` (dmfc_rsg: `[R, 5]`).
    pub train_behavior: Option<Array>,
    /// `[E, T, B]` (dmfc_rsg: `[E, 5]`).
    pub eval_behavior: Option<Array>,
    /// `[E, Tf, Ni]`.
    pub eval_spikes_heldin_forward: Option<Array>,
    /// `[E, Tf, No]`.
    pub eval_spikes_heldout_forward: Option<Array>,
    /// `[R, M]` 0/1 (area2_bump).
    pub train_decode_mask: Option<Array>,
    /// `[E, M]` 0/1.
    pub eval_decode_mask: Option<Array>,
    /// `[C, T, Ni + No]`, spikes per bin.
    pub psth: Option<Array>,
    /// Per condition, positions of its trials among the eval trials.
    pub eval_cond_idx: Option<Vec<Vec<i32>>>,
    /// Per condition, positions among the train trials.
    pub train_cond_idx: Option<Vec<Vec<i32>>>,
    /// `[E]` bins each eval trial's window was shifted by (dmfc_rsg).
    pub eval_jitter: Option<Vec<i32>>,
    /// `[R]` (dmfc_rsg).
    pub train_jitter: Option<Vec<i32>>,
}

/// One group of a submission: rates in expected spikes per bin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Submission {
    /// `[E, T, Ni]`.
    pub eval_rates_heldin: Array,
    /// `[E, T, No]`.
    pub eval_rates_heldout: Array,
    /// `[R, T, Ni]` (required but for dmfc_rsg).
    pub train_rates_heldin: Option<Array>,
    /// `[R, T, No]`.
    pub train_rates_heldout: Option<Array>,
    /// `[E, Tf, Ni]`.
    pub eval_rates_heldin_forward: Option<Array>,
    /// `[E, Tf, No]`.
    pub eval_rates_heldout_forward: Option<Array>,
}

/// The metrics of one group; `None` where the benchmark does not compute one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupMetrics {
    /// Held-out neurons' bits per spike on the eval trials.
    pub co_bps: f64,
    /// Behaviour decoding R² (every dataset but dmfc_rsg).
    pub vel_r2: Option<f64>,
    /// Speed-tp correlation (dmfc_rsg).
    pub tp_corr: Option<f64>,
    /// PSTH R² (targets with a `psth`).
    pub psth_r2: Option<f64>,
    /// Forward-prediction bits per spike (submissions with both forward arrays).
    pub fp_bps: Option<f64>,
}

impl GroupMetrics {
    /// `(key, value)` pairs in `nlb_tools`' order and spelling.
    pub fn keyed(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![("co-bps", self.co_bps)];
        if let Some(v) = self.vel_r2 {
            out.push(("vel R2", v));
        }
        if let Some(v) = self.tp_corr {
            out.push(("tp corr", v));
        }
        if let Some(v) = self.psth_r2 {
            out.push(("psth R2", v));
        }
        if let Some(v) = self.fp_bps {
            out.push(("fp-bps", v));
        }
        out
    }
}

/// Why a submission cannot be scored (where `nlb_tools` would raise).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// An array the metric needs is absent.
    #[error("group {group}: `{array}` is missing")]
    Missing {
        /// The group (`mc_maze_small_20`).
        group: String,
        /// The array.
        array: &'static str,
    },
    /// Two arrays that must agree in shape do not.
    #[error("group {group}: `{array}` is {found:?}, expected {expected:?}")]
    Shape {
        /// The group.
        group: String,
        /// The array.
        array: &'static str,
        /// What the target implies.
        expected: Vec<usize>,
        /// What the submission holds.
        found: Vec<usize>,
    },
    /// A trial index outside the trials it indexes.
    #[error("group {group}: `{array}` holds trial {value}, outside the {trials} trials")]
    Index {
        /// The group.
        group: String,
        /// The array.
        array: &'static str,
        /// The index.
        value: i64,
        /// Trials there are.
        trials: usize,
    },
    /// A rate that is negative or NaN where the target is valid.
    #[error("group {group}: `{array}` at flat index {index} is {value}: rates must be non-negative and not NaN")]
    Rate {
        /// The group.
        group: String,
        /// The array.
        array: &'static str,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
}

struct Ctx<'a> {
    group: &'a str,
}

impl Ctx<'_> {
    fn need<'b, T>(&self, x: Option<&'b T>, array: &'static str) -> Result<&'b T, ScoreError> {
        x.ok_or_else(|| ScoreError::Missing { group: self.group.to_string(), array })
    }

    fn same_shape(&self, a: &Array, expected: &[usize], array: &'static str) -> Result<(), ScoreError> {
        if a.shape != expected {
            return Err(ScoreError::Shape {
                group: self.group.to_string(),
                array,
                expected: expected.to_vec(),
                found: a.shape.clone(),
            });
        }
        Ok(())
    }

    /// `bits_per_spike` with its assertions: rates non-negative, not NaN.
    fn bps(&self, rates: &Array, spikes: &Array, array: &'static str) -> Result<f64, ScoreError> {
        self.same_shape(rates, &spikes.shape, array)?;
        for (i, (&r, &n)) in rates.data.iter().zip(&spikes.data).enumerate() {
            if !n.is_nan() && (r.is_nan() || r < 0.0) {
                return Err(ScoreError::Rate { group: self.group.to_string(), array, index: i, value: r });
            }
        }
        Ok(bits_per_spike(&rates.data, &spikes.data, spikes.channels()))
    }
}

/// Score one submission group against its target group. `dataset` is the
/// benchmark's name (`mc_maze_small`), `group` the file's (`mc_maze_small_20`).
pub fn evaluate_group(dataset: &str, group: &str, t: &Target, s: &Submission) -> Result<GroupMetrics, ScoreError> {
    let c = Ctx { group };
    let co_bps = c.bps(&s.eval_rates_heldout, &t.eval_spikes_heldout, "eval_rates_heldout")?;
    let eval_rates = s.eval_rates_heldin.join(&s.eval_rates_heldout);
    let mut m = GroupMetrics { co_bps, ..GroupMetrics::default() };
    let (e, bins) = (t.eval_spikes_heldout.dim(0), t.eval_spikes_heldout.dim(1));
    c.same_shape(&s.eval_rates_heldin, &[e, bins, s.eval_rates_heldin.channels()], "eval_rates_heldin")?;
    if dataset == "dmfc_rsg" {
        let behavior = c.need(t.eval_behavior.as_ref(), "eval_behavior")?;
        if behavior.shape.len() != 2 || behavior.dim(0) != e || behavior.dim(1) < 4 {
            let found = behavior.shape.clone();
            return Err(ScoreError::Shape { group: group.into(), array: "eval_behavior", expected: vec![e, 5], found });
        }
        m.tp_corr = Some(speed_tp_correlation(&t.eval_spikes_heldout, &eval_rates, behavior));
    } else {
        let train_in = c.need(s.train_rates_heldin.as_ref(), "train_rates_heldin")?;
        let train_out = c.need(s.train_rates_heldout.as_ref(), "train_rates_heldout")?;
        let train_rates = train_in.join(train_out);
        let train_b = c.need(t.train_behavior.as_ref(), "train_behavior")?;
        let eval_b = c.need(t.eval_behavior.as_ref(), "eval_behavior")?;
        let outputs = train_b.channels();
        let r = train_rates.dim(0);
        c.same_shape(train_b, &[r, bins, outputs], "train_behavior")?;
        c.same_shape(eval_b, &[e, bins, outputs], "eval_behavior")?;
        for (mask, trials, array) in
            [(&t.train_decode_mask, r, "train_decode_mask"), (&t.eval_decode_mask, e, "eval_decode_mask")]
        {
            if let Some(m) = mask {
                let cols = t.train_decode_mask.as_ref().map_or(0, |m| m.channels());
                c.same_shape(m, &[trials, cols], array)?;
            }
        }
        m.vel_r2 = Some(velocity_decoding(
            &c,
            &train_rates,
            train_b,
            t.train_decode_mask.as_ref(),
            &eval_rates,
            eval_b,
            t.eval_decode_mask.as_ref(),
        )?);
    }
    if let Some(psth) = &t.psth {
        let cond = c.need(t.eval_cond_idx.as_ref(), "eval_cond_idx")?;
        c.same_shape(psth, &[cond.len(), bins, eval_rates.channels()], "psth")?;
        if let Some(&bad) = cond.iter().flatten().find(|&&i| i < 0 || i as usize >= e) {
            return Err(ScoreError::Index {
                group: group.into(),
                array: "eval_cond_idx",
                value: bad as i64,
                trials: e,
            });
        }
        m.psth_r2 = Some(eval_psth(psth, &eval_rates, cond, t.eval_jitter.as_deref()));
    }
    if let (Some(fi), Some(fo)) = (&s.eval_rates_heldin_forward, &s.eval_rates_heldout_forward) {
        let si = c.need(t.eval_spikes_heldin_forward.as_ref(), "eval_spikes_heldin_forward")?;
        let so = c.need(t.eval_spikes_heldout_forward.as_ref(), "eval_spikes_heldout_forward")?;
        c.same_shape(fi, &si.shape, "eval_rates_heldin_forward")?;
        m.fp_bps = Some(c.bps(&fi.join(fo), &si.join(so), "eval_rates_heldout_forward")?);
    }
    Ok(m)
}

/// Rows `[trials * bins, channels]` of the trials where `keep[trial]`.
fn rows_of(a: &Array, keep: &[bool]) -> Vec<f64> {
    let per = a.data.len() / a.dim(0).max(1);
    keep.iter().enumerate().filter(|(_, k)| **k).flat_map(|(i, _)| a.data[i * per..(i + 1) * per].to_vec()).collect()
}

fn velocity_decoding(
    c: &Ctx<'_>,
    train_rates: &Array,
    train_b: &Array,
    train_mask: Option<&Array>,
    eval_rates: &Array,
    eval_b: &Array,
    eval_mask: Option<&Array>,
) -> Result<f64, ScoreError> {
    let (features, outputs) = (train_rates.channels(), train_b.channels());
    let masks = train_mask.map_or(1, |m| m.channels());
    let column = |m: Option<&Array>, trials: usize, k: usize| -> Vec<bool> {
        match m {
            None => vec![true; trials],
            Some(m) => (0..trials).map(|i| m.data[i * m.channels() + k] != 0.0).collect(),
        }
    };
    let mut total = 0.0;
    for k in 0..masks {
        let select = |rates: &Array, b: &Array, keep: Vec<bool>| {
            let (x, y) = (rows_of(rates, &keep), rows_of(b, &keep));
            // Rows whose behaviour (channel 0) is NaN are dropped.
            let rows: Vec<usize> = (0..y.len() / outputs.max(1)).filter(|&r| !y[r * outputs].is_nan()).collect();
            let x: Vec<f64> = rows.iter().flat_map(|&r| x[r * features..(r + 1) * features].to_vec()).collect();
            let y: Vec<f64> = rows.iter().flat_map(|&r| y[r * outputs..(r + 1) * outputs].to_vec()).collect();
            (x, y)
        };
        let (tx, ty) = select(train_rates, train_b, column(train_mask, train_rates.dim(0), k));
        let (ex, ey) = select(eval_rates, eval_b, column(eval_mask, eval_rates.dim(0), k));
        for (array, x) in [("train_rates", &tx), ("eval_rates", &ex)] {
            if let Some(i) = x.iter().position(|v| v.is_nan()) {
                return Err(ScoreError::Rate { group: c.group.to_string(), array, index: i, value: f64::NAN });
            }
        }
        let (model, _) = ridge_cv(&tx, &ty, features, outputs);
        total += r2_uniform(&ey, &model.predict(&ex), outputs);
    }
    Ok(total / masks as f64)
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// dmfc_rsg: per trial, the mean over bins of the L2 norm of bin-to-bin rate
/// changes (bins where held-out neuron 0 has data); Pearson r with tp within
/// each (is_eye, theta, is_short) group; mean over groups.
fn speed_tp_correlation(spikes_heldout: &Array, eval_rates: &Array, behavior: &Array) -> f64 {
    let (trials, bins, n) = (eval_rates.dim(0), eval_rates.dim(1), eval_rates.dim(2));
    let no = spikes_heldout.channels();
    let speed: Vec<f64> = (0..trials)
        .map(|i| {
            let valid = |t: usize| !spikes_heldout.data[(i * bins + t) * no].is_nan();
            let (mut sum, mut count) = (0.0, 0usize);
            for t in 1..bins {
                if valid(t) && valid(t - 1) {
                    let a = &eval_rates.data[(i * bins + t) * n..(i * bins + t + 1) * n];
                    let b = &eval_rates.data[(i * bins + t - 1) * n..(i * bins + t) * n];
                    sum += a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
                    count += 1;
                }
            }
            sum / count as f64
        })
        .collect();
    let nb = behavior.channels();
    let key = |i: usize| [0, 1, 2].map(|k| behavior.data[i * nb + k].to_bits());
    let mut groups: Vec<[u64; 3]> = (0..trials).map(key).collect();
    groups.sort_unstable();
    groups.dedup();
    let corrs: Vec<f64> = groups
        .iter()
        .map(|g| {
            let members: Vec<usize> = (0..trials).filter(|&i| key(i) == *g).collect();
            let x: Vec<f64> = members.iter().map(|&i| speed[i]).collect();
            let y: Vec<f64> = members.iter().map(|&i| behavior.data[i * nb + nb - 1]).collect();
            pearson(&x, &y)
        })
        .collect();
    corrs.iter().sum::<f64>() / corrs.len().max(1) as f64
}

/// `nlb_tools`' result list: `(item name, [(metric key, value)])` in its order.
pub type Results = Vec<(String, Vec<(String, f64)>)>;

/// The benchmark's result list: one `(name, metrics)` item per scored group
/// (`mc_maze_20_split`, ...), the scaling datasets merged into one
/// `mc_maze_scaling[_20]_split` item with `[500] `/`[250] `/`[100] ` prefixes, last.
pub fn evaluate(targets: &[(String, Target)], submissions: &[(String, Submission)]) -> Result<Results, ScoreError> {
    let mut out = Vec::new();
    let mut scaling: Vec<(u32, Vec<(String, f64)>)> = Vec::new();
    for dataset in names::DATASETS {
        for bin_ms in [5, 20] {
            let group = names::group(dataset, bin_ms);
            let Some((_, sub)) = submissions.iter().find(|(g, _)| *g == group) else { continue };
            let Some((_, target)) = targets.iter().find(|(g, _)| *g == group) else { continue };
            let metrics = evaluate_group(dataset, &group, target, sub)?;
            match names::scaling_trials(dataset) {
                Some(count) => {
                    let keyed = metrics.keyed().into_iter().map(|(k, v)| (format!("[{count}] {k}"), v));
                    match scaling.iter_mut().find(|(b, _)| *b == bin_ms) {
                        Some((_, items)) => items.extend(keyed),
                        None => scaling.push((bin_ms, keyed.collect())),
                    }
                }
                None => out.push((
                    format!("{group}_split"),
                    metrics.keyed().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                )),
            }
        }
    }
    for (bin_ms, items) in scaling {
        out.push((format!("mc_maze_scaling{}_split", names::suffix(bin_ms)), items));
    }
    Ok(out)
}

/// The metrics list as a table, or (`json`) as `nlb_tools`' JSON list.
pub fn format_results(results: &Results, json: bool) -> String {
    if json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, metrics)| {
                let inner: serde_json::Map<String, serde_json::Value> =
                    metrics.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
                serde_json::json!({ name: inner })
            })
            .collect();
        return serde_json::to_string_pretty(&list).unwrap_or_default();
    }
    let mut out = String::new();
    for (name, metrics) in results {
        out += &format!("{name}\n");
        for (k, v) in metrics {
            out += &format!("  {k:<20} {v:.6}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize], data: Vec<f64>) -> Array {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        Array { shape: shape.to_vec(), data }
    }

    /// A deterministic pseudo-random value in [0, 1).
    fn u(i: usize) -> f64 {
        ((i * 2654435761) % 1000) as f64 / 1000.0
    }

    #[test]
    fn co_bps_masks_nan_targets_and_checks_rates() {
        let spikes = arr(&[1, 2, 2], vec![1.0, f64::NAN, 0.0, 3.0]);
        let rates = arr(&[1, 2, 2], vec![0.8, -5.0, 0.2, 2.5]);
        let c = Ctx { group: "g" };
        // The NaN target hides the negative rate; the result equals the two-column
        // computation on the valid elements only.
        let got = c.bps(&rates, &spikes, "eval_rates_heldout").unwrap();
        let want = bits_per_spike(&[0.8, f64::NAN, 0.2, 2.5], &[1.0, f64::NAN, 0.0, 3.0], 2);
        assert!((got - want).abs() < 1e-12 && got.is_finite());
        let bad = arr(&[1, 2, 2], vec![0.8, 1.0, -0.2, 2.5]);
        assert!(matches!(c.bps(&bad, &spikes, "x"), Err(ScoreError::Rate { index: 2, .. })));
    }

    #[test]
    fn decode_masks_average_the_r2_of_each_masked_subset() {
        // 12 train and 6 eval trials of 4 bins; behaviour linear in the rates plus noise.
        let (r, e, t, n, b) = (12, 6, 4, 3, 2);
        let rates = |trials: usize, off: usize| arr(&[trials, t, n], (0..trials * t * n).map(|i| u(i + off)).collect());
        let behave = |x: &Array, off: usize| {
            let rows = x.data.len() / n;
            let data = (0..rows)
                .flat_map(|row| {
                    let v = &x.data[row * n..(row + 1) * n];
                    [2.0 * v[0] - v[1] + 0.1 * u(row + off), v[2] + 0.1 * u(row * 7 + off)]
                })
                .collect();
            arr(&[x.dim(0), t, b], data)
        };
        let (tr, er) = (rates(r, 0), rates(e, 500));
        let (tb, eb) = (behave(&tr, 3), behave(&er, 9));
        let mask = |trials: usize| {
            arr(&[trials, 2], (0..trials).flat_map(|i| [(i % 2) as f64, 1.0 - (i % 2) as f64]).collect())
        };
        let (tm, em) = (mask(r), mask(e));
        let c = Ctx { group: "g" };
        let got = velocity_decoding(&c, &tr, &tb, Some(&tm), &er, &eb, Some(&em)).unwrap();
        // Independently: each mask's trials as a plain decoding problem, then the mean.
        let subset = |a: &Array, keep: usize| {
            let per = a.data.len() / a.dim(0);
            let trials: Vec<usize> = (0..a.dim(0)).filter(|i| i % 2 == keep).collect();
            let data = trials.iter().flat_map(|&i| a.data[i * per..(i + 1) * per].to_vec()).collect();
            arr(&[trials.len(), a.dim(1), a.dim(2)], data)
        };
        let mut want = 0.0;
        for keep in [1, 0] {
            let (x, y) = (subset(&tr, keep), subset(&tb, keep));
            let (model, _) = ridge_cv(&x.data, &y.data, n, b);
            let (ex, ey) = (subset(&er, keep), subset(&eb, keep));
            want += r2_uniform(&ey.data, &model.predict(&ex.data), b) / 2.0;
        }
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(got > 0.5, "a learnable map: {got}");
    }

    #[test]
    fn behaviour_rows_with_nan_are_dropped() {
        let (r, t, n) = (10, 3, 2);
        let tr = arr(&[r, t, n], (0..r * t * n).map(u).collect());
        let mut tb = arr(&[r, t, 1], (0..r * t).map(|row| tr.data[row * n] * 3.0 + tr.data[row * n + 1]).collect());
        let clean = velocity_decoding(&Ctx { group: "g" }, &tr, &tb, None, &tr, &tb, None).unwrap();
        tb.data[4] = f64::NAN;
        let masked = velocity_decoding(&Ctx { group: "g" }, &tr, &tb, None, &tr, &tb, None).unwrap();
        assert!(clean > 0.999 && masked > 0.999 && masked.is_finite(), "{clean} {masked}");
    }

    #[test]
    fn tp_correlation_by_hand() {
        // Two groups of three trials, 3 bins, 1 neuron, rates [0, s, 3s]: steps s and 2s,
        // speed 1.5 s. Group A speeds [1.5, 3, 4.5] against tp [10, 20, 30] (r = 1);
        // group B the same against tp [30, 20, 10] (r = -1): the mean is 0.
        let s_of = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
        let rates = arr(&[6, 3, 1], s_of.iter().flat_map(|&s| [0.0, s, 3.0 * s]).collect());
        let spikes = arr(&[6, 3, 1], vec![0.0; 18]);
        let tp = [10.0, 20.0, 30.0, 30.0, 20.0, 10.0];
        let beh = arr(&[6, 5], (0..6).flat_map(|i| [0.0, (i / 3) as f64, 1.0, 0.0, tp[i]]).collect());
        assert!(speed_tp_correlation(&spikes, &rates, &beh).abs() < 1e-12);
        // A NaN in bin 2 of trial 0's held-out spikes drops its second step: speed 1.
        let mut masked = spikes.clone();
        masked.data[2] = f64::NAN;
        let want = (pearson(&[1.0, 3.0, 4.5], &[10.0, 20.0, 30.0]) - 1.0) / 2.0;
        let got = speed_tp_correlation(&masked, &rates, &beh);
        assert!((got - want).abs() < 1e-12 && want.abs() > 1e-3, "{got} vs {want}");
    }

    #[test]
    fn a_group_keeps_its_name_and_groups_missing_from_the_target_are_skipped() {
        let t = Target {
            eval_spikes_heldout: arr(&[2, 2, 1], vec![1.0, 0.0, 2.0, 1.0]),
            eval_behavior: Some(arr(&[2, 5], vec![0.0, 1.0, 1.0, 0.0, 5.0, 0.0, 1.0, 1.0, 0.0, 7.0])),
            ..Target::default()
        };
        let s = Submission {
            eval_rates_heldin: arr(&[2, 2, 1], vec![1.0; 4]),
            eval_rates_heldout: arr(&[2, 2, 1], vec![0.5, 0.5, 1.5, 1.0]),
            ..Submission::default()
        };
        let out = evaluate(&[("dmfc_rsg_20".into(), t.clone())], &[("dmfc_rsg_20".into(), s.clone())]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "dmfc_rsg_20_split");
        assert_eq!(out[0].1.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["co-bps", "tp corr"]);
        // A malformed condition index is an error, not a panic.
        let mut bad = t.clone();
        bad.psth = Some(arr(&[1, 2, 2], vec![1.0; 4]));
        bad.eval_cond_idx = Some(vec![vec![0, 5]]);
        let got = evaluate(&[("dmfc_rsg_20".into(), bad)], &[("dmfc_rsg_20".into(), s.clone())]);
        assert!(matches!(got, Err(ScoreError::Index { value: 5, trials: 2, .. })), "{got:?}");
        // A group absent from the target is skipped.
        assert!(evaluate(&[], &[("dmfc_rsg".into(), s)]).unwrap().is_empty());
    }
}
