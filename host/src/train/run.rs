//! A training run: its TOML configuration and its folder.
//!
//! ```text
//! RUN/run.json            data path and the resolved configuration
//! RUN/config.toml         the configuration as given (resolved), for reading
//! RUN/metrics.csv         one row per epoch
//! RUN/last.safetensors    resumable checkpoint (parameters, Adam, RNG, scheduler)
//! RUN/best.safetensors    the parameters of the best validation NLL
//! RUN/eval.json           `lflow eval`
//! RUN/plots/*.png         `lflow plot`
//! ```

use crate::config::{Mode, ModeName, ModelConfig};
use crate::data::{DataError, Dataset};
use crate::io::write_atomically;
use crate::train::checkpoint::CheckpointError;
use crate::train::train_config::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The model part of a configuration (the neuron counts come from the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Latent size `H` (multiple of 4).
    pub hidden: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Langevin damping.
    pub gamma: f32,
    /// Langevin step.
    pub eps: f32,
    /// `paper` or `streaming`.
    pub mode: ModeName,
    /// Causal window in bins (streaming mode).
    pub window: usize,
    /// Re-anchor the latent state on the posterior means every this many bins
    /// (0: never, the published model), for decoding without resets
    /// (`core/CONTINUOUS.md`; at most 255, the blob's byte).
    pub anchor_every: usize,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            hidden: 280,
            ff: 512,
            gamma: 0.55,
            eps: 0.01,
            mode: ModeName::Paper,
            window: 32,
            anchor_every: 0,
        }
    }
}

/// How `lflow eval` predicts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Noisy passes averaged (0: mean mode, as the device decodes).
    pub samples: usize,
    /// Gaussian smoothing of the PSTH targets, ms.
    pub psth_sd_ms: f64,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection { samples: 50, psth_sd_ms: 50.0 }
    }
}

/// A whole configuration file. Every key is optional (defaults: MODEL.md
/// section 7); unknown keys are errors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// `[model]`.
    pub model: ModelSection,
    /// `[train]`.
    pub train: TrainConfig,
    /// `[eval]`.
    pub eval: EvalSection,
}

/// What `run.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The data set trained on: an absolute path (runs written before it was
    /// one hold the path as given, relative to where training started).
    pub data: PathBuf,
    /// [`file_sha256`] of the data file when training started (absent in older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    /// The resolved configuration.
    pub config: RunConfig,
}

/// SHA-256 of a data file's content, lower-case hex: for a safetensors file,
/// its tensors in name order (name, dtype, shape, bytes) then its metadata in
/// key order, so two writes of the same data agree (safetensors lays out the
/// header in a hash map's order, which differs between processes); any other
/// file, its bytes.
pub fn file_sha256(path: &Path) -> Result<String, RunError> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| RunError::Io { path: path.into(), source })?;
    let mut hasher = sha2::Sha256::new();
    let parsed = safetensors::SafeTensors::read_metadata(&bytes)
        .and_then(|(_, meta)| safetensors::SafeTensors::deserialize(&bytes).map(|st| (meta, st)));
    match parsed {
        Ok((meta, st)) => {
            let mut tensors = st.tensors();
            tensors.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, view) in tensors {
                hasher.update(format!("{name}\0{:?}\0{:?}\0", view.dtype(), view.shape()));
                hasher.update(view.data());
            }
            let mut keys: Vec<(&String, &String)> = meta.metadata().iter().flatten().collect();
            keys.sort();
            for (k, v) in keys {
                hasher.update(format!("{k}\0{v}\0"));
            }
        }
        Err(_) => hasher.update(&bytes),
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl RunRecord {
    /// The record of a run about to train on `data` (made absolute, hashed).
    pub fn new(data: &Path, config: RunConfig) -> Result<RunRecord, RunError> {
        let data = std::fs::canonicalize(data).map_err(|source| RunError::Io { path: data.into(), source })?;
        let data_sha256 = Some(file_sha256(&data)?);
        Ok(RunRecord { data, data_sha256, config })
    }

    /// `given` (a `--data` override, used as it is), else [`RunRecord::data_file`].
    pub fn data_or(&self, dir: &Path, given: Option<&Path>) -> Result<PathBuf, RunError> {
        given.map_or_else(|| self.data_file(dir), |p| Ok(p.to_path_buf()))
    }

    /// The data file of the run in folder `dir`, checked against its hash.
    /// A relative entry (older runs) is tried against the run folder and each
    /// folder above it, then as given (against the working directory).
    pub fn data_file(&self, dir: &Path) -> Result<PathBuf, RunError> {
        let path = if self.data.is_absolute() {
            self.data.clone()
        } else {
            let base = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            base.ancestors().map(|a| a.join(&self.data)).find(|p| p.is_file()).unwrap_or_else(|| self.data.clone())
        };
        if self.data_sha256.is_some() && !path.exists() {
            return Err(RunError::Io { path, source: std::io::Error::from(std::io::ErrorKind::NotFound) });
        }
        match self.other_data(&path)? {
            Some(found) => {
                Err(RunError::DataChanged { path, recorded: self.data_sha256.clone().unwrap_or_default(), found })
            }
            None => Ok(path),
        }
    }

    /// `Some(its hash)` when `path` does not hold the data the run trained on;
    /// `None` when it does, or when the run recorded no hash (older runs).
    pub fn other_data(&self, path: &Path) -> Result<Option<String>, RunError> {
        let Some(want) = &self.data_sha256 else { return Ok(None) };
        let found = file_sha256(path)?;
        Ok((found != *want).then_some(found))
    }
}

