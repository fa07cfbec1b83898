//! Decoder behaviour beyond the golden numbers: schedules, noise modes,
//! recovery from non-finite values, clamping, and the reference MCU sizes.

mod common;

use common::{synthetic_blob, Aligned};
use lflow_core::blob::Tensor;
use lflow_core::{
    Dims, InputSchedule, Mean, NoiseError, NoiseSource, Provided, Seeded, Stage, StepError, StorageFormat,
    StreamingDecoder, SPIKE_CEILING,
};

const N_IN: usize = 6;
const H: usize = 8;
const D: usize = 24;
const FF: usize = 16;
const N_OUT: usize = 9;
const W: usize = 4;
const N_BEH: usize = 2;
type Small<'a> = StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH>;

fn blob(schedule: InputSchedule) -> Aligned {
    Aligned::new(&synthetic_blob(Small::DIMS, StorageFormat::F32, schedule, 5))
}

fn spikes(t: usize) -> [u16; N_IN] {
    std::array::from_fn(|i| ((t * 7 + i * 3) % 5) as u16)
}

/// Decode `inputs` from a fresh trial; returns every bin's log-rates and latents.
fn decode(dec: &mut Small<'_>, inputs: &[[u16; N_IN]], noise: &mut impl NoiseSource) -> Vec<Vec<f32>> {
    dec.reset();
    inputs
        .iter()
        .map(|x| {
            let out = dec.step(x, noise).unwrap();
            out.log_rates.iter().chain(out.latents.iter()).chain(out.velocity.iter()).copied().collect()
        })
        .collect()
}

#[test]
fn current_bin_fed_one_bin_late_equals_previous_bin() {
    // PreviousBin reads x0, x0, x1, x2, ...; CurrentBin fed (x0, x0, x1, ...) reads the same.
    let (prev_blob, cur_blob) = (blob(InputSchedule::PreviousBin), blob(InputSchedule::CurrentBin));
    let mut prev = Small::from_blob(prev_blob.bytes()).unwrap();
    let mut cur = Small::from_blob(cur_blob.bytes()).unwrap();
    assert_eq!((prev.schedule(), cur.schedule()), (InputSchedule::PreviousBin, InputSchedule::CurrentBin));
    let xs: Vec<[u16; N_IN]> = (0..10).map(spikes).collect();
    let mut late = vec![xs[0]];
    late.extend_from_slice(&xs[..9]);
    assert_eq!(decode(&mut prev, &xs, &mut Mean), decode(&mut cur, &late, &mut Mean));
    // And the schedules really differ on the same input.
    assert_ne!(decode(&mut prev, &xs, &mut Mean), decode(&mut cur, &xs, &mut Mean));
}

#[test]
fn mean_mode_is_zero_noise_and_seeded_is_reproducible() {
    let b = blob(InputSchedule::CurrentBin);
    let mut dec = Small::from_blob(b.bytes()).unwrap();
    let xs: Vec<[u16; N_IN]> = (0..12).map(spikes).collect();
    let zeros = vec![0.0f32; 2 * H + 11 * H];
    assert_eq!(decode(&mut dec, &xs, &mut Mean), decode(&mut dec, &xs, &mut Provided::new(&zeros)));
    let a = decode(&mut dec, &xs, &mut Seeded::new(9));
    assert_eq!(a, decode(&mut dec, &xs, &mut Seeded::new(9)));
    assert_ne!(a, decode(&mut dec, &xs, &mut Seeded::new(10)));
    // Seeded equals Provided with the same draws taken from the generator.
    let mut g = Seeded::new(9);
    let mut draws = vec![0.0f32; 13 * H];
    g.fill(&mut draws).unwrap();
    assert_eq!(a, decode(&mut dec, &xs, &mut Provided::new(&draws)));
}

#[test]
fn non_finite_noise_is_an_error_and_the_next_trial_starts_clean() {
    let b = blob(InputSchedule::CurrentBin);
    let mut dec = Small::from_blob(b.bytes()).unwrap();
    let xs: Vec<[u16; N_IN]> = (0..6).map(spikes).collect();
    let clean = decode(&mut dec, &xs, &mut Mean);

    let mut draws = vec![0.0f32; 2 * H + 5 * H];
    draws[2 * H + 2 * H + 3] = f32::INFINITY; // the Langevin draw of bin 3
    let mut noise = Provided::new(&draws);
    dec.reset();
    for x in &xs[..3] {
        dec.step(x, &mut noise).unwrap();
    }
    assert_eq!(dec.step(&xs[3], &mut noise).unwrap_err(), StepError::NonFinite { stage: Stage::Latent, bin: 3 });
    assert_eq!(dec.bin(), 0, "the failed step resets the decoder");
    // Without a manual reset, the next bin is bin 0 of a new trial and matches a fresh run.
    let again: Vec<Vec<f32>> = xs
        .iter()
        .map(|x| {
            let out = dec.step(x, &mut Mean).unwrap();
            out.log_rates.iter().chain(out.latents.iter()).chain(out.velocity.iter()).copied().collect()
        })
        .collect();
    assert_eq!(again, clean);
}

