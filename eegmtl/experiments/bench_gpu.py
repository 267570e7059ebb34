"""One-command device check (``eegmtl bench cuda``): MTL step ratios, MixNet fit time,
inference latency and peak memory on ``--device`` (default ``cuda``; ``cpu`` works too).

1. **Step ratios** of aggregators and flat variants against equal weighting (EW), with the
   protocol of :mod:`eegmtl.experiments.bench_mtl` (its models, pairing, rounds and table),
   both models moved to the device and every timed step closed by a device synchronisation,
   so the figures are device time, not launch time.
2. **MixNet fit**: one subject-dependent model (sessions 1-3 of ``--subject``, default
   settings) for ``--epochs`` epochs: wall time, seconds per epoch.
3. **Inference latency** of the fitted network (features pre-computed), batch 1 and batch 256:
   median and 95th percentile over ``--n-latency`` calls, synchronised.
4. **Peak memory**: ``torch.cuda.max_memory_allocated`` on a GPU, peak RSS of the process.

Without the BCIC IV 2b export (or with ``--synthetic``) the MixNet parts use random
2b-shaped trials (:func:`eegmtl.experiments.benchmark_plan.synthetic_2b`); the timings do not depend
on the signal. ``--tiny`` shrinks every part to a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eegmtl._io import atomic_write
from eegmtl.experiments._common import device_sync, elapsed_s, timed_ms

__all__ = ["DEFAULT_METHODS", "add_arguments", "run"]

#: rows of the step-ratio table (names of :data:`eegmtl.experiments.bench_mtl.METHODS`)
DEFAULT_METHODS = ("mgda,pcgrad,cagrad,imtl_g,aligned_mtl,upgrad,rlw,f-ew,f-ew[batched],"
                   "f-pcgrad,f-pcgrad[batched],f-pcgrad[looksam5],f-pcgrad[subset]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench cuda``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true",
                   help="smoke test: 1 round, EEG model only, 1 epoch, few latency calls")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help="comma-separated bench_mtl methods ('flat' = every f- row)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--model", choices=["lenet", "eeg", "both"], default="both")
    p.add_argument("--subject", type=int, default=4)
    p.add_argument("--epochs", type=int, default=5, help="MixNet epochs timed")
    p.add_argument("--n-latency", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--synthetic", action="store_true", help="random 2b-shaped trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON "
                   "and the step table as <out>.md")


def _moved(setup: tuple[Any, Any, list], device: Any) -> tuple[Any, Any, list]:
    """``setup`` (model class, tasks, batches) with its batches on ``device``."""
    model_cls, tasks, batches = setup
    return model_cls, tasks, [(x.to(device), {k: v.to(device) for k, v in y.items()})
                              for x, y in batches]


@contextmanager
def _on_device(bench_mtl: Any, device: Any):
    """While active, :func:`bench_mtl.bench_model` builds its runners on ``device`` and every
    runner call ends with a device synchronisation (same classes, so its table still reads
    each runner's backend)."""
    build = bench_mtl._build_runners

    def synced(cls: type) -> type:
        def call(self: Any, x: Any, y: Any) -> None:
            cls.__call__(self, x, y)
            device_sync(device)

        return type(cls.__name__, (cls,), {"__call__": call})

    def build_on_device(label: str, setup: Any, methods: list[str], args: Any) -> dict:
        model_cls, tasks, batches = setup
        runners = build(label, (lambda: model_cls().to(device), tasks, batches), methods, args)
        for pair in runners.values():
            for r in pair:
                r.__class__ = synced(type(r))
        return runners

    bench_mtl._build_runners = build_on_device
    try:
        yield
    finally:
        bench_mtl._build_runners = build


def step_ratios(args: argparse.Namespace, device: Any) -> tuple[list[dict], str]:
    """Rows and markdown table of :mod:`bench_mtl` on ``device``."""
    from eegmtl.experiments import bench_mtl
    from eegmtl.experiments._bench_models import eeg_setup, lenet_setup

    ns = argparse.Namespace(rounds=args.rounds, warmup=args.warmup, seed=args.seed,
                            no_torchjd=True)
    methods = bench_mtl._methods(args.methods)
    rows: list[dict] = []
    with _on_device(bench_mtl, device):
        if args.model in ("lenet", "both"):
            rows += bench_mtl.bench_model("LeNet MultiMNIST b256 (T=2)",
                                          _moved(lenet_setup(args.seed), device), methods, ns)
        if args.model in ("eeg", "both"):
            rows += bench_mtl.bench_model("EEG net b32 (T=3)",
                                          _moved(eeg_setup(args.seed, 32), device), methods, ns)
    return rows, bench_mtl.format_table(rows)


def _data(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, str]:
    """(train X, y, test X, y, source) of one subject: the export, else synthetic."""
    if not args.synthetic:
        from eegmtl.config import DataNotFoundError

        try:
            from eegmtl.eeg.datasets import load_bci2b

            X, y, meta = load_bci2b(subjects=args.subject, units="uV")
            source = f"BCIC IV 2b subject {args.subject}"
        except (DataNotFoundError, FileNotFoundError) as err:
            print(f"  no BCIC IV 2b export ({err}); MixNet parts on synthetic trials")
            args.synthetic = True
    if args.synthetic:
        from eegmtl.experiments.benchmark_plan import synthetic_2b

        X, y, meta = synthetic_2b(n_trials=120 if not args.tiny else 16, seed=args.seed)
        keep = (meta["subject"] == 1).to_numpy()
        X, y, meta = X[keep], y[keep], meta[keep]
        source = "synthetic 2b-shaped trials"
    train = meta["session_index"].to_numpy() <= 3
    return X[train], y[train], X[~train], y[~train], source


def _latency(fn: Any, n: int, device: Any) -> tuple[float, float]:
    import numpy as np

    ms = np.asarray(timed_ms(fn, n, device, warmup=5))
    return round(float(np.median(ms)), 3), round(float(np.percentile(ms, 95)), 3)


def mixnet_figures(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """Fit time of one MixNet model and its inference latency at batch 1 and 256."""
    import torch

    from eegmtl.mixnet import MixNetClassifier

    X_tr, y_tr, X_te, y_te, source = _data(args)
    est = MixNetClassifier(protocol="sd", max_epochs=args.epochs, random_state=args.seed,
                           device=str(device))
    t0 = time.perf_counter()
    est.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - t0
    train_s = float(est.history_["time"].sum())
    feats = torch.from_numpy(est.preprocess(X_te)).to(est.device_)
    big = feats[torch.arange(256, device=feats.device) % len(feats)]
    model = est.model_.eval()
    out = {"mixnet_data": source, "mixnet_train_trials": len(X_tr),
           "mixnet_epochs": est.n_epochs_trained_, "mixnet_fit_s": round(fit_s, 2),
           "mixnet_train_loop_s": round(train_s, 2),
           "mixnet_s_per_epoch": round(train_s / max(est.n_epochs_trained_, 1), 3),
           "mixnet_test_accuracy": round(float(est.score(X_te, y_te)), 4)}
    with torch.inference_mode():
        for batch, x in ((1, feats[:1]), (256, big)):
            med, p95 = _latency(lambda x=x: model.classifier(model.encode(x)).softmax(1),
                                args.n_latency, device)
            out[f"latency_ms_batch{batch}_median"] = med
            out[f"latency_ms_batch{batch}_p95"] = p95
    med, p95 = _latency(lambda: est.predict_proba(X_te[:1]), max(args.n_latency // 4, 5), device)
    out["latency_ms_batch1_incl_preprocessing_median"] = med
    return out


def run(args: argparse.Namespace) -> int:
    """Run the device check as parsed by :func:`add_arguments`; print (and write) figures."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    import torch

    if args.tiny:
        args.rounds, args.warmup, args.model = 1, 1, "eeg"
        args.epochs, args.n_latency = 1, min(args.n_latency, 10)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU; "
                         "run on a GPU machine or pass --device cpu")
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    fig: dict[str, Any] = {
        "device": str(device), "device_name": (torch.cuda.get_device_name(device)
                                               if device.type == "cuda" else "cpu"),
        "torch": torch.__version__, "threads": args.threads, "n_cpus": os.cpu_count()}
    print(f"bench cuda on {fig['device_name']} ({device}), torch {torch.__version__}")
    rows, table = step_ratios(args, device)
    print(table)
    fig["step_ratios"] = {f"{r['model']} | {r['method']}": round(r["ratio"], 3) for r in rows
                          if not r["method"].startswith("_")}
    fig.update(mixnet_figures(args, device))
    if device.type == "cuda":
        fig["cuda_max_memory_allocated_mb"] = round(
            torch.cuda.max_memory_allocated(device) / 2**20, 1)
    fig["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    fig["wall_s_total"] = round(elapsed_s(), 1)
    width = max(len(k) for k in fig if k != "step_ratios")
    for k, v in fig.items():
        if k != "step_ratios":
            print(f"  {k:<{width}}  {v}")
    if args.out is not None:
        atomic_write(args.out, json.dumps(fig, indent=2) + "\n")
        atomic_write(Path(args.out).with_suffix(".md"), f"# bench cuda ({fig['device_name']})"
                     f"\n{table}\n")
    return 0
