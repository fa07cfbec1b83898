//! The Neural Latents Benchmark metrics (MODEL.md section 8; `nlb_tools` 0.0.4
//! `evaluation.py`, summarised in `../shared/nlb/NLB_FORMAT.md`), in f64.

/// Poisson negative log-likelihood `sum r - n ln r + ln n!` over elements whose
/// spike count is not NaN; rates of exactly 0 count as 1e-9.
pub fn poisson_nll(rates: &[f64], spikes: &[f64]) -> f64 {
    rates
        .iter()
        .zip(spikes)
        .filter(|(_, n)| !n.is_nan())
        .map(|(&r, &n)| {
            let r = if r == 0.0 { 1e-9 } else { r };
            r - n * r.ln() + libm::lgamma(n + 1.0)
        })
        .sum()
}

/// Bits per spike of `rates` on `spikes`, both `[rows, neurons]` row-major: the
/// null model predicts each neuron's mean count over all rows (NaN-aware);
/// `(NLL_null - NLL) / (sum of spikes * ln 2)`, pooled over neurons.
pub fn bits_per_spike(rates: &[f64], spikes: &[f64], neurons: usize) -> f64 {
    let mut sum = vec![0.0f64; neurons];
    let mut count = vec![0usize; neurons];
    for (i, &n) in spikes.iter().enumerate() {
        if !n.is_nan() {
            sum[i % neurons] += n;
            count[i % neurons] += 1;
        }
    }
    let null: Vec<f64> = (0..spikes.len())
        .map(|i| {
            let m = sum[i % neurons] / count[i % neurons].max(1) as f64;
            if m == 0.0 {
                1e-9
            } else {
                m
            }
        })
        .collect();
    let total: f64 = spikes.iter().filter(|n| !n.is_nan()).sum();
    (poisson_nll(&null, spikes) - poisson_nll(rates, spikes)) / (total * std::f64::consts::LN_2)
}

/// R² of `pred` against `truth` (`[rows, outputs]`), averaged uniformly over
/// outputs, as sklearn's `r2_score`: a constant true column scores 1 when
/// predicted exactly, else 0.
pub fn r2_uniform(truth: &[f64], pred: &[f64], outputs: usize) -> f64 {
    r2_per_output(truth, pred, outputs).iter().sum::<f64>() / outputs.max(1) as f64
}

/// R² of each output column.
pub fn r2_per_output(truth: &[f64], pred: &[f64], outputs: usize) -> Vec<f64> {
    let rows = truth.len() / outputs.max(1);
    (0..outputs)
        .map(|j| {
            let mean = (0..rows).map(|r| truth[r * outputs + j]).sum::<f64>() / rows.max(1) as f64;
            let ss_tot: f64 = (0..rows).map(|r| (truth[r * outputs + j] - mean).powi(2)).sum();
            let ss_res: f64 = (0..rows).map(|r| (truth[r * outputs + j] - pred[r * outputs + j]).powi(2)).sum();
            if ss_tot == 0.0 {
                if ss_res == 0.0 {
                    1.0
                } else {
                    0.0
                }
            } else {
                1.0 - ss_res / ss_tot
            }
        })
        .collect()
}

/// A fitted ridge regression `y = x W^T + b` (sklearn `Ridge`: intercept
/// unpenalised, no feature scaling, one alpha for every output).
#[derive(Clone, Debug, PartialEq)]
pub struct Ridge {
    /// Inputs.
    pub features: usize,
    /// Outputs.
    pub outputs: usize,
    /// `[outputs, features]`.
    pub coef: Vec<f64>,
    /// `[outputs]`.
    pub intercept: Vec<f64>,
    /// The penalty it was fitted with.
    pub alpha: f64,
}

/// Solve `A x = b` for symmetric positive definite `A [n, n]` (Cholesky), in place in `b`.
fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64], rhs: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for c in 0..rhs {
        for i in 0..n {
            let mut s = b[i * rhs + c];
            for k in 0..i {
                s -= a[i * n + k] * b[k * rhs + c];
            }
            b[i * rhs + c] = s / a[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = b[i * rhs + c];
            for k in i + 1..n {
                s -= a[k * n + i] * b[k * rhs + c];
            }
            b[i * rhs + c] = s / a[i * n + i];
        }
    }
    true
}

