//! `lflow closed-loop`: the arguments of a [`ClosedLoopSpec`].

use super::CliError;
use clap::{Args, ValueEnum};
use lflow_host::deploy::closed_loop::{run_spec, ClosedLoopReport, ClosedLoopSpec, Endpoint};
use lflow_host::deploy::link::Core;
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

/// Run it; returns the report.
pub fn closed_loop(a: &ClosedLoopArgs) -> Result<ClosedLoopReport, CliError> {
    let endpoint = match (&a.serial, a.twin_only) {
        (_, true) => Endpoint::TwinOnly,
        (Some(port), false) => Endpoint::Serial { port: port.clone() },
        (None, false) => Endpoint::Qemu { elf: a.qemu.clone() },
    };
    let spec = ClosedLoopSpec {
        blob: a.blob.clone(),
        data: a.data.clone(),
        endpoint,
        twin: a.twin.clone(),
        core: a.core,
        trials: a.trials,
        continuous: a.continuous,
        real_time: matches!(a.pace, Pace::Real),
    };
    Ok(run_spec(&spec, |step| eprintln!("{step}"))?)
}
