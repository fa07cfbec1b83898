//! The CUDA backend against the golden fixtures and the CPU backend: the
//! whole training step, on the fixtures and on awkward random shapes.
//!
//! Here (feature `cuda-emu`) the kernels and GEMM calls run on the CPU through
//! the emulator. On a machine with a GPU, `cargo test -p lflow-host --test
//! cuda_emulated -- --ignored` runs the same checks on the real device through
//! cudarc, and a short training run against the CPU's loss curve
//! (`tools/test.sh` does so when `LFLOW_TEST_CUDA=1`). Without a GPU those
//! tests are reported as ignored, not passed.

mod support;

use lflow_core::blob::Tensor;
use lflow_core::Seeded;
#[cfg(feature = "cuda-emu")]
use lflow_host::train::adam::{Adam, AdamConfig};
use lflow_host::train::backend::{Backend, Batch, Features, Pass};
use lflow_host::train::cpu::CpuBackend;
#[cfg(feature = "cuda-emu")]
use lflow_host::train::cuda::emulator::EmulatedGpu;
#[cfg(feature = "cuda-emu")]
use lflow_host::train::cuda::gpu::{download_f32, upload_f32, DevPtr, LaunchDims};
#[cfg(feature = "cuda-emu")]
use lflow_host::train::cuda::scalars::StepScalars;
use lflow_host::train::cuda::{CudaBackend, Gpu};
use lflow_host::train::model::{LossScale, LossSums};
use lflow_host::train::params::PARAMS;
use lflow_host::{Mode, ModelConfig, Params};
use support::common::rel_err;

/// Everything one pass hands back.
struct Out {
    sums: LossSums,
    grads: Params,
    log_rates: Vec<f32>,
    latents: Vec<f32>,
}

fn pass(b: &mut dyn Backend, cfg: &ModelConfig, p: &Params, batch: &Batch, dropout: f32, beta: f32) -> Out {
    let elements = batch.trials * batch.bins * cfg.n_out;
    let scale = LossScale { nll: 1.0 / elements as f32, kl: beta / batch.trials as f32 };
    let mut grads = Params::zeros(cfg);
    let mut log_rates = vec![0.0; elements];
    let mut latents = vec![0.0; batch.trials * batch.bins * cfg.d_model()];
    let sums = b
        .run(
            cfg,
            p,
            batch,
            Pass {
                dropout,
                scale,
                grads: Some(&mut grads),
                log_rates: Some(&mut log_rates),
                features: Some((Features::Latents, &mut latents)),
            },
        )
        .unwrap();
    Out { sums, grads, log_rates, latents }
}

/// The passes replayed captured graphs and capture never fell back to
/// launching each kernel (unless `LFLOW_CUDA_GRAPHS=0` asked for that): on a
/// real GPU, parity is then that of the graph path.
fn assert_graphs_ran<G: Gpu>(cuda: &CudaBackend<G>, label: &str) {
    assert!(cuda.graph_fallback().is_none(), "{label}: graph capture fell back: {:?}", cuda.graph_fallback());
    if std::env::var("LFLOW_CUDA_GRAPHS").map_or(true, |v| v.trim() != "0") {
        assert!(cuda.graph_replays() > 0, "{label}: no graph replayed");
    }
}

/// Device 0; a test that asks for it fails when there is none.
fn real_gpu() -> CudaBackend<lflow_host::train::cuda::driver::CudaGpu> {
    CudaBackend::open(0).unwrap_or_else(|e| panic!("a real-GPU test was run (--ignored) but: {e}"))
}

