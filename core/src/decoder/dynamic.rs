//! [`DynDecoder`]: the streaming decoder at the sizes a blob records, for the
//! host (feature `std`). It runs the very code of [`StreamingDecoder`](super::StreamingDecoder)
//! over heap buffers, so its outputs equal the device's bit for bit; `lflow
//! eval --stream` decodes long streams with it.

use super::bin::{Buffers, Constants, Counters, Weights};
use super::error::StepError;
use crate::attention::DynKvRing;
use crate::blob::{Blob, BlobError, Dims};
use crate::noise::NoiseSource;
use std::vec;
use std::vec::Vec;

/// What one bin decodes to, borrowed until the next step; slices of the model's sizes.
#[derive(Clone, Copy, Debug)]
pub struct DynOutput<'s> {
    /// Log firing rates `[N_out]`, ln(spikes per bin).
    pub log_rates: &'s [f32],
    /// Firing rates `[N_out]`, spikes per bin.
    pub rates: &'s [f32],
    /// Decoded behaviour `[N_beh]`.
    pub velocity: &'s [f32],
    /// `l_t = [z_t, v_t, h_t]` `[D]`.
    pub latents: &'s [f32],
    /// The decoder's output `y2` `[D]` (what the readout and the velocity decoder read).
    pub decoder_output: &'s [f32],
}

/// Heap buffers of the sizes a [`Buffers`] view names.
#[derive(Clone, Debug)]
struct Heap {
    previous_input: Vec<f32>,
    input: Vec<f32>,
    h: Vec<f32>,
    z: Vec<f32>,
    v: Vec<f32>,
    draws: Vec<f32>,
    draws_v: Vec<f32>,
    scratch_h: Vec<f32>,
    gates_in: Vec<f32>,
    gates_hidden: Vec<f32>,
    l: Vec<f32>,
    attended: Vec<f32>,
    y: Vec<f32>,
    y2: Vec<f32>,
    hidden_ff: Vec<f32>,
    ring: DynKvRing,
    qkv: Vec<f32>,
    scores: Vec<f32>,
    context: Vec<f32>,
    log_rates: Vec<f32>,
    rates: Vec<f32>,
    velocity: Vec<f32>,
}

impl Heap {
    fn new(d: &Dims) -> Self {
        let z = |n: u32| vec![0.0f32; n as usize];
        Heap {
            previous_input: z(d.n_in),
            input: z(d.n_in),
            h: z(d.hidden),
            z: z(d.hidden),
            v: z(d.hidden),
            draws: z(d.hidden),
            draws_v: z(d.hidden),
            scratch_h: z(d.hidden),
            gates_in: z(3 * d.hidden),
            gates_hidden: z(3 * d.hidden),
            l: z(d.d_model),
            attended: z(d.d_model),
            y: z(d.d_model),
            y2: z(d.d_model),
            hidden_ff: z(d.ff),
            ring: DynKvRing::new(d.d_model as usize, d.window as usize),
            qkv: z(3 * d.d_model),
            scores: z(d.window),
            context: z(d.d_model),
            log_rates: z(d.n_out),
            rates: z(d.n_out),
            velocity: z(d.n_beh),
        }
    }

    fn buffers(&mut self) -> Buffers<'_, DynKvRing> {
        Buffers {
            previous_input: &mut self.previous_input,
            input: &mut self.input,
            h: &mut self.h,
            z: &mut self.z,
            v: &mut self.v,
            draws: &mut self.draws,
            draws_v: &mut self.draws_v,
            scratch_h: &mut self.scratch_h,
            gates_in: &mut self.gates_in,
            gates_hidden: &mut self.gates_hidden,
            l: &mut self.l,
            attended: &mut self.attended,
            y: &mut self.y,
            y2: &mut self.y2,
            hidden_ff: &mut self.hidden_ff,
            ring: &mut self.ring,
            qkv: &mut self.qkv,
            scores: &mut self.scores,
            context: &mut self.context,
            log_rates: &mut self.log_rates,
            rates: &mut self.rates,
            velocity: &mut self.velocity,
        }
    }
}

/// The streaming decoder with its sizes read from the blob at run time.
#[derive(Clone, Debug)]
pub struct DynDecoder<'a> {
    weights: Weights<'a>,
    constants: Constants,
    counters: Counters,
    dims: Dims,
    heap: Heap,
}

impl<'a> DynDecoder<'a> {
    /// Validate `blob` (any sizes) and borrow its weights.
    pub fn from_blob(blob: &'a [u8]) -> Result<Self, BlobError> {
        let parsed = Blob::parse(blob, None)?;
        let header = *parsed.header();
        Ok(DynDecoder {
            weights: Weights::from_blob(&parsed)?,
            constants: Constants::of(&header),
            counters: Counters::default(),
            dims: header.dims,
            heap: Heap::new(&header.dims),
        })
    }

    /// The model's sizes.
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// The re-anchor period `P` in bins (0: never).
    pub fn anchor_every(&self) -> u32 {
        self.constants.anchor_every
    }

    /// Bins decoded since the last reset.
    pub fn bin(&self) -> u32 {
        self.counters.bin
    }

    /// Multiply-accumulates of one Langevin bin in the weight matrices (see
    /// [`StreamingDecoder::macs_per_step`](super::StreamingDecoder::macs_per_step)).
    pub fn macs_per_step(&self) -> usize {
        self.weights.macs_per_step(self.dims.window as usize, self.dims.d_model as usize)
    }

    /// Start a new trial or stream: bin 0 comes next.
    pub fn reset(&mut self) {
        self.heap.buffers().reset(&mut self.counters);
    }

    /// Run every matrix through `kernel`: `Tuned` is the device's arithmetic
    /// (int8: int16 activations), `Naive` the plain f32 reference (f32
    /// activations), e.g. to measure what the device's arithmetic costs.
    pub fn set_kernel(&mut self, kernel: crate::matrix::Kernel) {
        self.weights.set_kernel(kernel);
    }

    /// Decode one bin of spike counts `[N_in]`; on error the decoder is reset.
    pub fn step(&mut self, spikes: &[u16], noise: &mut impl NoiseSource) -> Result<DynOutput<'_>, StepError> {
        if spikes.len() != self.dims.n_in as usize {
            return Err(StepError::InputLength { expected: self.dims.n_in, found: spikes.len() as u32 });
        }
        let result = self.heap.buffers().advance(&self.weights, &self.constants, &mut self.counters, spikes, noise);
        if result.is_err() {
            self.reset();
        }
        result?;
        let b = &self.heap;
        Ok(DynOutput {
            log_rates: &b.log_rates,
            rates: &b.rates,
            velocity: &b.velocity,
            latents: &b.l,
            decoder_output: &b.y2,
        })
    }
}
