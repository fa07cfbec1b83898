//! The data-set file: safetensors tensors plus JSON metadata (`host/DATA.md`).

use super::{Dataset, Split};
use crate::io::write_atomically;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The metadata value of `format`.
pub const FORMAT: &str = "lflow-data-1";

/// Why a data set could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a readable safetensors file (truncated, corrupt header, ...).
    #[error("{path}: not a valid data set file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A required tensor is absent.
    #[error("{path}: tensor `{tensor}` is missing")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
    },
    /// A tensor of the wrong shape or element type.
    #[error("{path}: tensor `{tensor}` is {found}, expected {expected}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// What the other tensors and the metadata imply.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A value that is not allowed (NaN, negative or fractional count, unknown split, ...).
    #[error("{path}: tensor `{tensor}` at index {index:?} is {value}: {what}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// Multi-dimensional index of the value.
        index: Vec<usize>,
        /// The value.
        value: f64,
        /// What is wrong.
        what: &'static str,
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
    /// The split cannot be trained on.
    #[error("{path}: split: {reason}")]
    Split {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    format: String,
    n_in: usize,
    observed: usize,
    forward: usize,
    bin_ms: f32,
}

fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Write `d` to `path` atomically.
pub fn save(path: &Path, d: &Dataset) -> Result<(), DataError> {
    write_atomically(path, &to_bytes(d)).map_err(|e| DataError::Io { path: e.path, source: e.source })
}

/// The bytes of `d`'s data set file. Its arrays must have the sizes its
/// fields imply (`[B, T + F, N_out]` spikes, and so on), as every `Dataset`
/// this crate builds does.
pub fn to_bytes(d: &Dataset) -> Vec<u8> {
    let (b, tt) = (d.trials(), d.bins());
    let mut owned: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> =
        vec![("spikes", Dtype::F32, vec![b, tt, d.n_out], bytes_f32(&d.spikes))];
    owned.push(("split", Dtype::U8, vec![b], d.split.iter().map(|s| s.code()).collect()));
    if let Some(r) = &d.true_rates {
        owned.push(("true_rates", Dtype::F32, vec![b, tt, d.n_out], bytes_f32(r)));
    }
    if let Some(x) = &d.behavior {
        owned.push(("behavior", Dtype::F32, vec![b, d.observed, d.n_beh], bytes_f32(x)));
    }
    if let Some(c) = &d.conditions {
        owned.push(("condition", Dtype::I32, vec![b], c.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect()));
    }
    if let Some(segs) = &d.segments {
        let bytes = segs.iter().flat_map(|s| [s.session as i32, s.start as i32]).flat_map(i32::to_le_bytes).collect();
        owned.push(("segment", Dtype::I32, vec![b, 2], bytes));
    }
    let mut nlb_owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    if let Some(target) = d.nlb.as_ref().and_then(|n| n.target.as_ref()) {
        for (name, a) in crate::data::nlb::stored::target_arrays(target) {
            let vals: Vec<f32> = a.data.iter().map(|&x| x as f32).collect();
            nlb_owned.push((format!("nlb.{name}"), Dtype::F32, a.shape.clone(), bytes_f32(&vals)));
        }
        let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (name, lists) in [("eval_cond_idx", &target.eval_cond_idx), ("train_cond_idx", &target.train_cond_idx)] {
            if let Some(lists) = lists {
                let (values, lengths) = crate::data::nlb::stored::flatten_lists(lists);
                nlb_owned.push((format!("nlb.{name}"), Dtype::I32, vec![values.len()], i32s(&values)));
                nlb_owned.push((format!("nlb.{name}.lengths"), Dtype::I32, vec![lengths.len()], i32s(&lengths)));
            }
        }
        for (name, j) in [("eval_jitter", &target.eval_jitter), ("train_jitter", &target.train_jitter)] {
            if let Some(j) = j {
                nlb_owned.push((format!("nlb.{name}"), Dtype::I32, vec![j.len()], i32s(j)));
            }
        }
    }
    let views: Vec<(&str, TensorView<'_>)> = owned
        .iter()
        .map(|(n, dt, s, bytes)| (*n, dt, s, bytes))
        .chain(nlb_owned.iter().map(|(n, dt, s, bytes)| (n.as_str(), dt, s, bytes)))
        .map(|(n, dt, s, bytes)| (n, TensorView::new(*dt, s.clone(), bytes).expect("shape matches data")))
        .collect();
    let meta = Meta { format: FORMAT.into(), n_in: d.n_in, observed: d.observed, forward: d.forward, bin_ms: d.bin_ms };
    let mut metadata = HashMap::new();
    metadata.insert("lflow".to_string(), serde_json::to_string(&meta).expect("metadata serialises"));
    if let Some(n) = &d.nlb {
        metadata.insert("nlb".to_string(), serde_json::to_string(&n.meta).expect("metadata serialises"));
    }
    safetensors::serialize(views, Some(metadata)).expect("in-memory serialisation")
}

/// The multi-dimensional index of flat element `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (o, s) in out.iter_mut().zip(shape).rev() {
        *o = i % s.max(&1);
        i /= s.max(&1);
    }
    out
}

