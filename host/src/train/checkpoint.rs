//! Checkpoints: safetensors under the authors' PyTorch parameter names, with
//! the optimiser state (`optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`)
//! and the configs, epoch, learning rate, scheduler and RNG state as JSON in
//! the header metadata. Written atomically (temporary file, fsync, rename).
//!
//! A PyTorch model loads ours with
//! `{k: v for k, v in safetensors.torch.load_file(f).items() if not k.startswith("optimizer.")}`;
//! a `state_dict` saved with safetensors loads here through [`load_params`].

use crate::config::{Mode, ModelConfig};
use crate::train::adam::Adam;
use crate::train::params::{shape, Params, PARAMS};
use crate::train::state::TrainState;
use crate::train::train_config::TrainConfig;
use lflow_core::blob::Tensor;
use lflow_core::Seeded;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The metadata key naming this format.
pub const FORMAT: &str = "lflow-checkpoint-1";

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a readable safetensors file (truncated, corrupt header, ...).
    #[error("{path}: not a valid safetensors file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A tensor is absent.
    #[error("{path}: tensor `{name}` is missing")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
    /// A tensor has another shape or dtype than the model needs.
    #[error("{path}: tensor `{name}` is {found}, expected f32 {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// What the file has.
        found: String,
    },
    /// A value is NaN or infinite.
    #[error("{path}: tensor `{name}` element {index} is not finite")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Element index.
        index: usize,
    },
    /// Metadata absent or malformed.
    #[error("{path}: metadata `{key}`: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// The scalar part of [`TrainState`], as stored in the metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StateMeta {
    epoch: usize,
    adam_step: u64,
    lr: f32,
    best_valid: Option<f64>,
    bad_epochs: usize,
    best_epoch: usize,
    rng_words: [u32; 4],
    rng_spare: Option<f32>,
}

/// A checkpoint's contents.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The model's sizes.
    pub model: ModelConfig,
    /// Hyper-parameters of the run.
    pub train: TrainConfig,
    /// Parameters, optimiser and scheduler state.
    pub state: TrainState,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialise a checkpoint (`with_optimizer: false` writes a model only: parameters and configs).
