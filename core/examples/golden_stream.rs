//! Decode the authors' recorded trials (`../shared/golden/causal_w3`) bin by bin,
//! as the device does, in f32, f16 and int8 storage, and compare every bin's
//! log-rates with what the published PyTorch model computed.
//!
//! `cargo run --release -p lflow-core --features std --example golden_stream`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{golden_blob, rel_err, Aligned, Golden};
use lflow_core::{InputSchedule, Provided, StorageFormat, StreamingDecoder};

type GoldenDecoder<'a> = StreamingDecoder<'a, 5, 8, 24, 512, 7, 3, 2>;

fn main() {
    let g = Golden::load("causal_w3");
    let (trials, t_obs, n_in) = (g.shape("input.spikes")[0], g.shape("input.spikes")[1], g.shape("input.spikes")[2]);
    let bins = g.shape("output.logrates")[1];
    let draws = g.shape("input.noise")[0];
    let (noise, spikes, want) = (g.get("input.noise"), g.get("input.spikes"), g.get("output.logrates"));
    println!("golden causal_w3: {trials} trials x {bins} bins ({t_obs} observed), window 3, recorded noise");
    for storage in [StorageFormat::F32, StorageFormat::F16, StorageFormat::I8] {
        let bytes = golden_blob(&g, GoldenDecoder::DIMS, storage, InputSchedule::PreviousBin);
        let blob = Aligned::new(&bytes);
        let mut dec = match GoldenDecoder::from_blob(blob.bytes()) {
            Ok(d) => d,
            Err(e) => return eprintln!("blob rejected: {e}"),
        };
        let mut got = Vec::new();
        for trial in 0..trials {
            let h = 8;
            let mine: Vec<f32> = (0..draws)
                .flat_map(|i| noise[(i * trials + trial) * h..(i * trials + trial + 1) * h].to_vec())
                .collect();
            let mut source = Provided::new(&mine);
            dec.reset();
            for t in 0..bins {
                let obs = t.min(t_obs - 1);
                let row = &spikes[(trial * t_obs + obs) * n_in..(trial * t_obs + obs + 1) * n_in];
                let x: [u16; 5] = std::array::from_fn(|i| row[i] as u16);
                match dec.step(&x, &mut source) {
                    Ok(out) => got.extend_from_slice(out.log_rates),
                    Err(e) => return eprintln!("trial {trial} bin {t}: {e:?}"),
                }
            }
        }
        println!(
            "{:>4} weights: blob {:>6} bytes, log-rates max rel err vs PyTorch {:.2e}",
            format!("{storage:?}"),
            bytes.len(),
            rel_err(&got, want)
        );
    }
}
