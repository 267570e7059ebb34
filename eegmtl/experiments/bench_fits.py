"""Fits at once on one device (``eegmtl bench fits``; prints figures, not a timed test).

The benchmark's deep baselines are small networks: on a datacenter GPU one training step of
one fit is bound by kernel launches and Python, not by arithmetic, so the harness's 16
one-thread processes per GPU leave most of it idle. This benchmark measures, per braindecode
network of :data:`eegmtl.eeg.recipes.RECIPES` (its recipe's batch size, optimiser and
model settings; random 3-channel trials at the recipe's rate, which do not change the time),
the training-step time *per fit* three ways:

``eager``
    K models, one step each in turn (forward, cross-entropy, backward, optimiser step): how
    the harness trains a fit today.
``batched``
    the same K models stacked into one (:func:`torch.func.stack_module_state`) and trained by
    one :func:`torch.func.vmap` of :func:`torch.func.grad_and_value` over their parameters,
    buffers and batches (dropout masks drawn per model, ``randomness="different"``), one
    optimiser over the stacked tensors (Adam / AdamW act elementwise, so this is K
    independent optimisers): K fits for about the launches of one.
``compiled``
    one model under :func:`torch.compile` (``mode="reduce-overhead"``, i.e. CUDA graphs, on a
    GPU; the default mode on the CPU); its compile time is reported apart.

and, per network, three variants of the eager step that say what bounds it (each against
``eager``, which runs as the harness trains: cuDNN's autotuner on, on CUDA):

``no autotune`` (CUDA)
    cuDNN's autotuner off (``torch.backends.cudnn.benchmark = False``): cuDNN's default
    algorithm choice;
``TF32`` (CUDA)
    float32 matrix products on TensorFloat-32 tensor cores
    (``torch.set_float32_matmul_precision("high")``; cuDNN convolutions use TF32 already by
    torch's default);
``bf16``
    forward and loss under ``torch.autocast(dtype=torch.bfloat16)`` (mixed precision; weights,
    gradients and optimiser in float32).

A step bound by arithmetic gets faster with TF32 or bf16; one bound by kernel launches does
not (there, batching or CUDA graphs help).

``--processes P`` runs the eager and batched measurements in P processes at once (one CPU
thread each, started together), as the harness does, and reports the summed fits-steps per
second, so the figures say whether the device or the launching processes bound the
throughput. Each row also gives the largest difference between the batched models' outputs
(evaluation mode) and those of the K separate models: the batched step computes the same
networks. Every timed step ends with a device synchronisation.

Usage::

    eegmtl bench fits --device cuda --processes 16 --out bench_fits.json
    eegmtl bench fits --device cpu --tiny
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path
from typing import Any

from eegmtl._io import atomic_write
from eegmtl.experiments._common import command_line, device_sync, elapsed_s, timed_ms
from eegmtl.experiments.fit_steps import BatchedFits, EagerFits, build_model
from eegmtl.experiments.fit_steps import batch as _batch
from eegmtl.experiments.fit_steps import optimizer as _optimizer

__all__ = ["BatchedFits", "EagerFits", "add_arguments", "build_model", "run"]

#: variants of the eager step (:func:`_eager_variants`)
_VARIANTS = ("eager_no_autotune", "eager_tf32", "eager_bf16")

#: networks timed by default (every recipe) and compiled by default (a few: compiling costs
#: tens of seconds per network)
COMPILE_DEFAULT = ("EEGNet", "ATCNet", "TCFormer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench fits``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--models", nargs="+", default=None,
                   help="braindecode networks of the recipes (default: all)")
    p.add_argument("--k", type=int, default=16, help="fits batched into one model (default 16)")
    p.add_argument("--processes", type=int, default=1,
                   help="processes measuring at once, one CPU thread each (default 1)")
    p.add_argument("--rounds", type=int, default=10, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", nargs="*", default=list(COMPILE_DEFAULT), metavar="MODEL",
                   help="networks also timed under torch.compile (default: "
                   f"{' '.join(COMPILE_DEFAULT)}; none: --compile with no name)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="override every recipe's batch size")
    p.add_argument("--tiny", action="store_true",
                   help="smoke test: EEGNet and ShallowFBCSPNet, K=2, batch 4, 1 round, no "
                   "compile")
    p.add_argument("--no-variants", action="store_true",
                   help="skip the eager step's variants (cuDNN autotuner off, TF32, bf16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="also write the rows as JSON and the table as <out>.md")


def _median_ms(fn: Any, rounds: int, warmup: int, device: Any, barrier: Any = None) -> float:
    import numpy as np

    return float(np.median(timed_ms(fn, rounds, device, warmup=warmup, barrier=barrier)))


def _quiet() -> None:
    """Silence the known warnings of the timed code (also in each measuring process)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*batching rule.*")  # renorm's loop fallback
    warnings.filterwarnings("ignore", message=".*padding='same'.*")
    warnings.filterwarnings("ignore", message=".*standard_1020.*")


