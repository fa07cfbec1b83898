"""lflow from Python against the `lflow` command (LFLOW_BIN) and the Rust
errors: training bit for bit, predictions and scores, bad inputs, export."""

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import lflow

CONFIG = {
    "model": {"hidden": 8, "ff": 16, "mode": "streaming", "window": 6},
    "train": {"epochs": 3, "batch_size": 16},
    "eval": {"samples": 3},
}
TOML = """[model]
hidden = 8
ff = 16
mode = "streaming"
window = 6

[train]
epochs = 3
batch_size = 16

[eval]
samples = 3
"""


def lflow_bin():
    path = os.environ.get("LFLOW_BIN")
    assert path, "set LFLOW_BIN to the lflow binary (tools/test.sh does)"
    return path


def cli(*args):
    subprocess.run([lflow_bin(), *map(str, args)], check=True, capture_output=True)


def tensors(path):
    """The tensors of a safetensors file, name -> (dtype, shape, bytes), and
    its metadata (a checkpoint's training state and configuration) as "__metadata__"."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {
        k: (v["dtype"], v["shape"], body[v["data_offsets"][0] : v["data_offsets"][1]])
        for k, v in header.items()
        if k != "__metadata__"
    }
    out["__metadata__"] = header.get("__metadata__")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same data and configuration trained by the CLI and from Python."""
    tmp = tmp_path_factory.mktemp("runs")
    data = lflow.generate_lorenz(trials=60, eval_trials=12, observed=12, forward=3, held_in=8, held_out=3, seed=7)
    data.save(tmp / "data.safetensors")
    (tmp / "config.toml").write_text(TOML)
    cli("train", "--data", tmp / "data.safetensors", "--config", tmp / "config.toml", "--out", tmp / "cli",
        "--threads", 1, "--quiet")
    rows = []
    by_path = lflow.train(tmp / "data.safetensors", tmp / "config.toml", out=tmp / "py_path", threads=1,
                          progress=False, callback=rows.append)
    # In memory, with the configuration as a dict: saved beside the run.
    in_memory = lflow.generate_lorenz(trials=60, eval_trials=12, observed=12, forward=3, held_in=8, held_out=3, seed=7)
    by_dict = lflow.train(in_memory, CONFIG, out=tmp / "py_dict", threads=1, progress=False)
    return {"tmp": tmp, "data": data, "cli": lflow.Run.open(tmp / "cli"), "path": by_path, "dict": by_dict,
            "rows": rows}


@pytest.mark.parametrize("which", ["path", "dict"])
def test_training_from_python_equals_the_cli_bit_for_bit(runs, which):
    for checkpoint in ["best.safetensors", "last.safetensors"]:
        want = tensors(os.path.join(runs["cli"].path, checkpoint))
        got = tensors(os.path.join(runs[which].path, checkpoint))
        assert want.keys() == got.keys()
        for name in want:
            assert got[name] == want[name], f"{which}: {checkpoint} {name} differs"


