//! Export round trip: a trained streaming model written as f32, f16 and int8
//! blobs decodes through `lflow-core` bin by bin as the host model computes,
//! velocity decoder included.

use lflow_core::{Mean, StorageFormat, StreamingDecoder};
use lflow_host::data::Split;
use lflow_host::deploy::blob::blob;
use lflow_host::deploy::velocity::fit_velocity;
use lflow_host::train::backend::Features;
use lflow_tests::{rel_err, trained_streaming, AlignedBytes, FF, H, N_IN, N_OUT, W};

const D: usize = 24;
const N_BEH: usize = 3;
type Device<'a> = StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH>;

#[test]
fn blobs_decode_on_core_as_the_host_model() {
    let (data, mut t) = trained_streaming(60, 6, 4);
    let model = t.model.clone();
    let velocity = fit_velocity(&mut t.predictor(), &data).unwrap().expect("behaviour is present");
    let eval = data.indices(Split::Eval);
    let host_log_rates = t.predictor().log_rates(&data, &eval, 0, 0).unwrap();
    let y2 = t.predictor().features(&data, &eval, Features::DecoderOutput).unwrap();
    let y2_64: Vec<f64> = y2.iter().map(|v| *v as f64).collect();
    let host_vel: Vec<f32> = velocity.apply(&y2_64).iter().map(|v| *v as f32).collect();

    for (storage, bound) in [(StorageFormat::F32, 1e-5), (StorageFormat::F16, F16_BOUND), (StorageFormat::I8, I8_BOUND)]
    {
        let bytes = AlignedBytes::new(&blob(&model, &t.state.params, storage, Some(&velocity)).unwrap());
        let mut dev = Device::from_blob(bytes.bytes()).unwrap();
        let (mut lr, mut vel) = (Vec::new(), Vec::new());
        for &i in &eval {
            dev.reset();
            let spikes = data.trial_spikes(i);
            for bin in 0..data.bins() {
                let src = bin.min(data.observed - 1) * N_OUT;
                let x: [u16; N_IN] = std::array::from_fn(|n| spikes[src + n] as u16);
                let out = dev.step(&x, &mut Mean).unwrap();
                lr.extend_from_slice(out.log_rates);
                vel.extend_from_slice(out.velocity);
            }
        }
        let (e_lr, e_vel) = (rel_err(&lr, &host_log_rates), rel_err(&vel, &host_vel));
        eprintln!("{storage:?} blob vs host f32: log-rates {e_lr:.2e}, velocity {e_vel:.2e}");
        assert!(e_lr < bound && e_vel < bound, "{storage:?}: log-rates {e_lr}, velocity {e_vel}");
    }
}

/// Measured 1.7e-4 (log-rates) and 4.0e-4 (velocity); 2.5x margin or more.
const F16_BOUND: f64 = 1e-3;
/// Measured 3.8e-3 (log-rates) and 8.1e-3 (velocity); 2.5x margin or more.
const I8_BOUND: f64 = 2e-2;

/// `lflow export`'s quality columns: the blob decoded by `lflow-core` bin by
/// bin scores as the host model does (f32 blob, plain f32 arithmetic, against
/// the host's own evaluation), and int8's int16 activations cost at most the
/// issue's budget (0.002 co-bps and fp-bps, 0.005 behaviour R²) against the
/// same int8 weights with f32 activations.
#[test]
fn decoded_quality_matches_the_host_and_int16_activations_cost_little() {
    use lflow_core::Kernel;
    use lflow_host::deploy::stream::decoded_quality;
    let (data, mut t) = trained_streaming(60, 6, 4);
    let velocity = fit_velocity(&mut t.predictor(), &data).unwrap().expect("behaviour is present");
    let all: Vec<usize> = (0..data.trials()).collect();
    let rates: Vec<f32> = t.predictor().log_rates(&data, &all, 0, 0).unwrap().iter().map(|l| l.exp()).collect();
    let host = lflow_host::eval::evaluate::evaluate(&data, &rates, 50.0);

    let f32_blob = AlignedBytes::new(&blob(&t.model, &t.state.params, StorageFormat::F32, Some(&velocity)).unwrap());
    let q = decoded_quality(f32_blob.bytes(), &data, Kernel::Naive).unwrap();
    for (name, got, want) in [("co-bps", q.co_bps, host.co_bps), ("fp-bps", q.fp_bps, host.fp_bps)] {
        let (got, want) = (got.expect(name), want.expect(name));
        eprintln!("{name}: lflow-core {got:.5}, host {want:.5}");
        assert!((got - want).abs() < 1e-4, "{name}: {got} vs {want}");
    }
    assert!(q.behaviour_r2.expect("behaviour") > 0.0);

    let i8_blob = AlignedBytes::new(&blob(&t.model, &t.state.params, StorageFormat::I8, Some(&velocity)).unwrap());
    let f32_act = decoded_quality(i8_blob.bytes(), &data, Kernel::Naive).unwrap();
    let i16_act = decoded_quality(i8_blob.bytes(), &data, Kernel::Tuned).unwrap();
    let cost = |a: Option<f64>, b: Option<f64>| (a.unwrap() - b.unwrap()).abs();
    let (co, fp, r2) = (
        cost(f32_act.co_bps, i16_act.co_bps),
        cost(f32_act.fp_bps, i16_act.fp_bps),
        cost(f32_act.behaviour_r2, i16_act.behaviour_r2),
    );
    eprintln!("int16 activations cost: co-bps {co:.1e}, fp-bps {fp:.1e}, behaviour R2 {r2:.1e}");
    assert!(co > 0.0 || fp > 0.0 || r2 > 0.0, "the two arithmetics differ somewhere");
    assert!(co <= 0.002 && fp <= 0.002 && r2 <= 0.005, "co {co}, fp {fp}, R2 {r2}");
}
