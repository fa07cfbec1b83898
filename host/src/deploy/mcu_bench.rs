//! `lflow bench device`: the reference MCU configuration under QEMU's
//! `-icount`, per core (Cortex-M4F, Cortex-M7) and weight format: the
//! kernels' instructions per multiply-accumulate (the device's kernel check,
//! which also compares them with their portable twins bit for bit),
//! instructions per decoded bin, and flash and RAM of the linked firmware.
//! Every firmware is linked with `panic-never`.

use crate::deploy::link::{build_firmware_for, Core, FirmwareBuild, FirmwareLink, LinkError};
use lflow_core::blob::{BlobWriter, Tensor};
use lflow_core::wire::{DeviceMessage, HostMessage};
use lflow_core::{Dims, InputSchedule, Seeded, StorageFormat};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The reference MCU configuration: N_IN=137, H=64, D=192, FF=256, N_OUT=182, W=32, N_BEH=2.
pub const REFERENCE: Dims = Dims { n_in: 137, hidden: 64, d_model: 192, ff: 256, n_out: 182, window: 32, n_beh: 2 };

/// One core and format's figures. Times assume one instruction per cycle.
#[derive(Clone, Debug, Serialize)]
pub struct McuFigures {
    /// `m4` or `m7`.
    pub core: Core,
    /// `f32`, `f16`, `i8` or `i8-continuous`.
    pub format: String,
    /// Instructions per weight multiply-accumulate in the matrix kernels (every
    /// matrix of the model once, `HostMessage::KernelCheck`).
    pub instructions_per_mac: f64,
    /// The same for the portable twins on the device (the plain-Rust baseline).
    pub portable_instructions_per_mac: f64,
    /// The kernels' instructions per MAC, per matrix (`StreamingDecoder::linears` order).
    pub per_matrix_instructions_per_mac: Vec<f64>,
    /// Ticks of the device's 200,000-instruction calibration loop (QEMU's clock ticks per instruction x 200,000).
    pub calibration_ticks: u32,
    /// Kernel outputs that differed from the twins' in bits (must be 0).
    pub kernel_mismatches: u32,
    /// Instructions per decoded bin, everything in it (GRU, Langevin,
    /// attention, LayerNorm, readout, velocity), mean over the timed bins.
    pub instructions_per_bin: f64,
    /// Instructions per bin over weight MACs per bin.
    pub bin_instructions_per_mac: f64,
    /// The most instructions one timed bin took (a re-anchor bin adds the two posterior means).
    pub instructions_per_bin_max: f64,
    /// Mean time per bin at 64 MHz, ms.
    pub ms_per_bin_at_64mhz: f64,
    /// Mean time per bin at 120 MHz, ms.
    pub ms_per_bin_at_120mhz: f64,
    /// Mean time per bin at 480 MHz, ms.
    pub ms_per_bin_at_480mhz: f64,
    /// Time of the slowest bin at 64 MHz (an implant-class clock), ms.
    pub max_ms_per_bin_at_64mhz: f64,
    /// Re-anchor period of the blob (0: never; `core/CONTINUOUS.md`).
    pub anchor_every: u8,
    /// Statically allocated RAM (`.data` + `.bss` + `.uninit`), bytes; the stack comes on top.
    pub ram_bytes: u64,
    /// Flash (`.vector_table` + `.text` + `.rodata` + `.data` initialisers), bytes.
    pub flash_bytes: u64,
    /// Weight MACs per bin (plus the attention over the window).
    pub macs_per_bin: u64,
}

/// Weight MACs of one step of a model of `d` (as `StreamingDecoder::macs_per_step`).
pub fn macs_per_bin(d: &Dims) -> u64 {
    let (n_in, h, dm, ff, n_out, w, nb) = (
        d.n_in as u64,
        d.hidden as u64,
        d.d_model as u64,
        d.ff as u64,
        d.n_out as u64,
        d.window as u64,
        d.n_beh as u64,
    );
    3 * h * n_in + 3 * h * h + 3 * dm * dm + dm * dm + 2 * ff * dm + n_out * dm + nb * dm + 2 * w * dm
}

fn synthetic(d: Dims, storage: StorageFormat, anchor_every: u8) -> Vec<u8> {
    let mut w = BlobWriter::new(d, storage, InputSchedule::CurrentBin, 0.55, 0.01)
        .expect("valid dims")
        .anchor_every(anchor_every);
    let mut rng = Seeded::new(17);
    for t in Tensor::ALL {
        let (r, c) = t.shape(&d);
        let v: Vec<f32> = (0..r * c).map(|_| rng.next_normal() / (c.max(1) as f32).sqrt()).collect();
        w.tensor(t, &v).expect("sizes match");
    }
    w.finish().expect("a valid blob")
}

/// Weight MACs of each matrix, in `StreamingDecoder::linears` order.
pub fn matrix_macs(d: &Dims) -> [u64; 12] {
    let (n_in, h, dm, ff, n_out, nb) =
        (d.n_in as u64, d.hidden as u64, d.d_model as u64, d.ff as u64, d.n_out as u64, d.n_beh as u64);
    [3 * h * n_in, 3 * h * h, h * h, h * h, h * h, h * h, 3 * dm * dm, dm * dm, ff * dm, dm * ff, n_out * dm, nb * dm]
}

