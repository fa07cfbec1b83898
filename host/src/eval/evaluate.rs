//! Evaluate predicted rates on a data set with the benchmark's metrics
//! (co-bps, fp-bps, velocity R², PSTH R², rate R² and the oracle's bits per spike).

use crate::data::{Dataset, Split};
use crate::metrics::{bits_per_spike, r2_uniform, ridge_cv};
use serde::{Deserialize, Serialize};

/// The metrics of one model on one data set; `None` where a metric is not
/// defined (no behaviour, no conditions, no forward bins, no true rates).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Bits per spike of held-out neurons, observed bins, eval trials.
    pub co_bps: Option<f64>,
    /// Bits per spike of all neurons, forward bins, eval trials.
    pub fp_bps: Option<f64>,
    /// R² of behaviour decoded by ridge regression from the rates (fit on training trials).
    pub vel_r2: Option<f64>,
    /// R² of condition-averaged rates against smoothed condition-averaged spikes.
    pub psth_r2: Option<f64>,
    /// R² of the rates against the true rates (synthetic data), all neurons and bins of eval trials.
    pub rate_r2: Option<f64>,
    /// Rate R² over the held-in neurons only (synthetic data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_r2_held_in: Option<f64>,
    /// Rate R² over the held-out neurons only (synthetic data with held-out neurons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_r2_held_out: Option<f64>,
    /// co-bps of the true rates.
    pub oracle_co_bps: Option<f64>,
    /// fp-bps of the true rates.
    pub oracle_fp_bps: Option<f64>,
    /// R² of the behaviour decoded by the model's own linear velocity decoder
    /// (the device's, from `y2`), when one was given (`lflow export`, `eval --blob`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_vel_r2: Option<f64>,
    /// On an imported NLB data set with eval targets: the metrics list exactly
    /// as `nlb_tools.evaluation.evaluate` returns it (the fields above then
    /// hold the same co-bps, fp-bps, vel R2 and psth R2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlb: Option<serde_json::Value>,
}

/// Gather `[trials, bins in range, neurons in range]` of a `[B, TT, N]` array as f64.
fn gather(
    v: &[f32],
    d: &Dataset,
    trials: &[usize],
    bins: std::ops::Range<usize>,
    neurons: std::ops::Range<usize>,
) -> Vec<f64> {
    let (tt, n) = (d.bins(), d.n_out);
    let mut out = Vec::with_capacity(trials.len() * bins.len() * neurons.len());
    for &i in trials {
        for t in bins.clone() {
            out.extend(v[(i * tt + t) * n + neurons.start..(i * tt + t) * n + neurons.end].iter().map(|x| *x as f64));
        }
    }
    out
}

/// Gaussian smoothing along time of each neuron of one trial `[bins, n]`
/// (kernel sd in bins, window `6 sd` wide, normalised to sum 1 over the part inside the trial).
fn smooth(x: &[f64], bins: usize, n: usize, sd: f64) -> Vec<f64> {
    let half = (3.0 * sd).ceil() as isize;
    let kernel: Vec<f64> = (-half..=half).map(|k| (-0.5 * (k as f64 / sd).powi(2)).exp()).collect();
    let mut out = vec![0.0; bins * n];
    for t in 0..bins as isize {
        let (mut acc, mut wsum) = (vec![0.0; n], 0.0);
        for (kk, w) in kernel.iter().enumerate() {
            let s = t + kk as isize - half;
            if s >= 0 && s < bins as isize {
                wsum += w;
                for (a, x) in acc.iter_mut().zip(&x[s as usize * n..(s as usize + 1) * n]) {
                    *a += w * x;
                }
            }
        }
        for (o, a) in out[t as usize * n..(t as usize + 1) * n].iter_mut().zip(acc) {
            *o = a / wsum;
        }
    }
    out
}

/// R² of `rates` (`[B, TT, N_out]`, spikes per bin, every trial of `d`)
/// against the true rates over `trials`, every bin and the `neurons` given,
/// averaged over neurons; `None` without true rates, trials or neurons.
pub fn rate_r2(d: &Dataset, rates: &[f32], trials: &[usize], neurons: std::ops::Range<usize>) -> Option<f64> {
    let truth = d.true_rates.as_ref()?;
    if trials.is_empty() || neurons.is_empty() {
        return None;
    }
    let n = neurons.len();
    let all = |v: &[f32]| gather(v, d, trials, 0..d.bins(), neurons.clone());
    Some(r2_uniform(&all(truth), &all(rates), n))
}

