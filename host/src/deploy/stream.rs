//! Decoding without resets: the eval trials, or a continuous eval recording,
//! fed bin by bin to `lflow-core`'s decoder ([`DynDecoder`], the device's code
//! at the blob's sizes), scored overall, per stretch of stream time, and
//! against the same bins decoded with a reset at every trial start.

use crate::data::Dataset;
use crate::deploy::velocity::VelocityReadout;
use crate::metrics::{bits_per_spike, r2_uniform};
use lflow_core::{BlobError, DynDecoder, Mean};
use serde::Serialize;

/// What one pass over a stream decoded, observed bins of its trials in order.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    /// Rates `[bins, N_out]`, spikes per bin.
    pub rates: Vec<f32>,
    /// Decoded behaviour `[bins, N_beh]`.
    pub velocity: Vec<f32>,
    /// Bins whose step failed (a non-finite value: the decoder reset itself).
    pub failures: usize,
    /// Largest `|z|` or `|v|` of each bin, `[bins]`.
    pub latent_max: Vec<f32>,
    /// Each bin's place within its trial, `[bins]`.
    pub positions: Vec<usize>,
}

impl Decoded {
    fn append(&mut self, other: Decoded) {
        self.rates.extend(other.rates);
        self.velocity.extend(other.velocity);
        self.failures += other.failures;
        self.latent_max.extend(other.latent_max);
        self.positions.extend(other.positions);
    }
}

/// Decode the observed bins of `trials` in mean mode, from bin `first` of the
/// first trial on, resetting the decoder before the first trial and then
/// before every `reset_every`-th one (0: never).
pub fn decode(dec: &mut DynDecoder<'_>, data: &Dataset, trials: &[usize], reset_every: usize, first: usize) -> Decoded {
    let (n_in, n_out) = (data.n_in, data.n_out);
    let mut out = Decoded::default();
    let mut x = vec![0u16; n_in];
    for (k, &i) in trials.iter().enumerate() {
        if k == 0 || (reset_every > 0 && k % reset_every == 0) {
            dec.reset();
        }
        for t in (if k == 0 { first } else { 0 })..data.observed {
            data.held_in_counts(i, t, &mut x);
            out.positions.push(t);
            match dec.step(&x, &mut Mean) {
                Ok(o) => {
                    out.rates.extend_from_slice(o.rates);
                    out.velocity.extend_from_slice(o.velocity);
                    let zv = &o.latents[..2 * o.latents.len() / 3];
                    out.latent_max.push(zv.iter().fold(0.0f32, |m, x| m.max(x.abs())));
                }
                Err(_) => {
                    out.failures += 1;
                    out.rates.extend(std::iter::repeat_n(f32::NAN, n_out));
                    out.velocity.extend(std::iter::repeat_n(f32::NAN, dec.dims().n_beh as usize));
                    out.latent_max.push(f32::NAN);
                }
            }
        }
    }
    out
}

/// Mean-mode quality of `blob` as `lflow-core` decodes it (the device's code,
/// bin by bin, a reset at every eval trial): co-bps on the observed bins,
/// fp-bps on the forward bins (fed the last observed bin's counts, as the host
/// model's encoder reads there: `ModelConfig::input_bin`), and the behaviour
/// R² of the blob's velocity decoder on the observed bins. `kernel`: `Tuned`
/// is the device's arithmetic (int8: int16 activations), `Naive` the plain f32
/// reference (f32 activations).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DecodedQuality {
    /// Held-out neurons' bits per spike on the eval trials' observed bins.
    pub co_bps: Option<f64>,
    /// All neurons' bits per spike on the eval trials' forward bins.
    pub fp_bps: Option<f64>,
    /// Behaviour R² of the blob's velocity decoder on the eval trials.
    pub behaviour_r2: Option<f64>,
}

