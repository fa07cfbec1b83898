//! Write an `LFW1` blob of random finite weights, for fuzz seeds and smoke tests.
//!
//! ```text
//! cargo run -p lflow-core --features std --example synthetic_blob -- \
//!     N_IN,H,D,FF,N_OUT,W,N_BEH f32|f16|i8 previous|current SEED OUT.lfw
//! cargo run -p lflow-core --features std --example synthetic_blob -- 3,4,12,8,5,2,2 i8 current 1 tiny.lfw
//! ```

use lflow_core::blob::{BlobWriter, Tensor};
use lflow_core::{Dims, InputSchedule, Seeded, StorageFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_blob: {e}\nusage: synthetic_blob N_IN,H,D,FF,N_OUT,W,N_BEH f32|f16|i8 previous|current SEED OUT");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [dims, storage, schedule, seed, out] = args else {
        return Err(format!("expected 5 arguments, got {}", args.len()));
    };
    let d: Vec<u32> =
        dims.split(',').map(|v| v.parse().map_err(|e| format!("dims: {v:?}: {e}"))).collect::<Result<_, _>>()?;
    let [n_in, hidden, d_model, ff, n_out, window, n_beh] = d[..] else { return Err("dims: need 7 numbers".into()) };
    let dims = Dims { n_in, hidden, d_model, ff, n_out, window, n_beh };
    let storage = match storage.as_str() {
        "f32" => StorageFormat::F32,
        "f16" => StorageFormat::F16,
        "i8" => StorageFormat::I8,
        other => return Err(format!("storage {other:?}: expected f32, f16 or i8")),
    };
    let schedule = match schedule.as_str() {
        "previous" => InputSchedule::PreviousBin,
        "current" => InputSchedule::CurrentBin,
        other => return Err(format!("schedule {other:?}: expected previous or current")),
    };
    let seed: u64 = seed.parse().map_err(|e| format!("seed {seed:?}: {e}"))?;
    let mut rng = Seeded::new(seed);
    let mut w = BlobWriter::new(dims, storage, schedule, 0.55, 0.01).map_err(|e| e.to_string())?;
    for t in Tensor::ALL {
        let (r, c) = t.shape(&dims);
        let scale = 1.0 / (c.max(1) as f32).sqrt();
        let vals: Vec<f32> = (0..r * c).map(|_| rng.next_normal() * scale).collect();
        w.tensor(t, &vals).map_err(|e| e.to_string())?;
    }
    let bytes = w.finish().map_err(|e| e.to_string())?;
    write_atomically(std::path::Path::new(out), &bytes).map_err(|e| format!("{out}: {e}"))?;
    println!("{out}: {} bytes", bytes.len());
    Ok(())
}

/// Write to a temporary file beside `path`, fsync, then rename over it.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("lfw.partial");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
