//! Closed loop: stream trials bin by bin to the device and to its host twin
//! (`lflow-core` with the same blob), compare every decoded bin bit for bit.

use crate::data::Dataset;
use crate::deploy::link::{LinkError, QemuDevice};
use crate::metrics::r2_uniform;
use lflow_core::wire::{DeviceMessage, HostMessage};
use serde::Serialize;
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
    pub device: String,
}

/// Why a closed-loop run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClosedLoopError {
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

fn hello(dev: &mut QemuDevice, who: &'static str) -> Result<[u32; 7], ClosedLoopError> {
    let mut f = dev.recv_frame()?;
    match QemuDevice::decode(&mut f)? {
        DeviceMessage::Hello { blob_error: None, dims, .. } => Ok(dims),
        DeviceMessage::Hello { blob_error: Some(e), .. } => Err(ClosedLoopError::Refused { who, reason: e.into() }),
        other => Err(ClosedLoopError::Unexpected { who, reply: format!("{other:?}") }),
    }
}

/// One decoded bin: velocity bytes, rates CRC, instructions; `None` for an error reply.
fn decoded(dev: &mut QemuDevice) -> Result<Option<(Vec<u8>, u32, u32)>, ClosedLoopError> {
    let mut f = dev.recv_frame()?;
    Ok(match QemuDevice::decode(&mut f)? {
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
    device: &mut QemuDevice,
    twin: &mut QemuDevice,
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