/// Why a run could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration does not parse or is inconsistent.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value outside its allowed range.
    #[error("{path}: {key} = {value} is out of range: it must be {allowed}")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The key, with its section (`train.cd_rate`).
        key: &'static str,
        /// The value found.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// The run's data file is not the one it was trained on.
    #[error(
        "{path} changed since the run trained on it (SHA-256 {recorded}, now {found}): restore it, or pass --data to use this file anyway"
    )]
    DataChanged {
        /// The data file.
        path: PathBuf,
        /// The hash in run.json.
        recorded: String,
        /// The file's hash now.
        found: String,
    },
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The run folder already holds a run.
    #[error("{path} already holds a run: pass --resume to continue it, or choose another --out")]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// Not a run folder.
    #[error("{path}: not a run folder (no run.json); train one with `lflow train`")]
    NotARun {
        /// The folder.
        path: PathBuf,
    },
}

impl RunConfig {
    /// Parse TOML text; `path` names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<RunConfig, RunError> {
        let c: RunConfig =
            toml::from_str(text).map_err(|e| RunError::Config { path: path.into(), reason: e.to_string() })?;
        c.check(path)?;
        Ok(c)
    }

    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> Result<RunConfig, RunError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunError::Io { path: path.into(), source })?;
        RunConfig::from_toml(&text, path)
    }

    /// Check the values (sizes, ranges): the first key out of range is named
    /// with its value and its allowed range.
    pub fn check(&self, path: &Path) -> Result<(), RunError> {
        let (m, t, e) = (&self.model, &self.train, &self.eval);
        let finite_pos = |x: f32| x > 0.0 && x.is_finite();
        let finite_nonneg = |x: f32| x >= 0.0 && x.is_finite();
        let rules: [(&'static str, String, bool, &'static str); 16] = [
            (
                "model.hidden",
                m.hidden.to_string(),
                m.hidden > 0 && m.hidden.is_multiple_of(4),
                "a positive multiple of 4",
            ),
            ("model.ff", m.ff.to_string(), m.ff > 0, "at least 1"),
            ("model.gamma", m.gamma.to_string(), (0.0..=1.0).contains(&m.gamma), "in [0, 1]"),
            ("model.eps", m.eps.to_string(), m.eps > 0.0 && m.eps <= 1.0, "in (0, 1]"),
            (
                "model.window",
                m.window.to_string(),
                m.mode == ModeName::Paper || m.window > 0,
                "at least 1 bin in streaming mode",
            ),
            (
                "model.anchor_every",
                m.anchor_every.to_string(),
                m.anchor_every <= 255,
                "0 to 255 bins (0: never re-anchor)",
            ),
            ("train.batch_size", t.batch_size.to_string(), t.batch_size > 0, "at least 1 trial"),
            ("train.lr", t.lr.to_string(), finite_pos(t.lr), "a finite rate > 0"),
            ("train.min_lr", t.min_lr.to_string(), finite_nonneg(t.min_lr), "a finite rate >= 0"),
            ("train.weight_decay", t.weight_decay.to_string(), finite_nonneg(t.weight_decay), "finite and >= 0"),
            ("train.kl_weight", t.kl_weight.to_string(), finite_nonneg(t.kl_weight), "finite and >= 0"),
            ("train.dropout", t.dropout.to_string(), (0.0..1.0).contains(&t.dropout), "in [0, 1)"),
            (
                "train.cd_rate",
                t.cd_rate.to_string(),
                t.cd_rate > 0.0 && t.cd_rate <= 1.0,
                "in (0, 1] (1: no coordinated dropout)",
            ),
            (
                "train.plateau_factor",
                t.plateau_factor.to_string(),
                t.plateau_factor > 0.0 && t.plateau_factor <= 1.0,
                "in (0, 1]",
            ),
            (
                "train.grad_clip",
                t.grad_clip.to_string(),
                finite_nonneg(t.grad_clip),
                "a finite norm >= 0 (0: no clipping)",
            ),
            (
                "eval.psth_sd_ms",
                e.psth_sd_ms.to_string(),
                e.psth_sd_ms > 0.0 && e.psth_sd_ms.is_finite(),
                "a finite width > 0 ms",
            ),
        ];
        if let Some((key, value, _, allowed)) = rules.into_iter().find(|r| !r.2) {
            return Err(RunError::OutOfRange { path: path.into(), key, value, allowed });
        }
        if m.anchor_every > 0 && m.mode == ModeName::Paper {
            let reason = "model.anchor_every is for decoding without resets: it needs mode = \"streaming\"";
            return Err(RunError::Config { path: path.into(), reason: reason.into() });
        }
        Ok(())
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The model for `data`.
    pub fn model_config(&self, data: &Dataset) -> ModelConfig {
        ModelConfig {
            n_in: data.n_in,
            n_out: data.n_out,
            hidden: self.model.hidden,
            ff: self.model.ff,
            gamma: self.model.gamma,
            eps: self.model.eps,
            mode: Mode::new(self.model.mode, self.model.window),
            anchor_every: self.model.anchor_every,
        }
    }
}

