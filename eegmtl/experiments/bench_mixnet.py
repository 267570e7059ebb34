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
- **where the fit's time goes** (:class:`~eegmtl.experiments._fit_profile.FitTimer`): data
  (preprocessing, CSP, batch gathering), training steps, MixNet's interleaved validation, the
  per-epoch validation pass, probes, I/O (model selection copies, checkpoints, history) and the
  rest of the loop; the **runner ratio** = epoch-loop wall time / sum of the step times
  (target <= 1.2), and the same for the whole fit;
- **peak memory**: process peak RSS (``resource.getrusage``), the Python/numpy heap peak of a
  one-epoch fit plus prediction (``tracemalloc``; torch's CPU allocator is not traced) and, on a
  GPU, ``torch.cuda.max_memory_allocated``;
- **peak memory of a subject-dependent protocol run** with two joblib workers
  (``--rss-subjects`` x ``--rss-folds`` MixNet fits, :class:`~eegmtl.experiments._fit_profile.
  RSSSampler`: PSS of this process plus its workers) and its extrapolation to the full run
  (45 fits): a worker's peak does not grow with the number of fits it runs (one fit at a time,
  nothing kept between fits), the parent holds the epochs of the subjects (measured per subject).

Targets (2 CPU cores): one SD model <= 20 s, inference <= 2 ms per trial, epoch loop <= 1.2x
its steps, SD protocol peak memory <= 2 GiB.
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
from eegmtl.experiments._common import elapsed_s, parse_subjects, positive_int
from eegmtl.experiments._fit_profile import FitTimer, RSSSampler
from eegmtl.experiments.train_mixnet import default_data_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench mixnet``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--subject", type=int, default=4)
    p.add_argument("--max-epochs", type=positive_int, default=200)
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--n-latency", type=int, default=200, help="single-trial predictions timed")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("--rss-subjects", default="4",
                   help="subjects of the SD protocol memory run (e.g. 1-3); 'none' skips it")
    p.add_argument("--rss-folds", type=int, default=2, help="folds per subject of that run")
    p.add_argument("--rss-max-epochs", type=int, default=None,
                   help="max_epochs of that run (default --max-epochs)")
    p.add_argument("--validation-ab", type=int, default=0, metavar="ROUNDS",
                   help="only the paired A/B of the SI-size validation pass (whole 1024-trial "
                        "forward vs chunks of 128), ROUNDS rounds, then exit")


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
    if args.validation_ab:
        from eegmtl.experiments._fit_profile import validation_pass_ab

        ab = validation_pass_ab(rounds=args.validation_ab)
        print(f"SI validation pass (1200 trials), chunked/whole forward: median "
              f"{ab['ratio_median']:.2f} [IQR {ab['ratio_q25']:.2f}-{ab['ratio_q75']:.2f}], "
              f"{ab['b_s']:.2f} s vs {ab['a_s']:.2f} s, identical results: {ab['identical']}")
        return 0
    load_before = os.getloadavg()
    X, y, meta = load_bci2b(subjects=args.subject, units="uV")
    train = meta["session_index"].to_numpy() <= 3
    X_tr, y_tr, X_te, y_te = X[train], y[train], X[~train], y[~train]
    rss_before = _rss_mb()
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # torch.optim imports torch._dynamo on first use: a one-time cost per process (each
    # protocol worker pays it once), reported apart from the fit
    t0 = time.perf_counter()
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    first_optimizer_s = time.perf_counter() - t0

    # --- one subject-dependent model, default settings, early-stopped
    est = MixNetClassifier(protocol="sd", max_epochs=args.max_epochs, random_state=args.seed,
                           device=args.device)
    with FitTimer() as timer:
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

    breakdown = _breakdown(timer, fit_s, train_s, epochs)
    protocol_mem = None
    if str(args.rss_subjects).lower() != "none":
        protocol_mem = _protocol_memory(args, parse_subjects([args.rss_subjects]))

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
        "one_time_first_optimizer_import_s": round(first_optimizer_s, 2),
        **breakdown,
        **(protocol_mem or {}),
        "wall_s_total": None,
    }
    fig["wall_s_total"] = round(elapsed_s(), 1)
    width = max(len(k) for k in fig)
    print("MixNet benchmark: one subject-dependent model, BCIC IV 2b")
    for k, v in fig.items():
        print(f"  {k:<{width}}  {v}")
    print(f"  targets: one SD model <= 20 s -> {'met' if fit_s <= 20 else 'NOT met'}; "
          f"inference <= 2 ms/trial (network only) -> {'met' if net_med <= 2 else 'NOT met'}; "
          f"incl. preprocessing -> {'met' if pre_med <= 2 else 'NOT met'}")
    ratio = breakdown["runner_ratio_epoch_loop_over_steps"]
    print(f"  target: epoch loop <= 1.2x its steps -> {ratio:.3f}x "
          f"{'met' if ratio <= 1.2 else 'NOT met'} (whole fit incl. data: "
          f"{breakdown['runner_ratio_fit_over_steps']:.3f}x)")
    if protocol_mem is not None:
        peak = protocol_mem["sd_protocol_peak_extrapolated_45_fits_mb"]
        print(f"  target: SD protocol peak memory <= 2 GiB -> {peak:.0f} MiB extrapolated "
              f"({protocol_mem['sd_protocol_peak_total_mb']:.0f} MiB measured) "
              f"{'met' if peak <= 2048 else 'NOT met'}")
    if args.out is not None:
        atomic_write(args.out, json.dumps(fig, indent=2) + "\n")
    return 0


