//! The firmware under QEMU, on a Cortex-M4F (`mps2-an386`) and a Cortex-M7
//! (`mps2-an500`), decodes exactly what `lflow-core` computes on the host, bit
//! for bit, for f32, f16 and int8 blobs, and its assembly kernels equal their
//! portable twins on the device; the reference MCU configuration links with
//! `panic-never` in every format on both cores; malformed frames get typed
//! errors and decoding goes on; a corrupt blob is refused.
//! Needs `qemu-system-arm` (tools/test.sh installs it).

use lflow_core::blob::{crc32, BlobWriter, Tensor};
use lflow_core::wire::{DeviceError, DeviceMessage, HostMessage};
use lflow_core::{Dims, InputSchedule, Mean, Seeded, StorageFormat, StreamingDecoder};
use lflow_host::data::lorenz::{generate_continuous, Continuous, LorenzConfig};
use lflow_host::deploy::link::{build_firmware_for, Core, FirmwareBuild, FirmwareLink};
use lflow_tests::AlignedBytes;
use std::path::{Path, PathBuf};

// An odd input width: the f16 kernel's rows alternate alignment, the int8 kernel has a tail column.
const N_IN: usize = 13;
const H: usize = 8;
const D: usize = 24;
const FF: usize = 24;
const N_OUT: usize = 15;
const W: usize = 5;
const N_BEH: usize = 2;
type Host<'a> = StreamingDecoder<'a, N_IN, H, D, FF, N_OUT, W, N_BEH>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn blob(storage: StorageFormat, seed: u64) -> Vec<u8> {
    anchored_blob(storage, seed, 0)
}

/// A random model re-anchoring every `anchor_every` bins (0: never).
fn anchored_blob(storage: StorageFormat, seed: u64, anchor_every: u8) -> Vec<u8> {
    let dims = Dims { n_in: 13, hidden: 8, d_model: 24, ff: 24, n_out: 15, window: 5, n_beh: 2 };
    let mut w =
        BlobWriter::new(dims, storage, InputSchedule::CurrentBin, 0.55, 0.01).unwrap().anchor_every(anchor_every);
    let mut rng = Seeded::new(seed);
    for t in Tensor::ALL {
        let (r, c) = t.shape(&dims);
        let v: Vec<f32> = (0..r * c).map(|_| rng.next_normal() / (c as f32).sqrt()).collect();
        w.tensor(t, &v).unwrap();
    }
    w.finish().unwrap()
}

/// Firmware builds share one target folder: one at a time, each copied out before the next.
static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Build the Cortex-M7 firmware with `bytes` embedded; returns the ELF's path.
fn firmware(bytes: &[u8], tag: &str) -> PathBuf {
    firmware_for(Core::M7, bytes, tag)
}

/// Build the firmware for `core` with `bytes` embedded; returns the ELF's path.
fn firmware_for(core: Core, bytes: &[u8], tag: &str) -> PathBuf {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = core.target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let blob_path = dir.join(format!("qemu-test-{tag}.lfw"));
    std::fs::write(&blob_path, bytes).unwrap();
    let (built, _) = build_firmware_for(core, &blob_path, &dir, FirmwareBuild::default()).expect("firmware builds");
    let elf = dir.join(format!("qemu-test-{tag}.elf"));
    std::fs::copy(built, &elf).unwrap();
    elf
}

fn counts(rng: &mut Seeded) -> [u16; N_IN] {
    std::array::from_fn(|_| (rng.next_u32() % 5) as u16)
}

