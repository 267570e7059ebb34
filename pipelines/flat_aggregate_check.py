"""How the flat-minima step's two parts compare in MixNet fits, per ``FlatConfig.aggregate``.

Fits MixNet (``MixNet[val-tuned]`` settings, no augmentation) on one subject's training sessions
(its own 20 % validation split) with Aligned-MTL without the flat step, with it (the paper's
``aggregate="separate"``), with ``aggregate="loss_weights"``, and with F-PCGrad, and records per
step the norms of the aggregated loss and flat parts of the shared update (the step's
``loss_part_norm`` / ``flat_norm`` diagnostics) and per epoch the training classification loss
and the validation accuracy. ``--aggregators A B ...`` runs, instead, the flat step of each
named aggregator in both modes (``f-A`` and ``f-A`` with ``flat.aggregate=loss_weights``).
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


def both_modes(aggregators: list[str]) -> list[str]:
    """``MixNet[val-tuned]+mtl[f-A]`` and the same with ``flat.aggregate=loss_weights``, per
    aggregator ``A``."""
    return [f"MixNet[val-tuned]+mtl[f-{a}]{mode}" for a in aggregators
            for mode in ("", "+set[flat.aggregate=loss_weights]")]


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

    from eegmtl._io import atomic_write
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
        ratio = np.array([s["flat"] / s["loss"] if s["loss"] > 0 else np.inf for s in seen])
        first = ratio[:len(ratio) // len(ce)]  # the same number of steps in every epoch

        def spread(r: np.ndarray) -> str:
            return f"{np.median(r):.2f} ({np.min(r):.2f}-{np.max(r):.2f})" if r.size else "–"

        rows.append({
            "pipeline": name, "ratio": spread(ratio), "first": spread(first),
            "stalled": int(np.argmax(ce < 0.65)) if (ce < 0.65).any() else len(ce),
            "ce": " ".join(f"{v:.2f}" for v in ce),
            "val": f"{h['val_classification_accuracy'].iloc[-1] * 100:.1f}",
            "best": f"{h['val_classification_accuracy'].max() * 100:.1f}",
            "time": f"{time.perf_counter() - t0:.0f}",
        })
        r = rows[-1]
        print(f"{name}: {r['first']} / {r['ratio']} | epochs before CE < 0.65: {r['stalled']}",
              file=sys.stderr)
    lines = [
        "# Flat-minima step: loss part against flat part (MixNet, BCIC IV 2b)", "",
        f"Generated by `python pipelines/flat_aggregate_check.py --subject {args.subject} "
        f"--epochs {args.epochs} --seed {args.seed}"
        f"{' --aggregators ' + ' '.join(args.aggregators) if args.aggregators else ''}"
        f"{' --out ' + str(args.out) if args.out != DEFAULT_OUT else ''}` (do not edit by "
        f"hand). Subject "
        f"{args.subject}, training sessions 1-3 (20 % stratified validation split), "
        f"{args.epochs} epochs without early stopping, seed {args.seed}, one CPU thread.", "",
        "`|flat| / |loss|`: per flat step, the norm of the aggregated flat part of the shared "
        "update over that of the loss part (median, range), in the first epoch and over the "
        "whole fit. `epochs before CE < 0.65`: epochs "
        "whose training classification loss stayed at or above 0.65 (chance is 0.69).", "",
        "| pipeline | \\|flat\\| / \\|loss\\|, first epoch | all epochs | "
        "epochs before CE < 0.65 | train CE per epoch | val acc last (%) | val acc best (%) | "
        "fit (s) |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| `{r['pipeline']}` | {r['first']} | {r['ratio']} | {r['stalled']} | {r['ce']} | "
          f"{r['val']} | {r['best']} | {r['time']} |" for r in rows), ""]
    atomic_write(args.out, "\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
