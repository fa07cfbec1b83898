//! LangevinFlow forward and backward on a chunk of trials (MODEL.md sections 1-6).
//!
//! Layout: encoder and latent activations are time-major `[TT, Bc, X]` (one
//! gemm per GRU step over the chunk); decoder activations are trial-major rows
//! `r = b * TT + t` of `[Bc * TT, X]` (one gemm per layer over the chunk; the
//! attention reads each trial's rows). Everything the backward pass needs is
//! kept in a [`Workspace`] allocated once per chunk shape.

mod decoder;
mod encoder;
mod fast_math;
mod latent;
mod workspace;

pub use latent::{POSTERIOR_HEADS, V_PRIOR_VAR};

pub use latent::{potential_taps_vjp, taps_to_kernel_grad};
pub use workspace::Workspace;

use crate::config::ModelConfig;
use crate::train::params::Params;

/// One chunk of trials, trial-major, as the model sees them.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// Encoder input `[Bc, T, N_in]` (after coordinated dropout's `x * m / cd`).
    pub input: &'a [f32],
    /// Targets `[Bc, TT, N_out]` (held-in then held-out; observed then forward bins).
    pub targets: &'a [f32],
    /// Coordinated-dropout gradient mask `[Bc, T, N_in]` for held-in neurons in
    /// observed bins: 1 = the loss element receives gradient. `None`: all do.
    pub grad_mask: Option<&'a [f32]>,
    /// Standard-normal draws `[Bc, TT + 1, H]`: `e_z`, `e_v`, then `e_t` for `t = 1 .. TT-1`.
    pub noise: &'a [f32],
    /// Trials in the chunk.
    pub trials: usize,
    /// Observed bins `T`.
    pub observed: usize,
    /// Observed plus forward bins `TT = T + F`.
    pub bins: usize,
}

/// Dropout for one forward pass: rate and a seed per trial of the chunk.
#[derive(Clone, Copy, Debug)]
pub struct Dropout<'a> {
    /// Probability of zeroing a unit.
    pub rate: f32,
    /// One seed per trial, so masks do not depend on how trials are split over threads.
    pub seeds: &'a [u64],
}

/// Loss terms of a chunk, as sums (the trainer normalises over the batch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossSums {
    /// Sum of `exp(log_rate) - y * log_rate` over every element.
    pub nll: f64,
    /// Sum over trials of `KL0 + sum_t KL_t`.
    pub kl: f64,
    /// Elements in the NLL sum.
    pub elements: usize,
}

/// How the loss is scaled for the gradient: `loss = nll_scale * NLL_sum + kl_scale * KL_sum`.
#[derive(Clone, Copy, Debug)]
pub struct LossScale {
    /// `1 / (B * TT * N_out)` for the batch mean.
    pub nll: f32,
    /// `beta / B`.
    pub kl: f32,
}

/// Forward pass of a chunk; fills `ws` and returns the loss sums.
pub fn forward(
    cfg: &ModelConfig,
    p: &Params,
    chunk: &Chunk<'_>,
    dropout: Option<Dropout<'_>>,
    ws: &mut Workspace,
) -> LossSums {
    ws.resize(cfg, chunk.trials, chunk.bins);
    encoder::forward(cfg, p, chunk, dropout, ws);
    latent::forward(cfg, p, chunk, ws);
    decoder::forward(cfg, p, chunk, dropout, ws);
    let nll = decoder::poisson_nll(cfg, chunk, ws);
    let kl = latent::kl(cfg, chunk, ws);
    LossSums { nll, kl, elements: chunk.trials * chunk.bins * cfg.n_out }
}

/// Backward pass after [`forward`] on the same chunk: adds `d loss / d params` to `grads`.
pub fn backward(
    cfg: &ModelConfig,
    p: &Params,
    chunk: &Chunk<'_>,
    scale: LossScale,
    ws: &mut Workspace,
    grads: &mut Params,
) {
    decoder::backward(cfg, p, chunk, scale, ws, grads);
    latent::backward(cfg, p, chunk, scale, ws, grads);
    encoder::backward(cfg, p, chunk, ws, grads);
}

/// Log-rates `[Bc, TT, N_out]` of the last forward pass.
pub fn log_rates(ws: &Workspace) -> &[f32] {
    &ws.log_rates
}

/// Decoder output `y2 [Bc, TT, 3H]` of the last forward pass.
pub fn decoder_output(ws: &Workspace) -> &[f32] {
    &ws.y2
}

/// Latents `[Bc, TT, 3H]` (`[z, v, h]`) of the last forward pass.
pub fn latents(ws: &Workspace) -> &[f32] {
    &ws.l
}
