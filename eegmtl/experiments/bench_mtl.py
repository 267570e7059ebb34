"""Step-time benchmark of the MTL core: every aggregator and flat variant as a ratio to EW.

Models (perf-anchors §1, :mod:`eegmtl.experiments._bench_models`): (a) LeNet MultiMNIST,
batch 256, T = 2; (b) the EEG-sized T = 3 net, batch 32. Protocol (perf-anchors §3): every
method trains its own copy of one initial model and has its own EW partner copy; warm-up
steps; then R rounds, methods shuffled per round, EW and method timed back to back (order
alternating by round); the ratio is the median over rounds of t_method / t_EW (IQR in
brackets). A LookSAM row (``flat_every = k``) times k consecutive steps of each per pair (one
exact step and k − 1 reuse steps), so its ratio is the mean cost over its period. TorchJD 0.18
(dev/bench-only dependency) is timed in the same run: ``mtl_backward`` + ``jac_to_grad`` for
parameter-level aggregators and ``jac`` on the representation for the "-UB" rows. Foreign CPU
load (other processes) is measured per pair from /proc/stat and printed: timings under load are
unreliable (perf-anchors §7); the script sets ``OMP_WAIT_POLICY=PASSIVE`` before torch starts.

Flat training only in the last epochs (``FlatConfig(start=s)``, a fraction of the epochs run
as the plain step first) is not timed but amortised from the two measured medians: the rows
``f-X[start=s]`` and ``f-X[batched,start=s]`` give ``s · (X / EW) + (1 − s) · (f-X / EW)``
(``--start``, default 0.5; the plain partner ``X`` is timed with them).

Targets printed with every row: EW-cost methods ≤ 1.05, parameter-level aggregators ≤ 1.5 and
≤ TorchJD, representation-level ≤ 1.15, every flat variant ≤ 2.2.

Entry points: :func:`add_arguments` and :func:`run` (``eegmtl bench-mtl`` and
``pipelines/bench_mtl.py``).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import time
from typing import Any

import torch

from eegmtl.experiments._bench_models import eeg_setup, lenet_setup
from eegmtl.mtl import FlatConfig, MTLStep
from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator

__all__ = ["METHODS", "add_arguments", "bench_model", "format_table", "run"]

_F = "flat"
#: our method name -> (weighting, aggregator, flat, torchjd aggregator name, torchjd level).
#: ``flat`` is None or a dict of :class:`~eegmtl.mtl.flat.FlatConfig` fields.
METHODS: dict[str, tuple[str, str, dict | None, str | None, str]] = {
    "ew": ("ew", "sum", None, None, "param"),
    "mean": ("ew", "mean", None, "Mean", "param"),
    "jacobian(mean)": ("ew", "mean", None, None, "param"),  # explicit path: cost floor
    "mgda": ("ew", "mgda", None, "MGDA", "param"),
    "mgda_ub": ("ew", "mgda_ub", None, "MGDA", "rep"),
    "pcgrad": ("ew", "pcgrad", None, "PCGrad", "param"),
    "graddrop": ("ew", "graddrop", None, "GradDrop", "param"),
    "imtl_g": ("ew", "imtl_g", None, "IMTLG", "param"),
    "gradvac": ("ew", "gradvac", None, "GradVac", "param"),
    "cagrad": ("ew", "cagrad", None, "CAGrad", "param"),
    "nash_mtl": ("ew", "nash_mtl", None, "NashMTL", "param"),
    "rgw": ("ew", "rgw", None, "Random", "param"),
    "aligned_mtl": ("ew", "aligned_mtl", None, "AlignedMTL", "param"),
    "aligned_mtl_ub": ("ew", "aligned_mtl_ub", None, "AlignedMTL", "rep"),
    "upgrad": ("ew", "upgrad", None, "UPGrad", "param"),
    "rlw": ("rlw", "sum", None, None, "param"),
}
for _agg in ("ew", "mgda", "pcgrad", "cagrad"):
    _a = "sum" if _agg == "ew" else _agg
    METHODS[f"f-{_agg}"] = ("ew", _a, {"mode": "exact"}, None, "param")
    METHODS[f"f-{_agg}[batched]"] = ("ew", _a, {"mode": "batched"}, None, "param")
    for _k in (5, 10):
        METHODS[f"f-{_agg}[looksam{_k}]"] = (
            "ew", _a, {"mode": "looksam", "every": _k}, None, "param")
    METHODS[f"f-{_agg}[subset]"] = ("ew", _a, {"mode": "subset"}, None, "param")
del _agg, _a, _k

#: flat variants whose amortised ``start`` rows the tables add: name suffix -> derived suffix
_AMORTISED = {"": "start={s}", "[batched]": "batched,start={s}"}


def _agg_kwargs(name: str, n_tasks: int) -> dict:
    return {"n_tasks": n_tasks} if name == "nash_mtl" else {}


def _tjd_aggregator(name: str, n_tasks: int) -> Any:
    import torchjd.aggregation as A  # noqa: N812 - TorchJD's own alias

    if name == "CAGrad":
        return A.CAGrad(c=0.4)
    if name == "NashMTL":
        return A.NashMTL(n_tasks=n_tasks)
    return getattr(A, name)()


class _OurRunner:
    def __init__(self, model: Any, tasks: Any, method: str) -> None:
        w, agg, flat, _, _ = METHODS[method]
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.step = MTLStep(
            model, tasks, w, get_aggregator(agg, **_agg_kwargs(agg, len(tasks))), self.opt,
            flat=None if flat is None else FlatConfig(**flat),
            fast_path=method != "jacobian(mean)",
        )
        self.block = 1 if flat is None else int(flat.get("every", 1))

    def __call__(self, x: Any, y: Any) -> None:
        self.step(x, y)


class _EWRunner(_OurRunner):
    def __init__(self, model: Any, tasks: Any) -> None:
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.step = MTLStep(model, tasks, "ew", "sum", self.opt)
        self.block = 1


class _TorchJDRunner:
    block = 1

    def __init__(self, model: Any, tasks: Any, tjd_name: str, level: str) -> None:
        self.model, self.tasks, self.level = model, tasks, level
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.agg = _tjd_aggregator(tjd_name, len(tasks))
        self.shared = list(model.shared_parameters())
        self.heads = [list(model.task_parameters(t.name)) for t in tasks]
        self.all_heads = [p for h in self.heads for p in h]

    def __call__(self, x: Any, y: Any) -> None:
        from torchjd.autojac import jac, jac_to_grad, mtl_backward

        self.opt.zero_grad(set_to_none=True)
        z = self.model.encode(x)
        out = self.model.decode(z)
        losses = [t.loss(out[t.name], y[t.name]) for t in self.tasks]
        if self.level == "param":
            mtl_backward(losses, features=z, tasks_params=self.heads, shared_params=self.shared)
            jac_to_grad(self.shared, self.agg)
        else:  # representation level composed from public torchjd API (perf-anchors §2)
            jz = jac(losses, [z], retain_graph=True)[0]
            torch.autograd.backward(sum(losses), inputs=self.all_heads, retain_graph=True)
            upd = self.agg(jz.reshape(len(losses), -1)).view_as(z)
            z.backward(upd, inputs=self.shared)
        self.opt.step()


def _jiffies() -> tuple[int, int]:
    """(busy jiffies of the whole machine, jiffies of this process)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        busy = sum(f) - f[3] - (f[4] if len(f) > 4 else 0)
        with open("/proc/self/stat") as fh:
            s = fh.read().rsplit(")", 1)[1].split()
        return busy, int(s[11]) + int(s[12])
    except OSError:  # pragma: no cover - non-Linux
        return 0, 0