/// See [`DecodedQuality`].
pub fn decoded_quality(blob: &[u8], data: &Dataset, kernel: lflow_core::Kernel) -> Result<DecodedQuality, BlobError> {
    let mut dec = DynDecoder::from_blob(blob)?;
    dec.set_kernel(kernel);
    let eval = data.indices(crate::data::Split::Eval);
    let (tt, t_obs, nin, n, nb) = (data.bins(), data.observed, data.n_in, data.n_out, dec.dims().n_beh as usize);
    let (mut co, mut co_spikes, mut fp, mut fp_spikes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut vel, mut beh_rows) = (Vec::new(), Vec::new());
    let mut x = vec![0u16; nin];
    for &i in &eval {
        dec.reset();
        let spikes = data.trial_spikes(i);
        for t in 0..tt {
            data.held_in_counts(i, t.min(t_obs.saturating_sub(1)), &mut x);
            let (rates, velocity) = match dec.step(&x, &mut Mean) {
                Ok(o) => (o.rates.to_vec(), o.velocity.to_vec()),
                Err(_) => (vec![f32::NAN; n], vec![f32::NAN; nb]),
            };
            let row = &spikes[t * n..(t + 1) * n];
            let wide = |v: &[f32]| v.iter().map(|&r| f64::from(r)).collect::<Vec<f64>>();
            if t < t_obs {
                co.extend(wide(&rates[nin..]));
                co_spikes.extend(wide(&row[nin..]));
                vel.extend(wide(&velocity));
            } else {
                fp.extend(wide(&rates));
                fp_spikes.extend(wide(row));
            }
        }
        if let Some(beh) = data.behavior.as_deref() {
            beh_rows.extend(beh[i * t_obs * nb..(i + 1) * t_obs * nb].iter().map(|&v| f64::from(v)));
        }
    }
    let has = |v: &[f64]| !v.is_empty();
    Ok(DecodedQuality {
        co_bps: (n > nin && has(&co)).then(|| bits_per_spike(&co, &co_spikes, n - nin)),
        fp_bps: has(&fp).then(|| bits_per_spike(&fp, &fp_spikes, n)),
        behaviour_r2: (nb > 0 && data.behavior.is_some() && !vel.is_empty()).then(|| r2_uniform(&beh_rows, &vel, nb)),
    })
}

/// Fit the device's velocity decoder on what a decoder that is never reset
/// computes: ridge regression (alpha by 5-fold CV over `logspace(-4, 0, 9)`)
/// from `y2` of the training trials decoded back to back in mean mode by
/// `lflow-core` with `blob`'s weights (its own velocity decoder unused) to
/// their behaviour. A re-anchored model's `y2` on a long stream is not the
/// `y2` of fresh trials, and a linear readout fit on the latter can drift
/// off on the former. `None` without behaviour or training trials.
pub fn fit_velocity_streamed(blob: &[u8], data: &Dataset) -> Result<Option<VelocityReadout>, StreamError> {
    let (Some(beh), train) = (data.behavior.as_ref(), data.indices(crate::data::Split::Train)) else {
        return Ok(None);
    };
    if train.is_empty() || data.n_beh == 0 {
        return Ok(None);
    }
    let mut dec = DynDecoder::from_blob(blob).map_err(StreamError::Blob)?;
    let d = dec.dims().d_model as usize;
    let (nin, k) = (data.n_in, data.n_beh);
    let mut x = Vec::with_capacity(train.len() * data.observed * d);
    let mut y = Vec::with_capacity(train.len() * data.observed * k);
    let mut counts = vec![0u16; nin];
    dec.reset();
    for &i in &train {
        for t in 0..data.observed {
            data.held_in_counts(i, t, &mut counts);
            if let Ok(o) = dec.step(&counts, &mut Mean) {
                x.extend(o.decoder_output.iter().map(|v| *v as f64));
                y.extend(beh[(i * data.observed + t) * k..][..k].iter().map(|v| *v as f64));
            }
        }
    }
    let (ridge, _) = crate::metrics::ridge_cv(&x, &y, d, k);
    Ok(Some(VelocityReadout::from_ridge(&ridge)))
}

