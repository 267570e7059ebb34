"""Named grids of the vision benchmark (``eegmtl vision --preset NAME``).

A preset is an ordered list of runs ``(stage, data set, method, seed)`` plus, per stage, the
arguments of :func:`eegmtl.benchmarks.runner.run_benchmark` (model, protocol, epochs, record
file). Every run is resumable (finished runs are skipped by ``config_hash``, interrupted ones
continue from their per-epoch checkpoint), and any number of processes can share a preset:
``--shard k/n`` gives each process a fixed part (:func:`shard_items`: the runs in preset
order, each given to the shard with the least estimated work so far, so the shards advance
through the preset together), ``--only dataset:method:seed`` picks runs by name; all write
to one record file through the runner's locked merge.

Presets
-------
``converged`` (CPU): LeNet, Adam lr 1e-3, batch 256 (the F-MTL optimiser), the full
MultiMNIST / MultiFashion / MultiFashion+MNIST training sets (108 000 pairs, 12 000 held out
for validation, 20 000 test), one epoch budget per data set for every method
(:data:`CONVERGED_EPOCHS`: 16 on MultiMNIST, 30 on MultiFashion, 18 on MultiFashion+MNIST;
rule and check in :mod:`eegmtl.experiments.vision_converged`; MultiFashion's first budget, 20,
failed the check on the grid's own curves, :data:`RAISED_BUDGETS`), EW, RLW and every pair X / F-X
with X in {MGDA, PCGrad, CAGrad, IMTL-G} with 3 seeds, the newer methods with one seed. Flat
variants use the exact per-task update
(``FlatConfig(mode="exact")``) with the F-MTL MultiMNIST setting (ASAM, ρ = 2, joint norm):
with LeNet's CPU convolutions (:class:`~eegmtl.models.fast_conv.FastConv2d`) the per-task loop
is faster than the vmap-batched update on the CPU (``bench_mtl.md``). Order: complete seed
triplets of the X / F-X pairs on MultiMNIST first, then EW / RLW, then MultiFashion+MNIST,
then the newer methods; MultiFashion last (:data:`LAST_DATASETS`: its runs mostly extend
the finished 20-epoch ones).

``curves`` (CPU): the pilot runs the budgets are read from, :data:`CURVE_EPOCHS` epochs with
per-epoch validation accuracy: EW seed 0 on each data set and F-PCGrad seed 0 on MultiMNIST
(the flat variants learned more slowly in the first epochs). Its first version, EW and F-PCGrad on
MultiMNIST for 12 epochs, gave the first budget (10 epochs everywhere). The grid's
own per-epoch histories then showed it too short: on MultiFashion every method still gained
0.4-0.5 validation points per epoch at epoch 10, and on MultiMNIST the flat variants' seed-mean
curves still gained 0.2-0.3 points over epochs 9-10 (they run about one epoch behind their
plain versions); a 2-epoch window had let validation noise pass for a plateau. The 30-epoch
pilots give 14 (MultiMNIST), 18 (MultiFashion) and 16 (MultiFashion+MNIST) epochs; the
budgets, :data:`CONVERGED_EPOCHS`, add 2 for the methods not piloted. On MultiFashion the
grid's own seed-mean curves were still not flat at 20 epochs (the check of
:mod:`eegmtl.experiments.vision_converged`), so its budget went to the pilots' 30 epochs.
Runs finished at a shorter budget are extended from their checkpoints, not repeated, while
those checkpoints are in the machine's cache
(:func:`~eegmtl.benchmarks.single_run.shorter_budget_checkpoint`).

``architectures`` (CPU): MMoE, CGC, PLE and Cross-stitch of LeNet
(:mod:`eegmtl.models.lenet_mtl`) on MultiMNIST at the ``converged`` protocol and budget (full
sets, 16 epochs, Adam 1e-3, batch 256), EW, seed 0, one run each, beside the grid's LeNet hard
sharing (EW, 3 seeds). Records ``vision_architectures.csv``; summary
:mod:`eegmtl.experiments.vision_architectures`. A step costs 2-3x LeNet's (:data:`MODEL_COST`).

``fmtl-gpu`` (meant for a GPU): the F-MTL MultiMNIST protocol (Phan et al., ICCV 2025,
Table 1 and the official ``run.sh``: ResNet-18, Adam 1e-3, batch 256, **200 epochs**, 3 seeds;
EW, RLW and the four X / F-X pairs), then the LeNet grid of ``converged`` at 100 epochs
(ParetoMTL's LeNet epoch count, F-MTL's argparse default). Device-agnostic (``--device
cuda``); tested end to end at a tiny size on the CPU only -- it has **not** run on a GPU.
Size on one H200, an estimate from arithmetic, not a measurement: ResNet-18 on 36×36 inputs is
~0.05 GFLOP per sample forward, so an EW step of batch 256 is launch-bound at roughly 5 ms;
with the relative step costs of :data:`STEP_COST` (flat ≈ 4×, per-task-gradient methods ≈
1.8×) the ResNet-18 part is ≈ 24 EW-step units × 422 steps × 200 epochs × 3 seeds ×
5 ms ≈ 9 h, and the LeNet part (≈ 1.5 ms per EW step, ~250 units per epoch, 100 epochs) ≈
5 h: about 14 h on one H200, uncertain by a factor of 2 either way.

CPU size of ``converged`` (``eegmtl vision --preset converged --estimate [--ew-step-ms MS]``
prints the :func:`estimate_seconds` figure): from the measured fit times (one thread, both
cores busy), one epoch of the 30 X / F-X / EW / RLW runs of a data set costs ≈ 0.5-0.7 CPU
hours (plain runs 29-80 s per epoch, flat runs 83-135 s), the nine newer methods ≈ 0.11-0.13 h,
so the budgets above (64 epochs in all) make ≈ 40-50 CPU hours, 20-25 h for two one-thread
shards on this 2-core machine -- well above the 8 h first aimed for, because the 10-epoch
budget that would have fit had not converged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "CONVERGED_EPOCHS",
    "CURVE_EPOCHS",
    "DATASET_LABELS",
    "FLAT_PAIRS",
    "LAST_DATASETS",
    "MODEL_COST",
    "NEW_METHODS",
    "PRESETS",
    "RAISED_BUDGETS",
    "STEP_COST",
    "Preset",
    "estimate_seconds",
    "item_epochs",
    "select_items",
    "shard_items",
]

#: Display names of the vision data sets, in table order.
DATASET_LABELS: dict[str, str] = {"multi_mnist": "MultiMNIST", "multi_fashion": "MultiFashion",
                                  "multi_fashion_mnist": "MultiFashion+MNIST"}

#: Epoch budget of the ``converged`` preset per data set (the same for every method of a data
#: set): the pilot curves' reading (:mod:`eegmtl.experiments.vision_converged`: flat by the
#: 4-epoch rule and 95 % of the whole 30-epoch gain made; MultiMNIST 14 (EW 14, F-PCGrad 13),
#: MultiFashion 18, MultiFashion+MNIST 16, EW pilots) plus 2 epochs for the methods not
#: piloted: the flat variants ran 1-3 epochs behind their plain versions on the grid's first,
#: 10-epoch curves. The summary checks each budget on the grid's own seed-mean curves.
CONVERGED_EPOCHS: dict[str, int] = {
    "multi_mnist": 16, "multi_fashion": 30, "multi_fashion_mnist": 18,
}
#: Budgets raised after the grid's own check (:func:`~eegmtl.experiments.vision_converged.
#: summarize_converged`) found them short: data set -> (former budget, why). The runs at the
#: former budget are extended from their checkpoints; the summary names the raise.
RAISED_BUDGETS: dict[str, tuple[int, str]] = {
    "multi_fashion": (20, "at 20 the check on the grid's own seed-mean validation curves was "
                      "not met (F-IMTL-G gained 0.21 points over its last 2 epochs, 14 of 30 "
                      "runs gained >= 0.2 points over theirs); 30 = the pilots' length"),
}
#: Data sets whose grid runs go after all others (their runs mostly extend finished ones, so
#: the runs that add new results come first).
LAST_DATASETS: tuple[str, ...] = ("multifashion",)
#: Length of the ``curves`` preset's pilot runs (the 12-epoch MultiMNIST pilots of the first
#: budget are extended to it, not repeated).
CURVE_EPOCHS = 30
#: X / F-X pairs (the flat variant uses the same aggregator at the parameter level).
FLAT_PAIRS: tuple[tuple[str, str], ...] = (
    ("mgda", "f-mgda"), ("pcgrad", "f-pcgrad"), ("cagrad", "f-cagrad"), ("imtl_g", "f-imtl_g"),
)
#: Newer methods of the core, one seed each.
NEW_METHODS: tuple[str, ...] = (
    "famo", "fairgrad", "db_mtl", "stch", "excess_mtl", "moco", "sdmgrad", "modo", "config",
)
DATASETS: tuple[str, ...] = ("multimnist", "multifashion", "multifashion_mnist")
SEEDS: tuple[int, ...] = (0, 1, 2)
#: Step time relative to EW (LeNet with FastConv2d, batch 256, T = 2, one thread), from
#: ``pipelines/results/bench_mtl.md`` (median ratios; flat: the exact update); methods not
#: listed there: 3.6 (f-IMTL-G), 1.5 (parameter-level aggregators) or 1.1 (loss weightings).
STEP_COST: dict[str, float] = {
    "ew": 1.0, "rlw": 1.0, "mgda": 1.55, "pcgrad": 1.33, "cagrad": 1.55, "imtl_g": 1.49,
    "f-mgda": 3.60, "f-pcgrad": 3.63, "f-cagrad": 3.53, "f-imtl_g": 3.6, "famo": 1.1,
    "stch": 1.1, "db_mtl": 1.5, "fairgrad": 1.5, "excess_mtl": 1.5, "moco": 1.5,
    "sdmgrad": 1.5, "modo": 1.5, "config": 1.5,
}

#: Multi-task architectures of the ``architectures`` preset (LeNet experts / columns).
ARCHITECTURES: tuple[str, ...] = ("cross_stitch", "mmoe", "cgc", "ple")
#: Step time of a runner model relative to LeNet hard sharing (EW, batch 256, T = 2, one
#: thread; forward + backward of 15 steps per model in one process, 2026-12-04): MMoE and CGC
#: hold 3 LeNet experts, PLE 3 per level, Cross-stitch 2 columns.
MODEL_COST: dict[str, float] = {
    "lenet": 1.0, "mmoe": 2.93, "cgc": 2.95, "ple": 3.13, "cross_stitch": 2.08,
}

Item = tuple[str, str, str, int]  # (stage, data set, method, seed)


@dataclass(frozen=True)
class Preset:
    """A named grid: ``items`` in run order, ``stages`` = run_benchmark arguments per stage
    (``results`` / ``history``: file names in the results folder)."""

    name: str
    description: str
    items: tuple[Item, ...]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fmtl_flat(mode: str) -> Any:
    from eegmtl.mtl.flat import FMTL_MULTIMNIST

    return replace(FMTL_MULTIMNIST, mode=mode)


def _grid_items(stage: str, datasets: Sequence[str], seeds: Sequence[int],
                new_methods: Sequence[str] = NEW_METHODS, last: Sequence[str] = ()) -> list[Item]:
    """Per data set the X / F-X pairs (complete seed triplets), then EW / RLW, then the newer
    methods of every data set; the runs of the data sets in ``last`` after all the others."""

    def block(ds: Sequence[str]) -> list[Item]:
        items: list[Item] = []
        for d in ds:
            for plain, flat in FLAT_PAIRS:  # complete seed triplets of each pair first
                for s in seeds:
                    items += [(stage, d, plain, s), (stage, d, flat, s)]
            for s in seeds:
                items += [(stage, d, "ew", s), (stage, d, "rlw", s)]
        for d in ds:
            items += [(stage, d, m, seeds[0]) for m in new_methods]
        return items

    return block([d for d in datasets if d not in last]) + block([d for d in datasets if d in last])


def _presets() -> dict[str, Preset]:
    common = {"protocol": "lenet", "model": "lenet", "batch_size": 256, "conflict_every": 20}
    converged = Preset(
        "converged", "LeNet, full sets, converged budget, 3 seeds (CPU)",
        tuple(_grid_items("lenet", DATASETS, SEEDS, last=LAST_DATASETS)),
        {"lenet": {**common, "epochs": CONVERGED_EPOCHS, "flat": "exact",
                   "results": "vision_converged.csv",
                   "history": "vision_converged_epochs.csv"}},
    )
    curves = Preset(
        "curves", f"pilot validation curves, {CURVE_EPOCHS} epochs: EW on each data set, "
        "F-PCGrad on MultiMNIST (CPU)",
        (("lenet", "multimnist", "ew", 0), ("lenet", "multifashion", "ew", 0),
         ("lenet", "multifashion_mnist", "ew", 0), ("lenet", "multimnist", "f-pcgrad", 0)),
        {"lenet": {**common, "epochs": CURVE_EPOCHS, "flat": "exact",
                   "results": "vision_converged_curves.csv",
                   "history": "vision_converged_curves_epochs.csv"}},
    )
    resnet = [("resnet18", "multimnist", m, s) for plain, flat in FLAT_PAIRS for s in SEEDS
              for m in (plain, flat)]
    resnet += [("resnet18", "multimnist", m, s) for s in SEEDS for m in ("ew", "rlw")]
    gpu = Preset(
        "fmtl-gpu", "F-MTL MultiMNIST protocol (ResNet-18, 200 epochs, 3 seeds), then the LeNet "
        "grid at 100 epochs (GPU)",
        tuple(resnet + _grid_items("lenet100", DATASETS, SEEDS)),
        {"resnet18": {"protocol": "resnet18", "model": "resnet18", "batch_size": 256,
                      "conflict_every": 20, "epochs": 200, "flat": "batched",
                      "results": "vision_fmtl_gpu_resnet18.csv",
                      "history": "vision_fmtl_gpu_resnet18_epochs.csv"},
         "lenet100": {**common, "epochs": 100, "flat": "batched",
                      "results": "vision_fmtl_gpu_lenet.csv",
                      "history": "vision_fmtl_gpu_lenet_epochs.csv"}},
    )
    architectures = Preset(
        "architectures", "MMoE, CGC, PLE, Cross-stitch of LeNet on MultiMNIST, converged "
        "budget, EW, seed 0 (CPU)",
        tuple((a, "multimnist", "ew", 0) for a in ARCHITECTURES),
        {a: {**common, "model": a, "epochs": CONVERGED_EPOCHS,
             "results": "vision_architectures.csv",
             "history": "vision_architectures_epochs.csv"} for a in ARCHITECTURES},
    )
    return {p.name: p for p in (converged, curves, gpu, architectures)}


PRESETS: dict[str, Preset] = _presets()


def item_epochs(preset: Preset, item: Item, overrides: dict[str, Any] | None = None) -> int:
    """Epoch budget of a run: ``overrides["epochs"]`` when given, else the stage's ``epochs``
    (an int, or a dict keyed by canonical data-set name)."""
    from eegmtl.benchmarks.protocols import canonical_benchmark

    if overrides and "epochs" in overrides:
        return int(overrides["epochs"])
    epochs = preset.stages[item[0]]["epochs"]
    return int(epochs[canonical_benchmark(item[1])] if isinstance(epochs, dict) else epochs)


def stage_kwargs(preset: Preset, item: Item) -> dict[str, Any]:
    """run_benchmark arguments of a run's stage (its epoch budget resolved by
    :func:`item_epochs`; ``flat="exact"|"batched"`` resolved to the F-MTL MultiMNIST
    FlatConfig in that mode; ``results``/``history`` left to the caller)."""
    kw = {k: v for k, v in preset.stages[item[0]].items() if k not in ("results", "history")}
    kw["epochs"] = item_epochs(preset, item)
    if kw.get("flat") in ("exact", "batched"):
        kw["flat"] = _fmtl_flat(kw["flat"])
    return kw


def item_cost(preset: Preset, item: Item, epochs_done: int = 0) -> float:
    """Estimated work of a run in EW-epoch units (epochs left after ``epochs_done`` × relative
    step cost of the method × that of the stage's model, :data:`MODEL_COST`; ResNet-18
    counted like LeNet -- only the ratio between runs matters for sharding)."""
    epochs = item_epochs(preset, item)
    model = MODEL_COST.get(preset.stages[item[0]].get("model", "lenet"), 1.0)
    return float(epochs - min(epochs_done, epochs)) * STEP_COST.get(item[2], 1.8) * model


def shard_items(preset: Preset, items: Sequence[Item], k: int, n: int) -> list[Item]:
    """Runs of shard ``k`` of ``n`` (0-based): walking ``items`` in order, each run goes to the
    shard with the least estimated work so far (ties: lowest shard), so shards advance
    through the preset's order together. Depends only on the items, not on what has run."""
    if not 0 <= k < n:
        raise ValueError(f"shard must be k/n with 0 <= k < n, got {k}/{n}.")
    load = [0.0] * n
    mine: list[Item] = []
    for item in items:
        j = min(range(n), key=lambda i: (load[i], i))
        load[j] += item_cost(preset, item)
        if j == k:
            mine.append(item)
    return mine


