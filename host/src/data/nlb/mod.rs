//! Neural Latents Benchmark interop: the `nlb_tools` tensor files in, EvalAI
//! submission files out, and the benchmark's metrics exactly as `nlb_tools`
//! computes them. The metrics work on arrays in memory ([`score`]); reading
//! and writing HDF5 needs the `nlb` feature (the system's libhdf5).

pub mod array;
#[cfg(feature = "nlb")]
pub mod h5;
#[cfg(feature = "nlb")]
pub mod import;
#[cfg(feature = "nlb")]
pub mod layout;
pub mod names;
pub mod predicted;
mod psth;
pub mod score;
pub mod stored;
#[cfg(feature = "nlb")]
pub mod submit;

use std::path::PathBuf;

/// Why an NLB file could not be read, written or scored. Every variant names
/// the file and, inside it, the HDF5 path.
#[derive(Debug, thiserror::Error)]
pub enum NlbError {
    /// The file could not be opened or created.
    #[error("{file}: {reason}")]
    Open {
        /// The file.
        file: PathBuf,
        /// What HDF5 or the file system said.
        reason: String,
    },
    /// A dataset the layout requires is absent.
    #[error("{file}: dataset `{path}` is missing (expected {expected})")]
    Missing {
        /// The file.
        file: PathBuf,
        /// HDF5 path inside it.
        path: String,
        /// Its expected shape and type.
        expected: String,
    },
    /// A dataset of the wrong shape.
    #[error("{file}: dataset `{path}` has shape {found:?}, expected {expected}")]
    Shape {
        /// The file.
        file: PathBuf,
        /// HDF5 path.
        path: String,
        /// What the layout and the other datasets imply.
        expected: String,
        /// What the file holds.
        found: Vec<usize>,
    },
    /// A value that cannot be used.
    #[error("{file}: dataset `{path}` at flat index {index} is {value}: {what}")]
    Value {
        /// The file.
        file: PathBuf,
        /// HDF5 path.
        path: String,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
        /// What is wrong.
        what: &'static str,
    },
    /// A read or write that HDF5 refused.
    #[error("{file}: dataset `{path}`: {reason}")]
    Io {
        /// The file.
        file: PathBuf,
        /// HDF5 path.
        path: String,
        /// HDF5's words.
        reason: String,
    },
    /// Arguments or files that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A submission that cannot be scored.
    #[error(transparent)]
    Score(#[from] score::ScoreError),
}