/// The truth of a stream's bins: spikes, true rates and behaviour, `[bins, *]`.
struct Truth {
    spikes: Vec<f64>,
    rates: Option<Vec<f64>>,
    behavior: Option<Vec<f64>>,
}

/// The truth of the streams' observed bins, each stream from bin `first` of its first trial on.
fn truth(data: &Dataset, streams: &[Vec<usize>], first: usize) -> Truth {
    let (t_obs, n, k) = (data.observed, data.n_out, data.n_beh);
    let bins: Vec<(usize, usize)> = streams
        .iter()
        .flat_map(|s| {
            s.iter().enumerate().flat_map(move |(j, &i)| ((if j == 0 { first } else { 0 })..t_obs).map(move |t| (i, t)))
        })
        .collect();
    let rows = |v: &[f32], width: usize, trial_bins: usize| -> Vec<f64> {
        bins.iter().flat_map(|&(i, t)| v[(i * trial_bins + t) * width..][..width].iter().map(|x| *x as f64)).collect()
    };
    Truth {
        spikes: rows(&data.spikes, n, data.bins()),
        rates: data.true_rates.as_ref().map(|r| rows(r, n, data.bins())),
        behavior: data.behavior.as_ref().map(|b| rows(b, k, t_obs)),
    }
}

/// [`decode`] of each stream in turn, concatenated.
fn decode_streams(
    dec: &mut DynDecoder<'_>,
    data: &Dataset,
    streams: &[Vec<usize>],
    reset_every: usize,
    first: usize,
) -> Decoded {
    let mut out = Decoded::default();
    for s in streams {
        out.append(decode(dec, data, s, reset_every, first));
    }
    out
}

/// Metrics of a span of stream bins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Bits per spike of the held-out neurons.
    pub co_bps: Option<f64>,
    /// R² of the rates against the true rates, all neurons.
    pub rate_r2: Option<f64>,
    /// R² of the decoder's behaviour (the blob's velocity decoder) against the recorded one.
    pub behavior_r2: Option<f64>,
}

fn metrics(data: &Dataset, truth: &Truth, dec: &Decoded, bins: std::ops::Range<usize>) -> Metrics {
    let (n, nin, k) = (data.n_out, data.n_in, data.n_beh);
    let rows = |v: &[f64], width: usize| v[bins.start * width..bins.end * width].to_vec();
    let pred: Vec<f64> = dec.rates[bins.start * n..bins.end * n].iter().map(|x| *x as f64).collect();
    let held_out = |v: &[f64]| -> Vec<f64> { v.chunks_exact(n).flat_map(|r| r[nin..].to_vec()).collect() };
    let mut m = Metrics::default();
    if n > nin {
        m.co_bps = Some(bits_per_spike(&held_out(&pred), &held_out(&rows(&truth.spikes, n)), n - nin));
    }
    if let Some(r) = &truth.rates {
        m.rate_r2 = Some(r2_uniform(&rows(r, n), &pred, n));
    }
    if let (Some(b), true) = (&truth.behavior, k > 0 && dec.velocity.len() == dec.rates.len() / n.max(1) * k) {
        let v: Vec<f64> = dec.velocity[bins.start * k..bins.end * k].iter().map(|x| *x as f64).collect();
        m.behavior_r2 = Some(r2_uniform(&rows(b, k), &v, k));
    }
    m
}

/// One stretch of stream time, decoded both ways.
#[derive(Clone, Debug, Serialize)]
pub struct Stretch {
    /// First bin of the stretch within its stream.
    pub start: usize,
    /// Bins in the stretch.
    pub bins: usize,
    /// Decoded without resets.
    pub continuous: Metrics,
    /// The same bins decoded with a reset at every trial start.
    pub reset: Metrics,
}

