//! Closed loop: stream trials bin by bin to the device and to its host twin
//! (`lflow-core` with the same blob), compare every decoded bin bit for bit.

use crate::data::{DataError, Dataset, Split};
use crate::deploy::link::{build_firmware_for, Core, FirmwareBuild, FirmwareLink, LinkError};
use crate::metrics::r2_uniform;
use lflow_core::wire::{DeviceMessage, HostMessage};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a closed-loop run measured (`--json` prints it).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClosedLoopReport {
    /// Trials streamed.
    pub trials: usize,
    /// Bins decoded by the device.
    pub bins: usize,
    /// Bins whose velocity or rates differ from the host twin's in any bit (or that failed).
    pub mismatches: usize,
    /// Error replies from the device.
    pub errors: usize,
    /// R² of the device's decoded velocity against the recorded behaviour (when both exist).
    pub behavior_r2: Option<f64>,
    /// Mean instructions per decoded bin, as the device counted them (`-icount`).
    pub instructions_per_bin: f64,
    /// Mean time from sending a bin to receiving its reply, ms.
    pub round_trip_ms_mean: f64,
    /// Longest such time, ms.
    pub round_trip_ms_max: f64,
    /// `real` (one bin per bin width) or `max` (as fast as the link allows).
    pub pace: String,
    /// One uninterrupted stream (a single `Reset` before the first bin), not trial by trial.
    pub continuous: bool,
    /// What decoded: `qemu cortex-m7`, `qemu cortex-m4`, `serial`, or `host twin`
    /// (the firmware built for this machine, where QEMU is missing; no
    /// instruction counts, and the comparison is then twin against twin).
    /// JSON key `device`.
    #[serde(rename = "device")]
    pub endpoint: String,
}

/// Why a closed-loop run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClosedLoopError {
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The link to the device or the twin.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The device refused its blob.
    #[error("the {who} refused its blob: {reason}")]
    Refused {
        /// `device` or `twin`.
        who: &'static str,
        /// The `BlobError`.
        reason: String,
    },
    /// The device's model does not fit the data.
    #[error("the device's model reads {device} held-in neurons, the data set has {data}")]
    Mismatch {
        /// N_IN of the device.
        device: u32,
        /// N_IN of the data.
        data: usize,
    },
    /// An unexpected reply.
    #[error("unexpected reply from the {who}: {reply}")]
    Unexpected {
        /// `device` or `twin`.
        who: &'static str,
        /// The reply.
        reply: String,
    },
}

fn hello(dev: &mut FirmwareLink, who: &'static str) -> Result<[u32; 7], ClosedLoopError> {
    let mut f = dev.recv_frame()?;
    match FirmwareLink::decode(&mut f)? {
        DeviceMessage::Hello { blob_error: None, dims, .. } => Ok(dims),
        DeviceMessage::Hello { blob_error: Some(e), .. } => Err(ClosedLoopError::Refused { who, reason: e.into() }),
        other => Err(ClosedLoopError::Unexpected { who, reply: format!("{other:?}") }),
    }
}

/// One decoded bin: velocity bytes, rates CRC, instructions; `None` for an error reply.
fn decoded(dev: &mut FirmwareLink) -> Result<Option<(Vec<u8>, u32, u32)>, ClosedLoopError> {
    let mut f = dev.recv_frame()?;
    Ok(match FirmwareLink::decode(&mut f)? {
        DeviceMessage::Decoded { velocity, rates_crc, instructions, .. } => {
            Some((velocity.to_vec(), rates_crc, instructions))
        }
        _ => None,
    })
}

