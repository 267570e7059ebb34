"""Where the wall time of one vision run goes, against the same training steps timed alone.

``eegmtl vision --bench`` trains one run of the MultiMNIST-family grid through
:func:`eegmtl.benchmarks.runner.run_benchmark` with a :class:`PhaseTimer` callback, then
replays the same steps (a fresh trainer with the same seed, the same batches of the first
epoch) with nothing around them, and prints the breakdown

- **data**: building the data set (load / cache), and per step the batch (loader, device
  move) plus the trainer's bookkeeping between steps;
- **steps**: the training steps inside the run;
- **probes**: the gradient-conflict probe's own passes
  (:class:`~eegmtl.mtl.conflict_probe.ConflictProbe`; zero where it reads the step's matrix);
- **evaluation**: the validation pass of every epoch, and the test pass once;
- **I/O and rest**: checkpoints, callbacks, the record merge;

and the ratio *wall time per epoch / sum of the same steps timed alone* (target ≤ 1.2).
"""

from __future__ import annotations

import time
from typing import Any

from eegmtl.mtl.callbacks import Callback

__all__ = ["PhaseTimer", "bench_run"]


class PhaseTimer(Callback):
    """Trainer callback that splits each epoch's wall time into data, steps, probes,
    evaluation and the rest. Place it after the trainer's
    :class:`~eegmtl.mtl.conflict_probe.ConflictProbe` (found in ``trainer.callbacks``; its
    ``seconds`` give the probe time) so that ``on_batch_begin`` marks the start of the step."""

    def __init__(self, probe: Any = None) -> None:
        self.probe = probe
        self.epochs: list[dict[str, float]] = []
        self._t = 0.0

    def on_fit_begin(self, trainer: Any, train_loader: Any, val_loader: Any) -> None:
        from eegmtl.mtl.conflict_probe import ConflictProbe

        if self.probe is None:
            self.probe = next((c for c in trainer.callbacks if isinstance(c, ConflictProbe)),
                              None)

    def _now(self) -> float:
        return time.perf_counter()

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        if self.epochs and "wall" not in self.epochs[-1]:
            self._close()
        self.epochs.append({"data": 0.0, "steps": 0.0, "probes": 0.0, "evaluation": 0.0,
                            "n_steps": 0})
        self._start = self._t = self._now()
        self._probe0 = self._probe_seconds()

    def _probe_seconds(self) -> float:
        return float(getattr(self.probe, "seconds", 0.0))

    def on_batch_begin(self, trainer: Any, x: Any, targets: Any) -> None:
        now = self._now()
        probe = self._probe_seconds()
        rec = self.epochs[-1]
        rec["probes"] += probe - self._probe0
        rec["data"] += (now - self._t) - (probe - self._probe0)
        self._probe0 = probe
        self._t = now

    def on_batch_end(self, trainer: Any, result: Any, record: dict[str, Any]) -> None:
        now = self._now()
        self.epochs[-1]["steps"] += now - self._t
        self.epochs[-1]["n_steps"] += 1
        self._t = now

    def on_evaluate(self, trainer: Any, result: dict[str, float]) -> None:
        now = self._now()
        self.epochs[-1]["evaluation"] += now - self._t
        self._t = now

    def _close(self) -> None:
        rec = self.epochs[-1]
        rec["wall"] = self._now() - self._start
        rec["rest"] = rec["wall"] - rec["data"] - rec["steps"] - rec["probes"] - rec["evaluation"]

    def on_fit_end(self, trainer: Any) -> None:
        if self.epochs and "wall" not in self.epochs[-1]:
            self._close()


def _steps_alone(kwargs: dict[str, Any], splits: Any, n_steps: int) -> float:
    """Seconds of ``n_steps`` training steps of the run's configuration, timed one by one
    around the step call only (fresh trainer, same seed, the first epoch's batches)."""
    from eegmtl.benchmarks.protocols import PROTOCOLS, _as_mtl_dataset, _build_model, _tasks
    from eegmtl.benchmarks.runner import flat_for_method
    from eegmtl.mtl import Trainer, make_loader, resolve_method
    from eegmtl.mtl.data import to_device
    from eegmtl.mtl.runtime import seed_everything

    proto = PROTOCOLS[kwargs.get("protocol", "lenet")]
    kw = resolve_method(kwargs["method"])
    kw["flat"] = flat_for_method(kw, kwargs.get("flat"))
    seed = int(kwargs.get("seed", 0))
    seed_everything(seed)
    names = list(splits.task_names)
    trainer = Trainer(
        _build_model(kwargs.get("model") or proto["model"], names), _tasks(names),
        weighting=kw["weighting"], aggregator=kw["aggregator"], flat=kw["flat"],
        optimizer=proto["optimizer"], lr=proto["lr"], scheduler=None, progress=False,
        seed=seed, device=kwargs.get("device", "cpu"), log_steps=False,
    )
    train = _as_mtl_dataset(splits.train, kwargs.get("n_train"), "train")
    loader = make_loader(train, int(kwargs.get("batch_size") or proto["batch_size"]),
                         shuffle=True, seed=seed)
    loader.set_epoch(0)
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i >= n_steps:
            break
        x, y = to_device(x, trainer.device), to_device(y, trainer.device)
        t0 = time.perf_counter()
        trainer.step(x, y)
        total += time.perf_counter() - t0
    return total