struct Reader<'a> {
    path: &'a Path,
    st: safetensors::SafeTensors<'a>,
}

impl Reader<'_> {
    fn view(&self, name: &'static str, dtype: Dtype, shape: &[usize]) -> Result<Option<Vec<u8>>, DataError> {
        let Ok(v) = self.st.tensor(name) else { return Ok(None) };
        if v.dtype() != dtype || v.shape() != shape {
            return Err(DataError::Shape {
                path: self.path.to_path_buf(),
                tensor: name,
                expected: format!("{dtype:?} {shape:?}"),
                found: format!("{:?} {:?}", v.dtype(), v.shape()),
            });
        }
        Ok(Some(v.data().to_vec()))
    }

    fn f32s(&self, name: &'static str, shape: &[usize]) -> Result<Option<Vec<f32>>, DataError> {
        let Some(bytes) = self.view(name, Dtype::F32, shape)? else { return Ok(None) };
        let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(self.bad(name, i, shape, v[i] as f64, "not finite"));
        }
        Ok(Some(v))
    }

    fn bad(&self, tensor: &'static str, i: usize, shape: &[usize], value: f64, what: &'static str) -> DataError {
        DataError::Value { path: self.path.to_path_buf(), tensor, index: unravel(i, shape), value, what }
    }
}

/// Read and validate a data set.
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    from_bytes(&bytes, path)
}

/// Read and validate the bytes of a data set file; `path` names them in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Dataset, DataError> {
    let format = |reason: String| DataError::Format { path: path.to_path_buf(), reason };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let meta_err = |reason: String| DataError::Metadata { path: path.to_path_buf(), key: "lflow".into(), reason };
    let text = header.metadata().as_ref().and_then(|m| m.get("lflow")).ok_or_else(|| meta_err("absent".into()))?;
    let meta: Meta = serde_json::from_str(text).map_err(|e| meta_err(e.to_string()))?;
    if meta.format != FORMAT {
        return Err(meta_err(format!("format {:?}, expected {FORMAT:?}", meta.format)));
    }
    if meta.observed == 0 || meta.bin_ms.is_nan() || meta.bin_ms <= 0.0 {
        return Err(meta_err("observed bins and bin_ms must be positive".into()));
    }
    let r = Reader { path, st };
    let spikes_view =
        r.st.tensor("spikes").map_err(|_| DataError::Missing { path: path.to_path_buf(), tensor: "spikes" })?;
    let shape = spikes_view.shape().to_vec();
    let tt = meta.observed + meta.forward;
    if shape.len() != 3 || shape[1] != tt || shape[2] < meta.n_in || meta.n_in == 0 {
        return Err(DataError::Shape {
            path: path.to_path_buf(),
            tensor: "spikes",
            expected: format!("[trials, {tt}, n_out >= n_in = {}]", meta.n_in),
            found: format!("{:?} {:?}", spikes_view.dtype(), shape),
        });
    }
    let (b, n_out) = (shape[0], shape[2]);
    let spikes = r.f32s("spikes", &shape)?.ok_or(DataError::Missing { path: path.to_path_buf(), tensor: "spikes" })?;
    for (i, &x) in spikes.iter().enumerate() {
        if x < 0.0 {
            return Err(r.bad("spikes", i, &shape, x as f64, "a negative spike count"));
        }
        if x.fract() != 0.0 {
            return Err(r.bad("spikes", i, &shape, x as f64, "a fractional spike count"));
        }
    }
    let split_bytes =
        r.view("split", Dtype::U8, &[b])?.ok_or(DataError::Missing { path: path.to_path_buf(), tensor: "split" })?;
    let mut split = Vec::with_capacity(b);
    for (i, &c) in split_bytes.iter().enumerate() {
        split.push(
            Split::from_code(c)
                .ok_or_else(|| r.bad("split", i, &[b], c as f64, "not 0 (train), 1 (valid) or 2 (eval)"))?,
        );
    }
    if !split.contains(&Split::Train) {
        return Err(DataError::Split { path: path.to_path_buf(), reason: "no training trial (code 0)".into() });
    }
    let true_rates = r.f32s("true_rates", &[b, tt, n_out])?;
    if let Some(rates) = &true_rates {
        if let Some(i) = rates.iter().position(|x| *x < 0.0) {
            return Err(r.bad("true_rates", i, &[b, tt, n_out], rates[i] as f64, "a negative rate"));
        }
    }
    let n_beh = r.st.tensor("behavior").ok().and_then(|v| v.shape().get(2).copied()).unwrap_or(0);
    let behavior = r.f32s("behavior", &[b, meta.observed, n_beh])?;
    let conditions = match r.view("condition", Dtype::I32, &[b])? {
        None => None,
        Some(bytes) => {
            let mut out = Vec::with_capacity(b);
            for (i, c) in bytes.chunks_exact(4).enumerate() {
                let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if v < 0 {
                    return Err(r.bad("condition", i, &[b], v as f64, "a negative condition id"));
                }
                out.push(v as u32);
            }
            Some(out)
        }
    };
    let segments = match r.view("segment", Dtype::I32, &[b, 2])? {
        None => None,
        Some(bytes) => {
            let v: Vec<i32> = bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(i) = v.iter().position(|x| *x < 0) {
                return Err(r.bad("segment", i, &[b, 2], v[i] as f64, "a negative session or start bin"));
            }
            Some(v.chunks_exact(2).map(|p| super::Segment { session: p[0] as u32, start: p[1] as u32 }).collect())
        }
    };
    let nlb = load_nlb(&r, header.metadata().as_ref(), b, &split, meta.observed, meta.n_in, n_out)?;
    Ok(Dataset {
        n_in: meta.n_in,
        n_out,
        observed: meta.observed,
        forward: meta.forward,
        bin_ms: meta.bin_ms,
        spikes,
        true_rates,
        n_beh: if behavior.is_some() { n_beh } else { 0 },
        behavior,
        conditions,
        split,
        nlb,
        segments,
    })
}

