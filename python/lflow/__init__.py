"""LangevinFlow for brain-computer interfaces, from Python.

numpy arrays in; firing rates, latents, metrics, plots and microcontroller
weight blobs out, with the Rust trainer, evaluator and exporter of `lflow`
underneath (the same code as the `lflow` command, bit for bit)::

    import lflow
    data = lflow.generate_lorenz(trials=200, seed=1)            # or lflow.Dataset.from_arrays(spikes, ...)
    run = lflow.train(data, {"model": {"hidden": 16, "ff": 32, "mode": "streaming"},
                             "train": {"epochs": 20}}, out="runs/lorenz")
    out = run.predict()                                         # dict of numpy arrays
    out["rates"].shape                                          # (eval trials, T + F, N_out), spikes per bin
    run.evaluate()["co_bps"]                                    # the metrics of eval.json
    run.export("lorenz.lfw", format="i8")                       # a blob the firmware decodes
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Optional, Union

from . import nlb
from ._lflow import Dataset, LflowError, Run, __version__, generate_lorenz
from ._lflow import train as _train

__all__ = ["Dataset", "LflowError", "Run", "__version__", "generate_lorenz", "nlb", "train"]

PathLike = Union[str, "os.PathLike[str]"]


def train(
    data: Union[None, Dataset, PathLike],
    config: Union[None, Mapping[str, Any], PathLike] = None,
    *,
    out: PathLike,
    device: str = "cpu",
    epochs: Optional[int] = None,
    threads: int = 0,
    progress: bool = True,
    callback: Optional[Callable[[dict], None]] = None,
    resume: bool = False,
    hyperparameters: Optional[Mapping[str, float]] = None,
    stop_after: Optional[int] = None,
) -> Run:
    """Train a model on `data` into the new run folder `out`; returns the :class:`Run`.

    `data` is a :class:`Dataset` or the path of a data set file. A Dataset made
    in memory is saved beside the run as ``<out>.data.safetensors`` (the run
    records its data file and hash, as ``lflow train`` does).

    `config` is None (MODEL.md's defaults), a dict with the sections of a TOML
    configuration (``{"model": {...}, "train": {...}, "eval": {...}}``; absent
    keys take the defaults, unknown keys are errors), or the path of a TOML
    file. `epochs` overrides ``train.epochs``. `device` is ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``; `threads` the CPU backend's (0: one per core).

    The GIL is released while an epoch trains. After each epoch `callback`
    (if given) receives the metrics row as a dict (``epoch``, ``train_loss``,
    ``train_nll``, ``valid_nll``, ``valid_co_bps``, ``lr``, ``trials_per_s``);
    an exception it raises, or Ctrl-C (KeyboardInterrupt), stops training
    after that epoch with a resumable checkpoint, and is raised here.

    ``resume=True`` continues the run in `out` from its last checkpoint, up
    to `epochs` in all, on its own data set (`data` None, or that file). With
    `hyperparameters` (any of ``lr``, ``dropout``, ``cd_rate``,
    ``kl_weight``, ``weight_decay``) it continues with those values instead
    (population-based training's explore step): the parameters, Adam's
    moments and step, the random stream and the schedule carry on, and a new
    ``lr`` also replaces the current learning rate.

    `stop_after` stops once that many epochs are done, with a resumable
    checkpoint, while the schedule (cosine, warm-up, KL ramp) still spans
    all `epochs`: training in intervals, as a sweep does, follows the same
    schedule as training straight through.
    """
    config_json = config_path = None
    if isinstance(config, Mapping):
        config_json = json.dumps(config)
    elif config is not None:
        config_path = os.fspath(config)
    if data is not None and not isinstance(data, Dataset):
        data = os.fspath(data)
    return _train(
        data,
        out=os.fspath(out),
        config_json=config_json,
        config_path=config_path,
        device=device,
        epochs=epochs,
        threads=threads,
        progress=progress,
        callback=callback,
        resume=resume,
        hyperparameters=None if hyperparameters is None else [(k, float(v)) for k, v in hyperparameters.items()],
        stop_after=stop_after,
    )
