//! LangevinFlow forward and backward on a chunk of trials (MODEL.md sections 1-6).
//!
//! Layout: encoder and latent activations are time-major `[TT, Bc, X]` (one
//! gemm per GRU step over the chunk); decoder activations are trial-major rows
//! `r = b * TT + t` of `[Bc * TT, X]` (one gemm per layer over the chunk; the
//! attention reads each trial's rows). Everything the backward pass needs is
//! kept in a [`Workspace`] allocated once per chunk shape.

mod chunk;
mod decoder;
mod encoder;
mod fast_math;
mod latent;
mod workspace;

pub use latent::{POSTERIOR_HEADS, V_PRIOR_VAR};

pub use chunk::{Chunk, Dropout, LossScale, LossSums};
pub use latent::{potential_taps_vjp, taps_to_kernel_grad};
pub use workspace::Workspace;

use crate::config::ModelConfig;
use crate::train::params::Params;

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