def _measure(name: str, cfg: dict[str, Any], barrier: Any = None) -> dict[str, Any]:
    """Eager and batched ms per step of K fits of ``name`` in this process."""
    import torch

    _quiet()

    from eegmtl.eeg.recipes import get_recipe

    torch.set_num_threads(1)
    device = torch.device(cfg["device"])
    k, seed = cfg["k"], cfg["seed"]
    batch = cfg["batch_size"] or get_recipe(name).batch_size
    x, y = _batch(name, k, batch, device, seed)
    eager = EagerFits(name, k, device, seed)
    # the batched models start from the eager models' weights: same networks, same outputs
    batched = BatchedFits(name, [copy.deepcopy(m) for m in eager.models])
    with torch.no_grad():
        for m in eager.models:
            m.eval()
        ref = torch.stack([m(x[i]) for i, m in enumerate(eager.models)])
        diff = float((batched.forward(x, train=False) - ref).abs().max())
        for m in eager.models:
            m.train()
    ms_eager = _median_ms(lambda: eager.step(x, y), cfg["rounds"], cfg["warmup"], device,
                          barrier)
    ms_batched = _median_ms(lambda: batched.step(x, y), cfg["rounds"], cfg["warmup"], device,
                            barrier)
    out = {"batch": batch, "eager_ms_per_fit_step": ms_eager / k,
           "batched_ms_per_fit_step": ms_batched / k, "max_output_diff": diff}
    if cfg.get("variants", True):
        for key, ms in _eager_variants(eager, x, y, device, cfg, barrier).items():
            out[f"{key}_ms_per_fit_step"] = ms / k
    return out


def _eager_variants(eager: EagerFits, x: Any, y: Any, device: Any, cfg: dict[str, Any],
                    barrier: Any = None) -> dict[str, float]:
    """ms per step of the K eager fits with cuDNN's autotuner off and with TF32 matrix
    products (CUDA only), and under bf16 autocast; every setting is restored afterwards."""
    import torch

    def ms(amp_dtype: Any = None) -> float:
        return _median_ms(lambda: eager.step(x, y, amp_dtype), cfg["rounds"], cfg["warmup"],
                          device, barrier)

    out = {}
    if device.type == "cuda":
        autotune = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        try:
            out["eager_no_autotune"] = ms()
        finally:
            torch.backends.cudnn.benchmark = autotune
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            out["eager_tf32"] = ms()
        finally:
            torch.set_float32_matmul_precision(precision)
    out["eager_bf16"] = ms(torch.bfloat16)
    return out


