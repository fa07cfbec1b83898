//! NLB interop against the fixtures of `../shared/nlb/` (written by
//! `nlb_tools` 0.0.4 through h5py; metrics from `nlb_tools.evaluation.evaluate`).
#![cfg(feature = "nlb")]

use lflow_host::data::nlb::layout::score_files;
use std::path::PathBuf;

fn nlb_dir() -> PathBuf {
    match std::env::var_os("LFLOW_SHARED") {
        Some(p) => PathBuf::from(p).join("nlb"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/nlb"),
    }
}

#[test]
fn fixture_submissions_score_as_nlb_tools() {
    let dir = nlb_dir();
    let text = std::fs::read_to_string(dir.join("expected_metrics.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    for name in ["submission_truth", "submission_noisy"] {
        let got = score_files(&dir.join(format!("{name}.h5")), &dir.join("eval_target.h5")).unwrap();
        let want = expected[name].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: groups");
        for ((group, metrics), w) in got.iter().zip(want) {
            let w = w[group].as_object().unwrap_or_else(|| panic!("{name}: no group {group} expected"));
            // Same keys, in the file's order (serde_json's map sorts them: find them in the text).
            let mut keys: Vec<&String> = w.keys().collect();
            let section = &text[text.find(name).unwrap()..];
            keys.sort_by_key(|k| section.find(&format!("\"{k}\"")).unwrap());
            let ours: Vec<&String> = metrics.iter().map(|(k, _)| k).collect();
            assert_eq!(ours, keys, "{name}: keys and their order");
            for (k, v) in metrics {
                let want = w[k].as_f64().unwrap();
                eprintln!("{name} {group} {k}: ours {v:.12} nlb_tools {want:.12} ({:.1e})", (v - want).abs());
                assert!((v - want).abs() < 1e-10, "{name} {k}: {v} vs {want}");
            }
        }
    }
}

/// The intermediates `expected_details.json` records (re-derived with numpy and
/// sklearn): NLLs, spike totals, null rates, ridge CV scores per alpha, the
/// chosen alpha, coefficients, per-dimension and per-neuron R², eval R² per alpha.
#[test]
fn fixture_intermediates_match_expected_details() {
    use lflow_host::data::nlb::layout::{read_submission, read_target};
    use lflow_host::data::nlb::score::psth_r2_per_neuron;
    use lflow_host::metrics::{alpha_grid, poisson_nll, r2_per_output, ridge_cv, Ridge};
    let dir = nlb_dir();
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_details.json")).unwrap()).unwrap();
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let nums = |v: &serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(num).collect() };
    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 1e-10 * want.abs().max(1.0), "{what}: ours {got:.15} expected {want:.15}");
    };
    let all_close = |got: &[f64], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            close(*g, *w, &format!("{what}[{i}]"));
        }
    };
    let group = "mc_maze_small_20";
    let target = read_target(&H5::open(&dir.join("eval_target.h5")).unwrap(), group).unwrap();
    let mut checked = 0;
    for name in ["submission_truth", "submission_noisy"] {
        let want = &details[name];
        let sub = read_submission(&H5::open(&dir.join(format!("{name}.h5"))).unwrap(), group, &target).unwrap();
        // co-bps and fp-bps: the model's and the null's NLL, the spikes, the null rates.
        let nll_parts = |rates: &[f64], spikes: &[f64], neurons: usize, key: &str| {
            let w = &want[key];
            let rows = spikes.len() / neurons;
            let null: Vec<f64> =
                (0..neurons).map(|n| (0..rows).map(|r| spikes[r * neurons + n]).sum::<f64>() / rows as f64).collect();
            let null_rates: Vec<f64> = (0..spikes.len()).map(|i| null[i % neurons]).collect();
            close(poisson_nll(rates, spikes), num(&w["nll_model"]), &format!("{name} {key} nll_model"));
            close(poisson_nll(&null_rates, spikes), num(&w["nll_null"]), &format!("{name} {key} nll_null"));
            close(spikes.iter().sum(), num(&w["total_spikes"]), &format!("{name} {key} total_spikes"));
            if let Some(per) = w.get("null_rate_per_neuron") {
                all_close(&null, &nums(per), &format!("{name} {key} null_rate_per_neuron"));
            }
        };
        let heldout = &target.eval_spikes_heldout;
        nll_parts(&sub.eval_rates_heldout.data, &heldout.data, heldout.channels(), "co-bps");
        let fwd_spikes = target
            .eval_spikes_heldin_forward
            .as_ref()
            .unwrap()
            .join(target.eval_spikes_heldout_forward.as_ref().unwrap());
        let fwd_rates =
            sub.eval_rates_heldin_forward.as_ref().unwrap().join(sub.eval_rates_heldout_forward.as_ref().unwrap());
        nll_parts(&fwd_rates.data, &fwd_spikes.data, fwd_spikes.channels(), "fp-bps");
        // vel R2: the ridge's cross-validation, choice, coefficients and eval R².
        let w = &want["vel R2"];
        let train = sub.train_rates_heldin.as_ref().unwrap().join(sub.train_rates_heldout.as_ref().unwrap());
        let eval = sub.eval_rates_heldin.join(&sub.eval_rates_heldout);
        let (tb, eb) = (target.train_behavior.as_ref().unwrap(), target.eval_behavior.as_ref().unwrap());
        let (features, outputs) = (train.channels(), tb.channels());
        all_close(&alpha_grid(), &nums(&w["alpha_grid"]), "alpha_grid");
        let (model, cv) = ridge_cv(&train.data, &tb.data, features, outputs);
        all_close(&cv, &nums(&w["cv_mean_test_r2"]), &format!("{name} cv_mean_test_r2"));
        close(model.alpha, num(&w["best_alpha"]), &format!("{name} best_alpha"));
        let coef: Vec<f64> = w["ridge_coef"].as_array().unwrap().iter().flat_map(nums).collect();
        // Coefficients of around 1e3 on rates of about 0.1: compared relative to their scale.
        let scale = coef.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        for (i, (g, c)) in model.coef.iter().zip(&coef).enumerate() {
            assert!((g - c).abs() < 1e-8 * scale, "{name} ridge_coef[{i}]: {g} vs {c}");
        }
        assert_eq!(model.coef.len(), coef.len());
        all_close(&model.intercept, &nums(&w["ridge_intercept"]), &format!("{name} ridge_intercept"));
        let per_dim = r2_per_output(&eb.data, &model.predict(&eval.data), outputs);
        all_close(&per_dim, &nums(&w["r2_per_behavior_dim"]), &format!("{name} r2_per_behavior_dim"));
        let if_alpha: Vec<f64> = alpha_grid()
            .iter()
            .map(|&a| {
                let r = Ridge::fit(&train.data, &tb.data, features, outputs, a);
                r2_per_output(&eb.data, &r.predict(&eval.data), outputs).iter().sum::<f64>() / outputs as f64
            })
            .collect();
        all_close(&if_alpha, &nums(&w["eval_r2_if_alpha"]), &format!("{name} eval_r2_if_alpha"));
        // psth R2 per neuron.
        let psth = target.psth.as_ref().unwrap();
        let per_neuron = psth_r2_per_neuron(psth, &eval, target.eval_cond_idx.as_ref().unwrap(), None);
        all_close(&per_neuron, &nums(&want["psth R2"]["r2_per_neuron"]), &format!("{name} psth r2_per_neuron"));
        checked += 1;
    }
    assert_eq!(checked, 2);
}

