"""Train MixNet subject-dependently on BCIC IV 2b with the competition split.

For each subject: train on sessions 1-3 (360 trials; a stratified 20 % of them is held out as
MixNet's validation set for interleaved validation, gradient blending, the LR schedule and early
stopping), test on sessions 4-5 (240 trials). MixNet's subject-dependent defaults (Autthasan et
al., IEEE IoT-J 2024; ``eegmtl.mixnet.MixNetClassifier(protocol="sd")``): filter-bank CSP
(9 bands, U = 2), latent 4, margin 0.1, batch 32, Adam 1e-3 with plateau halving, <= 200 epochs,
early stopping after 20, adaptive gradient blending with warm-up 7.

Prints per-subject accuracy, the mean ± SD over subjects and the wall time, and writes one tidy
record per subject (the result-record schema) to ``--out`` (default
``<results folder>/mixnet_sd_main.csv``; ``--quick`` writes ``mixnet_sd_main_quick.csv``).

Usage::

    eegmtl train                          # all 9 subjects (~10 min on 2 cores)
    eegmtl train --subjects 4 8 --max-epochs 50
    eegmtl train --mtl pcgrad             # any MTL method of the core
    eegmtl train --quick                  # subject 4, 5 epochs (smoke test)

Data: ``$EEGMTL_BCI2B_DIR`` or ``$EEGMTL_DATA_DIR/bcic_iv_2b`` (falls back to the checkout's
sibling ``../shared/data`` when neither is set).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from eegmtl.config import RESULTS_DIR_HELP, checkout_root, results_dir
from eegmtl.experiments._common import elapsed_s, positive_int

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl train``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--subjects", type=int, nargs="+", default=list(range(1, 10)),
                   help="subjects 1-9 (default: all)")
    p.add_argument("--max-epochs", type=positive_int, default=200,
                   help="epoch cap (MixNet: 200)")
    p.add_argument("--mtl", default="blending",
                   help="MTL method: blending (MixNet), ew, rlw, uw, dwa, pcgrad, cagrad, mgda, "
                        "aligned_mtl, nash_mtl, f-pcgrad, ...")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=42, help="random_state of every fit")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None,
                   help=f"record CSV (default <results folder>/mixnet_sd_main.csv; "
                        f"{RESULTS_DIR_HELP})")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: subject 4 only, at most 5 epochs")
    p.add_argument("--verbose", action="store_true", help="progress bar per fit")


def default_data_dir() -> None:
    """Point ``$EEGMTL_DATA_DIR`` at the checkout's sibling ``shared/data`` when no data
    location is set and that folder exists."""
    root = checkout_root()
    if root is None or os.environ.get("EEGMTL_BCI2B_DIR") or os.environ.get("EEGMTL_DATA_DIR"):
        return
    sibling = root.parent / "shared" / "data"
    if sibling.is_dir():
        os.environ["EEGMTL_DATA_DIR"] = str(sibling)


def run(args: argparse.Namespace) -> int:
    """Train and test MixNet per subject as parsed by :func:`add_arguments`."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    if args.quick:
        args.subjects = [4]
        args.max_epochs = min(args.max_epochs, 5)
    if args.out is None:
        args.out = results_dir() / ("mixnet_sd_main_quick.csv" if args.quick
                                    else "mixnet_sd_main.csv")
    default_data_dir()
    import numpy as np
    import pandas as pd
    import torch

    from eegmtl._io import config_hash, library_versions, machine_info
    from eegmtl.eeg.datasets import load_bci2b, parse_subjects
    from eegmtl.evaluation.records import write_records
    from eegmtl.evaluation.runner import DEFAULT_DATASET
    from eegmtl.evaluation.scoring import compute_metrics
    from eegmtl.mixnet import MixNetClassifier
    from eegmtl.mixnet.config import recorded_settings

    torch.set_num_threads(args.threads)
    subjects = parse_subjects(args.subjects)
    pipeline = "MixNet" if args.mtl == "blending" else f"MixNet+{args.mtl}"
    params = dict(protocol="sd", mtl=args.mtl, max_epochs=args.max_epochs, device=args.device,
                  random_state=args.seed, verbose=args.verbose)
    config = recorded_settings(MixNetClassifier(**params).get_params())
    config_json = json.dumps(config, sort_keys=True, default=str)
    chash = config_hash(json.loads(config_json))
    versions = json.dumps(library_versions(), sort_keys=True)
    machine = json.dumps(machine_info(), sort_keys=True)
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
            "best_epoch": est.best_epoch_, "device": est.device_, "machine": machine,
        })
        print(f"  subject {s}: accuracy {m['accuracy']:.4f}  kappa {m['kappa']:.3f}  "
              f"epochs {est.n_epochs_trained_:3d} (best {est.best_epoch_})  fit {fit_time:6.1f} s",
              flush=True)
        write_records(pd.DataFrame(records), args.out)  # rewritten after every subject
    acc = np.array([r["accuracy"] for r in records])
    sd = acc.std(ddof=1) if len(acc) > 1 else float("nan")
    print(f"mean accuracy over {len(acc)} subject(s): {100 * acc.mean():.2f} ± {100 * sd:.2f} %")
    print(f"records: {args.out}")
    print(f"wall time: {elapsed_s():.1f} s")
    return 0


