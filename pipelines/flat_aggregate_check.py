"""How the flat-minima step's two parts compare in MixNet fits, per ``FlatConfig.aggregate``.

Fits MixNet (``MixNet[val-tuned]`` settings, no augmentation) on one subject's training sessions
(its own 20 % validation split) with Aligned-MTL without the flat step, with it (the paper's
``aggregate="separate"``), with ``aggregate="loss_weights"``, and with F-PCGrad, and records per
step the norms of the aggregated loss and flat parts of the shared update (the step's
``loss_part_norm`` / ``flat_norm`` diagnostics) and per epoch the training classification loss
and the validation accuracy. ``--aggregators A B ...`` runs, instead, the flat step of each
named aggregator in both modes (``f-A`` with ``flat.aggregate=separate`` and with
``loss_weights``).
Writes a markdown table (default ``pipelines/results/flat_aggregate_check.md``).

Usage::

    EEGMTL_DATA_DIR=../shared/data python pipelines/flat_aggregate_check.py
    python pipelines/flat_aggregate_check.py --subject 4 --epochs 20 --out /tmp/check.md
    python pipelines/flat_aggregate_check.py --aggregators mgda imtl_g nash_mtl \
        --out pipelines/results/flat_aggregate_check_more.md
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUT = Path(__file__).parent / "results" / "flat_aggregate_check.md"
#: header of the first-epoch ratio column (pipes escaped for markdown)
RATIO_HEADER = "\\|flat\\| / \\|loss\\|, first epoch"
PIPELINES = (
    "MixNet[val-tuned]+mtl[aligned_mtl]",
    "MixNet[val-tuned]+mtl[f-aligned_mtl]",
    "MixNet[val-tuned]+mtl[f-aligned_mtl]+set[flat.aggregate=loss_weights]",
    "MixNet[val-tuned]+mtl[f-pcgrad]",
)


@contextlib.contextmanager
def step_diagnostics() -> Iterator[list[dict[str, float]]]:
    """Collect the flat steps' part norms while the block runs (observation only)."""
    from eegmtl.mtl.step import MTLStep

    seen: list[dict[str, float]] = []
    call = MTLStep.__call__

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = call(self, *args, **kwargs)
        d = result.diagnostics
        if "loss_part_norm" in d:
            seen.append({"loss": float(d["loss_part_norm"]), "flat": float(d["flat_norm"])})
        return result

    MTLStep.__call__ = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        MTLStep.__call__ = call  # type: ignore[method-assign]


def part_ratios(seen: list[dict[str, float]], n_epochs: int) -> dict[str, str]:
    """``first`` / ``ratio``: :func:`spread` of |flat| / |loss| over the first epoch's steps
    (every epoch has the same number) and over all steps of :func:`step_diagnostics`."""
    ratio = np.array([s["flat"] / s["loss"] if s["loss"] > 0 else np.inf for s in seen])
    return {"first": spread(ratio[:len(ratio) // max(n_epochs, 1)]), "ratio": spread(ratio)}


def spread(r: np.ndarray) -> str:
    """Median (min-max) of ``r``, two decimals; "–" when empty."""
    return f"{np.median(r):.2f} ({np.min(r):.2f}-{np.max(r):.2f})" if r.size else "–"


def write_table(out: Path, subject: str, intro: str, notes: str, columns: dict[str, str],
                rows: list[dict[str, Any]]) -> None:
    """Write the markdown report: title, ``intro``, the ratio's definition ended by ``notes``
    (its first word names the unit: fit or run) and one table row per run (``columns``: row
    key -> header, :data:`RATIO_HEADER` for the first-epoch ratio; the first key's value in
    backticks)."""
    from eegmtl._io import atomic_write

    keys = list(columns)
    header = [columns[k] for k in keys]
    lines = [
        f"# Flat-minima step: loss part against flat part ({subject})", "", intro, "",
        "`|flat| / |loss|`: per flat step, the norm of the aggregated flat part of the shared "
        "update over that of the loss part (median, range), in the first epoch and over the "
        f"whole {notes}", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(keys),
        *(f"| `{r[keys[0]]}` | " + " | ".join(str(r[k]) for k in keys[1:]) + " |" for r in rows),
        ""]
    atomic_write(out, "\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


def both_modes(aggregators: list[str]) -> list[str]:
    """``MixNet[val-tuned]+mtl[f-A]`` with ``flat.aggregate=separate`` and with
    ``flat.aggregate=loss_weights``, per aggregator ``A``."""
    return [f"MixNet[val-tuned]+mtl[f-{a}]+set[flat.aggregate={mode}]" for a in aggregators
            for mode in ("separate", "loss_weights")]


def main(argv: list[str] | None = None) -> int:
    """Run the check and write the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--subject", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aggregators", nargs="+", metavar="NAME",
                        help="run the flat step of these aggregators in both modes instead")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import torch

    from eegmtl.evaluation.methods import make_estimator
    from eegmtl.evaluation.runner import load_default_data

    torch.set_num_threads(1)
    X, y, meta = load_default_data([args.subject])
    sessions = meta["session"].astype(str).to_numpy()
    train = np.isin(sessions, np.unique(sessions)[:3])
    rows = []
    for name in both_modes(args.aggregators) if args.aggregators else PIPELINES:
        est = make_estimator(name)
        est.set_params(max_epochs=args.epochs, patience=None, random_state=args.seed,
                       device="cpu")
        t0 = time.perf_counter()
        with step_diagnostics() as seen:
            est.fit(X[train], y[train])
        h = est.history_
        ce = h["train_classification_loss"].to_numpy()
        rows.append({
            "pipeline": name, **part_ratios(seen, len(ce)),
            "stalled": int(np.argmax(ce < 0.65)) if (ce < 0.65).any() else len(ce),
            "ce": " ".join(f"{v:.2f}" for v in ce),
            "val": f"{h['val_classification_accuracy'].iloc[-1] * 100:.1f}",
            "best": f"{h['val_classification_accuracy'].max() * 100:.1f}",
            "time": f"{time.perf_counter() - t0:.0f}",
        })
        r = rows[-1]
        print(f"{name}: {r['first']} / {r['ratio']} | epochs before CE < 0.65: {r['stalled']}",
              file=sys.stderr)
    cmd = (f"python pipelines/flat_aggregate_check.py --subject {args.subject} --epochs "
           f"{args.epochs} --seed {args.seed}"
           f"{' --aggregators ' + ' '.join(args.aggregators) if args.aggregators else ''}"
           f"{' --out ' + str(args.out) if args.out != DEFAULT_OUT else ''}")
    write_table(
        args.out, "MixNet, BCIC IV 2b",
        f"Generated by `{cmd}` (do not edit by hand). Subject {args.subject}, training sessions "
        f"1-3 (20 % stratified validation split), {args.epochs} epochs without early stopping, "
        f"seed {args.seed}, one CPU thread.",
        "fit. `epochs before CE < 0.65`: epochs whose training classification loss stayed at or "
        "above 0.65 (chance is 0.69).",
        {"pipeline": "pipeline", "first": RATIO_HEADER, "ratio": "all epochs",
         "stalled": "epochs before CE < 0.65", "ce": "train CE per epoch",
         "val": "val acc last (%)", "best": "val acc best (%)", "time": "fit (s)"},
        rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
