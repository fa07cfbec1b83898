//! The host's streaming model, trained, run over whole trials at once (causal
//! mask, mean mode) equals `lflow-core` decoding the same weights one bin at a time.

use lflow_core::{Mean, NoiseSource, StorageFormat, StreamingDecoder};
use lflow_host::data::{Dataset, Split};
use lflow_host::train::batches::prediction_noise;
use lflow_tests::{rel_err, trained_streaming, AlignedBytes, FF, H, N_IN, N_OUT, W};

type Device<'a> = StreamingDecoder<'a, N_IN, H, 24, FF, N_OUT, W, 0>;

/// Log-rates of `trials` decoded bin by bin on the device, noise from `noise(trial)`.
fn decode(
    dev: &mut Device<'_>,
    data: &Dataset,
    trials: &[usize],
    noise: impl Fn(usize) -> Box<dyn NoiseSource>,
) -> Vec<f32> {
    let mut out = Vec::new();
    for &i in trials {
        dev.reset();
        let mut boxed = noise(i);
        let spikes = data.trial_spikes(i);
        for bin in 0..data.bins() {
            let src = bin.min(data.observed - 1) * N_OUT;
            let x: [u16; N_IN] = std::array::from_fn(|n| spikes[src + n] as u16);
            let mut source: &mut dyn NoiseSource = boxed.as_mut();
            out.extend_from_slice(dev.step(&x, &mut source).unwrap().log_rates);
        }
    }
    out
}

#[test]
fn host_streaming_forward_equals_core_bin_by_bin() {
    let (data, mut t) = trained_streaming(40, 2, 3);
    let model = t.model.clone();
    let eval = data.indices(Split::Eval);
    let host = t.predictor().log_rates(&data, &eval, 0, 0).unwrap();

    let blob =
        AlignedBytes::new(&lflow_host::deploy::blob::blob(&model, &t.state.params, StorageFormat::F32, None).unwrap());
    let mut dev = Device::from_blob(blob.bytes()).unwrap();
    let device = decode(&mut dev, &data, &eval, |_| Box::new(Mean));
    let e = rel_err(&device, &host);
    eprintln!("host vs core, streaming mean mode: log-rates rel err {e:.2e}");
    assert!(e < 1e-5, "host and core differ: {e}");

    // With noise: the host's seeded prediction, replayed by the device from the same seed.
    let seed = 77;
    let host = t.predictor().log_rates(&data, &eval, 1, seed).unwrap();
    let device = decode(&mut dev, &data, &eval, |i| Box::new(prediction_noise(seed, i)));
    let e = rel_err(&device, &host);
    eprintln!("host vs core, streaming seeded noise: log-rates rel err {e:.2e}");
    assert!(e < 1e-5, "host and core differ with seeded noise: {e}");
}

#[test]
fn host_re_anchored_forward_equals_core_bin_by_bin() {
    // Anchors at bins 3, 6, ... of the 20-bin trials; the blob records the period.
    let (data, mut t) = trained_streaming(40, 3, 2);
    t.model.anchor_every = 3;
    let eval = data.indices(Split::Eval);
    let host = t.predictor().log_rates(&data, &eval, 0, 0).unwrap();
    let bytes = lflow_host::deploy::blob::blob(&t.model, &t.state.params, StorageFormat::F32, None).unwrap();
    let blob = AlignedBytes::new(&bytes);
    let mut dev = Device::from_blob(blob.bytes()).unwrap();
    assert_eq!(dev.anchor_every(), 3);
    let device = decode(&mut dev, &data, &eval, |_| Box::new(Mean));
    let e = rel_err(&device, &host);
    eprintln!("host vs core, re-anchored mean mode: log-rates rel err {e:.2e}");
    assert!(e < 1e-5, "host and core differ: {e}");
    // The run-time sized decoder (lflow eval --stream) gives the const decoder's bits.
    let mut dynamic = lflow_core::DynDecoder::from_blob(blob.bytes()).unwrap();
    let mut same = Vec::new();
    for &i in &eval {
        dynamic.reset();
        let spikes = data.trial_spikes(i);
        for bin in 0..data.bins() {
            let src = bin.min(data.observed - 1) * N_OUT;
            let x: Vec<u16> = (0..N_IN).map(|n| spikes[src + n] as u16).collect();
            same.extend_from_slice(dynamic.step(&x, &mut Mean).unwrap().log_rates);
        }
    }
    assert_eq!(same, device);
    // Without the anchors the host's forward is another model.
    t.model.anchor_every = 0;
    let plain = t.predictor().log_rates(&data, &eval, 0, 0).unwrap();
    assert!(rel_err(&plain, &host) > 1e-3);
}