def test_the_callback_gets_each_epochs_metrics_row(runs):
    rows = runs["rows"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    csv = open(os.path.join(runs["path"].path, "metrics.csv")).read().splitlines()[1:]
    assert len(csv) == len(rows)
    for row, line in zip(rows, csv):
        assert float(line.split(",")[1]) == pytest.approx(row["train_loss"], abs=1e-6)


def test_an_in_memory_dataset_is_saved_beside_the_run(runs):
    saved = str(runs["tmp"] / "py_dict.data.safetensors")
    assert os.path.samefile(runs["dict"].data_path, saved)
    assert lflow.Dataset.load(saved).spikes.tobytes() == runs["data"].spikes.tobytes()


def test_predict_returns_the_shapes_and_the_rates_eval_scores(runs):
    run, data = runs["path"], runs["data"]
    out = run.predict(None, 3, "eval", threads=1)
    eval_trials = [i for i, s in enumerate(data.split) if s == "eval"]
    n, tt, nout, d = len(eval_trials), data.bins, data.n_out, 3 * 8
    assert out["trials"].tolist() == eval_trials
    assert out["rates"].shape == out["log_rates"].shape == (n, tt, nout)
    assert out["latents"].shape == out["decoder_output"].shape == (n, tt, d)
    assert out["rates"].dtype == np.float32
    np.testing.assert_allclose(out["rates"], np.exp(out["log_rates"]), rtol=1e-6)
    # co-bps of these rates, computed here as nlb_tools does, is eval.json's.
    report = run.evaluate(threads=1)
    spikes = data.spikes[eval_trials][:, : data.observed, data.n_in :].astype(np.float64)
    rates = out["rates"][:, : data.observed, data.n_in :].astype(np.float64)
    null = np.where(spikes.mean(axis=(0, 1)) == 0, 1e-9, spikes.mean(axis=(0, 1)))
    nll = lambda r: (r - spikes * np.log(r)).sum()
    co_bps = (nll(np.broadcast_to(null, spikes.shape)) - nll(rates)) / (spikes.sum() * np.log(2))
    assert co_bps == pytest.approx(report["co_bps"], rel=1e-5, abs=1e-7)


def test_evaluate_equals_lflow_eval(runs):
    cli("eval", runs["cli"].path, "--threads", 1)
    want = json.load(open(os.path.join(runs["cli"].path, "eval.json")))
    assert runs["path"].evaluate(threads=1) == want
    assert json.load(open(os.path.join(runs["path"].path, "eval.json"))) == want


def test_export_and_plot(runs, tmp_path):
    table = runs["path"].export(tmp_path / "model.lfw", format="i8", threads=1)
    assert table["bytes"] == os.path.getsize(tmp_path / "model.lfw") and table["format"] == "i8"
    assert table["core"] is not None and table["host"]["co_bps"] is not None
    for png in runs["path"].plot(threads=1):
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def arrays(b=10, tt=6, n=5):
    rng = np.random.default_rng(0)
    return rng.poisson(1.0, size=(b, tt, n)).astype(np.float64)


@pytest.mark.parametrize(
    "spikes, message",
    [
        (lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a), "tensor `spikes` at index [0, 1, 2] is NaN: not finite"),
        (lambda a: np.where(np.arange(a.size).reshape(a.shape) == 8, -1.0, a), "at index [0, 1, 3] is -1: a negative spike count"),
        (lambda a: np.where(np.arange(a.size).reshape(a.shape) == 9, 0.5, a), "at index [0, 1, 4] is 0.5: a fractional spike count"),
        (lambda a: a.astype(str), "spikes: dtype <U32, expected integer or float values"),
        (lambda a: a[0], "spikes: shape (6, 5) has 2 dimensions, expected 3"),
    ],
    ids=["nan", "negative", "fractional", "dtype", "shape"],
)
def test_bad_arrays_raise_value_errors_naming_the_array_and_index(spikes, message):
    with pytest.raises(ValueError) as e:
        lflow.Dataset.from_arrays(spikes(arrays()), n_in=3, observed=4, bin_ms=10)
    assert message in str(e.value)


def test_bad_shapes_and_splits_raise_value_errors():
    a = arrays()
    with pytest.raises(ValueError, match="behavior: shape"):
        lflow.Dataset.from_arrays(a, n_in=3, observed=4, bin_ms=10, behavior=np.zeros((10, 5, 2)))
    with pytest.raises(ValueError, match="split: 2 entries for 10 trials"):
        lflow.Dataset.from_arrays(a, n_in=3, observed=4, bin_ms=10, split=["train", "eval"])
    with pytest.raises(ValueError, match=r"split\[1\] = \"test\""):
        lflow.Dataset.from_arrays(a, n_in=3, observed=4, bin_ms=10, split=["train", "test"] + ["train"] * 8)
    with pytest.raises(ValueError, match="n_out >= n_in = 7"):
        lflow.Dataset.from_arrays(a, n_in=7, observed=4, bin_ms=10)
    d = lflow.Dataset.from_arrays(a.astype(np.int32), n_in=3, observed=4, bin_ms=10)
    assert (d.trials, d.bins, d.observed, d.forward, d.n_in, d.n_out) == (10, 6, 4, 2, 3, 5)
    assert d.split == ["train"] * 7 + ["valid"] + ["eval"] * 2
    np.testing.assert_array_equal(d.spikes, a)


def test_missing_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        lflow.Dataset.load(tmp_path / "nowhere.safetensors")
    with pytest.raises(FileNotFoundError):
        lflow.Run.open(tmp_path / "no-run")
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        lflow.train(tmp_path / "nowhere.safetensors", out=tmp_path / "r", progress=False)


