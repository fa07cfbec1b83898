//! Checkpoints: exact resume, PyTorch-named interop, clear errors on bad files.

#[path = "../../core/tests/common/mod.rs"]
mod common;

use lflow_host::data::lorenz::{generate, LorenzConfig};
use lflow_host::train::checkpoint::{load, load_params, save, Checkpoint, CheckpointError};
use lflow_host::train::cpu::CpuBackend;
use lflow_host::train::params::PARAMS;
use lflow_host::train::train_config::TrainConfig;
use lflow_host::train::trainer::Trainer;
use lflow_host::{Mode, ModelConfig};
use safetensors::tensor::{Dtype, TensorView};

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lflow-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn setup() -> (lflow_host::data::Dataset, ModelConfig, TrainConfig) {
    let data = generate(&LorenzConfig {
        trials: 60,
        eval_trials: 10,
        observed: 10,
        forward: 3,
        held_in: 8,
        held_out: 2,
        seed: 1,
        ..LorenzConfig::default()
    });
    let model = ModelConfig {
        n_in: 8,
        n_out: 10,
        hidden: 8,
        ff: 16,
        gamma: 0.55,
        eps: 0.01,
        mode: Mode::Streaming { window: 4 },
        anchor_every: 0,
    };
    let train = TrainConfig { batch_size: 16, plateau_patience: 0, ramp_epochs: 3, seed: 9, ..TrainConfig::default() };
    (data, model, train)
}

#[test]
fn interrupted_run_resumes_exactly() {
    let (data, model, train) = setup();
    let mut straight = Trainer::new(model.clone(), train.clone(), CpuBackend::new(2).unwrap());
    for _ in 0..5 {
        straight.epoch(&data).unwrap();
    }

    let mut first = Trainer::new(model.clone(), train.clone(), CpuBackend::new(2).unwrap());
    for _ in 0..2 {
        first.epoch(&data).unwrap();
    }
    let path = tmp("resume.safetensors");
    save(&path, &Checkpoint { model: model.clone(), train: train.clone(), state: first.state.clone() }, true).unwrap();
    drop(first);
    let c = load(&path).unwrap();
    assert_eq!((c.model.clone(), c.train.clone()), (model, train));
    let mut resumed = Trainer::resume(c.model, c.train, c.state, CpuBackend::new(2).unwrap());
    for _ in 2..5 {
        resumed.epoch(&data).unwrap();
    }
    assert_eq!(resumed.state, straight.state, "resumed run differs from the uninterrupted one");
}

