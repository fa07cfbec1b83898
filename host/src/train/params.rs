//! The trainable parameters, one flat f32 buffer addressed by PyTorch name.

use crate::config::ModelConfig;
use lflow_core::blob::Tensor;
use lflow_core::Seeded;

/// The trained tensors, in the order of the authors' `state_dict`
/// (every [`Tensor`] but this project's velocity decoder).
pub const PARAMS: [Tensor; 27] = {
    let mut out = [Tensor::EncoderWeightIh; 27];
    let mut i = 0;
    while i < 27 {
        out[i] = Tensor::ALL[i];
        i += 1;
    }
    out
};

/// PyTorch shape of a trained tensor.
pub fn shape(t: Tensor, cfg: &ModelConfig) -> Vec<usize> {
    if t == Tensor::PotentialKernel {
        return vec![4, 4, 3];
    }
    let (r, c) = t.shape(&cfg.dims(0));
    if t.is_matrix() {
        vec![r as usize, c as usize]
    } else {
        vec![r as usize]
    }
}

/// All parameters (or gradients, or optimiser moments) of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Every tensor back to back, in [`PARAMS`] order.
    pub data: Vec<f32>,
    offsets: [usize; 28],
}

impl Params {
    /// All zeros for `cfg`.
    pub fn zeros(cfg: &ModelConfig) -> Params {
        let mut offsets = [0usize; 28];
        for (i, t) in PARAMS.iter().enumerate() {
            offsets[i + 1] = offsets[i] + shape(*t, cfg).iter().product::<usize>();
        }
        Params { data: vec![0.0; offsets[27]], offsets }
    }

    /// A tensor's values.
    pub fn get(&self, t: Tensor) -> &[f32] {
        let i = t.index();
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Where tensor `t` starts in [`Params::data`], in elements.
    pub fn offset(&self, t: Tensor) -> usize {
        self.offsets[t.index()]
    }

    /// A tensor's values, mutable.
    pub fn get_mut(&mut self, t: Tensor) -> &mut [f32] {
        let i = t.index();
        &mut self.data[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Two different tensors, mutably (`a` before `b` in [`PARAMS`] order).
    pub fn pair_mut(&mut self, a: Tensor, b: Tensor) -> (&mut [f32], &mut [f32]) {
        let (ia, ib) = (a.index(), b.index());
        assert!(ia < ib, "pair_mut takes tensors in parameter order");
        let (first, second) = self.data.split_at_mut(self.offsets[ib]);
        (&mut first[self.offsets[ia]..self.offsets[ia + 1]], &mut second[..self.offsets[ib + 1] - self.offsets[ib]])
    }

    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a model with no parameters (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Set every value to 0.
    pub fn clear(&mut self) {
        self.data.fill(0.0);
    }

    /// `self += other`, element-wise.
    pub fn add(&mut self, other: &Params) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
    }

    /// PyTorch's default initialisation followed by the reference's T-Fixup
    /// scaling (MODEL.md section 5), from `rng`.
    ///
    /// GRU: `U(-1/sqrt(H), 1/sqrt(H))` for every tensor. Linear layers: weight
    /// and bias `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Attention `in_proj_weight`:
    /// Xavier uniform, biases 0. LayerNorm: 1 and 0. Potential kernel: 0.
    /// Then `linear1`, `linear2` and `out_proj` weights times `0.67 * 3^(-1/4)`.
    pub fn init(cfg: &ModelConfig, rng: &mut Seeded) -> Params {
        let mut p = Params::zeros(cfg);
        let d = cfg.d_model() as f32;
        let mut uniform = |out: &mut [f32], bound: f32| {
            for x in out {
                let u = (rng.next_u32() >> 8) as f32 / 16_777_216.0;
                *x = (2.0 * u - 1.0) * bound;
            }
        };
        use Tensor::*;
        for t in PARAMS {
            let fan_in = |name: Tensor| shape_in(name, cfg) as f32;
            let bound = match t {
                EncoderWeightIh | EncoderWeightHh | EncoderBiasIh | EncoderBiasHh => 1.0 / (cfg.hidden as f32).sqrt(),
                AttnInProjWeight => (6.0 / (d + 3.0 * d)).sqrt(),
                AttnInProjBias | AttnOutProjBias | PotentialKernel | Norm1Bias | Norm2Bias => 0.0,
                Norm1Weight | Norm2Weight => {
                    p.get_mut(t).fill(1.0);
                    continue;
                }
                _ if t.is_matrix() => 1.0 / fan_in(t).sqrt(),
                // A bias takes the bound of its weight (the tensor before it).
                _ => 1.0 / fan_in(PARAMS[t.index() - 1]).sqrt(),
            };
            uniform(p.get_mut(t), bound);
        }
        let tfixup = 0.67 * 3f32.powf(-0.25);
        for t in [Linear1Weight, Linear2Weight, AttnOutProjWeight] {
            p.get_mut(t).iter_mut().for_each(|x| *x *= tfixup);
        }
        p
    }
}

fn shape_in(t: Tensor, cfg: &ModelConfig) -> usize {
    t.shape(&cfg.dims(0)).1 as usize
}
