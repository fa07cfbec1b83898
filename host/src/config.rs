//! The model's sizes and fixed hyper-parameters.

use lflow_core::{Dims, InputSchedule};
use serde::{Deserialize, Serialize};

/// Which variant of the model (MODEL.md sections 5 and 9), with its attention window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The published model: `PreviousBin` input; every bin attends to the
    /// whole trial, or with `causal_window: Some(w)` (the authors'
    /// `causal_window` option) to itself and the `w - 1` bins before it.
    Paper {
        /// The authors' causal window in bins (`None`: the whole trial).
        causal_window: Option<usize>,
    },
    /// The device's model: `CurrentBin` input, causal attention over the last
    /// `window` bins.
    Streaming {
        /// Bins a query attends to, itself included.
        window: usize,
    },
}

/// A mode's name, as configurations, the CLI and reports spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// [`Mode::Paper`].
    Paper,
    /// [`Mode::Streaming`].
    Streaming,
}

impl Mode {
    /// The published model over whole trials.
    pub const PAPER: Mode = Mode::Paper { causal_window: None };

    /// The mode `name` with `window` bins of attention (streaming; paper: whole trials).
    pub fn new(name: ModeName, window: usize) -> Mode {
        match name {
            ModeName::Paper => Mode::PAPER,
            ModeName::Streaming => Mode::Streaming { window },
        }
    }

    /// Its name.
    pub fn name(self) -> ModeName {
        match self {
            Mode::Paper { .. } => ModeName::Paper,
            Mode::Streaming { .. } => ModeName::Streaming,
        }
    }

    /// Whether this is the device's model.
    pub fn is_streaming(self) -> bool {
        matches!(self, Mode::Streaming { .. })
    }

    /// Bins a query attends to (`None`: the whole trial).
    pub fn window(self) -> Option<usize> {
        match self {
            Mode::Paper { causal_window } => causal_window,
            Mode::Streaming { window } => Some(window),
        }
    }
}

/// [`ModelConfig`] as checkpoints store it (JSON): the mode's name and its
/// window side by side, the layout of every earlier checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredModelConfig {
    n_in: usize,
    n_out: usize,
    hidden: usize,
    ff: usize,
    gamma: f32,
    eps: f32,
    mode: ModeName,
    window: Option<usize>,
    #[serde(default)]
    anchor_every: usize,
}

impl TryFrom<StoredModelConfig> for ModelConfig {
    type Error = String;

    fn try_from(c: StoredModelConfig) -> Result<ModelConfig, String> {
        let mode = match (c.mode, c.window) {
            (ModeName::Paper, causal_window) => Mode::Paper { causal_window },
            (ModeName::Streaming, Some(window)) if window > 0 => Mode::Streaming { window },
            (ModeName::Streaming, w) => {
                return Err(format!("streaming mode needs a window of at least 1 bin, not {w:?}"))
            }
        };
        let StoredModelConfig { n_in, n_out, hidden, ff, gamma, eps, anchor_every, .. } = c;
        Ok(ModelConfig { n_in, n_out, hidden, ff, gamma, eps, mode, anchor_every })
    }
}

impl From<ModelConfig> for StoredModelConfig {
    fn from(c: ModelConfig) -> StoredModelConfig {
        let ModelConfig { n_in, n_out, hidden, ff, gamma, eps, mode, anchor_every } = c;
        StoredModelConfig {
            n_in,
            n_out,
            hidden,
            ff,
            gamma,
            eps,
            mode: mode.name(),
            window: mode.window(),
            anchor_every,
        }
    }
}

/// Sizes and constants of one LangevinFlow model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredModelConfig", into = "StoredModelConfig")]
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
    /// Paper or streaming, with the attention window.
    pub mode: Mode,
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
        ModelConfig { n_in, n_out, hidden, ff, gamma: 0.55, eps: 0.01, mode: Mode::PAPER, anchor_every: 0 }
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
            Mode::Paper { .. } => InputSchedule::PreviousBin,
            Mode::Streaming { .. } => InputSchedule::CurrentBin,
        }
    }

    /// Whether query bin `t` may attend to key bin `j`.
    #[inline]
    pub fn attends(&self, t: usize, j: usize) -> bool {
        match self.mode.window() {
            None => true,
            Some(w) => j <= t && j + w > t,
        }
    }

    /// The key bins query bin `t` attends to, of a trial of `bins` bins: one
    /// contiguous range, the `j < bins` with [`ModelConfig::attends`]`(t, j)`.
    #[inline]
    pub fn attended_keys(&self, t: usize, bins: usize) -> std::ops::Range<usize> {
        match self.mode.window() {
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
            window: self.mode.window().unwrap_or(0) as u32,
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
            let mode = window.map_or(Mode::PAPER, |window| Mode::Streaming { window });
            let cfg = ModelConfig { mode, ..ModelConfig::paper(1, 1, 4, 4) };
            for t in 0..7 {
                let want: Vec<usize> = (0..7).filter(|&j| cfg.attends(t, j)).collect();
                assert_eq!(cfg.attended_keys(t, 7).collect::<Vec<_>>(), want, "window {window:?}, bin {t}");
            }
        }
    }

    #[test]
    fn checkpoints_keep_the_mode_and_window_side_by_side_and_refuse_a_streaming_model_without_one() {
        let cfg = ModelConfig { mode: Mode::Streaming { window: 6 }, ..ModelConfig::paper(3, 5, 8, 16) };
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(json.contains(r#""mode":"streaming","window":6"#), "{json}");
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), cfg);
        let causal = ModelConfig { mode: Mode::Paper { causal_window: Some(3) }, ..cfg.clone() };
        assert_eq!(serde_json::from_str::<ModelConfig>(&serde_json::to_string(&causal).unwrap()).unwrap(), causal);
        for window in ["null", "0"] {
            let bad = json.replace(r#""window":6"#, &format!(r#""window":{window}"#));
            let err = serde_json::from_str::<ModelConfig>(&bad).unwrap_err().to_string();
            assert!(err.contains("streaming mode needs a window"), "{err}");
        }
    }
}
