//! Data set files: round trip, the Lorenz generator, and one clear error per kind of malformed file.

use lflow_host::data::lorenz::{generate, generate_continuous, Continuous, LorenzConfig};
use lflow_host::data::{load, save, DataError, Dataset, Split};
use lflow_host::metrics::bits_per_spike;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lflow-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn small(seed: u64) -> LorenzConfig {
    LorenzConfig {
        trials: 30,
        eval_trials: 6,
        observed: 12,
        forward: 3,
        held_in: 6,
        held_out: 2,
        seed,
        ..LorenzConfig::default()
    }
}

#[test]
fn lorenz_is_seeded_byte_for_byte_and_as_documented() {
    let (a, b, c) = (tmp("a.safetensors"), tmp("b.safetensors"), tmp("c.safetensors"));
    save(&a, &generate(&small(1))).unwrap();
    save(&b, &generate(&small(1))).unwrap();
    save(&c, &generate(&small(2))).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    let d = load(&a).unwrap();
    assert_eq!(d, generate(&small(1)), "round trip");
    assert_eq!((d.trials(), d.observed, d.forward, d.n_in, d.n_out, d.n_beh), (30, 12, 3, 6, 8, 3));
    assert_eq!(d.indices(Split::Eval).len(), 6);
    assert_eq!(d.indices(Split::Valid).len(), 5); // 20% of 24
                                                  // Latents (behaviour) are z-scored over all trials and bins.
    let beh = d.behavior.as_ref().unwrap();
    for k in 0..3 {
        let v: Vec<f64> = beh.iter().skip(k).step_by(3).map(|x| *x as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.5, "latent {k} mean {mean}");
    }
    // Rates: base 15 Hz at 10 ms bins = 0.15 spikes per bin at zero drive; the median is near it.
    let mut rates = d.true_rates.clone().unwrap();
    rates.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let median = rates[rates.len() / 2];
    assert!((0.08..0.3).contains(&median), "median rate {median}");
}

#[test]
fn true_rates_carry_information_about_held_out_spikes() {
    let d = generate(&LorenzConfig { trials: 200, eval_trials: 50, ..LorenzConfig::default() });
    let (n, nin, tt) = (d.n_out, d.n_in, d.bins());
    let truth = d.true_rates.as_ref().unwrap();
    let (mut r, mut s) = (Vec::new(), Vec::new());
    for i in d.indices(Split::Eval) {
        for t in 0..d.observed {
            for j in nin..n {
                r.push(truth[(i * tt + t) * n + j] as f64);
                s.push(d.spikes[(i * tt + t) * n + j] as f64);
            }
        }
    }
    let bps = bits_per_spike(&r, &s, n - nin);
    assert!(bps > 0.2, "oracle co-bps {bps}");
}

