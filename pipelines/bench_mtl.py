"""Step-time benchmark of the MTL core: every aggregator as a ratio to EW (and to TorchJD).

Usage::

    python pipelines/bench_mtl.py --quick            # few rounds, both models
    python pipelines/bench_mtl.py --rounds 40 --threads 2 --model lenet

Models (perf-anchors.md §1): (a) LeNet MultiMNIST, batch 256, T = 2; (b) the EEG-sized T = 3 net
(Conv1d/BatchNorm trunk, classifier, transposed-conv decoder, latent-norm task), batch 32.
Protocol (perf-anchors §3): every method trains its own copy of one initial model and has its
own EW partner copy; warm-up steps; then R rounds, methods shuffled per round, one EW step and
one method step timed back to back (order alternating by round); the ratio is the median over
rounds of t_method / t_EW (IQR in brackets). TorchJD 0.18 (dev/bench-only dependency) is
timed in the same run: ``mtl_backward`` + ``jac_to_grad`` for parameter-level aggregators, and
``jac`` on the representation for the "-UB" rows. Foreign CPU load (other processes) is
measured per pair from /proc/stat and printed: timings under foreign load are unreliable
(perf-anchors §7), hence ``OMP_WAIT_POLICY=PASSIVE`` by default.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few rounds (R=6, warm-up 8)")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", choices=["lenet", "eeg", "both"], default="both")
    p.add_argument("--eeg-batch", type=int, default=32)
    p.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    p.add_argument("--no-torchjd", action="store_true")
    p.add_argument("--active-wait", action="store_true",
                   help="keep OpenMP's default (active) wait policy instead of PASSIVE")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None and not ARGS.active_wait:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the torch import

import copy  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from eegmtl.mtl import FlatConfig, MTLStep, Task  # noqa: E402
from eegmtl.mtl.aggregators import AGGREGATORS  # noqa: E402

# ---------------------------------------------------------------------------------- models


class LeNetMTL(nn.Module):
    """ParetoMTL LeNet (perf-anchors §1a): 30,890 shared parameters, two Linear(50, 10) heads."""

    task_names = ("left", "right")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 10, 9), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(10, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(500, 50), nn.ReLU(),
        )
        self.heads = nn.ModuleDict({n: nn.Linear(50, 10) for n in self.task_names})

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return {n: h(z) for n, h in self.heads.items()}

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


class EEGNet3(nn.Module):
    """EEG-sized 3-task net (perf-anchors §1b): 26,905 shared parameters."""

    task_names = ("cls", "rec", "lat")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(18, 18, 64, padding="same"), nn.ELU(), nn.BatchNorm1d(18), nn.AvgPool1d(4),
            nn.Conv1d(18, 9, 32, padding="same"), nn.ELU(), nn.BatchNorm1d(9), nn.AvgPool1d(4),
            nn.Flatten(), nn.Linear(225, 4),
        )
        self.cls = nn.Linear(4, 2)
        self.dec = nn.Sequential(nn.Linear(4, 225), nn.ELU())
        self.up = nn.ConvTranspose1d(9, 18, 16, stride=16)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        rec = self.up(self.dec(z).view(-1, 9, 25))
        return {"cls": self.cls(z), "rec": rec, "lat": z}

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task):
        if task == "cls":
            return list(self.cls.parameters())
        if task == "rec":
            return [*self.dec.parameters(), *self.up.parameters()]
        return []


def lenet_setup(seed: int):
    g = torch.Generator().manual_seed(seed)
    batches = [
        (torch.randn(256, 1, 36, 36, generator=g),
         {n: torch.randint(0, 10, (256,), generator=g) for n in LeNetMTL.task_names})
        for _ in range(4)
    ]
    tasks = [Task(n, F.cross_entropy) for n in LeNetMTL.task_names]
    return LeNetMTL, tasks, batches


def eeg_setup(seed: int, batch: int):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(4):
        x = torch.randn(batch, 18, 400, generator=g)
        batches.append((x, {"cls": torch.randint(0, 2, (batch,), generator=g), "rec": x,
                            "lat": x}))
    tasks = [
        Task("cls", F.cross_entropy),
        Task("rec", F.mse_loss),
        Task("lat", lambda z, _: z.pow(2).sum(1).mean()),
    ]
    return EEGNet3, tasks, batches


# ---------------------------------------------------------------------------------- methods

#: our method name -> (weighting, aggregator, flat, torchjd aggregator name, torchjd level)
METHODS: dict[str, tuple[str, str, object, str | None, str]] = {
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
    "f-ew": ("ew", "sum", "flat", None, "param"),
    "f-mgda": ("ew", "mgda", "flat", None, "param"),
    "f-pcgrad": ("ew", "pcgrad", "flat", None, "param"),
    "f-cagrad": ("ew", "cagrad", "flat", None, "param"),
}


def _agg_kwargs(name: str, n_tasks: int) -> dict:
    return {"n_tasks": n_tasks} if name == "nash_mtl" else {}


def _tjd_aggregator(name: str, n_tasks: int):
    import torchjd.aggregation as A

    if name == "CAGrad":
        return A.CAGrad(c=0.4)
    if name == "NashMTL":
        return A.NashMTL(n_tasks=n_tasks)
    return getattr(A, name)()


class OurRunner:
    def __init__(self, model, tasks, method: str) -> None:
        w, agg, flat, _, _ = METHODS[method]
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        from eegmtl.mtl.aggregators import get_aggregator

        agg_obj = get_aggregator(agg, **_agg_kwargs(agg, len(tasks)))
        self.step = MTLStep(
            model, tasks, w, agg_obj, self.opt,
            flat=FlatConfig() if flat else None,
            fast_path=method != "jacobian(mean)",
        )

    def __call__(self, x, y) -> None:
        self.step(x, y)


class TorchJDRunner:
    def __init__(self, model, tasks, tjd_name: str, level: str) -> None:
        self.model, self.tasks, self.level = model, tasks, level
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.agg = _tjd_aggregator(tjd_name, len(tasks))
        self.shared = list(model.shared_parameters())
        self.heads = [list(model.task_parameters(t.name)) for t in tasks]
        self.all_heads = [p for h in self.heads for p in h]

    def __call__(self, x, y) -> None:
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


class EWRunner(OurRunner):
    def __init__(self, model, tasks) -> None:
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.step = MTLStep(model, tasks, "ew", "sum", self.opt)


# ---------------------------------------------------------------------------------- timing


def _jiffies() -> tuple[int, int]:
    """(busy jiffies of the whole machine, jiffies of this process)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        busy = sum(f) - f[3] - (f[4] if len(f) > 4 else 0)
        with open("/proc/self/stat") as fh:
            s = fh.read().rsplit(")", 1)[1].split()
        own = int(s[11]) + int(s[12])
        return busy, own
    except OSError:  # pragma: no cover - non-Linux
        return 0, 0