/// co-bps of `rates` (`[B, TT, N_out]`, every trial of `d`): held-out
/// neurons, observed bins of `trials`; `None` without held-out neurons or trials.
pub fn co_bps(d: &Dataset, rates: &[f32], trials: &[usize]) -> Option<f64> {
    let (nin, n) = (d.n_in, d.n_out);
    if n <= nin || trials.is_empty() {
        return None;
    }
    let co = |v: &[f32]| gather(v, d, trials, 0..d.observed, nin..n);
    Some(bits_per_spike(&co(rates), &co(&d.spikes), n - nin))
}

/// Evaluate `rates` (`[B, TT, N_out]` spikes per bin, every trial of `d`).
/// `psth_sd_ms` is the smoothing of the PSTH targets (50 ms for MC_Maze scaling sets).
pub fn evaluate(d: &Dataset, rates: &[f32], psth_sd_ms: f64) -> EvalReport {
    let eval = d.indices(Split::Eval);
    let train = d.indices(Split::Train);
    let (t_obs, tt, nin, n) = (d.observed, d.bins(), d.n_in, d.n_out);
    let mut r = EvalReport::default();
    if eval.is_empty() {
        return r;
    }
    let co = |v: &[f32]| gather(v, d, &eval, 0..t_obs, nin..n);
    let fp = |v: &[f32]| gather(v, d, &eval, t_obs..tt, 0..n);
    r.co_bps = co_bps(d, rates, &eval);
    if d.forward > 0 {
        r.fp_bps = Some(bits_per_spike(&fp(rates), &fp(&d.spikes), n));
    }
    if let Some(truth) = &d.true_rates {
        if n > nin {
            r.oracle_co_bps = Some(bits_per_spike(&co(truth), &co(&d.spikes), n - nin));
        }
        if d.forward > 0 {
            r.oracle_fp_bps = Some(bits_per_spike(&fp(truth), &fp(&d.spikes), n));
        }
        r.rate_r2 = rate_r2(d, rates, &eval, 0..n);
        r.rate_r2_held_in = rate_r2(d, rates, &eval, 0..nin);
        r.rate_r2_held_out = rate_r2(d, rates, &eval, nin..n);
    }
    if let (Some(beh), false) = (&d.behavior, train.is_empty()) {
        let k = d.n_beh;
        let rows = |trials: &[usize]| -> (Vec<f64>, Vec<f64>) {
            let x = gather(rates, d, trials, 0..t_obs, 0..n);
            let y = trials
                .iter()
                .flat_map(|&i| beh[i * t_obs * k..(i + 1) * t_obs * k].iter().map(|v| *v as f64))
                .collect();
            (x, y)
        };
        let (xt, yt) = rows(&train);
        let (xe, ye) = rows(&eval);
        let (model, _) = ridge_cv(&xt, &yt, n, k);
        r.vel_r2 = Some(r2_uniform(&ye, &model.predict(&xe), k));
    }
    if let Some(cond) = &d.conditions {
        let sd = psth_sd_ms / d.bin_ms as f64;
        let mut ids: Vec<u32> = eval.iter().map(|&i| cond[i]).collect();
        ids.sort_unstable();
        ids.dedup();
        let (mut truth, mut pred) = (Vec::new(), Vec::new());
        for c in ids {
            let members: Vec<usize> = (0..d.trials()).filter(|&i| cond[i] == c).collect();
            let evals: Vec<usize> = eval.iter().copied().filter(|&i| cond[i] == c).collect();
            let mut mean_true = vec![0.0; t_obs * n];
            for &i in &members {
                let s = smooth(&gather(&d.spikes, d, &[i], 0..t_obs, 0..n), t_obs, n, sd);
                mean_true.iter_mut().zip(s).for_each(|(m, x)| *m += x / members.len() as f64);
            }
            let mut mean_pred = vec![0.0; t_obs * n];
            for &i in &evals {
                let p = gather(rates, d, &[i], 0..t_obs, 0..n);
                mean_pred.iter_mut().zip(p).for_each(|(m, x)| *m += x / evals.len() as f64);
            }
            truth.extend(mean_true);
            pred.extend(mean_pred);
        }
        r.psth_r2 = Some(r2_uniform(&truth, &pred, n));
    }
    r
}