def _build_runners(label: str, setup: Any, methods: list[str], args: Any) -> dict:
    model_cls, tasks, _ = setup
    torch.manual_seed(args.seed)
    base = model_cls()
    runners: dict[str, tuple[Any, Any]] = {}
    skipped = []
    for m in methods:
        if METHODS[m][1] not in AGGREGATORS:
            skipped.append(m)
            continue
        runners[m] = (_OurRunner(copy.deepcopy(base), tasks, m),
                      _EWRunner(copy.deepcopy(base), tasks))
        tjd = METHODS[m][3]
        if tjd and not args.no_torchjd:
            try:
                runners[f"tjd {m}"] = (
                    _TorchJDRunner(copy.deepcopy(base), tasks, tjd, METHODS[m][4]),
                    _EWRunner(copy.deepcopy(base), tasks),
                )
            except ImportError as err:
                print(f"  torchjd {tjd} unavailable: {err}", file=sys.stderr)
    if skipped:
        print(f"  [{label}] not registered (skipped): {', '.join(skipped)}")
    return runners


def bench_model(label: str, setup: Any, methods: list[str], args: Any) -> list[dict]:
    """Time every method of ``methods`` against its EW partner on one model; one row each."""
    _, _, batches = setup
    runners = _build_runners(label, setup, methods, args)
    for i in range(args.warmup):
        x, y = batches[i % len(batches)]
        for meth, ew in runners.values():
            meth(x, y)
            ew(x, y)
    backend = {m: r[0].step.engine.chosen for m, r in runners.items()
               if isinstance(r[0], _OurRunner)}
    ratios: dict[str, list[float]] = {m: [] for m in runners}
    t_m: dict[str, list[float]] = {m: [] for m in runners}
    t_ew: list[float] = []
    foreign: list[float] = []
    order = list(runners)
    rng = random.Random(args.seed)
    clk = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for r in range(args.rounds):
        rng.shuffle(order)
        for k, m in enumerate(order):
            meth, ew = runners[m]
            block = meth.block
            b0, o0 = _jiffies()
            w0 = time.perf_counter()
            pair = [(ew, "ew"), (meth, "m")] if r % 2 == 0 else [(meth, "m"), (ew, "ew")]
            times = {}
            for fn, key in pair:
                t0 = time.perf_counter()
                for j in range(block):
                    x, y = batches[(r + k + j) % len(batches)]
                    fn(x, y)
                times[key] = (time.perf_counter() - t0) / block
            wall = time.perf_counter() - w0
            b1, o1 = _jiffies()
            foreign.append(max(0.0, ((b1 - b0) - (o1 - o0)) / clk / max(wall, 1e-9)))
            ratios[m].append(times["m"] / times["ew"])
            t_m[m].append(times["m"])
            t_ew.append(times["ew"])
    ew_ms = 1e3 * statistics.median(t_ew)
    rows = []
    for m in runners:
        q = statistics.quantiles(ratios[m], n=4) if len(ratios[m]) > 1 else [ratios[m][0]] * 3
        rows.append({"model": label, "method": m, "ratio": statistics.median(ratios[m]),
                     "q1": q[0], "q3": q[2], "ms": 1e3 * statistics.median(t_m[m]),
                     "ew_ms": ew_ms, "backend": backend.get(m)})
    rows.append({"model": label, "method": "_foreign_load", "ratio": statistics.median(foreign),
                 "q1": min(foreign), "q3": max(foreign), "ms": 0.0, "ew_ms": ew_ms,
                 "backend": None})
    return rows


