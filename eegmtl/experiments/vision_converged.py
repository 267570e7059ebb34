"""Summary of the converged-budget vision grid: mean ± SD over seeds, paired claim verdicts,
validation curves and the epoch-budget rule (``vision_converged_summary.md``,
``vision_converged_curves.png``, drawn by :mod:`eegmtl.experiments.vision_converged_plots`).

Claims tested (per data set): **F-X > X** for X in {MGDA, PCGrad, CAGrad, IMTL-G} (Phan et al.,
F-MTL, ICCV 2025, Table 1) and **RLW ≥ EW** (Lin et al., RLW, TMLR 2022, Table 1 and §5).
For a claim "A > B" (or "A ≥ B") the per-seed paired differences d_s = acc_A(s) − acc_B(s) of
the average test accuracy are taken over the seeds where both runs exist; with their mean d̄,
their standard deviation s_d and the seed-to-seed standard deviation of the two methods'
accuracies over the same seeds, pooled, s_seed = √((s_A² + s_B²) / 2) (all ddof 1), the noise
level is n = max(s_d, s_seed):

- **within noise** when |d̄| ≤ n (the mean difference is no larger than the spread of the
  paired differences, nor than what one more seed moves either method by),
- **holds** when d̄ > n, **does not hold** when d̄ < −n;
- fewer than 2 paired seeds: no verdict (``1 seed``); fewer seeds than the grid's 3: the
  verdict is marked *partial*.

Only the records present are used, so a partial grid gives partial verdicts.

Epoch budget rule (:func:`flattening_epoch`): the budget is the first epoch e after which the
best-so-far validation average accuracy gains less than ``min_gain`` (0.2 points) over the
next ``window`` (:data:`WINDOW` = 4) epochs, and not before it has made 95 % of the curve's
whole gain (:func:`gain_fraction_epoch`), taken as the maximum over the curves: the
``curves`` preset's long pilot runs (EW on each data set, F-PCGrad on MultiMNIST). The budget
is one per data set (:data:`~eegmtl.experiments.vision_presets.CONVERGED_EPOCHS`); the
summary applies the rule to the pilot curves and, per data set, to each method's validation
curve averaged over its seeds in the grid's own per-epoch history (a single seed's curve
carries ~0.1 points of validation noise, which the best-so-far maximum turns into gains). Records of
a data set at another epoch budget (e.g. runs finished before a budget was raised; the runs
themselves are extended where their checkpoints remain) are kept and reported apart, never
mixed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.experiments.vision_presets import DATASET_LABELS

__all__ = ["GAIN_FRACTION", "WINDOW", "flattening_epoch", "gain_fraction_epoch",
           "paired_verdict", "split_budgets",
           "summarize_converged", "with_former_budgets", "write_converged_summary"]

_DS = DATASET_LABELS
_FULL_SEEDS = 3


#: Epochs over which the rule looks for a gain (4: with 2, single-seed validation noise of
#: ~0.1 points made the first MultiMNIST curves look flat at epoch 8 while they still gained
#: 0.3-0.7 points by epoch 12-14).
WINDOW = 4
#: Share of a pilot curve's whole validation gain a budget must reach
#: (:func:`gain_fraction_epoch`; the window rule alone took a 4-epoch pause of the
#: MultiFashion+MNIST pilot at epoch 10 for its plateau, 1 point below where it levelled off).
GAIN_FRACTION = 0.95
#: Window of the rule on the grid's seed-mean curves (the check of a budget from inside it).
_GRID_WINDOW = 2


def flattening_epoch(val_acc: Any, min_gain: float = 0.002, window: int = WINDOW) -> int | None:
    """First epoch count e (1-based: after e epochs) such that the best-so-far validation
    accuracy gains less than ``min_gain`` over the next ``window`` epochs; ``None`` when the
    curve is too short to tell."""
    best = np.maximum.accumulate(np.asarray(val_acc, dtype=float))
    for e in range(1, len(best) - window + 1):
        if best[e - 1 + window] - best[e - 1] < min_gain:
            return e
    return None


def gain_fraction_epoch(val_acc: Any, fraction: float = GAIN_FRACTION) -> int | None:
    """First epoch count e (1-based) at which the best-so-far validation accuracy has made
    ``fraction`` of the curve's whole gain (first epoch → best epoch); ``None`` for a curve
    of fewer than 2 epochs. Meant for long pilot curves: it reads the plateau off the end of
    the curve, so a pause on the way up does not pass for it."""
    v = np.asarray(val_acc, dtype=float)
    if v.size < 2:
        return None
    best = np.maximum.accumulate(v)
    target = v[0] + fraction * (best[-1] - v[0])
    return int(np.argmax(best >= target - 1e-12)) + 1


def paired_verdict(diffs: Any, strict: bool = True,
                   seed_sd: float = 0.0) -> tuple[str, float, float]:
    """Verdict of a claim from per-seed paired differences (points).

    Parameters
    ----------
    diffs : array-like
        d_s = acc_A(s) − acc_B(s) per paired seed, in points.
    strict : bool, default True
        ``False`` for "≥" claims (same rule).
    seed_sd : float, default 0
        Pooled seed-to-seed SD s_seed of the two methods' accuracies (points); the noise level
        is ``max(SD(d), seed_sd)`` (module docstring).

    Returns
    -------
    verdict, mean, sd : str, float, float
        ``sd`` is SD(d) (ddof 1); NaN with fewer than 2 seeds.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return ("1 seed" if d.size else "no data"), float(d.mean()) if d.size else np.nan, np.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if abs(mean) <= max(sd, float(seed_sd)):
        verdict = "within noise"
    else:
        verdict = "holds" if mean > 0 else "does not hold"
    if d.size < _FULL_SEEDS:
        verdict += f" (partial: {d.size} seeds)"
    return verdict, mean, sd


