//! The model's sizes and fixed hyper-parameters.

use lflow_core::{Dims, InputSchedule};
use serde::{Deserialize, Serialize};

/// Which variant of the model (MODEL.md sections 5 and 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The published model: `PreviousBin`, every bin attends to the whole trial.
    Paper,
    /// The device's model: `CurrentBin`, causal attention over the last `window` bins.
    Streaming,
}

/// Sizes and constants of one LangevinFlow model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Held-in neurons `N_in` (encoder input).
    pub n_in: usize,
    /// Neurons predicted `N_out` (held-in first, then held-out).
    pub n_out: usize,
    /// Latent size `H` (multiple of 4); the decoder width is `3H`.
    pub hidden: usize,
    /// Feed-forward width (512 in the paper).
    pub ff: usize,
    /// Langevin damping `gamma`.
    pub gamma: f32,
    /// Langevin step `eps`.
    pub eps: f32,
    /// Paper or streaming.
    pub mode: Mode,
    /// Causal window in bins (streaming mode; `None` in paper mode = whole trial).
    pub window: Option<usize>,
    /// Re-anchor period `P` in bins (0: never): at `t mod P == 0`, `t >= 1`, the
    /// latent state is set to the posterior means on `h_t` (`core/CONTINUOUS.md`).
    #[serde(default)]
    pub anchor_every: usize,
}

impl ModelConfig {
    /// A paper-mode model (MODEL.md section 1) of `n_in` held-in and `n_out`
    /// neurons, latent size `hidden` and feed-forward width `ff`, with section
    /// 7's `gamma = 0.55` and `eps = 0.01`.
    pub fn paper(n_in: usize, n_out: usize, hidden: usize, ff: usize) -> ModelConfig {
        ModelConfig {
            n_in,
            n_out,
            hidden,
            ff,
            gamma: 0.55,
            eps: 0.01,
            mode: Mode::Paper,
            window: None,
            anchor_every: 0,
        }
    }

    /// Decoder width `D = 3H`.
    pub fn d_model(&self) -> usize {
        3 * self.hidden
    }

    /// Per-head width `D / 2`.
    pub fn head_dim(&self) -> usize {
        self.d_model() / 2
    }

    /// The encoder's input schedule of this mode.
    pub fn schedule(&self) -> InputSchedule {
        match self.mode {
            Mode::Paper => InputSchedule::PreviousBin,
            Mode::Streaming => InputSchedule::CurrentBin,
        }
    }

    /// Whether query bin `t` may attend to key bin `j`.
    #[inline]
    pub fn attends(&self, t: usize, j: usize) -> bool {
        match self.window {
            None => true,
            Some(w) => j <= t && j + w > t,
        }
    }

    /// The key bins query bin `t` attends to, of a trial of `bins` bins: one
    /// contiguous range, the `j < bins` with [`ModelConfig::attends`]`(t, j)`.
    #[inline]
    pub fn attended_keys(&self, t: usize, bins: usize) -> std::ops::Range<usize> {
        match self.window {
            None => 0..bins,
            Some(w) => (t + 1).saturating_sub(w)..(t + 1).min(bins),
        }
    }

    /// The spike bin the encoder reads at bin `t` of a trial with `t_obs` observed bins.
    #[inline]
    pub fn input_bin(&self, t: usize, t_obs: usize) -> usize {
        let last = t_obs.saturating_sub(1);
        match self.schedule() {
            InputSchedule::PreviousBin => t.saturating_sub(1).min(last),
            InputSchedule::CurrentBin => t.min(last),
        }
    }

    /// Whether bin `t` re-anchors `z`, `v` on the posterior means of `h_t`.
    #[inline]
    pub fn anchors_at(&self, t: usize) -> bool {
        self.anchor_every > 0 && t > 0 && t.is_multiple_of(self.anchor_every)
    }

    /// Sizes as `lflow-core` records them (window 0 stands for "whole trial").
    pub fn dims(&self, n_beh: usize) -> Dims {
        Dims {
            n_in: self.n_in as u32,
            hidden: self.hidden as u32,
            d_model: self.d_model() as u32,
            ff: self.ff as u32,
            n_out: self.n_out as u32,
            window: self.window.unwrap_or(0) as u32,
            n_beh: n_beh as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attended_keys_are_the_bins_attends_allows() {
        for window in [None, Some(1), Some(3), Some(8)] {
            let cfg = ModelConfig {
                n_in: 1,
                n_out: 1,
                hidden: 4,
                ff: 4,
                gamma: 0.55,
                eps: 0.01,
                mode: Mode::Streaming,
                window,
                anchor_every: 0,
            };
            for t in 0..7 {
                let want: Vec<usize> = (0..7).filter(|&j| cfg.attends(t, j)).collect();
                assert_eq!(cfg.attended_keys(t, 7).collect::<Vec<_>>(), want, "window {window:?}, bin {t}");
            }
        }
    }
}
