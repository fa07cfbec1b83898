"""The Neural Latents Benchmark's files: `nlb_tools` tensors in, EvalAI submissions out.

Needs a wheel built with the ``nlb`` feature (``maturin build --features nlb``;
the system's libhdf5, Debian's ``libhdf5-dev``); ``tools/test.sh`` builds it so.

    data = lflow.nlb.import_("nlb/mc_maze_small", "mc_maze_small", 20)
    run = lflow.train(data, "configs/mc_maze_small.toml", out="runs/maze")
    lflow.nlb.submit(run, "submission.h5")
    lflow.nlb.score("submission.h5", "nlb/mc_maze_small/eval_target.h5")
"""

from __future__ import annotations

import json
import os
from typing import Optional, Union

from . import _lflow
from ._lflow import Dataset, LflowError, Run

__all__ = ["import_", "submit", "score"]

PathLike = Union[str, "os.PathLike[str]"]


def _need(name: str):
    fn = getattr(_lflow, name, None)
    if fn is None:
        raise LflowError(
            "this build of lflow has no NLB support: build the wheel with the `nlb` feature "
            "(maturin build --features nlb; needs libhdf5)"
        )
    return fn


def import_(dir: PathLike, dataset: str, bin_ms: int, *, phase: str = "val", valid_every: int = 10) -> Dataset:
    """The data set of the files ``nlb_tools.make_tensors`` wrote into `dir`
    (``train_input.h5``, ``eval_input.h5``, and for the ``"val"`` phase the eval
    targets), as ``lflow nlb import``: `dataset` is the benchmark's name
    (``"mc_maze_small"``), `bin_ms` 5 or 20; every `valid_every`-th train trial
    validates (0: none)."""
    return _need("nlb_import")(os.fspath(dir), dataset, bin_ms, phase=phase, valid_every=valid_every)


def submit(run: Union[Run, PathLike], out: PathLike, *, samples: Optional[int] = None, threads: int = 0) -> str:
    """Write the EvalAI submission (HDF5) of `run`'s rates on every train and eval
    trial, averaged over `samples` noisy passes (default: the run's), to `out`;
    returns the summary ``lflow nlb submit`` prints (with the val phase's scores)."""
    path = run.path if isinstance(run, Run) else os.fspath(run)
    return _need("nlb_submit")(path, os.fspath(out), samples=samples, threads=threads)


def score(submission: PathLike, target: PathLike) -> list:
    """``nlb_tools.evaluation.evaluate(target, submission)``, computed the same
    way: a list of ``{split name: {"[100] co-bps": ..., ...}}`` dicts."""
    return json.loads(_need("nlb_score")(os.fspath(submission), os.fspath(target)))