def _breakdown(timer: FitTimer, fit_s: float, loop_s: float, epochs: int) -> dict[str, float]:
    """The fit's parts in seconds and the runner ratios (see the module docstring)."""
    sec = dict(timer.seconds)
    steps = sec["steps"]
    in_loop = sum(sec[k] for k in ("steps", "interleaved_validation", "evaluation", "probes"))
    out = {f"time_{k}_s": round(v, 3) for k, v in sec.items()}
    out["n_steps"] = timer.calls["steps"]
    out["ms_per_step"] = round(1e3 * steps / max(1, timer.calls["steps"]), 2)
    out["time_loop_other_s"] = round(loop_s - in_loop - timer.seconds["io"], 3)
    out["time_outside_loop_s"] = round(fit_s - loop_s, 3)
    out["s_per_epoch_steps_only"] = round(steps / max(1, epochs), 3)
    out["runner_ratio_epoch_loop_over_steps"] = round(loop_s / steps, 3)
    out["runner_ratio_fit_over_steps"] = round(fit_s / steps, 3)
    # MixNet's interleaved validation is part of its training algorithm (gradient blending
    # reads its losses after every step): the ratio with it counted as part of the step
    out["runner_ratio_epoch_loop_over_steps_with_interleaved_validation"] = round(
        loop_s / (steps + sec["interleaved_validation"]), 3)
    return out


def _protocol_memory(args: argparse.Namespace, subjects: list[int]) -> dict[str, float]:
    """Peak memory of a small SD protocol run with two workers, extrapolated to 45 fits."""
    from eegmtl.evaluation.runner import load_default_data, run_protocol

    data = load_default_data(subjects)
    per_subject_mb = data[0].nbytes / 2**20 / len(subjects)
    max_epochs = args.rss_max_epochs or args.max_epochs
    t0 = time.perf_counter()
    with RSSSampler(0.5) as mem:
        run_protocol("sd", ["MixNet"], subjects, data, folds=list(range(1, args.rss_folds + 1)),
                     n_jobs=2, progress=False, torch_threads=args.threads,
                     method_params={"MixNet": {"max_epochs": max_epochs,
                                               "device": args.device}})
    wall = time.perf_counter() - t0
    n_fits = len(subjects) * args.rss_folds
    # full run: the parent holds 9 subjects' epochs (plus the memmapped copy joblib shares with
    # the workers), each of the two workers peaks as in one fit
    extra = (9 - len(subjects)) * per_subject_mb * 2
    return {
        "sd_protocol_fits": n_fits, "sd_protocol_wall_s": round(wall, 1),
        "sd_protocol_memory_kind": mem.kind, "sd_protocol_workers_seen": mem.n_children_seen,
        "sd_protocol_peak_total_mb": round(mem.peak_total_mb, 1),
        "sd_protocol_peak_parent_mb": round(mem.peak_main_mb, 1),
        "sd_protocol_peak_per_worker_mb": round(mem.peak_child_mb, 1),
        "sd_protocol_epochs_mb_per_subject": round(per_subject_mb, 1),
        "sd_protocol_peak_extrapolated_45_fits_mb": round(mem.peak_total_mb + extra, 1),
    }
