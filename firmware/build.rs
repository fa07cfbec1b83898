//! Reads the model blob's header at build time: the firmware's const sizes
//! come from it (so the binary holds exactly one model and its RAM is known at
//! link time), and the blob is embedded in flash.
//!
//! `LFLOW_BLOB=path/to/model.lfw cargo build --release` (default: a small
//! built-in test model written here, so the crate always builds).

use lflow_core::blob::{Blob, BlobWriter, Tensor};
use lflow_core::{Dims, InputSchedule, Seeded, StorageFormat};
use std::path::PathBuf;

fn default_blob() -> Vec<u8> {
    let dims = Dims { n_in: 12, hidden: 8, d_model: 24, ff: 24, n_out: 15, window: 5, n_beh: 2 };
    let mut w = BlobWriter::new(dims, StorageFormat::F32, InputSchedule::CurrentBin, 0.55, 0.01).expect("valid dims");
    let mut rng = Seeded::new(1);
    for t in Tensor::ALL {
        let (r, c) = t.shape(&dims);
        let scale = 1.0 / (c.max(1) as f32).sqrt();
        let v: Vec<f32> = (0..r * c).map(|_| rng.next_normal() * scale).collect();
        w.tensor(t, &v).expect("sizes match");
    }
    w.finish().expect("a valid blob")
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=LFLOW_BLOB");
    println!("cargo:rerun-if-changed=memory");
    let bytes = match std::env::var_os("LFLOW_BLOB") {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&p).display());
            std::fs::read(&p).unwrap_or_else(|e| panic!("LFLOW_BLOB={}: {e}", PathBuf::from(&p).display()))
        }
        None => default_blob(),
    };
    // The header's sizes must be readable; the full validation runs again on the device at boot.
    let dims = match Blob::parse(&bytes, None) {
        Ok(b) => b.header().dims,
        Err(e) => {
            // A corrupt blob still builds (the device refuses it at boot): take the raw header.
            println!("cargo:warning=the embedded blob is invalid ({e}); the firmware will refuse it at boot");
            let u = |at: usize| bytes.get(at..at + 4).map_or(1, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
            let h = u(16).max(4) / 4 * 4;
            Dims {
                n_in: u(12).max(1),
                hidden: h,
                d_model: 3 * h,
                ff: u(24).max(1),
                n_out: u(28).max(1),
                window: u(32).max(1),
                n_beh: u(36),
            }
        }
    };
    std::fs::write(out.join("model.lfw"), &bytes).expect("OUT_DIR is writable");
    let config = format!(
        "pub const N_IN: usize = {};\npub const H: usize = {};\npub const D: usize = {};\npub const FF: usize = {};\n\
         pub const N_OUT: usize = {};\npub const W: usize = {};\npub const N_BEH: usize = {};\npub const BLOB_LEN: usize = {};\n",
        dims.n_in, dims.hidden, dims.d_model, dims.ff, dims.n_out, dims.window, dims.n_beh, bytes.len()
    );
    std::fs::write(out.join("config.rs"), config).expect("OUT_DIR is writable");
    let memory = if std::env::var_os("CARGO_FEATURE_STM32H7").is_some() {
        "memory/stm32h7.x"
    } else if std::env::var_os("CARGO_FEATURE_AN386").is_some() {
        "memory/an386.x"
    } else {
        "memory/qemu.x"
    };
    std::fs::copy(memory, out.join("memory.x")).expect("memory file present");
    println!("cargo:rustc-link-search={}", out.display());
    if std::env::var_os("CARGO_FEATURE_DEFMT").is_some()
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none")
    {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
