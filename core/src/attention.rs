//! Causal 2-head self-attention for one query per bin over a ring of the last
//! `W` keys and values (MODEL.md sections 5 and 9).
//!
//! Bin `t` attends to bins `max(0, t - W + 1) ..= t`: the ring holds exactly
//! those keys and values once this bin's are pushed. Scores are
//! `q_h . k_h / sqrt(D / 2)` per head, softmax over the ring.

use crate::kernels;
use crate::linear::Linear;
use crate::math::{exp, sqrt};
use heapless::Deque;

/// Attention heads (PyTorch `nhead`).
pub const HEADS: usize = 2;

/// Where one bin's key and value are kept for the next `W - 1` queries.
///
/// `keys()` and `values()` are the held entries flattened (`[len, D]` in all),
/// oldest first, as two slices (the ring's wrap point between them): the order
/// of the softmax sums, so two stores give bit-identical attention.
pub trait KvStore {
    /// Push one bin's key and value `[D]`, evicting the oldest when full.
    fn push(&mut self, key: &[f32], value: &[f32]);
    /// Held keys, oldest first, `[len, D]` flattened over the two slices.
    fn keys(&self) -> (&[f32], &[f32]);
    /// Held values, in the keys' order.
    fn values(&self) -> (&[f32], &[f32]);
    /// Forget every entry.
    fn clear(&mut self);
}

/// The last `W` keys and values, each `[D]`, in two `heapless::Deque`s kept
/// in step (the oldest entry leaves when a `W + 1`-th arrives).
///
/// A `Deque` rather than `heapless::HistoryBuf`: `HistoryBuf::write` and
/// `as_slices` index with bounds checks the optimiser cannot remove, a panic
/// path the firmware's `panic-never` build refuses to link.
#[derive(Clone, Debug)]
pub struct KvRing<const D: usize, const W: usize> {
    keys: Deque<[f32; D], W>,
    values: Deque<[f32; D], W>,
}

impl<const D: usize, const W: usize> Default for KvRing<D, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, const W: usize> KvRing<D, W> {
    /// An empty ring. `W` must be at least 1, checked at compile time:
    ///
    /// ```compile_fail
    /// let ring = lflow_core::attention::KvRing::<4, 0>::new();
    /// ```
    pub const fn new() -> Self {
        const { assert!(W > 0, "a KV ring holds at least one bin (W > 0)") };
        KvRing { keys: Deque::new(), values: Deque::new() }
    }

    /// Entries held (at most `W`).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing has been pushed since the last clear.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn flat<'s, const D: usize>((a, b): (&'s [[f32; D]], &'s [[f32; D]])) -> (&'s [f32], &'s [f32]) {
    (a.as_flattened(), b.as_flattened())
}

impl<const D: usize, const W: usize> KvStore for KvRing<D, W> {
    fn push(&mut self, key: &[f32], value: &[f32]) {
        if let (Ok(k), Ok(v)) = (<[f32; D]>::try_from(key), <[f32; D]>::try_from(value)) {
            if self.keys.is_full() {
                self.keys.pop_front();
                self.values.pop_front();
            }
            // Room was just made: neither push can fail.
            let _ = self.keys.push_back(k);
            let _ = self.values.push_back(v);
        }
    }

    fn keys(&self) -> (&[f32], &[f32]) {
        flat(self.keys.as_slices())
    }

    fn values(&self) -> (&[f32], &[f32]) {
        flat(self.values.as_slices())
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }
}

/// A [`KvStore`] of run-time width and window (host-side decoding of any blob),
/// with [`KvRing`]'s order.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct DynKvRing {
    keys: std::vec::Vec<f32>,
    values: std::vec::Vec<f32>,
    width: usize,
    window: usize,
    next: usize,
    len: usize,
}

#[cfg(feature = "std")]
impl DynKvRing {
    /// An empty ring of `window` entries of `width` values each.
    pub fn new(width: usize, window: usize) -> Self {
        let n = width * window;
        DynKvRing { keys: std::vec![0.0; n], values: std::vec![0.0; n], width, window, next: 0, len: 0 }
    }