impl Ridge {
    /// Fit on rows `x [rows, features]`, `y [rows, outputs]`.
    pub fn fit(x: &[f64], y: &[f64], features: usize, outputs: usize, alpha: f64) -> Ridge {
        let rows = x.len() / features.max(1);
        let xm: Vec<f64> =
            (0..features).map(|j| (0..rows).map(|r| x[r * features + j]).sum::<f64>() / rows as f64).collect();
        let ym: Vec<f64> =
            (0..outputs).map(|j| (0..rows).map(|r| y[r * outputs + j]).sum::<f64>() / rows as f64).collect();
        let mut gram = vec![0.0f64; features * features];
        let mut xty = vec![0.0f64; features * outputs];
        for r in 0..rows {
            let xr: Vec<f64> = (0..features).map(|j| x[r * features + j] - xm[j]).collect();
            for i in 0..features {
                for j in 0..=i {
                    gram[i * features + j] += xr[i] * xr[j];
                }
                for o in 0..outputs {
                    xty[i * outputs + o] += xr[i] * (y[r * outputs + o] - ym[o]);
                }
            }
        }
        for i in 0..features {
            for j in 0..i {
                gram[j * features + i] = gram[i * features + j];
            }
            gram[i * features + i] += alpha;
        }
        if !cholesky_solve(&mut gram, features, &mut xty, outputs) {
            xty.fill(0.0);
        }
        let coef: Vec<f64> =
            (0..outputs).flat_map(|o| (0..features).map(|i| xty[i * outputs + o]).collect::<Vec<_>>()).collect();
        let intercept =
            (0..outputs).map(|o| ym[o] - (0..features).map(|i| coef[o * features + i] * xm[i]).sum::<f64>()).collect();
        Ridge { features, outputs, coef, intercept, alpha }
    }

    /// Predictions `[rows, outputs]` for `x [rows, features]`.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        let rows = x.len() / self.features.max(1);
        let mut out = Vec::with_capacity(rows * self.outputs);
        for r in 0..rows {
            let xr = &x[r * self.features..(r + 1) * self.features];
            for o in 0..self.outputs {
                let w = &self.coef[o * self.features..(o + 1) * self.features];
                out.push(self.intercept[o] + w.iter().zip(xr).map(|(a, b)| a * b).sum::<f64>());
            }
        }
        out
    }
}

/// The alpha grid of the benchmark: `logspace(-4, 0, 9)`.
pub fn alpha_grid() -> Vec<f64> {
    (0..9).map(|i| 10f64.powf(-4.0 + i as f64 * 0.5)).collect()
}

