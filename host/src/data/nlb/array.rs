//! Arrays as the benchmark's HDF5 files hold them.

/// A row-major array: `shape` and values (NaN marks missing data, as in the files).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f64>,
}

impl Array {
    /// An array of `shape` from f32 values.
    pub fn from_f32(shape: Vec<usize>, data: &[f32]) -> Array {
        Array { shape, data: data.iter().map(|&x| x as f64).collect() }
    }

    /// Size of dimension `i` (0 past the end).
    pub fn dim(&self, i: usize) -> usize {
        self.shape.get(i).copied().unwrap_or(0)
    }

    /// The last dimension (the channels of a `[trials, bins, channels]` array).
    pub fn channels(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// `[a, b, x]` and `[a, b, y]` joined along the last dimension (`np.dstack`).
    pub fn join(&self, other: &Array) -> Array {
        let (x, y) = (self.channels(), other.channels());
        let rows = self.data.len() / x.max(1);
        let mut data = Vec::with_capacity(self.data.len() + other.data.len());
        for r in 0..rows {
            data.extend_from_slice(&self.data[r * x..(r + 1) * x]);
            data.extend_from_slice(&other.data[r * y..(r + 1) * y]);
        }
        let mut shape = self.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = x + y;
        }
        Array { shape, data }
    }
}
