"""Figures of the converged-budget vision grid: the pilot runs' validation curves with the
epoch-budget rule marked, and the grid's seed-averaged validation curves per data set
(:func:`eegmtl.experiments.vision_converged.write_converged_summary` draws both).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from eegmtl.experiments.vision_presets import DATASET_LABELS as _DS

__all__ = ["plot_curves", "plot_grid_curves"]


def _save(fig: Any, path: Path, dpi: int) -> Path:
    """Lay out, write atomically as PNG (:func:`~eegmtl.evaluation.plots.save_figure`) and close."""
    import matplotlib.pyplot as plt

    from eegmtl.evaluation.plots import save_figure

    fig.tight_layout()
    try:  # atomic, per-process temporary name: shards may redraw the same figure at once
        return save_figure(fig, path, dpi=dpi, bbox_inches=None)
    finally:
        plt.close(fig)


def plot_grid_curves(history: pd.DataFrame, avg: pd.DataFrame, path: Path) -> Path | None:
    """Seed-averaged validation curve of every method, one panel per data set (PNG); a
    method whose runs are not at the data set's current budget is labelled with their
    epochs."""
    from eegmtl.experiments.vision_presets import CONVERGED_EPOCHS

    hist = history[history["config_hash"].isin(set(avg["config_hash"]))]
    if hist.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in _DS if d in set(hist["dataset"])]
    methods = list(dict.fromkeys(hist["method"].str.removeprefix("f-")))
    colour = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        h = hist[hist["dataset"] == d]
        for m, g in h.groupby("method", sort=False):
            c = g.groupby("epoch")["val_avg_accuracy"].mean().sort_index()
            epochs = set(avg[(avg["dataset"] == d) & (avg["method"] == m)].get("epochs", []))
            note = "".join(f", {int(e)} ep" for e in sorted(epochs)
                           if e != CONVERGED_EPOCHS.get(d, e))
            ax.plot(c.index + 1, 100 * c.to_numpy(), ls="--" if m.startswith("f-") else "-",
                    color=colour[m.removeprefix("f-")],
                    label=f"{m} (n={g['config_hash'].nunique()}{note})")
        ax.set_title(f"{_DS[d]}: validation, seed mean")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        lo = 100 * h.groupby(["method", "epoch"])["val_avg_accuracy"].mean().quantile(0.3)
        ax.set_ylim(bottom=lo)
    axes[0][0].set_ylabel("validation avg accuracy (%)")
    for ax in axes[0]:
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    return _save(fig, path, dpi=110)


def plot_curves(curves: pd.DataFrame, path: Path,
                rule: Callable[[Any], int | None]) -> Path | None:
    """Validation average accuracy per epoch of the pilot curve runs, one panel per data set,
    the epoch-budget ``rule``'s epoch of each curve dotted (PNG;
    :func:`eegmtl.experiments.vision_converged.flattening_epoch`)."""
    if curves is None or curves.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    datasets = [d for d in _DS if d in set(curves["dataset"])]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.6),
                             squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for (method, seed), g in curves[curves["dataset"] == d].groupby(["method", "seed"]):
            g = g.sort_values("epoch")
            ax.plot(g["epoch"] + 1, 100 * g["val_avg_accuracy"], marker=".",
                    label=f"{method} (seed {seed})")
            e = rule(g["val_avg_accuracy"].to_numpy())
            if e is not None:
                ax.axvline(e, ls=":", color=ax.lines[-1].get_color(), lw=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(f"LeNet, {_DS[d]}, Adam 1e-3, bs 256", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        top = 100 * curves[curves["dataset"] == d]["val_avg_accuracy"].max()
        ax.set_ylim(top - 6, top + 0.5)
    axes[0][0].set_ylabel("validation avg accuracy (%)")
    return _save(fig, path, dpi=120)
