//! Data: trials of binned spike counts in memory ([`Dataset`]), on disk as
//! one safetensors file (`host/DATA.md`), made synthetically ([`lorenz`]) or
//! imported from the Neural Latents Benchmark's files, with that benchmark's
//! scoring and submissions ([`nlb`]).
//!
//! Uses only the foundation ([`crate::metrics`], [`crate::io`]).

mod file;
pub mod lorenz;
pub mod nlb;

pub use file::{from_bytes, load, save, to_bytes, DataError};
use serde::{Deserialize, Serialize};

/// Which part of the experiment a trial belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Fitted on.
    Train,
    /// Early stopping and the plateau scheduler.
    Valid,
    /// Held out for evaluation.
    Eval,
}

/// Binned spike counts of `trials` trials.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Held-in neurons (the model's input): the first `n_in` of `n_out`.
    pub n_in: usize,
    /// All neurons, held-in first then held-out.
    pub n_out: usize,
    /// Observed bins `T`.
    pub observed: usize,
    /// Forward (prediction) bins `F`.
    pub forward: usize,
    /// Bin width in milliseconds.
    pub bin_ms: f32,
    /// Counts `[B, T + F, N_out]`, spikes per bin.
    pub spikes: Vec<f32>,
    /// True firing rates `[B, T + F, N_out]` in spikes per bin, when known (synthetic data).
    pub true_rates: Option<Vec<f32>>,
    /// Behaviour `[B, T, n_beh]` (e.g. hand velocity), when recorded.
    pub behavior: Option<Vec<f32>>,
    /// Behaviour dimensions.
    pub n_beh: usize,
    /// Condition id of each trial, when trials repeat conditions (for PSTHs).
    pub conditions: Option<Vec<u32>>,
    /// Split of each trial.
    pub split: Vec<Split>,
    /// Where each trial lies in a continuous recording, when it was cut from
    /// one (`lflow generate lorenz --continuous`): eval trials of one session
    /// that abut form a stream that `lflow eval --stream` decodes without resets.
    pub segments: Option<Vec<Segment>>,
    /// The Neural Latents Benchmark side of an imported NLB dataset.
    pub nlb: Option<crate::data::nlb::stored::NlbData>,
}

/// A trial's place in a continuous recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The recording (session) it was cut from.
    pub session: u32,
    /// Its first bin within that recording.
    pub start: u32,
}

impl Split {
    /// The code stored on disk.
    pub fn code(self) -> u8 {
        match self {
            Split::Train => 0,
            Split::Valid => 1,
            Split::Eval => 2,
        }
    }

    /// The split with code `c`.
    pub fn from_code(c: u8) -> Option<Split> {
        match c {
            0 => Some(Split::Train),
            1 => Some(Split::Valid),
            2 => Some(Split::Eval),
            _ => None,
        }
    }
}

impl Dataset {
    /// Number of trials.
    pub fn trials(&self) -> usize {
        self.split.len()
    }

    /// Observed plus forward bins.
    pub fn bins(&self) -> usize {
        self.observed + self.forward
    }

    /// Indices of the trials in `split`.
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.trials()).filter(|&i| self.split[i] == split).collect()
    }

    /// Spike counts of trial `i`, `[T + F, N_out]`.
    pub fn trial_spikes(&self, i: usize) -> &[f32] {
        let n = self.bins() * self.n_out;
        &self.spikes[i * n..(i + 1) * n]
    }

    /// Held-in counts of trial `i` at bin `t` as a device receives them
    /// (`u16`, saturating), written to `out [N_in]`.
    pub fn held_in_counts(&self, i: usize, t: usize, out: &mut [u16]) {
        let row = &self.trial_spikes(i)[t * self.n_out..t * self.n_out + self.n_in];
        for (dst, &c) in out.iter_mut().zip(row) {
            *dst = c.min(f32::from(u16::MAX)) as u16;
        }
    }

    /// The eval trials as streams to decode without resets, each a list of
    /// trials whose observed bins follow one another: with [`Dataset::segments`],
    /// the eval trials of one session in order of their start, split where
    /// they do not abut; without, all eval trials back to back, in file order.
    pub fn eval_streams(&self) -> Vec<Vec<usize>> {
        let eval = self.indices(Split::Eval);
        let Some(segs) = &self.segments else { return vec![eval] };
        let mut sorted = eval;
        sorted.sort_by_key(|&i| (segs[i].session, segs[i].start));
        let mut streams: Vec<Vec<usize>> = Vec::new();
        for i in sorted {
            let follows = streams.last().and_then(|s| s.last()).is_some_and(|&p| {
                segs[p].session == segs[i].session && segs[p].start as usize + self.observed == segs[i].start as usize
            });
            match streams.last_mut() {
                Some(s) if follows => s.push(i),
                _ => streams.push(vec![i]),
            }
        }
        streams
    }

    /// The data set a streaming decoder's training sees: the training trials'
    /// bins (observed then forward, spikes only) laid end to end in file order,
    /// cut into windows of `length` bins (0: `T + F`, the trials' own) every
    /// `stride` bins, as training trials; then the validation trials, as they
    /// are or, with a `length` of its own, laid end to end and cut into
    /// abutting windows of `length` bins. A window keeps the data set's `F`
    /// forward bins at its end. Eval trials, behaviour, true rates and
    /// conditions are left out (training reads none of them). `stride` 0
    /// returns the data set as it is.
    pub fn stream_windows(&self, stride: usize, length: usize) -> Dataset {
        if stride == 0 {
            return self.clone();
        }
        let (tt, n) = (self.bins(), self.n_out);
        let length = if length == 0 { tt } else { length.max(self.forward + 1) };
        let laid = |split: Split| -> Vec<f32> {
            self.indices(split).iter().flat_map(|&i| self.trial_spikes(i).iter().copied()).collect()
        };
        let mut spikes = Vec::new();
        let mut split = Vec::new();
        let mut cut = |stream: &[f32], stride: usize, which: Split| {
            let bins = stream.len() / n.max(1);
            let mut start = 0;
            while start + length <= bins {
                spikes.extend_from_slice(&stream[start * n..(start + length) * n]);
                split.push(which);
                start += stride;
            }
        };
        cut(&laid(Split::Train), stride, Split::Train);
        if length == tt {
            for i in self.indices(Split::Valid) {
                spikes.extend_from_slice(self.trial_spikes(i));
                split.push(Split::Valid);
            }
        } else {
            cut(&laid(Split::Valid), length, Split::Valid);
        }
        Dataset {
            n_in: self.n_in,
            n_out: n,
            observed: length - self.forward,
            forward: self.forward,
            bin_ms: self.bin_ms,
            spikes,
            true_rates: None,
            behavior: None,
            n_beh: 0,
            conditions: None,
            split,
            nlb: None,
            segments: None,
        }
    }

    /// Held-in counts of trial `i` in observed bins, appended to `out` as `[T, N_in]`.
    pub fn push_input(&self, i: usize, out: &mut Vec<f32>) {
        let s = self.trial_spikes(i);
        for t in 0..self.observed {
            out.extend_from_slice(&s[t * self.n_out..t * self.n_out + self.n_in]);
        }
    }
}