#[test]
fn exhausted_noise_is_an_error() {
    let b = blob(InputSchedule::CurrentBin);
    let mut dec = Small::from_blob(b.bytes()).unwrap();
    let draws = [0.0f32; H + 3];
    let err = dec.step(&spikes(0), &mut Provided::new(&draws)).unwrap_err();
    assert_eq!(err, StepError::Noise(NoiseError::Exhausted { available: 3, requested: H }));
    assert_eq!(dec.bin(), 0);
}

#[test]
fn counts_above_the_ceiling_are_clamped_and_counted() {
    let b = blob(InputSchedule::CurrentBin);
    let mut dec = Small::from_blob(b.bytes()).unwrap();
    let mut wild = spikes(0);
    wild[1] = u16::MAX;
    wild[4] = SPIKE_CEILING + 1;
    let mut capped = wild;
    capped[1] = SPIKE_CEILING;
    capped[4] = SPIKE_CEILING;
    let a = decode(&mut dec, &[wild, spikes(1)], &mut Mean);
    assert_eq!(dec.clamped_counts(), 2);
    assert_eq!(a, decode(&mut dec, &[capped, spikes(1)], &mut Mean));
    assert_eq!(dec.clamped_counts(), 2);
}

#[test]
fn overflowing_rates_are_reported_at_the_readout() {
    // A readout bias of 1e3 makes exp overflow: every bin fails at the readout, none panics.
    let dims = Small::DIMS;
    let mut w =
        lflow_core::blob::BlobWriter::new(dims, StorageFormat::F32, InputSchedule::CurrentBin, 0.55, 0.01).unwrap();
    let parsed = blob(InputSchedule::CurrentBin);
    let src = lflow_core::blob::Blob::parse(parsed.bytes(), None).unwrap();
    for t in Tensor::ALL {
        let (r, c) = t.shape(&dims);
        let vals: Vec<f32> = if t == Tensor::ReadoutBias {
            vec![1e3; r as usize]
        } else if t.is_matrix() {
            let m = src.matrix(t).unwrap();
            (0..r as usize)
                .flat_map(|i| (0..c as usize).map(move |j| (i, j)))
                .map(|(i, j)| m.get(i, j).unwrap())
                .collect()
        } else {
            src.vector(t).unwrap().to_vec()
        };
        w.tensor(t, &vals).unwrap();
    }
    let bad = Aligned::new(&w.finish().unwrap());
    let mut dec = Small::from_blob(bad.bytes()).unwrap();
    for t in 0..3 {
        assert_eq!(
            dec.step(&spikes(t), &mut Mean).unwrap_err(),
            StepError::NonFinite { stage: Stage::Readout, bin: 0 }
        );
    }
}

/// The reference MCU configuration of the benchmark and README.
type Mcu<'a> = StreamingDecoder<'a, 137, 64, 192, 256, 182, 32, 2>;

#[test]
fn reference_mcu_configuration_fits_its_budget() {
    let ram = std::mem::size_of::<Mcu<'static>>();
    let dims: Dims = Mcu::DIMS;
    let sizes: Vec<usize> = [StorageFormat::F32, StorageFormat::F16, StorageFormat::I8]
        .iter()
        .map(|&s| synthetic_blob(dims, s, InputSchedule::CurrentBin, 1).len())
        .collect();
    eprintln!("reference MCU decoder: RAM {ram} bytes; blob f32 {} f16 {} i8 {} bytes", sizes[0], sizes[1], sizes[2]);
    assert!(ram <= 96 * 1024, "decoder RAM {ram} bytes exceeds 96 KB");
    assert!(sizes[2] <= 512 * 1024, "i8 blob {} bytes exceeds 512 KB", sizes[2]);
    // The blob parses for the decoder and decodes a few bins of every format.
    for s in [StorageFormat::F32, StorageFormat::F16, StorageFormat::I8] {
        let b = Aligned::new(&synthetic_blob(dims, s, InputSchedule::CurrentBin, 1));
        let mut dec = Box::new(Mcu::from_blob(b.bytes()).unwrap());
        for t in 0..40u16 {
            let x: [u16; 137] = std::array::from_fn(|i| (i as u16 + t) % 4);
            dec.step(&x, &mut Seeded::new(3)).unwrap();
        }
    }
}

