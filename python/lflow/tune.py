"""Population-based training of LangevinFlow on Ray Tune, as AutoLFADS does it.

A population of trials trains the same model with different regularisation
(lr, dropout, coordinated dropout, KL and L2 weights). Every
`perturb_epochs` epochs Ray Tune's ``PopulationBasedTraining`` scheduler
lets the bottom quarter of the population copy a top-quarter trial's
checkpoint (exploit) and continue with its hyper-parameters multiplied by
0.8 or 1.2 within bounds, or redrawn (explore). Each trial drives
:func:`lflow.train` in-process and reports every epoch to Ray through its
callback; at an interval's end the report carries the Ray checkpoint, the run folder
(``last.safetensors``: parameters, Adam's moments, the random stream, the
schedule), so an exploited or restarted trial resumes exactly where that
checkpoint left off (``lflow.train(resume=True, hyperparameters=...)``).

    python -m lflow.tune --data lorenz.safetensors --config configs/lorenz.toml \\
        --samples 8 --perturb-epochs 25 --epochs 500 --out sweeps/lorenz

or, from Python, ``lflow.tune.tune(...)``. Needs Ray (``pip install
"ray[tune]"``); ``--address auto`` joins a running cluster (``ray start
--head`` on one machine, ``ray start --address HEAD:6379`` on the others;
the data file must be at the same path on every machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from . import Dataset, train

PathLike = Union[str, "os.PathLike[str]"]

#: AutoLFADS's search space for this model: name -> (low, high); initial
#: values are drawn log-uniformly, perturbations stay within the bounds.
SEARCH_SPACE: Dict[str, Tuple[float, float]] = {
    "lr": (1e-4, 1e-2),
    "dropout": (0.01, 0.6),
    "cd_rate": (0.3, 0.99),
    "kl_weight": (1e-3, 1.0),
    "weight_decay": (1e-6, 1e-3),
}


def check_space(space: Mapping[str, Tuple[float, float]]) -> Dict[str, Tuple[float, float]]:
    """`space` checked: known names, finite positive bounds, low < high."""
    out = {}
    for name, bounds in space.items():
        if name not in SEARCH_SPACE:
            raise ValueError(f"search space: {name!r} is not one of {', '.join(SEARCH_SPACE)}")
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"search space: {name} = {bounds!r}, expected (low, high)") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
            raise ValueError(f"search space: {name} = ({lo}, {hi}) is empty or not positive (need 0 < low < high)")
        out[name] = (lo, hi)
    if not out:
        raise ValueError("search space: empty")
    return out


def _ray():
    try:
        import ray
        from ray import tune as ray_tune
    except ImportError as e:
        raise ImportError('lflow.tune needs Ray Tune: pip install "ray[tune]"') from e
    return ray, ray_tune


def _trial(hp: Dict[str, Any]) -> None:
    """One trial: train in intervals of `perturb_epochs` epochs, reporting
    every epoch to Ray through :func:`lflow.train`'s callback and each
    interval's last epoch with the run folder as its checkpoint (the
    scheduler perturbs only there: its clock is the epoch)."""
    ray, ray_tune = _ray()
    fixed = hp["_fixed"]
    hyper = {k: float(hp[k]) for k in fixed["names"]}
    context = ray_tune.get_context()
    trial_id = context.get_trial_id()
    run = os.path.join(context.get_trial_dir(), "run")
    start, perturbed = 0, False
    checkpoint = ray_tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(d, run)
        record = json.load(open(os.path.join(run, "run.json")))
        perturbed = any(not math.isclose(record["config"]["train"][k], v, rel_tol=1e-6) for k, v in hyper.items())
        start = len(open(os.path.join(run, "metrics.csv")).read().splitlines()) - 1
    log = os.path.join(fixed["log_dir"], f"{trial_id}.jsonl")
    # How often each epoch was trained, by this trial's earlier workers too.
    trained = Counter(r["epoch"] for r in _records(log)) if os.path.exists(log) else Counter()

    def metrics(row: Dict[str, Any], interval_end: bool) -> Dict[str, Any]:
        m = {
            "valid_nll": row["valid_nll"],
            "valid_co_bps": row["valid_co_bps"],
            "train_loss": row["train_loss"],
            "lr_now": row["lr"],
            "epoch": row["epoch"],
            "start_epoch": start,
            "perturbed": perturbed,
            "interval_end": interval_end,
            **hyper,
        }
        trained[row["epoch"]] += 1
        if trained[row["epoch"]] > fixed["max_failures"] + 2:
            # A scheduler restoring this trial from an older checkpoint
            # over and over would burn the cluster's hours: stop it.
            raise RuntimeError(f"trial {trial_id}: epoch {row['epoch']} trained {trained[row['epoch']]} times")
        with open(log, "a") as f:
            f.write(json.dumps({"trial_id": trial_id, **m}) + "\n")
        return m

    fault = fixed.get("fault")
    epoch = start
    while epoch < fixed["epochs"]:
        if fault and start > 0 and not os.path.exists(fault):
            # A test's injected fault: this worker, restored from a checkpoint
            # the scheduler knows, trains one epoch more and dies.
            with open(fault, "w") as f:
                json.dump({"trial": trial_id, "epoch": start}, f)
            target = epoch + 1
            fault_after = True
        else:
            target = min(epoch + fixed["perturb_epochs"], fixed["epochs"])
            fault_after = False
        last: Dict[str, Any] = {}

        def each_epoch(row: Dict[str, Any]) -> None:
            # Every epoch but the interval's last goes to Ray as it ends;
            # the last waits for its checkpoint, written when train returns.
            if row["epoch"] < target:
                ray_tune.report(metrics(row, False))
            else:
                last.update(row)

        common = dict(out=run, epochs=fixed["epochs"], stop_after=target, threads=fixed["threads"],
                      device=fixed["device"], progress=False, callback=each_epoch)
        if epoch == 0 and checkpoint is None:
            config = json.loads(json.dumps(fixed["config"]))
            config.setdefault("train", {}).update(hyper)
            train(fixed["data"], config, **common)
        else:
            train(None, resume=True, hyperparameters=hyper, **common)
        if fault_after:
            ray_tune.report(metrics(last, False))
            os._exit(1)
        epoch = target
        ray_tune.report(metrics(last, True), checkpoint=ray_tune.Checkpoint.from_directory(run))


def _records(path: str) -> list:
    """A trial's JSON-lines log, without a last line torn by a killed worker."""
    out = []
    for line in open(path):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _index(c: Any) -> int:
    """The population index of a trial's config (a dict on current Ray; a
    spec with `.config` on older releases)."""
    try:
        return int(c["_index"])
    except (KeyError, TypeError):
        return int(c.config["_index"])