/// Stream `trials` of `data` (observed bins) through `device` and `twin`:
/// each trial after a `Reset`, or with `continuous` all of them as one stream
/// (sequence numbers running on, no `Reset` after the first).
pub fn run(
    device: &mut FirmwareLink,
    twin: &mut FirmwareLink,
    data: &Dataset,
    trials: &[usize],
    real_time: bool,
    continuous: bool,
) -> Result<ClosedLoopReport, ClosedLoopError> {
    let dims = hello(device, "device")?;
    hello(twin, "twin")?;
    if dims[0] as usize != data.n_in {
        return Err(ClosedLoopError::Mismatch { device: dims[0], data: data.n_in });
    }
    let n_beh = dims[6] as usize;
    let mut r = ClosedLoopReport {
        trials: trials.len(),
        pace: if real_time { "real" } else { "max" }.into(),
        continuous,
        ..Default::default()
    };
    let mut seq = 0u32;
    let mut bin_counts = vec![0u16; data.n_in];
    let (mut decoded_vel, mut true_vel) = (Vec::new(), Vec::new());
    let (mut instructions, mut rtt_total) = (0u64, 0.0f64);
    let bin = Duration::from_secs_f64(f64::from(data.bin_ms) / 1000.0);
    let start = Instant::now();
    for (k, &i) in trials.iter().enumerate() {
        if k == 0 || !continuous {
            device.send(&HostMessage::Reset)?;
            twin.send(&HostMessage::Reset)?;
            seq = 0;
        }
        for t in 0..data.observed {
            data.held_in_counts(i, t, &mut bin_counts);
            let counts: Vec<u8> = bin_counts.iter().flat_map(|c| c.to_le_bytes()).collect();
            let msg = HostMessage::Bin { seq, counts: &counts };
            seq = seq.wrapping_add(1);
            let sent = Instant::now();
            device.send(&msg)?;
            let got = decoded(device)?;
            let rtt = sent.elapsed().as_secs_f64() * 1e3;
            twin.send(&msg)?;
            let want = decoded(twin)?;
            rtt_total += rtt;
            r.round_trip_ms_max = r.round_trip_ms_max.max(rtt);
            match (got, want) {
                (Some((v, crc, n)), Some((wv, wcrc, _))) => {
                    r.bins += 1;
                    instructions += u64::from(n);
                    if v != wv || crc != wcrc {
                        r.mismatches += 1;
                    }
                    decoded_vel.extend(v.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64));
                    if let (Some(beh), true) = (&data.behavior, data.n_beh == n_beh) {
                        true_vel.extend(beh[(i * data.observed + t) * n_beh..][..n_beh].iter().map(|x| *x as f64));
                    }
                }
                (got, _) => {
                    r.mismatches += 1;
                    r.errors += usize::from(got.is_none());
                }
            }
            if real_time {
                let sent_bins = (k * data.observed + t + 1) as u32;
                if let Some(wait) = (bin * sent_bins).checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
    let sent = (trials.len() * data.observed).max(1);
    r.instructions_per_bin = instructions as f64 / r.bins.max(1) as f64;
    r.round_trip_ms_mean = rtt_total / sent as f64;
    if n_beh > 0 && true_vel.len() == decoded_vel.len() && !true_vel.is_empty() {
        r.behavior_r2 = Some(r2_uniform(&true_vel, &decoded_vel, n_beh));
    }
    Ok(r)
}

/// Where the blob decodes.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// QEMU emulating `core`, running `elf` (`None`: build it with the blob).
    Qemu {
        /// The firmware ELF.
        elf: Option<PathBuf>,
    },
    /// A board on a serial port (set up with `stty -F PORT 115200 raw -echo`).
    Serial {
        /// The port.
        port: PathBuf,
    },
    /// A second host twin: no Cortex-M, no instruction counts.
    TwinOnly,
}

/// A closed loop to run: the blob, the data set and where it decodes.
#[derive(Clone, Debug)]
pub struct ClosedLoopSpec {
    /// The blob (`lflow export`).
    pub blob: PathBuf,
    /// The data set whose eval trials (or continuous eval recording) are streamed.
    pub data: PathBuf,
    /// Where the blob decodes.
    pub endpoint: Endpoint,
    /// The firmware's host twin (`None`: build it with the blob).
    pub twin: Option<PathBuf>,
    /// The core the firmware is built for and QEMU emulates.
    pub core: Core,
    /// Eval trials streamed (0: all).
    pub trials: usize,
    /// One uninterrupted stream, never reset.
    pub continuous: bool,
    /// One bin per bin width (else as fast as the link carries them).
    pub real_time: bool,
}

/// Build what is missing (`progress` hears of each build), start the device
/// and the twin, and run the loop ([`run`]).
pub fn run_spec(spec: &ClosedLoopSpec, mut progress: impl FnMut(&str)) -> Result<ClosedLoopReport, ClosedLoopError> {
    let data = crate::data::load(&spec.data)?;
    let mut eval = if spec.continuous { data.eval_streams().concat() } else { data.indices(Split::Eval) };
    if spec.trials > 0 {
        eval.truncate(spec.trials);
    }
    let (core, blob) = (spec.core, &spec.blob);
    let (mut device, twin, label) = match &spec.endpoint {
        Endpoint::TwinOnly => {
            let twin = match &spec.twin {
                Some(t) => t.clone(),
                None => {
                    progress(&format!("building the firmware's host twin with {} ...", blob.display()));
                    let opts = FirmwareBuild { twin_only: true, ..Default::default() };
                    build_firmware_for(core, blob, &core.target_dir(), opts)?.1
                }
            };
            (FirmwareLink::twin(&twin)?, twin, "host twin".to_string())
        }
        endpoint => {
            let elf = match endpoint {
                Endpoint::Qemu { elf } => elf.clone(),
                _ => None,
            };
            let (elf, twin) = match (elf, &spec.twin) {
                (Some(e), Some(t)) => (e, t.clone()),
                _ => {
                    progress(&format!(
                        "building the {} firmware and its host twin with {} ...",
                        core.cpu(),
                        blob.display()
                    ));
                    let opts = FirmwareBuild { twin: true, ..Default::default() };
                    build_firmware_for(core, blob, &core.target_dir(), opts)?
                }
            };
            match endpoint {
                Endpoint::Serial { port } => (FirmwareLink::serial(port)?, twin, "serial".to_string()),
                _ => (FirmwareLink::start_on(core, &elf, true)?, twin, format!("qemu {}", core.cpu())),
            }
        }
    };
    let mut host = FirmwareLink::twin(&twin)?;
    let mut r = run(&mut device, &mut host, &data, &eval, spec.real_time, spec.continuous)?;
    r.endpoint = label;
    Ok(r)
}

impl ClosedLoopReport {
    /// The report as text.
    pub fn summary(&self) -> String {
        let r = self;
        let stream = if r.continuous { " as one stream without resets" } else { "" };
        let head = if r.endpoint == "host twin" {
            format!(
                "{} trials{stream}, {} bins decoded by the firmware's host twin, the same program built for this \
                 machine (not a Cortex-M: no instruction counts, no device-against-host comparison; with \
                 qemu-system-arm installed the demo decodes on an emulated Cortex-M7), {} errors\n\
                 behaviour R2 of the decoded velocity: {}\n",
                r.trials,
                r.bins,
                r.errors,
                r.behavior_r2.map_or("-".into(), |v| format!("{v:.4}")),
            )
        } else {
            format!(
                "{} trials{stream}, {} bins decoded ({}), {} mismatches against lflow-core on the host, {} errors\n\
                 behaviour R2 of the device's velocity: {}\ninstructions per bin: {:.0} ({:.2} ms at 64 MHz, {:.3} ms at 480 MHz)\n",
                r.trials,
                r.bins,
                r.endpoint,
                r.mismatches,
                r.errors,
                r.behavior_r2.map_or("-".into(), |v| format!("{v:.4}")),
                r.instructions_per_bin,
                r.instructions_per_bin / 64e3,
                r.instructions_per_bin / 480e3,
            )
        };
        head + &format!(
            "round trip: {:.2} ms mean, {:.2} ms max ({} pace)\n",
            r.round_trip_ms_mean, r.round_trip_ms_max, r.pace
        )
    }
}