def bench_model(label: str, setup, methods: list[str], args) -> list[dict]:
    model_cls, tasks, batches = setup
    torch.manual_seed(args.seed)
    base = model_cls()
    runners: dict[str, tuple[object, object]] = {}
    skipped = []
    for m in methods:
        agg = METHODS[m][1]
        if agg not in AGGREGATORS:
            skipped.append(m)
            continue
        runners[m] = (
            OurRunner(copy.deepcopy(base), tasks, m), EWRunner(copy.deepcopy(base), tasks)
        )
        tjd = METHODS[m][3]
        if tjd and not args.no_torchjd:
            try:
                runners[f"tjd {m}"] = (
                    TorchJDRunner(copy.deepcopy(base), tasks, tjd, METHODS[m][4]),
                    EWRunner(copy.deepcopy(base), tasks),
                )
            except ImportError as err:
                print(f"  torchjd {tjd} unavailable: {err}", file=sys.stderr)
    if skipped:
        print(f"  [{label}] not registered (skipped): {', '.join(skipped)}")
    # warm-up (also finishes the vmap/loop probe of the gradient engine)
    for i in range(args.warmup):
        x, y = batches[i % 4]
        for meth, ew in runners.values():
            meth(x, y)
            ew(x, y)
    chosen = {m: r[0].step.engine.chosen for m, r in runners.items() if isinstance(r[0], OurRunner)}
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
            x, y = batches[(r + k) % 4]
            meth, ew = runners[m]
            b0, o0 = _jiffies()
            w0 = time.perf_counter()
            pair = [(ew, "ew"), (meth, "m")] if r % 2 == 0 else [(meth, "m"), (ew, "ew")]
            times = {}
            for fn, key in pair:
                t0 = time.perf_counter()
                fn(x, y)
                times[key] = time.perf_counter() - t0
            wall = time.perf_counter() - w0
            b1, o1 = _jiffies()
            foreign.append(max(0.0, ((b1 - b0) - (o1 - o0)) / clk / max(wall, 1e-9)))
            ratios[m].append(times["m"] / times["ew"])
            t_m[m].append(times["m"])
            t_ew.append(times["ew"])
    rows = []
    ew_ms = 1e3 * statistics.median(t_ew)
    for m in runners:
        q = statistics.quantiles(ratios[m], n=4) if len(ratios[m]) > 1 else [ratios[m][0]] * 3
        rows.append({
            "model": label, "method": m, "ratio": statistics.median(ratios[m]),
            "q1": q[0], "q3": q[2], "ms": 1e3 * statistics.median(t_m[m]), "ew_ms": ew_ms,
            "backend": chosen.get(m),
        })
    rows.append({"model": label, "method": "_foreign_load", "ratio": statistics.median(foreign),
                 "q1": min(foreign), "q3": max(foreign), "ms": 0.0, "ew_ms": ew_ms,
                 "backend": None})
    return rows