def select_items(preset: Preset, only: Iterable[str] = ()) -> list[Item]:
    """The preset's runs, or those matching ``only`` entries ``dataset:method:seed`` (any
    field may be ``*``; a stage may be prefixed as ``stage/dataset:method:seed``)."""
    from eegmtl.benchmarks.protocols import canonical_benchmark

    only = list(only)
    if not only:
        return list(preset.items)
    keep: list[Item] = []
    for spec in only:
        stage, _, rest = spec.rpartition("/")
        parts = rest.split(":")
        if len(parts) != 3:
            raise ValueError(f"--only {spec!r}: use dataset:method:seed (e.g. "
                             "multimnist:f-pcgrad:0; '*' matches anything).")
        ds, method, seed = parts
        hits = [it for it in preset.items
                if (not stage or stage == it[0])
                and (ds == "*" or canonical_benchmark(ds) == canonical_benchmark(it[1]))
                and (method == "*" or method.lower() == it[2])
                and (seed == "*" or int(seed) == it[3])]
        if not hits:
            raise ValueError(f"--only {spec!r} matches no run of preset {preset.name!r}.")
        keep += [h for h in hits if h not in keep]
    return [it for it in preset.items if it in keep]


def estimate_seconds(preset: Preset, items: Sequence[Item], ew_step_s: float,
                     steps_per_epoch: int = 422, overhead: float = 1.2,
                     epochs_done: Mapping[Item, int] | None = None) -> float:
    """CPU seconds of ``items`` from a measured EW step time: Σ epochs × steps × relative
    step cost × ``ew_step_s`` × ``overhead`` (evaluation, probes, I/O; ≤ 1.2 measured).
    ``epochs_done``: epochs a run already has at a shorter budget (it is extended, so only
    the remaining epochs count)."""
    done = epochs_done or {}
    units = sum(item_cost(preset, it, done.get(it, 0)) for it in items)
    return units * steps_per_epoch * ew_step_s * overhead
