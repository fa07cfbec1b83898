//! `lflow nlb import`: the tensor files `nlb_tools.make_tensors` writes
//! (`train_input.h5`, `eval_input.h5` and, in the val phase, the eval target
//! file) into one data set: the benchmark's train trials first, then its
//! eval trials; observed then forward bins; held-in then held-out neurons.

use super::h5::{Dim, H5};
use super::layout::read_target;
use super::score::Array;
use super::stored::{NlbData, NlbMeta};
use super::{names, NlbError};
use crate::data::{Dataset, Split};
use std::path::{Path, PathBuf};

/// Which benchmark phase the files are from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Eval trials with their held-out and forward targets (`eval_target.h5`).
    Val,
    /// Eval trials without targets (scored by EvalAI only).
    Test,
}

/// What to import.
#[derive(Clone, Debug)]
pub struct ImportSpec {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// Benchmark dataset (`mc_maze_small`).
    pub dataset: String,
    /// 5 or 20.
    pub bin_ms: u32,
    /// Val or test.
    pub phase: Phase,
    /// Every `valid_every`-th train trial (the last of each run of that many)
    /// becomes a validation trial for early stopping (0: none).
    pub valid_every: usize,
}

/// The data set and what the import had to change.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The data set, with its NLB side.
    pub data: Dataset,
    /// Spike counts that were NaN (outside a trial's data) and became 0 in the
    /// model's input and training targets (the benchmark's own arrays keep them).
    pub nan_counts: usize,
    /// The eval target file read, if any.
    pub target_file: Option<PathBuf>,
}

/// The eval target file of a folder: `eval_target.h5`, or `target_data.h5` (nlb_tools' default name).
fn target_file(dir: &Path) -> PathBuf {
    let named = dir.join("eval_target.h5");
    if named.exists() || !dir.join("target_data.h5").exists() {
        named
    } else {
        dir.join("target_data.h5")
    }
}

/// Spike counts must be non-negative whole numbers; NaN only where the
/// benchmark pads windows with it (dmfc_rsg's eval windows, `allow_nan`).
fn check_counts(f: &H5, name: &str, a: &Array, allow_nan: bool) -> Result<(), NlbError> {
    for (i, &x) in a.data.iter().enumerate() {
        if x.is_nan() && !allow_nan {
            return Err(NlbError::Value {
                file: f.path().into(),
                path: name.into(),
                index: i,
                value: x,
                what: "a NaN spike count (only dmfc_rsg pads its windows with NaN)",
            });
        }
        if !x.is_nan() && (x < 0.0 || x.fract() != 0.0 || x.is_infinite()) {
            return Err(NlbError::Value {
                file: f.path().into(),
                path: name.into(),
                index: i,
                value: x,
                what: "not a spike count (a non-negative whole number)",
            });
        }
    }
    Ok(())
}

