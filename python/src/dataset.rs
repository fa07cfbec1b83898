//! `lflow.Dataset` and `lflow.generate_lorenz`: trials of binned spike
//! counts, built from numpy arrays with the file loader's own checks.

use crate::errors::{to_py, value};
use lflow_host::data::lorenz::{generate, LorenzConfig};
use lflow_host::data::{Dataset, Split};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

/// Binned spike counts of a set of trials (see `lflow/_lflow.pyi`).
#[pyclass(name = "Dataset", module = "lflow")]
pub struct PyDataset {
    pub inner: Dataset,
    /// The file it was loaded from or last saved to.
    pub path: Option<PathBuf>,
}

fn shape3(name: &str, a: &PyReadonlyArray3<'_, f32>, want: [Option<usize>; 3], what: &str) -> PyResult<()> {
    let s = a.shape();
    if want.iter().zip(s).any(|(w, g)| w.is_some_and(|w| w != *g)) {
        return Err(value(format!("{name}: shape {s:?}, expected {what}")));
    }
    Ok(())
}

/// `a` as a C-ordered numpy array of `ndim` dimensions and a numeric dtype
/// (`kinds`: numpy's dtype kind letters allowed), converted to float32 (or
/// int64 for integer kinds only).
fn numeric<'py>(
    py: Python<'py>,
    name: &str,
    a: &Bound<'py, PyAny>,
    ndim: usize,
    what: &str,
    kinds: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (a,))?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if !kinds.contains(kind.as_str()) {
        let allowed = if kinds.contains('f') { "integer or float" } else { "integer" };
        return Err(value(format!("{name}: dtype {}, expected {allowed} values ({what})", dtype.str()?)));
    }
    let got: usize = arr.getattr("ndim")?.extract()?;
    if got != ndim {
        let shape = arr.getattr("shape")?.str()?.to_string();
        return Err(value(format!("{name}: shape {shape} has {got} dimensions, expected {ndim}: {what}")));
    }
    let target = if kinds.contains('f') { "float32" } else { "int64" };
    np.call_method1("ascontiguousarray", (arr, target))
}

/// The split of `b` trials when none is given: the last fifth (rounded down)
/// for evaluation, the last tenth of the rest (rounded up, when two or more
/// remain) for validation, the others for training.
fn default_split(b: usize) -> Vec<u8> {
    let eval = b / 5;
    let rest = b - eval;
    let valid = if rest > 1 { rest.div_ceil(10) } else { 0 };
    (0..b)
        .map(|i| {
            if i >= b - eval {
                2
            } else if i >= b - eval - valid {
                1
            } else {
                0
            }
        })
        .collect()
}

fn values3(a: &PyReadonlyArray3<'_, f32>) -> Vec<f32> {
    // Contiguous (the wrapper passes C-ordered float32) or not, in C order.
    a.as_array().iter().copied().collect()
}

/// A `[d0, d1, d2]` float32 numpy array holding `v` (moved, not copied).
pub fn array3<'py>(py: Python<'py>, v: Vec<f32>, shape: [usize; 3]) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, v).reshape(shape)?.into_any())
}

