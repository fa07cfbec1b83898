//! `lflow closed-loop`: a blob on the device under QEMU, streamed bin by bin.

use super::CliError;
use clap::{Args, ValueEnum};
use lflow_host::data::Split;
use lflow_host::deploy::closed_loop::{run, ClosedLoopReport};
use lflow_host::deploy::link::{build_firmware_for, Core, FirmwareBuild, QemuDevice};
use std::path::PathBuf;

/// `--pace`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Pace {
    /// One bin per bin width, as a recording arrives.
    Real,
    /// As fast as the link carries them.
    Max,
}

/// Arguments of `lflow closed-loop`.
#[derive(Args, Debug, Clone)]
pub struct ClosedLoopArgs {
    /// The blob (`lflow export`).
    #[arg(long)]
    pub blob: PathBuf,
    /// The data set whose eval trials are streamed.
    #[arg(long)]
    pub data: PathBuf,
    /// A firmware ELF built with this blob (default: build it from firmware/).
    #[arg(long)]
    pub qemu: Option<PathBuf>,
    /// Its host twin, the firmware built for the host (default: build it too).
    #[arg(long)]
    pub twin: Option<PathBuf>,
    /// A board on this serial port instead of QEMU (set it up first:
    /// `stty -F PORT 115200 raw -echo`); the twin is built from the blob as usual.
    #[arg(long, conflicts_with = "qemu")]
    pub serial: Option<PathBuf>,
    /// Pace of the stream.
    #[arg(long, value_enum, default_value_t = Pace::Max)]
    pub pace: Pace,
    /// The core QEMU emulates (and the firmware is built for): a Cortex-M4F on
    /// `mps2-an386` or a Cortex-M7 on `mps2-an500`.
    #[arg(long, value_enum, default_value_t = Core::M7)]
    pub core: Core,
    /// Eval trials streamed (0: all).
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// One uninterrupted stream, never reset: the eval trials back to back, or
    /// a continuous data set's eval recording in order (`lflow generate lorenz
    /// --continuous`); every bin is still compared bit for bit.
    #[arg(long)]
    pub continuous: bool,
    /// No QEMU or board: the firmware's host twin (the same program built for
    /// this machine) decodes, against a second twin; no Cortex-M instruction
    /// counts. `lflow demo` does this where qemu-system-arm is missing.
    #[arg(long, conflicts_with_all = ["qemu", "serial"])]
    pub twin_only: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Why a closed loop failed, as a CLI error.
fn link(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Run it; returns the report.
pub fn closed_loop(a: &ClosedLoopArgs) -> Result<ClosedLoopReport, CliError> {
    let data = lflow_host::data::load(&a.data)?;
    let mut eval = if a.continuous { data.eval_streams().concat() } else { data.indices(Split::Eval) };
    if a.trials > 0 {
        eval.truncate(a.trials);
    }
    // The device (QEMU, a board, or a second host twin) and the host twin it is compared with.
    let (mut device, twin, label) = if a.twin_only {
        let twin = match &a.twin {
            Some(t) => t.clone(),
            None => {
                eprintln!("building the firmware's host twin with {} ...", a.blob.display());
                let opts = FirmwareBuild { twin_only: true, ..Default::default() };
                build_firmware_for(a.core, &a.blob, &a.core.target_dir(), opts).map_err(link)?.1
            }
        };
        (QemuDevice::twin(&twin).map_err(link)?, twin, "host twin".to_string())
    } else {
        let (elf, twin) = match (&a.qemu, &a.twin) {
            (Some(e), Some(t)) => (e.clone(), t.clone()),
            _ => {
                eprintln!("building the {} firmware and its host twin with {} ...", a.core.cpu(), a.blob.display());
                let opts = FirmwareBuild { twin: true, ..Default::default() };
                build_firmware_for(a.core, &a.blob, &a.core.target_dir(), opts).map_err(link)?
            }
        };
        match &a.serial {
            Some(port) => (QemuDevice::serial(port).map_err(link)?, twin, "serial".to_string()),
            None => (QemuDevice::start_on(a.core, &elf, true).map_err(link)?, twin, format!("qemu {}", a.core.cpu())),
        }
    };
    let mut host = QemuDevice::twin(&twin).map_err(link)?;
    let mut r = run(&mut device, &mut host, &data, &eval, matches!(a.pace, Pace::Real), a.continuous).map_err(link)?;
    r.device = label;
    Ok(r)
}

/// The report as text.
pub fn summary(r: &ClosedLoopReport) -> String {
    let stream = if r.continuous { " as one stream without resets" } else { "" };
    let head = if r.device == "host twin" {
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
            r.device,
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