def _compiled_ms(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Compile time and ms per step of one compiled model of ``name``."""
    import torch
    import torch.nn.functional as F

    from eegmtl.eeg.recipes import get_recipe

    device = torch.device(cfg["device"])
    batch = cfg["batch_size"] or get_recipe(name).batch_size
    x, y = _batch(name, 1, batch, device, cfg["seed"])
    torch.manual_seed(cfg["seed"])
    model = build_model(name).to(device).train()
    opt = _optimizer(name, model.parameters())
    mode = "reduce-overhead" if device.type == "cuda" else None
    compiled = torch.compile(model, mode=mode)

    def step() -> None:
        if mode == "reduce-overhead":  # a new iteration of the CUDA graphs: no output of the
            torch.compiler.cudagraph_mark_step_begin()  # previous step is read after this
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(compiled(x[0]), y[0]).backward()
        opt.step()

    t0 = time.perf_counter()
    try:
        step()
        step()
        device_sync(device)
    except Exception as err:  # a network or backend torch.compile cannot handle: reported
        return {"compiled_error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    compile_s = time.perf_counter() - t0
    return {"compiled_ms_per_fit_step": _median_ms(step, cfg["rounds"], cfg["warmup"], device),
            "compile_s": compile_s, "compile_mode": mode or "default"}


def _process_main(name: str, cfg: dict[str, Any], barrier: Any, queue: Any) -> None:
    """One of ``--processes`` measuring processes: its figures (or its error) to ``queue``."""
    try:
        queue.put(_measure(name, cfg, barrier))
    except BaseException as err:  # reported by the parent, which then stops
        barrier.abort()
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _measure_in_processes(name: str, cfg: dict[str, Any], processes: int) -> list[dict]:
    """:func:`_measure` in ``processes`` spawned processes that time their steps together."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    os.environ["OMP_NUM_THREADS"] = "1"
    # daemons: interrupted (Ctrl-C, SIGTERM), the parent stops them instead of waiting for them
    procs = [ctx.Process(target=_process_main, args=(name, cfg, barrier, queue), daemon=True)
             for _ in range(processes)]
    try:
        for p in procs:
            p.start()
        parts = [queue.get() for _ in procs]
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        raise RuntimeError(f"{name}: a measuring process failed: {errors[0]}")
    return parts


def bench_model(name: str, cfg: dict[str, Any], processes: int = 1) -> dict[str, Any]:
    """One row: ms per fit-step (eager, batched; compiled if asked) and the speed-ups."""
    row: dict[str, Any] = {"model": name, "k": cfg["k"], "processes": processes}
    if processes == 1:
        row.update(_measure(name, cfg))
    else:
        parts = _measure_in_processes(name, cfg, processes)
        # throughput of P processes at once: summed fit-steps per second
        for key in ("eager", "batched", *_VARIANTS):
            if f"{key}_ms_per_fit_step" in parts[0]:
                rate = sum(1e3 / p[f"{key}_ms_per_fit_step"] for p in parts)
                row[f"{key}_ms_per_fit_step"] = 1e3 / rate
        row["batch"] = parts[0]["batch"]
        row["max_output_diff"] = max(p["max_output_diff"] for p in parts)
    row["batched_speedup"] = row["eager_ms_per_fit_step"] / row["batched_ms_per_fit_step"]
    eager = row["eager_ms_per_fit_step"]
    if "eager_no_autotune_ms_per_fit_step" in row:  # what the autotuner gains
        row["autotune_speedup"] = row["eager_no_autotune_ms_per_fit_step"] / eager
    for key in ("tf32", "bf16"):
        if f"eager_{key}_ms_per_fit_step" in row:
            row[f"{key}_speedup"] = eager / row[f"eager_{key}_ms_per_fit_step"]
    return row


def add_compiled(row: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the compiled step's figures of its network (one process)."""
    row.update(_compiled_ms(row["model"], cfg))
    if "compiled_ms_per_fit_step" in row and row["processes"] == 1:
        # against one process's eager step (with several processes the eager figure is a
        # summed throughput, not one process's step time)
        row["compiled_speedup"] = row["eager_ms_per_fit_step"] / row["compiled_ms_per_fit_step"]
    return row


def format_table(rows: list[dict[str, Any]], header: str) -> str:
    """Markdown table of :func:`bench_model` rows."""
    lines = [header, "", "| network | batch | K | processes | eager ms/fit-step | batched "
             "ms/fit-step | batched speed-up | compiled ms/step (compile s) | compiled "
             "speed-up | autotune speed-up | TF32 speed-up | bf16 speed-up | max output diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def ratio(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.2f}x" if key in r else "-"

    for r in rows:
        comp = ("-" if "compiled_ms_per_fit_step" not in r and "compiled_error" not in r
                else r.get("compiled_error") or
                f"{r['compiled_ms_per_fit_step']:.2f} ({r['compile_s']:.0f})")
        lines.append(f"| {r['model']} | {r['batch']} | {r['k']} | {r['processes']} | "
                     f"{r['eager_ms_per_fit_step']:.2f} | {r['batched_ms_per_fit_step']:.2f} | "
                     f"{r['batched_speedup']:.2f}x | {comp} | {ratio(r, 'compiled_speedup')} | "
                     f"{ratio(r, 'autotune_speedup')} | {ratio(r, 'tf32_speedup')} | "
                     f"{ratio(r, 'bf16_speedup')} | {r['max_output_diff']:.1e} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark as parsed by :func:`add_arguments`; print (and write) the table."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    import torch

    from eegmtl._compat import import_braindecode
    from eegmtl.eeg.recipes import RECIPES

    import_braindecode()
    _quiet()
    if args.tiny:
        args.models = args.models or ["EEGNet", "ShallowFBCSPNet"]
        args.k, args.rounds, args.warmup = min(args.k, 2), 1, 1
        args.batch_size, args.compile = args.batch_size or 4, []
    models = args.models or list(RECIPES)
    unknown = sorted(set(models) - set(RECIPES))
    if unknown:
        raise SystemExit(f"--models: unknown network(s) {unknown}; known: {sorted(RECIPES)}")
    for name, value in (("--k", args.k), ("--processes", args.processes),
                        ("--rounds", args.rounds)):
        if value < 1:
            raise SystemExit(f"{name} must be >= 1, got {value}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU; "
                         "run on a GPU machine or pass --device cpu")
    torch.set_num_threads(1)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name_of = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    cfg = {"device": str(device), "k": args.k, "rounds": args.rounds, "warmup": args.warmup,
           "seed": args.seed, "batch_size": args.batch_size, "compile": set(args.compile),
           "variants": not args.no_variants}
    header = (f"### Fits at once on {name_of} (torch {torch.__version__}, {os.cpu_count()} "
              f"CPUs; K = {args.k}, {args.processes} process(es), one thread each)")
    print(header, flush=True)
    command = command_line(args)

    def save() -> None:  # after every row: a run stopped by a time limit keeps its rows
        if args.out is not None:
            wall = elapsed_s()
            fig = {"command": command, "wall_s": round(wall, 1), "device": str(device),
                   "device_name": name_of, "torch": torch.__version__,
                   "n_cpus": os.cpu_count(), "rows": rows}
            atomic_write(args.out, json.dumps(fig, indent=2) + "\n")
            atomic_write(Path(args.out).with_suffix(".md"), format_table(rows, header)
                         + f"\n\nCommand ({wall:.0f} s so far): `{command}`\n")

    rows: list[dict[str, Any]] = []
    for name in models:
        t = time.perf_counter()
        rows.append(bench_model(name, cfg, args.processes))
        r = rows[-1]
        extra = "".join(f", {label} {r[key]:.2f}x" for key, label in (
            ("autotune_speedup", "autotune"), ("tf32_speedup", "TF32"),
            ("bf16_speedup", "bf16")) if key in r)
        print(f"  {name}: eager {r['eager_ms_per_fit_step']:.2f} ms/fit-step, batched "
              f"{r['batched_ms_per_fit_step']:.2f} ({r['batched_speedup']:.2f}x){extra}, output "
              f"diff {r['max_output_diff']:.1e} [{time.perf_counter() - t:.0f} s]", flush=True)
        save()
    for r in rows:  # compiling costs tens of seconds per network: last
        if r["model"] in cfg["compile"]:
            t = time.perf_counter()
            add_compiled(r, cfg)
            took = r.get("compiled_error") or f"{r['compiled_ms_per_fit_step']:.2f} ms/step"
            print(f"  {r['model']} compiled: {took} [{time.perf_counter() - t:.0f} s]",
                  flush=True)
            save()
    print(format_table(rows, header))
    return 0
