//! The decoder's feed-forward block: `W2 relu(W1 y + b1) + b2` (MODEL.md section 5).

use crate::linear::Linear;

/// `linear1 [FF, D]` and `linear2 [D, FF]`.
#[derive(Clone, Copy, Debug)]
pub struct FeedForward<'a> {
    /// `decoder.linear1`.
    pub linear1: Linear<'a>,
    /// `decoder.linear2`.
    pub linear2: Linear<'a>,
}

impl FeedForward<'_> {
    /// `out [D] = W2 relu(W1 y + b1) + b2`; `hidden [FF]` is scratch.
    pub fn apply(&self, y: &[f32], hidden: &mut [f32], out: &mut [f32]) {
        self.linear1.apply(y, hidden);
        for v in hidden.iter_mut() {
            *v = v.max(0.0);
        }
        self.linear2.apply(hidden, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Matrix, MatrixData};

    #[test]
    fn matches_hand_computation() {
        // W1 = [[1, -1], [2, 0], [-1, -1]], b1 = [0, -1, 0.5]; W2 = [[1, 1, 1], [0, 2, -1]], b2 = [0.1, 0].
        let (w1, b1) = ([1.0, -1.0, 2.0, 0.0, -1.0, -1.0], [0.0, -1.0, 0.5]);
        let (w2, b2) = ([1.0, 1.0, 1.0, 0.0, 2.0, -1.0], [0.1, 0.0]);
        let ff = FeedForward {
            linear1: Linear { weight: Matrix::new(3, 2, MatrixData::F32(&w1)).unwrap(), bias: &b1 },
            linear2: Linear { weight: Matrix::new(2, 3, MatrixData::F32(&w2)).unwrap(), bias: &b2 },
        };
        let mut hidden = [0.0; 3];
        let mut out = [0.0; 2];
        ff.apply(&[3.0, 1.0], &mut hidden, &mut out);
        // hidden = relu([2, 5, -3.5]) = [2, 5, 0]
        assert_eq!(hidden, [2.0, 5.0, 0.0]);
        assert_eq!(out, [7.1, 10.0]);
    }
}