def _plain_partner(flat_method: str) -> str:
    """``"f-pcgrad[batched]"`` -> ``"pcgrad"`` (``"f-ew"`` -> ``"ew"``)."""
    return flat_method[2:].split("[", 1)[0]


def amortised_rows(rows: list[dict], start: float) -> list[dict]:
    """Rows of flat training from epoch fraction ``start`` on (``FlatConfig(start=start)``):
    ``start`` of the steps at the plain partner's cost, the rest at the flat variant's, from
    the measured median ratios (no IQR: derived, not timed)."""
    if not 0.0 < start < 1.0:
        return []
    out = []
    for r in rows:
        m = r["method"]
        if not m.startswith("f-"):
            continue
        suffix = m[len(m.split("[", 1)[0]):]
        if suffix not in _AMORTISED:
            continue
        plain = next((p for p in rows if p["model"] == r["model"]
                      and p["method"] == _plain_partner(m)), None)
        if plain is None:
            continue
        base = m.split("[", 1)[0]
        mix = {k: start * plain[k] + (1.0 - start) * r[k] for k in ("ratio", "ms")}
        out.append({**r, **mix, "method": f"{base}[{_AMORTISED[suffix].format(s=start)}]",
                    "q1": float("nan"), "q3": float("nan"), "derived": True})
    return out


def _target(method: str) -> float:
    if method in ("ew", "mean", "rlw"):
        return 1.05
    if method.startswith("f-"):
        return 2.2
    cls = AGGREGATORS.get(METHODS[method][1])
    if cls is not None and getattr(cls, "level", "parameters") == "representation":
        return 1.15
    return 1.5