    /// The held entries of `buf`, oldest first.
    fn ordered<'s>(&self, buf: &'s [f32]) -> (&'s [f32], &'s [f32]) {
        if self.len < self.window {
            (buf.get(..self.len * self.width).unwrap_or(&[]), &[])
        } else {
            let (new, old) = buf.split_at((self.next * self.width).min(buf.len()));
            (old, new)
        }
    }
}

#[cfg(feature = "std")]
impl KvStore for DynKvRing {
    fn push(&mut self, key: &[f32], value: &[f32]) {
        let span = self.next * self.width..(self.next + 1) * self.width;
        if let (Some(k), Some(v)) = (self.keys.get_mut(span.clone()), self.values.get_mut(span)) {
            if k.len() == key.len() && v.len() == value.len() {
                k.copy_from_slice(key);
                v.copy_from_slice(value);
                self.next = (self.next + 1) % self.window.max(1);
                self.len = (self.len + 1).min(self.window);
            }
        }
    }

    fn keys(&self) -> (&[f32], &[f32]) {
        self.ordered(&self.keys)
    }

    fn values(&self) -> (&[f32], &[f32]) {
        self.ordered(&self.values)
    }

    fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
    }
}

/// `in_proj` (`[3D, D]`, rows q, k, v) and `out_proj` (`[D, D]`).
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    /// `in_proj_weight`, `in_proj_bias`.
    pub in_proj: Linear<'a>,
    /// `out_proj.weight`, `out_proj.bias`.
    pub out_proj: Linear<'a>,
}

/// Scratch of one attention query.
#[derive(Clone, Debug)]
pub struct AttentionScratch<const D: usize, const W: usize> {
    /// `[q, k, v]`, each `[D]`.
    pub qkv: [[f32; D]; 3],
    /// Softmax weights of one head over the ring.
    pub scores: [f32; W],
    /// Concatenated head outputs `[D]`.
    pub context: [f32; D],
}

impl<const D: usize, const W: usize> AttentionScratch<D, W> {
    /// Zeroed scratch.
    pub const fn new() -> Self {
        AttentionScratch { qkv: [[0.0; D]; 3], scores: [0.0; W], context: [0.0; D] }
    }
}

impl<const D: usize, const W: usize> Default for AttentionScratch<D, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl Attention<'_> {
    /// Project `l [D]` into `qkv [3D]`, push its key and value into `ring`,
    /// attend (`scores [W]` and `context [D]` are scratch), and write the
    /// attention output (after `out_proj`) to `out [D]`.
    pub fn step(
        &self,
        l: &[f32],
        ring: &mut impl KvStore,
        qkv: &mut [f32],
        scores: &mut [f32],
        context: &mut [f32],
        out: &mut [f32],
    ) {
        self.in_proj.apply(l, qkv);
        let d = l.len();
        let (q, kv) = qkv.split_at(d.min(qkv.len()));
        let (k, v) = kv.split_at(d.min(kv.len()));
        ring.push(k, v);
        attend(q, ring, scores, context);
        self.out_proj.apply(context, out);
    }
}

