//! `lflow bench device`: instructions per decoded bin of the reference MCU
//! configuration under QEMU's `-icount`, per weight format, with flash and RAM
//! from the linked firmware.

use crate::device::{build_firmware, LinkError, QemuDevice};
use lflow_core::blob::{BlobWriter, Tensor};
use lflow_core::wire::{DeviceMessage, HostMessage};
use lflow_core::{Dims, InputSchedule, Seeded, StorageFormat};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The reference MCU configuration: N_IN=137, H=64, D=192, FF=256, N_OUT=182, W=32, N_BEH=2.
pub const REFERENCE: Dims = Dims { n_in: 137, hidden: 64, d_model: 192, ff: 256, n_out: 182, window: 32, n_beh: 2 };

/// One format's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceFigures {
    /// Instructions per weight multiply-accumulate.
    pub instructions_per_mac: f64,
    /// Instructions per decoded bin (mean over the timed bins).
    pub instructions_per_bin: f64,
    /// The most instructions one timed bin took (a re-anchor bin adds the two posterior means).
    pub instructions_per_bin_max: f64,
    /// Implied time per bin at 480 MHz, one instruction per cycle, ms.
    pub ms_per_bin_at_480mhz: f64,
    /// Implied time of the slowest bin at 64 MHz (an implant-class clock), ms.
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

/// Measure every format, and int8 with re-anchoring (`i8-continuous`, at
/// least two periods timed); `bins` timed bins each (after one untimed bin 0).
pub fn run(bins: usize, work: &Path) -> Result<BTreeMap<String, DeviceFigures>, LinkError> {
    let mut out = BTreeMap::new();
    let macs = macs_per_bin(&REFERENCE);
    for (storage, name, anchor) in [
        (StorageFormat::F32, "f32", 0),
        (StorageFormat::F16, "f16", 0),
        (StorageFormat::I8, "i8", 0),
        (StorageFormat::I8, "i8-continuous", CONTINUOUS_ANCHOR),
    ] {
        let bins = if anchor > 0 { bins.max(2 * usize::from(anchor)) } else { bins };
        std::fs::create_dir_all(work)?;
        let blob = work.join(format!("reference-{name}.lfw"));
        std::fs::write(&blob, synthetic(REFERENCE, storage, anchor))?;
        let (elf, _) = build_firmware(&blob, &crate::device::firmware_target_dir())?;
        let (flash, ram) = elf_sizes(&elf)?;
        let mut dev = QemuDevice::start(&elf, true)?;
        let mut f = dev.recv_frame()?;
        QemuDevice::decode(&mut f)?;
        let mut rng = Seeded::new(5);
        let (mut total, mut most) = (0u64, 0u32);
        for seq in 0..=bins as u32 {
            let counts: Vec<u8> =
                (0..REFERENCE.n_in).flat_map(|_| ((rng.next_u32() % 4) as u16).to_le_bytes()).collect();
            dev.send(&HostMessage::Bin { seq, counts: &counts })?;
            let mut f = dev.recv_frame()?;
            if let DeviceMessage::Decoded { instructions, .. } = QemuDevice::decode(&mut f)? {
                if seq > 0 {
                    total += u64::from(instructions);
                    most = most.max(instructions);
                }
            }
        }
        let per_bin = total as f64 / bins.max(1) as f64;
        out.insert(
            name.to_string(),
            DeviceFigures {
                instructions_per_mac: per_bin / macs as f64,
                instructions_per_bin: per_bin,
                instructions_per_bin_max: f64::from(most),
                ms_per_bin_at_480mhz: per_bin / 480e3,
                max_ms_per_bin_at_64mhz: f64::from(most) / 64e3,
                anchor_every: anchor,
                ram_bytes: ram,
                flash_bytes: flash,
                macs_per_bin: macs,
            },
        );
    }
    Ok(out)
}
