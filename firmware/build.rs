//! Reads the model blob's header at build time: the firmware's const sizes
//! come from it (so the binary holds exactly one model and its RAM is known at
//! link time), and the blob is embedded in flash.
//!
//! `LFLOW_BLOB=path/to/model.lfw cargo build --release` (default: a small
//! built-in test model written here, so the crate always builds).

use lflow_core::blob::{peek_header, Blob, BlobWriter, Tensor};
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
            // A corrupt blob still builds (the device refuses it at boot): take the
            // header's sizes as stored, made usable as const generics.
            println!("cargo:warning=the embedded blob is invalid ({e}); the firmware will refuse it at boot");
            // No header at all (too short, bad magic): the smallest model.
            let smallest = Dims { n_in: 1, hidden: 4, d_model: 12, ff: 1, n_out: 1, window: 1, n_beh: 1 };
            let raw = peek_header(&bytes).map_or(smallest, |h| h.dims);
            let h = raw.hidden.max(4) / 4 * 4;
            Dims {
                n_in: raw.n_in.max(1),
                hidden: h,
                d_model: 3 * h,
                ff: raw.ff.max(1),
                n_out: raw.n_out.max(1),
                window: raw.window.max(1),
                n_beh: raw.n_beh,
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