#[pymethods]
impl PyDataset {
    #[staticmethod]
    #[pyo3(signature = (spikes, *, n_in, observed, bin_ms, split=None, behavior=None, true_rates=None, condition=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_arrays<'py>(
        py: Python<'py>,
        spikes: &Bound<'py, PyAny>,
        n_in: usize,
        observed: usize,
        bin_ms: f32,
        split: Option<Vec<String>>,
        behavior: Option<&Bound<'py, PyAny>>,
        true_rates: Option<&Bound<'py, PyAny>>,
        condition: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyDataset> {
        let spikes = numeric(py, "spikes", spikes, 3, "[trials, bins, neurons] spike counts", "iuf")?;
        let spikes: PyReadonlyArray3<'py, f32> = spikes.extract()?;
        let behavior = match behavior {
            Some(x) => Some(
                numeric(py, "behavior", x, 3, "[trials, observed bins, dims]", "iuf")?
                    .extract::<PyReadonlyArray3<'py, f32>>()?,
            ),
            None => None,
        };
        let true_rates = match true_rates {
            Some(x) => Some(
                numeric(py, "true_rates", x, 3, "[trials, bins, neurons] spikes per bin", "iuf")?
                    .extract::<PyReadonlyArray3<'py, f32>>()?,
            ),
            None => None,
        };
        let condition = match condition {
            Some(x) => Some(
                numeric(py, "condition", x, 1, "[trials] condition ids", "iu")?
                    .extract::<PyReadonlyArray1<'py, i64>>()?,
            ),
            None => None,
        };
        let split = match split {
            Some(names) => names
                .iter()
                .enumerate()
                .map(|(i, n)| match n.as_str() {
                    "train" => Ok(0u8),
                    "valid" => Ok(1),
                    "eval" => Ok(2),
                    other => Err(value(format!("split[{i}] = {other:?}: expected \"train\", \"valid\" or \"eval\""))),
                })
                .collect::<PyResult<Vec<u8>>>()?,
            None => default_split(spikes.shape()[0]),
        };
        let [b, tt, n_out] = [spikes.shape()[0], spikes.shape()[1], spikes.shape()[2]];
        if observed == 0 || observed > tt {
            return Err(value(format!(
                "observed = {observed}: must be 1 to the {tt} bins of spikes [trials, bins, neurons]"
            )));
        }
        if split.len() != b {
            return Err(value(format!("split: {} entries for {b} trials", split.len())));
        }
        if let Some(r) = &true_rates {
            shape3("true_rates", r, [Some(b), Some(tt), Some(n_out)], &format!("spikes' [{b}, {tt}, {n_out}]"))?;
        }
        let n_beh = behavior.as_ref().map_or(0, |x| x.shape()[2]);
        if let Some(x) = &behavior {
            shape3("behavior", x, [Some(b), Some(observed), None], &format!("[{b}, observed = {observed}, dims]"))?;
        }
        let conditions = match &condition {
            None => None,
            Some(c) => {
                let c = c.as_array();
                if c.len() != b {
                    return Err(value(format!("condition: {} entries for {b} trials", c.len())));
                }
                let mut out = Vec::with_capacity(b);
                for (i, &v) in c.iter().enumerate() {
                    out.push(
                        u32::try_from(v)
                            .map_err(|_| value(format!("condition[{i}] = {v}: not a condition id (0 to 2^32 - 1)")))?,
                    );
                }
                Some(out)
            }
        };
        let set = Dataset {
            n_in,
            n_out,
            observed,
            forward: tt - observed,
            bin_ms,
            spikes: values3(&spikes),
            true_rates: true_rates.as_ref().map(values3),
            behavior: behavior.as_ref().map(values3),
            n_beh,
            conditions,
            split: split.iter().map(|&c| Split::from_code(c).unwrap_or(Split::Train)).collect(),
            segments: None,
            nlb: None,
        };
        // The file loader's checks, on the bytes it would read.
        let bytes = lflow_host::data::to_bytes(&set);
        let checked = lflow_host::data::from_bytes(&bytes, Path::new("arrays")).map_err(|e| to_py(&e))?;
        Ok(PyDataset { inner: checked, path: None })
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyDataset> {
        let inner = py.detach(|| lflow_host::data::load(&path)).map_err(|e| to_py(&e))?;
        Ok(PyDataset { inner, path: Some(path) })
    }

    fn save(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| lflow_host::data::save(&path, inner)).map_err(|e| to_py(&e))?;
        self.path = Some(path);
        Ok(())
    }

    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    #[getter]
    fn trials(&self) -> usize {
        self.inner.trials()
    }

    #[getter]
    fn bins(&self) -> usize {
        self.inner.bins()
    }

    #[getter]
    fn observed(&self) -> usize {
        self.inner.observed
    }