fn bin_bytes(c: &[u16]) -> Vec<u8> {
    c.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn next(dev: &mut FirmwareLink) -> Vec<u8> {
    dev.recv_frame().expect("a reply")
}

/// The device's kernel check: every matrix through the assembly kernels and
/// their portable twins on the device; returns (outputs compared, mismatches).
fn kernel_check(dev: &mut FirmwareLink, seed: u32) -> (u32, u32) {
    dev.send(&HostMessage::KernelCheck { seed }).unwrap();
    let mut f = next(dev);
    match FirmwareLink::decode(&mut f).unwrap() {
        DeviceMessage::KernelCheck { outputs, mismatches, calibration, .. } => {
            assert!(calibration > 0, "the counter was calibrated under -icount");
            (outputs, mismatches)
        }
        other => panic!("expected a kernel check, got {other:?}"),
    }
}

#[test]
fn firmware_under_qemu_matches_core_bit_for_bit() {
    let formats = [(StorageFormat::F32, "f32"), (StorageFormat::F16, "f16"), (StorageFormat::I8, "i8")];
    for core in Core::ALL {
        for (storage, format) in formats {
            let tag = format!("{core}-{format}");
            let bytes = blob(storage, 11);
            let elf = firmware_for(core, &bytes, &tag);
            let aligned = AlignedBytes::new(&bytes);
            let mut host = Host::from_blob(aligned.bytes()).unwrap();
            let mut dev = FirmwareLink::start_on(core, &elf, true).unwrap();
            let mut hello = next(&mut dev);
            match FirmwareLink::decode(&mut hello).unwrap() {
                DeviceMessage::Hello { dims, blob_error, storage: s, .. } => {
                    assert_eq!(dims, [13, 8, 24, 24, 15, 5, 2]);
                    assert_eq!((blob_error, s), (None, storage.code()));
                }
                other => panic!("expected hello, got {other:?}"),
            }
            // Rows of the 12 matrices (3H twice, H four times, 3D, D, FF, D, N_OUT, N_BEH),
            // then the attention kernels' outputs at widths D/2, 13 and 3 (4 scores + the row each).
            let rows = 2 * 24 + 4 * 8 + 72 + 24 + 24 + 24 + 15 + 2 + (4 + 12) + (4 + 13) + (4 + 3);
            for seed in [1, 2, 3] {
                assert_eq!(kernel_check(&mut dev, seed), (rows, 0), "{tag}: kernels against their twins");
            }
            let mut rng = Seeded::new(3);
            let (mut bins, mut instructions) = (0u32, 0u64);
            for _trial in 0..2 {
                dev.send(&HostMessage::Reset).unwrap();
                host.reset();
                for seq in 0..15u32 {
                    let c = counts(&mut rng);
                    let raw = bin_bytes(&c);
                    dev.send(&HostMessage::Bin { seq, counts: &raw }).unwrap();
                    let want = host.step(&c, &mut Mean).unwrap();
                    let want_rates: Vec<u8> = want.rates.iter().flat_map(|r| r.to_le_bytes()).collect();
                    let want_vel: Vec<u8> = want.velocity.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let mut frame = next(&mut dev);
                    match FirmwareLink::decode(&mut frame).unwrap() {
                        DeviceMessage::Decoded { seq: s, velocity, rates_crc, instructions: n } => {
                            assert_eq!(s, seq);
                            assert_eq!(velocity, &want_vel[..], "{tag}: velocity of bin {seq}");
                            assert_eq!(rates_crc, crc32(&want_rates), "{tag}: rates of bin {seq}");
                            bins += 1;
                            instructions += u64::from(n);
                        }
                        other => panic!("expected a decoded bin, got {other:?}"),
                    }
                }
            }
            eprintln!(
                "{tag}: {bins} bins bit for bit, {} instructions per bin (tiny model)",
                instructions / u64::from(bins)
            );
            assert!(instructions > 0, "SysTick counts instructions under -icount");
        }
    }
}

/// The reference MCU configuration (N_IN 137, H 64, FF 256, N_OUT 182, W 32)
/// in every format on both cores: the firmware links with `panic-never` (the
/// proof that no panic path survives), boots within the Cortex-M4F's 96 KiB,
/// and its kernels equal their twins on the device for every matrix.
#[test]
fn reference_configuration_links_panic_free_and_its_kernels_equal_their_twins() {
    let work = root().join("target/firmware/qemu-test-reference");
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let figures = lflow_host::deploy::mcu_bench::run(&Core::ALL, 1, &work, |_, _| {}).expect("builds and runs");
    assert_eq!(figures.len(), 8, "two cores, four formats");
    for (name, f) in &figures {
        eprintln!(
            "{name}: {:.3} instructions per MAC in the kernels, {:.0} per bin",
            f.instructions_per_mac, f.instructions_per_bin
        );
        assert_eq!(f.kernel_mismatches, 0, "{name}: kernels against their twins");
        assert!(f.ram_bytes <= 96 * 1024 - 16 * 1024, "{name}: {} bytes of statics", f.ram_bytes);
        assert!(f.instructions_per_bin > 0.0, "{name}: the bins were counted");
    }
}

#[test]
fn malformed_frames_get_typed_errors_and_decoding_goes_on() {
    let bytes = blob(StorageFormat::F32, 5);
    let elf = firmware(&bytes, "errors");
    let mut dev = FirmwareLink::start(&elf, false).unwrap();
    next(&mut dev); // hello
    let expect_error = |dev: &mut FirmwareLink, raw: Option<&[u8]>, msg: Option<HostMessage<'_>>| -> DeviceError {
        if let Some(r) = raw {
            dev.send_raw(r).unwrap();
        }
        if let Some(m) = msg {
            dev.send(&m).unwrap();
        }
        let mut f = next(dev);
        match FirmwareLink::decode(&mut f).unwrap() {
            DeviceMessage::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    };
    assert_eq!(expect_error(&mut dev, Some(&[7, 7, 7, 0]), None), DeviceError::BadFrame);
    assert_eq!(expect_error(&mut dev, Some(&[[1u8; 2000].as_slice(), &[0]].concat()), None), DeviceError::Oversize);
    let counts = bin_bytes(&[1; N_IN]);
    // A frame whose CRC is wrong: payload `Reset` (postcard 0x01) with a zero CRC, COBS by hand.
    assert_eq!(expect_error(&mut dev, Some(&[0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]), None), DeviceError::BadCrc);
    // A frame whose CRC is right but whose payload is no message (variant 99).
    let (mut scratch, mut framed) = ([0u8; 16], [0u8; 32]);
    let n = lflow_core::wire::encode(&(99u8, 1u8), &mut scratch, &mut framed).unwrap();
    assert_eq!(expect_error(&mut dev, Some(&framed[..n]), None), DeviceError::Malformed);
    let short = bin_bytes(&[1; 3]);
    assert_eq!(
        expect_error(&mut dev, None, Some(HostMessage::Bin { seq: 0, counts: &short })),
        DeviceError::WrongCount { expected: N_IN as u16, got: 3 }
    );
    // A skipped sequence number: an error, then the bin is decoded anyway.
    assert_eq!(
        expect_error(&mut dev, None, Some(HostMessage::Bin { seq: 4, counts: &counts })),
        DeviceError::SequenceGap { expected: 0, got: 4 }
    );
    let mut f = next(&mut dev);
    assert!(matches!(FirmwareLink::decode(&mut f).unwrap(), DeviceMessage::Decoded { seq: 4, .. }));
    dev.send(&HostMessage::Bin { seq: 5, counts: &counts }).unwrap();
    let mut f = next(&mut dev);
    assert!(matches!(FirmwareLink::decode(&mut f).unwrap(), DeviceMessage::Decoded { seq: 5, .. }));
    dev.send(&HostMessage::Stats).unwrap();
    let mut f = next(&mut dev);
    match FirmwareLink::decode(&mut f).unwrap() {
        DeviceMessage::Stats { bins, errors, .. } => assert_eq!((bins, errors), (2, 6)),
        other => panic!("expected stats, got {other:?}"),
    }
}

#[test]
fn a_non_finite_state_is_reset_and_decoding_goes_on() {
    // A random model whose readout bias for one neuron is raised so that its
    // rate overflows f32 (log-rate above 88.72) on a bin of 255 spikes on every
    // input, but not on silent bins. The neuron and the shift are chosen with
    // lflow-core on the host, which the device equals bit for bit.
    let dims = Dims { n_in: 13, hidden: 8, d_model: 24, ff: 24, n_out: 15, window: 5, n_beh: 2 };
    let make = |neuron: usize, shift: f32| {
        let mut w = BlobWriter::new(dims, StorageFormat::F32, InputSchedule::CurrentBin, 0.55, 0.01).unwrap();
        let mut rng = Seeded::new(3);
        for t in Tensor::ALL {
            let (r, c) = t.shape(&dims);
            let mut v: Vec<f32> = (0..r * c).map(|_| rng.next_normal() / (c as f32).sqrt()).collect();
            if t == Tensor::ReadoutBias {
                v[neuron] += shift;
            }
            w.tensor(t, &v).unwrap();
        }
        w.finish().unwrap()
    };
    let (quiet, loud) = ([0u16; N_IN], [255u16; N_IN]);
    let script = [quiet, quiet, quiet, loud];
    let on_host = |bytes: &[u8]| -> Vec<Result<Vec<f32>, lflow_core::StepError>> {
        let aligned = AlignedBytes::new(bytes);
        let mut host = Host::from_blob(aligned.bytes()).unwrap();
        script.iter().map(|c| host.step(c, &mut Mean).map(|o| o.rates.to_vec())).collect()
    };
    let log_rates: Vec<Vec<f32>> =
        on_host(&make(0, 0.0)).into_iter().map(|r| r.unwrap().iter().map(|x| x.ln()).collect()).collect();
    let gap = |n: usize| log_rates[3][n] - (0..3).map(|b| log_rates[b][n]).fold(f32::MIN, f32::max);
    let neuron = (0..15).max_by(|&a, &b| gap(a).total_cmp(&gap(b))).unwrap();
    assert!(gap(neuron) > 0.1, "no neuron separates the loud bin: {}", gap(neuron));
    let shift = 88.72 - (log_rates[3][neuron] + log_rates[3][neuron] - gap(neuron)) / 2.0;
    let bytes = make(neuron, shift);
    let host = on_host(&bytes);
    assert!(host[..3].iter().all(|r| r.is_ok()), "silence must decode on the host");
    assert!(matches!(host[3], Err(lflow_core::StepError::NonFinite { .. })), "{:?}", host[3]);
    let elf = firmware(&bytes, "reset");
    let mut dev = FirmwareLink::start(&elf, false).unwrap();
    next(&mut dev); // hello
    let (quiet, loud) = (bin_bytes(&quiet), bin_bytes(&loud));
    // What the device answers to one bin: Ok((seq, velocity, rates CRC)) or Err(the error).
    type Reply = Result<(u32, Vec<u8>, u32), DeviceError>;
    let decoded = |dev: &mut FirmwareLink, seq: u32, counts: &[u8]| -> Reply {
        dev.send(&HostMessage::Bin { seq, counts }).unwrap();
        let mut f = next(dev);
        match FirmwareLink::decode(&mut f).unwrap() {
            DeviceMessage::Decoded { seq, velocity, rates_crc, .. } => Ok((seq, velocity.to_vec(), rates_crc)),
            DeviceMessage::Error(e) => Err(e),
            other => panic!("expected a decoded bin or an error, got {other:?}"),
        }
    };
    let first: Vec<Reply> = (0..3).map(|seq| decoded(&mut dev, seq, &quiet)).collect();
    for (seq, r) in first.iter().enumerate() {
        assert_eq!(r.as_ref().map(|x| x.0), Ok(seq as u32));
    }
    let readout = lflow_core::Stage::Readout as u8;
    assert_eq!(decoded(&mut dev, 3, &loud), Err(DeviceError::StateReset { seq: 3, stage: readout }));
    // A new trial: sequence numbers start again at 0, and the state is a fresh
    // one: the same silent bins decode to exactly what they did at the start.
    assert_eq!(decoded(&mut dev, 0, &quiet), first[0]);
    assert_eq!(decoded(&mut dev, 1, &quiet), first[1]);
    dev.send(&HostMessage::Stats).unwrap();
    let mut f = next(&mut dev);
    match FirmwareLink::decode(&mut f).unwrap() {
        DeviceMessage::Stats { bins, errors, resets, .. } => assert_eq!((bins, errors, resets), (5, 1, 1)),
        other => panic!("expected stats, got {other:?}"),
    }
}

#[test]
fn a_corrupt_blob_is_refused_at_boot() {
    let mut bytes = blob(StorageFormat::I8, 9);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5A; // body CRC no longer matches
    let elf = firmware(&bytes, "corrupt");
    let mut dev = FirmwareLink::start(&elf, false).unwrap();
    let mut hello = next(&mut dev);
    match FirmwareLink::decode(&mut hello).unwrap() {
        DeviceMessage::Hello { blob_error, .. } => assert_eq!(blob_error, Some("BodyCrc")),
        other => panic!("expected hello, got {other:?}"),
    }
    let counts = bin_bytes(&[0; N_IN]);
    dev.send(&HostMessage::Bin { seq: 0, counts: &counts }).unwrap();
    let mut f = next(&mut dev);
    assert_eq!(FirmwareLink::decode(&mut f).unwrap(), DeviceMessage::Error(DeviceError::BlobRejected));
}

#[test]
fn a_continuous_stream_through_closed_loop_matches_the_twin_bit_for_bit() {
    // A re-anchored int8 model fed a continuous recording without a reset
    // (lflow closed-loop --continuous): 300 bins, 24 anchors, one Reset in all.
    let bytes = anchored_blob(StorageFormat::I8, 21, 12);
    let elf = firmware(&bytes, "continuous");
    let twin = {
        let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let dir = root().join("target").join("firmware");
        let (_, twin) = lflow_host::deploy::link::build_firmware(&dir.join("qemu-test-continuous.lfw"), &dir).unwrap();
        let copy = dir.join("qemu-test-continuous-twin");
        std::fs::copy(twin, &copy).unwrap();
        copy
    };
    let lorenz = LorenzConfig {
        trials: 20,
        observed: 30,
        forward: 0,
        held_in: N_IN,
        held_out: N_OUT - N_IN,
        seed: 2,
        ..LorenzConfig::default()
    };
    let data = generate_continuous(&lorenz, &Continuous { sessions: 1, session_bins: 60, stream_bins: 300 });
    let stream = data.eval_streams();
    assert_eq!((stream.len(), stream[0].len()), (1, 10), "one eval stream of 10 abutting windows");
    let mut dev = FirmwareLink::start(&elf, true).unwrap();
    let mut host = FirmwareLink::twin(&twin).unwrap();
    let r = lflow_host::deploy::closed_loop::run(&mut dev, &mut host, &data, &stream[0], false, true).unwrap();
    eprintln!(
        "continuous closed loop: {} bins, {} mismatches, {:.0} instructions per bin",
        r.bins, r.mismatches, r.instructions_per_bin
    );
    assert!(r.continuous);
    assert_eq!((r.bins, r.mismatches, r.errors), (300, 0, 0));
}