/// The NLB side of an imported data set (`nlb` metadata and `nlb.*` tensors), checked against the trials.
fn load_nlb(
    r: &Reader<'_>,
    metadata: Option<&HashMap<String, String>>,
    trials: usize,
    split: &[Split],
    observed: usize,
    n_in: usize,
    n_out: usize,
) -> Result<Option<crate::data::nlb::stored::NlbData>, DataError> {
    use crate::data::nlb::score::{Array, Target};
    use crate::data::nlb::stored::{set_target_array, unflatten_lists, NlbData, NlbMeta};
    let Some(text) = metadata.and_then(|m| m.get("nlb")) else { return Ok(None) };
    let err = |reason: String| DataError::Metadata { path: r.path.to_path_buf(), key: "nlb".into(), reason };
    let meta: NlbMeta = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    if !crate::data::nlb::names::is_dataset(&meta.dataset) || meta.train_trials + meta.eval_trials != trials {
        return Err(err(format!(
            "dataset {:?} with {} train + {} eval trials does not describe these {trials} trials",
            meta.dataset, meta.train_trials, meta.eval_trials
        )));
    }
    if split[meta.train_trials..].iter().any(|s| *s != Split::Eval) || split[..meta.train_trials].contains(&Split::Eval)
    {
        return Err(err("the benchmark's eval trials must be the last ones, split 2 (eval)".into()));
    }
    let names: Vec<String> =
        r.st.names().into_iter().filter(|n| n.starts_with("nlb.")).map(|n| n.to_string()).collect();
    if names.is_empty() {
        return Ok(Some(NlbData { meta, target: None }));
    }
    let mut target = Target::default();
    let mut has_spikes = false;
    let i32s = |name: &str| -> Result<Vec<i32>, DataError> {
        let v = r.st.tensor(name).map_err(|_| err(format!("tensor {name} is missing")))?;
        if v.dtype() != Dtype::I32 {
            return Err(err(format!("tensor {name} is {:?}, expected I32", v.dtype())));
        }
        Ok(v.data().chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    };
    for name in &names {
        let short = &name["nlb.".len()..];
        match short {
            "eval_cond_idx" | "train_cond_idx" => {
                let lists = unflatten_lists(&i32s(name)?, &i32s(&format!("{name}.lengths"))?)
                    .ok_or_else(|| err(format!("{name}: lengths do not add up")))?;
                if short == "eval_cond_idx" {
                    target.eval_cond_idx = Some(lists);
                } else {
                    target.train_cond_idx = Some(lists);
                }
            }
            "eval_cond_idx.lengths" | "train_cond_idx.lengths" => {}
            "eval_jitter" => target.eval_jitter = Some(i32s(name)?),
            "train_jitter" => target.train_jitter = Some(i32s(name)?),
            _ => {
                let v = r.st.tensor(name).map_err(|e| err(e.to_string()))?;
                if v.dtype() != Dtype::F32 {
                    return Err(err(format!("tensor {name} is {:?}, expected F32", v.dtype())));
                }
                let vals: Vec<f32> =
                    v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                if !set_target_array(&mut target, short, Array::from_f32(v.shape().to_vec(), &vals)) {
                    return Err(err(format!("unknown tensor {name}")));
                }
                has_spikes |= short == "eval_spikes_heldout";
            }
        }
    }
    let want = [meta.eval_trials, observed, n_out - n_in];
    if !has_spikes || target.eval_spikes_heldout.shape != want {
        return Err(err(format!(
            "tensor nlb.eval_spikes_heldout must be {want:?}, found {:?}",
            target.eval_spikes_heldout.shape
        )));
    }
    Ok(Some(NlbData { meta, target: Some(target) }))
}