use lflow_host::data::nlb::h5::{Dim, H5};
use lflow_host::data::nlb::import::{import, ImportSpec, Phase};
use lflow_host::data::nlb::NlbError;
use lflow_host::data::Split;
use std::path::Path;
use std::process::Command;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lflow-nlb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spec(dir: &Path, phase: Phase) -> ImportSpec {
    ImportSpec { dir: dir.into(), dataset: "mc_maze_small".into(), bin_ms: 20, phase, valid_every: 10 }
}

fn any3() -> [Dim; 3] {
    [Dim::Any, Dim::Any, Dim::Any]
}

#[test]
fn val_phase_import_keeps_every_array_in_place() {
    let dir = nlb_dir();
    let imported = import(&spec(&dir, Phase::Val)).unwrap();
    let d = &imported.data;
    let nlb = d.nlb.as_ref().unwrap();
    assert_eq!((nlb.meta.train_trials, nlb.meta.eval_trials), (24, 12));
    assert_eq!((d.observed, d.forward, d.n_in, d.n_out, d.n_beh), (35, 10, 12, 17, 2));
    assert_eq!(nlb.group(), "mc_maze_small_20");
    // Every spike of the files, where the layout says it goes.
    let train = H5::open(&dir.join("train_input.h5")).unwrap();
    let target = H5::open(&dir.join("eval_target.h5")).unwrap();
    let eval = H5::open(&dir.join("eval_input.h5")).unwrap();
    let (tt, n) = (45, 17);
    let at = |trial: usize, bin: usize, neuron: usize| d.spikes[(trial * tt + bin) * n + neuron] as f64;
    let check = |a: lflow_host::data::nlb::score::Array, trial0: usize, bin0: usize, col0: usize| {
        let (trials, bins, cols) = (a.dim(0), a.dim(1), a.dim(2));
        for i in 0..trials {
            for b in 0..bins {
                for c in 0..cols {
                    assert_eq!(at(trial0 + i, bin0 + b, col0 + c), a.data[(i * bins + b) * cols + c]);
                }
            }
        }
    };
    check(train.array("train_spikes_heldin", &any3()).unwrap(), 0, 0, 0);
    check(train.array("train_spikes_heldout", &any3()).unwrap(), 0, 0, 12);
    check(train.array("train_spikes_heldin_forward", &any3()).unwrap(), 0, 35, 0);
    check(train.array("train_spikes_heldout_forward", &any3()).unwrap(), 0, 35, 12);
    check(eval.array("eval_spikes_heldin", &any3()).unwrap(), 24, 0, 0);
    check(target.array("mc_maze_small_20/eval_spikes_heldout", &any3()).unwrap(), 24, 0, 12);
    check(target.array("mc_maze_small_20/eval_spikes_heldin_forward", &any3()).unwrap(), 24, 35, 0);
    check(target.array("mc_maze_small_20/eval_spikes_heldout_forward", &any3()).unwrap(), 24, 35, 12);
    // Splits: every 10th train trial validates, the benchmark's eval trials come last.
    assert_eq!(d.split.iter().filter(|s| **s == Split::Valid).count(), 2);
    assert!(d.split[24..].iter().all(|s| *s == Split::Eval) && d.split[9] == Split::Valid);
    let t = nlb.target.as_ref().unwrap();
    assert_eq!(t.eval_cond_idx.as_ref().unwrap().iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 4, 3]);
    assert_eq!(t.psth.as_ref().unwrap().shape, vec![3, 35, 17]);
    // The data file keeps all of it.
    let out = temp("val").join("d.safetensors");
    lflow_host::data::save(&out, d).unwrap();
    assert_eq!(&lflow_host::data::load(&out).unwrap(), d);
}