/// Multi-head attention of one query `q [D]` over the ring: `context [D]`,
/// heads concatenated; `scores` (at least the ring's length) is scratch.
///
/// Keys and values go four at a time through the f32 kernels
/// ([`kernels::dots4`], [`kernels::accumulate4`]: fused multiply-adds, each
/// sum in key order), the last group padded with its last key (scores
/// dropped) and zero weights. Host and device run this same code.
pub fn attend(q: &[f32], ring: &impl KvStore, scores: &mut [f32], context: &mut [f32]) {
    let d = q.len();
    let head_dim = (d / HEADS).max(1);
    let scale = 1.0 / sqrt(head_dim as f32);
    let ((k0, k1), (v0, v1)) = (ring.keys(), ring.values());
    let width = d.max(1);
    let held = ((k0.len() + k1.len()) / width).min(scores.len());
    context.fill(0.0);
    for (h, (q_h, ctx_h)) in q.chunks_exact(head_dim).zip(context.chunks_exact_mut(head_dim)).enumerate() {
        let span = h * head_dim..(h + 1) * head_dim;
        let mut keys = k0.chunks_exact(width).chain(k1.chunks_exact(width)).map(|k| head_of(k, &span));
        let mut max = f32::NEG_INFINITY;
        for group in scores.get_mut(..held).unwrap_or(&mut []).chunks_mut(4) {
            let rows = next_four(&mut keys, group.len());
            for (s, dot) in group.iter_mut().zip(kernels::dots4(rows, q_h)) {
                *s = dot * scale;
                max = max.max(*s);
            }
        }
        let mut total = 0.0f32;
        for s in scores.iter_mut().take(held) {
            *s = exp(*s - max);
            total += *s;
        }
        let inv = if total > 0.0 { 1.0 / total } else { 0.0 };
        let mut values = v0.chunks_exact(width).chain(v1.chunks_exact(width)).map(|v| head_of(v, &span));
        for group in scores.get_mut(..held).unwrap_or(&mut []).chunks_mut(4) {
            let mut w = [0.0f32; 4];
            for (wi, s) in w.iter_mut().zip(group.iter()) {
                *wi = s * inv;
            }
            kernels::accumulate4(ctx_h, w, next_four(&mut values, group.len()));
        }
    }
}

/// One head's slice of a key or value entry.
fn head_of<'s>(entry: &'s [f32], span: &core::ops::Range<usize>) -> &'s [f32] {
    entry.get(span.clone()).unwrap_or(&[])
}

