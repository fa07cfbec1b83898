//! `lflow eval --stream`: decoding without resets through `lflow-core`, and
//! its metrics, against loops and sums written out here.

use lflow_core::{DynDecoder, Mean, Seeded, StorageFormat};
use lflow_host::data::lorenz::{generate, LorenzConfig};
use lflow_host::data::{Dataset, Split};
use lflow_host::deploy::blob::{aligned, blob};
use lflow_host::deploy::stream::{decode, evaluate_streams, StreamOptions};
use lflow_host::deploy::velocity::VelocityReadout;
use lflow_host::metrics::{bits_per_spike, r2_uniform};
use lflow_host::{Mode, ModelConfig, Params};

/// A small streaming model (6 held-in of 9 neurons, H = 8, window 6).
fn model(anchor_every: usize) -> ModelConfig {
    ModelConfig {
        n_in: 6,
        n_out: 9,
        hidden: 8,
        ff: 12,
        gamma: 0.55,
        eps: 0.01,
        mode: Mode::Streaming { window: 6 },
        anchor_every,
    }
}

fn setup(anchor_every: usize) -> (Dataset, Vec<u8>) {
    let data = generate(&LorenzConfig {
        trials: 30,
        eval_trials: 8,
        observed: 25,
        forward: 5,
        held_in: 6,
        held_out: 3,
        seed: 4,
        ..LorenzConfig::default()
    });
    let cfg = model(anchor_every);
    let params = Params::init(&cfg, &mut Seeded::new(2));
    let v = VelocityReadout {
        n_beh: 3,
        weight: (0..72).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect(),
        bias: vec![0.1; 3],
    };
    (data, blob(&cfg, &params, StorageFormat::F32, Some(&v)).unwrap())
}

/// Velocities of `trials`' observed bins, each group of `group` trials on one fresh decoder.
fn by_hand(bytes: &[u8], data: &Dataset, trials: &[usize], group: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for g in trials.chunks(group) {
        let mut dec = DynDecoder::from_blob(bytes).unwrap();
        for &i in g {
            let s = data.trial_spikes(i);
            for t in 0..data.observed {
                let x: Vec<u16> = s[t * 9..t * 9 + 6].iter().map(|c| *c as u16).collect();
                out.extend_from_slice(dec.step(&x, &mut Mean).unwrap().velocity);
            }
        }
    }
    out
}

#[test]
fn resets_fall_where_asked_and_nowhere_else() {
    let (data, bytes) = setup(4);
    let a = aligned(&bytes);
    let eval = data.indices(Split::Eval);
    let mut dec = DynDecoder::from_blob(a.bytes()).unwrap();
    for every in [0, 1, 3] {
        let got = decode(&mut dec, &data, &eval, every, 0);
        let want = by_hand(a.bytes(), &data, &eval, if every == 0 { eval.len() } else { every });
        assert_eq!(got.velocity, want, "reset every {every}");
        assert_eq!((got.rates.len(), got.failures), (eval.len() * 25 * 9, 0));
    }
    assert_ne!(decode(&mut dec, &data, &eval, 0, 0).velocity, decode(&mut dec, &data, &eval, 1, 0).velocity);
    // From bin 7 of the first trial: the same as a fresh decoder fed those bins by hand.
    let late = decode(&mut dec, &data, &eval, 0, 7);
    let mut fresh = DynDecoder::from_blob(a.bytes()).unwrap();
    let mut want = Vec::new();
    for (k, &i) in eval.iter().enumerate() {
        let s = data.trial_spikes(i);
        for t in (if k == 0 { 7 } else { 0 })..data.observed {
            let x: Vec<u16> = s[t * 9..t * 9 + 6].iter().map(|c| *c as u16).collect();
            want.extend_from_slice(fresh.step(&x, &mut Mean).unwrap().velocity);
        }
    }
    assert_eq!(late.velocity, want);
    assert_eq!(late.positions[..3], [7, 8, 9]);
}

