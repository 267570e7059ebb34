"""One vision-benchmark run of any MTL method (weighting × aggregator × flat); tidy records.

One call of :func:`run_benchmark` trains one model with one method and one seed on one data
set of the MultiMNIST family (MultiMNIST, MultiFashion, MultiFashion+MNIST;
:mod:`eegmtl.benchmarks.multimnist`) and appends one row per task plus one ``task="avg"`` row
to a CSV results file (the vision result-record schema, :mod:`eegmtl.benchmarks.records`):

``benchmark, dataset, model, method, seed, epochs, task, accuracy, avg_accuracy, delta_p,
brier, ece, entropy, conflict_rate, time, config_hash, config`` (+ ``weighting``,
``aggregator``, ``flat_rho``, ``n_train``, ``n_val``, ``n_test``, ``best_epoch``,
``val_avg_accuracy``, ``n_conflict_probes``, ``protocol_hash``, ``device``, ``machine``
(CPU model and SIMD level, GPU: :func:`eegmtl._io.machine_info`), ``versions``,
and, not hashed, ``gradient_mode`` and ``step_config``: the step's resolved arithmetic
choices, :meth:`~eegmtl.mtl.step.MTLStep.config`).

Protocol (stated, the same for every method)
--------------------------------------------
- **Selection on validation, never on test.** 10 % of the training pairs are held out
  (``load_multimnist``, PHN's ``train_test_split(test_size=0.1, random_state=42)``); the
  epoch with the best *validation* average accuracy is restored (``Trainer(monitor=
  "val_avg_accuracy")``) and only then is the test set loaded into a loader and evaluated
  once. (The F-MTL MultiMNIST code keeps the best *test* epoch -- we do not.) No early
  stopping: every run trains for ``epochs`` epochs.
- **Optimiser.** ``protocol="lenet"`` (default, CPU): LeNet (ParetoMTL), **Adam lr 1e-3, no
  schedule**, batch 256 -- the F-MTL / Recon optimiser, chosen over ParetoMTL's SGD (lr 1e-3,
  momentum 0.9, MultiStepLR) because it converges in the few epochs a CPU allows;
  ``protocol="paretomtl-lenet"`` gives ParetoMTL's SGD schedule (100 epochs);
  ``protocol="resnet18"`` is F-MTL Table 1 (ResNet-18, Adam 1e-3, no schedule, bs 256, 100
  epochs (argparse default; run.sh uses 200)), meant for a GPU.
- **Flat variants** (``"f-<aggregator>"``) use :data:`eegmtl.mtl.flat.FMTL_MULTIMNIST`
  (ASAM, ρ = 2, one joint norm over shared + head parameters), the official MultiMNIST code's
  setting, unless ``flat=`` overrides it.
- **Metrics on the test set** after selection: per-task accuracy, Brier score, ECE (15 bins),
  predictive entropy (nats) of the softmax outputs (:mod:`eegmtl.mtl.metrics`); the ``avg``
  row holds their mean over tasks. ``delta_p`` (RLW Eq. 9) is relative to **EW with the same
  protocol and seed** (same ``protocol_hash``), filled in whenever an EW run of the group is in
  the file (recomputed on every write, so the order of the runs does not matter).
- **Gradient-conflict rate** (F-MTL Fig. 3): every ``conflict_every``-th training step the
  per-task gradients of the *unweighted* losses w.r.t. the shared parameters are computed on
  the step's batch at the current parameters (one extra forward + T backward passes, BatchNorm
  statistics untouched) before the method's own step; ``conflict_rate`` is the fraction of
  probed mini-batches with a negative cosine between two task gradients
  (:class:`~eegmtl.mtl.conflict_probe.ConflictProbe`; methods whose step already builds that
  matrix -- parameter-level aggregators, flat variants -- have it read from the step at no
  extra cost). The probe counts are part of the trainer checkpoint, so a resumed run counts
  every probe once.

Resume: a run whose ``config_hash`` is already in the results file is skipped (its rows are
returned); the file is a :class:`eegmtl._io.RecordStore` (key ``config_hash`` × ``task``),
rewritten atomically under a lock, so two processes can share it.
Per-epoch trainer checkpoints (``checkpoint_dir``) allow resuming an interrupted run; its
``time`` is the wall time of the whole fit, the epochs run before the interruption included
(their per-epoch times come back with the checkpointed history).

Longer budgets extend shorter runs (:func:`shorter_budget_checkpoint`): a run of ``epochs=E``
without a checkpoint of its own starts from the last checkpoint of the same run with the
largest shorter budget ``e < E`` (same configuration except ``epochs``), copied into its own
folder, and trains epochs ``e+1..E``. This is exact -- the result equals a fresh ``E``-epoch
run -- because nothing in a run depends on its budget: the schedules are epoch-indexed
(constant Adam, or milestones), the shuffling is seeded per epoch, there is no early
stopping, and the checkpoint holds the end-of-epoch weights (the best-epoch weights are kept
apart and restored only when the fit ends), optimiser, RNG and best-epoch state. The copied
epochs' wall time counts in the record's ``time`` as for any resumed run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eegmtl._io import atomic_write, config_hash, library_versions, machine_info
from eegmtl.benchmarks.protocols import (
    PROTOCOLS,
    _accuracy,
    _as_mtl_dataset,
    _build_model,
    _scheduler,
    _tasks,
    canonical_benchmark,
)
from eegmtl.benchmarks.records import (
    COLUMNS,
    load_records,
    write_history,
    write_records,
)
from eegmtl.mtl import FMTL_MULTIMNIST, FlatConfig, Trainer, make_loader, resolve_method
from eegmtl.mtl.callbacks import Callback, MeanMetric
from eegmtl.mtl.conflict_probe import ConflictProbe
from eegmtl.mtl.flat import make_flat_config
from eegmtl.mtl.metrics import brier_score, expected_calibration_error, predictive_entropy
from eegmtl.mtl.runtime import seed_everything, select_device
from eegmtl.mtl.trainer import CHECKPOINT_NAME

__all__ = ["flat_for_method", "run_benchmark", "run_checkpoint", "shorter_budget_checkpoint"]

_BENCHMARK_FAMILY = "multimnist"
_SELECTION = "best validation avg accuracy (10% of train held out); test evaluated once, after"


def _hash(obj: Any) -> str:
    """Hash of a run or protocol config (the ``"loose"`` style all vision records use)."""
    return config_hash(obj, 16, style="loose")


def run_checkpoint(checkpoint_dir: str | os.PathLike[str], run_hash: str) -> Path:
    """The trainer checkpoint of the run whose record has ``config_hash == run_hash``:
    ``<checkpoint_dir>/<run_hash>/last.pt`` (it may not exist)."""
    return Path(checkpoint_dir) / run_hash / CHECKPOINT_NAME


def shorter_budget_checkpoint(config: Mapping[str, Any], checkpoint_dir: str | os.PathLike[str],
                              ) -> tuple[int, Path] | None:
    """The checkpoint a run of ``config`` can extend: that of the same configuration with the
    largest shorter epoch budget, as ``(epochs, path of last.pt)``, or ``None``.

    ``config`` is the full hashed run configuration (its ``config_hash`` names the run's
    checkpoint folder under ``checkpoint_dir``); see the module docstring for why extending
    is exact.
    """
    for e in range(int(config["epochs"]) - 1, 0, -1):
        path = run_checkpoint(checkpoint_dir, _hash({**config, "epochs": e}))
        if path.is_file():
            return e, path
    return None


def _versions() -> str:
    return json.dumps(library_versions(["torch", "numpy", "python"]))


# ----------------------------------------------------------------------------- the run
def _flat_json(flat: FlatConfig | None) -> dict[str, Any] | None:
    return None if flat is None else flat.as_record()


def flat_for_method(resolved: Mapping[str, Any], flat: Any = None) -> FlatConfig | None:
    """Flat setting of a resolved method: ``None`` for plain methods; for ``"f-"`` methods
    ``flat`` (FlatConfig, dict or rho) or :data:`~eegmtl.mtl.flat.FMTL_MULTIMNIST`."""
    if resolved["flat"] is None:
        return None
    return make_flat_config(FMTL_MULTIMNIST if flat is None else flat)


def run_benchmark(
    benchmark: str = "multimnist",
    model: str | None = None,
    method: str = "ew",
    seed: int = 0,
    epochs: int | None = None,
    *,
    protocol: str = "lenet",
    batch_size: int | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    flat: FlatConfig | Mapping[str, Any] | float | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    conflict_every: int = 5,
    data_kwargs: Mapping[str, Any] | None = None,
    splits: Any = None,
    device: str = "auto",
    results_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    threads: int | None = None,
    history_path: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callback] = (),
) -> pd.DataFrame:
    """Train one method on one MultiMNIST-family data set and return its tidy records.

    Parameters
    ----------
    benchmark : str
        ``"multimnist"``, ``"multifashion"`` or ``"multifashion_mnist"`` (aliases in
        :data:`~eegmtl.benchmarks.protocols.BENCHMARKS`).
    model : {"lenet", "resnet18"} or None
        Default: the protocol's model.
    method : str
        Any name :func:`eegmtl.mtl.step.resolve_method` knows: ``"ew"``, a weighting
        (``"rlw"``, ``"uw"``...), an aggregator (``"mgda_ub"``, ``"pcgrad"``, ``"imtl_g"``,
        ``"cagrad"``, ``"nash_mtl"``, ``"aligned_mtl"``, ``"rgw"``...), ``"f-"`` prefixed for
        the flat (F-MTL) variant.
    seed : int
        Seeds model initialisation, shuffling and random weightings (the data set itself uses
        ``data_kwargs["seed"]``, default 0, so every seed sees the same pairs).
    epochs : int or None
        Training epochs (no early stopping); default the protocol's.
    protocol : {"lenet", "paretomtl-lenet", "resnet18"}, default "lenet"
        See :data:`~eegmtl.benchmarks.protocols.PROTOCOLS` and the module docstring.
    batch_size, optimizer, lr : optional
        Override the protocol's (256, Adam, 1e-3 by default).
    flat : FlatConfig, dict, float or None
        Flat setting for ``"f-"`` methods; default :data:`~eegmtl.mtl.flat.FMTL_MULTIMNIST`
        (ASAM, ρ = 2, joint norm). Ignored for non-flat methods.
    n_train, n_val, n_test : int or None
        Use only the first ``n`` rows of the split (the train/val rows are already in random
        order), e.g. for smoke tests or a CPU budget. ``None``: all (97 200 / 10 800 / 20 000...
        see :func:`~eegmtl.benchmarks.multimnist.load_multimnist`; 108 000 / 12 000 / 20 000 for
        the full sets).
    conflict_every : int, default 5
        Probe the gradient conflict every this many training steps (see module docstring).
    data_kwargs : mapping, optional
        Extra arguments of :func:`~eegmtl.benchmarks.multimnist.load_multimnist` (part of the
        configuration hash).
    splits : MultiTaskSplits, optional
        Pre-loaded splits (e.g. shared across runs by
        :func:`~eegmtl.benchmarks.runner.run_grid`, or synthetic ones in tests); must match
        ``benchmark`` / ``data_kwargs``, which still go into the hash.
    device : str, default "auto"
    results_path : path-like or None
        CSV file the records are merged into; with ``resume=True`` a run already there (same
        ``config_hash``) is not repeated.
    resume : bool, default True
        Skip finished runs; continue an interrupted run from ``checkpoint_dir`` when given.
    checkpoint_dir : path-like or None
        Root for per-run trainer checkpoints (``<root>/<config_hash>/last.pt``).
    progress : bool, default False
        tqdm bar over the epochs.
    threads : int or None
        ``torch.set_num_threads`` for this process.
    history_path : path-like or None
        CSV file the per-epoch history of a trained run is merged into (one row per
        ``config_hash`` × epoch: validation accuracies, losses, epoch time), e.g. to show
        where validation accuracy flattens (:data:`~eegmtl.benchmarks.records.HISTORY_COLUMNS`).
    callbacks : sequence of Callback
        Extra trainer callbacks (e.g. timers); they do not change the records or the hash.

    Returns
    -------
    pandas.DataFrame
        One row per task plus one ``task="avg"`` row with the columns of
        :data:`~eegmtl.benchmarks.records.COLUMNS`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}.")
    if threads is not None:
        torch.set_num_threads(int(threads))
    proto = PROTOCOLS[protocol]
    dataset = canonical_benchmark(benchmark)
    model_name = (model or proto["model"]).lower().replace("-", "")
    epochs = int(proto["epochs"] if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    batch_size = int(proto["batch_size"] if batch_size is None else batch_size)
    optimizer = str(proto["optimizer"] if optimizer is None else optimizer)
    lr = float(proto["lr"] if lr is None else lr)
    kw = resolve_method(method)
    method_key = method.strip().lower()
    kw["flat"] = flat_for_method(kw, flat)
    data_kwargs = dict(data_kwargs or {})
    dev = select_device(device)

    config: dict[str, Any] = {
        "benchmark": _BENCHMARK_FAMILY, "dataset": dataset, "data_kwargs": data_kwargs,
        "n_train": n_train, "n_val": n_val, "n_test": n_test, "model": model_name,
        "protocol": protocol, "epochs": epochs, "batch_size": batch_size,
        "optimizer": optimizer, "lr": lr, "scheduler": proto["scheduler"], "seed": int(seed),
        "selection": _SELECTION, "conflict_every": int(conflict_every),
    }
    protocol_hash = _hash(config)
    config.update({
        "method": method_key, "weighting": kw["weighting"], "aggregator": kw["aggregator"],
        "flat": _flat_json(kw["flat"]),
    })
    config_hash = _hash(config)

    if results_path is not None and resume:
        existing = load_records(results_path)
        if not existing.empty and (existing["config_hash"] == config_hash).any():
            done = existing[existing["config_hash"] == config_hash]
            if (done["task"] == "avg").any():
                return done.reset_index(drop=True)

    if splits is None:
        from eegmtl.benchmarks.multimnist import load_multimnist

        splits = load_multimnist(dataset, **data_kwargs)
    task_names = list(splits.task_names)
    train = _as_mtl_dataset(splits.train, n_train, "train")
    val = _as_mtl_dataset(splits.val, n_val, "val")

    seed_everything(int(seed))  # the model's initialisation depends on the seed only
    net = _build_model(model_name, task_names)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir) / config_hash
    probe = ConflictProbe(conflict_every)
    trainer = Trainer(
        net, _tasks(task_names), weighting=kw["weighting"], aggregator=kw["aggregator"],
        flat=kw["flat"], optimizer=optimizer, lr=lr, scheduler=_scheduler(proto["scheduler"]),
        max_epochs=epochs, patience=None, monitor="val_avg_accuracy", mode="max",
        restore_best=True, checkpoint_dir=ckpt, progress=progress, seed=int(seed), device=dev,
        log_steps=False,
        callbacks=[MeanMetric("avg_accuracy", "accuracy"), probe, *callbacks],
    )
    train_loader = make_loader(train, batch_size, shuffle=True, seed=int(seed))
    val_loader = make_loader(val, 1024, shuffle=False)
    t0 = time.perf_counter()
    if resume and ckpt is not None and not (ckpt / CHECKPOINT_NAME).is_file():
        shorter = shorter_budget_checkpoint(config, checkpoint_dir)  # type: ignore[arg-type]
        if shorter is not None:  # extend the shorter run (exact; module docstring)
            ckpt.mkdir(parents=True, exist_ok=True)
            atomic_write(ckpt / CHECKPOINT_NAME, shorter[1].read_bytes())
    resume_fit = resume and ckpt is not None and (ckpt / CHECKPOINT_NAME).is_file()
    trainer.fit(train_loader, val_loader, resume=resume_fit)
    # a resumed fit also counts the wall time of the epochs it restored from the checkpoint
    fit_time = time.perf_counter() - t0 + sum(
        float(e.get("time", 0.0)) for e in trainer.history["epochs"][: trainer.resumed_epochs_])
    if history_path is not None:
        write_history(history_path, trainer.history_frame(), {
            "dataset": dataset, "model": model_name, "method": method_key, "seed": int(seed),
            "config_hash": config_hash,
        })

    # ---- test: touched only now, once, with the selected (best validation) weights
    test = _as_mtl_dataset(splits.test, n_test, "test")
    outputs = trainer.predict(make_loader(test, 1024, shuffle=False))
    rows = []
    hist = trainer.history_frame()
    best = int(trainer.best_epoch_) if trainer.best_epoch_ is not None else -1
    val_avg = float(hist.loc[hist["epoch"] == best, "val_avg_accuracy"].iloc[0]) if best >= 0 \
        else math.nan
    for name in task_names:
        logits = outputs[name].double()
        y = test.targets[name].cpu()
        probs = torch.softmax(logits, dim=1).numpy()
        rows.append({
            "task": name,
            "accuracy": _accuracy(logits, y),
            "brier": brier_score(probs, y.numpy()),
            "ece": expected_calibration_error(probs, y.numpy(), n_bins=15),
            "entropy": predictive_entropy(probs),
        })
    avg = {k: float(np.mean([r[k] for r in rows])) for k in ("accuracy", "brier", "ece", "entropy")}
    rows.append({"task": "avg", **avg})
    step_config = trainer.step.config()
    common = {
        "benchmark": _BENCHMARK_FAMILY, "dataset": dataset, "model": model_name,
        "method": method_key, "seed": int(seed), "epochs": epochs,
        "avg_accuracy": avg["accuracy"], "delta_p": 0.0 if method_key == "ew" else math.nan,
        "conflict_rate": probe.counter.rate, "time": fit_time, "config_hash": config_hash,
        "config": json.dumps(config, sort_keys=True, default=str),
        "weighting": kw["weighting"], "aggregator": kw["aggregator"],
        "flat_rho": kw["flat"].rho if kw["flat"] is not None else 0.0,
        "n_train": len(train), "n_val": len(val), "n_test": len(test), "best_epoch": best,
        "val_avg_accuracy": val_avg, "n_conflict_probes": probe.counter.n_batches,
        "protocol_hash": protocol_hash, "device": str(dev),
        "machine": json.dumps(machine_info(), sort_keys=True), "versions": _versions(),
        "gradient_mode": step_config["gradient_mode"],
        "step_config": json.dumps(step_config, sort_keys=True, default=str),
    }
    records = pd.DataFrame([{**common, **r} for r in rows])
    records = records[[c for c in COLUMNS if c in records.columns]]
    if results_path is not None:
        table = write_records(results_path, records)
        records = table[table["config_hash"] == config_hash].reset_index(drop=True)
    return records
