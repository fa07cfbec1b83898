//! One bin of the decoder over borrowed buffers: the code that both the
//! const-generic [`StreamingDecoder`](super::StreamingDecoder) (the device) and
//! the run-time sized `DynDecoder` (the host, feature `std`) run, so the two
//! are bit-identical by construction.

use super::error::{Stage, StepError, SPIKE_CEILING};
use crate::attention::{Attention, KvStore};
use crate::blob::{Blob, BlobError, SectionId, Tensor};
use crate::feed_forward::FeedForward;
use crate::gru::GruCell;
use crate::langevin::LangevinStep;
use crate::layer_norm::LayerNorm;
use crate::matrix::{Kernel, StorageFormat};
use crate::noise::NoiseSource;
use crate::posterior::Posterior;
use crate::potential::Potential;
use crate::readout::Readout;
use crate::schedule::InputSchedule;
use crate::velocity::VelocityDecoder;

/// The weights of every stage, borrowed from a validated blob.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights<'a> {
    pub encoder: GruCell<'a>,
    pub posterior: Posterior<'a>,
    pub potential: Potential,
    pub attention: Attention<'a>,
    pub norm1: LayerNorm<'a>,
    pub feed_forward: FeedForward<'a>,
    pub norm2: LayerNorm<'a>,
    pub readout: Readout<'a>,
    pub velocity: VelocityDecoder<'a>,
}

impl<'a> Weights<'a> {
    /// Borrow every stage's weights from a parsed blob.
    pub fn from_blob(blob: &Blob<'a>) -> Result<Self, BlobError> {
        use Tensor::*;
        let kernel = blob.vector(PotentialKernel)?;
        Ok(Weights {
            encoder: GruCell {
                input: blob.linear(EncoderWeightIh, EncoderBiasIh)?,
                hidden: blob.linear(EncoderWeightHh, EncoderBiasHh)?,
            },
            posterior: Posterior {
                z_mean: blob.linear(ZMeansWeight, ZMeansBias)?,
                z_logvar: blob.linear(ZLogvarWeight, ZLogvarBias)?,
                v_mean: blob.linear(VMeansWeight, VMeansBias)?,
                v_logvar: blob.linear(VLogvarWeight, VLogvarBias)?,
            },
            potential: Potential::from_flat_kernel(kernel)
                .ok_or(BlobError::MissingSection { section: SectionId::Values(PotentialKernel) })?,
            attention: Attention {
                in_proj: blob.linear(AttnInProjWeight, AttnInProjBias)?,
                out_proj: blob.linear(AttnOutProjWeight, AttnOutProjBias)?,
            },
            norm1: LayerNorm { weight: blob.vector(Norm1Weight)?, bias: blob.vector(Norm1Bias)? },
            feed_forward: FeedForward {
                linear1: blob.linear(Linear1Weight, Linear1Bias)?,
                linear2: blob.linear(Linear2Weight, Linear2Bias)?,
            },
            norm2: LayerNorm { weight: blob.vector(Norm2Weight)?, bias: blob.vector(Norm2Bias)? },
            readout: Readout(blob.linear(ReadoutWeight, ReadoutBias)?),
            velocity: VelocityDecoder(blob.linear(VelocityWeight, VelocityBias)?),
        })
    }

    /// Every matrix with its bias, in data-flow order.
    pub fn linears(&self) -> [crate::linear::Linear<'a>; 12] {
        [
            self.encoder.input,
            self.encoder.hidden,
            self.posterior.z_mean,
            self.posterior.z_logvar,
            self.posterior.v_mean,
            self.posterior.v_logvar,
            self.attention.in_proj,
            self.attention.out_proj,
            self.feed_forward.linear1,
            self.feed_forward.linear2,
            self.readout.0,
            self.velocity.0,
        ]
    }

    /// Run every matrix through `kernel`.
    pub fn set_kernel(&mut self, kernel: Kernel) {
        for linear in [
            &mut self.encoder.input,
            &mut self.encoder.hidden,
            &mut self.posterior.z_mean,
            &mut self.posterior.z_logvar,
            &mut self.posterior.v_mean,
            &mut self.posterior.v_logvar,
            &mut self.attention.in_proj,
            &mut self.attention.out_proj,
            &mut self.feed_forward.linear1,
            &mut self.feed_forward.linear2,
            &mut self.readout.0,
            &mut self.velocity.0,
        ] {
            *linear = linear.with_kernel(kernel);
        }
    }

    /// Weight multiply-accumulates of a Langevin bin, plus the attention over `window` keys of width `d`.
    pub fn macs_per_step(&self, window: usize, d: usize) -> usize {
        self.encoder.input.macs()
            + self.encoder.hidden.macs()
            + self.attention.in_proj.macs()
            + self.attention.out_proj.macs()
            + self.feed_forward.linear1.macs()
            + self.feed_forward.linear2.macs()
            + self.readout.0.macs()
            + self.velocity.0.macs()
            + 2 * window * d
    }
}

/// The constants of the header that shape a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Constants {
    pub langevin: LangevinStep,
    pub schedule: InputSchedule,
    pub storage: StorageFormat,
    /// Re-anchor period `P` in bins (0: never), `core/CONTINUOUS.md`.
    pub anchor_every: u32,
}

impl Constants {
    /// The constants a validated blob's header records.
    pub fn of(h: &crate::blob::Header) -> Self {
        Constants {
            langevin: LangevinStep { gamma: h.gamma, eps: h.eps },
            schedule: h.schedule,
            storage: h.storage,
            anchor_every: h.anchor_every,
        }
    }
}

