//! The streaming decoder: one bin in, log-rates, rates and velocity out.

use crate::attention::{Attention, AttentionScratch, KvRing};
use crate::blob::{Blob, BlobError, Dims, Tensor};
use crate::feed_forward::FeedForward;
use crate::gru::{Gates, GruCell};
use crate::langevin::LangevinStep;
use crate::layer_norm::LayerNorm;
use crate::matrix::{Kernel, StorageFormat};
use crate::noise::{NoiseError, NoiseSource};
use crate::posterior::Posterior;
use crate::potential::Potential;
use crate::readout::Readout;
use crate::schedule::InputSchedule;
use crate::velocity::VelocityDecoder;

/// Spike counts above this many per bin are clamped to it (and counted in
/// [`StreamingDecoder::clamped_counts`]): no recording reaches it in a 20 ms
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
}

/// What one bin decodes to, borrowed from the decoder until the next step.
#[derive(Clone, Copy, Debug)]
pub struct StepOutput<'s, const D: usize, const N_OUT: usize, const N_BEH: usize> {
    /// Log firing rates `[N_OUT]` (held-in then held-out neurons), ln(spikes per bin).
    pub log_rates: &'s [f32; N_OUT],
    /// Firing rates `[N_OUT]`, spikes per bin.
    pub rates: &'s [f32; N_OUT],
    /// Decoded behaviour `[N_BEH]` (hand velocity, units of the training data).
    pub velocity: &'s [f32; N_BEH],
    /// The decoder's input `l_t = [z_t, v_t, h_t]` `[D]`.
    pub latents: &'s [f32; D],
}

/// The weights of every stage, borrowed from a validated blob.
#[derive(Clone, Copy, Debug)]
struct Weights<'a> {
    encoder: GruCell<'a>,
    posterior: Posterior<'a>,
    potential: Potential,
    attention: Attention<'a>,
    norm1: LayerNorm<'a>,
    feed_forward: FeedForward<'a>,
    norm2: LayerNorm<'a>,
    readout: Readout<'a>,
    velocity: VelocityDecoder<'a>,
}

/// LangevinFlow decoding bin by bin, with every size fixed at compile time.
///
/// `N_IN` held-in neurons, latent `H`, decoder width `D = 3H`, feed-forward `FF`,
/// `N_OUT` predicted neurons, causal window `W` bins, `N_BEH` velocity outputs.
/// All state and scratch live in the struct: `size_of::<Self>()` is the
/// decoder's whole RAM (weights stay in the blob, e.g. in flash).
pub struct StreamingDecoder<
    'a,
    const N_IN: usize,
    const H: usize,
    const D: usize,
    const FF: usize,
    const N_OUT: usize,
    const W: usize,
    const N_BEH: usize,
> {
    weights: Weights<'a>,
    langevin: LangevinStep,
    schedule: InputSchedule,
    storage: StorageFormat,
    bin: u32,
    clamped: u32,
    previous_input: [f32; N_IN],
    input: [f32; N_IN],
    h: [f32; H],
    z: [f32; H],
    v: [f32; H],
    draws: [f32; H],
    draws_v: [f32; H],
    scratch_h: [f32; H],
    gates_in: Gates<H>,
    gates_hidden: Gates<H>,
    l: [f32; D],
    attended: [f32; D],
    y: [f32; D],
    y2: [f32; D],
    hidden_ff: [f32; FF],
    ring: KvRing<D, W>,
    attention_scratch: AttentionScratch<D, W>,
    log_rates: [f32; N_OUT],
    rates: [f32; N_OUT],
    velocity: [f32; N_BEH],
}

fn all_finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