def _pooled_seed_sd(a: pd.Series, b: pd.Series) -> float:
    """√((s_A² + s_B²) / 2) of two methods' accuracies over the same seeds (0 for one seed)."""
    if len(a) < 2:
        return 0.0
    return float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2))


def _cell(v: pd.Series) -> str:
    v = v.dropna().astype(float) * 100
    if v.empty:
        return "–"
    return f"{v.iloc[0]:.2f} (1 seed)" if len(v) == 1 else \
        f"{v.mean():.2f} ± {v.std(ddof=1):.2f} (n={len(v)})"


def _claims() -> list[tuple[str, str, bool]]:
    from eegmtl.experiments.vision_presets import FLAT_PAIRS

    return [(flat, plain, True) for plain, flat in FLAT_PAIRS] + [("rlw", "ew", False)]


def _claim_table(avg: pd.DataFrame, datasets: list[str]) -> list[str]:
    """Markdown rows of the claim verdicts of ``avg`` (one ``task="avg"`` row per run)."""
    out = ["| claim | data set | d per seed | mean d ± SD | seed SD | positive seeds | verdict |",
           "|---|---|---|---|---|---|---|"]
    for a, b, strict in _claims():
        for d in datasets:
            sel = avg[avg["dataset"] == d]
            pa = sel[sel["method"] == a].set_index("seed")["avg_accuracy"]
            pb = sel[sel["method"] == b].set_index("seed")["avg_accuracy"]
            seeds = sorted(set(pa.index) & set(pb.index))
            if not seeds:
                continue
            diffs = [(float(pa[s]) - float(pb[s])) * 100 for s in seeds]
            seed_sd = _pooled_seed_sd(pa[seeds] * 100, pb[seeds] * 100)
            verdict, mean, sd = paired_verdict(diffs, strict, seed_sd)
            per_seed = ", ".join(f"s{s}: {x:+.2f}" for s, x in zip(seeds, diffs))
            spread = f"{mean:+.2f} ± {sd:.2f}" if np.isfinite(sd) else f"{mean:+.2f}"
            pooled = f"{seed_sd:.2f}" if len(seeds) > 1 else "–"
            pos = sum(x > 0 for x in diffs) if strict else sum(x >= 0 for x in diffs)
            out.append(f"| {a} {'>' if strict else '≥'} {b} | {_DS[d]} | {per_seed} | {spread} "
                       f"| {pooled} | {pos} of {len(diffs)} | {verdict} |")
    return out


