//! The firmware link: the firmware built with a blob (`firmware/`, or
//! `$LFLOW_FIRMWARE`), and the wire protocol to it under `qemu-system-arm` (a
//! Cortex-M4F on `mps2-an386` or a Cortex-M7 on `mps2-an500`, its UART on a
//! local unix socket), on a board's serial port, or to its host twin (the
//! same program built for the host, on stdin/stdout).

use lflow_core::wire::{decode, encode, DeviceMessage, FrameReader, HostMessage, WireError, MAX_FRAME};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the device link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A program could not be started (QEMU, the twin).
    #[error("cannot start {program}{hint}")]
    Spawn {
        /// The program.
        program: String,
        /// How to get it, if it is a package.
        hint: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The serial socket did not come up.
    #[error("{path}: QEMU's serial socket did not come up within {secs} s")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Seconds waited.
        secs: u64,
    },
    /// Reading or writing the socket failed (or timed out).
    #[error("serial link: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be encoded or decoded.
    #[error("serial link: bad frame")]
    Wire(#[source] WireError),
    /// The firmware closed the link.
    #[error("the firmware closed the link")]
    Closed,
    /// No firmware sources to build.
    #[error(
        "{}: no firmware sources here (a langevin-bci checkout's firmware/ beside its core/): pass \
         --firmware DIR or set LFLOW_FIRMWARE to that folder",
        dir.display()
    )]
    NoFirmware {
        /// The folder looked in.
        dir: PathBuf,
    },
}

/// A Cortex-M core the firmware is built for (its `target-cpu`) and QEMU emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Core {
    /// Cortex-M4 with FPv4-SP (DSP extension, single-precision FPU): QEMU
    /// `mps2-an386`, RAM limited to 96 KiB at link time.
    M4,
    /// Cortex-M7 with FPv5: QEMU `mps2-an500`.
    M7,
}

impl Core {
    /// Both cores.
    pub const ALL: [Core; 2] = [Core::M4, Core::M7];

    /// `m4` or `m7`.
    pub fn name(self) -> &'static str {
        match self {
            Core::M4 => "m4",
            Core::M7 => "m7",
        }
    }

    /// LLVM's and QEMU's CPU name.
    pub fn cpu(self) -> &'static str {
        match self {
            Core::M4 => "cortex-m4",
            Core::M7 => "cortex-m7",
        }
    }

    /// The QEMU machine.
    pub fn machine(self) -> &'static str {
        match self {
            Core::M4 => "mps2-an386",
            Core::M7 => "mps2-an500",
        }
    }

    /// The firmware's cargo features for this core's QEMU machine.
    fn features(self) -> &'static str {
        match self {
            Core::M4 => "an386",
            Core::M7 => "qemu",
        }
    }

    /// The target folder of this core's firmware builds (shared, so the
    /// dependencies compile once per core).
    pub fn target_dir(self) -> PathBuf {
        match self {
            Core::M7 => firmware_target_dir(),
            Core::M4 => firmware_dir().join("../target/firmware-m4"),
        }
    }
}

impl std::fmt::Display for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of a firmware build.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirmwareBuild<'a> {
    /// Link with `panic-never`: the build fails if any panic path survives.
    pub panic_never: bool,
    /// Also build the host twin.
    pub twin: bool,
    /// Build the host twin only (no Cortex-M target needed).
    pub twin_only: bool,
    /// Extra cargo features.
    pub features: &'a [&'a str],
}

/// The wire link to the firmware: on a Cortex-M under QEMU, a board on a
/// serial port, or the firmware's host twin.
pub struct FirmwareLink {
    child: Child,
    input: Box<dyn Read + Send>,
    output: Box<dyn Write + Send>,
    reader: FrameReader<MAX_FRAME>,
    scratch: Vec<u8>,
    out: Vec<u8>,
    socket: PathBuf,
}

impl FirmwareLink {
    /// Boot `elf` (built for the Cortex-M7) under QEMU; with `icount`
    /// (`-icount shift=6`) the virtual clock advances per instruction, and the
    /// firmware reports instructions (SysTick ticks converted by its boot-time
    /// calibration).
    pub fn start(elf: &Path, icount: bool) -> Result<FirmwareLink, LinkError> {
        FirmwareLink::start_on(Core::M7, elf, icount)
    }

    /// Boot `elf`, built for `core`, on that core's QEMU machine.
    pub fn start_on(core: Core, elf: &Path, icount: bool) -> Result<FirmwareLink, LinkError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = std::env::temp_dir().join(format!("lflow-qemu-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-cpu", core.cpu(), "-machine", core.machine(), "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-chardev")
            .arg(format!("socket,id=s0,path={},server=on,wait=on", socket.display()))
            .args(["-serial", "chardev:s0"]);
        if icount {
            cmd.args(["-icount", "shift=6"]);
        }
        cmd.arg("-kernel").arg(elf).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|source| LinkError::Spawn {
            program: "qemu-system-arm".into(),
            hint: " (install it: apt-get install qemu-system-arm)",
            source,
        })?;
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => {
                    let _ = child.kill();
                    return Err(LinkError::Socket { path: socket, secs: 20 });
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let input = Box::new(stream.try_clone()?);
        Ok(FirmwareLink::with(child, input, Box::new(stream), socket))
    }

