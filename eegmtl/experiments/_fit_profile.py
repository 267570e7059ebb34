"""Where the wall time of a MixNet fit goes, and the peak memory of a protocol run.

:class:`FitTimer` wraps, for the duration of a ``with`` block, the methods that make up a fit
(feature building, batch gathering, the training step, MixNet's interleaved validation, the
per-epoch validation pass, probes, model selection / checkpoints / history) and sums their wall
time; a call nested in another timed call counts for the outer one only. The training step
is timed where it runs, between the loop's ``on_batch_begin`` and ``on_batch_end`` hooks, so
"steps" is exactly the sum of the step times; everything else in the epoch loop is overhead.

:class:`RSSSampler` samples, in a background thread, the memory of this process and all its
children (joblib workers): proportional set size (PSS, shared pages split between the
processes that map them) where the platform reports it, else RSS.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["FitTimer", "RSSSampler", "validation_pass_ab"]


def _targets() -> dict[str, list[tuple[Any, str]]]:
    from eegmtl.mixnet.features import MixNetFeatures
    from eegmtl.mtl import callbacks as cb
    from eegmtl.mtl.conflict_probe import ConflictProbe
    from eegmtl.mtl.data import MultiTaskDataset
    from eegmtl.mtl.step import MTLStep
    from eegmtl.mtl.trainer import Trainer

    return {
        "data": [(MixNetFeatures, "fit_transform"), (MixNetFeatures, "transform"),
                 (MultiTaskDataset, "batch")],
        "steps": [(MTLStep, "__call__")],
        "interleaved_validation": [(cb.InterleavedValidation, "on_batch_end")],
        "evaluation": [(Trainer, "evaluate")],
        "probes": [(ConflictProbe, "on_batch_begin"), (ConflictProbe, "on_batch_end")],
        "io": [(cb.ModelSelection, "on_epoch_end"), (cb.ModelSelection, "on_fit_end"),
               (cb.Checkpoint, "on_epoch_saved"), (cb.ProgressBar, "on_epoch_end"),
               (Trainer, "history_frame")],
    }


class FitTimer:
    """Sum the wall time of the parts of a fit (see the module docstring).

    Parameters
    ----------
    targets : mapping of str to list of (class, method name), optional
        The parts and the methods timed for each; default the parts of a MixNet fit.

    Attributes
    ----------
    seconds : dict of str to float
        ``data``, ``steps``, ``interleaved_validation``, ``evaluation``, ``probes``, ``io``.
    calls : dict of str to int
    """

    def __init__(self, targets: dict[str, list[tuple[Any, str]]] | None = None) -> None:
        self.targets = targets
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        timer = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if timer._depth:
                return fn(*args, **kwargs)
            timer._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timer.seconds[part] += time.perf_counter() - t0
                timer.calls[part] += 1
                timer._depth -= 1

        return timed

    def __enter__(self) -> FitTimer:
        for part, targets in (self.targets or _targets()).items():
            self.seconds[part] += 0.0
            for owner, name in targets:
                fn = owner.__dict__.get(name)
                if fn is None:  # inherited: wrap what the class resolves to
                    fn = getattr(owner, name)
                self._saved.append((owner, name, owner.__dict__.get(name)))
                setattr(owner, name, self._wrap(part, fn))
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()


def validation_pass_ab(n_val: int = 1200, latent_dim: int = 18, rounds: int = 8,
                       seed: int = 0) -> dict[str, float]:
    """Paired A/B, in this process, of MixNet's per-epoch validation pass (SI size by default):
    the forward of each 1024-trial loss batch at once from gathered copies (``a``) against
    :class:`~eegmtl.mtl.batches.SlicedLoader` views and a forward in chunks of <= 128 trials
    (``b``, what :func:`~eegmtl.mixnet.net.fit_network` uses on a CPU). The two orders
    alternate by round; returns the median seconds of each, the median and quartiles of the
    per-round ratio ``b / a``, and whether the results were identical."""
    import numpy as np
    import torch

    from eegmtl.mixnet import net
    from eegmtl.mtl.batches import SlicedLoader
    from eegmtl.mtl.data import MultiTaskLoader
    from eegmtl.mtl.evaluate import evaluate_tasks

    torch.manual_seed(seed)
    model = net.build_network(variant="mixnet", n_channels=18, n_times=400, n_classes=2,
                              latent_dim=latent_dim)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_val)
    ds = net._dataset(rng.standard_normal((n_val, 18, 400)).astype(np.float32), y)
    tasks, cpu = net.make_tasks(y, 2, 5.0), torch.device("cpu")
    size = min(n_val, net._VAL_BATCH)
    runs = {
        "a": lambda: evaluate_tasks(model, MultiTaskLoader(ds, size, shuffle=False), tasks, cpu),
        "b": lambda: evaluate_tasks(model, SlicedLoader(ds, size), tasks, cpu,
                                    forward_batch_size=net._EVAL_FORWARD_CPU),
    }
    identical = runs["a"]() == runs["b"]()
    times: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(rounds):
        for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    ratio = np.asarray(times["b"]) / np.asarray(times["a"])
    return {"a_s": float(np.median(times["a"])), "b_s": float(np.median(times["b"])),
            "ratio_median": float(np.median(ratio)), "ratio_q25": float(np.quantile(ratio, 0.25)),
            "ratio_q75": float(np.quantile(ratio, 0.75)), "identical": bool(identical)}


class RSSSampler:
    """Peak memory of this process and its children, sampled every ``interval`` seconds.

    Attributes (after the ``with`` block)
    -------------------------------------
    peak_total_mb : float
        Largest sum over this process and its children at one sample.
    peak_main_mb, peak_child_mb : float
        Largest value of this process, and of any one child.
    kind : str
        ``"pss"`` or ``"rss"``.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = float(interval)
        self.peak_total_mb = self.peak_main_mb = self.peak_child_mb = 0.0
        self.n_children_seen = 0
        self.kind = "rss"

    def _mem(self, proc: Any) -> float:
        try:
            if self.kind == "pss":
                return proc.memory_full_info().pss / 2**20
            return proc.memory_info().rss / 2**20
        except Exception:  # noqa: BLE001 - a worker may exit between listing and reading
            return 0.0

    def sample(self) -> None:
        """Take one sample now."""
        main = self._mem(self._proc)
        kids = [self._mem(c) for c in self._proc.children(recursive=True)]
        self.n_children_seen = max(self.n_children_seen, len(kids))
        self.peak_main_mb = max(self.peak_main_mb, main)
        self.peak_child_mb = max([self.peak_child_mb, *kids])
        self.peak_total_mb = max(self.peak_total_mb, main + sum(kids))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RSSSampler:
        import psutil

        self._proc = psutil.Process()
        try:
            self._proc.memory_full_info().pss  # noqa: B018 - probes PSS support
            self.kind = "pss"
        except (AttributeError, psutil.Error):
            self.kind = "rss"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