/// Write a file from raw tensors and metadata.
fn write(name: &str, tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>, meta: Option<&str>) -> PathBuf {
    let path = tmp(name);
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().map(|(n, dt, s, b)| (*n, TensorView::new(*dt, s.clone(), b).unwrap())).collect();
    let metadata = meta.map(|m| HashMap::from([("lflow".to_string(), m.to_string())]));
    std::fs::write(&path, safetensors::serialize(views, metadata).unwrap()).unwrap();
    path
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

const META: &str = r#"{"format":"lflow-data-1","n_in":1,"observed":2,"forward":1,"bin_ms":20.0}"#;

/// A valid 2-trial file with spikes `s` (12 values: [2, 3, 2]) and split `split`.
fn file(name: &str, s: &[f32], split: &[u8]) -> PathBuf {
    write(
        name,
        vec![("spikes", Dtype::F32, vec![2, 3, 2], f32s(s)), ("split", Dtype::U8, vec![2], split.to_vec())],
        Some(META),
    )
}

const GOOD: [f32; 12] = [0., 1., 2., 0., 1., 1., 3., 0., 0., 0., 1., 2.];

#[test]
fn malformed_files_get_their_own_errors() {
    let ok = load(&file("ok.safetensors", &GOOD, &[0, 2])).unwrap();
    assert_eq!((ok.trials(), ok.n_in, ok.n_out, ok.bins()), (2, 1, 2, 3));

    let mut bad = GOOD;
    bad[7] = f32::NAN;
    let e = load(&file("nan.safetensors", &bad, &[0, 2])).unwrap_err();
    assert!(
        matches!(&e, DataError::Value { tensor: "spikes", index, what: "not finite", .. } if index == &vec![1, 0, 1]),
        "{e}"
    );
    assert!(e.to_string().contains("nan.safetensors"), "{e}");

    bad = GOOD;
    bad[4] = -1.0;
    let e = load(&file("neg.safetensors", &bad, &[0, 2])).unwrap_err();
    assert!(matches!(&e, DataError::Value { what: "a negative spike count", .. }), "{e}");

    bad = GOOD;
    bad[5] = 0.5;
    let e = load(&file("frac.safetensors", &bad, &[0, 2])).unwrap_err();
    assert!(
        matches!(&e, DataError::Value { index, what: "a fractional spike count", .. } if index == &vec![0, 2, 1]),
        "{e}"
    );

    let e = load(&file("split.safetensors", &GOOD, &[0, 7])).unwrap_err();
    assert!(matches!(&e, DataError::Value { tensor: "split", .. }), "{e}");
    let e = load(&file("notrain.safetensors", &GOOD, &[1, 2])).unwrap_err();
    assert!(matches!(&e, DataError::Split { .. }), "{e}");

    let e =
        load(&write("shape.safetensors", vec![("spikes", Dtype::F32, vec![2, 4, 2], f32s(&[0.0; 16]))], Some(META)))
            .unwrap_err();
    assert!(matches!(&e, DataError::Shape { tensor: "spikes", .. }), "{e}");
    let e = load(&write("missing.safetensors", vec![("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD))], Some(META)))
        .unwrap_err();
    assert!(matches!(&e, DataError::Missing { tensor: "split", .. }), "{e}");
    let e = load(&write(
        "dtype.safetensors",
        vec![("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD)), ("split", Dtype::I32, vec![2], vec![0; 8])],
        Some(META),
    ))
    .unwrap_err();
    assert!(matches!(&e, DataError::Shape { tensor: "split", .. }), "{e}");
    let e =
        load(&write("nometa.safetensors", vec![("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD))], None)).unwrap_err();
    assert!(matches!(&e, DataError::Metadata { .. }), "{e}");
    let e = load(&write(
        "badmeta.safetensors",
        vec![("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD))],
        Some(r#"{"format":"lflow-data-1","n_in":1,"observed":2,"forward":1,"bin_ms":20.0,"extra":1}"#),
    ))
    .unwrap_err();
    assert!(matches!(&e, DataError::Metadata { .. }) && e.to_string().contains("extra"), "{e}");

    let good = std::fs::read(file("whole.safetensors", &GOOD, &[0, 2])).unwrap();
    let cut = tmp("truncated.safetensors");
    std::fs::write(&cut, &good[..good.len() - 7]).unwrap();
    let e = load(&cut).unwrap_err();
    assert!(matches!(&e, DataError::Format { .. }) && e.to_string().contains("truncated.safetensors"), "{e}");
    assert!(matches!(load(&tmp("absent.safetensors")).unwrap_err(), DataError::Io { .. }));
}

#[test]
fn optional_tensors_are_checked_too() {
    let d = Dataset {
        n_in: 1,
        n_out: 2,
        observed: 2,
        forward: 1,
        bin_ms: 20.0,
        spikes: GOOD.to_vec(),
        true_rates: Some(vec![0.5; 12]),
        behavior: Some(vec![0.1, 0.2, 0.3, 0.4]),
        n_beh: 1,
        conditions: Some(vec![0, 3]),
        split: vec![Split::Train, Split::Eval],
        nlb: None,
        segments: None,
    };
    let p = tmp("full.safetensors");
    save(&p, &d).unwrap();
    assert_eq!(load(&p).unwrap(), d);
    let mut rates = vec![0.5f32; 12];
    rates[3] = -0.1;
    let e = load(&write(
        "negrate.safetensors",
        vec![
            ("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD)),
            ("split", Dtype::U8, vec![2], vec![0, 2]),
            ("true_rates", Dtype::F32, vec![2, 3, 2], f32s(&rates)),
        ],
        Some(META),
    ))
    .unwrap_err();
    assert!(matches!(&e, DataError::Value { tensor: "true_rates", what: "a negative rate", .. }), "{e}");
}

fn continuous() -> Dataset {
    let c = LorenzConfig {
        trials: 40,
        observed: 10,
        forward: 0,
        held_in: 6,
        held_out: 2,
        seed: 3,
        ..LorenzConfig::default()
    };
    generate_continuous(&c, &Continuous { sessions: 2, session_bins: 80, stream_bins: 95 })
}

#[test]
fn continuous_lorenz_keeps_its_eval_recording_whole() {
    let d = continuous();
    assert_eq!((d.observed, d.forward), (10, 0));
    let segs = d.segments.clone().unwrap();
    let eval = d.indices(Split::Eval);
    // 95 bins: 9 abutting windows of 10 (the rest dropped), in order, from one session.
    assert_eq!(eval.len(), 9);
    for (k, &i) in eval.iter().enumerate() {
        assert_eq!(segs[i].start as usize, 10 * k);
        assert_eq!(segs[i].session, segs[eval[0]].session);
    }
    assert_eq!(d.eval_streams(), vec![eval.clone()]);
    // 40 windows to fit on, 8 of them (valid_fraction 0.2) from their own recording.
    let (train, valid) = (d.indices(Split::Train), d.indices(Split::Valid));
    assert_eq!((train.len(), valid.len()), (32, 8));
    assert!(train.iter().all(|&i| segs[i].session < 2 && segs[i].start as usize + 10 <= 80));
    assert!(valid.iter().all(|&i| segs[i].session == 2));
    // Abutting windows continue one smooth trajectory: the latent (behaviour) step
    // across a window edge is like a step inside a window, far below a jump.
    let beh = d.behavior.as_ref().unwrap();
    let at = |i: usize, t: usize| &beh[(i * 10 + t) * 3..(i * 10 + t + 1) * 3];
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt();
    let inside = eval.iter().flat_map(|&i| (0..9).map(move |t| (i, t))).map(|(i, t)| dist(at(i, t), at(i, t + 1)));
    let inside = inside.fold(0.0f32, f32::max);
    for w in eval.windows(2) {
        assert!(dist(at(w[0], 9), at(w[1], 0)) <= 1.5 * inside, "edge {w:?}");
    }
    let jumps = train.windows(2).filter(|w| dist(at(w[0], 9), at(w[1], 0)) > 1.5 * inside).count();
    assert!(jumps * 2 > train.len(), "random training windows do not abut: {jumps}");
    // Round trip, segments included; a negative start is refused by name.
    let p = tmp("continuous.safetensors");
    save(&p, &d).unwrap();
    assert_eq!(load(&p).unwrap(), d);
    let e = load(&write(
        "negsegment.safetensors",
        vec![
            ("spikes", Dtype::F32, vec![2, 3, 2], f32s(&GOOD)),
            ("split", Dtype::U8, vec![2], vec![0, 2]),
            ("segment", Dtype::I32, vec![2, 2], [0i32, 0, 1, -3].iter().flat_map(|x| x.to_le_bytes()).collect()),
        ],
        Some(META),
    ))
    .unwrap_err();
    assert!(matches!(&e, DataError::Value { tensor: "segment", index, .. } if index == &vec![1, 1]), "{e}");
}

#[test]
fn eval_streams_split_where_windows_do_not_abut() {
    let mut d = continuous();
    let eval = d.indices(Split::Eval);
    let segs = d.segments.as_mut().unwrap();
    segs[eval[4]].start += 1; // a gap after window 3, and window 4 no longer meets window 5
    assert_eq!(d.eval_streams(), vec![eval[..4].to_vec(), vec![eval[4]], eval[5..].to_vec()]);
    d.segments = None;
    assert_eq!(d.eval_streams(), vec![eval], "trials without segments: back to back in file order");
}

#[test]
fn stream_windows_cut_the_training_trials_laid_end_to_end() {
    // Trials of 2 + 1 bins and 1 neuron: train, valid, train, eval, train.
    let spikes: Vec<f32> = (0..15).map(|x| x as f32).collect();
    let d = Dataset {
        n_in: 1,
        n_out: 1,
        observed: 2,
        forward: 1,
        bin_ms: 10.0,
        spikes,
        true_rates: None,
        behavior: None,
        n_beh: 0,
        conditions: None,
        split: vec![Split::Train, Split::Valid, Split::Train, Split::Eval, Split::Train],
        nlb: None,
        segments: None,
    };
    let w = d.stream_windows(2, 0);
    // The training bins end to end: 0 1 2 | 6 7 8 | 12 13 14; windows of 3 every 2 bins.
    assert_eq!(w.split, vec![Split::Train, Split::Train, Split::Train, Split::Train, Split::Valid]);
    assert_eq!(w.spikes, vec![0., 1., 2., 2., 6., 7., 7., 8., 12., 12., 13., 14., 3., 4., 5.]);
    assert_eq!(d.stream_windows(0, 0), d);
    // Windows of 4 bins (3 observed + the 1 forward bin); validation cut the same way.
    let w = d.stream_windows(5, 4);
    assert_eq!((w.observed, w.forward), (3, 1));
    assert_eq!(w.split, vec![Split::Train, Split::Train]);
    assert_eq!(w.spikes, vec![0., 1., 2., 6., 8., 12., 13., 14.]);
    assert_eq!(d.stream_windows(1, 3).spikes.len(), 7 * 3 + 3, "7 training windows, the validation trial");
}
