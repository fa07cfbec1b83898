//! Steps captured as CUDA graphs: the first training step of each batch shape
//! (and model, dropout and coordinated-dropout rate), and likewise the first
//! pass of each kind on an uploaded batch, is recorded once; every later one
//! replays it with one call. What changes between
//! steps lives in device memory (`super::scalars`), so the recorded launch
//! arguments stay right. A graph names buffers by address: whenever the
//! backend frees one, it forgets every graph.

use super::arena::Shape;
use super::gpu::{DevPtr, Gpu, GraphId};
use crate::config::ModelConfig;

/// Set to `0` to launch every kernel of a step one by one instead (to tell a
/// graph problem from a kernel problem on a new GPU or driver).
pub const GRAPHS_ENV: &str = "LFLOW_CUDA_GRAPHS";

/// What a captured step depends on beyond the device memory it reads.
#[derive(Clone, Debug, PartialEq)]
pub struct StepKey {
    /// The model's sizes and options.
    pub model: ModelConfig,
    /// The batch's shape.
    pub shape: Shape,
    /// Dropout rate, as bits.
    pub dropout: u32,
    /// With the backward pass.
    pub grad: bool,
    /// With the loss's gradient mask.
    pub has_mask: bool,
    /// A training step (batch assembly and Adam included): where the
    /// resident spikes, the epoch's order and its seeds are, and coordinated
    /// dropout's keep rate as bits when on; `None` for a pass on an uploaded batch.
    pub train: Option<([DevPtr; 3], Option<u32>)>,
}

/// The graphs captured so far, and how often they ran.
pub struct StepGraphs {
    /// Whether training steps are captured and replayed at all.
    pub enabled: bool,
    held: Vec<(StepKey, GraphId, usize)>,
    /// Graphs captured.
    pub captures: usize,
    /// Graph replays.
    pub replays: usize,
    /// Why capture failed and graphs were turned off, if they were.
    pub fallback: Option<String>,
}

impl StepGraphs {
    /// On unless [`GRAPHS_ENV`] is `0`.
    pub fn from_env() -> StepGraphs {
        let enabled = std::env::var(GRAPHS_ENV).map_or(true, |v| v.trim() != "0");
        StepGraphs { enabled, held: Vec::new(), captures: 0, replays: 0, fallback: None }
    }

    /// The graph of `key` and its kernel launches and GEMMs, if captured.
    pub fn find(&self, key: &StepKey) -> Option<(GraphId, usize)> {
        self.held.iter().find(|(k, _, _)| k == key).map(|&(_, g, n)| (g, n))
    }

    /// Keep a new graph of `launches` kernel launches and GEMMs.
    pub fn insert(&mut self, key: StepKey, graph: GraphId, launches: usize) {
        self.held.push((key, graph, launches));
        self.captures += 1;
    }

    /// Capture failed with `why`: turn graphs off for good on this backend,
    /// and say so once on stderr.
    pub fn give_up(&mut self, gpu: &mut dyn Gpu, why: &dyn std::error::Error) {
        self.forget(gpu);
        self.enabled = false;
        let mut text = why.to_string();
        let mut source = why.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        eprintln!("lflow: CUDA graph capture failed ({text}); launching each kernel instead ({GRAPHS_ENV}=0 skips the attempt)");
        self.fallback = Some(text);
    }

    /// Drop every graph (a buffer they name is about to be freed).
    pub fn forget(&mut self, gpu: &mut dyn Gpu) {
        for (_, g, _) in self.held.drain(..) {
            gpu.drop_graph(g);
        }
    }
}
