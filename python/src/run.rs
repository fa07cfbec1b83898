//! `lflow.train` and `lflow.Run`: a training session driven from Python (the
//! GIL released during each epoch, Ctrl-C between epochs), and a run
//! folder's predictions, scores, plots and export.

use crate::dataset::{array3, PyDataset};
use crate::errors::{to_py, value};
use lflow_host::data::{Dataset, Split};
use lflow_host::train::backend::Features;
use lflow_host::train::predictor::{Predictor, PREDICTION_SEED};
use lflow_host::train::run::{RunConfig, RunDir, RunError, RunRecord};
use lflow_host::train::session::Session;
use lflow_host::train::train_config::Retune;
use lflow_host::train::Device;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// A run folder (see `lflow/_lflow.pyi`).
#[pyclass(name = "Run", module = "lflow", frozen)]
pub struct PyRun {
    dir: RunDir,
    record: RunRecord,
}

fn device(text: &str) -> PyResult<Device> {
    text.parse::<Device>().map_err(|e| value(format!("device {text:?}: {e}")))
}

fn split(text: &str) -> PyResult<Split> {
    match text {
        "train" => Ok(Split::Train),
        "valid" => Ok(Split::Valid),
        "eval" => Ok(Split::Eval),
        other => Err(value(format!("split {other:?}: expected \"train\", \"valid\" or \"eval\""))),
    }
}

/// Python's `json.loads(text)`.
fn from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

impl PyRun {
    fn open_dir(path: &Path) -> PyResult<PyRun> {
        let (dir, record) = RunDir::open(path).map_err(|e| to_py(&e))?;
        Ok(PyRun { dir, record })
    }

    /// `data`, or the run's own data set (checked against its hash) for calls without it.
    fn data_or_own<'a>(&self, py: Python<'_>, data: &'a Option<PyRef<'_, PyDataset>>) -> PyResult<Cow<'a, Dataset>> {
        if let Some(d) = data {
            return Ok(Cow::Borrowed(&d.inner));
        }
        let file = self.record.data_file(&self.dir.path).map_err(|e| to_py(&e))?;
        py.detach(|| lflow_host::data::load(&file)).map(Cow::Owned).map_err(|e| to_py(&e))
    }
}

#[pymethods]
impl PyRun {
    #[staticmethod]
    fn open(path: PathBuf) -> PyResult<PyRun> {
        if !path.exists() {
            let text = format!("{}: no such run folder", path.display());
            return Err(pyo3::exceptions::PyFileNotFoundError::new_err(text));
        }
        PyRun::open_dir(&path)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.path.clone()
    }

