//! Every activation and gradient buffer of one chunk, allocated once.

use crate::config::ModelConfig;

/// Buffers for a chunk of `trials` trials of `bins` bins. Resizing to the same
/// shape allocates nothing, so the time loop never allocates.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    pub(crate) trials: usize,
    pub(crate) bins: usize,
    // Encoder, time-major [TT, Bc, .].
    pub(crate) xg: Vec<f32>,
    pub(crate) gi: Vec<f32>,
    pub(crate) gh: Vec<f32>,
    pub(crate) r: Vec<f32>,
    pub(crate) u: Vec<f32>,
    pub(crate) n: Vec<f32>,
    pub(crate) ghn: Vec<f32>,
    pub(crate) h: Vec<f32>,
    pub(crate) h_mask: Vec<f32>,
    // Latent.
    pub(crate) mu_z: Vec<f32>,
    pub(crate) lv_z: Vec<f32>,
    pub(crate) mu_v: Vec<f32>,
    pub(crate) lv_v: Vec<f32>,
    pub(crate) z: Vec<f32>,
    pub(crate) v: Vec<f32>,
    // Decoder, trial-major rows [Bc * TT, .].
    pub(crate) l: Vec<f32>,
    pub(crate) qkv: Vec<f32>,
    pub(crate) probs: Vec<f32>,
    pub(crate) ctx: Vec<f32>,
    pub(crate) attn_mask: Vec<f32>,
    pub(crate) y: Vec<f32>,
    pub(crate) xhat1: Vec<f32>,
    pub(crate) rstd1: Vec<f32>,
    pub(crate) f1: Vec<f32>,
    pub(crate) f1_mask: Vec<f32>,
    pub(crate) f2_mask: Vec<f32>,
    pub(crate) xhat2: Vec<f32>,
    pub(crate) rstd2: Vec<f32>,
    pub(crate) y2: Vec<f32>,
    pub(crate) log_rates: Vec<f32>,
    // Backward.
    pub(crate) d_rows: Vec<f32>,
    pub(crate) d_rows2: Vec<f32>,
    pub(crate) d_ff: Vec<f32>,
    pub(crate) d_qkv: Vec<f32>,
    pub(crate) d_lr: Vec<f32>,
    pub(crate) dz: Vec<f32>,
    pub(crate) dv: Vec<f32>,
    pub(crate) dh: Vec<f32>,
    pub(crate) dgi: Vec<f32>,
    pub(crate) dgh: Vec<f32>,
    pub(crate) h_prev: Vec<f32>,
    pub(crate) scratch: Vec<f32>,
}

fn fit(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

impl Workspace {
    /// An empty workspace; the first [`crate::train::model::forward`] sizes it.
    pub fn new() -> Workspace {
        Workspace::default()
    }

    pub(crate) fn resize(&mut self, cfg: &ModelConfig, trials: usize, bins: usize) {
        let (h, d, ff) = (cfg.hidden, cfg.d_model(), cfg.ff);
        let (enc, rows) = (bins * trials, trials * bins);
        self.trials = trials;
        self.bins = bins;
        fit(&mut self.xg, enc * cfg.n_in);
        fit(&mut self.gi, enc * 3 * h);
        fit(&mut self.gh, trials * 3 * h);
        for v in [&mut self.r, &mut self.u, &mut self.n, &mut self.ghn, &mut self.h, &mut self.h_mask] {
            fit(v, enc * h);
        }
        for v in [&mut self.mu_z, &mut self.lv_z, &mut self.mu_v, &mut self.lv_v] {
            fit(v, trials * h);
        }
        for v in [&mut self.z, &mut self.v, &mut self.dz, &mut self.dv, &mut self.dh, &mut self.h_prev] {
            fit(v, enc * h);
        }
        for v in [
            &mut self.l,
            &mut self.ctx,
            &mut self.attn_mask,
            &mut self.y,
            &mut self.xhat1,
            &mut self.f2_mask,
            &mut self.xhat2,
            &mut self.y2,
            &mut self.d_rows,
            &mut self.d_rows2,
        ] {
            fit(v, rows * d);
        }
        fit(&mut self.qkv, rows * 3 * d);
        fit(&mut self.d_qkv, rows * 3 * d);
        fit(&mut self.probs, trials * 2 * bins * bins);
        fit(&mut self.rstd1, rows);
        fit(&mut self.rstd2, rows);
        fit(&mut self.f1, rows * ff);
        fit(&mut self.f1_mask, rows * ff);
        fit(&mut self.d_ff, rows * ff);
        fit(&mut self.log_rates, rows * cfg.n_out);
        fit(&mut self.d_lr, rows * cfg.n_out);
        fit(&mut self.dgi, enc * 3 * h);
        fit(&mut self.dgh, enc * 3 * h);
        fit(&mut self.scratch, (trials * 4 * h).max(bins * bins));
    }
}