    #[getter]
    fn forward(&self) -> usize {
        self.inner.forward
    }

    #[getter]
    fn n_in(&self) -> usize {
        self.inner.n_in
    }

    #[getter]
    fn n_out(&self) -> usize {
        self.inner.n_out
    }

    #[getter]
    fn bin_ms(&self) -> f32 {
        self.inner.bin_ms
    }

    #[getter]
    fn split(&self) -> Vec<&'static str> {
        self.inner.split.iter().map(|s| split_name(*s)).collect()
    }

    #[getter]
    fn spikes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = &self.inner;
        array3(py, d.spikes.clone(), [d.trials(), d.bins(), d.n_out])
    }

    #[getter]
    fn true_rates<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = &self.inner;
        d.true_rates.as_ref().map(|r| array3(py, r.clone(), [d.trials(), d.bins(), d.n_out])).transpose()
    }

    #[getter]
    fn behavior<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = &self.inner;
        d.behavior.as_ref().map(|x| array3(py, x.clone(), [d.trials(), d.observed, d.n_beh])).transpose()
    }

    fn __len__(&self) -> usize {
        self.inner.trials()
    }

    fn __repr__(&self) -> String {
        let d = &self.inner;
        let count = |s| d.split.iter().filter(|x| **x == s).count();
        format!(
            "Dataset({} trials ({} train, {} valid, {} eval), {} + {} bins of {} ms, {} held-in of {} neurons{})",
            d.trials(),
            count(Split::Train),
            count(Split::Valid),
            count(Split::Eval),
            d.observed,
            d.forward,
            d.bin_ms,
            d.n_in,
            d.n_out,
            self.path.as_ref().map_or(String::new(), |p| format!(", {}", p.display()))
        )
    }
}

/// The name Python uses for a split.
pub fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Valid => "valid",
        Split::Eval => "eval",
    }
}

/// Synthetic Lorenz trials (see `lflow/_lflow.pyi`); unset arguments take `lflow generate lorenz`'s defaults.
#[pyfunction]
#[pyo3(signature = (*, trials=None, eval_trials=None, valid_fraction=None, observed=None, forward=None, held_in=None, held_out=None, bin_ms=None, seed=None))]
#[allow(clippy::too_many_arguments)]
pub fn generate_lorenz(
    py: Python<'_>,
    trials: Option<usize>,
    eval_trials: Option<usize>,
    valid_fraction: Option<f32>,
    observed: Option<usize>,
    forward: Option<usize>,
    held_in: Option<usize>,
    held_out: Option<usize>,
    bin_ms: Option<f32>,
    seed: Option<u64>,
) -> PyResult<PyDataset> {
    let d = LorenzConfig::default();
    let c = LorenzConfig {
        trials: trials.unwrap_or(d.trials),
        eval_trials: eval_trials.unwrap_or(d.eval_trials),
        valid_fraction: valid_fraction.unwrap_or(d.valid_fraction),
        observed: observed.unwrap_or(d.observed),
        forward: forward.unwrap_or(d.forward),
        held_in: held_in.unwrap_or(d.held_in),
        held_out: held_out.unwrap_or(d.held_out),
        bin_ms: bin_ms.unwrap_or(d.bin_ms),
        seed: seed.unwrap_or(d.seed),
        ..d
    };
    if c.eval_trials >= c.trials {
        return Err(value(format!("eval_trials = {} of trials = {}: none left to train on", c.eval_trials, c.trials)));
    }
    if c.observed == 0 || c.held_in == 0 {
        return Err(value("observed and held_in must be at least 1"));
    }
    if c.bin_ms.is_nan() || c.bin_ms <= 0.0 || !(0.0..1.0).contains(&c.valid_fraction) {
        return Err(value(format!(
            "bin_ms = {} must be positive, valid_fraction = {} in [0, 1)",
            c.bin_ms, c.valid_fraction
        )));
    }
    Ok(PyDataset { inner: py.detach(|| generate(&c)), path: None })
}