def test_bad_data_files_and_configs_raise_value_errors_through_training(runs, tmp_path):
    # A file the loader rejects: its error travels through the training session's.
    raw = bytearray(open(runs["tmp"] / "data.safetensors", "rb").read())
    (n,) = struct.unpack("<Q", raw[:8])
    offset = 8 + n + json.loads(raw[8 : 8 + n])["spikes"]["data_offsets"][0]
    raw[offset : offset + 4] = struct.pack("<f", float("nan"))
    (tmp_path / "nan.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"tensor `spikes` at index \[0, 0, 0\] is NaN: not finite"):
        lflow.train(tmp_path / "nan.safetensors", out=tmp_path / "r1", progress=False)
    with pytest.raises(ValueError, match="model.hidden"):
        lflow.train(runs["data"], {"model": {"hidden": 7}}, out=tmp_path / "r2", progress=False)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_an_existing_run_or_data_copy_is_never_overwritten(runs, tmp_path):
    other = lflow.generate_lorenz(trials=30, eval_trials=5, observed=12, forward=3, held_in=8, held_out=3, seed=99)
    (tmp_path / "r.data.safetensors").write_bytes(b"someone else's")
    with pytest.raises(lflow.LflowError, match="already holds another data set"):
        lflow.train(other, CONFIG, out=tmp_path / "r", progress=False)
    assert (tmp_path / "r.data.safetensors").read_bytes() == b"someone else's"
    before = open(os.path.join(runs["dict"].path, "..", "py_dict.data.safetensors"), "rb").read()
    with pytest.raises(lflow.LflowError, match="already"):
        lflow.train(other, CONFIG, out=runs["dict"].path, progress=False)
    assert open(os.path.join(runs["dict"].path, "..", "py_dict.data.safetensors"), "rb").read() == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"observed": 9}, "observed = 9: must be 1 to the 6 bins"),
        ({"observed": -1}, "observed = -1: must be a non-negative integer"),
        ({"bin_ms": float("inf")}, "bin_ms = inf: must be a finite positive number"),
        ({"true_rates": np.ones((10, 6, 4))}, "true_rates: shape [10, 6, 4], expected spikes' [10, 6, 5]"),
        ({"condition": np.arange(9)}, "condition: 9 entries for 10 trials"),
        ({"condition": np.array([2**40] * 10)}, "condition[0] = 1099511627776: not a condition id"),
        ({"condition": np.ones(10) * 0.5}, "condition: dtype float64, expected integer values"),
    ],
    ids=["observed", "negative", "bin_ms", "true_rates", "condition-length", "condition-range", "condition-dtype"],
)
def test_bad_arguments_raise_value_errors(kwargs, message):
    args = {"n_in": 3, "observed": 4, "bin_ms": 10, **kwargs}
    with pytest.raises(ValueError) as e:
        lflow.Dataset.from_arrays(arrays(), **args)
    assert message in str(e.value)


def test_generate_lorenz_refuses_what_it_cannot_make():
    with pytest.raises(ValueError, match="more than 2\\^28 values"):
        lflow.generate_lorenz(trials=10**9)
    with pytest.raises(ValueError, match="leave one to train on"):
        lflow.generate_lorenz(trials=2, eval_trials=1, valid_fraction=0.6)
    with pytest.raises(ValueError, match="trials = -3"):
        lflow.generate_lorenz(trials=-3)


def test_a_corrupt_checkpoint_raises_and_names_the_file(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs["path"].path, copy)
    best = copy / "best.safetensors"
    best.write_bytes(best.read_bytes()[:100])
    with pytest.raises(lflow.LflowError, match="best.safetensors"):
        lflow.Run.open(copy).predict(threads=1)


def test_a_config_with_an_unknown_key_is_refused(runs, tmp_path):
    with pytest.raises(ValueError, match="unknown field `hiden`"):
        lflow.train(runs["data"], {"model": {"hiden": 8}}, out=tmp_path / "r", progress=False)