#[cfg(feature = "cuda-emu")]
#[test]
fn golden_fixtures_on_the_emulated_gpu() {
    golden_fixtures(|| CudaBackend::new(EmulatedGpu::new()).with_graphs(true));
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test -p lflow-host --test cuda_emulated -- --ignored"]
fn golden_fixtures_on_a_real_gpu() {
    golden_fixtures(real_gpu);
}

fn golden_fixtures<G: Gpu>(make: impl Fn() -> CudaBackend<G>) {
    let beta = 0.05f32;
    for name in support::CASES {
        let c = support::load(name);
        let batch = Batch {
            input: c.g.get("input.model_input").to_vec(),
            targets: c.g.get("input.targets").to_vec(),
            grad_mask: c.g.tensors.get("input.cd_grad_mask").map(|(_, v)| v.clone()).unwrap_or_default(),
            noise: c.noise.clone(),
            seeds: vec![0; c.b],
            trials: c.b,
            observed: c.t,
            bins: c.tt,
        };
        let mut cuda = make();
        let out = pass(&mut cuda, &c.cfg, &c.params, &batch, 0.0, beta);
        let launches = cuda.launches();
        assert_graphs_ran(&cuda, name);
        let nll = out.sums.nll / out.sums.elements as f64;
        let kl = out.sums.kl / c.b as f64;
        let rel = |got: f64, want: f32| (got - want as f64).abs() / (want as f64).abs();
        let e_lr = rel_err(&out.log_rates, c.g.get("output.logrates"));
        let e_lat = rel_err(&out.latents, c.g.get("output.latents"));
        let e_loss = rel(nll + beta as f64 * kl, c.g.get("output.loss")[0]);
        let e_kl = rel(kl, c.g.get("output.kl")[0]);
        eprintln!(
            "{name}: {launches} launches in {} graph replay(s); logrates {e_lr:.2e} latents {e_lat:.2e} kl {e_kl:.2e} loss {e_loss:.2e}",
            cuda.graph_replays()
        );
        assert!(e_lr < 1e-4 && e_lat < 1e-4 && e_kl < 1e-4 && e_loss < 1e-4, "{name}: outputs");
        let mut worst = (0.0f64, "");
        for t in PARAMS {
            let e = rel_err(out.grads.get(t), c.g.get(&format!("grad.{}", t.pytorch_name())));
            let bound = if name == "paper_init_potential" && t == Tensor::PotentialKernel { 1e-2 } else { 1e-3 };
            assert!(e < bound, "{name}: grad {} rel err {e:.3e}", t.pytorch_name());
            if e > worst.0 {
                worst = (e, t.pytorch_name());
            }
        }
        eprintln!("{name}: worst gradient {} {:.2e}", worst.1, worst.0);
    }
}

/// A random batch of `trials` trials for `cfg`, with a coordinated-dropout mask.
fn random_batch(cfg: &ModelConfig, trials: usize, observed: usize, bins: usize, seed: u64) -> Batch {
    let mut rng = Seeded::new(seed);
    let mut counts = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.next_u32() % 4) as f32).collect() };
    let input = counts(trials * observed * cfg.n_in);
    let targets = counts(trials * bins * cfg.n_out);
    let mut rng = Seeded::new(seed ^ 7);
    let grad_mask =
        (0..trials * observed * cfg.n_in).map(|_| !rng.next_u32().is_multiple_of(3) as u32 as f32).collect();
    let noise = (0..trials * (bins + 1) * cfg.hidden).map(|_| rng.next_normal()).collect();
    Batch {
        input,
        targets,
        grad_mask,
        noise,
        seeds: (0..trials as u64).map(|i| i * 31 + seed).collect(),
        trials,
        observed,
        bins,
    }
}

fn compare<G: Gpu>(label: &str, cfg: &ModelConfig, batch: &Batch, mut cuda: CudaBackend<G>) {
    let params = Params::init(cfg, &mut Seeded::new(5));
    let mut params = params;
    // A potential with some weight, so its gradient path is exercised.
    for (i, k) in params.get_mut(Tensor::PotentialKernel).iter_mut().enumerate() {
        *k = ((i * 7 % 11) as f32 - 5.0) * 0.1;
    }
    let cpu = pass(&mut CpuBackend::new(1).unwrap(), cfg, &params, batch, 0.2, 0.3);
    let gpu = pass(&mut cuda, cfg, &params, batch, 0.2, 0.3);
    assert_graphs_ran(&cuda, label);
    let e_lr = rel_err(&gpu.log_rates, &cpu.log_rates);
    let e_nll = (gpu.sums.nll - cpu.sums.nll).abs() / cpu.sums.nll.abs();
    let e_kl = (gpu.sums.kl - cpu.sums.kl).abs() / cpu.sums.kl.abs();
    let mut worst = (0.0f64, "");
    for t in PARAMS {
        let e = rel_err(gpu.grads.get(t), cpu.grads.get(t));
        assert!(e < 1e-3, "{label}: grad {} rel err {e:.3e} against the CPU backend", t.pytorch_name());
        if e > worst.0 {
            worst = (e, t.pytorch_name());
        }
    }
    eprintln!("{label}: logrates {e_lr:.2e} nll {e_nll:.2e} kl {e_kl:.2e} worst gradient {} {:.2e}", worst.1, worst.0);
    assert!(e_lr < 1e-4 && e_nll < 1e-5 && e_kl < 1e-5, "{label}: outputs against the CPU backend");
}

