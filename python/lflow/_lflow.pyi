"""Types of the Rust extension module behind `lflow` (python/src)."""

import os
import pathlib
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]

__version__: str

class LflowError(RuntimeError):
    """An lflow operation failed (training, a run folder, a checkpoint, export).

    The message is the error and every cause under it, one ``because:`` line each.
    """

class Dataset:
    """Binned spike counts of a set of trials: ``spikes [trials, T + F, N_out]``.

    The first `n_in` neurons are held in (the model's input); all `N_out` are
    predicted. Each trial has `T` observed bins and `F` forward bins of
    `bin_ms` milliseconds, and a split: ``"train"``, ``"valid"`` or ``"eval"``.
    """

    @staticmethod
    def from_arrays(
        spikes: npt.ArrayLike,
        *,
        n_in: int,
        observed: int,
        bin_ms: float,
        split: Optional[Sequence[str]] = None,
        behavior: Optional[npt.ArrayLike] = None,
        true_rates: Optional[npt.ArrayLike] = None,
        condition: Optional[npt.ArrayLike] = None,
    ) -> "Dataset":
        """A data set from numpy arrays, with the data set file's checks.

        - `spikes`: ``[trials, T + F, N_out]`` spike counts per bin (any integer
          or float dtype; finite, non-negative whole numbers);
        - `n_in`: held-in neurons (the first `n_in` of `N_out`);
        - `observed`: `T`, the bins the model sees (the rest are forward bins);
        - `bin_ms`: bin width, milliseconds;
        - `split`: one of ``"train"``, ``"valid"``, ``"eval"`` per trial
          (default: the last fifth eval, the last tenth of the rest, rounded
          up, valid);
        - `behavior`: ``[trials, T, dims]``, e.g. hand velocity;
        - `true_rates`: ``[trials, T + F, N_out]`` spikes per bin, when known;
        - `condition`: ``[trials]`` integer condition ids (for PSTHs).

        Raises ValueError naming the array, the index and the rule broken.
        """
    @staticmethod
    def load(path: _Path) -> "Dataset":
        """Read a data set file (safetensors, host/DATA.md)."""
    def save(self, path: _Path) -> None:
        """Write the data set file atomically (what ``lflow train --data`` reads)."""
    @property
    def path(self) -> Optional[pathlib.Path]:
        """The file it was loaded from or last saved to."""
    @property
    def trials(self) -> int: ...
    @property
    def bins(self) -> int:
        """`T + F`."""
    @property
    def observed(self) -> int:
        """`T`."""
    @property
    def forward(self) -> int:
        """`F`."""
    @property
    def n_in(self) -> int: ...
    @property
    def n_out(self) -> int: ...
    @property
    def bin_ms(self) -> float: ...
    @property
    def split(self) -> list[str]: ...
    @property
    def spikes(self) -> npt.NDArray[np.float32]:
        """A copy, ``[trials, T + F, N_out]`` spikes per bin."""
    @property
    def true_rates(self) -> Optional[npt.NDArray[np.float32]]:
        """``[trials, T + F, N_out]`` spikes per bin (synthetic data)."""
    @property
    def behavior(self) -> Optional[npt.NDArray[np.float32]]:
        """``[trials, T, dims]``."""
    def __len__(self) -> int: ...

def generate_lorenz(
    *,
    trials: Optional[int] = None,
    eval_trials: Optional[int] = None,
    valid_fraction: Optional[float] = None,
    observed: Optional[int] = None,
    forward: Optional[int] = None,
    held_in: Optional[int] = None,
    held_out: Optional[int] = None,
    bin_ms: Optional[float] = None,
    seed: Optional[int] = None,
) -> Dataset:
    """Synthetic trials from a Lorenz system with known rates (``lflow generate
    lorenz``; defaults: 1000 trials, 50 + 10 bins of 10 ms, 40 + 10 neurons)."""

class Run:
    """A run folder: ``run.json``, checkpoints, ``metrics.csv``, ``eval.json``, plots."""

    @staticmethod
    def open(path: _Path) -> "Run": ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def config(self) -> dict:
        """The resolved configuration (``model``, ``train``, ``eval``)."""
    @property
    def data_path(self) -> pathlib.Path:
        """The data set file it was trained on."""
    def predict(
        self, data: Optional[Dataset] = None, samples: int = 50, split: str = "eval", *, threads: int = 0
    ) -> dict[str, npt.NDArray[Any]]:
        """The best checkpoint's predictions for the trials of `split` of `data`
        (default: the run's own data set), `n` of them:

        - ``log_rates``, ``rates``: ``[n, T + F, N_out]``, spikes per bin,
          averaged over `samples` noisy passes (0: mean mode, as a device decodes);
        - ``latents``: ``[n, T + F, 3H]`` (``[z, v, h]``, mean mode);
        - ``decoder_output``: ``[n, T + F, 3H]`` (mean mode);
        - ``trials``: ``[n]`` the trials' indices in `data`.
        """
    def evaluate(self, data: Optional[Dataset] = None, *, samples: Optional[int] = None, threads: int = 0) -> dict:
        """Score the eval trials as ``lflow eval`` does; writes ``eval.json`` and returns it."""
    def plot(self, *, threads: int = 0) -> list[pathlib.Path]:
        """Draw the run's plots (PNG, ``<run>/plots``); returns their paths."""
    def export(self, path: _Path, *, format: str = "i8", threads: int = 0) -> dict:
        """Export a streaming run's best weights as an LFW1 blob (``"f32"``,
        ``"f16"`` or ``"i8"``) with its velocity decoder; returns the blob's
        path and size and the quality table (host f32, blob, lflow-core)."""

def train(
    data: Union[None, Dataset, _Path],
    *,
    out: _Path,
    config_json: Optional[str] = None,
    config_path: Optional[_Path] = None,
    device: str = "cpu",
    epochs: Optional[int] = None,
    threads: int = 0,
    progress: bool = True,
    callback: Optional[Callable[[dict], None]] = None,
    resume: bool = False,
    hyperparameters: Optional[Sequence[tuple[str, float]]] = None,
    stop_after: Optional[int] = None,
) -> Run:
    """The extension's training entry point; use :func:`lflow.train`."""