/// A run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

impl RunDir {
    /// Create a new run folder (refusing one that already holds a run).
    pub fn create(path: &Path, record: &RunRecord) -> Result<RunDir, RunError> {
        let dir = RunDir { path: path.to_path_buf() };
        if dir.run_json().exists() {
            return Err(RunError::Exists { path: path.into() });
        }
        std::fs::create_dir_all(path).map_err(|source| RunError::Io { path: path.into(), source })?;
        dir.write(&dir.run_json(), serde_json::to_string_pretty(record).unwrap_or_default().as_bytes())?;
        dir.write(&path.join("config.toml"), record.config.to_toml().as_bytes())?;
        Ok(dir)
    }

    /// Open an existing run folder and its record.
    pub fn open(path: &Path) -> Result<(RunDir, RunRecord), RunError> {
        let dir = RunDir { path: path.to_path_buf() };
        let file = dir.run_json();
        let text = std::fs::read_to_string(&file).map_err(|_| RunError::NotARun { path: path.into() })?;
        let record = serde_json::from_str(&text).map_err(|e| RunError::Config { path: file, reason: e.to_string() })?;
        Ok((dir, record))
    }

    /// Write a file of the run atomically.
    pub fn write(&self, file: &Path, bytes: &[u8]) -> Result<(), RunError> {
        write_atomically(file, bytes).map_err(|e| RunError::Io { path: e.path, source: e.source })
    }

