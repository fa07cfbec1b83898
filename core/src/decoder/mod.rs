//! The streaming decoder: one bin in, log-rates, rates and velocity out.

mod bin;
#[cfg(feature = "std")]
mod dynamic;
mod error;

use crate::attention::{AttentionScratch, KvRing};
use crate::blob::{Blob, BlobError, Dims};
use crate::gru::Gates;
use crate::langevin::LangevinStep;
use crate::matrix::{Kernel, StorageFormat};
use crate::noise::NoiseSource;
use crate::schedule::InputSchedule;
use bin::{Buffers, Constants, Counters, Weights};
use core::borrow::BorrowMut;
#[cfg(feature = "std")]
pub use dynamic::{DynDecoder, DynOutput};
pub use error::{Stage, StepError, SPIKE_CEILING};

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

/// LangevinFlow decoding bin by bin, with every size fixed at compile time.
///
/// `N_IN` held-in neurons, latent `H`, decoder width `D = 3H`, feed-forward `FF`,
/// `N_OUT` predicted neurons, causal window `W` bins, `N_BEH` velocity outputs.
/// All state and scratch live in a [`DecoderState`] `S`: held in the struct by
/// default (`size_of::<Self>()` is then the decoder's whole RAM), or borrowed
/// (`&mut DecoderState`, [`StreamingDecoder::with_state`]) from a static a
/// device zero-initialises at link time. Weights stay in the blob, e.g. in flash.
pub struct StreamingDecoder<
    'a,
    const N_IN: usize,
    const H: usize,
    const D: usize,
    const FF: usize,
    const N_OUT: usize,
    const W: usize,
    const N_BEH: usize,
    S = DecoderState<N_IN, H, D, FF, N_OUT, W, N_BEH>,
> {
    weights: Weights<'a>,
    constants: Constants,
    counters: Counters,
    state: S,
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
    /// Validate `blob` (see `core/FORMAT.md`) against this decoder's sizes and
    /// borrow its weights without copying; the state lives in the decoder.
    /// The crate's example (`lflow_core`) builds a blob, loads it and steps it.
    pub fn from_blob(blob: &'a [u8]) -> Result<Self, BlobError> {
        Self::with_state(blob, DecoderState::new())
    }
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
        S: BorrowMut<DecoderState<N_IN, H, D, FF, N_OUT, W, N_BEH>>,
    > StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH, S>
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

    /// As [`StreamingDecoder::from_blob`], with the state in `state` (e.g. a
    /// `&'static mut DecoderState` placed in RAM at link time, so the state is
    /// never built on the stack). The state is reset.
    pub fn with_state(blob: &'a [u8], state: S) -> Result<Self, BlobError> {
        let () = Self::SIZES_OK;
        let blob = Blob::parse(blob, Some(&Self::DIMS))?;
        let mut decoder = StreamingDecoder {
            weights: Weights::from_blob(&blob)?,
            constants: Constants::of(blob.header()),
            counters: Counters::default(),
            state,
        };
        decoder.reset();
        Ok(decoder)
    }

    /// Start a new trial: bin 0 comes next (the posterior will sample `z_0`, `v_0`).
    pub fn reset(&mut self) {
        self.state.borrow_mut().buffers().reset(&mut self.counters);
    }

    /// The input schedule recorded in the blob.
    pub fn schedule(&self) -> InputSchedule {
        self.constants.schedule
    }

    /// The weights' storage format.
    pub fn storage(&self) -> StorageFormat {
        self.constants.storage
    }

    /// Langevin step size and damping from the blob.
    pub fn langevin(&self) -> LangevinStep {
        self.constants.langevin
    }

    /// The re-anchor period `P` in bins recorded in the blob (0: never), `core/CONTINUOUS.md`.
    pub fn anchor_every(&self) -> u32 {
        self.constants.anchor_every
    }

    /// Bins decoded since the last reset.
    pub fn bin(&self) -> u32 {
        self.counters.bin
    }

    /// Spike counts clamped to [`SPIKE_CEILING`] since the decoder was built.
    pub fn clamped_counts(&self) -> u32 {
        self.counters.clamped
    }

    /// Run every matrix through `kernel` (the naive one is the benchmark's baseline).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.weights.set_kernel(kernel);
    }

    /// Multiply-accumulates of one step in the weight matrices (the bulk of its
    /// work); a re-anchor bin adds `2 H^2` (the two posterior means).
    pub fn macs_per_step(&self) -> usize {
        self.weights.macs_per_step(W, D)
    }

    /// Every weight matrix of the model with its bias, in data-flow order
    /// (encoder, posterior, attention, feed-forward, readout, velocity).
    pub fn linears(&self) -> [crate::linear::Linear<'a>; 12] {
        self.weights.linears()
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
        let state = self.state.borrow_mut();
        let result = state.buffers().advance(&self.weights, &self.constants, &mut self.counters, spikes, noise);
        if result.is_err() {
            self.reset();
        }
        result?;
        let s: &DecoderState<N_IN, H, D, FF, N_OUT, W, N_BEH> = self.state.borrow();
        Ok(StepOutput { log_rates: &s.log_rates, rates: &s.rates, velocity: &s.velocity, latents: &s.l })
    }
}

