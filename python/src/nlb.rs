//! `lflow.nlb`: the Neural Latents Benchmark's files (feature `nlb`, the
//! system's libhdf5): import `nlb_tools` tensors as a Dataset, write a run's
//! EvalAI submission, score a submission exactly as `nlb_tools` does.

use crate::dataset::PyDataset;
use crate::errors::{to_py, value};
use lflow_host::data::nlb::import::{import, ImportSpec, Phase};
use lflow_host::data::nlb::layout::score_files;
use lflow_host::data::nlb::score::format_results;
use lflow_host::eval::nlb_submit::submit_run;
use lflow_host::train::Device;
use pyo3::prelude::*;
use std::path::PathBuf;

/// The data set of the `nlb_tools` files in `dir` (see `lflow/nlb.py`).
#[pyfunction]
#[pyo3(signature = (dir, dataset, bin_ms, *, phase="val", valid_every=10))]
pub fn nlb_import(
    py: Python<'_>,
    dir: PathBuf,
    dataset: String,
    bin_ms: u32,
    phase: &str,
    valid_every: usize,
) -> PyResult<PyDataset> {
    let phase = match phase {
        "val" => Phase::Val,
        "test" => Phase::Test,
        other => return Err(value(format!("phase {other:?}: expected \"val\" or \"test\""))),
    };
    let spec = ImportSpec { dir, dataset, bin_ms, phase, valid_every };
    let imported = py.detach(|| import(&spec)).map_err(|e| to_py(&e))?;
    Ok(PyDataset::new(imported.data, None))
}

/// Write the EvalAI submission of the run in `run` to `out`; returns its summary.
#[pyfunction]
#[pyo3(signature = (run, out, *, samples=None, threads=0))]
pub fn nlb_submit(
    py: Python<'_>,
    run: PathBuf,
    out: PathBuf,
    samples: Option<usize>,
    threads: usize,
) -> PyResult<String> {
    py.detach(|| submit_run(&run, None, &out, samples, Device::Cpu, threads)).map_err(|e| to_py(&e))
}

/// `nlb_tools.evaluation.evaluate(target, submission)`'s result, as JSON text.
#[pyfunction]
pub fn nlb_score(py: Python<'_>, submission: PathBuf, target: PathBuf) -> PyResult<String> {
    let results = py.detach(|| score_files(&submission, &target)).map_err(|e| to_py(&e))?;
    Ok(format_results(&results, true))
}