#[cfg(feature = "cuda-emu")]
#[test]
fn awkward_shapes_match_the_cpu_backend_emulated() {
    awkward_shapes(|| CudaBackend::new(EmulatedGpu::new()).with_graphs(true));
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test -p lflow-host --test cuda_emulated -- --ignored"]
fn awkward_shapes_match_the_cpu_backend_on_a_real_gpu() {
    awkward_shapes(real_gpu);
}

fn awkward_shapes<G: Gpu>(make: impl Fn() -> CudaBackend<G>) {
    // H not a multiple of 32, dropout and coordinated dropout on, both modes;
    // the streaming case has more bins than an attention block has threads.
    let model = |hidden: usize, mode: Mode| ModelConfig {
        n_in: 7,
        n_out: 9,
        hidden,
        ff: 20,
        gamma: 0.55,
        eps: 0.01,
        mode,
        anchor_every: 0,
    };
    let paper = model(12, Mode::PAPER);
    compare("paper H=12 T=9+3", &paper, &random_batch(&paper, 3, 9, 12, 1), make());
    let streaming = model(20, Mode::Streaming { window: 6 });
    compare("streaming H=20 W=6 T=60+10", &streaming, &random_batch(&streaming, 2, 60, 70, 2), make());
}

#[cfg(feature = "cuda-emu")]
#[test]
fn the_shapes_a_gpu_trains_match_the_cpu_backend_emulated() {
    hardware_shapes(|| CudaBackend::new(EmulatedGpu::new()).with_graphs(true));
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test -p lflow-host --test cuda_emulated -- --ignored"]
fn the_shapes_a_gpu_trains_match_the_cpu_backend_on_a_real_gpu() {
    hardware_shapes(real_gpu);
}

/// The shapes the hardware sees: H = 64 (the demo's sizes, 60 bins), H = 128
/// and H = 280 (the published model: several warps per Langevin block) at 180
/// bins, batches of several blocks (9 and 5 trials: three and two blocks of
/// the persistent GRU, the last partial), with the emulator's race check and
/// guards on.
fn hardware_shapes<G: Gpu>(make: impl Fn() -> CudaBackend<G>) {
    let model = |hidden: usize, ff: usize, mode: Mode| ModelConfig {
        n_in: 29,
        n_out: 37,
        hidden,
        ff,
        gamma: 0.55,
        eps: 0.01,
        mode,
        anchor_every: 0,
    };
    let h64 = model(64, 128, Mode::Streaming { window: 32 });
    compare("streaming H=64 W=32 T=50+10, 9 trials", &h64, &random_batch(&h64, 9, 50, 60, 3), make());
    let h128 = model(128, 64, Mode::Streaming { window: 32 });
    compare("streaming H=128 W=32 T=140+40, 2 trials", &h128, &random_batch(&h128, 2, 140, 180, 5), make());
    let h280 = model(280, 64, Mode::PAPER);
    compare("paper H=280 T=140+40, 5 trials", &h280, &random_batch(&h280, 5, 140, 180, 4), make());
}

#[cfg(feature = "cuda-emu")]
#[test]
fn adam_kernel_matches_the_host_optimiser() {
    let cfg = ModelConfig::paper(5, 6, 4, 8);
    let mut rng = Seeded::new(3);
    let p0 = Params::init(&cfg, &mut rng);
    let mut g = Params::zeros(&cfg);
    g.data.iter_mut().for_each(|x| *x = rng.next_normal());
    let conf = AdamConfig::default();
    let (lr, wd) = (0.01f32, 1e-3f32);
    let mut host = Adam::new(&cfg);
    let mut want = p0.clone();
    let n = p0.len();
    let mut gpu = EmulatedGpu::new();
    let buf = |gpu: &mut EmulatedGpu| DevPtr { buf: gpu.alloc(n * 4).unwrap(), offset: 0 };
    let (p, gr, m, v) = (buf(&mut gpu), buf(&mut gpu), buf(&mut gpu), buf(&mut gpu));
    let scalars = DevPtr { buf: gpu.alloc(48).unwrap(), offset: 0 };
    upload_f32(&mut gpu, p, &p0.data).unwrap();
    for _ in 0..3 {
        host.update(&conf, lr, wd, &mut want, &g);
        let k = conf.constants(lr, host.step);
        upload_f32(&mut gpu, gr, &g.data).unwrap();
        gpu.upload(scalars, StepScalars::new(None, Some((k, wd)), 0).bytes()).unwrap();
        lflow_host::train::cuda::adam_step(&mut gpu, [p, gr, m, v], n, scalars).unwrap();
        g.data.iter_mut().for_each(|x| *x *= -0.7);
    }
    let mut got = vec![0.0; n];
    download_f32(&mut gpu, p, &mut got).unwrap();
    // The same f32 operations in the same order: equal to the bit.
    let differ = got.iter().zip(&want.data).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differ, 0, "adam kernel: {differ} of {n} parameters differ from the host's after 3 steps");
}

#[cfg(feature = "cuda-emu")]
#[test]
fn device_errors_are_reported_not_panics() {
    let mut gpu = EmulatedGpu::new();
    let b = gpu.alloc(16).unwrap();
    let past = DevPtr { buf: b, offset: 12 };
    assert!(upload_f32(&mut gpu, past, &[1.0, 2.0]).is_err(), "write past the end");
    let dims = LaunchDims { grid: (1, 1), block: 32, smem: 0 };
    assert!(gpu.launch("no_such_kernel", dims, &[]).is_err());
    let too_big = LaunchDims { grid: (1, 1), block: 2048, smem: 0 };
    assert!(gpu.launch("add_bias", too_big, &[]).is_err());
}

/// Train `epochs` epochs on `backend` and on the CPU from the same seed: the
/// device path (data set, batches, noise, masks and Adam on the device) must
/// follow the CPU's loss curve and end at the same parameters.
fn training_follows_the_cpu<G: Gpu>(backend: CudaBackend<G>, trials: usize, hidden: usize, epochs: usize, bound: f64) {
    use lflow_host::data::lorenz::{generate, LorenzConfig};
    use lflow_host::train::train_config::TrainConfig;
    use lflow_host::train::trainer::Trainer;
    let data = generate(&LorenzConfig {
        trials,
        eval_trials: trials / 5,
        observed: 12,
        forward: 3,
        held_in: 10,
        held_out: 4,
        seed: 4,
        ..LorenzConfig::default()
    });
    let model = ModelConfig {
        n_in: data.n_in,
        n_out: data.n_out,
        hidden,
        ff: 2 * hidden,
        gamma: 0.55,
        eps: 0.01,
        mode: Mode::PAPER,
        anchor_every: 0,
    };
    let train = TrainConfig { epochs, batch_size: 16, lr: 0.01, ramp_epochs: 2, ..TrainConfig::default() };
    let mut cpu = Trainer::new(model.clone(), train.clone(), CpuBackend::new(2).unwrap());
    let mut backend = backend;
    assert!(backend.resident().is_some());
    let mut dev = Trainer::new(model, train, backend);
    for epoch in 0..epochs {
        let (a, b) = (cpu.epoch(&data).unwrap(), dev.epoch(&data).unwrap());
        let e = (a.train_loss - b.train_loss).abs() / a.train_loss.abs();
        let ev = (a.valid_nll - b.valid_nll).abs() / a.valid_nll.abs();
        eprintln!(
            "epoch {epoch}: loss cpu {:.6} device {:.6} ({e:.1e}), valid NLL ({ev:.1e})",
            a.train_loss, b.train_loss
        );
        assert!(e < bound && ev < bound, "epoch {epoch}: loss {e:.2e}, valid NLL {ev:.2e}");
    }
    // The key bias gets no gradient in exact arithmetic (softmax ignores a
    // constant added to every key), so its gradient is rounding noise, which
    // Adam scales to full-size steps: the two runs differ there, and only there.
    let d = dev.model.d_model();
    let without_key_bias = |p: &Params| {
        let mut p = p.clone();
        p.get_mut(Tensor::AttnInProjBias)[d..2 * d].fill(0.0);
        p
    };
    let (pd, pc) = (without_key_bias(&dev.state.params), without_key_bias(&cpu.state.params));
    let e = rel_err(&pd.data, &pc.data);
    let em = rel_err(&dev.state.adam.m.data, &cpu.state.adam.m.data);
    eprintln!(
        "after {epochs} epochs: parameters but the key bias {e:.1e}, Adam moments {em:.1e}, steps {}",
        dev.state.adam.step
    );
    for t in PARAMS {
        let e = rel_err(pd.get(t), pc.get(t));
        assert!(e < 10.0 * bound, "{}: {e:.2e}", t.pytorch_name());
    }
    assert_eq!(dev.state.adam.step, cpu.state.adam.step);
    assert_graphs_ran(dev.backend(), "training");
    assert!(e < bound && em < bound, "parameters {e:.2e}, moments {em:.2e}");
}

#[cfg(feature = "cuda-emu")]
#[test]
fn resident_training_on_the_emulated_gpu_follows_the_cpu() {
    training_follows_the_cpu(CudaBackend::new(EmulatedGpu::new()).with_graphs(true), 60, 8, 3, 1e-4);
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test -p lflow-host --test cuda_emulated -- --ignored"]
fn a_short_training_run_on_a_real_gpu_follows_the_cpu_loss_curve() {
    training_follows_the_cpu(real_gpu(), 200, 32, 5, 1e-3);
}

/// The launch count the README states: a training step (batch assembly,
/// forward, backward, Adam) is 82 kernel launches and GEMM calls whatever the
/// number of bins (the GRU's recurrence is one persistent kernel each way:
/// 36 forward, 44 backward, assembly and Adam), captured once as a graph and
/// then replayed with one call per step; without graphs, the same 82 one by one.
#[cfg(feature = "cuda-emu")]
#[test]
fn a_training_step_is_one_graph_replay_of_82_launches_whatever_the_bins() {
    use lflow_host::data::lorenz::{generate, LorenzConfig};
    use lflow_host::train::backend::{AdamStep, Backend, OptimizerState};
    use lflow_host::train::train_config::TrainConfig;
    use lflow_host::train::trainer::Trainer;
    for (observed, forward, mode) in [(5, 3, Mode::PAPER), (13, 4, Mode::Streaming { window: 8 }), (7, 0, Mode::PAPER)]
    {
        let data = generate(&LorenzConfig {
            trials: 20,
            eval_trials: 4,
            observed,
            forward,
            held_in: 6,
            held_out: 2,
            seed: 2,
            ..LorenzConfig::default()
        });
        let model = ModelConfig { n_in: 6, n_out: 8, hidden: 4, ff: 8, gamma: 0.55, eps: 0.01, mode, anchor_every: 0 };
        let state = Trainer::new(model.clone(), TrainConfig::default(), CpuBackend::new(1).unwrap()).state;
        let order: Vec<usize> = data.indices(lflow_host::data::Split::Train);
        let seeds: Vec<u64> = (0..order.len() as u64).collect();
        let bins = observed + forward;
        for graphs in [true, false] {
            let mut gpu = CudaBackend::new(EmulatedGpu::new()).with_graphs(graphs);
            let resident = gpu.resident().unwrap();
            resident
                .begin_epoch(&model, &data, OptimizerState { params: &state.params, adam: &state.adam }, &order, &seeds)
                .unwrap();
            let scale = LossScale { nll: 1e-3, kl: 0.1 };
            for (n, start) in [(1u64, 0), (2, 8)] {
                let step = AdamStep { adam: AdamConfig::default(), weight_decay: 0.0, step: n };
                // Counted twice: by the backend, and by the emulator at each launch and GEMM it runs.
                let (before, emulated) = (gpu.launches(), gpu.gpu().launches());
                gpu.resident().unwrap().train_batch(&model, start, 8, 0.5, 0.05, scale, step).unwrap();
                let label = format!("{mode:?}, T + F = {bins}, graphs {graphs}, step {n}");
                assert_eq!(gpu.launches() - before, 82, "{label}");
                assert_eq!(gpu.gpu().launches() - emulated, 82, "{label}: the emulator's count");
            }
            let expected = if graphs { (1, 2) } else { (0, 0) };
            assert_eq!((gpu.graph_captures(), gpu.graph_replays()), expected, "graphs {graphs}: captures, replays");
            assert_eq!((gpu.gpu().captures(), gpu.gpu().replays()), expected, "graphs {graphs}: the emulator's");
        }
    }
}

/// Training replayed from captured graphs is the same computation as
/// launching every kernel: two epochs (a partial last batch, validation
/// included) end at the same parameters and Adam moments bit for bit, and the
/// second epoch captures nothing new (its steps change only device memory).
/// A device that refuses capture falls back to launching each kernel, says
/// why, and trains the same.
#[cfg(feature = "cuda-emu")]
#[test]
fn graph_replayed_training_equals_launching_each_kernel() {
    use lflow_host::data::lorenz::{generate, LorenzConfig};
    use lflow_host::train::train_config::TrainConfig;
    use lflow_host::train::trainer::Trainer;
    let data = generate(&LorenzConfig {
        trials: 60,
        eval_trials: 12,
        observed: 9,
        forward: 3,
        held_in: 7,
        held_out: 3,
        seed: 8,
        ..LorenzConfig::default()
    });
    let model =
        ModelConfig { mode: Mode::Streaming { window: 5 }, ..ModelConfig::paper(data.n_in, data.n_out, 12, 16) };
    let train = TrainConfig { batch_size: 10, cd_rate: 0.7, dropout: 0.1, ramp_epochs: 2, ..TrainConfig::default() };
    let trainer = |gpu: EmulatedGpu, graphs| {
        Trainer::new(model.clone(), train.clone(), CudaBackend::new(gpu).with_graphs(graphs))
    };
    let (mut replayed, mut direct) = (trainer(EmulatedGpu::new(), true), trainer(EmulatedGpu::new(), false));
    let mut refused = trainer(EmulatedGpu::new().without_capture(), true);
    // Batches of 10: a full one and a partial last one, for training and for validation.
    let (train_trials, valid_trials) =
        (data.indices(lflow_host::data::Split::Train).len(), data.indices(lflow_host::data::Split::Valid).len());
    assert!(
        train_trials > 10 && !train_trials.is_multiple_of(10),
        "{train_trials} training trials: a partial last batch"
    );
    let shapes = |n: usize| if n > 10 && !n.is_multiple_of(10) { 2 } else { 1 };
    let (mut captured, mut replays) = (0, 0);
    for epoch in 0..2 {
        let (a, b) = (replayed.epoch(&data).unwrap(), direct.epoch(&data).unwrap());
        let c = refused.epoch(&data).unwrap();
        assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits(), "epoch {epoch}: training loss");
        assert_eq!(c.train_loss.to_bits(), b.train_loss.to_bits(), "epoch {epoch}: training loss after the fallback");
        assert_eq!(a.valid_nll.to_bits(), b.valid_nll.to_bits(), "epoch {epoch}: validation NLL");
        let gpu = replayed.backend();
        if epoch == 0 {
            (captured, replays) = (gpu.graph_captures(), gpu.graph_replays());
            assert_eq!(captured, shapes(train_trials) + shapes(valid_trials), "one graph per batch shape");
            assert!(replays > captured, "{replays} replays of {captured} graphs");
        } else {
            assert_eq!(gpu.graph_captures(), captured, "the second epoch captured again");
            assert_eq!(gpu.graph_replays(), 2 * replays, "every step of the second epoch replayed");
        }
    }
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(&replayed.state.params.data) == bits(&direct.state.params.data), "parameters differ");
    assert!(bits(&replayed.state.adam.m.data) == bits(&direct.state.adam.m.data), "first moments differ");
    assert!(bits(&replayed.state.adam.v.data) == bits(&direct.state.adam.v.data), "second moments differ");
    assert_eq!(direct.backend().graph_captures(), 0);
    assert!(bits(&refused.state.params.data) == bits(&direct.state.params.data), "parameters after the fallback");
    let why = refused.backend().graph_fallback().unwrap_or_default();
    assert!(why.contains("stream capture is not supported"), "fallback reason: {why:?}");
    assert_eq!((refused.backend().graph_captures(), refused.backend().graph_replays()), (0, 0));
    assert!(replayed.backend().graph_fallback().is_none());
}

