"""Speed and memory of MixNet (``eegmtl bench mixnet``; prints figures, not a timed test).

Measures, for one subject-dependent BCIC IV 2b model (sessions 1-3 of ``--subject``: 360 trials,
of which 288 train and 72 validate, as in ``eegmtl train``; default settings,
early-stopped, <= ``--max-epochs``):

- **wall time of one SD model** (``fit``: preprocessing + CSP + training), and its parts;
- **training throughput** in trials/s (training trials x epochs / training time; the epoch
  times include MixNet's interleaved validation and the per-epoch validation pass);
- **inference latency at batch 1** (the online-BCI case): median and 95th percentile per trial,
  including preprocessing (window, resampling, filter bank, CSP; ``predict_proba`` on one raw
  epoch) and excluding it (network forward on one pre-computed CSP trial);
- **peak memory**: process peak RSS (``resource.getrusage``), the Python/numpy heap peak of a
  one-epoch fit plus prediction (``tracemalloc``; torch's CPU allocator is not traced) and, on a
  GPU, ``torch.cuda.max_memory_allocated``.

Targets (2 CPU cores): one SD model <= 20 s, inference <= 2 ms per trial.
The load average of the machine is printed before and after, since shared machines distort
timings.

Usage::

    eegmtl bench mixnet                     # subject 4, 1 thread, CPU
    eegmtl bench mixnet --threads 2 --device cuda --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from eegmtl._io import atomic_write
from eegmtl.experiments._common import T_START
from eegmtl.experiments.train_mixnet import default_data_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench mixnet``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--subject", type=int, default=4)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--n-latency", type=int, default=200, help="single-trial predictions timed")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")


def _rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def _percentiles(values: list[float]) -> tuple[float, float]:
    import numpy as np

    arr = np.asarray(values) * 1e3
    return float(np.median(arr)), float(np.percentile(arr, 95))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark as parsed by :func:`add_arguments` and print the figures."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    default_data_dir()
    import torch

    from eegmtl.eeg.datasets import load_bci2b
    from eegmtl.mixnet import MixNetClassifier

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    X, y, meta = load_bci2b(subjects=args.subject, units="uV")
    train = meta["session_index"].to_numpy() <= 3
    X_tr, y_tr, X_te, y_te = X[train], y[train], X[~train], y[~train]
    rss_before = _rss_mb()
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # --- one subject-dependent model, default settings, early-stopped
    est = MixNetClassifier(protocol="sd", max_epochs=args.max_epochs, random_state=args.seed,
                           device=args.device)
    t0 = time.perf_counter()
    est.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - t0
    train_s = float(est.history_["time"].sum())
    n_train = int(round(len(X_tr) * 0.8))
    epochs = est.n_epochs_trained_
    acc = est.score(X_te, y_te)
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None

    # --- inference at batch 1 (online BCI): with and without preprocessing
    n = min(args.n_latency, len(X_te))
    for i in range(5):  # warm-up
        est.predict_proba(X_te[i : i + 1])
    with_pre = []
    for i in range(n):
        t = time.perf_counter()
        est.predict_proba(X_te[i : i + 1])
        with_pre.append(time.perf_counter() - t)
    feats = torch.from_numpy(est.preprocess(X_te[:n])).to(est.device_)
    model = est.model_.eval()
    without_pre = []
    with torch.inference_mode():
        for i in range(5):
            model.classifier(model.encode(feats[i : i + 1]))
        for i in range(n):
            t = time.perf_counter()
            out = torch.softmax(model.classifier(model.encode(feats[i : i + 1])), dim=1)
            if cuda:
                torch.cuda.synchronize()
            out.cpu()
            without_pre.append(time.perf_counter() - t)
        t = time.perf_counter()
        est.predict_proba(X_te)
        batch_all_s = time.perf_counter() - t
    rss_after = _rss_mb()

    # --- Python/numpy heap peak of a short fit + prediction (tracemalloc slows numpy down,
    # so it is measured separately from the timings above)
    tracemalloc.start()
    small = MixNetClassifier(protocol="sd", max_epochs=1, random_state=args.seed,
                             device=args.device).fit(X_tr, y_tr)
    small.predict_proba(X_te)
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    pre_med, pre_p95 = _percentiles(with_pre)
    net_med, net_p95 = _percentiles(without_pre)
    fig = {
        "subject": args.subject, "device": est.device_, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "n_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "n_train_trials": n_train, "n_val_trials": len(X_tr) - n_train,
        "epochs_trained": epochs, "best_epoch": est.best_epoch_,
        "test_accuracy": round(float(acc), 4),
        "fit_wall_s": round(fit_s, 2), "train_loop_s": round(train_s, 2),
        "preprocess_and_csp_s": round(fit_s - train_s, 2),
        "s_per_epoch": round(train_s / epochs, 3),
        "train_throughput_trials_per_s": round(n_train * epochs / train_s, 1),
        "latency_ms_batch1_incl_preprocessing_median": round(pre_med, 3),
        "latency_ms_batch1_incl_preprocessing_p95": round(pre_p95, 3),
        "latency_ms_batch1_network_only_median": round(net_med, 3),
        "latency_ms_batch1_network_only_p95": round(net_p95, 3),
        "predict_all_test_trials_ms_per_trial": round(1e3 * batch_all_s / len(X_te), 3),
        "peak_rss_mb": round(rss_after, 1), "rss_before_fit_mb": round(rss_before, 1),
        "python_heap_peak_mb_1epoch_fit": round(heap_peak, 1),
        "cuda_max_memory_allocated_mb": None if gpu_peak is None else round(gpu_peak, 1),
        "wall_s_total": None,
    }
    fig["wall_s_total"] = round(time.perf_counter() - T_START, 1)
    width = max(len(k) for k in fig)
    print("MixNet benchmark: one subject-dependent model, BCIC IV 2b")
    for k, v in fig.items():
        print(f"  {k:<{width}}  {v}")
    print(f"  targets: one SD model <= 20 s -> {'met' if fit_s <= 20 else 'NOT met'}; "
          f"inference <= 2 ms/trial (network only) -> {'met' if net_med <= 2 else 'NOT met'}; "
          f"incl. preprocessing -> {'met' if pre_med <= 2 else 'NOT met'}")
    if args.out is not None:
        atomic_write(args.out, json.dumps(fig, indent=2) + "\n")
    return 0
