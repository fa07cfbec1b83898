//! What a pass over a chunk of trials reads and returns.

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