def bench_run(
    benchmark: str = "multimnist", method: str = "ew", epochs: int = 2, *,
    log: Any = print, **kwargs: Any,
) -> dict[str, float]:
    """Train one run with a :class:`PhaseTimer`, replay its first epoch's steps alone, print
    the breakdown and return it (seconds per phase, ``ratio`` = mean epoch wall / steps alone
    per epoch)."""
    import tempfile
    from pathlib import Path

    from eegmtl.benchmarks import runner
    from eegmtl.benchmarks.multimnist import load_multimnist

    t0 = time.perf_counter()
    splits = kwargs.pop("splits", None) or load_multimnist(runner.canonical_benchmark(benchmark))
    data_build = time.perf_counter() - t0
    timer = PhaseTimer()
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        rec = runner.run_benchmark(
            benchmark, method=method, epochs=epochs, splits=splits, callbacks=[timer],
            results_path=Path(tmp) / "res.csv", checkpoint_dir=Path(tmp) / "ckpt",
            resume=False, **kwargs)
        run_wall = time.perf_counter() - t1
    fit = float(rec["time"].iloc[0])
    n_steps = int(timer.epochs[0]["n_steps"])
    alone = _steps_alone({"method": method, **kwargs}, splits, n_steps)
    keys = ("data", "steps", "probes", "evaluation", "rest", "wall")
    per_epoch = {k: sum(e[k] for e in timer.epochs) / len(timer.epochs) for k in keys}
    out = {**{f"epoch_{k}": v for k, v in per_epoch.items()}, "steps_alone": alone,
           "ratio": per_epoch["wall"] / alone, "data_build": data_build,
           "after_fit": run_wall - fit, "fit": fit, "n_steps_per_epoch": n_steps}
    log(f"{benchmark} {method}: {len(timer.epochs)} epochs x {n_steps} steps "
        f"(n_train={len(splits.train) if kwargs.get('n_train') is None else kwargs['n_train']})")
    log(f"  data set build/load (once):           {data_build:8.2f} s")
    for k in ("data", "steps", "probes", "evaluation", "rest"):
        label = {"rest": "I/O and rest (checkpoint, hooks)", "data": "data (batches, bookkeeping)",
                 "evaluation": "evaluation (validation)"}.get(k, k)
        log(f"  per epoch {label:<32s} {per_epoch[k]:8.2f} s "
            f"({100 * per_epoch[k] / per_epoch['wall']:5.1f} %)")
    log(f"  per epoch wall                        {per_epoch['wall']:8.2f} s")
    log(f"  after the fit (test pass, records):   {run_wall - fit:8.2f} s")
    log(f"  the same {n_steps} steps timed alone:     {alone:8.2f} s")
    log(f"  ratio epoch wall / steps alone:       {out['ratio']:8.3f} "
        f"({'meets' if out['ratio'] <= 1.2 else 'misses'} the 1.2 target)")
    return out


def ew_step_seconds(device: str = "cpu", n: int = 8, warmup: int = 3) -> float:
    """Median thread CPU time of one EW training step of LeNet on a batch of 256 MultiMNIST-
    sized inputs (random data; thread CPU time, so foreign load on the machine matters less
    than in wall time)."""
    import statistics

    import torch

    from eegmtl.benchmarks.protocols import _build_model, _tasks
    from eegmtl.mtl import Trainer

    names = ["left", "right"]
    trainer = Trainer(_build_model("lenet", names), _tasks(names), scheduler=None,
                      progress=False, seed=0, device=device, log_steps=False)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 36, 36, generator=g).to(trainer.device)
    y = {k: torch.randint(0, 10, (256,), generator=g).to(trainer.device) for k in names}
    times = []
    for i in range(warmup + n):
        t0 = time.thread_time()
        trainer.step(x, y)
        if i >= warmup:
            times.append(time.thread_time() - t0)
    return statistics.median(times)