impl EvalReport {
    /// The report as a table: each metric of the model and of the true rates.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
        let rows = [
            ("co-bps", self.co_bps, self.oracle_co_bps),
            ("fp-bps", self.fp_bps, self.oracle_fp_bps),
            ("vel R2", self.vel_r2, None),
            ("psth R2", self.psth_r2, None),
            ("rate R2", self.rate_r2, None),
        ];
        let mut out = format!("{:<8} {:>9} {:>12}\n", "metric", "model", "true rates");
        for (name, model, oracle) in rows {
            out += &format!("{name:<8} {:>9} {:>12}\n", f(model), f(oracle));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // 3 trials (train, train, eval), 2 observed + 1 forward bin, 1 held-in + 1 held-out neuron.
        Dataset {
            n_in: 1,
            n_out: 2,
            observed: 2,
            forward: 1,
            bin_ms: 10.0,
            spikes: vec![1., 0., 0., 1., 2., 2., /**/ 0., 1., 1., 0., 0., 0., /**/ 1., 2., 0., 0., 3., 1.],
            true_rates: Some(vec![0.5; 18]),
            behavior: None,
            n_beh: 0,
            conditions: None,
            split: vec![Split::Train, Split::Train, Split::Eval],
            nlb: None,
            segments: None,
        }
    }

    #[test]
    fn co_and_fp_bps_select_the_right_elements() {
        let d = tiny();
        let rates: Vec<f32> = (0..18).map(|i| 0.2 + 0.1 * i as f32).collect();
        let r = evaluate(&d, &rates, 50.0);
        // co-bps: eval trial 2, bins 0..2, neuron 1: spikes [2, 0], rates [0.2+1.3, 0.2+1.5].
        let co = bits_per_spike(&[1.5, 1.7], &[2.0, 0.0], 1);
        assert!((r.co_bps.unwrap() - co).abs() < 1e-6);
        // fp-bps: bin 2, both neurons: spikes [3, 1], rates [1.8, 1.9].
        let fp = bits_per_spike(&[1.8, 1.9], &[3.0, 1.0], 2);
        assert!((r.fp_bps.unwrap() - fp).abs() < 1e-6);
        assert!(r.oracle_co_bps.is_some() && r.rate_r2.is_some());
        assert_eq!((r.vel_r2, r.psth_r2), (None, None));
    }

    #[test]
    fn rate_r2_of_held_in_and_held_out_neurons_by_hand() {
        let mut d = tiny();
        // Eval trial 2, bins 0..3: truth neuron 0 [1, 2, 3], neuron 1 [2, 2, 5].
        let mut truth = vec![0.0f32; 18];
        truth[12..].copy_from_slice(&[1., 2., 2., 2., 3., 5.]);
        d.true_rates = Some(truth);
        let mut rates = vec![7.0f32; 18]; // the training trials' rates must not count
        rates[12..].copy_from_slice(&[1., 3., 2., 2., 4., 5.]);
        let r = evaluate(&d, &rates, 50.0);
        // Neuron 0: residuals [0, 0, 1], truth mean 2, ss_tot 2: R2 = 1 - 1/2.
        // Neuron 1: residuals [1, 0, 0], truth mean 3, ss_tot 1 + 1 + 4 = 6: R2 = 1 - 1/6.
        let (held_in, held_out) = (0.5, 1.0 - 1.0 / 6.0);
        assert!((r.rate_r2_held_in.unwrap() - held_in).abs() < 1e-12, "{r:?}");
        assert!((r.rate_r2_held_out.unwrap() - held_out).abs() < 1e-12, "{r:?}");
        assert!((r.rate_r2.unwrap() - (held_in + held_out) / 2.0).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn psth_r2_by_hand() {
        // Trials 0 and 2 share condition 0, trial 1 is condition 1; only trial 2 is evaluated,
        // so condition 0 alone is scored. With a vanishing smoothing width the true PSTH is
        // the mean over trials 0 and 2 of their observed spikes.
        let mut d = tiny();
        d.conditions = Some(vec![0, 1, 0]);
        let rates: Vec<f32> = (0..18).map(|i| 0.25 * i as f32).collect();
        let r = evaluate(&d, &rates, 1e-3);
        // Observed bins: trial 0 [[1,0],[0,1]], trial 2 [[1,2],[0,0]] -> mean [[1,1],[0,0.5]].
        // Prediction: trial 2's rates at bins 0, 1: [[3.0, 3.25], [3.5, 3.75]].
        let truth = [1.0, 1.0, 0.0, 0.5];
        let pred = [3.0, 3.25, 3.5, 3.75];
        let r2 = |t: [f64; 2], p: [f64; 2]| {
            let m = (t[0] + t[1]) / 2.0;
            1.0 - ((t[0] - p[0]).powi(2) + (t[1] - p[1]).powi(2)) / ((t[0] - m).powi(2) + (t[1] - m).powi(2))
        };
        let want = (r2([truth[0], truth[2]], [pred[0], pred[2]]) + r2([truth[1], truth[3]], [pred[1], pred[3]])) / 2.0;
        assert!((r.psth_r2.unwrap() - want).abs() < 1e-9, "{:?} vs {want}", r.psth_r2);
    }
}