/// Streams of `trials` trials back to back, reset only between streams.
#[derive(Clone, Debug, Serialize)]
pub struct LengthRow {
    /// Trials per stream (1: a reset at every trial start).
    pub trials: usize,
    /// Metrics pooled over every eval bin.
    pub metrics: Metrics,
}

/// One figure per metric about the stretches' `reset - continuous` gaps.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Gaps {
    /// Of co-bps.
    pub co_bps: Option<f64>,
    /// Of rate R².
    pub rate_r2: Option<f64>,
    /// Of behaviour R².
    pub behavior_r2: Option<f64>,
}

/// `lflow eval --stream`: what decoding without resets does (`RUN/eval_stream.json`).
#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    /// The blob's re-anchor period (0: never).
    pub anchor_every: u32,
    /// Streams decoded (the eval recording's abutting runs, or all eval trials back to back).
    pub streams: usize,
    /// Bins decoded in all.
    pub bins: usize,
    /// Bins per trial (window).
    pub trial_bins: usize,
    /// Bin width, ms.
    pub bin_ms: f32,
    /// Bins whose step failed (the decoder reset itself): 0 on a sound model.
    pub failures: usize,
    /// Largest `|z|`, `|v|` decoded without resets, over the first and over the
    /// second half of the bins: bounded state shows as equal halves.
    pub latent_max_abs: [f32; 2],
    /// Every bin, decoded without resets.
    pub continuous: Metrics,
    /// Every bin, decoded with a reset at each trial start.
    pub reset: Metrics,
    /// Bins left out at each stream's start before the stretches begin.
    pub skip: usize,
    /// Bins of each stream's first trial not decoded at all (`--offset`).
    pub offset: usize,
    /// Per stretch of stream time (from `skip`), each stream in turn.
    pub stretches: Vec<Stretch>,
    /// Largest `reset - continuous` over the stretches (how far below the reset decoding it falls).
    pub worst_gap: Gaps,
    /// Share of the stretches where `reset - continuous` is at most 0.02.
    pub share_within_0_02: Gaps,
    /// Streams of 1, 2, 5, ... trials back to back.
    pub lengths: Vec<LengthRow>,
    /// Bins after a trial boundary until the continuous decoder's behaviour
    /// error first comes back within 10 % of its level over the trials' second
    /// halves (5-bin average, position-wise over all boundaries); `None` without behaviour.
    pub recovery_bins: Option<usize>,
    /// The same for the decoder reset at each trial start (its cold start).
    pub reset_recovery_bins: Option<usize>,
}

/// Why a stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The blob was refused.
    #[error("blob rejected")]
    Blob(#[source] BlobError),
    /// The blob does not fit the data set.
    #[error("the blob reads {blob} held-in neurons and predicts {blob_out}; the data set has {data} and {data_out}")]
    Mismatch {
        /// Blob's N_in.
        blob: u32,
        /// Blob's N_out.
        blob_out: u32,
        /// Data's N_in.
        data: usize,
        /// Data's N_out.
        data_out: usize,
    },
    /// Nothing to decode.
    #[error("the data set has no eval trials to stream")]
    Empty,
    /// The model could not be written as a blob to decode.
    #[error("cannot make the model's blob")]
    Write(#[source] lflow_core::blob::WriteError),
}

/// Options of [`evaluate_streams`].
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Bins per stretch.
    pub stretch: usize,
    /// Bins skipped at each stream's start.
    pub skip: usize,
    /// Trials per back-to-back stream in the lengths table.
    pub lengths: Vec<usize>,
    /// Bins of each stream's first trial left out, so that trial boundaries
    /// fall at another phase of the re-anchor period.
    pub offset: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { stretch: 100, skip: 50, lengths: vec![1, 2, 5, 40], offset: 0 }
    }
}