    /// The resolved configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.record.config).map_err(|e| value(e.to_string()))?;
        from_json(py, &text)
    }

    /// The data set file the run was trained on.
    #[getter]
    fn data_path(&self) -> PathBuf {
        self.record.data.clone()
    }

    #[pyo3(signature = (data=None, samples=50, split="eval", *, threads=0))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        data: Option<PyRef<'py, PyDataset>>,
        samples: usize,
        split: &str,
        threads: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let which = self::split(split)?;
        let set = self.data_or_own(py, &data)?;
        let set: &Dataset = &set;
        let trials = set.indices(which);
        let dir = &self.dir;
        let mut p = Predictor::open_run(dir, Device::Cpu, threads).map_err(|e| to_py(&e))?;
        p.check(set).map_err(|e| to_py(&e))?;
        let (d_model, n_out) = (p.model.d_model(), p.model.n_out);
        let (log_rates, latents, decoder) = py
            .detach(|| -> Result<_, lflow_host::train::BackendError> {
                let log_rates = p.log_rates(set, &trials, samples, PREDICTION_SEED)?;
                let latents = p.latents(set, &trials)?;
                let decoder = p.features(set, &trials, Features::DecoderOutput)?;
                Ok((log_rates, latents, decoder))
            })
            .map_err(|e| to_py(&e))?;
        let (n, tt) = (trials.len(), set.bins());
        let rates: Vec<f32> = log_rates.iter().map(|x| x.exp()).collect();
        let out = PyDict::new(py);
        out.set_item("log_rates", array3(py, log_rates, [n, tt, n_out])?)?;
        out.set_item("rates", array3(py, rates, [n, tt, n_out])?)?;
        out.set_item("latents", array3(py, latents, [n, tt, d_model])?)?;
        out.set_item("decoder_output", array3(py, decoder, [n, tt, d_model])?)?;
        out.set_item("trials", numpy::PyArray1::from_vec(py, trials.iter().map(|&i| i as i64).collect()))?;
        Ok(out)
    }

    #[pyo3(signature = (data=None, *, samples=None, threads=0))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        data: Option<PyRef<'py, PyDataset>>,
        samples: Option<usize>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let set = self.data_or_own(py, &data)?;
        let set: &Dataset = &set;
        let dir = &self.dir;
        let report = py
            .detach(|| lflow_host::eval::score_run::score_run(dir, set, samples, Device::Cpu, threads))
            .map_err(|e| to_py(&e))?;
        let text = serde_json::to_string(&report).map_err(|e| value(e.to_string()))?;
        from_json(py, &text)
    }

    #[pyo3(signature = (*, threads=0))]
    fn plot(&self, py: Python<'_>, threads: usize) -> PyResult<Vec<PathBuf>> {
        let path = &self.dir.path;
        py.detach(|| lflow_host::eval::plots::plot_run(path, None, threads)).map_err(|e| to_py(&e))
    }

    #[pyo3(signature = (path, *, format="i8", threads=0))]
    fn export<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        format: &str,
        threads: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        use lflow_core::StorageFormat;
        let storage = match format {
            "f32" => StorageFormat::F32,
            "f16" => StorageFormat::F16,
            "i8" => StorageFormat::I8,
            other => return Err(value(format!("format {other:?}: expected \"f32\", \"f16\" or \"i8\""))),
        };
        let run = &self.dir.path;
        let s = py
            .detach(|| lflow_host::deploy::export::export_run(run, storage, &path, None, threads))
            .map_err(|e| to_py(&e))?;
        let out = PyDict::new(py);
        out.set_item("path", s.out.clone())?;
        out.set_item("bytes", s.bytes)?;
        out.set_item("format", format)?;
        out.set_item("n_beh", s.n_beh)?;
        let json = |text: serde_json::Result<String>| from_json(py, &text.unwrap_or_else(|_| "null".into()));
        out.set_item("host", json(serde_json::to_string(&s.host))?)?;
        out.set_item("blob", json(serde_json::to_string(&s.blob))?)?;
        out.set_item("core", json(serde_json::to_string(&s.core))?)?;
        out.set_item("core_f32", json(serde_json::to_string(&s.core_f32))?)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("Run({})", self.dir.path.display())
    }
}

/// The data set file a run records: the Dataset's own file, or (for one
/// made in memory) a copy saved beside the run folder as `<out>.data.safetensors`.
fn data_file(py: Python<'_>, data: &Bound<'_, PyAny>, out: &Path) -> PyResult<PathBuf> {
    let Ok(d) = data.cast::<PyDataset>() else {
        return data
            .extract::<PathBuf>()
            .map_err(|_| value("data: expected an lflow.Dataset or a path to a data set file"));
    };
    let d = d.get();
    if let Some(p) = d.file() {
        return Ok(p);
    }
    // Refuse before writing anything beside a folder that already holds a run.
    if out.join("run.json").exists() {
        return Err(to_py(&RunError::Exists { path: out.to_path_buf() }));
    }
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "run".into());
    name.push(".data.safetensors");
    let file = out.with_file_name(name);
    let bytes = lflow_host::data::to_bytes(&d.inner);
    if file.exists() {
        // Another run's data (or an older copy): keep it unless it is this very data set.
        let same = std::fs::read(&file).is_ok_and(|old| old == bytes)
            || lflow_host::data::load(&file).is_ok_and(|old| old == d.inner);
        if !same {
            return Err(crate::errors::LflowError::new_err(format!(
                "{}: already holds another data set; save this Dataset elsewhere (Dataset.save) and train on that file",
                file.display()
            )));
        }
    } else {
        py.detach(|| lflow_host::io::write_atomically(&file, &bytes))
            .map_err(|e| to_py(&lflow_host::data::DataError::Io { path: e.path, source: e.source }))?;
    }
    d.set_file(file.clone());
    Ok(file)
}

/// Training stopped by `why` (the callback's exception, KeyboardInterrupt):
/// write the resumable checkpoint and hand `why` back, with a failure to
/// write it as its cause.
fn stopped(py: Python<'_>, session: &mut Session, why: PyErr) -> PyErr {
    if let Err(e) = session.finish() {
        why.set_cause(py, Some(to_py(&e)));
    }
    why
}

