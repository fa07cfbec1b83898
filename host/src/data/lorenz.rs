//! A seeded synthetic data set in the LFADS style: Lorenz latents, Poisson spikes.
//!
//! Lorenz (`sigma = 10`, `rho = 28`, `beta = 8/3`) is integrated with RK4 at
//! `dt = 0.005` (two steps per bin). Each trial starts from an independent
//! point on the attractor (a random start run for 500 burn-in steps). The three
//! latents are z-scored over all trials and bins. Neuron `n` fires at
//! `base_hz * exp(gain * c_n . z)` spikes per second with `c_n ~ N(0, I / 3)`;
//! counts per bin are Poisson. True rates (spikes per bin) and the latents
//! (as behaviour, `n_beh = 3`) are kept.

use crate::data::{Dataset, Split};
use lflow_core::Seeded;

/// Parameters of the generator (defaults: 1000 trials, 50 + 10 bins of 10 ms, 40 + 10 neurons).
#[derive(Clone, Debug, PartialEq)]
pub struct LorenzConfig {
    /// Trials in all.
    pub trials: usize,
    /// Trials kept for evaluation (the last ones).
    pub eval_trials: usize,
    /// Of the others, this fraction is the validation split.
    pub valid_fraction: f32,
    /// Observed bins.
    pub observed: usize,
    /// Forward bins.
    pub forward: usize,
    /// Held-in neurons.
    pub held_in: usize,
    /// Held-out neurons.
    pub held_out: usize,
    /// Bin width in ms.
    pub bin_ms: f32,
    /// Baseline rate in spikes per second.
    pub base_hz: f32,
    /// Gain of the latents on the log-rate.
    pub gain: f32,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for LorenzConfig {
    fn default() -> Self {
        LorenzConfig {
            trials: 1000,
            eval_trials: 200,
            valid_fraction: 0.2,
            observed: 50,
            forward: 10,
            held_in: 40,
            held_out: 10,
            bin_ms: 10.0,
            base_hz: 15.0,
            gain: 1.0,
            seed: 0,
        }
    }
}

fn lorenz(s: [f64; 3]) -> [f64; 3] {
    let (sigma, rho, beta) = (10.0, 28.0, 8.0 / 3.0);
    [sigma * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]]
}

