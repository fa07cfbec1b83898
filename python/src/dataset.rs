//! `lflow.Dataset` and `lflow.generate_lorenz`: trials of binned spike
//! counts, built from numpy arrays with the file loader's own checks.

use crate::errors::{to_py, value};
use lflow_host::data::lorenz::{generate, LorenzConfig};
use lflow_host::data::{Dataset, Split};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Binned spike counts of a set of trials (see `lflow/_lflow.pyi`).
#[pyclass(name = "Dataset", module = "lflow", frozen)]
pub struct PyDataset {
    pub inner: Dataset,
    /// The file it was loaded from or last saved to (behind a lock: the
    /// class is frozen, so no borrow is held while the GIL is released).
    path: Mutex<Option<PathBuf>>,
}

impl PyDataset {
    /// A data set not yet in a file, or read from `path`.
    pub fn new(inner: Dataset, path: Option<PathBuf>) -> PyDataset {
        PyDataset { inner, path: Mutex::new(path) }
    }

    /// The file it was loaded from or last saved to.
    pub fn file(&self) -> Option<PathBuf> {
        self.path.lock().map_or(None, |p| p.clone())
    }

    /// Record that it is now in `path`.
    pub fn set_file(&self, path: PathBuf) {
        if let Ok(mut p) = self.path.lock() {
            *p = Some(path);
        }
    }
}

/// `x` as a count (`name` in the error): a non-negative integer.
fn count(name: &str, x: i64) -> PyResult<usize> {
    usize::try_from(x).map_err(|_| value(format!("{name} = {x}: must be a non-negative integer")))
}

/// `x` as a bin width: finite and positive.
fn bin_width(x: f64) -> PyResult<f32> {
    if x.is_finite() && x > 0.0 && (x as f32).is_finite() {
        Ok(x as f32)
    } else {
        Err(value(format!("bin_ms = {x}: must be a finite positive number of milliseconds")))
    }
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
        n_in: i64,
        observed: i64,
        bin_ms: f64,
        split: Option<Vec<String>>,
        behavior: Option<&Bound<'py, PyAny>>,
        true_rates: Option<&Bound<'py, PyAny>>,
        condition: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyDataset> {
        let (n_in, observed, bin_ms) = (count("n_in", n_in)?, count("observed", observed)?, bin_width(bin_ms)?);
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
                    if !(0..=i64::from(i32::MAX)).contains(&v) {
                        return Err(value(format!("condition[{i}] = {v}: not a condition id (0 to 2^31 - 1)")));
                    }
                    out.push(v as u32);
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
        Ok(PyDataset::new(checked, None))
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyDataset> {
        let inner = py.detach(|| lflow_host::data::load(&path)).map_err(|e| to_py(&e))?;
        Ok(PyDataset::new(inner, Some(path)))
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| lflow_host::data::save(&path, inner)).map_err(|e| to_py(&e))?;
        self.set_file(path);
        Ok(())
    }

    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.file()
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
            self.file().map_or(String::new(), |p| format!(", {}", p.display()))
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
    trials: Option<i64>,
    eval_trials: Option<i64>,
    valid_fraction: Option<f64>,
    observed: Option<i64>,
    forward: Option<i64>,
    held_in: Option<i64>,
    held_out: Option<i64>,
    bin_ms: Option<f64>,
    seed: Option<u64>,
) -> PyResult<PyDataset> {
    let d = LorenzConfig::default();
    let or = |name: &str, x: Option<i64>, default: usize| x.map_or(Ok(default), |x| count(name, x));
    let c = LorenzConfig {
        trials: or("trials", trials, d.trials)?,
        eval_trials: or("eval_trials", eval_trials, d.eval_trials)?,
        valid_fraction: valid_fraction.map_or(d.valid_fraction, |v| v as f32),
        observed: or("observed", observed, d.observed)?,
        forward: or("forward", forward, d.forward)?,
        held_in: or("held_in", held_in, d.held_in)?,
        held_out: or("held_out", held_out, d.held_out)?,
        bin_ms: bin_ms.map_or(Ok(d.bin_ms), bin_width)?,
        seed: seed.unwrap_or(d.seed),
        ..d
    };
    // At most 2^28 values per array (1 GiB of f32): past that, a failed
    // allocation would abort the interpreter.
    let values = c.trials.checked_mul(c.observed + c.forward).and_then(|x| x.checked_mul(c.held_in + c.held_out));
    if values.is_none_or(|v| v > 1 << 28) {
        return Err(value(format!(
            "trials x bins x neurons = {} x {} x {}: more than 2^28 values",
            c.trials,
            c.observed + c.forward,
            c.held_in + c.held_out
        )));
    }
    if c.eval_trials >= c.trials {
        return Err(value(format!("eval_trials = {} of trials = {}: none left to train on", c.eval_trials, c.trials)));
    }
    if c.observed == 0 || c.held_in == 0 {
        return Err(value("observed and held_in must be at least 1"));
    }
    let fit = c.trials - c.eval_trials;
    if !(0.0..1.0).contains(&c.valid_fraction) || (fit as f32 * c.valid_fraction).round() as usize >= fit {
        return Err(value(format!(
            "valid_fraction = {} of the {fit} trials left after eval: it must be in [0, 1) and leave one to train on",
            c.valid_fraction
        )));
    }
    Ok(PyDataset::new(py.detach(|| generate(&c)), None))
}
