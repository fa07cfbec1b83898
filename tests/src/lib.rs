//! Helpers of the cross-crate tests in `tests/tests/`.

use lflow_host::data::lorenz::{generate, LorenzConfig};
use lflow_host::data::Dataset;
use lflow_host::train::cpu::CpuBackend;
use lflow_host::train::train_config::TrainConfig;
use lflow_host::train::trainer::Trainer;
use lflow_host::{Mode, ModelConfig};

/// Held-in neurons of the small streaming model the cross-checks train.
pub const N_IN: usize = 12;
/// All neurons.
pub const N_OUT: usize = 15;
/// Latent size (decoder width 24).
pub const H: usize = 8;
/// Feed-forward width.
pub const FF: usize = 24;
/// Causal window.
pub const W: usize = 5;

/// A small Lorenz set and a streaming model trained on it for `epochs` epochs.
pub fn trained_streaming(trials: usize, seed: u64, epochs: usize) -> (Dataset, Trainer<CpuBackend>) {
    let data = generate(&LorenzConfig {
        trials,
        eval_trials: trials / 5,
        observed: 16,
        forward: 4,
        held_in: N_IN,
        held_out: N_OUT - N_IN,
        seed,
        ..LorenzConfig::default()
    });
    let model = ModelConfig {
        n_in: N_IN,
        n_out: N_OUT,
        hidden: H,
        ff: FF,
        gamma: 0.55,
        eps: 0.01,
        mode: Mode::Streaming { window: W },
        anchor_every: 0,
    };
    let train = TrainConfig { batch_size: 16, seed: seed + 2, ..TrainConfig::default() };
    let mut t = Trainer::new(model, train, CpuBackend::new(2).expect("threads start"));
    for _ in 0..epochs {
        t.epoch(&data).unwrap();
    }
    (data, t)
}

/// `bytes` copied into a 16-byte aligned buffer (as a blob sits in flash).
pub use lflow_host::deploy::blob::AlignedBuf as AlignedBytes;

/// max |got - want| / max |want|.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num = got.iter().zip(want).map(|(g, w)| (*g as f64 - *w as f64).abs()).fold(0.0, f64::max);
    let den = want.iter().map(|w| (*w as f64).abs()).fold(0.0, f64::max);
    num / den.max(1e-30)
}
