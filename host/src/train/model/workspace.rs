//! Every activation and gradient buffer of one chunk, allocated once: the
//! buffers of [`crate::train::buffers::step_buffers!`] plus the CPU's scratch.

use crate::config::ModelConfig;
use crate::train::buffers::{step_buffers, StepShape};

fn fit(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

macro_rules! workspace {
    ($($name:ident: $elems:expr,)*) => {
        /// Buffers for a chunk of `trials` trials of `bins` bins. Resizing to
        /// the same shape allocates nothing, so the time loop never allocates.
        #[derive(Clone, Debug, Default)]
        pub struct Workspace {
            pub(crate) trials: usize,
            pub(crate) bins: usize,
            $(pub(crate) $name: Vec<f32>,)*
            /// Per-trial and per-bin-pair temporaries of the CPU's loops.
            pub(crate) scratch: Vec<f32>,
        }

        impl Workspace {
            pub(crate) fn resize(&mut self, cfg: &ModelConfig, trials: usize, bins: usize) {
                let s = StepShape::new(cfg, trials, bins);
                self.trials = trials;
                self.bins = bins;
                $(fit(&mut self.$name, ($elems)(&s));)*
                fit(&mut self.scratch, (trials * 4 * s.hidden).max(bins * bins));
            }
        }
    };
}

step_buffers!(workspace);

impl Workspace {
    /// An empty workspace; the first [`crate::train::model::forward`] sizes it.
    pub fn new() -> Workspace {
        Workspace::default()
    }
}
