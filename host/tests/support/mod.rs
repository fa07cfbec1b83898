//! The golden fixtures as the trainer's tests use them (shared by several test crates).
#![allow(dead_code)]

#[path = "../../../core/tests/common/mod.rs"]
pub mod common;

use common::Golden;
use lflow_host::train::params::PARAMS;
use lflow_host::{Mode, ModelConfig, Params};

/// One golden case: the fixture, its model, parameters and noise `[B, TT + 1, H]` (trial-major).
pub struct Case {
    pub g: Golden,
    pub cfg: ModelConfig,
    pub params: Params,
    pub noise: Vec<f32>,
    pub b: usize,
    pub t: usize,
    pub tt: usize,
}

/// The four cases of `../shared/golden/`.
pub const CASES: [&str; 4] = ["paper_random_potential", "paper_init_potential", "causal_w3", "paper_cd"];

pub fn load(name: &str) -> Case {
    let g = Golden::load(name);
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::shared_dir().join("golden").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let window = meta["causal_window"].as_u64().map(|w| w as usize);
    let cfg = ModelConfig {
        n_in: meta["n_in"].as_u64().unwrap() as usize,
        n_out: meta["n_out"].as_u64().unwrap() as usize,
        hidden: meta["hidden"].as_u64().unwrap() as usize,
        ff: meta["ff"].as_u64().unwrap() as usize,
        gamma: meta["gamma"].as_f64().unwrap() as f32,
        eps: meta["step"].as_f64().unwrap() as f32,
        mode: Mode::Paper { causal_window: window },
        anchor_every: 0,
    };
    let mut params = Params::zeros(&cfg);
    for t in PARAMS {
        params.get_mut(t).copy_from_slice(g.get(&format!("param.{}", t.pytorch_name())));
    }
    let (b, t) = (g.shape("input.spikes")[0], g.shape("input.spikes")[1]);
    let tt = g.shape("output.logrates")[1];
    let (ne, h) = (g.shape("input.noise")[0], cfg.hidden);
    let raw = g.get("input.noise");
    let noise =
        (0..b).flat_map(|bi| (0..ne).flat_map(move |i| raw[(i * b + bi) * h..(i * b + bi + 1) * h].to_vec())).collect();
    Case { g, cfg, params, noise, b, t, tt }
}
