//! The Neural Latents Benchmark's metrics, as `nlb_tools.evaluation.evaluate`
//! (0.0.4) computes them (`../shared/nlb/NLB_FORMAT.md` section c): co-bps,
//! vel R2 (or tp corr for dmfc_rsg), psth R2 and fp-bps of one submission
//! group against one target group, in f64, from arrays in memory.

use super::names;
use crate::metrics::{bits_per_spike, r2_per_output, r2_uniform, ridge_cv};

/// A row-major array: `shape` and values (NaN marks missing data, as in the files).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f64>,
}

impl Array {
    /// An array of `shape` from f32 values.
    pub fn from_f32(shape: Vec<usize>, data: &[f32]) -> Array {
        Array { shape, data: data.iter().map(|&x| x as f64).collect() }
    }

    /// Size of dimension `i` (0 past the end).
    pub fn dim(&self, i: usize) -> usize {
        self.shape.get(i).copied().unwrap_or(0)
    }

    /// The last dimension (the channels of a `[trials, bins, channels]` array).
    pub fn channels(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// `[a, b, x]` and `[a, b, y]` joined along the last dimension (`np.dstack`).
    pub fn join(&self, other: &Array) -> Array {
        let (x, y) = (self.channels(), other.channels());
        let rows = self.data.len() / x.max(1);
        let mut data = Vec::with_capacity(self.data.len() + other.data.len());
        for r in 0..rows {
            data.extend_from_slice(&self.data[r * x..(r + 1) * x]);
            data.extend_from_slice(&other.data[r * y..(r + 1) * y]);
        }
        let mut shape = self.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = x + y;
        }
        Array { shape, data }
    }
}

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
    if dataset == "dmfc_rsg" {
        let behavior = c.need(t.eval_behavior.as_ref(), "eval_behavior")?;
        m.tp_corr = Some(speed_tp_correlation(&t.eval_spikes_heldout, &eval_rates, behavior));
    } else {
        let train_in = c.need(s.train_rates_heldin.as_ref(), "train_rates_heldin")?;
        let train_out = c.need(s.train_rates_heldout.as_ref(), "train_rates_heldout")?;
        let train_rates = train_in.join(train_out);
        let train_b = c.need(t.train_behavior.as_ref(), "train_behavior")?;
        let eval_b = c.need(t.eval_behavior.as_ref(), "eval_behavior")?;
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

/// The trial's rows shifted by `jitter` bins: positive puts NaN rows in front
/// and drops the tail, negative drops the head and pads NaN rows at the end.
fn shifted(trial: &[f64], bins: usize, channels: usize, jitter: i32) -> Vec<f64> {
    let mut out = vec![f64::NAN; bins * channels];
    for t in 0..bins {
        let src = t as i64 - jitter as i64;
        if src >= 0 && (src as usize) < bins {
            out[t * channels..(t + 1) * channels]
                .copy_from_slice(&trial[src as usize * channels..(src as usize + 1) * channels]);
        }
    }
    out
}

fn eval_psth(psth: &Array, eval_rates: &Array, cond_idx: &[Vec<i32>], jitter: Option<&[i32]>) -> f64 {
    let (bins, n) = (psth.dim(1), psth.dim(2));
    let per = bins * n;
    let (mut truth, mut pred) = (Vec::new(), Vec::new());
    for (i, idx) in cond_idx.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let mut mean = vec![0.0f64; per];
        for &trial in idx {
            let trial = trial.max(0) as usize;
            let rates = &eval_rates.data[trial * per..(trial + 1) * per];
            let j = jitter.and_then(|j| j.get(trial)).copied().unwrap_or(0);
            for (m, v) in mean.iter_mut().zip(shifted(rates, bins, n, j)) {
                *m += v / idx.len() as f64;
            }
        }
        let p = &psth.data[i * per..(i + 1) * per];
        for t in 0..bins {
            if !p[t * n].is_nan() {
                truth.extend_from_slice(&p[t * n..(t + 1) * n]);
                pred.extend_from_slice(&mean[t * n..(t + 1) * n]);
            }
        }
    }
    let r2 = r2_per_output(&truth, &pred, n);
    r2.iter().sum::<f64>() / n.max(1) as f64
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