/// `(flash, ram)` of an ELF from its allocated sections.
pub fn elf_sizes(elf: &Path) -> Result<(u64, u64), LinkError> {
    use object::{Object, ObjectSection, SectionKind};
    let bytes = std::fs::read(elf)?;
    let file = object::File::parse(&*bytes).map_err(|e| LinkError::Io(std::io::Error::other(e.to_string())))?;
    let (mut flash, mut ram) = (0, 0);
    for s in file.sections() {
        match s.kind() {
            SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => flash += s.size(),
            SectionKind::Data => {
                flash += s.size();
                ram += s.size();
            }
            SectionKind::UninitializedData => ram += s.size(),
            _ => {}
        }
    }
    Ok((flash, ram))
}

/// The re-anchor period of the continuous decoder measured (`configs/lorenz_continuous.toml`).
pub const CONTINUOUS_ANCHOR: u8 = 5;

/// The formats measured: name, storage, re-anchor period.
pub const FORMATS: [(&str, StorageFormat, u8); 4] = [
    ("f32", StorageFormat::F32, 0),
    ("f16", StorageFormat::F16, 0),
    ("i8", StorageFormat::I8, 0),
    ("i8-continuous", StorageFormat::I8, CONTINUOUS_ANCHOR),
];

/// Measure every format of [`FORMATS`] on every core of `cores`; `bins` timed
/// bins each (after one untimed bin 0; at least two periods with re-anchoring).
/// Keys are `core/format`. `progress` hears each firmware before it is built.
pub fn run(
    cores: &[Core],
    bins: usize,
    work: &Path,
    mut progress: impl FnMut(Core, &str),
) -> Result<BTreeMap<String, McuFigures>, LinkError> {
    let mut out = BTreeMap::new();
    let macs = macs_per_bin(&REFERENCE);
    std::fs::create_dir_all(work)?;
    for &core in cores {
        for (name, storage, anchor) in FORMATS {
            progress(core, name);
            let bins = if anchor > 0 { bins.max(2 * usize::from(anchor)) } else { bins };
            let blob = work.join(format!("reference-{name}.lfw"));
            std::fs::write(&blob, synthetic(REFERENCE, storage, anchor))?;
            let opts = FirmwareBuild { panic_never: true, ..Default::default() };
            let (elf, _) = build_firmware_for(core, &blob, &core.target_dir(), opts)?;
            let (flash, ram) = elf_sizes(&elf)?;
            let mut dev = FirmwareLink::start_on(core, &elf, true)?;
            let mut f = dev.recv_frame()?;
            FirmwareLink::decode(&mut f)?;
            dev.send(&HostMessage::KernelCheck { seed: 9 })?;
            let mut f = dev.recv_frame()?;
            let DeviceMessage::KernelCheck {
                macs: kmacs,
                instructions,
                portable_instructions,
                per_matrix,
                mismatches,
                calibration,
                ..
            } = FirmwareLink::decode(&mut f)?
            else {
                return Err(LinkError::Io(std::io::Error::other("no reply to the kernel check")));
            };
            let mut rng = Seeded::new(5);
            let (mut total, mut most) = (0u64, 0u32);
            for seq in 0..=bins as u32 {
                let counts: Vec<u8> =
                    (0..REFERENCE.n_in).flat_map(|_| ((rng.next_u32() % 4) as u16).to_le_bytes()).collect();
                dev.send(&HostMessage::Bin { seq, counts: &counts })?;
                let mut f = dev.recv_frame()?;
                if let DeviceMessage::Decoded { instructions, .. } = FirmwareLink::decode(&mut f)? {
                    if seq > 0 {
                        total += u64::from(instructions);
                        most = most.max(instructions);
                    }
                }
            }
            let per_bin = total as f64 / bins.max(1) as f64;
            let kmacs = f64::from(kmacs.max(1));
            out.insert(
                format!("{core}/{name}"),
                McuFigures {
                    core,
                    format: name.to_string(),
                    instructions_per_mac: f64::from(instructions) / kmacs,
                    portable_instructions_per_mac: f64::from(portable_instructions) / kmacs,
                    kernel_mismatches: mismatches,
                    per_matrix_instructions_per_mac: per_matrix
                        .iter()
                        .zip(matrix_macs(&REFERENCE))
                        .map(|(&n, m)| f64::from(n) / m.max(1) as f64)
                        .collect(),
                    calibration_ticks: calibration,
                    instructions_per_bin: per_bin,
                    bin_instructions_per_mac: per_bin / macs as f64,
                    instructions_per_bin_max: f64::from(most),
                    ms_per_bin_at_64mhz: per_bin / 64e3,
                    ms_per_bin_at_120mhz: per_bin / 120e3,
                    ms_per_bin_at_480mhz: per_bin / 480e3,
                    max_ms_per_bin_at_64mhz: f64::from(most) / 64e3,
                    anchor_every: anchor,
                    ram_bytes: ram,
                    flash_bytes: flash,
                    macs_per_bin: macs,
                },
            );
        }
    }
    Ok(out)
}