/// A folder with the fixture's train file and an eval input file of `eval_trials`
/// trials without held-out spikes (the test phase layout), plus `edit` applied.
fn test_phase_dir(name: &str, eval_trials: usize) -> PathBuf {
    let (src, dir) = (nlb_dir(), temp(name));
    std::fs::copy(src.join("train_input.h5"), dir.join("train_input.h5")).unwrap();
    let heldin = H5::open(&src.join("eval_input.h5")).unwrap().array("eval_spikes_heldin", &any3()).unwrap();
    let per = heldin.dim(1) * heldin.dim(2);
    let f = H5::create(&dir.join("eval_input.h5")).unwrap();
    let vals: Vec<f32> = heldin.data[..eval_trials * per].iter().map(|&x| x as f32).collect();
    f.write_f32("eval_spikes_heldin", &[eval_trials, heldin.dim(1), heldin.dim(2)], &vals).unwrap();
    f.close().unwrap();
    dir
}

#[test]
fn test_phase_import_has_no_targets_and_scores_nothing() {
    let dir = test_phase_dir("test", 12);
    let d = import(&spec(&dir, Phase::Test)).unwrap().data;
    let nlb = d.nlb.as_ref().unwrap();
    assert!(nlb.target.is_none() && nlb.meta.phase == "test");
    // Eval trials: held-in input kept, held-out and forward unknown (0).
    let (tt, n) = (45, 17);
    for i in 24..36 {
        for b in 0..tt {
            for c in 0..n {
                if b >= 35 || c >= 12 {
                    assert_eq!(d.spikes[(i * tt + b) * n + c], 0.0);
                }
            }
        }
    }
    let rates = vec![0.5f32; d.spikes.len()];
    assert!(lflow_host::data::nlb::predicted::score_rates(&d, &rates).unwrap().is_none());
    let sub = lflow_host::data::nlb::predicted::submission(&d, &rates).unwrap();
    assert_eq!(sub.eval_rates_heldout.shape, vec![12, 35, 5]);
    let out = dir.join("d.safetensors");
    lflow_host::data::save(&out, &d).unwrap();
    assert_eq!(lflow_host::data::load(&out).unwrap(), d);
}