/// Every state and scratch array of a [`StreamingDecoder`] (its whole RAM
/// besides a few counters). All zeros when new, so a `static` of it lies in
/// `.bss`.
pub struct DecoderState<
    const N_IN: usize,
    const H: usize,
    const D: usize,
    const FF: usize,
    const N_OUT: usize,
    const W: usize,
    const N_BEH: usize,
> {
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
    attention: AttentionScratch<D, W>,
    log_rates: [f32; N_OUT],
    rates: [f32; N_OUT],
    velocity: [f32; N_BEH],
}

impl<
        const N_IN: usize,
        const H: usize,
        const D: usize,
        const FF: usize,
        const N_OUT: usize,
        const W: usize,
        const N_BEH: usize,
    > DecoderState<N_IN, H, D, FF, N_OUT, W, N_BEH>
{
    /// Zeroed state (a decoder resets it when built).
    pub const fn new() -> Self {
        DecoderState {
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
            attention: AttentionScratch::new(),
            log_rates: [0.0; N_OUT],
            rates: [0.0; N_OUT],
            velocity: [0.0; N_BEH],
        }
    }

    fn buffers(&mut self) -> Buffers<'_, KvRing<D, W>> {
        let a = &mut self.attention;
        Buffers {
            previous_input: &mut self.previous_input,
            input: &mut self.input,
            h: &mut self.h,
            z: &mut self.z,
            v: &mut self.v,
            draws: &mut self.draws,
            draws_v: &mut self.draws_v,
            scratch_h: &mut self.scratch_h,
            gates_in: self.gates_in.as_flattened_mut(),
            gates_hidden: self.gates_hidden.as_flattened_mut(),
            l: &mut self.l,
            attended: &mut self.attended,
            y: &mut self.y,
            y2: &mut self.y2,
            hidden_ff: &mut self.hidden_ff,
            ring: &mut self.ring,
            qkv: a.qkv.as_flattened_mut(),
            scores: &mut a.scores,
            context: &mut a.context,
            log_rates: &mut self.log_rates,
            rates: &mut self.rates,
            velocity: &mut self.velocity,
        }
    }
}

impl<
        const N_IN: usize,
        const H: usize,
        const D: usize,
        const FF: usize,
        const N_OUT: usize,
        const W: usize,
        const N_BEH: usize,
    > Default for DecoderState<N_IN, H, D, FF, N_OUT, W, N_BEH>
{
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::NoiseError;
    use std::string::ToString;

    #[test]
    fn errors_say_what_and_where() {
        let e = StepError::NonFinite { stage: Stage::FeedForward, bin: 7 };
        assert_eq!(e.to_string(), "non-finite value at the feed-forward stage of bin 7; the decoder was reset");
        let e = StepError::Noise(NoiseError::Exhausted { available: 3, requested: 8 });
        assert_eq!(e.to_string(), "noise source failed: provided draws exhausted: 8 requested, 3 left");
        let e = StepError::InputLength { expected: 12, found: 11 };
        assert_eq!(e.to_string(), "bin has 11 spike counts, the model reads n_in = 12");
        let boxed: std::boxed::Box<dyn core::error::Error> = std::boxed::Box::new(e);
        assert!(boxed.to_string().starts_with("bin has"));
    }
}
