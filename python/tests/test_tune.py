"""lflow.tune: population-based training on a local Ray instance (2 CPUs):
every epoch reaches Ray, exploits happen, the best trial is at least as good as the median, its run
folder evaluates with `lflow eval`, a killed worker resumes from its
checkpoint, and bad search spaces fail before Ray starts."""

import csv
import json
import os
import statistics
import subprocess
from collections import Counter

import pytest

import lflow
import lflow.tune as lt

CONFIG = {"model": {"hidden": 8, "ff": 16, "mode": "streaming", "window": 6}, "train": {"batch_size": 16},
          "eval": {"samples": 2}}


@pytest.mark.parametrize(
    "space, message",
    [
        ({"learning_rate": (1e-4, 1e-2)}, "'learning_rate' is not one of lr, dropout"),
        ({"lr": (1e-2, 1e-2)}, "lr = (0.01, 0.01) is empty"),
        ({"dropout": (0.5, 0.1)}, "dropout = (0.5, 0.1) is empty"),
        ({}, "search space: empty"),
        ("used", "holds a sweep already"),
    ],
)
def test_bad_input_fails_before_ray_starts(tmp_path, space, message):
    import ray

    data = lflow.generate_lorenz(trials=30, eval_trials=5, observed=12, forward=3, held_in=8, held_out=3, seed=1)
    data.save(tmp_path / "data.safetensors")
    if space == "used":  # an earlier sweep's folder: its logs would mix with this one's
        (tmp_path / "out" / "trajectories").mkdir(parents=True)
        (tmp_path / "out" / "trajectories" / "t.jsonl").write_text("{}\n")
        space = None
    with pytest.raises(ValueError) as e:
        lt.tune(data, CONFIG, out=tmp_path / "out", search_space=space)
    assert message in str(e.value)
    assert not ray.is_initialized()
    if space is not None:
        assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    import ray

    tmp = tmp_path_factory.mktemp("sweep")
    data = lflow.generate_lorenz(trials=60, eval_trials=12, observed=12, forward=3, held_in=8, held_out=3, seed=7)
    data.save(tmp / "data.safetensors")
    fault = tmp / "fault.json"
    result = lt.tune(data, CONFIG, out=tmp / "out", samples=4, perturb_epochs=2, epochs=6, num_cpus=2,
                     _fault=str(fault))
    ray.shutdown()
    rows = list(csv.DictReader(open(result.trials_csv)))
    return {"tmp": tmp, "result": result, "rows": rows, "fault": fault}


def ray_progress(result):
    """Ray's own record of the results a trial reported (its progress.csv;
    result.json lacked epochs after a restore)."""
    return list(csv.DictReader(open(os.path.join(result.path, "progress.csv"))))


def test_a_pbt_sweep_exploits_and_its_best_trial_beats_the_median(sweep):
    rows = sweep["rows"]
    assert any(r["perturbed"] == "True" for r in rows), "no trial continued from another's checkpoint with new values"
    # Each trial's last validation NLL as Ray received it, not as lflow.tune logged it.
    last = {}
    for result in sweep["result"].results:
        final = [r for r in ray_progress(result) if int(r["epoch"]) == 6]
        assert final, f"{result.path} never reached epoch 6"
        last[result.path] = float(final[-1]["valid_nll"])
    assert len(last) == 4
    # The run folder handed out as best/ holds the model of the population's lowest NLL.
    best_rows = list(csv.DictReader(open(os.path.join(sweep["result"].best_run, "metrics.csv"))))
    assert len(best_rows) == 6, "best/ is the checkpoint of the last epoch"
    best_nll = float(best_rows[-1]["valid_nll"])
    assert best_nll == pytest.approx(min(last.values()), abs=1e-6)
    assert best_nll <= statistics.median(last.values())
    assert sweep["result"].best["valid_nll"] == pytest.approx(best_nll, abs=1e-6)
    assert os.path.getsize(sweep["result"].plot) > 0


def test_every_trial_reports_every_epoch_to_ray_once(sweep):
    fault = json.load(open(sweep["fault"]))
    for result in sweep["result"].results:
        counts = Counter(int(r["epoch"]) for r in ray_progress(result))
        expected = Counter(range(1, 7))
        if f"_{fault['trial']}_" in os.path.basename(result.path):
            expected[fault["epoch"] + 1] += 1  # trained by the worker that died, then again
        assert counts == expected, f"{result.path}: Ray saw epochs {sorted(counts.elements())}"
    per_trial = {}
    for r in sweep["rows"]:
        per_trial.setdefault(r["trial_id"], []).append(int(r["epoch"]))
    assert all(sorted(e) == list(range(1, 7)) for e in per_trial.values()), per_trial


def test_the_best_run_folder_evaluates_with_lflow_eval(sweep):
    run = sweep["result"].best_run
    subprocess.run([os.environ["LFLOW_BIN"], "eval", run, "--threads", "1"], check=True, capture_output=True)
    report = json.load(open(os.path.join(run, "eval.json")))
    assert report["co_bps"] is not None
    assert len(open(os.path.join(run, "metrics.csv")).read().splitlines()) - 1 == 6, "the run's whole history"
    assert lflow.Run.open(run).config["train"]["lr"] == pytest.approx(sweep["result"].best["lr"])


def test_a_killed_worker_resumes_from_its_checkpoint(sweep):
    fault = json.load(open(sweep["fault"]))
    assert fault["epoch"] > 0
    mine = [r for r in sweep["rows"] if r["trial_id"] == fault["trial"]]
    after = [r for r in mine if int(r["epoch"]) > fault["epoch"]]
    assert after, f"trial {fault['trial']} reported nothing after its worker died: {mine}"
    assert int(after[0]["start_epoch"]) >= fault["epoch"], "restarted from zero, not from its checkpoint"
    log = sweep["tmp"] / "out" / "trajectories" / f"{fault['trial']}.jsonl"
    reports = [json.loads(line)["epoch"] for line in open(log)]
    assert sorted(e for e in reports if e <= fault["epoch"]) == list(range(1, fault["epoch"] + 1)), (
        f"epochs up to the checkpoint trained again: {reports}")
    assert reports.count(fault["epoch"] + 1) == 2, f"the epoch the worker died after, trained once more: {reports}"
    assert max(int(r["epoch"]) for r in mine) == 6
    assert sweep["result"].results.num_errors == 0


def test_the_command_line_teaches_with_an_example():
    import sys

    done = subprocess.run([sys.executable, "-m", "lflow.tune", "--help"], check=True, capture_output=True, text=True)
    assert "--perturb-epochs" in done.stdout and "example: lflow-tune --data" in done.stdout
