//! Rust errors as Python exceptions: the message is the error and every
//! cause under it (`because: ...` lines, as `lflow` prints them); a missing
//! file is `FileNotFoundError`, bad data or a bad configuration `ValueError`,
//! another file-system failure `OSError`, anything else `lflow.LflowError`.

use lflow_host::data::DataError;
use lflow_host::deploy::export::ExportError;
use lflow_host::eval::plots::PlotError;
use lflow_host::eval::score_run::EvalError;
use lflow_host::train::run::RunError;
use lflow_host::train::session::SessionError;
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

/// What kind of failure an error is, looking through the host's
/// `#[error(transparent)]` wrappers (whose `source()` skips the error they wrap).
#[derive(PartialEq)]
enum Kind {
    Missing,
    BadInput,
    Io,
    Other,
}

fn data_kind(d: &DataError) -> Kind {
    match d {
        DataError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Kind::Missing,
        DataError::Io { .. } => Kind::Io,
        _ => Kind::BadInput,
    }
}

fn run_kind(r: &RunError) -> Kind {
    match r {
        RunError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Kind::Missing,
        RunError::Io { .. } => Kind::Io,
        RunError::Config { .. } | RunError::OutOfRange { .. } => Kind::BadInput,
        RunError::Data(d) => data_kind(d),
        _ => Kind::Other,
    }
}

fn kind_of(e: &(dyn Error + 'static)) -> Kind {
    if let Some(d) = e.downcast_ref::<DataError>() {
        return data_kind(d);
    }
    if let Some(r) = e.downcast_ref::<RunError>() {
        return run_kind(r);
    }
    #[cfg(feature = "nlb")]
    if let Some(n) = e.downcast_ref::<lflow_host::data::nlb::NlbError>() {
        use lflow_host::data::nlb::NlbError;
        return match n {
            NlbError::Open { file, .. } if !file.exists() => Kind::Missing,
            NlbError::Missing { .. }
            | NlbError::Shape { .. }
            | NlbError::Value { .. }
            | NlbError::Usage(_)
            | NlbError::Score(_) => Kind::BadInput,
            _ => Kind::Other,
        };
    }
    // The host's wrappers: `Data` and `Run` variants are transparent.
    macro_rules! unwrap_layers {
        ($($t:ty),*) => {$(
            if let Some(w) = e.downcast_ref::<$t>() {
                type W = $t;
                match w {
                    W::Data(d) => return data_kind(d),
                    W::Run(r) => return run_kind(r),
                    _ => {}
                }
            }
        )*};
    }
    unwrap_layers!(SessionError, EvalError, ExportError, PlotError);
    #[cfg(feature = "nlb")]
    {
        use lflow_host::eval::nlb_submit::SubmitError;
        unwrap_layers!(SubmitError);
        if let Some(SubmitError::Nlb(n)) = e.downcast_ref::<SubmitError>() {
            return kind_of(n);
        }
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return if io.kind() == std::io::ErrorKind::NotFound { Kind::Missing } else { Kind::Io };
    }
    Kind::Other
}

/// The Python exception for `e`: the most telling kind along its causes
/// (a missing file, then bad input, then another file-system failure).
pub fn to_py(e: &(dyn Error + 'static)) -> PyErr {
    let text = message(e);
    let mut kinds = Vec::new();
    let mut cause: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(c) = cause {
        kinds.push(kind_of(c));
        cause = c.source();
    }
    if kinds.contains(&Kind::Missing) {
        PyFileNotFoundError::new_err(text)
    } else if kinds.contains(&Kind::BadInput) {
        PyValueError::new_err(text)
    } else if kinds.contains(&Kind::Io) {
        PyOSError::new_err(text)
    } else {
        LflowError::new_err(text)
    }
}

/// `ValueError(text)`.
pub fn value(text: impl Into<String>) -> PyErr {
    PyValueError::new_err(text.into())
}
