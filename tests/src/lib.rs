//! Helpers of the cross-crate tests in `tests/tests/`.

/// `bytes` copied into a 16-byte aligned buffer (as a blob sits in flash).
pub struct AlignedBytes {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    /// Copy `bytes`.
    pub fn new(bytes: &[u8]) -> AlignedBytes {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes { words, len: bytes.len() }
    }

    /// The bytes, 16-byte aligned.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}

/// max |got - want| / max |want|.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num = got.iter().zip(want).map(|(g, w)| (*g as f64 - *w as f64).abs()).fold(0.0, f64::max);
    let den = want.iter().map(|w| (*w as f64).abs()).fold(0.0, f64::max);
    num / den.max(1e-30)
}
