//! `lflow` for Python (PyO3): the data set, training, prediction, scoring,
//! plots and export of `lflow-host`, taking and returning numpy arrays. The
//! Python package `lflow` (python/lflow) wraps this extension module
//! (`lflow._lflow`) with argument conversion and the NLB helpers; the types
//! and shapes are in `python/lflow/_lflow.pyi`.

mod dataset;
mod errors;
#[cfg(feature = "nlb")]
mod nlb;
mod run;

use pyo3::prelude::*;

/// The extension module `lflow._lflow`.
#[pymodule]
fn _lflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<dataset::PyDataset>()?;
    m.add_class::<run::PyRun>()?;
    m.add_function(wrap_pyfunction!(dataset::generate_lorenz, m)?)?;
    m.add_function(wrap_pyfunction!(run::train, m)?)?;
    #[cfg(feature = "nlb")]
    {
        m.add_function(wrap_pyfunction!(nlb::nlb_import, m)?)?;
        m.add_function(wrap_pyfunction!(nlb::nlb_submit, m)?)?;
        m.add_function(wrap_pyfunction!(nlb::nlb_score, m)?)?;
    }
    m.add("LflowError", m.py().get_type::<errors::LflowError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