/// An epoch with a shorter order moves the seeds (they follow the order in
/// one buffer): its steps must not replay graphs that read them where they
/// were. Graphs on and off end at the same parameters, bit for bit.
#[cfg(feature = "cuda-emu")]
#[test]
fn a_shorter_epoch_is_captured_anew_not_replayed_from_the_old_seeds() {
    use lflow_host::data::lorenz::{generate, LorenzConfig};
    use lflow_host::train::backend::{AdamStep, OptimizerState};
    use lflow_host::train::train_config::TrainConfig;
    use lflow_host::train::trainer::Trainer;
    let data = generate(&LorenzConfig {
        trials: 24,
        eval_trials: 4,
        observed: 6,
        forward: 2,
        held_in: 5,
        held_out: 2,
        seed: 5,
        ..LorenzConfig::default()
    });
    let model =
        ModelConfig { n_in: 5, n_out: 7, hidden: 8, ff: 8, gamma: 0.55, eps: 0.01, mode: Mode::PAPER, anchor_every: 0 };
    let mut state = Trainer::new(model.clone(), TrainConfig::default(), CpuBackend::new(1).unwrap()).state;
    let run = |graphs: bool, state: &mut lflow_host::train::state::TrainState| {
        let mut gpu = CudaBackend::new(EmulatedGpu::new()).with_graphs(graphs);
        let scale = LossScale { nll: 1e-3, kl: 0.1 };
        let mut step = 0;
        for (epoch, trials) in [(0u64, 16usize), (1, 10)] {
            let order: Vec<usize> = (0..trials).collect();
            let seeds: Vec<u64> = (0..trials as u64).map(|i| 1000 * (epoch + 1) + i).collect();
            let r = gpu.resident().unwrap();
            r.begin_epoch(&model, &data, OptimizerState { params: &state.params, adam: &state.adam }, &order, &seeds)
                .unwrap();
            for start in (0..trials).step_by(8) {
                step += 1;
                let adam = AdamStep { adam: AdamConfig::default(), weight_decay: 0.0, step };
                r.train_batch(&model, start, 8.min(trials - start), 0.6, 0.0, scale, adam).unwrap();
            }
            r.end_epoch(&mut state.params, &mut state.adam).unwrap();
        }
        gpu.graph_replays()
    };
    let mut direct = state.clone();
    assert!(run(true, &mut state) >= 4, "the steps replayed graphs");
    run(false, &mut direct);
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(&state.params.data) == bits(&direct.params.data), "parameters differ after the shorter epoch");
}