/// Counters carried from bin to bin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Bins since the last reset (saturating).
    pub bin: u32,
    /// Bins since `z`, `v` were last set from the posterior (`< P`).
    pub since_anchor: u32,
    /// Spike counts clamped since the decoder was built.
    pub clamped: u32,
}

/// Every state and scratch buffer of one decoder, borrowed for one bin. Sizes:
/// `[N_in]` inputs, `[H]` latents, `[3H]` gates, `[D]` decoder rows, `[3D]`
/// `qkv`, `[W]` scores, `[FF]` hidden, `[N_out]` outputs, `[N_beh]` velocity.
pub(crate) struct Buffers<'s, R> {
    pub previous_input: &'s mut [f32],
    pub input: &'s mut [f32],
    pub h: &'s mut [f32],
    pub z: &'s mut [f32],
    pub v: &'s mut [f32],
    pub draws: &'s mut [f32],
    pub draws_v: &'s mut [f32],
    pub scratch_h: &'s mut [f32],
    pub gates_in: &'s mut [f32],
    pub gates_hidden: &'s mut [f32],
    pub l: &'s mut [f32],
    pub attended: &'s mut [f32],
    pub y: &'s mut [f32],
    pub y2: &'s mut [f32],
    pub hidden_ff: &'s mut [f32],
    pub ring: &'s mut R,
    pub qkv: &'s mut [f32],
    pub scores: &'s mut [f32],
    pub context: &'s mut [f32],
    pub log_rates: &'s mut [f32],
    pub rates: &'s mut [f32],
    pub velocity: &'s mut [f32],
}

fn all_finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

impl<R: KvStore> Buffers<'_, R> {
    /// Forget the trial: bin 0 comes next.
    pub fn reset(self, c: &mut Counters) {
        c.bin = 0;
        c.since_anchor = 0;
        self.h.fill(0.0);
        self.z.fill(0.0);
        self.v.fill(0.0);
        self.previous_input.fill(0.0);
        self.ring.clear();
    }

    /// Decode one bin of `spikes [N_in]` into the output buffers.
    pub fn advance(
        self,
        w: &Weights<'_>,
        k: &Constants,
        c: &mut Counters,
        spikes: &[u16],
        noise: &mut impl NoiseSource,
    ) -> Result<(), StepError> {
        let bin = c.bin;
        let fail = |stage| StepError::NonFinite { stage, bin };

        // Encoder input per the schedule; `input` holds this bin's counts until the swap.
        for (x, &s) in self.input.iter_mut().zip(spikes) {
            if s > SPIKE_CEILING {
                c.clamped = c.clamped.saturating_add(1);
            }
            *x = f32::from(s.min(SPIKE_CEILING));
        }
        // `previous_input` now receives this bin's counts; `input` what the GRU reads.
        // (Element-wise loops: a slice copy's length check would be a panic path.)
        let previous = k.schedule == InputSchedule::PreviousBin && bin > 0;
        for (x, p) in self.input.iter_mut().zip(self.previous_input.iter_mut()) {
            let now = *x;
            if previous {
                *x = *p;
            }
            *p = now;
        }
        w.encoder.step_slice(self.input, self.h, self.gates_in, self.gates_hidden);
        if !all_finite(self.h) {
            return Err(fail(Stage::Encoder));
        }

        // Latent state: posterior at bin 0, then a Langevin step, or every
        // `anchor_every` bins the posterior means on the current `h`.
        noise.fill(self.draws).map_err(StepError::Noise)?;
        if bin == 0 {
            noise.fill(self.draws_v).map_err(StepError::Noise)?;
            w.posterior.sample(self.h, self.draws, self.draws_v, self.z, self.v, self.scratch_h);
            c.since_anchor = 0;
        } else {
            c.since_anchor = c.since_anchor.saturating_add(1);
            if k.anchor_every > 0 && c.since_anchor >= k.anchor_every {
                w.posterior.means(self.h, self.z, self.v);
                c.since_anchor = 0;
            } else {
                k.langevin.step_slice(&w.potential, self.z, self.v, self.scratch_h, self.draws);
            }
        }
        if !all_finite(self.z) || !all_finite(self.v) {
            return Err(fail(Stage::Latent));
        }
        let hidden = self.h.len().max(1);
        for (dst, src) in self.l.chunks_exact_mut(hidden).zip([&*self.z, &*self.v, &*self.h]) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }

        // Decoder: attention, norm, feed-forward, norm.
        w.attention.step(self.l, self.ring, self.qkv, self.scores, self.context, self.attended);
        if !all_finite(self.qkv) || !all_finite(self.attended) {
            return Err(fail(Stage::Attention));
        }
        for ((y, l), a) in self.y.iter_mut().zip(self.l.iter()).zip(self.attended.iter()) {
            *y = l + a;
        }
        w.norm1.apply_in_place(self.y);
        w.feed_forward.apply(self.y, self.hidden_ff, self.y2);
        for (y2, y) in self.y2.iter_mut().zip(self.y.iter()) {
            *y2 += y;
        }
        w.norm2.apply_in_place(self.y2);
        if !all_finite(self.y2) {
            return Err(fail(Stage::FeedForward));
        }

        w.readout.apply(self.y2, self.log_rates, self.rates);
        if !all_finite(self.log_rates) || !all_finite(self.rates) {
            return Err(fail(Stage::Readout));
        }
        w.velocity.apply(self.y2, self.velocity);
        if !all_finite(self.velocity) {
            return Err(fail(Stage::Velocity));
        }
        c.bin = bin.saturating_add(1);
        Ok(())
    }
}