pub fn to_bytes(c: &Checkpoint, with_optimizer: bool) -> Vec<u8> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in PARAMS {
        owned.push((t.pytorch_name().to_string(), shape(t, &c.model), f32_bytes(c.state.params.get(t))));
        if with_optimizer {
            let name = t.pytorch_name();
            owned.push((format!("optimizer.exp_avg.{name}"), shape(t, &c.model), f32_bytes(c.state.adam.m.get(t))));
            owned.push((format!("optimizer.exp_avg_sq.{name}"), shape(t, &c.model), f32_bytes(c.state.adam.v.get(t))));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data")))
        .collect();
    let (words, spare) = c.state.rng.state();
    let meta = StateMeta {
        epoch: c.state.epoch,
        adam_step: c.state.adam.step,
        lr: c.state.lr,
        best_valid: c.state.best_valid.is_finite().then_some(c.state.best_valid),
        bad_epochs: c.state.bad_epochs,
        best_epoch: c.state.best_epoch,
        rng_words: words,
        rng_spare: spare,
    };
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert("model".to_string(), serde_json::to_string(&c.model).expect("config serialises"));
    metadata.insert("train".to_string(), serde_json::to_string(&c.train).expect("config serialises"));
    metadata.insert("state".to_string(), serde_json::to_string(&meta).expect("state serialises"));
    safetensors::serialize(views, Some(metadata)).expect("in-memory serialisation")
}

/// Save atomically to `path`.
pub fn save(path: &Path, c: &Checkpoint, with_optimizer: bool) -> Result<(), CheckpointError> {
    crate::io::write_atomically(path, &to_bytes(c, with_optimizer))
        .map_err(|e| CheckpointError::Io { path: e.path, source: e.source })
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
}

fn tensor(
    st: &safetensors::SafeTensors<'_>,
    path: &Path,
    name: &str,
    expected: &[usize],
    out: &mut [f32],
) -> Result<(), CheckpointError> {
    let view =
        st.tensor(name).map_err(|_| CheckpointError::Missing { path: path.to_path_buf(), name: name.to_string() })?;
    if view.dtype() != Dtype::F32 || view.shape() != expected {
        return Err(CheckpointError::Shape {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: expected.to_vec(),
            found: format!("{:?} {:?}", view.dtype(), view.shape()),
        });
    }
    for (o, c) in out.iter_mut().zip(view.data().chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    if let Some(index) = out.iter().position(|x| !x.is_finite()) {
        return Err(CheckpointError::NonFinite { path: path.to_path_buf(), name: name.to_string(), index });
    }
    Ok(())
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<safetensors::SafeTensors<'a>, CheckpointError> {
    safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| CheckpointError::Format { path: path.to_path_buf(), reason: e.to_string() })
}

fn metadata(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>, CheckpointError> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| CheckpointError::Format { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

fn meta_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    meta: &HashMap<String, String>,
    key: &str,
) -> Result<T, CheckpointError> {
    let err = |reason: String| CheckpointError::Metadata { path: path.to_path_buf(), key: key.to_string(), reason };
    let text = meta.get(key).ok_or_else(|| err("absent".to_string()))?;
    serde_json::from_str(text).map_err(|e| err(e.to_string()))
}

/// Load a resumable checkpoint written by [`save`] with the optimiser.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let meta = metadata(path, &bytes)?;
    let model: ModelConfig = meta_json(path, &meta, "model")?;
    let train: TrainConfig = meta_json(path, &meta, "train")?;
    let s: StateMeta = meta_json(path, &meta, "state")?;
    let mut params = Params::zeros(&model);
    let mut adam = Adam::new(&model);
    adam.step = s.adam_step;
    for t in PARAMS {
        let (name, sh) = (t.pytorch_name(), shape(t, &model));
        tensor(&st, path, name, &sh, params.get_mut(t))?;
        tensor(&st, path, &format!("optimizer.exp_avg.{name}"), &sh, adam.m.get_mut(t))?;
        tensor(&st, path, &format!("optimizer.exp_avg_sq.{name}"), &sh, adam.v.get_mut(t))?;
    }
    let state = TrainState {
        params,
        adam,
        lr: s.lr,
        epoch: s.epoch,
        rng: Seeded::from_state(s.rng_words, s.rng_spare),
        best_valid: s.best_valid.unwrap_or(f64::INFINITY),
        bad_epochs: s.bad_epochs,
        best_epoch: s.best_epoch,
    };
    Ok(Checkpoint { model, train, state })
}

/// Load parameters only: ours, or a PyTorch `state_dict` saved with safetensors.
/// The config comes from the metadata when present, else from the tensor
/// shapes (paper mode, gamma 0.55, eps 0.01: PyTorch files do not record them).
pub fn load_params(path: &Path) -> Result<(ModelConfig, Params), CheckpointError> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let meta = metadata(path, &bytes)?;
    let model = if meta.contains_key("model") {
        meta_json(path, &meta, "model")?
    } else {
        let dim = |name: &str, axis: usize| -> Result<usize, CheckpointError> {
            let v = st
                .tensor(name)
                .map_err(|_| CheckpointError::Missing { path: path.to_path_buf(), name: name.to_string() })?;
            v.shape().get(axis).copied().ok_or_else(|| CheckpointError::Shape {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: vec![],
                found: format!("{:?}", v.shape()),
            })
        };
        ModelConfig {
            n_in: dim(Tensor::EncoderWeightIh.pytorch_name(), 1)?,
            n_out: dim(Tensor::ReadoutWeight.pytorch_name(), 0)?,
            hidden: dim(Tensor::EncoderWeightHh.pytorch_name(), 1)?,
            ff: dim(Tensor::Linear1Weight.pytorch_name(), 0)?,
            gamma: 0.55,
            eps: 0.01,
            mode: Mode::PAPER,
            anchor_every: 0,
        }
    };
    let mut params = Params::zeros(&model);
    for t in PARAMS {
        tensor(&st, path, t.pytorch_name(), &shape(t, &model), params.get_mut(t))?;
    }
    Ok((model, params))
}
