//! The trainer's forward and backward against the authors' PyTorch code
//! (`../shared/golden/`): outputs, KL, loss, every gradient, one Adam step.

mod support;

use lflow_host::train::adam::{Adam, AdamConfig};
use lflow_host::train::model::{backward, forward, latents, log_rates, Chunk, LossScale, Workspace};
use lflow_host::train::params::PARAMS;
use lflow_host::Params;
use support::common::rel_err;
use support::load;

fn check(name: &str) {
    let c = load(name);
    let beta = 0.05f32;
    let grad_mask = c.g.tensors.get("input.cd_grad_mask").map(|(_, v)| v.as_slice());
    let chunk = Chunk {
        input: c.g.get("input.model_input"),
        targets: c.g.get("input.targets"),
        grad_mask,
        noise: &c.noise,
        trials: c.b,
        observed: c.t,
        bins: c.tt,
    };
    let mut ws = Workspace::new();
    let sums = forward(&c.cfg, &c.params, &chunk, None, &mut ws);
    let nll_mean = sums.nll / sums.elements as f64;
    let kl = sums.kl / c.b as f64;
    let loss = nll_mean + beta as f64 * kl;
    let rel = |got: f64, want: f32| (got - want as f64).abs() / (want as f64).abs();
    let e_lr = rel_err(log_rates(&ws), c.g.get("output.logrates"));
    let e_lat = rel_err(latents(&ws), c.g.get("output.latents"));
    let (e_kl, e_nll, e_loss) = (
        rel(kl, c.g.get("output.kl")[0]),
        rel(nll_mean, c.g.get("output.nll_mean")[0]),
        rel(loss, c.g.get("output.loss")[0]),
    );
    eprintln!("{name}: logrates {e_lr:.2e} latents {e_lat:.2e} kl {e_kl:.2e} nll {e_nll:.2e} loss {e_loss:.2e}");
    assert!(e_lr < 1e-4 && e_lat < 1e-4, "{name}: outputs");
    assert!(e_kl < 1e-4 && e_nll < 1e-4 && e_loss < 1e-4, "{name}: loss terms");

    let mut grads = Params::zeros(&c.cfg);
    let scale = LossScale { nll: 1.0 / sums.elements as f32, kl: beta / c.b as f32 };
    backward(&c.cfg, &c.params, &chunk, scale, &mut ws, &mut grads);
    let mut worst = (0.0f64, "");
    for t in PARAMS {
        let e = rel_err(grads.get(t), c.g.get(&format!("grad.{}", t.pytorch_name())));
        let bound =
            if name == "paper_init_potential" && t == lflow_core::blob::Tensor::PotentialKernel { 1e-2 } else { 1e-3 };
        assert!(e < bound, "{name}: grad {} rel err {e:.3e}", t.pytorch_name());
        if e > worst.0 {
            worst = (e, t.pytorch_name());
        }
    }
    eprintln!("{name}: worst gradient {} {:.2e}", worst.1, worst.0);

    // One Adam step from the recorded parameters and gradients.
    let mut recorded = Params::zeros(&c.cfg);
    for t in PARAMS {
        recorded.get_mut(t).copy_from_slice(c.g.get(&format!("grad.{}", t.pytorch_name())));
    }
    let mut p = c.params.clone();
    let mut adam = Adam::new(&c.cfg);
    let conf = AdamConfig::default();
    adam.update(&conf, conf.lr, 2e-5, &mut p, &recorded);
    for t in PARAMS {
        let e = rel_err(p.get(t), c.g.get(&format!("adam1.{}", t.pytorch_name())));
        assert!(e < 1e-5, "{name}: adam {} rel err {e:.3e}", t.pytorch_name());
    }
}

#[test]
fn paper_random_potential() {
    check("paper_random_potential");
}

#[test]
fn paper_init_potential() {
    check("paper_init_potential");
}

#[test]
fn causal_w3() {
    check("causal_w3");
}

#[test]
fn paper_cd() {
    check("paper_cd");
}