@dataclass
class TuneResult:
    """What a sweep leaves in `out`: ``best/`` (the best trial's run folder:
    ``lflow eval``, ``export``, ``nlb submit`` take it), ``trials.csv`` (every
    trial's hyper-parameters and scores at every epoch),
    ``population.png`` (the population's validation NLL over epochs)."""

    best_run: str
    best: Dict[str, Any]
    trials_csv: str
    plot: Optional[str]
    results: Any


def tune(
    data: Union[Dataset, PathLike],
    config: Union[None, Mapping[str, Any]] = None,
    *,
    out: PathLike,
    samples: int = 8,
    perturb_epochs: int = 25,
    epochs: int = 500,
    address: Optional[str] = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    search_space: Optional[Mapping[str, Tuple[float, float]]] = None,
    max_failures: int = 3,
    seed: int = 0,
    num_cpus: Optional[int] = None,
    verbose: int = 0,
    _fault: Optional[str] = None,
) -> TuneResult:
    """Run a PBT sweep of `samples` trials of `epochs` epochs on `data` (a
    Dataset with a file, or a data set file), starting from `config` (a
    dict, as :func:`lflow.train` takes; its ``train`` values of the searched
    names are replaced). Minimises validation NLL; reports co-bps.

    `address`: None or ``"local"`` starts Ray here (`num_cpus` of this
    machine's cores), ``"auto"`` joins a running cluster. `gpus_per_trial`
    below 1 shares a GPU between several trials (``device="cuda"``). A trial
    whose worker dies is restarted from its last checkpoint up to
    `max_failures` times. `verbose`: Ray Tune's progress output (0 none,
    1 a status table of the trials as they run, 2 and 3 more).
    """
    space = check_space(SEARCH_SPACE if search_space is None else search_space)
    for name, value in [("samples", samples), ("perturb_epochs", perturb_epochs), ("epochs", epochs)]:
        if int(value) < 1:
            raise ValueError(f"{name} = {value}: must be at least 1")
    if isinstance(data, Dataset):
        if data.path is None:
            raise ValueError("data: save the Dataset to a file first (every worker reads that file)")
        data = data.path
    data = os.path.abspath(os.fspath(data))
    if not os.path.exists(data):
        raise FileNotFoundError(f"{data}: no such data set file")
    config = dict(config or {})
    unknown = set(config) - {"model", "train", "eval"}
    if unknown:
        raise ValueError(f"config: unknown section(s) {sorted(unknown)}; expected model, train, eval")
    out = os.path.abspath(os.fspath(out))
    if os.path.isdir(os.path.join(out, "trajectories")) and os.listdir(os.path.join(out, "trajectories")):
        raise ValueError(f"out: {out} holds a sweep already (trajectories/); choose another folder")
    os.makedirs(out, exist_ok=True)

    ray, ray_tune = _ray()
    from ray.tune.schedulers import PopulationBasedTraining

    if not ray.is_initialized():
        if address in (None, "local"):
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)

    def explore(c: Dict[str, Any]) -> Dict[str, Any]:
        for name, (lo, hi) in space.items():
            c[name] = min(max(c[name], lo), hi)
        return c

    import random

    rng = random.Random(seed)
    initial = [{n: math.exp(rng.uniform(math.log(lo), math.log(hi))) for n, (lo, hi) in space.items()}
               for _ in range(samples)]
    fixed = {
        "names": list(space),
        "data": data,
        "config": config,
        "epochs": int(epochs),
        "perturb_epochs": int(perturb_epochs),
        "threads": max(1, int(cpus_per_trial)),
        "device": "cuda" if gpus_per_trial > 0 else "cpu",
        "fault": _fault,
        "max_failures": int(max_failures),
        # Every report, one JSON line per trial (a trial's history survives its restarts here).
        "log_dir": os.path.join(out, "trajectories"),
    }
    os.makedirs(fixed["log_dir"], exist_ok=True)
    class IntervalPBT(PopulationBasedTraining):
        """Ray's PBT deciding only on the reports that carry a checkpoint
        (an interval's last epoch), so a trial it pauses resumes exactly
        there: without this, a trial restarted after its worker died was
        paused between checkpoints and restored from the older one over
        and over (seen with Ray 2.60's synchronous mode). Nor does it
        exploit at the last epoch, where nothing would train on."""

        def on_trial_result(self, tune_controller: Any, trial: Any, result: Dict[str, Any]) -> str:
            if not result.get("interval_end", True) or result.get("epoch", 0) >= int(epochs):
                return self.CONTINUE
            return super().on_trial_result(tune_controller, trial, result)

    pbt = IntervalPBT(
        # The clock is the epoch: trials report every epoch and are
        # perturbed every `perturb_epochs`, where they report a checkpoint.
        time_attr="epoch",
        perturbation_interval=int(perturb_epochs),
        hyperparam_mutations={n: ray_tune.loguniform(lo, hi) for n, (lo, hi) in space.items()},
        quantile_fraction=0.25,
        resample_probability=0.25,
        perturbation_factors=(1.2, 0.8),
        custom_explore_fn=explore,
        synch=True,
    )
    trainable = ray_tune.with_resources(_trial, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    # One trial per initial draw (a grid over the population's indices).
    tuner = ray_tune.Tuner(
        trainable,
        param_space={
            "_fixed": fixed,
            "_index": ray_tune.grid_search(list(range(samples))),
            **{n: ray_tune.sample_from(lambda c, n=n: initial[_index(c)][n]) for n in space},
        },
        tune_config=ray_tune.TuneConfig(scheduler=pbt, metric="valid_nll", mode="min", reuse_actors=False),
        run_config=ray_tune.RunConfig(
            name="pbt",
            storage_path=out,
            failure_config=ray_tune.FailureConfig(max_failures=max_failures),
            verbose=verbose,
        ),
    )
    results = tuner.fit()
    return _collect(results, out, list(space), int(epochs))


def _collect(results: Any, out: str, names: list, epochs: int) -> TuneResult:
    """The sweep's outputs from the trials' logs and Ray's checkpoints."""
    log_dir = os.path.join(out, "trajectories")
    latest: Dict[Tuple[str, int], Dict[str, Any]] = {}
    for name in sorted(os.listdir(log_dir)):
        for r in _records(os.path.join(log_dir, name)):
            # An epoch trained again after a worker died and restarted from
            # its checkpoint: the later report stands.
            latest[(r["trial_id"], r["epoch"])] = r
    rows = list(latest.values())
    rows.sort(key=lambda r: (r["trial_id"], r["epoch"]))
    final = {r["trial_id"]: r for r in rows}  # sorted: each trial's last epoch
    # Ranked: the trials that trained every epoch without error, by their
    # last epoch's validation NLL (that epoch's checkpoint is Ray's latest).
    by_id = {t: next((r for r in results if f"_{t}_" in os.path.basename(r.path)), None) for t in final}
    finished = [t for t, r in by_id.items()
                if r is not None and r.error is None and r.checkpoint is not None and final[t]["epoch"] == epochs]
    if not finished:
        raise RuntimeError(f"no trial trained all {epochs} epochs; Ray's errors are in {os.path.join(out, 'pbt')}")
    best_id = min(finished, key=lambda t: final[t]["valid_nll"])
    best_run = os.path.join(out, "best")
    shutil.rmtree(best_run + ".tmp", ignore_errors=True)
    with by_id[best_id].checkpoint.as_directory() as d:
        shutil.copytree(d, best_run + ".tmp")
    shutil.rmtree(best_run, ignore_errors=True)
    os.replace(best_run + ".tmp", best_run)
    trials_csv = os.path.join(out, "trials.csv")
    with open(trials_csv + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial_id", "epoch", *names, "valid_nll", "valid_co_bps", "perturbed", "start_epoch"])
        for r in rows:
            w.writerow([r["trial_id"], r["epoch"], *[r[n] for n in names], r["valid_nll"], r["valid_co_bps"],
                        r["perturbed"], r["start_epoch"]])
        f.flush()
        os.fsync(f.fileno())
    os.replace(trials_csv + ".tmp", trials_csv)
    plot = None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for t in sorted(final):
            mine = [r for r in rows if r["trial_id"] == t]
            line, = ax.plot([r["epoch"] for r in mine], [r["valid_nll"] for r in mine], label=t)
            # An exploit: the first epoch trained from another trial's checkpoint.
            jumps = [r for r in mine if r["perturbed"] and r["epoch"] == r["start_epoch"] + 1]
            ax.plot([r["epoch"] for r in jumps], [r["valid_nll"] for r in jumps], "v", color=line.get_color())
        later = [r["valid_nll"] for r in rows if r["epoch"] > max(1, epochs // 10)]
        if later:  # the first epochs' NLL would squeeze what PBT decides on into a line
            lo, hi = min(later), sorted(later)[int(0.98 * (len(later) - 1))]
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo) + 1e-9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NLL")
        ax.set_title("population-based training: validation NLL per epoch (v: exploit)")
        ax.legend(fontsize="small")
        plot = os.path.join(out, "population.png")
        fig.savefig(plot, dpi=100, bbox_inches="tight")
        plt.close(fig)
    except ImportError:
        pass
    return TuneResult(best_run=best_run, best=final[best_id], trials_csv=trials_csv, plot=plot, results=results)


def main(argv: Optional[list] = None) -> None:
    """``lflow-tune``: the command line of :func:`tune`."""
    p = argparse.ArgumentParser(
        prog="lflow-tune",
        description="Population-based training (AutoLFADS) of LangevinFlow on Ray Tune.",
        epilog="example: lflow-tune --data lorenz.safetensors --config configs/lorenz.toml --samples 8 "
        "--perturb-epochs 25 --epochs 500 --out sweeps/lorenz",
    )
    p.add_argument("--data", required=True, help="the data set file (every worker reads it at this path)")
    p.add_argument("--config", help="TOML configuration (its train values of the searched names are replaced)")
    p.add_argument("--samples", type=int, default=8, help="population size (default 8)")
    p.add_argument("--perturb-epochs", type=int, default=25, help="epochs between exploit/explore steps")
    p.add_argument("--epochs", type=int, default=500, help="epochs of every trial")
    p.add_argument("--address", default="local", help="'local' (start Ray here) or 'auto' (join a cluster)")
    p.add_argument("--cpus-per-trial", type=float, default=1)
    p.add_argument("--gpus-per-trial", type=float, default=0, help="e.g. 0.25: four trials share a GPU")
    p.add_argument("--max-failures", type=int, default=3, help="restarts of a trial whose worker died")
    p.add_argument("--verbose", type=int, default=1, help="Ray Tune's progress output: 0 none, 1 status (default)")
    p.add_argument("--out", required=True, help="the sweep folder (best/, trials.csv, population.png)")
    a = p.parse_args(argv)
    config = None
    if a.config:
        try:
            import tomllib
        except ImportError:  # Python < 3.11: the tune extra installs tomli
            import tomli as tomllib

        with open(a.config, "rb") as f:
            config = tomllib.load(f)
    r = tune(a.data, config, out=a.out, samples=a.samples, perturb_epochs=a.perturb_epochs, epochs=a.epochs,
             address=a.address, cpus_per_trial=a.cpus_per_trial, gpus_per_trial=a.gpus_per_trial,
             max_failures=a.max_failures, verbose=a.verbose)
    print(json.dumps({"best_run": r.best_run, "trials_csv": r.trials_csv, "plot": r.plot, **r.best}, indent=2))


if __name__ == "__main__":
    main()