impl<
        'a,
        const N_IN: usize,
        const H: usize,
        const D: usize,
        const FF: usize,
        const N_OUT: usize,
        const W: usize,
        const N_BEH: usize,
    > StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH>
{
    const SIZES_OK: () = {
        assert!(D == 3 * H, "D must be 3 * H");
        assert!(H.is_multiple_of(4) && H >= 4, "H must be a positive multiple of 4");
        assert!(D.is_multiple_of(2), "D must split into 2 heads");
        assert!(N_IN > 0 && FF > 0 && N_OUT > 0 && W > 0, "sizes must be positive");
        assert!(N_IN <= 1 << 14 && H <= 1 << 14 && FF <= 1 << 14 && N_OUT <= 1 << 14 && W <= 1 << 14);
        assert!(N_BEH <= 1 << 14);
    };

    /// The sizes this decoder was compiled for.
    pub const DIMS: Dims = Dims {
        n_in: N_IN as u32,
        hidden: H as u32,
        d_model: D as u32,
        ff: FF as u32,
        n_out: N_OUT as u32,
        window: W as u32,
        n_beh: N_BEH as u32,
    };

    /// Validate `blob` (see `core/FORMAT.md`) against this decoder's sizes and
    /// borrow its weights without copying.
    pub fn from_blob(blob: &'a [u8]) -> Result<Self, BlobError> {
        let () = Self::SIZES_OK;
        let blob = Blob::parse(blob, Some(&Self::DIMS))?;
        let header = *blob.header();
        use Tensor::*;
        let kernel = blob.vector(PotentialKernel)?;
        let weights = Weights {
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
                .ok_or(BlobError::MissingSection { section: crate::blob::SectionId::Values(PotentialKernel) })?,
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
        };
        Ok(StreamingDecoder {
            weights,
            langevin: LangevinStep { gamma: header.gamma, eps: header.eps },
            schedule: header.schedule,
            storage: header.storage,
            bin: 0,
            clamped: 0,
            previous_input: [0.0; N_IN],
            input: [0.0; N_IN],
            h: [0.0; H],
            z: [0.0; H],
            v: [0.0; H],
            draws: [0.0; H],
            draws_v: [0.0; H],
            scratch_h: [0.0; H],
            gates_in: [[0.0; H]; 3],
            gates_hidden: [[0.0; H]; 3],
            l: [0.0; D],
            attended: [0.0; D],
            y: [0.0; D],
            y2: [0.0; D],
            hidden_ff: [0.0; FF],
            ring: KvRing::new(),
            attention_scratch: AttentionScratch::new(),
            log_rates: [0.0; N_OUT],
            rates: [0.0; N_OUT],
            velocity: [0.0; N_BEH],
        })
    }

    /// Start a new trial: bin 0 comes next (the posterior will sample `z_0`, `v_0`).
    pub fn reset(&mut self) {
        self.bin = 0;
        self.h = [0.0; H];
        self.z = [0.0; H];
        self.v = [0.0; H];
        self.previous_input = [0.0; N_IN];
        self.ring.clear();
    }

    /// The input schedule recorded in the blob.
    pub fn schedule(&self) -> InputSchedule {
        self.schedule
    }

    /// The weights' storage format.
    pub fn storage(&self) -> StorageFormat {
        self.storage
    }

    /// Langevin step size and damping from the blob.
    pub fn langevin(&self) -> LangevinStep {
        self.langevin
    }

    /// Bins decoded since the last reset.
    pub fn bin(&self) -> u32 {
        self.bin
    }

    /// Spike counts clamped to [`SPIKE_CEILING`] since the decoder was built.
    pub fn clamped_counts(&self) -> u32 {
        self.clamped
    }

    /// Run every matrix through `kernel` (the naive one is the benchmark's baseline).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        let w = &mut self.weights;
        for linear in [
            &mut w.encoder.input,
            &mut w.encoder.hidden,
            &mut w.posterior.z_mean,
            &mut w.posterior.z_logvar,
            &mut w.posterior.v_mean,
            &mut w.posterior.v_logvar,
            &mut w.attention.in_proj,
            &mut w.attention.out_proj,
            &mut w.feed_forward.linear1,
            &mut w.feed_forward.linear2,
            &mut w.readout.0,
            &mut w.velocity.0,
        ] {
            *linear = linear.with_kernel(kernel);
        }
    }

    /// Multiply-accumulates of one step in the weight matrices (the bulk of its work).
    pub fn macs_per_step(&self) -> usize {
        let w = &self.weights;
        w.encoder.input.macs()
            + w.encoder.hidden.macs()
            + w.attention.in_proj.macs()
            + w.attention.out_proj.macs()
            + w.feed_forward.linear1.macs()
            + w.feed_forward.linear2.macs()
            + w.readout.0.macs()
            + w.velocity.0.macs()
            + 2 * W * D
    }

    /// Decode one bin of spike counts `[N_IN]`.
    ///
    /// On error the decoder is reset (the next call is bin 0 of a new trial)
    /// and the error says where a non-finite value appeared.
    pub fn step(
        &mut self,
        spikes: &[u16; N_IN],
        noise: &mut impl NoiseSource,
    ) -> Result<StepOutput<'_, D, N_OUT, N_BEH>, StepError> {
        let result = self.advance(spikes, noise);
        if result.is_err() {
            self.reset();
        }
        result?;
        Ok(StepOutput { log_rates: &self.log_rates, rates: &self.rates, velocity: &self.velocity, latents: &self.l })
    }

    fn advance(&mut self, spikes: &[u16; N_IN], noise: &mut impl NoiseSource) -> Result<(), StepError> {
        let bin = self.bin;
        let fail = |stage| StepError::NonFinite { stage, bin };
        let w = self.weights;

        // Encoder input per the schedule.
        let mut current = [0.0f32; N_IN];
        for (c, &s) in current.iter_mut().zip(spikes) {
            if s > SPIKE_CEILING {
                self.clamped = self.clamped.saturating_add(1);
            }
            *c = f32::from(s.min(SPIKE_CEILING));
        }
        self.input = match self.schedule {
            InputSchedule::PreviousBin if bin > 0 => self.previous_input,
            _ => current,
        };
        self.previous_input = current;
        w.encoder.step(&self.input, &mut self.h, &mut self.gates_in, &mut self.gates_hidden);
        if !all_finite(&self.h) {
            return Err(fail(Stage::Encoder));
        }

        // Latent state: posterior at bin 0, one Langevin step after.
        if bin == 0 {
            noise.fill(&mut self.draws).map_err(StepError::Noise)?;
            noise.fill(&mut self.draws_v).map_err(StepError::Noise)?;
            w.posterior.sample(&self.h, &self.draws, &self.draws_v, &mut self.z, &mut self.v, &mut self.scratch_h);
        } else {
            noise.fill(&mut self.draws).map_err(StepError::Noise)?;
            self.langevin.step(&w.potential, &mut self.z, &mut self.v, &mut self.scratch_h, &self.draws);
        }
        if !all_finite(&self.z) || !all_finite(&self.v) {
            return Err(fail(Stage::Latent));
        }
        for (dst, src) in self.l.chunks_exact_mut(H).zip([&self.z, &self.v, &self.h]) {
            dst.copy_from_slice(src);
        }

        // Decoder: attention, norm, feed-forward, norm.
        w.attention.step(&self.l, &mut self.ring, &mut self.attention_scratch, &mut self.attended);
        if !all_finite(self.attention_scratch.qkv.as_flattened()) || !all_finite(&self.attended) {
            return Err(fail(Stage::Attention));
        }
        for ((y, l), a) in self.y.iter_mut().zip(&self.l).zip(&self.attended) {
            *y = l + a;
        }
        w.norm1.apply_in_place(&mut self.y);
        w.feed_forward.apply(&self.y, &mut self.hidden_ff, &mut self.y2);
        for (y2, y) in self.y2.iter_mut().zip(&self.y) {
            *y2 += y;
        }
        w.norm2.apply_in_place(&mut self.y2);
        if !all_finite(&self.y2) {
            return Err(fail(Stage::FeedForward));
        }

        w.readout.apply(&self.y2, &mut self.log_rates, &mut self.rates);
        if !all_finite(&self.log_rates) || !all_finite(&self.rates) {
            return Err(fail(Stage::Readout));
        }
        w.velocity.apply(&self.y2, &mut self.velocity);
        if !all_finite(&self.velocity) {
            return Err(fail(Stage::Velocity));
        }
        self.bin = bin.saturating_add(1);
        Ok(())
    }
}