#[test]
fn bad_files_get_their_own_errors() {
    // Missing file.
    let empty = temp("empty");
    let e = import(&spec(&empty, Phase::Val)).unwrap_err();
    assert!(matches!(&e, NlbError::Open { file, .. } if file.ends_with("train_input.h5")), "{e}");
    // Missing dataset: a train file with held-in spikes only.
    let dir = temp("missing");
    let src = H5::open(&nlb_dir().join("train_input.h5")).unwrap();
    let heldin = src.array("train_spikes_heldin", &any3()).unwrap();
    let write = |dir: &Path, name: &str, a: &lflow_host::data::nlb::score::Array| {
        let path = dir.join("train_input.h5");
        let f = if path.exists() { H5::open_rw(&path).unwrap() } else { H5::create(&path).unwrap() };
        let v: Vec<f32> = a.data.iter().map(|&x| x as f32).collect();
        f.write_f32(name, &a.shape, &v).unwrap();
        f.close().unwrap();
    };
    write(&dir, "train_spikes_heldin", &heldin);
    let e = import(&spec(&dir, Phase::Val)).unwrap_err();
    assert!(matches!(&e, NlbError::Missing { path, .. } if path == "train_spikes_heldout"), "{e}");
    assert!(e.to_string().contains("train_input.h5") && e.to_string().contains("expected"), "{e}");
    // Wrong shape: held-out spikes of one trial fewer than held-in.
    let dir = temp("shape");
    let mut short = src.array("train_spikes_heldout", &any3()).unwrap();
    short.shape[0] -= 1;
    short.data.truncate(short.shape.iter().product());
    write(&dir, "train_spikes_heldin", &heldin);
    write(&dir, "train_spikes_heldout", &short);
    let e = import(&spec(&dir, Phase::Val)).unwrap_err();
    assert!(
        matches!(&e, NlbError::Shape { path, found, .. } if path == "train_spikes_heldout" && found[0] == 23),
        "{e}"
    );
    // NaN spikes (mc_maze_small never pads with NaN).
    let dir = temp("nan");
    let mut nan = heldin.clone();
    nan.data[7] = f64::NAN;
    write(&dir, "train_spikes_heldin", &nan);
    let e = import(&spec(&dir, Phase::Val)).unwrap_err();
    assert!(matches!(&e, NlbError::Value { path, index: 7, .. } if path == "train_spikes_heldin"), "{e}");
    // Negative and fractional counts: named with the file, the array, the index and the value.
    for (name, value, index) in [("negative", -1.0, 11), ("fractional", 2.5, 13)] {
        let dir = temp(name);
        let mut bad = heldin.clone();
        bad.data[index] = value;
        write(&dir, "train_spikes_heldin", &bad);
        let e = import(&spec(&dir, Phase::Val)).unwrap_err();
        assert!(
            matches!(&e, NlbError::Value { path, index: i, value: v, .. } if path == "train_spikes_heldin" && *i == index && *v == value),
            "{name}: {e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("train_input.h5") && msg.contains("non-negative whole number"), "{msg}");
    }
    // A truncated file (the fixture cut to half its bytes): an error naming it, no panic.
    let dir = temp("truncated");
    let whole = std::fs::read(nlb_dir().join("train_input.h5")).unwrap();
    std::fs::write(dir.join("train_input.h5"), &whole[..whole.len() / 2]).unwrap();
    for name in ["eval_input.h5", "eval_target.h5"] {
        std::fs::copy(nlb_dir().join(name), dir.join(name)).unwrap();
    }
    let e = import(&spec(&dir, Phase::Val)).unwrap_err();
    assert!(e.to_string().contains("train_input.h5"), "{e}");
    // Mismatched trial counts between files: 11 eval inputs against 12 eval targets.
    let dir = test_phase_dir("mismatch", 11);
    std::fs::copy(nlb_dir().join("eval_target.h5"), dir.join("eval_target.h5")).unwrap();
    let e = import(&spec(&dir, Phase::Val)).unwrap_err();
    assert!(matches!(&e, NlbError::Shape { file, .. } if file.ends_with("eval_target.h5")), "{e}");
    // A dataset the benchmark does not have.
    let e = import(&ImportSpec { dataset: "mc_mayze".into(), ..spec(&nlb_dir(), Phase::Val) }).unwrap_err();
    assert!(e.to_string().contains("mc_maze_small"), "{e}");
}

#[test]
fn group_names_follow_nlb_tools() {
    use lflow_host::data::nlb::names::{group, DATASETS};
    for d in DATASETS {
        assert_eq!(group(d, 5), d);
        assert_eq!(group(d, 20), format!("{d}_20"));
    }
}

#[test]
fn every_dataset_config_loads() {
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs");
    for d in lflow_host::data::nlb::names::DATASETS {
        for variant in ["", "_streaming"] {
            let path = configs.join(format!("{d}{variant}.toml"));
            let c =
                lflow_host::train::run::RunConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(c.model.hidden, 280, "{}", path.display());
            assert_eq!(c.model.mode == lflow_host::ModeName::Streaming, variant == "_streaming");
        }
    }
}

fn lflow(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lflow")).args(args).output().unwrap();
    assert!(out.status.success(), "lflow {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn import_train_submit_score_round_trip() {
    let dir = temp("e2e");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (data, run, sub) = (dir.join("d.safetensors"), dir.join("run"), dir.join("submission.h5"));
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[model]\nhidden = 8\nff = 16\n[train]\nepochs = 3\nbatch_size = 8\nlr = 0.01\nramp_epochs = 2\n[eval]\nsamples = 2\n",
    )
    .unwrap();
    lflow(&["nlb", "import", &s(&nlb_dir()), "--dataset", "mc_maze_small", "--bin-ms", "20", "--out", &s(&data)]);
    lflow(&["train", "--data", &s(&data), "--config", &s(&config), "--out", &s(&run), "--quiet", "--threads", "2"]);
    lflow(&["nlb", "submit", &s(&run), "--out", &s(&sub), "--threads", "2"]);
    // The file has the fixture submission's group, arrays and shapes.
    let (ours, theirs) = (H5::open(&sub).unwrap(), H5::open(&nlb_dir().join("submission_truth.h5")).unwrap());
    assert_eq!(ours.groups(), theirs.groups());
    for name in [
        "eval_rates_heldin",
        "eval_rates_heldout",
        "train_rates_heldin",
        "train_rates_heldout",
        "eval_rates_heldin_forward",
        "eval_rates_heldout_forward",
    ] {
        let path = format!("mc_maze_small_20/{name}");
        let (a, b) = (ours.array(&path, &any3()).unwrap(), theirs.array(&path, &any3()).unwrap());
        assert_eq!(a.shape, b.shape, "{name}");
        assert!(a.data.iter().all(|x| x.is_finite() && *x > 0.0), "{name}: rates");
    }
    // Scoring the file equals what `lflow eval` reports from the same predictions.
    let json = lflow(&["nlb", "score", &s(&sub), "--target", &s(&nlb_dir().join("eval_target.h5")), "--json"]);
    let scored: serde_json::Value = serde_json::from_str(&json).unwrap();
    let co = scored[0]["mc_maze_scaling_20_split"]["[100] co-bps"].as_f64().unwrap();
    lflow(&["eval", &s(&run), "--threads", "2"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let co_eval = report["co_bps"].as_f64().unwrap();
    eprintln!("trained 3 epochs on the fixture: co-bps {co:.4} (file) {co_eval:.4} (eval), {}", scored[0]);
    // The file holds float32 rates: the two agree to float32 rounding.
    assert!((co - co_eval).abs() < 1e-4, "{co} vs {co_eval}");
    assert_eq!(report["nlb"][0]["mc_maze_scaling_20_split"].as_object().unwrap().len(), 4);
}

#[test]
fn decode_masks_and_jitter_read_from_their_hdf5_types() {
    // nlb_tools stores decode masks as bool (an HDF5 enum) and jitter as int32.
    let path = temp("masks").join("target.h5");
    {
        let f = hdf5::File::create(&path).unwrap();
        let g = f.create_group("area2_bump_20").unwrap();
        let spikes = vec![1.0f32; 3 * 2 * 2];
        g.new_dataset::<f32>().shape([3, 2, 2]).create("eval_spikes_heldout").unwrap().write_raw(&spikes).unwrap();
        let masks = [true, false, false, true, true, true];
        g.new_dataset::<bool>().shape([3, 2]).create("eval_decode_mask").unwrap().write_raw(&masks).unwrap();
        g.new_dataset::<i32>().shape([3]).create("eval_jitter").unwrap().write_raw(&[0i32, 2, -1]).unwrap();
    }
    let f = H5::open(&path).unwrap();
    let t = lflow_host::data::nlb::layout::read_target(&f, "area2_bump_20").unwrap();
    assert_eq!(t.eval_decode_mask.unwrap().data, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(t.eval_jitter.unwrap(), vec![0, 2, -1]);
    assert!(t.psth.is_none() && t.train_behavior.is_none());
}