/// Validation after a resident epoch assembles its batches on the device from
/// the uploaded data set: the same NLL and co-bps as host-assembled batches,
/// and no validation trial's spikes, input or noise crosses from the host.
#[cfg(feature = "cuda-emu")]
#[test]
fn validation_assembles_its_batches_on_the_device() {
    use lflow_host::data::lorenz::{generate, LorenzConfig};
    use lflow_host::data::Split;
    use lflow_host::train::train_config::TrainConfig;
    use lflow_host::train::trainer::Trainer;
    let data = generate(&LorenzConfig {
        trials: 70,
        eval_trials: 10,
        observed: 10,
        forward: 2,
        held_in: 8,
        held_out: 3,
        seed: 6,
        ..LorenzConfig::default()
    });
    let valid = data.indices(Split::Valid).len();
    assert!(valid > 8, "{valid} validation trials: more than one batch");
    let model = ModelConfig { mode: Mode::Streaming { window: 4 }, ..ModelConfig::paper(data.n_in, data.n_out, 8, 16) };
    let train = TrainConfig { batch_size: 8, ..TrainConfig::default() };
    let mut t = Trainer::new(model, train, CudaBackend::new(EmulatedGpu::new()));
    t.epoch(&data).unwrap(); // uploads the data set once
    let before = t.backend().gpu().uploaded();
    let s = t.epoch(&data).unwrap();
    let uploaded = t.backend().gpu().uploaded() - before;
    // Parameters and Adam's two moments, the epoch's order (i32) and seeds (u64), the validation
    // indices, and each batch's 48 bytes of step scalars (loss scales, Adam's constants, batch start).
    let train_trials = data.indices(Split::Train).len();
    let batches = train_trials.div_ceil(8) + valid.div_ceil(8);
    let expected = 3 * 4 * t.state.params.len() + 12 * train_trials + 4 * valid + 48 * batches;
    assert!(uploaded <= expected, "{uploaded} bytes uploaded in an epoch, {expected} expected at most");
    let (nll, co_bps) = t.validation(&data).unwrap(); // host-assembled batches, same device
    assert!((s.valid_nll - nll).abs() <= 1e-12 * nll.abs(), "valid NLL {} vs {nll}", s.valid_nll);
    assert!((s.valid_co_bps - co_bps).abs() <= 1e-9, "co-bps {} vs {co_bps}", s.valid_co_bps);
}
