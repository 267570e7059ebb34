"""Refresh the converged-grid column of README.md's MTL method tables from the grid's records.

Reads ``pipelines/results/vision_converged.csv`` (``eegmtl vision --preset converged``) and
rewrites, in the README section "MTL methods in `eegmtl.mtl`", the last cell of every row of the
weighting / aggregator / method tables and the rows of the flat-variant table: average test
accuracy (%) per data set at the grid's epoch budget, mean ± SD over seeds (at the former
budget, marked ``(E ep)``, where a raised budget has no run yet); ``…`` where a grid method has
no run yet, ``—`` for methods outside the grid. Idempotent; run from the checkout
root after committing new grid records::

    python pipelines/readme_converged_column.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.benchmarks.records import load_records
from eegmtl.experiments.vision_converged import split_budgets, with_former_budgets
from eegmtl.experiments.vision_presets import CONVERGED_EPOCHS, NEW_METHODS

ROOT = Path(__file__).resolve().parent.parent
HEAD = "converged LeNet, avg test acc. % (MultiMNIST · MultiFashion · MF+MNIST)"
DATASETS = tuple(CONVERGED_EPOCHS)  # MultiMNIST, MultiFashion, MultiFashion+MNIST
#: first cell of a README table row -> grid method name
ROWS = {"`ew`": "ew", "`rlw`": "rlw", "`famo`": "famo", "`stch`": "stch",
        "`mgda`, `mgda_ub`": "mgda", "`pcgrad`": "pcgrad", "`imtl_g`": "imtl_g",
        "`cagrad`": "cagrad", "`moco`": "moco", "`sdmgrad`": "sdmgrad", "`modo`": "modo",
        "`fairgrad`": "fairgrad", "`excess_mtl`": "excess_mtl", "`config`": "config"}
N_CONTENT = 5  # columns of a method table before the converged one


def grid_results(path: Path = ROOT / "pipelines/results/vision_converged.csv") -> pd.DataFrame:
    """The ``task="avg"`` rows of the grid's records at each data set's epoch budget, plus, per
    data set × method of a raised budget with no run at it yet, those at the former budget."""
    return with_former_budgets(*split_budgets(load_records(path), CONVERGED_EPOCHS))


def cell(avg: pd.DataFrame, method: str) -> str:
    """``MultiMNIST · MultiFashion · MF+MNIST`` accuracies of ``method`` (% mean ± SD); runs at
    a budget other than the data set's current one are marked ``(E ep)``."""
    parts = []
    for d in DATASETS:
        rows = avg[(avg.method == method) & (avg.dataset == d)]
        note = "".join(f" ({int(e)} ep)" for e in sorted(set(rows.get("epochs", [])))
                       if e != CONVERGED_EPOCHS[d])
        v = rows.avg_accuracy * 100
        if v.empty:
            parts.append("…")
        elif len(v) == 1:
            parts.append(f"{v.iloc[0]:.2f}" + ("" if method in NEW_METHODS else " (1 seed)")
                         + note)
        else:
            parts.append(f"{v.mean():.2f} ± {v.std():.2f}"
                         + ("" if len(v) == 3 else f" ({len(v)} seeds)") + note)
    return " · ".join(parts)


def refresh(readme: str, avg: pd.DataFrame) -> str:
    """Return ``readme`` with the converged column of the MTL method tables refreshed."""
    out: list[str] = []
    section = in_table = False
    for ln in readme.split("\n"):
        if ln.startswith("## "):
            section = ln.startswith("## MTL methods")
        if not ln.strip():
            in_table = False
        if section and ln.startswith("| name |"):
            in_table = True
            if HEAD not in ln:
                ln += f" {HEAD} |"
        elif in_table and re.fullmatch(r"\|(---\|)+", ln):
            ln = "|" + "---|" * (out[-1].count("|") - 1)
        elif section and ln.startswith("| `f-"):
            m = ln.split("`")[1]
            ln = f"| `{m}` | {cell(avg, m)} |"
        elif in_table and ln.startswith("| `"):
            cells = ln.split("|")[: N_CONTENT + 1]
            first = cells[1].strip()
            if first in ROWS:
                val = cell(avg, ROWS[first])
            elif first == "`db_mtl`" and "`log` weighting" in ln:  # the method, not the aggregator
                val = cell(avg, "db_mtl")
            else:
                val = "—"
            ln = "|".join(cells) + f"| {val} |"
        out.append(ln)
    return "\n".join(out)


def main() -> None:
    avg = grid_results()
    path = ROOT / "README.md"
    atomic_write(path, refresh(path.read_text(encoding="utf-8"), avg))
    print(f"refreshed the converged column of {path} from {len(avg)} runs")


if __name__ == "__main__":
    main()