    /// `run.json`.
    pub fn run_json(&self) -> PathBuf {
        self.path.join("run.json")
    }
    /// `last.safetensors`.
    pub fn last(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
    /// `best.safetensors`.
    pub fn best(&self) -> PathBuf {
        self.path.join("best.safetensors")
    }
    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }
    /// `eval.json`.
    pub fn eval_json(&self) -> PathBuf {
        self.path.join("eval.json")
    }
    /// `plots/`.
    pub fn plots(&self) -> PathBuf {
        self.path.join("plots")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_paper_and_unknown_keys_are_errors() {
        let c = RunConfig::from_toml("", Path::new("x.toml")).unwrap();
        assert_eq!((c.model.hidden, c.model.ff, c.train.batch_size, c.train.epochs), (280, 512, 256, 2000));
        assert_eq!((c.train.lr, c.train.cd_rate, c.train.dropout, c.model.gamma), (3e-3, 0.5, 0.05, 0.55));
        let e = RunConfig::from_toml("[train]\nlearning_rate = 1.0\n", Path::new("bad.toml")).unwrap_err();
        assert!(e.to_string().contains("bad.toml") && e.to_string().contains("learning_rate"), "{e}");
        let e = RunConfig::from_toml("[model]\nhidden = 6\n", Path::new("h.toml")).unwrap_err();
        assert!(e.to_string().contains("multiple of 4"), "{e}");
        let round = RunConfig::from_toml(&c.to_toml(), Path::new("r.toml")).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn each_value_out_of_range_names_its_key_value_and_range() {
        // One bad value at a time, written out by hand: (TOML, key, what the message must say).
        let cases = [
            ("[model]\nhidden = 0", "model.hidden", "multiple of 4"),
            ("[model]\nhidden = 30", "model.hidden", "multiple of 4"),
            ("[model]\nff = 0", "model.ff", "at least 1"),
            ("[model]\ngamma = 1.5", "model.gamma", "[0, 1]"),
            ("[model]\ngamma = -0.1", "model.gamma", "[0, 1]"),
            ("[model]\neps = 0.0", "model.eps", "(0, 1]"),
            ("[model]\nmode = \"streaming\"\nwindow = 0", "model.window", "streaming"),
            ("[model]\nmode = \"streaming\"\nanchor_every = 300", "model.anchor_every", "0 to 255"),
            ("[train]\nbatch_size = 0", "train.batch_size", "at least 1"),
            ("[train]\nlr = 0.0", "train.lr", "> 0"),
            ("[train]\nlr = inf", "train.lr", "> 0"),
            ("[train]\nmin_lr = -1e-5", "train.min_lr", ">= 0"),
            ("[train]\nweight_decay = -1.0", "train.weight_decay", ">= 0"),
            ("[train]\nkl_weight = nan", "train.kl_weight", ">= 0"),
            ("[train]\ndropout = 1.0", "train.dropout", "[0, 1)"),
            ("[train]\ncd_rate = 0.0", "train.cd_rate", "(0, 1]"),
            ("[train]\ncd_rate = 1.5", "train.cd_rate", "(0, 1]"),
            ("[train]\nplateau_factor = 0.0", "train.plateau_factor", "(0, 1]"),
            ("[train]\ngrad_clip = -1.0", "train.grad_clip", ">= 0"),
            ("[eval]\npsth_sd_ms = 0.0", "eval.psth_sd_ms", "> 0"),
        ];
        for (text, key, range) in cases {
            let e = RunConfig::from_toml(text, Path::new("c.toml")).unwrap_err();
            let value = text.rsplit(" = ").next().unwrap();
            match &e {
                RunError::OutOfRange { key: k, .. } => assert_eq!(*k, key, "{text}"),
                other => panic!("{text}: {other}"),
            }
            let msg = e.to_string();
            let shown = format!("{key} = {}", value.parse::<f64>().map_or(value.to_string(), |v| format!("{v}")));
            assert!(msg.starts_with("c.toml: ") && msg.contains(&shown) && msg.contains(range), "{text}: {msg}");
            // No other rule's words.
            assert_eq!(msg.matches(" = ").count(), 1, "{msg}");
        }
        // Edges that are allowed (0 epochs: an untrained run, a baseline).
        for text in [
            "[train]\nepochs = 0",
            "[model]\ngamma = 0.0\neps = 1.0",
            "[train]\ndropout = 0.0\ncd_rate = 1.0\nmin_lr = 0.0",
            "[train]\nplateau_factor = 1.0",
        ] {
            RunConfig::from_toml(text, Path::new("ok.toml")).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        let e = RunConfig::from_toml("[model]\nanchor_every = 4", Path::new("a.toml")).unwrap_err();
        assert!(e.to_string().contains("streaming"), "{e}");
    }
}
