//! Trials of binned spike counts: in memory, and on disk as one safetensors
//! file (`host/DATA.md`).

mod file;

pub use file::{load, save, DataError};
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
    /// The Neural Latents Benchmark side of an imported NLB dataset.
    pub nlb: Option<crate::nlb::stored::NlbData>,
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

    /// Held-in counts of trial `i` in observed bins, appended to `out` as `[T, N_in]`.
    pub fn push_input(&self, i: usize, out: &mut Vec<f32>) {
        let s = self.trial_spikes(i);
        for t in 0..self.observed {
            out.extend_from_slice(&s[t * self.n_out..t * self.n_out + self.n_in]);
        }
    }
}