def format_table(rows: list[dict]) -> str:
    """Markdown tables (one per model): ratio to EW, to TorchJD, the target and whether met."""
    lines: list[str] = []
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for label, rs in by_model.items():
        load = next(r for r in rs if r["method"] == "_foreign_load")
        ours = {r["method"]: r for r in rs if not r["method"].startswith(("tjd ", "_"))}
        tjd = {r["method"][4:]: r for r in rs if r["method"].startswith("tjd ")}
        lines += [
            f"\n### {label}  (EW median {load['ew_ms']:.1f} ms/step; foreign load median "
            f"{load['ratio']:.2f} cores, range {load['q1']:.2f}-{load['q3']:.2f})\n",
            "| method | ours / EW [IQR] | ms | backend | TorchJD / EW | ours / TorchJD | target |"
            " ok |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m, r in ours.items():
            t = tjd.get(m)
            tgt = _target(m)
            ok = r["ratio"] <= tgt and (t is None or r["ratio"] <= t["ratio"] * 1.05)
            spread = "amortised" if r.get("derived") else f"{r['q1']:.2f}-{r['q3']:.2f}"
            lines.append(
                f"| {m} | {r['ratio']:.2f} [{spread}] | {r['ms']:.1f} | "
                f"{r['backend'] or '-'} | "
                + (f"{t['ratio']:.2f} | {r['ratio'] / t['ratio']:.2f} | " if t else "- | - | ")
                + f"<= {tgt} | {'yes' if ok else 'NO'} |"
            )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of the benchmark (``--rounds``, ``--threads``, ``--model``, ``--methods``...)."""
    parser.add_argument("--quick", action="store_true", help="few rounds (R=6, warm-up 8)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=["lenet", "eeg", "both"], default="both")
    parser.add_argument("--eeg-batch", type=int, default=32)
    parser.add_argument("--methods", default="",
                        help="comma-separated subset (default: all); 'flat' = every f- row")
    parser.add_argument("--no-torchjd", action="store_true")
    parser.add_argument("--active-wait", action="store_true",
                        help="keep OpenMP's default (active) wait policy instead of PASSIVE")
    parser.add_argument("--out", default=None, help="also write the tables to this .md file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=float, default=0.5,
                        help="epoch fraction before flat training in the amortised f-X[start=s] "
                             "rows (FlatConfig(start=s)); 0 = no such rows")
    return parser


def _methods(spec: str, start: float = 0.0) -> list[str]:
    if not spec:
        return list(METHODS)
    names: list[str] = []
    for m in (s.strip() for s in spec.split(",")):
        if m == "flat":
            names += [k for k in METHODS if k.startswith("f-")]
        elif m:
            names.append(m)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {list(METHODS)} or 'flat'")
    if 0.0 < start < 1.0:  # the plain partners of the amortised rows are timed too
        names += [_plain_partner(m) for m in names if m.startswith("f-")
                  and m[len(m.split("[", 1)[0]):] in _AMORTISED]
    names = list(dict.fromkeys(names))
    return names if "ew" in names else ["ew", *names]


def run(args: argparse.Namespace) -> list[dict]:
    """Run the benchmark with parsed options; print (and optionally write) the tables."""
    if args.quick:
        args.rounds, args.warmup = min(args.rounds, 6), max(args.warmup, 8)
    torch.set_num_threads(args.threads)
    start = float(getattr(args, "start", 0.0))
    methods = _methods(args.methods, start)
    la = os.getloadavg() if hasattr(os, "getloadavg") else "?"
    head = (f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY', 'default')}, rounds {args.rounds}, warm-up "
            f"{args.warmup}, load average {la}")
    print(head)
    rows: list[dict] = []
    if args.model in ("lenet", "both"):
        rows += bench_model("LeNet MultiMNIST b256 (T=2)", lenet_setup(args.seed), methods, args)
    if args.model in ("eeg", "both"):
        rows += bench_model(f"EEG net b{args.eeg_batch} (T=3)",
                            eeg_setup(args.seed, args.eeg_batch), methods, args)
    rows += amortised_rows(rows, start)
    table = format_table(rows)
    tail = f"\nload average at the end: {os.getloadavg() if hasattr(os, 'getloadavg') else '?'}"
    print(table + tail)
    if getattr(args, "out", None):
        from eegmtl._io import atomic_write

        cmd = "python " + " ".join(sys.argv)
        atomic_write(
            args.out,
            f"# MTL step-time benchmark\n\nCommand: `{cmd}`\n\n{head}\n{table}\n{tail}\n",
        )
    return rows
