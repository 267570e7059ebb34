"""Train MixNet subject-dependently on BCIC IV 2b with the competition split.

For each subject: train on sessions 1-3 (360 trials; a stratified 20 % of them is held out as
MixNet's validation set for interleaved validation, gradient blending, the LR schedule and early
stopping), test on sessions 4-5 (240 trials). MixNet's subject-dependent defaults (Autthasan et
al., IEEE IoT-J 2024; ``eegmtl.estimator.MixNetClassifier(protocol="sd")``): filter-bank CSP
(9 bands, U = 2), latent 4, margin 0.1, batch 32, Adam 1e-3 with plateau halving, <= 200 epochs,
early stopping after 20, adaptive gradient blending with warm-up 7.

Prints per-subject accuracy, the mean ± SD over subjects and the wall time, and writes one tidy
record per subject (DESIGN.md schema) to ``--out`` (default
``pipelines/results/mixnet_sd_main.csv``; ``--quick`` writes ``mixnet_sd_main_quick.csv``).

Usage::

    python pipelines/train_mixnet.py                         # all 9 subjects (~10 min on 2 cores)
    python pipelines/train_mixnet.py --subjects 4 8 --max-epochs 50
    python pipelines/train_mixnet.py --mtl pcgrad            # any MTL method of the core
    python pipelines/train_mixnet.py --quick                 # subject 4, 5 epochs (smoke test)

Data: ``$EEGMTL_BCI2B_DIR`` or ``$EEGMTL_DATA_DIR/bcic_iv_2b`` (falls back to the checkout's
sibling ``../shared/data`` when neither is set).
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # the wall time includes the imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")

from eegmtl.config import results_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = results_dir(default=REPO / "pipelines" / "results") / "mixnet_sd_main.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", type=int, nargs="+", default=list(range(1, 10)),
                   help="subjects 1-9 (default: all)")
    p.add_argument("--max-epochs", type=int, default=200, help="epoch cap (MixNet: 200)")
    p.add_argument("--mtl", default="blending",
                   help="MTL method: blending (MixNet), ew, rlw, uw, dwa, pcgrad, cagrad, mgda, "
                        "aligned_mtl, nash_mtl, f-pcgrad, ...")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=42, help="random_state of every fit")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None, help=f"record CSV (default {DEFAULT_OUT})")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: subject 4 only, at most 5 epochs")
    p.add_argument("--verbose", action="store_true", help="progress bar per fit")
    args = p.parse_args(argv)
    if args.quick:
        args.subjects = [4]
        args.max_epochs = min(args.max_epochs, 5)
    if args.out is None:
        args.out = DEFAULT_OUT.with_name("mixnet_sd_main_quick.csv") if args.quick else DEFAULT_OUT
    return args


def _default_data_dir() -> None:
    if not os.environ.get("EEGMTL_BCI2B_DIR") and not os.environ.get("EEGMTL_DATA_DIR"):
        sibling = REPO.parent / "shared" / "data"
        if sibling.is_dir():
            os.environ["EEGMTL_DATA_DIR"] = str(sibling)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _default_data_dir()
    import numpy as np
    import pandas as pd
    import torch

    from eegmtl.eeg.datasets import load_bci2b, parse_subjects
    from eegmtl.estimator import MixNetClassifier
    from eegmtl.evaluation.protocols import DEFAULT_DATASET, compute_metrics
    from eegmtl.evaluation.results import config_hash, library_versions, write_records

    torch.set_num_threads(args.threads)
    subjects = parse_subjects(args.subjects)
    pipeline = "MixNet" if args.mtl == "blending" else f"MixNet+{args.mtl}"
    params = dict(protocol="sd", mtl=args.mtl, max_epochs=args.max_epochs, device=args.device,
                  random_state=args.seed, verbose=args.verbose)
    config = {k: v for k, v in MixNetClassifier(**params).get_params().items()
              if k not in ("random_state", "verbose", "device", "checkpoint_dir")}
    config_json = json.dumps(config, sort_keys=True, default=str)
    chash = config_hash(json.loads(config_json))
    versions = json.dumps(library_versions(), sort_keys=True)
    print(f"MixNet subject-dependent, competition split (train sessions 1-3, test 4-5); "
          f"mtl={args.mtl}, max_epochs={args.max_epochs}, seed={args.seed}, "
          f"threads={args.threads}, device={args.device}")
    records = []
    for s in subjects:
        X, y, meta = load_bci2b(subjects=s, units="uV")
        train = meta["session_index"].to_numpy() <= 3
        est = MixNetClassifier(**params)
        t0 = time.perf_counter()
        est.fit(X[train], y[train])
        fit_time = time.perf_counter() - t0
        m = compute_metrics(est, X[~train], y[~train])
        records.append({
            "dataset": DEFAULT_DATASET, "protocol": "subject_dependent", "pipeline": pipeline,
            "subject": s, "fold": 0, "seed": args.seed, **m, "score": m["roc_auc"],
            "samples": int(train.sum()), "time": fit_time,
            "n_epochs_trained": est.n_epochs_trained_, "config_hash": chash,
            "config": config_json, "versions": versions, "samples_test": int((~train).sum()),
            "split": "competition: train sessions 1-3 (20% stratified validation), test 4-5",
            "best_epoch": est.best_epoch_, "device": est.device_,
        })
        print(f"  subject {s}: accuracy {m['accuracy']:.4f}  kappa {m['kappa']:.3f}  "
              f"epochs {est.n_epochs_trained_:3d} (best {est.best_epoch_})  fit {fit_time:6.1f} s",
              flush=True)
        write_records(pd.DataFrame(records), args.out)  # rewritten after every subject
    acc = np.array([r["accuracy"] for r in records])
    sd = acc.std(ddof=1) if len(acc) > 1 else float("nan")
    print(f"mean accuracy over {len(acc)} subject(s): {100 * acc.mean():.2f} ± {100 * sd:.2f} %")
    print(f"records: {args.out}")
    print(f"wall time: {time.perf_counter() - _T_START:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
