//! Rust errors as Python exceptions: the message is the error and every
//! cause under it (`because: ...` lines, as `lflow` prints them); a missing
//! file is `FileNotFoundError`, bad data `ValueError`, anything else
//! `lflow.LflowError`.

use lflow_host::data::DataError;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use std::error::Error;

pyo3::create_exception!(
    lflow,
    LflowError,
    PyRuntimeError,
    "An lflow operation failed (training, a run folder, a checkpoint, export); the message holds every cause."
);

/// The error and its causes, one `because:` line each.
pub fn message(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str("\nbecause: ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The Python exception for `e`: `FileNotFoundError` when a file was not
/// found anywhere in its causes, `ValueError` when a data set's content (or
/// an NLB file's, or an argument) is wrong, `OSError` for other file-system failures, else `LflowError`.
pub fn to_py(e: &(dyn Error + 'static)) -> PyErr {
    let text = message(e);
    let mut cause: Option<&(dyn Error + 'static)> = Some(e);
    let mut io = false;
    let mut data = false;
    while let Some(c) = cause {
        if let Some(ioe) = c.downcast_ref::<std::io::Error>() {
            if ioe.kind() == std::io::ErrorKind::NotFound {
                return PyFileNotFoundError::new_err(text);
            }
            io = true;
        }
        if let Some(d) = c.downcast_ref::<DataError>() {
            data |= !matches!(d, DataError::Io { .. });
        }
        #[cfg(feature = "nlb")]
        if let Some(n) = c.downcast_ref::<lflow_host::data::nlb::NlbError>() {
            use lflow_host::data::nlb::NlbError;
            data |= matches!(
                n,
                NlbError::Missing { .. } | NlbError::Shape { .. } | NlbError::Value { .. } | NlbError::Usage(_)
            );
        }
        cause = c.source();
    }
    if data {
        PyValueError::new_err(text)
    } else if io {
        PyOSError::new_err(text)
    } else {
        LflowError::new_err(text)
    }
}

/// `ValueError(text)`.
pub fn value(text: impl Into<String>) -> PyErr {
    PyValueError::new_err(text.into())
}