/// The configuration: defaults, a dict (as JSON text from the wrapper) or a TOML file.
fn config(json: Option<&str>, path: Option<PathBuf>) -> PyResult<RunConfig> {
    match (json, path) {
        (Some(text), _) => {
            let c: RunConfig = serde_json::from_str(text).map_err(|e| value(format!("config: {e}")))?;
            c.check(Path::new("config")).map_err(|e| to_py(&e))?;
            Ok(c)
        }
        (None, Some(p)) => RunConfig::load(&p).map_err(|e| to_py(&e)),
        (None, None) => Ok(RunConfig::default()),
    }
}

/// Train a model (see `lflow/_lflow.pyi`); the wrapper passes a dict config as JSON text.
#[pyfunction]
#[pyo3(signature = (data, *, out, config_json=None, config_path=None, device="cpu", epochs=None, threads=0, progress=true, callback=None, resume=false, hyperparameters=None, stop_after=None))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    out: PathBuf,
    config_json: Option<&str>,
    config_path: Option<PathBuf>,
    device: &str,
    epochs: Option<usize>,
    threads: usize,
    progress: bool,
    callback: Option<Bound<'_, PyAny>>,
    resume: bool,
    hyperparameters: Option<Vec<(String, f64)>>,
    stop_after: Option<usize>,
) -> PyResult<PyRun> {
    let dev = self::device(device)?;
    let mut retune = Retune::default();
    for (name, v) in hyperparameters.unwrap_or_default() {
        if !retune.set(&name, v as f32) {
            let names = Retune::NAMES.join(", ");
            return Err(value(format!("hyperparameters: {name:?} is not one of {names}")));
        }
    }
    let mut session = if resume {
        if config_json.is_some() || config_path.is_some() {
            return Err(value(
                "resume: the run keeps its configuration; change hyper-parameters with `hyperparameters`",
            ));
        }
        let file = if data.is_none() {
            let (dir, record) = RunDir::open(&out).map_err(|e| to_py(&e))?;
            record.data_file(&dir.path).map_err(|e| to_py(&e))?
        } else if let Some(p) = data.cast::<PyDataset>().ok().and_then(|d| d.get().file()) {
            p
        } else {
            data.extract::<PathBuf>().map_err(|_| {
                value("data: to resume, the run's data set file (a path, a Dataset read from it, or None)")
            })?
        };
        py.detach(|| Session::resume_retuned(&out, &file, epochs, dev, threads, &retune)).map_err(|e| to_py(&e))?
    } else {
        if !retune.is_empty() {
            return Err(value("hyperparameters: only for resume=True (a new run takes them in `config`)"));
        }
        let mut c = config(config_json, config_path)?;
        if let Some(e) = epochs {
            c.train.epochs = e;
        }
        let file = data_file(py, data, &out)?;
        py.detach(|| Session::create(&file, c, &out, dev, threads)).map_err(|e| to_py(&e))?
    };
    let total = session.trainer().config.epochs;
    // `stop_after`: stop at that epoch with a resumable checkpoint, the
    // schedule still spanning all `epochs` (a sweep trains in intervals).
    while !session.done() && stop_after.is_none_or(|n| session.trainer().state.epoch < n) {
        let s = py.detach(|| session.epoch()).map_err(|e| to_py(&e))?;
        if progress {
            let e = session.trainer().state.epoch;
            let tenth = |x: usize| x * 10 / total.max(1);
            if tenth(e) != tenth(s.epoch) || e == total {
                eprintln!(
                    "epoch {e}/{total}: loss {:.4}, valid NLL {:.4}, valid co-bps {:.3}, lr {:.1e}, {:.0} trials/s",
                    s.train_loss, s.valid_nll, s.valid_co_bps, s.lr, s.trials_per_s
                );
            }
        }
        if let Some(cb) = &callback {
            let row = PyDict::new(py);
            row.set_item("epoch", session.trainer().state.epoch)?;
            row.set_item("train_loss", s.train_loss)?;
            row.set_item("train_nll", s.train_nll)?;
            row.set_item("valid_nll", s.valid_nll)?;
            row.set_item("valid_co_bps", s.valid_co_bps)?;
            row.set_item("lr", s.lr)?;
            row.set_item("trials_per_s", s.trials_per_s)?;
            if let Err(e) = cb.call1((row,)) {
                return Err(stopped(py, &mut session, e));
            }
        }
        // Ctrl-C (KeyboardInterrupt) stops after the epoch, leaving a resumable checkpoint.
        if let Err(e) = py.check_signals() {
            return Err(stopped(py, &mut session, e));
        }
    }
    session.finish().map_err(|e| to_py(&e))?;
    PyRun::open_dir(&session.dir().path)
}