/// Ridge with alpha chosen by 5-fold unshuffled cross-validation over rows
/// (sklearn `GridSearchCV(Ridge(), {'alpha': logspace(-4, 0, 9)})`): the
/// first `rows % 5` folds hold one row more; the highest mean fold R² wins,
/// the smallest alpha on ties; then a refit on every row.
pub fn ridge_cv(x: &[f64], y: &[f64], features: usize, outputs: usize) -> (Ridge, Vec<f64>) {
    let rows = x.len() / features.max(1);
    let folds = 5usize.min(rows.max(1));
    let mut bounds = Vec::with_capacity(folds + 1);
    bounds.push(0);
    for k in 0..folds {
        bounds.push(bounds[k] + rows / folds + usize::from(k < rows % folds));
    }
    let scores: Vec<f64> = alpha_grid()
        .iter()
        .map(|&alpha| {
            let mut total = 0.0;
            for k in 0..folds {
                let (lo, hi) = (bounds[k], bounds[k + 1]);
                let keep = |v: &[f64], w: usize, test: bool| -> Vec<f64> {
                    (0..rows)
                        .filter(|r| (lo..hi).contains(r) == test)
                        .flat_map(|r| v[r * w..(r + 1) * w].to_vec())
                        .collect()
                };
                let model = Ridge::fit(&keep(x, features, false), &keep(y, outputs, false), features, outputs, alpha);
                total += r2_uniform(&keep(y, outputs, true), &model.predict(&keep(x, features, true)), outputs);
            }
            total / folds as f64
        })
        .collect();
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    (Ridge::fit(x, y, features, outputs, alpha_grid()[best]), scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_by_hand() {
        // r=2, n=1: 2 - ln 2 + ln 1! ; r=0 (-> 1e-9), n=0: 1e-9 ; NaN target skipped.
        let got = poisson_nll(&[2.0, 0.0, 5.0], &[1.0, 0.0, f64::NAN]);
        let want = 2.0 - 2f64.ln() + 1e-9;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // n=3: ln 3! = ln 6.
        assert!((poisson_nll(&[1.0], &[3.0]) - (1.0 + 6f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn bits_per_spike_by_hand() {
        // One neuron, spikes [0, 2]; null rate 1; model rates [0.5, 2].
        let s = [0.0, 2.0];
        let nll = |r: [f64; 2]| r[0] - 0.0 + (r[1] - 2.0 * r[1].ln() + 2f64.ln());
        let want = (nll([1.0, 1.0]) - nll([0.5, 2.0])) / (2.0 * std::f64::consts::LN_2);
        assert!((bits_per_spike(&[0.5, 2.0], &s, 1) - want).abs() < 1e-12);
        // The null model itself scores 0; a neuron that never fires uses 1e-9 as its null rate.
        assert!(bits_per_spike(&[1.0, 1.0], &s, 1).abs() < 1e-12);
        let two = bits_per_spike(&[0.5, 1e-9, 2.0, 1e-9], &[0.0, 0.0, 2.0, 0.0], 2);
        assert!((two - want).abs() < 1e-9, "{two} vs {want}");
    }

    #[test]
    fn r2_by_hand() {
        // truth [1,2,3], pred [1,2,4]: ss_res 1, ss_tot 2 -> 0.5; a constant column predicted exactly -> 1.
        let truth = [1.0, 5.0, 2.0, 5.0, 3.0, 5.0];
        let pred = [1.0, 5.0, 2.0, 5.0, 4.0, 5.0];
        assert_eq!(r2_per_output(&truth, &pred, 2), vec![0.5, 1.0]);
        assert_eq!(r2_uniform(&truth, &pred, 2), 0.75);
        assert_eq!(r2_per_output(&[5.0, 5.0], &[5.0, 4.0], 1), vec![0.0]);
    }

    #[test]
    fn ridge_by_hand() {
        // One feature, x = [0, 1, 2], y = [1, 3, 5]: centred x [-1, 0, 1], y [-2, 0, 2];
        // w = sum(xy) / (sum(x^2) + alpha) = 4 / (2 + alpha); b = 3 - w.
        for alpha in [0.0, 1.0] {
            let m = Ridge::fit(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0], 1, 1, alpha);
            let w = 4.0 / (2.0 + alpha);
            assert!((m.coef[0] - w).abs() < 1e-12 && (m.intercept[0] - (3.0 - w)).abs() < 1e-12);
        }
    }

    #[test]
    fn ridge_cv_prefers_small_alpha_on_clean_data_and_folds_like_kfold() {
        // y = 2 x1 - x2 + 1 exactly: every fold is fitted best by the smallest alpha.
        let x: Vec<f64> = (0..23).flat_map(|i| [i as f64, ((i * 7) % 5) as f64]).collect();
        let y: Vec<f64> = x.chunks(2).map(|r| 2.0 * r[0] - r[1] + 1.0).collect();
        let (m, scores) = ridge_cv(&x, &y, 2, 1);
        assert_eq!(m.alpha, 1e-4);
        assert!(scores[0] > 0.999999 && scores.windows(2).all(|w| w[0] >= w[1]));
    }
}