/// Position-wise mean squared behaviour error within trials, `[T]`.
fn error_by_position(truth: &Truth, dec: &Decoded, t_obs: usize, k: usize) -> Option<Vec<f64>> {
    let b = truth.behavior.as_ref()?;
    if k == 0 || dec.velocity.len() != b.len() {
        return None;
    }
    let mut sum = vec![0.0; t_obs];
    let mut count = vec![0usize; t_obs];
    for ((tv, pv), &pos) in b.chunks_exact(k).zip(dec.velocity.chunks_exact(k)).zip(&dec.positions) {
        let e: f64 = tv.iter().zip(pv).map(|(a, p)| (a - *p as f64).powi(2)).sum();
        if e.is_finite() && pos < t_obs {
            sum[pos] += e;
            count[pos] += 1;
        }
    }
    Some(sum.iter().zip(&count).map(|(s, c)| s / (*c).max(1) as f64).collect())
}

/// Bins until the 5-bin average of `err` first comes within 10 % of its level
/// over the second half (all of them: `err.len()`, if it never does).
pub fn recovery(err: &[f64]) -> usize {
    let t = err.len();
    let level = err[t / 2..].iter().sum::<f64>() / (t - t / 2).max(1) as f64;
    let smooth: Vec<f64> = (0..t)
        .map(|i| {
            let w = &err[i.saturating_sub(2)..(i + 3).min(t)];
            w.iter().sum::<f64>() / w.len() as f64
        })
        .collect();
    (0..t).find(|&i| smooth[i] <= 1.1 * level).unwrap_or(t)
}

/// Decode every eval stream of `data` with `blob` both ways and score them.
pub fn evaluate_streams(blob: &[u8], data: &Dataset, opt: &StreamOptions) -> Result<StreamReport, StreamError> {
    let mut dec = DynDecoder::from_blob(blob).map_err(StreamError::Blob)?;
    let dims = dec.dims();
    if dims.n_in as usize != data.n_in || dims.n_out as usize != data.n_out {
        return Err(StreamError::Mismatch {
            blob: dims.n_in,
            blob_out: dims.n_out,
            data: data.n_in,
            data_out: data.n_out,
        });
    }
    let streams = data.eval_streams();
    if streams.iter().all(|s| s.is_empty()) {
        return Err(StreamError::Empty);
    }
    let t_obs = data.observed;
    let first = opt.offset.min(t_obs.saturating_sub(1));
    let truth_all = truth(data, &streams, first);
    let continuous = decode_streams(&mut dec, data, &streams, 0, first);
    let reset = decode_streams(&mut dec, data, &streams, 1, first);
    let bins = continuous.positions.len();
    let stretch = opt.stretch.max(1);
    let mut stretches = Vec::new();
    let mut offset = 0;
    for s in &streams {
        let len = s.len() * t_obs - first;
        let mut start = opt.skip.min(len);
        while start + stretch <= len {
            let span = offset + start..offset + start + stretch;
            stretches.push(Stretch {
                start,
                bins: stretch,
                continuous: metrics(data, &truth_all, &continuous, span.clone()),
                reset: metrics(data, &truth_all, &reset, span),
            });
            start += stretch;
        }
        offset += len;
    }
    let gaps = |f: fn(&Metrics) -> Option<f64>| -> Vec<f64> {
        stretches.iter().filter_map(|s| Some(f(&s.reset)? - f(&s.continuous)?)).collect()
    };
    let worst = |f| gaps(f).into_iter().fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    let share = |f| {
        let g = gaps(f);
        (!g.is_empty()).then(|| g.iter().filter(|x| **x <= 0.02).count() as f64 / g.len() as f64)
    };
    let worst_gap =
        Gaps { co_bps: worst(|m| m.co_bps), rate_r2: worst(|m| m.rate_r2), behavior_r2: worst(|m| m.behavior_r2) };
    let share_within_0_02 =
        Gaps { co_bps: share(|m| m.co_bps), rate_r2: share(|m| m.rate_r2), behavior_r2: share(|m| m.behavior_r2) };
    let lengths = opt
        .lengths
        .iter()
        .map(|&l| {
            let d = if l == 1 { reset.clone() } else { decode_streams(&mut dec, data, &streams, l, first) };
            LengthRow { trials: l, metrics: metrics(data, &truth_all, &d, 0..bins) }
        })
        .collect();
    let k = data.n_beh;
    Ok(StreamReport {
        anchor_every: dec.anchor_every(),
        streams: streams.len(),
        bins,
        trial_bins: t_obs,
        bin_ms: data.bin_ms,
        failures: continuous.failures,
        latent_max_abs: {
            let (a, b) = continuous.latent_max.split_at(bins / 2);
            let max = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(*x));
            [max(a), max(b)]
        },
        continuous: metrics(data, &truth_all, &continuous, 0..bins),
        reset: metrics(data, &truth_all, &reset, 0..bins),
        skip: opt.skip,
        offset: first,
        stretches,
        worst_gap,
        share_within_0_02,
        lengths,
        recovery_bins: error_by_position(&truth_all, &continuous, t_obs, k).map(|e| recovery(&e)),
        reset_recovery_bins: error_by_position(&truth_all, &reset, t_obs, k).map(|e| recovery(&e)),
    })
}