#[test]
fn pytorch_state_dict_loads_and_ours_uses_pytorch_names() {
    // A state_dict as PyTorch's safetensors writes it: plain names, no metadata.
    let g = common::Golden::load("paper_random_potential");
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = PARAMS
        .iter()
        .map(|t| {
            let key = format!("param.{}", t.pytorch_name());
            let bytes = g.get(&key).iter().flat_map(|x| x.to_le_bytes()).collect();
            (t.pytorch_name().to_string(), g.shape(&key).to_vec(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        owned.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    let path = tmp("torch.safetensors");
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let (cfg, params) = load_params(&path).unwrap();
    assert_eq!((cfg.n_in, cfg.n_out, cfg.hidden, cfg.ff), (5, 7, 8, 512));
    for t in PARAMS {
        assert_eq!(params.get(t), g.get(&format!("param.{}", t.pytorch_name())));
    }
    // Ours for the same model, read back as a plain safetensors file: the
    // authors' names and shapes (the fixture's, recorded from PyTorch), f32,
    // and Adam's moments as `optimizer.exp_avg.<name>` / `optimizer.exp_avg_sq.<name>`.
    let (_, _, train) = setup();
    let lorenz = LorenzConfig {
        trials: 20,
        eval_trials: 4,
        observed: 6,
        forward: 2,
        held_in: 5,
        held_out: 2,
        ..LorenzConfig::default()
    };
    let model = cfg;
    let mut trainer = Trainer::new(model.clone(), train.clone(), CpuBackend::new(1).unwrap());
    trainer.epoch(&generate(&lorenz)).unwrap(); // non-zero moments
    let state = trainer.state.clone();
    let ours = tmp("ours.safetensors");
    save(&ours, &Checkpoint { model, train, state: state.clone() }, true).unwrap();
    let bytes = std::fs::read(&ours).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let values = |v: &TensorView<'_>| -> Vec<f32> {
        v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    for t in PARAMS {
        let name = t.pytorch_name();
        let want_shape = g.shape(&format!("param.{name}"));
        for (key, want) in [
            (name.to_string(), state.params.get(t)),
            (format!("optimizer.exp_avg.{name}"), state.adam.m.get(t)),
            (format!("optimizer.exp_avg_sq.{name}"), state.adam.v.get(t)),
        ] {
            let v = st.tensor(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!((v.dtype(), v.shape()), (Dtype::F32, want_shape), "{key}");
            assert_eq!(values(&v), want, "{key}");
        }
    }
    assert!(state.adam.m.data.iter().any(|x| *x != 0.0));
    assert_eq!(st.len(), 3 * PARAMS.len(), "no tensor besides the parameters and the two moments");
}

/// Which shape a tensor is written with (`None`: leave it out).
type Reshape = dyn Fn(&str, Vec<usize>) -> Option<Vec<usize>>;

#[test]
fn truncated_or_corrupt_checkpoints_name_the_file() {
    let (_, model, train) = setup();
    let state = Trainer::new(model.clone(), train.clone(), CpuBackend::new(1).unwrap()).state;
    let path = tmp("good.safetensors");
    save(&path, &Checkpoint { model, train, state }, true).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let truncated = tmp("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let e = load(&truncated).unwrap_err();
    assert!(matches!(e, CheckpointError::Format { .. }), "{e}");
    assert!(e.to_string().contains("truncated.safetensors"), "{e}");

    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint at all").unwrap();
    assert!(matches!(load(&garbage).unwrap_err(), CheckpointError::Format { .. }));

    // A valid file with a NaN in a parameter: named with the tensor and index.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let start = st.tensor("readout.bias").unwrap().data().as_ptr() as usize - bytes.as_ptr() as usize;
    let mut bad = bytes.clone();
    bad[start + 4..start + 8].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = tmp("nan.safetensors");
    std::fs::write(&nan, &bad).unwrap();
    let e = load(&nan).unwrap_err();
    assert!(matches!(&e, CheckpointError::NonFinite { name, index: 1, .. } if name == "readout.bias"), "{e}");

    // The same file rebuilt with one tensor left out, or one of the wrong shape.
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = meta.metadata().clone();
    let rebuild = |name: &str, edit: &Reshape| {
        let owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .filter_map(|(n, v)| edit(&n, v.shape().to_vec()).map(|shape| (n, shape, v.data().to_vec())))
            .collect();
        let views: Vec<(String, TensorView<'_>)> = owned
            .iter()
            .map(|(n, sh, b)| {
                // A reshaped tensor keeps its bytes: the shape must still cover them.
                (n.clone(), TensorView::new(Dtype::F32, sh.clone(), b).unwrap())
            })
            .collect();
        let path = tmp(name);
        std::fs::write(&path, safetensors::serialize(views, metadata.clone()).unwrap()).unwrap();
        path
    };
    let without = rebuild("missing.safetensors", &|n, sh| (n != "encoder.weight_hh").then_some(sh));
    let refused =
        |path: &std::path::Path| load(path).err().unwrap_or_else(|| panic!("{} was accepted", path.display()));
    let e = refused(&without);
    assert!(matches!(&e, CheckpointError::Missing { name, .. } if name == "encoder.weight_hh"), "{e}");
    assert!(e.to_string().contains("missing.safetensors"), "{e}");
    let moment = rebuild("no_moment.safetensors", &|n, sh| (n != "optimizer.exp_avg_sq.readout.bias").then_some(sh));
    let e = refused(&moment);
    assert!(matches!(&e, CheckpointError::Missing { name, .. } if name == "optimizer.exp_avg_sq.readout.bias"), "{e}");
    // readout.weight [10, 24] stored as [24, 10]: the same bytes, the wrong shape.
    let transposed =
        rebuild("shape.safetensors", &|n, sh| Some(if n == "readout.weight" { vec![sh[1], sh[0]] } else { sh }));
    let e = refused(&transposed);
    assert!(matches!(&e, CheckpointError::Shape { name, .. } if name == "readout.weight"), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("shape.safetensors") && msg.contains("[10, 24]"), "{msg}");

    let missing = tmp("absent.safetensors");
    assert!(matches!(load(&missing).unwrap_err(), CheckpointError::Io { .. }));
    let folder = tmp("good.safetensors");
    let left: Vec<_> = std::fs::read_dir(folder.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("good.safetensors.partial"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}
