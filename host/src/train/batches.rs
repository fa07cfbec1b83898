//! Batches as every backend receives them: trials of a data set with their
//! noise and, in training, coordinated dropout (MODEL.md section 6). Every
//! draw comes from a per-trial stream, so a seed fixes a batch whatever the
//! thread count.

use crate::config::{Mode, ModelConfig};
use crate::data::Dataset;
use crate::train::backend::Batch;
use lflow_core::Seeded;

/// Per-trial random streams (`which`: 1 noise, 2 coordinated-dropout masks).
pub(crate) fn trial_stream(seed: u64, which: u64) -> Seeded {
    Seeded::new(seed ^ which.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// The seed of trial `trial` in a prediction pass seeded with `seed` (`None`: mean mode, 0).
pub(crate) fn prediction_seed(seed: Option<u64>, trial: usize) -> u64 {
    seed.map_or(0, |s| s ^ (trial as u64).wrapping_mul(0x9E37_79B9))
}

/// The noise source of trial `trial` in a prediction pass seeded with `seed`
/// ([`crate::train::predictor::Predictor::log_rates`] with one sample uses
/// `seed` itself). A device decoding that trial with this `Seeded` source
/// draws exactly the host's noise, in the same order (`e_z`, `e_v`, then one
/// `e_t` per bin).
pub fn prediction_noise(seed: u64, trial: usize) -> Seeded {
    trial_stream(prediction_seed(Some(seed), trial), 1)
}

/// Fill `b` with `trials` of `data`, one seed each. `cd_rate: Some(cd)` applies
/// coordinated dropout with keep rate `cd` (training; off unless `0 < cd < 1`);
/// without `draw_noise` every draw is 0 (mean mode).
pub fn fill(
    b: &mut Batch,
    model: &ModelConfig,
    data: &Dataset,
    trials: &[usize],
    seeds: &[u64],
    cd_rate: Option<f32>,
    draw_noise: bool,
) {
    let (t_obs, tt, h) = (data.observed, data.bins(), model.hidden);
    b.trials = trials.len();
    b.observed = t_obs;
    b.bins = tt;
    b.input.clear();
    b.targets.clear();
    b.grad_mask.clear();
    b.noise.resize(trials.len() * (tt + 1) * h, 0.0);
    b.seeds.clear();
    b.seeds.extend_from_slice(seeds);
    let cd = cd_rate.filter(|cd| *cd > 0.0 && *cd < 1.0);
    // Box-Muller draws dominate batch assembly: one trial's stream per task
    // (the streams are per trial, so the thread count changes nothing).
    if draw_noise {
        use rayon::prelude::*;
        b.noise.par_chunks_mut((tt + 1) * h).zip(seeds.par_iter()).for_each(|(draws, &seed)| {
            let mut noise = trial_stream(seed, 1);
            draws.iter_mut().for_each(|x| *x = noise.next_normal());
        });
    } else {
        b.noise.fill(0.0);
    }
    for (&i, &seed) in trials.iter().zip(seeds) {
        b.targets.extend_from_slice(data.trial_spikes(i));
        let start = b.input.len();
        data.push_input(i, &mut b.input);
        if let Some(cd) = cd {
            let mut rng = trial_stream(seed, 2);
            let uniform = |rng: &mut Seeded| (rng.next_u32() >> 8) as f32 / 16_777_216.0;
            for x in &mut b.input[start..] {
                let kept = uniform(&mut rng) < cd;
                let pass = uniform(&mut rng) < 1.0 - cd;
                *x = if kept { *x / cd } else { 0.0 };
                let grad = match model.mode {
                    Mode::Paper { .. } => !kept || pass,
                    Mode::Streaming { .. } => !kept,
                };
                b.grad_mask.push(if grad { 1.0 } else { 0.0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;

    #[test]
    fn coordinated_dropout_keeps_cd_scales_by_1_over_cd_and_masks_gradients_per_mode() {
        // Every held-in count is 2, so the input shows the keep mask m: 2 / cd where kept, else 0.
        let (trials, observed, n_in) = (40usize, 10usize, 20usize);
        let data = Dataset {
            n_in,
            n_out: 25,
            observed,
            forward: 2,
            bin_ms: 10.0,
            spikes: vec![2.0; trials * 12 * 25],
            true_rates: None,
            behavior: None,
            n_beh: 0,
            conditions: None,
            split: vec![Split::Train; trials],
            nlb: None,
            segments: None,
        };
        let cd = 0.3f32; // not 0.5: an inverted keep mask shows
        let picked: Vec<usize> = (0..trials).collect();
        let seeds: Vec<u64> = (0..trials as u64).map(|i| 1000 + i).collect();
        let elements = (trials * observed * n_in) as f64;
        // Binomial fractions over 8000 elements: 4 standard deviations is about 0.02.
        let near = |got: f64, want: f64, what: &str| assert!((got - want).abs() < 0.02, "{what}: {got:.4} vs {want}");
        for mode in [Mode::PAPER, Mode::Streaming { window: 4 }] {
            let model = ModelConfig { mode, ..ModelConfig::paper(n_in, 25, 4, 8) };
            let mut b = Batch::default();
            fill(&mut b, &model, &data, &picked, &seeds, Some(cd), false);
            assert_eq!((b.input.len(), b.grad_mask.len()), (trials * observed * n_in, trials * observed * n_in));
            let (mut kept, mut kept_with_grad, mut dropped_with_grad) = (0usize, 0usize, 0usize);
            for (x, g) in b.input.iter().zip(&b.grad_mask) {
                assert!(*x == 0.0 || *x == 2.0 / cd, "{mode:?}: input {x}, not 0 or 2 / cd");
                assert!(*g == 0.0 || *g == 1.0);
                if *x > 0.0 {
                    kept += 1;
                    kept_with_grad += *g as usize;
                } else {
                    dropped_with_grad += *g as usize;
                }
            }
            let dropped = b.input.len() - kept;
            near(kept as f64 / elements, cd as f64, &format!("{mode:?}: kept fraction (m ~ Bernoulli(cd))"));
            // Where the input was dropped the loss always gets gradient (`!m`).
            assert_eq!(dropped_with_grad, dropped, "{mode:?}: a dropped input's loss element without gradient");
            match mode {
                // Paper: `!m || q`, q ~ Bernoulli(1 - cd): kept elements pass with probability 1 - cd.
                Mode::Paper { .. } => near(kept_with_grad as f64 / kept as f64, 1.0 - cd as f64, "paper: q among kept"),
                // Streaming (MODEL.md section 9): `!m` only.
                Mode::Streaming { .. } => {
                    assert_eq!(kept_with_grad, 0, "streaming: a kept input's loss element has gradient")
                }
            }
            // Evaluation (no `cd_rate`): no coordinated dropout at all.
            fill(&mut b, &model, &data, &picked, &seeds, None, false);
            assert!(b.input.iter().all(|x| *x == 2.0) && b.grad_mask.is_empty());
        }
    }
}
