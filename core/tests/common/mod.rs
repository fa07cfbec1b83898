//! Shared helpers of the integration tests: golden fixtures and blobs.
#![allow(dead_code)]

use lflow_core::blob::{BlobWriter, Tensor};
use lflow_core::{Dims, InputSchedule, StorageFormat};
use std::collections::HashMap;
use std::path::PathBuf;

/// `../shared` beside the project root (or `$LFLOW_SHARED`).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("LFLOW_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// One golden case: every tensor as f32 with its shape.
pub struct Golden {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Golden {
    pub fn load(case: &str) -> Golden {
        let path = shared_dir().join("golden").join(format!("{case}.safetensors"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
                let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                (name, (view.shape().to_vec(), data))
            })
            .collect();
        Golden { tensors }
    }

    pub fn get(&self, name: &str) -> &[f32] {
        &self.tensors.get(name).unwrap_or_else(|| panic!("no tensor {name}")).1
    }

    pub fn shape(&self, name: &str) -> &[usize] {
        &self.tensors.get(name).unwrap_or_else(|| panic!("no tensor {name}")).0
    }
}

/// A blob of the golden case's parameters (plus a velocity decoder `[n_beh, D]` of small made-up weights).
pub fn golden_blob(g: &Golden, dims: Dims, storage: StorageFormat, schedule: InputSchedule) -> Vec<u8> {
    let mut w = BlobWriter::new(dims, storage, schedule, 0.55, 0.01).unwrap();
    for t in Tensor::ALL {
        match t {
            Tensor::VelocityWeight | Tensor::VelocityBias => {
                let (r, c) = t.shape(&dims);
                let vals: Vec<f32> = (0..r * c).map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.01).collect();
                w.tensor(t, &vals).unwrap();
            }
            _ => {
                w.tensor(t, g.get(&format!("param.{}", t.pytorch_name()))).unwrap();
            }
        }
    }
    w.finish().unwrap()
}

/// Copy `bytes` into a 16-byte aligned buffer, as a blob sits in flash.
pub struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl Aligned {
    pub fn new(bytes: &[u8]) -> Aligned {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        let dst: &mut [u8] = bytemuck_bytes(&mut words);
        dst[..bytes.len()].copy_from_slice(bytes);
        Aligned { words, len: bytes.len() }
    }

    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = unsafe_free_bytes(&self.words);
        &all[..self.len]
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytemuck_bytes(&mut self.words)[..len]
    }
}

fn bytemuck_bytes(words: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(words)
}

fn unsafe_free_bytes(words: &[u128]) -> &[u8] {
    bytemuck::cast_slice(words)
}

/// max |got - want| / max |want|.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num = got.iter().zip(want).map(|(g, w)| (*g as f64 - *w as f64).abs()).fold(0.0, f64::max);
    let den = want.iter().map(|w| (*w as f64).abs()).fold(0.0, f64::max);
    num / den.max(1e-30)
}

/// A blob of made-up finite weights for `dims` (deterministic in `seed`).
pub fn synthetic_blob(dims: Dims, storage: StorageFormat, schedule: InputSchedule, seed: u64) -> Vec<u8> {
    synthetic_blob_anchored(dims, storage, schedule, seed, 0)
}

/// [`synthetic_blob`] re-anchoring every `anchor_every` bins (0: never, a version-1 blob).
#[allow(dead_code)]
pub fn synthetic_blob_anchored(
    dims: Dims,
    storage: StorageFormat,
    schedule: InputSchedule,
    seed: u64,
    anchor_every: u8,
) -> Vec<u8> {
    let mut w = BlobWriter::new(dims, storage, schedule, 0.55, 0.01).unwrap().anchor_every(anchor_every);
    for (t, vals) in Tensor::ALL.into_iter().zip(synthetic_values(dims, seed)) {
        w.tensor(t, &vals).unwrap();
    }
    w.finish().unwrap()
}

/// The f32 values [`synthetic_blob`] hands the writer, one vector per tensor
/// in `Tensor::ALL` order (row-major matrices).
#[allow(dead_code)]
pub fn synthetic_values(dims: Dims, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = lflow_core::Seeded::new(seed);
    Tensor::ALL
        .into_iter()
        .map(|t| {
            let (r, c) = t.shape(&dims);
            let fan_in = if t.is_matrix() { c as f32 } else { 4.0 };
            let scale = 1.0 / fan_in.sqrt();
            let mut vals: Vec<f32> = (0..r * c).map(|_| rng.next_normal() * scale).collect();
            if matches!(t, Tensor::Norm1Weight | Tensor::Norm2Weight) {
                vals.iter_mut().for_each(|v| *v += 1.0);
            }
            if matches!(t, Tensor::ZLogvarBias | Tensor::VLogvarBias) {
                vals.iter_mut().for_each(|v| *v -= 2.0);
            }
            vals
        })
        .collect()
}

/// Byte offset of the table entry with section id `code`.
pub fn entry_offset(blob: &[u8], code: u16) -> usize {
    let count = u32::from_le_bytes(blob[48..52].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| 64 + 24 * i)
        .find(|&at| u16::from_le_bytes([blob[at], blob[at + 1]]) == code)
        .unwrap_or_else(|| panic!("no entry {code:#x}"))
}

/// Read the little-endian u32 at `at`.
pub fn u32_at(blob: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(blob[at..at + 4].try_into().unwrap())
}

/// Write the little-endian u32 `v` at `at`.
pub fn put_u32(blob: &mut [u8], at: usize, v: u32) {
    blob[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