/// Read the files and build the data set.
pub fn import(spec: &ImportSpec) -> Result<Imported, NlbError> {
    if !names::is_dataset(&spec.dataset) {
        return Err(NlbError::Usage(format!(
            "--dataset {}: not a benchmark dataset (one of {})",
            spec.dataset,
            names::DATASETS.join(", ")
        )));
    }
    if spec.bin_ms != 5 && spec.bin_ms != 20 {
        return Err(NlbError::Usage(format!("--bin-ms {}: the benchmark bins at 5 or 20 ms", spec.bin_ms)));
    }
    let train = H5::open(&spec.dir.join("train_input.h5"))?;
    let padded = spec.dataset == "dmfc_rsg";
    let any3 = [Dim::Any, Dim::Any, Dim::Any];
    let tr_in = train.array("train_spikes_heldin", &any3)?;
    check_counts(&train, "train_spikes_heldin", &tr_in, padded)?;
    let (r, t, ni) = (tr_in.dim(0), tr_in.dim(1), tr_in.dim(2));
    let tr_out = train.array("train_spikes_heldout", &[Dim::Is(r), Dim::Is(t), Dim::Any])?;
    let no = tr_out.dim(2);
    let fwd_hint = "[R, Tf, _] float32 (make_train_input_tensors(..., include_forward_pred=True))";
    if !train.has("train_spikes_heldin_forward") {
        return Err(NlbError::Missing {
            file: train.path().into(),
            path: "train_spikes_heldin_forward".into(),
            expected: fwd_hint.into(),
        });
    }
    let tr_in_f = train.array("train_spikes_heldin_forward", &[Dim::Is(r), Dim::Any, Dim::Is(ni)])?;
    let tf = tr_in_f.dim(1);
    let tr_out_f = train.array("train_spikes_heldout_forward", &[Dim::Is(r), Dim::Is(tf), Dim::Is(no)])?;
    for (name, a) in [
        ("train_spikes_heldout", &tr_out),
        ("train_spikes_heldin_forward", &tr_in_f),
        ("train_spikes_heldout_forward", &tr_out_f),
    ] {
        check_counts(&train, name, a, padded)?;
    }
    let eval = H5::open(&spec.dir.join("eval_input.h5"))?;
    let ev_in = eval.array("eval_spikes_heldin", &[Dim::Any, Dim::Is(t), Dim::Is(ni)])?;
    let e = ev_in.dim(0);
    check_counts(&eval, "eval_spikes_heldin", &ev_in, padded)?;
    let ev_out_input = eval.optional("eval_spikes_heldout", &[Dim::Is(e), Dim::Is(t), Dim::Is(no)])?;
    let (target, target_path) = match spec.phase {
        Phase::Test => (None, None),
        Phase::Val => {
            let path = target_file(&spec.dir);
            let f = H5::open(&path)?;
            let group = names::group(&spec.dataset, spec.bin_ms);
            if !f.has(&group) {
                return Err(NlbError::Missing {
                    file: path,
                    path: group,
                    expected: format!("a group of the eval targets of {} at {} ms", spec.dataset, spec.bin_ms),
                });
            }
            let target = read_target(&f, &group)?;
            let shape = |a: &Array, what: &str, want: [usize; 3]| -> Result<(), NlbError> {
                if a.shape == want {
                    Ok(())
                } else {
                    Err(NlbError::Shape {
                        file: path.clone(),
                        path: format!("{group}/{what}"),
                        expected: format!("{want:?} (the trials and neurons of the input files)"),
                        found: a.shape.clone(),
                    })
                }
            };
            shape(&target.eval_spikes_heldout, "eval_spikes_heldout", [e, t, no])?;
            if let Some(a) = &target.eval_spikes_heldin_forward {
                shape(a, "eval_spikes_heldin_forward", [e, tf, ni])?;
            }
            if let Some(a) = &target.eval_spikes_heldout_forward {
                shape(a, "eval_spikes_heldout_forward", [e, tf, no])?;
            }
            if let Some(b) = &target.train_behavior {
                if b.dim(0) != r {
                    return Err(NlbError::Shape {
                        file: path.clone(),
                        path: format!("{group}/train_behavior"),
                        expected: format!("[{r}, ...] (one row per train trial of train_input.h5)"),
                        found: b.shape.clone(),
                    });
                }
            }
            (Some(target), Some(path))
        }
    };
    // The data set: [R + E, T + Tf, Ni + No], NaN counted and zeroed.
    let (n, tt) = (ni + no, t + tf);
    let mut spikes = vec![0.0f32; (r + e) * tt * n];
    let mut nan_counts = 0usize;
    let mut put = |trial: usize, bin0: usize, col0: usize, a: &Array, i: usize| {
        let (bins, cols) = (a.dim(1), a.dim(2));
        for tb in 0..bins {
            for c in 0..cols {
                let x = a.data[(i * bins + tb) * cols + c];
                spikes[(trial * tt + bin0 + tb) * n + col0 + c] = if x.is_nan() {
                    nan_counts += 1;
                    0.0
                } else {
                    x as f32
                };
            }
        }
    };
    for i in 0..r {
        put(i, 0, 0, &tr_in, i);
        put(i, 0, ni, &tr_out, i);
        put(i, t, 0, &tr_in_f, i);
        put(i, t, ni, &tr_out_f, i);
    }
    for i in 0..e {
        put(r + i, 0, 0, &ev_in, i);
        let held_out = target.as_ref().map(|tg| &tg.eval_spikes_heldout).or(ev_out_input.as_ref());
        if let Some(a) = held_out {
            put(r + i, 0, ni, a, i);
        }
        if let Some(tg) = &target {
            if let Some(a) = &tg.eval_spikes_heldin_forward {
                put(r + i, t, 0, a, i);
            }
            if let Some(a) = &tg.eval_spikes_heldout_forward {
                put(r + i, t, ni, a, i);
            }
        }
    }
    let split: Vec<Split> = (0..r + e)
        .map(|i| {
            if i >= r {
                Split::Eval
            } else if spec.valid_every > 0 && i % spec.valid_every == spec.valid_every - 1 {
                Split::Valid
            } else {
                Split::Train
            }
        })
        .collect();
    // Per-bin behaviour of every trial, when the files have all of it and it is finite.
    let (behavior, n_beh) = match (&target, train.optional("train_behavior", &[Dim::Is(r), Dim::Is(t), Dim::Any])?) {
        (Some(tg), Some(tb)) => match &tg.eval_behavior {
            Some(eb) if eb.shape.len() == 3 && eb.dim(2) == tb.dim(2) => {
                let all: Vec<f32> = tb.data.iter().chain(&eb.data).map(|&x| x as f32).collect();
                if all.iter().all(|x| x.is_finite()) {
                    (Some(all), tb.dim(2))
                } else {
                    (None, 0)
                }
            }
            _ => (None, 0),
        },
        _ => (None, 0),
    };
    let data = Dataset {
        n_in: ni,
        n_out: n,
        observed: t,
        forward: tf,
        bin_ms: spec.bin_ms as f32,
        spikes,
        true_rates: None,
        behavior,
        n_beh,
        conditions: None,
        split,
        segments: None,
        nlb: Some(NlbData {
            meta: NlbMeta {
                dataset: spec.dataset.clone(),
                bin_ms: spec.bin_ms,
                phase: if spec.phase == Phase::Val { "val".into() } else { "test".into() },
                train_trials: r,
                eval_trials: e,
            },
            target,
        }),
    };
    Ok(Imported { data, nan_counts, target_file: target_path })
}

impl std::fmt::Display for Imported {
    /// One line on what was imported (and one on NaN counts, if any).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.data;
        if let Some(meta) = d.nlb.as_ref().map(|n| &n.meta) {
            write!(
                f,
                "{} at {} ms, {} phase: {} train + {} eval trials, ",
                meta.dataset, meta.bin_ms, meta.phase, meta.train_trials, meta.eval_trials
            )?;
        }
        write!(f, "{} + {} bins, {} held-in + {} held-out neurons", d.observed, d.forward, d.n_in, d.n_out - d.n_in)?;
        if d.behavior.is_some() {
            write!(f, ", {} behaviour channels", d.n_beh)?;
        }
        if self.nan_counts > 0 {
            write!(
                f,
                "\n{} NaN spike counts (bins outside a trial's data) read as 0 by the model; the metrics keep them masked",
                self.nan_counts
            )?;
        }
        Ok(())
    }
}