fn rk4(s: [f64; 3], dt: f64) -> [f64; 3] {
    let add = |a: [f64; 3], b: [f64; 3], k: f64| [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]];
    let k1 = lorenz(s);
    let k2 = lorenz(add(s, k1, dt / 2.0));
    let k3 = lorenz(add(s, k2, dt / 2.0));
    let k4 = lorenz(add(s, k3, dt));
    std::array::from_fn(|i| s[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// A Poisson draw with mean `lambda` (Knuth's method; rates here are small).
fn poisson(rng: &mut Seeded, lambda: f32) -> f32 {
    let limit = (-(lambda as f64)).exp();
    let mut k = 0u32;
    let mut p = 1.0f64;
    loop {
        p *= ((rng.next_u32() >> 8) as f64 + 0.5) / 16_777_216.0;
        if p <= limit || k > 1000 {
            return k as f32;
        }
        k += 1;
    }
}

/// Integrate from an independent point on the attractor (a random start run
/// for 500 burn-in steps), appending `bins` states (two RK4 steps per bin) to `out`.
fn trajectory(rng: &mut Seeded, bins: usize, out: &mut Vec<f64>) {
    let dt = 0.005;
    let mut s =
        [rng.next_normal() as f64 * 10.0, rng.next_normal() as f64 * 10.0, 25.0 + rng.next_normal() as f64 * 5.0];
    for _ in 0..500 {
        s = rk4(s, dt);
    }
    for _ in 0..bins {
        out.extend_from_slice(&s);
        s = rk4(rk4(s, dt), dt);
    }
}

/// Z-score each of the three latents over all rows of `latents` `[rows, 3]`.
fn z_score(latents: &mut [f64]) {
    let count = (latents.len() / 3) as f64;
    for k in 0..3 {
        let vals = latents.iter().skip(k).step_by(3);
        let mean = vals.clone().sum::<f64>() / count;
        let sd = (vals.map(|v| (v - mean).powi(2)).sum::<f64>() / count).sqrt().max(1e-12);
        for v in latents.iter_mut().skip(k).step_by(3) {
            *v = (*v - mean) / sd;
        }
    }
}

/// True rates (spikes per bin) and Poisson counts `[rows, n]` of the latents `[rows, 3]`.
fn neurons(c: &LorenzConfig, rng: &mut Seeded, latents: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let n = c.held_in + c.held_out;
    let weights: Vec<f32> = (0..n * 3).map(|_| rng.next_normal() / 3f32.sqrt()).collect();
    let per_bin = c.base_hz * c.bin_ms / 1000.0;
    let rows = latents.len() / 3;
    let mut rates = vec![0.0f32; rows * n];
    let mut spikes = vec![0.0f32; rows * n];
    for (row, z) in latents.chunks_exact(3).enumerate() {
        for j in 0..n {
            let w = &weights[j * 3..j * 3 + 3];
            let drive: f32 = w.iter().zip(z).map(|(a, b)| a * *b as f32).sum();
            let rate = per_bin * (c.gain * drive).exp();
            rates[row * n + j] = rate;
            spikes[row * n + j] = poisson(rng, rate);
        }
    }
    (rates, spikes)
}

/// Generate the data set of `c`; the same config gives the same numbers.
pub fn generate(c: &LorenzConfig) -> Dataset {
    let mut rng = Seeded::new(c.seed);
    let (bins, n) = (c.observed + c.forward, c.held_in + c.held_out);
    let mut latents = Vec::with_capacity(c.trials * bins * 3);
    for _ in 0..c.trials {
        trajectory(&mut rng, bins, &mut latents);
    }
    z_score(&mut latents);
    let (rates, spikes) = neurons(c, &mut rng, &latents);
    let behavior = (0..c.trials)
        .flat_map(|tr| {
            latents[tr * bins * 3..(tr * bins + c.observed) * 3].iter().map(|v| *v as f32).collect::<Vec<_>>()
        })
        .collect();
    let fit = c.trials - c.eval_trials.min(c.trials);
    let valid = ((fit as f32) * c.valid_fraction).round() as usize;
    let split = (0..c.trials)
        .map(|i| {
            if i >= fit {
                Split::Eval
            } else if i >= fit - valid {
                Split::Valid
            } else {
                Split::Train
            }
        })
        .collect();
    Dataset {
        n_in: c.held_in,
        n_out: n,
        observed: c.observed,
        forward: c.forward,
        bin_ms: c.bin_ms,
        spikes,
        true_rates: Some(rates),
        behavior: Some(behavior),
        n_beh: 3,
        conditions: None,
        split,
        nlb: None,
        segments: None,
    }
}

/// The continuous variant: long uninterrupted recordings cut into windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Continuous {
    /// Training recordings (each its own trajectory); training windows start anywhere in them.
    pub sessions: usize,
    /// Bins of each training recording, and of the validation recording.
    pub session_bins: usize,
    /// Bins of the eval recording, kept whole as abutting windows of `observed` bins.
    pub stream_bins: usize,
}

impl Default for Continuous {
    fn default() -> Self {
        // 8 one-minute training recordings, a one-minute validation recording
        // and a ten-minute eval stream (10 ms bins).
        Continuous { sessions: 8, session_bins: 6_000, stream_bins: 60_000 }
    }
}

/// A continuous data set: `sessions` training recordings, one validation
/// recording and one eval recording, each one Lorenz trajectory with the
/// neurons of [`generate`]. `c.trials` windows of `c.observed` bins (no
/// forward bins) are cut at random starts from the training recordings (a
/// `c.valid_fraction` of them from the validation recording); the eval
/// recording is cut into abutting windows (`c.eval_trials` is ignored), so
/// `lflow eval --stream` can put it back together. Behaviour is the latents.
pub fn generate_continuous(c: &LorenzConfig, k: &Continuous) -> Dataset {
    let mut rng = Seeded::new(c.seed ^ 0xC0_471A_0005);
    let (w, n) = (c.observed, c.held_in + c.held_out);
    let sessions = k.sessions + 2;
    let lengths: Vec<usize> =
        (0..sessions).map(|s| if s == sessions - 1 { k.stream_bins } else { k.session_bins.max(w) }).collect();
    let mut latents = Vec::with_capacity(lengths.iter().sum::<usize>() * 3);
    for &len in &lengths {
        trajectory(&mut rng, len, &mut latents);
    }
    z_score(&mut latents);
    let (rates, spikes) = neurons(c, &mut rng, &latents);
    let offsets: Vec<usize> = lengths.iter().scan(0, |acc, &l| Some(std::mem::replace(acc, *acc + l))).collect();

    let fit = c.trials;
    let valid = ((fit as f32) * c.valid_fraction).round() as usize;
    let mut windows: Vec<(usize, usize, Split)> = Vec::new();
    for i in 0..fit {
        let (session, split) = if i >= fit - valid {
            (sessions - 2, Split::Valid)
        } else {
            ((rng.next_u32() as usize) % k.sessions.max(1), Split::Train)
        };
        let start = (rng.next_u32() as usize) % (lengths[session] - w + 1);
        windows.push((session, start, split));
    }
    let eval_session = sessions - 1;
    for j in 0..k.stream_bins / w.max(1) {
        windows.push((eval_session, j * w, Split::Eval));
    }
    let take = |v: &[f32], width: usize| -> Vec<f32> {
        windows
            .iter()
            .flat_map(|&(s, start, _)| {
                v[(offsets[s] + start) * width..(offsets[s] + start + w) * width].iter().copied()
            })
            .collect()
    };
    let behavior: Vec<f32> = windows
        .iter()
        .flat_map(|&(s, start, _)| {
            latents[(offsets[s] + start) * 3..(offsets[s] + start + w) * 3].iter().map(|v| *v as f32)
        })
        .collect();
    Dataset {
        n_in: c.held_in,
        n_out: n,
        observed: w,
        forward: 0,
        bin_ms: c.bin_ms,
        spikes: take(&spikes, n),
        true_rates: Some(take(&rates, n)),
        behavior: Some(behavior),
        n_beh: 3,
        conditions: None,
        split: windows.iter().map(|&(_, _, s)| s).collect(),
        nlb: None,
        segments: Some(
            windows
                .iter()
                .map(|&(s, start, _)| crate::data::Segment { session: s as u32, start: start as u32 })
                .collect(),
        ),
    }
}
