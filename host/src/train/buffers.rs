//! The activation and gradient buffers of one training step, declared once:
//! [`step_buffers!`] holds the table (name: element count), and the CPU's
//! [`crate::train::model::Workspace`] and the CUDA backend's arena are both
//! generated from it.

/// The sizes a step's buffers depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepShape {
    /// Trials `Bc`.
    pub trials: usize,
    /// Observed plus forward bins `TT`.
    pub bins: usize,
    /// Held-in neurons `N_in`.
    pub n_in: usize,
    /// Neurons `N_out`.
    pub n_out: usize,
    /// Latent size `H`.
    pub hidden: usize,
    /// Decoder width `D = 3H`.
    pub d: usize,
    /// Feed-forward width.
    pub ff: usize,
}

impl StepShape {
    /// The shape of `trials` trials of `bins` bins of `cfg`'s model.
    pub fn new(cfg: &crate::config::ModelConfig, trials: usize, bins: usize) -> StepShape {
        StepShape { trials, bins, n_in: cfg.n_in, n_out: cfg.n_out, hidden: cfg.hidden, d: cfg.d_model(), ff: cfg.ff }
    }

    /// Rows of every per-bin buffer, `Bc * TT` (time-major in the encoder,
    /// trial-major in the decoder).
    pub fn rows(&self) -> usize {
        self.trials * self.bins
    }
}

/// Calls `$consumer!` with the table of every f32 buffer both backends hold,
/// `name: |s: &StepShape| element count,` in order. The names are the
/// model's (MODEL.md): encoder `[TT, Bc, .]`, latent, decoder rows
/// `[Bc * TT, .]`, then the backward pass's gradients.
macro_rules! step_buffers {
    ($consumer:ident) => {
        $consumer! {
            // Encoder, time-major [TT, Bc, .].
            xg: |s: &StepShape| s.rows() * s.n_in,
            gi: |s: &StepShape| s.rows() * 3 * s.hidden,
            gh: |s: &StepShape| s.trials * 3 * s.hidden,
            r: |s: &StepShape| s.rows() * s.hidden,
            u: |s: &StepShape| s.rows() * s.hidden,
            n: |s: &StepShape| s.rows() * s.hidden,
            ghn: |s: &StepShape| s.rows() * s.hidden,
            h: |s: &StepShape| s.rows() * s.hidden,
            h_mask: |s: &StepShape| s.rows() * s.hidden,
            // Latent: the posterior heads at bin 0, then z_t, v_t.
            mu_z: |s: &StepShape| s.trials * s.hidden,
            lv_z: |s: &StepShape| s.trials * s.hidden,
            mu_v: |s: &StepShape| s.trials * s.hidden,
            lv_v: |s: &StepShape| s.trials * s.hidden,
            z: |s: &StepShape| s.rows() * s.hidden,
            v: |s: &StepShape| s.rows() * s.hidden,
            // Decoder, trial-major rows [Bc * TT, .].
            l: |s: &StepShape| s.rows() * s.d,
            qkv: |s: &StepShape| s.rows() * 3 * s.d,
            probs: |s: &StepShape| s.trials * 2 * s.bins * s.bins,
            ctx: |s: &StepShape| s.rows() * s.d,
            attn_mask: |s: &StepShape| s.rows() * s.d,
            y: |s: &StepShape| s.rows() * s.d,
            xhat1: |s: &StepShape| s.rows() * s.d,
            rstd1: |s: &StepShape| s.rows(),
            f1: |s: &StepShape| s.rows() * s.ff,
            f1_mask: |s: &StepShape| s.rows() * s.ff,
            f2_mask: |s: &StepShape| s.rows() * s.d,
            xhat2: |s: &StepShape| s.rows() * s.d,
            rstd2: |s: &StepShape| s.rows(),
            y2: |s: &StepShape| s.rows() * s.d,
            log_rates: |s: &StepShape| s.rows() * s.n_out,
            // Backward.
            d_log_rates: |s: &StepShape| s.rows() * s.n_out,
            d_rows: |s: &StepShape| s.rows() * s.d,
            d_rows2: |s: &StepShape| s.rows() * s.d,
            d_ff: |s: &StepShape| s.rows() * s.ff,
            d_qkv: |s: &StepShape| s.rows() * 3 * s.d,
            dz: |s: &StepShape| s.rows() * s.hidden,
            dv: |s: &StepShape| s.rows() * s.hidden,
            dh: |s: &StepShape| s.rows() * s.hidden,
            dgi: |s: &StepShape| s.rows() * 3 * s.hidden,
            dgh: |s: &StepShape| s.rows() * 3 * s.hidden,
            h_prev: |s: &StepShape| s.rows() * s.hidden,
        }
    };
}

pub(crate) use step_buffers;
