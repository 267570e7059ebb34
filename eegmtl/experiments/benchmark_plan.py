"""What a run of ``eegmtl benchmark`` fits: its size, its runner calls and their pipelines.

A :class:`Preset` sizes the run (subjects, folds per protocol, seeds, epoch cap, device);
:func:`stages` turns it into one :class:`Stage` per call of
:func:`eegmtl.evaluation.runner.run_protocol`, seed-major (SD, SI and SI aligned of seed 0
first, so a run stopped by a time limit has complete seeds); :func:`stage_methods` leaves the
pipelines that draw no random number (:data:`SEED_FREE`) out of every seed but the first;
:func:`stage_call` gives the runner arguments that name a stage's fits (what a run, its
``--estimate`` and its ``--adopt`` share). :func:`synthetic_2b` stands in for the data in
smoke tests (``--synthetic``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PRESETS", "SEED_FREE", "Preset", "Stage", "method_overrides", "runner_alignment",
           "select_methods", "stage_call", "stage_methods", "stages", "synthetic_2b"]


@dataclass(frozen=True)
class Preset:
    """Size of a benchmark run: subjects, folds per protocol, seeds, epoch cap, device."""

    subjects: tuple[int, ...]
    sd_folds: tuple[int, ...]
    si_folds: tuple[int, ...]
    seeds: tuple[int, ...]
    max_epochs: int | None  # None: the registry's own (early-stopped) schedule
    device: str


PRESETS: dict[str, Preset] = {
    "full": Preset(tuple(range(1, 10)), (1, 2, 3, 4, 5), (1,), (0, 1, 2), None, "auto"),
    "tiny": Preset((1,), (1,), (1,), (0,), 1, "cpu"),
}


@dataclass(frozen=True)
class Stage:
    """One runner call: protocol, folds, seed, alignment (None = none) and record file."""

    protocol: str
    folds: tuple[int, ...]
    seed: int
    alignment: str | None
    records: Path


def runner_alignment() -> bool:
    """Whether :func:`eegmtl.evaluation.runner.run_protocol` takes ``alignment=``."""
    from eegmtl.evaluation.runner import run_protocol

    return "alignment" in inspect.signature(run_protocol).parameters


def stages(preset: Preset, protocols: list[str], seeds: list[int], folder: Path, name: str,
           alignment: str | None) -> list[Stage]:
    """Runner calls of a benchmark, seed-major: SD, SI, SI aligned for seed 0, then seed 1..."""
    out = []
    for seed in seeds:
        if "sd" in protocols:
            out.append(Stage("subject_dependent", preset.sd_folds, seed, None,
                             folder / f"benchmark_{name}_sd.csv"))
        if "si" in protocols:
            out.append(Stage("subject_independent", preset.si_folds, seed, None,
                             folder / f"benchmark_{name}_si.csv"))
            if alignment:
                out.append(Stage("subject_independent", preset.si_folds, seed, alignment,
                                 folder / f"benchmark_{name}_si_{alignment}.csv"))
    return out


#: pipelines whose fit draws no random number: every seed gives the same records (pinned by a
#: test), so the benchmark fits them for its first seed only
SEED_FREE = ("CSP+LDA", "FBCSP+SVM", "TS+SVM")


def stage_methods(st: Stage, methods: list[str], first_seed: int) -> list[str]:
    """The pipelines stage ``st`` runs: ``methods`` without the :data:`SEED_FREE` ones after
    the first seed."""
    return [m for m in methods if st.seed == first_seed or m not in SEED_FREE]


def select_methods(methods: list[str] | None, exclude: list[str]) -> list[str]:
    """Registry names to run: ``methods`` (default all registered) minus ``exclude``."""
    from eegmtl.evaluation.methods import available_methods, close_names

    known = available_methods()
    chosen = list(methods) if methods else known
    unknown = sorted(set(chosen) - set(known)) + sorted(set(exclude) - set(known))
    if unknown:
        named = [repr(u) + (f" (did you mean {c[0]!r}?)" if (c := close_names(u, known, 1))
                            else "") for u in unknown]
        raise SystemExit(f"unknown method(s) {', '.join(named)}; the preset runs registered "
                         f"names only: {', '.join(known)}")
    return [m for m in chosen if m not in set(exclude)]


def method_overrides(name: str, protocol: str, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The keys of ``wanted`` that method ``name`` accepts (tried by building it), or None when
    the method has no settings for ``protocol`` (e.g. a variant tuned for SD only)."""
    from eegmtl.evaluation.methods import get_method

    try:
        spec = get_method(name, protocol)
    except ValueError:
        return None
    out = {}
    for key, value in wanted.items():
        if value is None:
            continue
        try:
            spec.with_config(**out, **{key: value}).build()
        except (TypeError, ValueError):
            continue  # e.g. CSP+LDA takes no max_epochs
        out[key] = value
    return out


def stage_call(st: Stage, chosen: list[str], params: dict[str, Any], subjects: list[int],
               synthetic: bool) -> dict[str, Any]:
    """The :func:`~eegmtl.evaluation.runner.run_protocol` arguments that name the fits of
    stage ``st`` (with its pipelines ``chosen`` and their overrides ``params``): what a run and
    its plan share."""
    from eegmtl.evaluation.runner import DEFAULT_DATASET

    extra = {"alignment": st.alignment} if st.alignment else {}
    return {"protocol": st.protocol, "methods": chosen, "subjects": subjects,
            "folds": list(st.folds), "seeds": [st.seed], "results_path": st.records,
            "method_params": {m: params[m] for m in chosen if params[m]},
            "dataset": "synthetic" if synthetic else DEFAULT_DATASET, **extra}


def synthetic_2b(n_trials: int = 12, n_times: int = 1000, seed: int = 0) -> tuple[Any, ...]:
    """Random BCIC-IV-2b-shaped epochs: 9 subjects x 5 sessions x ``n_trials`` trials of 3
    channels at 250 Hz in µV, class 1 with more 10-14 Hz power on C3 than on C4."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [(s, k) for s in range(1, 10) for k in range(1, 6) for _ in range(n_trials)]
    meta = pd.DataFrame(rows, columns=["subject", "session_index"])
    meta["session"] = meta["session_index"].map(lambda k: f"{k - 1}{'train' if k < 4 else 'test'}")
    y = np.concatenate([rng.permutation(np.arange(n_trials) % 2) for _ in range(45)])
    t = np.arange(n_times) / 250.0
    X = rng.standard_normal((len(y), 3, n_times)) * 2.0
    mu = np.sin(2 * np.pi * rng.uniform(10, 14, (len(y), 1)) * t)
    X[:, 0] += np.where(y[:, None] == 1, 2.0, 0.5) * mu
    X[:, 2] += np.where(y[:, None] == 1, 0.5, 2.0) * mu
    return X, y.astype(np.int64), meta
