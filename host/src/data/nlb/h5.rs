//! Reading and writing the HDF5 layouts of `nlb_tools` (gzip-compressed
//! float32 / int32 / bool datasets, variable-length int32 condition indices),
//! with errors that name the file, the HDF5 path and the expected shape.

use super::score::Array;
use super::NlbError;
use hdf5::types::VarLenArray;
use std::path::{Path, PathBuf};

/// An open file and its name for errors.
pub struct H5 {
    file: hdf5::File,
    path: PathBuf,
}

/// A dimension the layout fixes, or one the file decides.
#[derive(Clone, Copy, Debug)]
pub enum Dim {
    /// Must equal this.
    Is(usize),
    /// Any size.
    Any,
}

fn describe(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Is(n) => n.to_string(),
            Dim::Any => "_".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

impl H5 {
    /// Open `path` for reading.
    pub fn open(path: &Path) -> Result<H5, NlbError> {
        if !path.exists() {
            return Err(NlbError::Open { file: path.into(), reason: "no such file".into() });
        }
        let file = hdf5::File::open(path)
            .map_err(|e| NlbError::Open { file: path.into(), reason: format!("not a readable HDF5 file: {e}") })?;
        Ok(H5 { file, path: path.into() })
    }

    /// Open an existing `path` for reading and writing.
    pub fn open_rw(path: &Path) -> Result<H5, NlbError> {
        let file =
            hdf5::File::open_rw(path).map_err(|e| NlbError::Open { file: path.into(), reason: e.to_string() })?;
        Ok(H5 { file, path: path.into() })
    }

    /// Create (truncate) `path` for writing.
    pub fn create(path: &Path) -> Result<H5, NlbError> {
        let file = hdf5::File::create(path).map_err(|e| NlbError::Open { file: path.into(), reason: e.to_string() })?;
        Ok(H5 { file, path: path.into() })
    }

    /// The file's name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `name` (an HDF5 path) exists.
    pub fn has(&self, name: &str) -> bool {
        let mut at = String::new();
        for part in name.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            if !self.file.link_exists(&at) {
                return false;
            }
        }
        true
    }

    /// The top-level groups' names.
    pub fn groups(&self) -> Vec<String> {
        self.file
            .groups()
            .map(|g| g.iter().map(|g| g.name().trim_start_matches('/').to_string()).collect())
            .unwrap_or_default()
    }

    fn io(&self, name: &str, e: impl std::fmt::Display) -> NlbError {
        NlbError::Io { file: self.path.clone(), path: name.into(), reason: e.to_string() }
    }

    fn dataset(&self, name: &str, expected: &str) -> Result<hdf5::Dataset, NlbError> {
        if !self.has(name) {
            return Err(NlbError::Missing { file: self.path.clone(), path: name.into(), expected: expected.into() });
        }
        self.file.dataset(name).map_err(|e| self.io(name, e))
    }

    fn check_shape(&self, name: &str, found: &[usize], dims: &[Dim]) -> Result<(), NlbError> {
        let fits = found.len() == dims.len()
            && found.iter().zip(dims).all(|(f, d)| match d {
                Dim::Is(n) => f == n,
                Dim::Any => true,
            });
        if fits {
            Ok(())
        } else {
            Err(NlbError::Shape {
                file: self.path.clone(),
                path: name.into(),
                expected: describe(dims),
                found: found.to_vec(),
            })
        }
    }

    /// A numeric dataset of shape `dims` as f64 (any stored float or integer type).
    pub fn array(&self, name: &str, dims: &[Dim]) -> Result<Array, NlbError> {
        let ds = self.dataset(name, &format!("{} float32", describe(dims)))?;
        let shape = ds.shape();
        self.check_shape(name, &shape, dims)?;
        let data: Vec<f64> = match ds.read_raw::<f64>() {
            Ok(v) => v,
            Err(_) => {
                ds.read_raw::<bool>().map_err(|e| self.io(name, e))?.into_iter().map(|b| b as u8 as f64).collect()
            }
        };
        Ok(Array { shape, data })
    }

    /// [`H5::array`] when the dataset exists, `None` when it does not.
    pub fn optional(&self, name: &str, dims: &[Dim]) -> Result<Option<Array>, NlbError> {
        if self.has(name) {
            self.array(name, dims).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A variable-length int32 dataset (condition indices), one list per element.
    pub fn vlen_i32(&self, name: &str) -> Result<Option<Vec<Vec<i32>>>, NlbError> {
        if !self.has(name) {
            return Ok(None);
        }
        let ds = self.dataset(name, "[conditions] vlen int32")?;
        let v = ds.read_raw::<VarLenArray<i32>>().map_err(|e| self.io(name, e))?;
        Ok(Some(v.iter().map(|x| x.as_slice().to_vec()).collect()))
    }

    /// Make sure group `name` exists.
    pub fn group(&self, name: &str) -> Result<(), NlbError> {
        if !self.file.link_exists(name) {
            self.file.create_group(name).map_err(|e| self.io(name, e))?;
        }
        Ok(())
    }

    /// Write `data` of `shape` as a gzip-compressed float32 dataset (as `nlb_tools` does).
    pub fn write_f32(&self, name: &str, shape: &[usize], data: &[f32]) -> Result<(), NlbError> {
        let ds = self
            .file
            .new_dataset::<f32>()
            .shape(shape.to_vec())
            .chunk(shape.iter().map(|&d| d.max(1)).collect::<Vec<_>>())
            .deflate(4)
            .create(name)
            .map_err(|e| self.io(name, e))?;
        ds.write_raw(data).map_err(|e| self.io(name, e))
    }

    /// Flush and close.
    pub fn close(self) -> Result<(), NlbError> {
        let H5 { file, path } = self;
        file.flush().map_err(|e| NlbError::Io { file: path.clone(), path: "/".into(), reason: e.to_string() })?;
        file.close().map_err(|e| NlbError::Io { file: path, path: "/".into(), reason: e.to_string() })
    }
}