def split_budgets(records: pd.DataFrame, budgets: dict[str, int],
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``task="avg"`` rows of ``records`` at their data set's budget, and the others."""
    if records.empty:
        return records, records
    avg = records[records["task"] == "avg"]
    on_budget = avg["epochs"] == avg["dataset"].map(budgets)
    return avg[on_budget], avg[~on_budget]


def _other_budgets(other: pd.DataFrame, history: pd.DataFrame | None) -> list[str]:
    """Claim tables (and budget checks) of the records at budgets other than the current
    ones, per budget."""
    if other.empty:
        return []
    out = ["", "## Records at another epoch budget (not in the tables above)", "",
           "Runs of a data set at a budget other than its current one (finished before the "
           "budget was raised; each is extended to the current budget from its checkpoint where "
           "that is still on the machine, else rerun). Their claims, for comparison:", ""]
    for e, g in other.groupby("epochs"):
        out += [f"**{int(e)} epochs**: " + ", ".join(
            f"{_DS.get(d, d)} {len(x)} runs" for d, x in g.groupby("dataset")), ""]
        out += _claim_table(g, [d for d in _DS if d in set(g["dataset"])])
        if history is not None and not history.empty:
            out += _budget_check(history, g, dict.fromkeys(_DS, int(e)),
                                 heading=f"### {int(e)} epochs: budget check on the grid's "
                                 "own validation curves")
        out += [""]
    return out


def summarize_converged(records: pd.DataFrame, history: pd.DataFrame | None = None,
                        curves: pd.DataFrame | None = None,
                        budgets: dict[str, int] | None = None) -> str:
    """Markdown summary of the converged grid from its records (and per-epoch history).

    ``budgets``: epochs per canonical data-set name whose records make the tables (default
    :data:`~eegmtl.experiments.vision_presets.CONVERGED_EPOCHS`); records at other budgets
    are listed apart.
    """
    from eegmtl.experiments.vision_presets import CONVERGED_EPOCHS, PRESETS

    budgets = dict(CONVERGED_EPOCHS if budgets is None else budgets)

    out = ["# Vision benchmark at a converged budget (LeNet, full MultiMNIST family)", "",
           "Generated by `eegmtl vision --preset converged` from `vision_converged.csv` (do not "
           "edit by hand); verdicts use only the records present.", ""]
    preset = PRESETS["converged"]
    expected = len(preset.items)
    avg, other = split_budgets(records, budgets)
    n_done = len(avg)
    out += [f"Runs finished: **{n_done} of {expected}**"
            + (" — the grid is **partial**; verdicts below cover the runs present."
               if n_done < expected else "."), ""]
    if curves is not None and not curves.empty:
        out += _curve_lines(curves)
    if avg.empty:
        return "\n".join(out + ["No records at the current budgets yet.", ""]
                         + _other_budgets(other, history))
    cfg = json.loads(avg.iloc[0]["config"])
    out += ["## Protocol", "",
            f"LeNet, {cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, "
            "epochs per data set, the same for every method: "
            + ", ".join(f"{_DS[d]} **{e}**" for d, e in budgets.items()) + "; training pairs "
            f"{int(avg.iloc[0]['n_train'])} (validation {int(avg.iloc[0]['n_val'])}, test "
            f"{int(avg.iloc[0]['n_test'])}); selection: {cfg['selection']}. Flat variants: "
            f"{cfg.get('flat') or 'F-MTL preset (ASAM ρ=2, joint norm), batched exact update'}"
            f"; conflict probe every {cfg['conflict_every']} steps.", ""]
    datasets = [d for d in _DS if d in set(avg["dataset"])]
    methods = list(dict.fromkeys(m for it in preset.items for m in [it[2]]
                                 if m in set(avg["method"])))
    head = "| method | " + " | ".join(_DS[d] for d in datasets) + " |"
    rule = "|---" * (len(datasets) + 1) + "|"
    out += ["## Average test accuracy (%), mean ± SD over seeds", "", head, rule]
    for m in methods:
        out.append(f"| {m} | " + " | ".join(
            _cell(avg[(avg["method"] == m) & (avg["dataset"] == d)]["avg_accuracy"])
            for d in datasets) + " |")
    out += ["", "## Claims: per-seed paired differences of average test accuracy (points)", "",
            "Rule: noise n = max(SD(d), seed SD), seed SD = the two methods' accuracy SDs over "
            "the paired seeds, pooled; within noise when |mean d| ≤ n; holds when mean d > n; "
            "does not hold when mean d < −n; fewer than 3 paired seeds = partial.", ""]
    out += _claim_table(avg, datasets)
    out += ["", "## Gradient-conflict rate (fraction of probed mini-batches)", "", head, rule]
    for m in methods:
        cells = []
        for d in datasets:
            v = avg[(avg["method"] == m) & (avg["dataset"] == d)]["conflict_rate"].dropna()
            cells.append(f"{v.mean():.2f}" if len(v) else "–")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    if history is not None and not history.empty:
        out += _budget_check(history, avg, budgets)
    out += _other_budgets(other, history)
    out += ["", f"Sum of the fit times in the records: {avg['time'].sum() / 3600:.1f} h "
            f"(device {avg.iloc[0]['device']}).", ""]
    return "\n".join(out)


def _curve_lines(curves: pd.DataFrame) -> list[str]:
    from eegmtl.experiments.vision_presets import CONVERGED_EPOCHS, RAISED_BUDGETS

    lines = ["## Epoch budget per data set from the pilot curves", "",
             "Two readings of each pilot's best-so-far validation average accuracy: *flat "
             f"after* = the first epoch e after which it gains < 0.2 points over the next "
             f"{WINDOW} epochs; *{100 * GAIN_FRACTION:.0f} % of gain* = the first epoch at which "
             f"it has made {100 * GAIN_FRACTION:.0f} % of the curve's whole gain (first epoch → "
             "best). A data set's budget must be at least the larger of the two, over its "
             "curves (`vision_converged_curves.png`, records "
             "`vision_converged_curves_epochs.csv`; per epoch: validation avg accuracy, %).", "",
             "| data set | run | epochs | val avg acc per epoch (%) | flat after | "
             f"{100 * GAIN_FRACTION:.0f} % of gain |", "|---|---|---|---|---|---|"]
    verdicts = []
    for d in [d for d in _DS if d in set(curves["dataset"])]:
        found = []
        for (method, seed), g in curves[curves["dataset"] == d].groupby(["method", "seed"]):
            vals = g.sort_values("epoch")["val_avg_accuracy"].to_numpy()
            e, f = flattening_epoch(vals), gain_fraction_epoch(vals)
            found.append(None if e is None else max(e, f or 0))
            lines.append(f"| {_DS[d]} | {method} seed {seed} | {len(vals)} | "
                         + " ".join(f"{100 * v:.2f}" for v in vals)
                         + f" | {e if e is not None else 'not yet'} | {f} |")
        budget = CONVERGED_EPOCHS[d]
        if all(e is not None for e in found):
            rule = max(found)  # type: ignore[type-var]
            verdict = f"{_DS[d]}: rule {rule}, grid budget {budget} — " + (
                "meets the rule" if budget >= rule else "**shorter than the rule asks**")
        else:
            verdict = (f"{_DS[d]}: grid budget {budget} — the curves have not flattened "
                       "yet (some curve is still gaining)")
        if d in RAISED_BUDGETS:
            former, why = RAISED_BUDGETS[d]
            verdict += f"; raised from {former} epochs: {why}"
        verdicts.append(verdict)
    return lines + [""] + [f"- {v}" for v in verdicts] + [""]


def _budget_check(history: pd.DataFrame, avg: pd.DataFrame, budgets: dict[str, int],
                  heading: str = "## Epoch budget check on the grid's own validation curves",
                  ) -> list[str]:
    """Per data set: the budget rule on each method's seed-averaged validation curve (the
    runs in ``avg`` only), and the runs whose own best-so-far curve still gained ≥ 0.2 points
    over their last 2 epochs."""
    hist = history[history["config_hash"].isin(set(avg["config_hash"]))]
    if hist.empty:
        return []
    lines = ["", heading, "",
             "Per data set and method: the rule (first epoch after which the best-so-far "
             f"validation accuracy gains < 0.2 points over the next {_GRID_WINDOW} epochs; the "
             "seed mean averages out much of the noise the pilots' 4-epoch window guards "
             "against) on the method's validation curve averaged over its seeds; the budget "
             "meets the rule when every method's curve has flattened within it. Late gains: "
             "runs whose own best-so-far "
             "curve gained ≥ 0.2 points over their last 2 epochs (single-seed curves carry "
             "~0.1 points of validation noise). Curves: `vision_converged_grid_curves.png`.", "",
             "| data set | budget | runs | rule per method (seed-mean curve) | rule met | "
             "late gains |", "|---|---|---|---|---|---|"]
    for d in [d for d in _DS if d in set(hist["dataset"])]:
        h = hist[hist["dataset"] == d]
        budget = budgets[d]
        found, late = {}, 0
        for m, g in h.groupby("method", sort=False):
            mean_curve = g.groupby("epoch")["val_avg_accuracy"].mean().sort_index()
            found[m] = flattening_epoch(mean_curve.to_numpy(), window=_GRID_WINDOW)
        for _, g in h.groupby("config_hash"):
            v = np.maximum.accumulate(g.sort_values("epoch")["val_avg_accuracy"].to_numpy(float))
            late += int(len(v) > _GRID_WINDOW
                        and 100 * (v[-1] - v[-1 - _GRID_WINDOW]) >= 0.2)
        met = all(e is not None and e <= budget for e in found.values())
        rules = ", ".join(f"{m} {e if e is not None else f'>{budget - _GRID_WINDOW}'}"
                          for m, e in found.items())
        lines.append(f"| {_DS[d]} | {budget} | {h['config_hash'].nunique()} | {rules} | "
                     f"{'yes' if met else '**no**'} | {late} |")
    return lines


def with_former_budgets(avg: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``avg`` (runs at the current budgets) plus, for each data set × method of a raised
    budget (:data:`~eegmtl.experiments.vision_presets.RAISED_BUDGETS`) with no run at the
    current budget yet, its runs at the former budget -- never the two budgets mixed."""
    from eegmtl.experiments.vision_presets import RAISED_BUDGETS

    if other.empty:
        return avg
    key = ["dataset", "method"]
    unmatched = ~pd.MultiIndex.from_frame(other[key]).isin(pd.MultiIndex.from_frame(avg[key]))
    former = other["dataset"].map(lambda d: RAISED_BUDGETS.get(d, (None,))[0])
    return pd.concat([avg, other[(other["epochs"] == former).to_numpy() & unmatched]])


def write_converged_summary(folder: Path) -> Path:
    """Write ``vision_converged_summary.md`` (and the curve PNG) in ``folder`` from the
    records present; returns the summary's path."""
    from eegmtl.benchmarks.records import load_history, load_records

    folder = Path(folder)
    rec_path = folder / "vision_converged.csv"
    records = load_records(rec_path) if rec_path.is_file() else pd.DataFrame()
    hist_path = folder / "vision_converged_epochs.csv"
    history = load_history(hist_path) if hist_path.is_file() else None
    curve_path = folder / "vision_converged_curves_epochs.csv"
    curves = load_history(curve_path) if curve_path.is_file() else None
    done_path = folder / "vision_converged_curves.csv"
    if curves is not None and done_path.is_file():  # epochs of finished runs only (a run
        done = load_records(done_path)  # restarted under another configuration left its
        done = done[done["task"] == "avg"]  # epochs), the longest finished run of each pilot
        done = done.sort_values("epochs").groupby(["dataset", "method", "seed"]).tail(1)
        curves = curves[curves["config_hash"].isin(set(done["config_hash"]))]
    from eegmtl.experiments.vision_converged_plots import plot_curves, plot_grid_curves

    if curves is not None:
        plot_curves(curves, folder / "vision_converged_curves.png", rule=flattening_epoch)
    if history is not None and not records.empty:
        from eegmtl.experiments.vision_presets import CONVERGED_EPOCHS

        # per data set × method the runs of one budget: an extended run repeats its shorter
        # run's epochs; a raised budget's former runs are drawn until the extended ones exist
        plot_grid_curves(history, with_former_budgets(*split_budgets(records, CONVERGED_EPOCHS)),
                         folder / "vision_converged_grid_curves.png")
    return atomic_write(folder / "vision_converged_summary.md",
                        summarize_converged(records, history, curves))
