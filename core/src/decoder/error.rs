//! What a decoding step can refuse, and where.

use crate::noise::NoiseError;

/// Spike counts above this many per bin are clamped to it (and counted in
/// [`super::StreamingDecoder::clamped_counts`]): no recording reaches it in a 20 ms
/// bin (a 1 ms refractory period allows about 20), so such a count is a
/// corrupted frame or a stuck channel, not data.
pub const SPIKE_CEILING: u16 = 255;

/// The stage of a step where a value stopped being finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// GRU hidden state `h`.
    Encoder,
    /// Latent position `z` or velocity `v` (posterior or Langevin step).
    Latent,
    /// The attention query, keys, values or output.
    Attention,
    /// LayerNorms and the feed-forward block (`y`, `y2`).
    FeedForward,
    /// Log-rates or rates.
    Readout,
    /// Decoded velocity.
    Velocity,
}

/// Why a step produced no output. The decoder has been reset when this is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepError {
    /// A NaN or infinity appeared at `stage`; the state was reset so the next bin starts clean.
    NonFinite {
        /// Where it appeared.
        stage: Stage,
        /// The bin index (since the last reset) that failed.
        bin: u32,
    },
    /// The noise source could not provide the draws of this bin.
    Noise(NoiseError),
    /// A bin of another length than the model's `N_IN` (run-time sized decoders only).
    InputLength {
        /// `N_IN`.
        expected: u32,
        /// Counts given.
        found: u32,
    },
}

impl Stage {
    /// The stage's name in messages: `"encoder"`, `"latent"`, `"attention"`,
    /// `"feed-forward"`, `"readout"` or `"velocity"`.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Encoder => "encoder",
            Stage::Latent => "latent",
            Stage::Attention => "attention",
            Stage::FeedForward => "feed-forward",
            Stage::Readout => "readout",
            Stage::Velocity => "velocity",
        }
    }
}

impl core::fmt::Display for Stage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::fmt::Display for StepError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StepError::NonFinite { stage, bin } => {
                write!(f, "non-finite value at the {stage} stage of bin {bin}; the decoder was reset")
            }
            StepError::Noise(e) => write!(f, "noise source failed: {e}"),
            StepError::InputLength { expected, found } => {
                write!(f, "bin has {found} spike counts, the model reads n_in = {expected}")
            }
        }
    }
}

impl core::error::Error for StepError {}
