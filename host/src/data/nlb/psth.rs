//! The PSTH R² of the Neural Latents Benchmark (`nlb_tools` 0.0.4
//! `evaluation.py`): condition-averaged rates against smoothed
//! condition-averaged spikes, each trial shifted by its jitter (dmfc_rsg).

use super::array::Array;
use crate::metrics::r2_per_output;

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

/// The psth R²: the mean of [`psth_r2_per_neuron`].
pub(super) fn eval_psth(psth: &Array, eval_rates: &Array, cond_idx: &[Vec<i32>], jitter: Option<&[i32]>) -> f64 {
    let r2 = psth_r2_per_neuron(psth, eval_rates, cond_idx, jitter);
    r2.iter().sum::<f64>() / r2.len().max(1) as f64
}

/// PSTH R² of each neuron (the psth R² is their mean): condition-averaged
/// `eval_rates [E, T, N]` (each trial shifted by its `jitter`) against
/// `psth [C, T, N]`, over the bins where the PSTH is not NaN.
/// `cond_idx` holds each condition's eval trials (checked against `E` by the caller).
pub fn psth_r2_per_neuron(psth: &Array, eval_rates: &Array, cond_idx: &[Vec<i32>], jitter: Option<&[i32]>) -> Vec<f64> {
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
    r2_per_output(&truth, &pred, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize], data: Vec<f64>) -> Array {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        Array { shape: shape.to_vec(), data }
    }

    #[test]
    fn jitter_shifts_a_trial_as_nlb_tools_does() {
        // Two bins, one channel: [a, b]. +1: [NaN, a]; -1: [b, NaN]; 0: as is.
        let t = [1.0, 2.0];
        let s = shifted(&t, 2, 1, 1);
        assert!(s[0].is_nan() && s[1] == 1.0);
        let s = shifted(&t, 2, 1, -1);
        assert!(s[0] == 2.0 && s[1].is_nan());
        assert_eq!(shifted(&t, 2, 1, 0), vec![1.0, 2.0]);
    }

    #[test]
    fn psth_r2_with_jitter_and_nan_bins_by_hand() {
        // One condition of two eval trials, 3 bins, 1 neuron; trial 1 jittered by +1.
        // Trial rates: [1, 2, 3] and [4, 5, 6] -> shifted [NaN, 4, 5]; the mean is NaN
        // in bin 0, which the target masks (NaN there), so only bins 1 and 2 count:
        // predictions (2 + 4) / 2 = 3 and (3 + 5) / 2 = 4 against truth [3, 5].
        let rates = arr(&[2, 3, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let psth = arr(&[1, 3, 1], vec![f64::NAN, 3.0, 5.0]);
        let r2 = eval_psth(&psth, &rates, &[vec![0, 1]], Some(&[0, 1]));
        // ss_res = 0 + 1, ss_tot = 1 + 1 -> 0.5.
        assert!((r2 - 0.5).abs() < 1e-12, "{r2}");
    }
}