def _target(method: str) -> float | None:
    if method in ("ew", "mean", "rlw"):
        return 1.05
    if method.startswith("f-"):
        return 2.2
    agg = METHODS[method][1]
    cls = AGGREGATORS.get(agg)
    if cls is not None and getattr(cls, "level", "parameters") == "representation":
        return 1.15
    return 1.5


def print_table(rows: list[dict]) -> None:
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for label, rs in by_model.items():
        load = next(r for r in rs if r["method"] == "_foreign_load")
        ours = {r["method"]: r for r in rs if not r["method"].startswith(("tjd ", "_"))}
        tjd = {r["method"][4:]: r for r in rs if r["method"].startswith("tjd ")}
        print(f"\n### {label}  (EW median {load['ew_ms']:.1f} ms/step; foreign load median "
              f"{load['ratio']:.2f} cores, range {load['q1']:.2f}-{load['q3']:.2f})\n")
        print("| method | ours / EW [IQR] | ms | backend | TorchJD / EW | ours / TorchJD | target |"
              " ok |")
        print("|---|---|---|---|---|---|---|---|")
        for m, r in ours.items():
            t = tjd.get(m)
            tgt = _target(m)
            ok = (tgt is None or r["ratio"] <= tgt) and (
                t is None or r["ratio"] <= t["ratio"] * 1.05
            )
            print(
                f"| {m} | {r['ratio']:.2f} [{r['q1']:.2f}-{r['q3']:.2f}] | {r['ms']:.1f} | "
                f"{r['backend'] or '-'} | "
                + (f"{t['ratio']:.2f} | {r['ratio'] / t['ratio']:.2f} | " if t else "- | - | ")
                + f"<= {tgt} | {'yes' if ok else 'NO'} |"
            )


def main(args: argparse.Namespace) -> None:
    if args.quick:
        args.rounds, args.warmup = min(args.rounds, 6), max(args.warmup, 8)
    torch.set_num_threads(args.threads)
    methods = list(METHODS)
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise SystemExit(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if "ew" not in methods:
            methods.insert(0, "ew")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'default')}, rounds {args.rounds}, warm-up "
          f"{args.warmup}, load average {os.getloadavg() if hasattr(os, 'getloadavg') else '?'}")
    rows: list[dict] = []
    if args.model in ("lenet", "both"):
        rows += bench_model("LeNet MultiMNIST b256 (T=2)", lenet_setup(args.seed), methods, args)
    if args.model in ("eeg", "both"):
        rows += bench_model(f"EEG net b{args.eeg_batch} (T=3)",
                            eeg_setup(args.seed, args.eeg_batch), methods, args)
    print_table(rows)
    print(f"\nload average at the end: {os.getloadavg() if hasattr(os, 'getloadavg') else '?'}")


if __name__ == "__main__":
    main(ARGS)