/// The next `n` (1 to 4) entries, the last repeated to make four.
fn next_four<'s>(entries: &mut impl Iterator<Item = &'s [f32]>, n: usize) -> [&'s [f32]; 4] {
    let mut rows: [&[f32]; 4] = [&[]; 4];
    let mut last: &[f32] = &[];
    for (i, row) in rows.iter_mut().enumerate() {
        if i < n {
            last = entries.next().unwrap_or(&[]);
        }
        *row = last;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const D: usize = 6;
    const W: usize = 3;

    /// Full causal softmax attention in f64 over the last `W` of `history`.
    fn reference(q: &[f32], history: &[([f32; D], [f32; D])]) -> Vec<f64> {
        let start = history.len().saturating_sub(W);
        let window = &history[start..];
        let hd = D / HEADS;
        let mut out = std::vec![0.0f64; D];
        for h in 0..HEADS {
            let r = h * hd..(h + 1) * hd;
            let s: Vec<f64> = window
                .iter()
                .map(|(k, _)| r.clone().map(|i| q[i] as f64 * k[i] as f64).sum::<f64>() / (hd as f64).sqrt())
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for (sj, (_, v)) in s.iter().zip(window) {
                for i in r.clone() {
                    out[i] += (sj - m).exp() / z * v[i] as f64;
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn ring_attention_matches_full_causal_window(
            history in proptest::collection::vec(
                (proptest::array::uniform6(-3.0f32..3.0), proptest::array::uniform6(-3.0f32..3.0)), 1..9),
            q in proptest::array::uniform6(-3.0f32..3.0),
        ) {
            let mut ring = KvRing::<D, W>::new();
            for (k, v) in &history {
                ring.push(k, v);
            }
            prop_assert_eq!(ring.len(), history.len().min(W));
            let mut scores = [0.0; W];
            let mut ctx = [0.0; D];
            attend(&q, &ring, &mut scores, &mut ctx);
            let want = reference(&q, &history);
            for (g, w) in ctx.iter().zip(&want) {
                // Softmax weights carry exp's error; values are at most 3 in size.
                let tol = (1e-5 + 10.0 * crate::math::TEST_SLACK) * (1.0 + w.abs());
                prop_assert!((*g as f64 - w).abs() < tol, "{g} vs {w}");
            }
        }
    }

    /// A plain array ring written out independently: `next` is the slot of the
    /// next push, `len` the entries held.
    struct NaiveRing<const D: usize, const W: usize> {
        keys: [[f32; D]; W],
        values: [[f32; D]; W],
        next: usize,
        len: usize,
    }

    impl<const D: usize, const W: usize> NaiveRing<D, W> {
        fn new() -> Self {
            NaiveRing { keys: [[0.0; D]; W], values: [[0.0; D]; W], next: 0, len: 0 }
        }

        fn push(&mut self, key: &[f32], value: &[f32]) {
            if key.len() == D && value.len() == D {
                self.keys[self.next].copy_from_slice(key);
                self.values[self.next].copy_from_slice(value);
                self.next = (self.next + 1) % W;
                self.len = (self.len + 1).min(W);
            }
        }

        /// Held entries of `buf`, oldest first, flattened.
        fn ordered(&self, buf: &[[f32; D]; W]) -> Vec<f32> {
            (0..self.len).flat_map(|i| buf[(self.next + W - self.len + i) % W]).collect()
        }
    }

    /// The naive ring's order as one contiguous slice: a store of another split point.
    struct Contiguous(Vec<f32>, Vec<f32>);

    impl KvStore for Contiguous {
        fn push(&mut self, _: &[f32], _: &[f32]) {}
        fn keys(&self) -> (&[f32], &[f32]) {
            (&self.0, &[])
        }
        fn values(&self) -> (&[f32], &[f32]) {
            (&self.1, &[])
        }
        fn clear(&mut self) {}
    }

    /// One operation on a ring: push `len` values starting at `seed` (a wrong
    /// `len` is ignored by both rings), or clear.
    fn ops() -> impl Strategy<Value = Vec<(u8, usize, f32)>> {
        proptest::collection::vec((0u8..16, 0usize..8, -3.0f32..3.0), 0..200)
    }

    fn check_against_naive<const D: usize, const W: usize>(ops: &[(u8, usize, f32)]) -> Result<(), TestCaseError> {
        let (mut ring, mut naive) = (KvRing::<D, W>::new(), NaiveRing::<D, W>::new());
        let q: Vec<f32> = (0..D).map(|i| (i as f32 * 0.37).sin()).collect();
        for (step, &(op, len, seed)) in ops.iter().enumerate() {
            if op == 0 {
                ring.clear();
                naive = NaiveRing::new();
            } else {
                let len = if op < 3 { len } else { D };
                let key: Vec<f32> = (0..len).map(|i| seed + i as f32 + step as f32 * 0.01).collect();
                let value: Vec<f32> = key.iter().map(|k| -k * 0.5).collect();
                ring.push(&key, &value);
                naive.push(&key, &value);
            }
            prop_assert_eq!(ring.len(), naive.len);
            let (k0, k1) = ring.keys();
            let (v0, v1) = ring.values();
            prop_assert_eq!([k0, k1].concat(), naive.ordered(&naive.keys));
            prop_assert_eq!([v0, v1].concat(), naive.ordered(&naive.values));
            // The attention over both is bit-identical, wherever the ring wraps.
            let flat = Contiguous(naive.ordered(&naive.keys), naive.ordered(&naive.values));
            let (mut a, mut b) = ([0.0f32; D], [0.0f32; D]);
            attend(&q, &ring, &mut [0.0; W], &mut a);
            attend(&q, &flat, &mut [0.0; W], &mut b);
            prop_assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn ring_equals_a_naive_array_ring(ops in ops()) {
            check_against_naive::<4, 1>(&ops)?;
            check_against_naive::<4, 3>(&ops)?;
            check_against_naive::<6, 5>(&ops)?;
            check_against_naive::<2, 7>(&ops)?;
        }
    }

    #[test]
    fn clear_empties_the_ring() {
        let mut ring = KvRing::<2, 2>::new();
        ring.push(&[1.0, 2.0], &[3.0, 4.0]);
        assert_eq!(ring.len(), 1);
        ring.clear();
        assert!(ring.is_empty());
        let mut ctx = [9.0; 2];
        attend(&[1.0, 1.0], &ring, &mut [0.0; 2], &mut ctx);
        assert_eq!(ctx, [0.0, 0.0]);
    }
}