#[test]
fn stream_metrics_are_the_benchmark_metrics_of_the_stream() {
    let (data, bytes) = setup(5);
    let a = aligned(&bytes);
    let eval = data.indices(Split::Eval);
    let opt = StreamOptions { stretch: 40, skip: 10, lengths: vec![1, 2, 8], offset: 0 };
    let r = evaluate_streams(a.bytes(), &data, &opt).unwrap();
    assert_eq!((r.streams, r.bins, r.anchor_every, r.failures), (1, 200, 5, 0));
    // Stretches of 40 bins from bin 10: 10..50, 50..90, 90..130, 130..170.
    assert_eq!(r.stretches.iter().map(|s| s.start).collect::<Vec<_>>(), vec![10, 50, 90, 130]);
    let mut dec = DynDecoder::from_blob(a.bytes()).unwrap();
    let cont = decode(&mut dec, &data, &eval, 0, 0);
    let gather = |v: &[f32],
                  trial_bins: usize,
                  width: usize,
                  cols: std::ops::Range<usize>,
                  rows: std::ops::Range<usize>| {
        let all: Vec<f64> = eval
            .iter()
            .flat_map(|&i| v[i * trial_bins * width..(i * trial_bins + 25) * width].iter().map(|x| *x as f64))
            .collect();
        all.chunks(width).skip(rows.start).take(rows.len()).flat_map(|r| r[cols.clone()].to_vec()).collect::<Vec<f64>>()
    };
    let rows = |v: &[f32], width: usize, cols: std::ops::Range<usize>, r: std::ops::Range<usize>| -> Vec<f64> {
        v.chunks(width).skip(r.start).take(r.len()).flat_map(|x| x[cols.clone()].iter().map(|y| *y as f64)).collect()
    };
    for (span, m) in [(0..200, &r.continuous), (50..90, &r.stretches[1].continuous)] {
        let co = bits_per_spike(
            &rows(&cont.rates, 9, 6..9, span.clone()),
            &gather(&data.spikes, 30, 9, 6..9, span.clone()),
            3,
        );
        assert!((m.co_bps.unwrap() - co).abs() < 1e-12, "{span:?}");
        let truth = gather(data.true_rates.as_ref().unwrap(), 30, 9, 0..9, span.clone());
        assert!((m.rate_r2.unwrap() - r2_uniform(&truth, &rows(&cont.rates, 9, 0..9, span.clone()), 9)).abs() < 1e-12);
        let beh = gather(data.behavior.as_ref().unwrap(), 25, 3, 0..3, span.clone());
        assert!(
            (m.behavior_r2.unwrap() - r2_uniform(&beh, &rows(&cont.velocity, 3, 0..3, span.clone()), 3)).abs() < 1e-12
        );
    }
    // One trial per stream is the reset decoding; all eight, the continuous one.
    assert_eq!(r.lengths[0].metrics, r.reset);
    assert_eq!(r.lengths[2].metrics, r.continuous);
    assert_ne!(r.lengths[1].metrics, r.reset);
    // Starting 3 bins into the first trial leaves those 3 bins out of every decoding.
    let r3 = evaluate_streams(a.bytes(), &data, &StreamOptions { offset: 3, ..opt }).unwrap();
    assert_eq!((r3.bins, r3.offset), (197, 3));
    assert_ne!(r3.continuous, r.continuous);
}

#[test]
fn a_re_anchored_models_velocity_decoder_is_fit_on_the_stream() {
    // Behaviour made an exact linear function of y2 as decoded back to back
    // (no reset between training trials): the streamed fit recovers it.
    let (mut data, _) = setup(3);
    let cfg = model(3);
    let params = Params::init(&cfg, &mut Seeded::new(9));
    let bytes = blob(&cfg, &params, StorageFormat::F32, None).unwrap();
    let a = aligned(&bytes);
    let train = data.indices(Split::Train);
    let mut dec = DynDecoder::from_blob(a.bytes()).unwrap();
    let mut beh = data.behavior.clone().unwrap();
    let mut rows = Vec::new();
    for &i in &train {
        let s = data.trial_spikes(i);
        for t in 0..data.observed {
            let x: Vec<u16> = s[t * 9..t * 9 + 6].iter().map(|c| *c as u16).collect();
            let y2 = dec.step(&x, &mut Mean).unwrap().decoder_output.to_vec();
            let target = [y2[0] - 2.0 * y2[5] + 0.5, 3.0 * y2[17] + y2[23] - 1.0, y2[9]];
            beh[(i * data.observed + t) * 3..][..3].copy_from_slice(&target);
            rows.push((y2, target));
        }
    }
    data.behavior = Some(beh);
    let v = lflow_host::deploy::stream::fit_velocity_streamed(a.bytes(), &data).unwrap().unwrap();
    let truth: Vec<f64> = rows.iter().flat_map(|(_, t)| t.iter().map(|x| *x as f64)).collect();
    let x: Vec<f64> = rows.iter().flat_map(|(y2, _)| y2.iter().map(|x| *x as f64)).collect();
    let r2 = r2_uniform(&truth, &v.apply(&x), 3);
    assert!(r2 > 0.999, "streamed fit R2 {r2}");
}