#[test]
fn naive_kernels_decode_the_same_trial() {
    let b = blob(InputSchedule::CurrentBin);
    let mut dec = Small::from_blob(b.bytes()).unwrap();
    let xs: Vec<[u16; N_IN]> = (0..8).map(spikes).collect();
    let tuned = decode(&mut dec, &xs, &mut Seeded::new(4));
    dec.set_kernel(lflow_core::Kernel::Naive);
    let naive = decode(&mut dec, &xs, &mut Seeded::new(4));
    for (a, b) in tuned.iter().flatten().zip(naive.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert_ne!(tuned, naive, "the two kernels sum in different orders");
}

fn anchored(p: u8) -> Aligned {
    Aligned::new(&common::synthetic_blob_anchored(Small::DIMS, StorageFormat::F32, InputSchedule::CurrentBin, 5, p))
}

/// `W x + b` in f64 from the blob's f32 weights: an independent posterior mean.
fn linear64(blob: &lflow_core::blob::Blob<'_>, w: Tensor, b: Tensor, x: &[f32]) -> Vec<f64> {
    let m = blob.matrix(w).unwrap();
    let bias = blob.vector(b).unwrap();
    (0..m.rows())
        .map(|r| bias[r] as f64 + (0..m.cols()).map(|c| m.get(r, c).unwrap() as f64 * x[c] as f64).sum::<f64>())
        .collect()
}

#[test]
fn every_pth_bin_re_anchors_on_the_posterior_means_of_the_current_h() {
    const P: usize = 3;
    let (plain_blob, anchored_blob) = (blob(InputSchedule::CurrentBin), anchored(P as u8));
    let mut plain = Small::from_blob(plain_blob.bytes()).unwrap();
    let mut dec = Small::from_blob(anchored_blob.bytes()).unwrap();
    let parsed = lflow_core::blob::Blob::parse(anchored_blob.bytes(), None).unwrap();
    let xs: Vec<[u16; N_IN]> = (0..3 * P + 2).map(spikes).collect();
    let a = decode(&mut dec, &xs, &mut Mean);
    let b = decode(&mut plain, &xs, &mut Mean);
    // Latents of bin t sit after the log-rates: [z, v, h].
    let lat = |row: &Vec<f32>| row[N_OUT..N_OUT + D].to_vec();
    for t in 0..xs.len() {
        let (l, prev) = (lat(&a[t]), if t > 0 { lat(&a[t - 1]) } else { vec![] });
        let (z, v, h) = (&l[..H], &l[H..2 * H], &l[2 * H..]);
        if t > 0 && t % P == 0 {
            let mz = linear64(&parsed, Tensor::ZMeansWeight, Tensor::ZMeansBias, h);
            let mv = linear64(&parsed, Tensor::VMeansWeight, Tensor::VMeansBias, h);
            for k in 0..H {
                assert!((z[k] as f64 - mz[k]).abs() < 1e-5 && (v[k] as f64 - mv[k]).abs() < 1e-5, "bin {t} [{k}]");
            }
        } else if t > 0 {
            // A Langevin step: z_t = z_{t-1} + eps v_{t-1}.
            for k in 0..H {
                let want = prev[k] as f64 + 0.01 * prev[H + k] as f64;
                assert!((z[k] as f64 - want).abs() < 1e-6, "bin {t} [{k}]: {} vs {want}", z[k]);
            }
        }
        // Until the first anchor the two blobs decode alike; from it on they differ.
        if t < P {
            assert_eq!(a[t], b[t], "bin {t}");
        } else {
            assert_ne!(lat(&a[t])[..H], lat(&b[t])[..H], "bin {t}");
        }
    }
    // A reset restarts the period: the same trial decodes the same again.
    assert_eq!(a, decode(&mut dec, &xs, &mut Mean));
}

#[test]
fn the_run_time_sized_decoder_equals_the_const_one_bit_for_bit() {
    for (p, storage) in [(0u8, StorageFormat::F32), (4, StorageFormat::I8), (7, StorageFormat::F16)] {
        let b = Aligned::new(&common::synthetic_blob_anchored(Small::DIMS, storage, InputSchedule::CurrentBin, 8, p));
        let mut fixed = Small::from_blob(b.bytes()).unwrap();
        let mut dynamic = lflow_core::DynDecoder::from_blob(b.bytes()).unwrap();
        assert_eq!((dynamic.dims(), dynamic.anchor_every()), (Small::DIMS, u32::from(p)));
        assert_eq!(dynamic.macs_per_step(), fixed.macs_per_step());
        let (mut n1, mut n2) = (Seeded::new(1), Seeded::new(1));
        for t in 0..60 {
            if t == 37 {
                fixed.reset();
                dynamic.reset();
            }
            let x = spikes(t);
            let want = fixed.step(&x, &mut n1).unwrap();
            let got = dynamic.step(&x, &mut n2).unwrap();
            assert_eq!(want.log_rates.as_slice(), got.log_rates, "{storage:?} P={p} bin {t}");
            assert_eq!(want.latents.as_slice(), got.latents);
            assert_eq!(want.velocity.as_slice(), got.velocity);
            assert_eq!(fixed.bin(), dynamic.bin());
        }
        let e = dynamic.step(&[1, 2], &mut Mean).unwrap_err();
        assert_eq!(e, StepError::InputLength { expected: N_IN as u32, found: 2 });
    }
}