/// The report as text.
pub fn table(r: &StreamReport) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let mut out = format!(
        "{} stream(s), {} bins ({} per trial, from bin {} of the first), re-anchor every {} bins, {} failed bins\n",
        r.streams,
        r.bins,
        r.trial_bins,
        r.offset,
        if r.anchor_every == 0 { "-".to_string() } else { r.anchor_every.to_string() },
        r.failures
    );
    out += &format!(
        "largest |z|, |v| without resets: {:.3} in the first half, {:.3} in the second\n",
        r.latent_max_abs[0], r.latent_max_abs[1]
    );
    out += &format!("{:<34} {:>8} {:>8} {:>12}\n", "decoding", "co-bps", "rate R2", "behaviour R2");
    let row = |name: &str, m: &Metrics| {
        format!("{name:<34} {:>8} {:>8} {:>12}\n", f(m.co_bps), f(m.rate_r2), f(m.behavior_r2))
    };
    out += &row("reset at each trial start", &r.reset);
    out += &row("no reset", &r.continuous);
    for l in &r.lengths {
        out += &row(&format!("{} trial(s) back to back", l.trials), &l.metrics);
    }
    let g = &r.worst_gap;
    out += &format!(
        "worst {}-bin stretch after bin {}, reset minus no reset: co-bps {}, rate R2 {}, behaviour R2 {}\n",
        r.stretches.first().map_or(0, |s| s.bins),
        r.skip,
        f(g.co_bps),
        f(g.rate_r2),
        f(g.behavior_r2)
    );
    let w = &r.share_within_0_02;
    out += &format!(
        "stretches within 0.02 of the reset decoding: co-bps {}, rate R2 {}, behaviour R2 {}\n",
        f(w.co_bps),
        f(w.rate_r2),
        f(w.behavior_r2)
    );
    if let (Some(c), Some(z)) = (r.recovery_bins, r.reset_recovery_bins) {
        out += &format!("recovery after a trial boundary: {c} bins without reset ({z} bins from a reset)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_counts_the_bins_above_the_late_level() {
        // Level 1 over the second half; the 5-bin average exceeds 1.1 up to bin 4.
        let err = [9.0, 5.0, 3.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        // smooth[4] = (3 + 1.5 + 1 + 1 + 1) / 5 = 1.5 > 1.1; smooth[5] = (1.5 + 4) / 5 = 1.1, not above.
        assert_eq!(recovery(&err), 5);
        assert_eq!(recovery(&[1.0; 10]), 0);
        // A late bump does not count, the first return does: level 8/6, limit 1.47;
        // smooth[3] = (5 + 1 + 1 + 1 + 1) / 5 = 1.8, smooth[4] = 1.0.
        let bump = [9.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0];
        assert_eq!(recovery(&bump), 4);
    }
}
