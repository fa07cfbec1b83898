//! The named tensors of a blob and their expected shapes.

use super::Dims;

/// Every tensor of the model, under its blob id (`1..=29`). Matrices are stored
/// in the blob's storage format (but the velocity decoder, see
/// [`Tensor::is_quantized`]); vectors (biases, norms, the potential kernel)
/// and int8 row scales are always f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
#[allow(missing_docs)]
pub enum Tensor {
    EncoderWeightIh = 1,
    EncoderWeightHh = 2,
    EncoderBiasIh = 3,
    EncoderBiasHh = 4,
    ZMeansWeight = 5,
    ZMeansBias = 6,
    ZLogvarWeight = 7,
    ZLogvarBias = 8,
    VMeansWeight = 9,
    VMeansBias = 10,
    VLogvarWeight = 11,
    VLogvarBias = 12,
    PotentialKernel = 13,
    AttnInProjWeight = 14,
    AttnInProjBias = 15,
    AttnOutProjWeight = 16,
    AttnOutProjBias = 17,
    Linear1Weight = 18,
    Linear1Bias = 19,
    Linear2Weight = 20,
    Linear2Bias = 21,
    Norm1Weight = 22,
    Norm1Bias = 23,
    Norm2Weight = 24,
    Norm2Bias = 25,
    ReadoutWeight = 26,
    ReadoutBias = 27,
    VelocityWeight = 28,
    VelocityBias = 29,
}

/// Number of tensors.
pub const TENSOR_COUNT: usize = 29;

/// Bit set in a section id for the f32 row scales of an int8 matrix.
pub const SCALE_FLAG: u16 = 0x100;

impl Tensor {
    /// All tensors in id order.
    pub const ALL: [Tensor; TENSOR_COUNT] = {
        use Tensor::*;
        [
            EncoderWeightIh,
            EncoderWeightHh,
            EncoderBiasIh,
            EncoderBiasHh,
            ZMeansWeight,
            ZMeansBias,
            ZLogvarWeight,
            ZLogvarBias,
            VMeansWeight,
            VMeansBias,
            VLogvarWeight,
            VLogvarBias,
            PotentialKernel,
            AttnInProjWeight,
            AttnInProjBias,
            AttnOutProjWeight,
            AttnOutProjBias,
            Linear1Weight,
            Linear1Bias,
            Linear2Weight,
            Linear2Bias,
            Norm1Weight,
            Norm1Bias,
            Norm2Weight,
            Norm2Bias,
            ReadoutWeight,
            ReadoutBias,
            VelocityWeight,
            VelocityBias,
        ]
    };