def shared_nlb():
    root = os.environ.get("LFLOW_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
    path = os.path.join(root, "nlb")
    assert os.path.isdir(path), f"{path}: the NLB fixtures (set LFLOW_SHARED to the shared folder)"
    return path


@pytest.mark.parametrize("name", ["submission_truth", "submission_noisy"])
def test_nlb_score_equals_nlb_tools(name):
    nlb = shared_nlb()
    want = json.load(open(os.path.join(nlb, "expected_metrics.json")))[name]
    got = lflow.nlb.score(os.path.join(nlb, name + ".h5"), os.path.join(nlb, "eval_target.h5"))
    assert [list(g) for g in got] == [list(w) for w in want]
    for g, w in zip(got, want):
        for split in w:
            assert g[split].keys() == w[split].keys()
            for k in w[split]:
                assert g[split][k] == pytest.approx(w[split][k], rel=1e-9, abs=1e-12), (name, split, k)


def test_nlb_import_train_and_submit(tmp_path):
    data = lflow.nlb.import_(shared_nlb(), "mc_maze_small", 20)
    assert (data.trials, data.observed, data.forward, data.n_in, data.n_out) == (36, 35, 10, 12, 17)
    assert data.split.count("eval") == 12
    run = lflow.train(data, {"model": {"hidden": 8, "ff": 16}, "train": {"epochs": 1}, "eval": {"samples": 2}},
                      out=tmp_path / "run", threads=1, progress=False)
    summary = lflow.nlb.submit(run, tmp_path / "submission.h5", threads=1)
    assert "mc_maze_small_20" in summary
    scored = lflow.nlb.score(tmp_path / "submission.h5", os.path.join(shared_nlb(), "eval_target.h5"))
    assert "[100] co-bps" in scored[0]["mc_maze_scaling_20_split"]
    with pytest.raises(ValueError, match="not a benchmark dataset"):
        lflow.nlb.import_(shared_nlb(), "mc_maze_huge", 20)


def test_ctrl_c_during_an_epoch_stops_after_it_with_a_resumable_run(runs, tmp_path):
    # A real SIGINT while the extension trains with the GIL released.
    import signal
    import threading

    data = lflow.generate_lorenz(trials=400, eval_trials=40, observed=40, forward=5, held_in=8, held_out=3, seed=3)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        lflow.train(data, {**CONFIG, "train": {"epochs": 10000, "batch_size": 16}}, out=tmp_path / "r", threads=1,
                    progress=False)
    timer.cancel()
    epochs = len(open(tmp_path / "r" / "metrics.csv").read().splitlines()) - 1
    assert 1 <= epochs < 10000
    state = json.loads(tensors(tmp_path / "r" / "last.safetensors")["__metadata__"]["state"])
    assert state["epoch"] == epochs, "the resumable checkpoint is the last finished epoch's"
    cli("train", "--data", tmp_path / "r.data.safetensors", "--out", tmp_path / "r", "--resume", "--epochs", epochs + 1,
        "--threads", 1, "--quiet")
    assert len(open(tmp_path / "r" / "metrics.csv").read().splitlines()) - 1 == epochs + 1


def test_an_interrupt_stops_after_the_epoch_and_the_run_resumes(runs, tmp_path):
    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    data, config = runs["tmp"] / "data.safetensors", runs["tmp"] / "config.toml"
    with pytest.raises(KeyboardInterrupt):
        lflow.train(data, config, out=tmp_path / "r", threads=1, progress=False, callback=stop)
    assert len(open(tmp_path / "r" / "metrics.csv").read().splitlines()) == 1 + 2, "two epochs, then stopped"
    cli("train", "--data", data, "--out", tmp_path / "r", "--resume", "--threads", 1, "--quiet")
    # Resumed to the configured three epochs: the uninterrupted run's parameters.
    want = tensors(os.path.join(runs["cli"].path, "last.safetensors"))
    got = tensors(tmp_path / "r" / "last.safetensors")
    assert all(got[name] == want[name] for name in want)


MEMORY_PROBE = r"""
import json, sys
import lflow

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

run = lflow.Run.open(sys.argv[1])
data = lflow.generate_lorenz(trials=1000, eval_trials=990, observed=400, forward=100, held_in=8, held_out=3, seed=5)
spikes = data.trials * data.bins * data.n_out * 4
base = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # restart the peak (VmHWM) from here
out = run.predict(data, samples=1, threads=1)
peak = rss("VmHWM")
print(json.dumps({"spikes": spikes, "outputs": sum(a.nbytes for a in out.values()), "peak": peak - base,
                  "shape": list(out["rates"].shape)}))
"""


def test_predicting_a_1000_trial_set_does_not_copy_it(runs, tmp_path):
    """The arrays come back without a copy (moved from Rust into numpy) and the
    data set is read in place: what the peak RSS grows by while predicting,
    beyond the returned arrays, stays under two copies of the data set
    (spikes and true rates, 42 MB here); the rest is the prediction's own
    working buffers (about 66 MB measured: one sample's log-rates and batches)."""
    probe = tmp_path / "probe.py"
    probe.write_text(MEMORY_PROBE)
    done = subprocess.run([sys.executable, str(probe), str(runs["path"].path)], check=True, capture_output=True,
                          text=True)
    m = json.loads(done.stdout)
    assert m["shape"] == [990, 500, 11]
    data = 2 * m["spikes"]  # spikes and true rates
    assert m["peak"] - m["outputs"] < 2 * data, m


def test_resuming_without_changes_equals_the_uninterrupted_run(runs, tmp_path):
    data, config = runs["tmp"] / "data.safetensors", runs["tmp"] / "config.toml"
    lflow.train(data, config, out=tmp_path / "r", epochs=2, threads=1, progress=False)
    lflow.train(None, out=tmp_path / "r", resume=True, epochs=3, threads=1, progress=False)
    want = tensors(os.path.join(runs["cli"].path, "last.safetensors"))
    got = tensors(tmp_path / "r" / "last.safetensors")
    assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    # The same hyper-parameters given explicitly change nothing either (the optimiser state carries on).
    same = {"lr": 0.003, "dropout": 0.05, "cd_rate": 0.5, "kl_weight": 0.1, "weight_decay": 0.00002}
    lflow.train(data, config, out=tmp_path / "s", epochs=2, threads=1, progress=False)
    lflow.train(data, out=tmp_path / "s", resume=True, epochs=3, threads=1, progress=False, hyperparameters=same)
    got = tensors(tmp_path / "s" / "last.safetensors")
    assert all(got[k] == want[k] for k in want if k != "__metadata__")
    assert json.loads(got["__metadata__"]["state"]) == json.loads(want["__metadata__"]["state"])


def test_resuming_with_new_hyperparameters_keeps_the_optimiser_state(runs, tmp_path):
    data, config = runs["tmp"] / "data.safetensors", runs["tmp"] / "config.toml"
    lflow.train(data, config, out=tmp_path / "r", epochs=2, threads=1, progress=False)
    before = json.loads(tensors(tmp_path / "r" / "last.safetensors")["__metadata__"]["state"])
    lflow.train(None, out=tmp_path / "r", resume=True, epochs=3, threads=1, progress=False,
                hyperparameters={"lr": 0.001, "dropout": 0.2, "kl_weight": 0.5})
    meta = tensors(tmp_path / "r" / "last.safetensors")["__metadata__"]
    state, train = json.loads(meta["state"]), json.loads(meta["train"])
    steps_per_epoch = before["adam_step"] // 2
    assert state["adam_step"] == before["adam_step"] + steps_per_epoch, "Adam's step carried on"
    assert state["lr"] == pytest.approx(0.001) and train["dropout"] == pytest.approx(0.2)
    assert train["kl_weight"] == pytest.approx(0.5) and train["cd_rate"] == pytest.approx(0.5)
    assert lflow.Run.open(tmp_path / "r").config["train"]["lr"] == pytest.approx(0.001), "run.json records them"
    uninterrupted = tensors(os.path.join(runs["cli"].path, "last.safetensors"))
    assert tensors(tmp_path / "r" / "last.safetensors")["encoder.weight_ih"] != uninterrupted["encoder.weight_ih"]


def test_bad_hyperparameters_are_refused_before_anything_runs(runs, tmp_path):
    with pytest.raises(ValueError, match='"learning_rate" is not one of lr, dropout'):
        lflow.train(None, out=runs["path"].path, resume=True, hyperparameters={"learning_rate": 0.1})
    with pytest.raises(ValueError, match="dropout"):
        shutil.copytree(runs["path"].path, tmp_path / "copy")
        lflow.train(runs["tmp"] / "data.safetensors", out=tmp_path / "copy", resume=True, epochs=4,
                    hyperparameters={"dropout": 1.5}, progress=False)
    with pytest.raises(ValueError, match="only for resume=True"):
        lflow.train(runs["data"], out=tmp_path / "new", hyperparameters={"lr": 0.1})


def test_training_in_intervals_follows_the_schedule_of_training_straight_through(runs, tmp_path):
    # Cosine decay and warm-up over all 3 epochs, stopped after 1 and 2: the uninterrupted run, bit for bit.
    data = runs["tmp"] / "data.safetensors"
    config = {**CONFIG, "train": {**CONFIG["train"], "schedule": "cosine", "warmup_epochs": 1}}
    lflow.train(data, config, out=tmp_path / "straight", threads=1, progress=False)
    lflow.train(data, config, out=tmp_path / "steps", stop_after=1, threads=1, progress=False)
    assert len(open(tmp_path / "steps" / "metrics.csv").read().splitlines()) - 1 == 1, "stopped after epoch 1"
    lflow.train(None, out=tmp_path / "steps", resume=True, stop_after=2, threads=1, progress=False)
    lflow.train(None, out=tmp_path / "steps", resume=True, threads=1, progress=False)
    want = tensors(tmp_path / "straight" / "last.safetensors")
    got = tensors(tmp_path / "steps" / "last.safetensors")
    assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