    /// Start the host twin `exe` (the firmware built for the host: `lflow-core`
    /// with the same blob), talking over its stdin and stdout.
    pub fn twin(exe: &Path) -> Result<FirmwareLink, LinkError> {
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LinkError::Spawn { program: exe.display().to_string(), hint: "", source })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(LinkError::Closed);
        };
        Ok(FirmwareLink::with(child, Box::new(stdout), Box::new(stdin), PathBuf::new()))
    }

    /// A board on a serial port (a tty already set up, e.g. `stty -F PORT 115200 raw -echo`).
    pub fn serial(port: &Path) -> Result<FirmwareLink, LinkError> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(port)?;
        let input = Box::new(file.try_clone()?);
        // No child process: a placeholder that exits at once keeps `Drop` uniform.
        let child = Command::new("true").spawn().map_err(|source| LinkError::Spawn {
            program: "true (the serial link's placeholder process)".into(),
            hint: "",
            source,
        })?;
        Ok(FirmwareLink::with(child, input, Box::new(file), PathBuf::new()))
    }

    fn with(child: Child, input: Box<dyn Read + Send>, output: Box<dyn Write + Send>, socket: PathBuf) -> FirmwareLink {
        let (scratch, out) = (vec![0; MAX_FRAME], vec![0; MAX_FRAME + 8]);
        FirmwareLink { child, input, output, reader: FrameReader::new(), scratch, out, socket }
    }

    /// Send one message.
    pub fn send(&mut self, msg: &HostMessage<'_>) -> Result<(), LinkError> {
        let n = encode(msg, &mut self.scratch, &mut self.out).map_err(LinkError::Wire)?;
        self.output.write_all(&self.out[..n])?;
        self.output.flush()?;
        Ok(())
    }

    /// Send raw bytes (tests of malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.output.write_all(bytes)?;
        self.output.flush()?;
        Ok(())
    }

    /// Receive the next frame's bytes (still encoded); decode with [`FirmwareLink::decode`].
    pub fn recv_frame(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut byte = [0u8; 1];
        loop {
            if self.input.read(&mut byte)? == 0 {
                return Err(LinkError::Closed);
            }
            if let Some(frame) = self.reader.push(byte[0]) {
                return frame.map(|f| f.to_vec()).map_err(LinkError::Wire);
            }
        }
    }

    /// Decode a received frame in place.
    pub fn decode(frame: &mut [u8]) -> Result<DeviceMessage<'_>, LinkError> {
        decode(frame).map_err(LinkError::Wire)
    }
}

impl Drop for FirmwareLink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.socket.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// The environment variable that names the firmware's sources.
pub const FIRMWARE_ENV: &str = "LFLOW_FIRMWARE";

/// The firmware's sources: `$LFLOW_FIRMWARE` (the `firmware/` folder of a
/// langevin-bci checkout, beside its `core/`), else the checkout this `lflow`
/// was built from. An `lflow` installed elsewhere builds firmware from any
/// checkout this way.
pub fn firmware_dir() -> PathBuf {
    match std::env::var_os(FIRMWARE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware"),
    }
}

/// The target folder firmware builds share (`target/firmware` beside the
/// firmware's sources), so the firmware's dependencies compile once.
pub fn firmware_target_dir() -> PathBuf {
    firmware_dir().join("../target/firmware")
}

/// Build the firmware (Cortex-M7 QEMU ELF) and its host twin with `blob`
/// embedded, from the sources in `firmware/` beside this crate; returns `(elf, twin)`.
pub fn build_firmware(blob: &Path, target_dir: &Path) -> Result<(PathBuf, PathBuf), LinkError> {
    build_firmware_for(Core::M7, blob, target_dir, FirmwareBuild { twin: true, ..Default::default() })
}

/// Build the firmware for `core` with `blob` embedded (and, with `opts.twin`,
/// its host twin); returns `(elf, twin)`. The ELF is built with the core's
/// `target-cpu` and memory map.
pub fn build_firmware_for(
    core: Core,
    blob: &Path,
    target_dir: &Path,
    opts: FirmwareBuild<'_>,
) -> Result<(PathBuf, PathBuf), LinkError> {
    let firmware = firmware_dir();
    if !firmware.join("Cargo.toml").is_file() || !firmware.join("../core/Cargo.toml").is_file() {
        return Err(LinkError::NoFirmware { dir: firmware });
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let blob = std::fs::canonicalize(blob)?;
    let host = host_triple();
    let mut features: Vec<&str> = vec![core.features()];
    features.extend(opts.features);
    if opts.panic_never {
        features.push("panic-never");
    }
    let targets: &[&str] = match (opts.twin_only, opts.twin) {
        (true, _) => &[host.as_str()],
        (false, true) => &[MCU_TARGET, host.as_str()],
        (false, false) => &[MCU_TARGET],
    };
    for &target in targets {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&firmware).args(["build", "--release", "--quiet", "--target", target]);
        if target == MCU_TARGET {
            cmd.args(["--no-default-features", "--features", &features.join(",")]).env(
                "CARGO_ENCODED_RUSTFLAGS",
                // The same flags as firmware/.cargo/config.toml's, so builds from either share artefacts.
                ["-C", "link-arg=-Tlink.x", "-C", &format!("target-cpu={}", core.cpu())].join("\x1f"),
            );
        } else {
            cmd.env_remove("CARGO_ENCODED_RUSTFLAGS");
        }
        let status = cmd.env("LFLOW_BLOB", &blob).env("CARGO_TARGET_DIR", target_dir).status()?;
        if !status.success() {
            return Err(LinkError::Io(std::io::Error::other(format!(
                "building the firmware for {core} ({target}) in {} failed",
                firmware.display()
            ))));
        }
    }
    Ok((
        target_dir.join(MCU_TARGET).join("release/lflow-firmware"),
        target_dir.join(host).join("release/lflow-firmware"),
    ))
}

/// The firmware's target triple (Cortex-M4F and M7 alike).
pub const MCU_TARGET: &str = "thumbv7em-none-eabihf";

/// The triple this program was built for: the twin runs where it runs.
fn host_triple() -> String {
    env!("LFLOW_HOST_TARGET").to_string()
}