    /// The blob id.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// Position in [`Tensor::ALL`].
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// The tensor with blob id `id`.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.get(usize::from(id).checked_sub(1)?).copied()
    }

    /// True for `[out, in]` weight matrices (stored in the blob's format, with
    /// a scale section under int8).
    pub const fn is_matrix(self) -> bool {
        use Tensor::*;
        matches!(
            self,
            EncoderWeightIh
                | EncoderWeightHh
                | ZMeansWeight
                | ZLogvarWeight
                | VMeansWeight
                | VLogvarWeight
                | AttnInProjWeight
                | AttnOutProjWeight
                | Linear1Weight
                | Linear2Weight
                | ReadoutWeight
                | VelocityWeight
        )
    }

    /// True for matrices stored in the blob's storage format (every matrix but
    /// the velocity decoder, which stays f32: it is tiny, and a ridge solution's
    /// large, cancelling coefficients do not survive int8 (measured on the demo:
    /// behaviour R² 0.946 in f32, -2.53 with int8 rows).
    pub const fn is_quantized(self) -> bool {
        self.is_matrix() && !matches!(self, Tensor::VelocityWeight)
    }

    /// Expected `[rows, cols]` (vectors are `[n, 1]`; the kernel `[16, 3]`).
    pub const fn shape(self, d: &Dims) -> (u32, u32) {
        use Tensor::*;
        let (h, dm) = (d.hidden, d.d_model);
        match self {
            EncoderWeightIh => (3 * h, d.n_in),
            EncoderWeightHh => (3 * h, h),
            EncoderBiasIh | EncoderBiasHh => (3 * h, 1),
            ZMeansWeight | ZLogvarWeight | VMeansWeight | VLogvarWeight => (h, h),
            ZMeansBias | ZLogvarBias | VMeansBias | VLogvarBias => (h, 1),
            PotentialKernel => (16, 3),
            AttnInProjWeight => (3 * dm, dm),
            AttnInProjBias => (3 * dm, 1),
            AttnOutProjWeight => (dm, dm),
            Linear1Weight => (d.ff, dm),
            Linear1Bias => (d.ff, 1),
            Linear2Weight => (dm, d.ff),
            AttnOutProjBias | Linear2Bias | Norm1Weight | Norm1Bias | Norm2Weight | Norm2Bias => (dm, 1),
            ReadoutWeight => (d.n_out, dm),
            ReadoutBias => (d.n_out, 1),
            VelocityWeight => (d.n_beh, dm),
            VelocityBias => (d.n_beh, 1),
        }
    }

    /// The parameter's name in the authors' PyTorch model (`velocity.*` is this project's).
    pub const fn pytorch_name(self) -> &'static str {
        use Tensor::*;
        match self {
            EncoderWeightIh => "encoder.weight_ih",
            EncoderWeightHh => "encoder.weight_hh",
            EncoderBiasIh => "encoder.bias_ih",
            EncoderBiasHh => "encoder.bias_hh",
            ZMeansWeight => "linear_z_means.weight",
            ZMeansBias => "linear_z_means.bias",
            ZLogvarWeight => "linear_z_logvar.weight",
            ZLogvarBias => "linear_z_logvar.bias",
            VMeansWeight => "linear_v_means.weight",
            VMeansBias => "linear_v_means.bias",
            VLogvarWeight => "linear_v_logvar.weight",
            VLogvarBias => "linear_v_logvar.bias",
            PotentialKernel => "potential.conv_z",
            AttnInProjWeight => "decoder.self_attn.in_proj_weight",
            AttnInProjBias => "decoder.self_attn.in_proj_bias",
            AttnOutProjWeight => "decoder.self_attn.out_proj.weight",
            AttnOutProjBias => "decoder.self_attn.out_proj.bias",
            Linear1Weight => "decoder.linear1.weight",
            Linear1Bias => "decoder.linear1.bias",
            Linear2Weight => "decoder.linear2.weight",
            Linear2Bias => "decoder.linear2.bias",
            Norm1Weight => "decoder.norm1.weight",
            Norm1Bias => "decoder.norm1.bias",
            Norm2Weight => "decoder.norm2.weight",
            Norm2Bias => "decoder.norm2.bias",
            ReadoutWeight => "readout.weight",
            ReadoutBias => "readout.bias",
            VelocityWeight => "velocity.weight",
            VelocityBias => "velocity.bias",
        }
    }
}

/// A section of the table: a tensor's values, or the row scales of an int8 matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SectionId {
    /// The tensor's values.
    Values(Tensor),
    /// The f32 row scales of an int8 matrix (id `0x100 | tensor id`).
    Scales(Tensor),
}

impl SectionId {
    /// The id written in the table.
    pub const fn code(self) -> u16 {
        match self {
            SectionId::Values(t) => t.id(),
            SectionId::Scales(t) => t.id() | SCALE_FLAG,
        }
    }

    /// Decode a table id.
    pub fn from_code(code: u16) -> Option<Self> {
        if code & SCALE_FLAG != 0 {
            let t = Tensor::from_id(code & !SCALE_FLAG)?;
            t.is_quantized().then_some(SectionId::Scales(t))
        } else {
            Tensor::from_id(code).map(SectionId::Values)
        }
    }
}
