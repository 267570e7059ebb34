"""Cross-subject evaluation of registry pipelines by MOABB, with its target-access modes.

Every method of the registry (``CSP+LDA``, ``TS+SVM``, ``MixNet``, ``EEGNet``, ``ATCNet+mtl[...]``,
...) is run by MOABB's own :class:`moabb.evaluations.CrossSubjectEvaluation` (leave one subject
out, every session of the other subjects for training, each session of the held-out subject
scored on its own) on the local 2b export (:class:`eegmtl.eeg.datasets.BCI2bExport`, paradigm
``LeftRightImagery`` without further filtering), once per ``cs_mode`` (MOABB ≥ 1.7):

``train``
    no target data; ``+EA`` aligns each scored session on its own trials (transductive).
``train_and_target_unlabeled_20p`` / ``_50p`` / ``_full``
    an unlabelled slice of each target session is routed to ``fit``; ``+EA`` fits the target
    reference on it.
``train_and_target_labeled_20p`` / ``_50p``
    a labelled slice is routed; ``+EA`` fits the reference on it and trains on it too.

Each method runs plain and behind :class:`eegmtl.eeg.aligned_classifier.AlignedClassifier`
(``+EA``; source subjects aligned on their own trials). A plain pipeline ignores the routed
target data, so within one mode both are scored on the same trials. Scores: accuracy and
ROC-AUC (MOABB's default for two classes, which a shifted decision threshold does not
change), per target session. MOABB passes no validation fold: a deep pipeline early-stops on
its own stratified 20 % of the training trials (not on held-out subjects as in ``eegmtl
si``). Results are cached by MOABB (HDF5 under ``<results>.hdf5/``) once all target subjects
of a pipeline and mode are done, so an interrupted run resumes at the last finished
pipeline × mode.

Usage::

    eegmtl moabb-si --methods CSP+LDA TS+SVM --subjects 1..9
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.experiments._common import command_line, display_path, elapsed_s, parse_subjects
from eegmtl.experiments.summaries import summary_header

__all__ = ["CS_MODES", "SCORERS", "add_arguments", "evaluate", "run", "summarise"]

#: MOABB's cross-subject target-access modes (``moabb.evaluations.protocols.CrossSubjectMode``)
CS_MODES = ("train", "train_and_target_unlabeled_20p", "train_and_target_unlabeled_50p",
            "train_and_target_unlabeled_full", "train_and_target_labeled_20p",
            "train_and_target_labeled_50p")


def evaluate(methods: list[str], cs_modes: list[str], subjects: list[int], *,
             alignment: tuple[str, ...] = ("none", "ea"), data_dir: str | None = None,
             cache_dir: Path, seed: int = 0, n_jobs: int = 1, progress: bool = True
             ) -> pd.DataFrame:
    """MOABB results (one row per pipeline × target subject × session × mode)."""
    from moabb.evaluations import CrossSubjectEvaluation
    from moabb.paradigms import LeftRightImagery
    from tqdm.auto import tqdm

    from eegmtl.eeg.aligned_classifier import AlignedClassifier
    from eegmtl.eeg.datasets import BCI2bExport
    from eegmtl.evaluation.methods import make_estimator

    dataset = BCI2bExport(path=data_dir, subjects=subjects)
    pipelines = {}
    for m in methods:
        est = make_estimator(m, {"random_state": seed} if _seeded(m) else None,
                             protocol="subject_independent")
        if "none" in alignment:
            pipelines[m] = est
        if "ea" in alignment:
            pipelines[f"{m}+EA"] = AlignedClassifier(est)
    frames = []
    for mode in cs_modes:
        ev = CrossSubjectEvaluation(
            paradigm=LeftRightImagery(fmin=None, fmax=None, scorer=SCORERS), datasets=[dataset],
            random_state=seed, n_jobs=n_jobs, overwrite=False,
            hdf5_path=str(cache_dir / mode), cs_mode=mode)
        for name, pipe in tqdm(pipelines.items(), desc=mode, disable=not progress):
            # one pipeline at a time: MOABB stores a pipeline's results when all its folds end
            with warnings.catch_warnings():  # MOABB's HDF5 writer, on every result
                warnings.filterwarnings("ignore", message="Creating a dataset without passing")
                frames.append(ev.process({name: pipe}).assign(cs_mode=mode))
    return pd.concat(frames, ignore_index=True)


def _seeded(method: str) -> bool:
    from eegmtl.evaluation.methods import default_config

    return "random_state" in default_config(method, "subject_independent")


#: MOABB scorers (first = MOABB's ``score``); results get ``score_<name>`` columns
SCORERS = {"accuracy": "accuracy", "roc_auc": "roc_auc"}
_LABELS = {"accuracy": "accuracy", "roc_auc": "ROC-AUC"}


def summarise(df: pd.DataFrame) -> str:
    """Per metric (accuracy, ROC-AUC): mean ± SD over subjects (sessions averaged per subject)
    per pipeline and mode, and the effect of alignment per method and mode (mean difference,
    wins, Wilcoxon p)."""
    metrics = [m for m in SCORERS if f"score_{m}" in df] or ["score"]
    parts = []
    for metric in metrics:
        column = metric if metric == "score" else f"score_{metric}"
        parts.append(_metric_tables(df, column, _LABELS.get(metric, "MOABB's score")))
    return "\n\n".join(parts)


def _metric_tables(df: pd.DataFrame, column: str, label: str) -> str:
    from eegmtl.evaluation.stats import paired_tests
    from eegmtl.evaluation.tables import markdown_table

    df = df.dropna(subset=[column])
    per_subject = df.groupby(["cs_mode", "pipeline", "subject"])[column].mean()
    table = per_subject.groupby(["pipeline", "cs_mode"]).agg(["mean", "std", "count"])
    modes = list(dict.fromkeys(df["cs_mode"]))
    names = list(dict.fromkeys(df["pipeline"]))
    cells = [[name, *("–" if (name, mode) not in table.index else
                      "{:.2f} ± {:.2f} (n={})".format(100 * table.loc[(name, mode), "mean"],
                                                     100 * table.loc[(name, mode), "std"],
                                                     int(table.loc[(name, mode), "count"]))
                      for mode in modes)] for name in names]
    out = [f"**{label}** in %, mean ± SD over target subjects (sessions averaged per "
           "subject).", "", markdown_table(["pipeline", *modes], cells).rstrip()]
    rows = []
    for mode in modes:
        for name in names:
            if name.endswith("+EA") or f"{name}+EA" not in names:
                continue
            pair = df[(df["cs_mode"] == mode) & df["pipeline"].isin([name, f"{name}+EA"])]
            if pair["pipeline"].nunique() < 2:
                continue
            t = paired_tests(pair, f"{name}+EA", column, match=("subject", "session")).iloc[0]
            rows.append([name, mode, f"{100 * t['mean_difference']:+.2f}",
                         f"{t['wins']}/{t['n_subjects']}", f"{t['p']:.3g}"])
    if rows:
        out += ["", f"Alignment, {label} (+EA minus plain, subjects as units):", "",
                markdown_table(["method", "mode", "Δ (points)", "EA better", "Wilcoxon p"],
                               rows).rstrip()]
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl moabb-si``."""
    parser.description = (__doc__ or "").split("\n")[0]
    p = parser
    p.add_argument("--methods", nargs="+", default=["CSP+LDA", "TS+SVM"],
                   help="registry names (see `eegmtl si --help`); default CSP+LDA TS+SVM")
    p.add_argument("--cs-modes", nargs="+", default=["train", "train_and_target_unlabeled_20p",
                                                     "train_and_target_labeled_20p"],
                   choices=CS_MODES, help="MOABB CrossSubjectMode values")
    p.add_argument("--alignment", nargs="+", default=["none", "ea"], choices=["none", "ea"],
                   help="plain pipelines, +EA (AlignedClassifier), or both (default)")
    p.add_argument("--subjects", nargs="+", default=["1..9"], help="e.g. 1..9, 1-3 7")
    p.add_argument("--bci2b-dir", default=None,
                   help="folder with epochs_mat/ (default: $EEGMTL_BCI2B_DIR or "
                        "$EEGMTL_DATA_DIR/bcic_iv_2b)")
    p.add_argument("--results", default=None,
                   help=f"CSV (default: <results folder>/moabb_si.csv; {RESULTS_DIR_HELP})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=1, help="MOABB's parallel folds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation parsed by :func:`add_arguments`; write records and summary."""
    import mne

    from eegmtl._io import atomic_write, file_lock
    from eegmtl.evaluation.methods import method_error
    from eegmtl.evaluation.plots import variant_pairs_plot

    bad = [e for e in (method_error(m) for m in args.methods) if e]
    if bad:
        raise SystemExit("\n".join(bad))
    subjects = parse_subjects(args.subjects, valid=range(1, 10))  # BCIC IV 2b's
    if len(subjects) < 2:
        raise SystemExit("cross-subject evaluation needs at least two subjects.")
    mne.set_log_level("WARNING")
    out = Path(args.results) if args.results else results_dir() / "moabb_si.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    df = evaluate(args.methods, args.cs_modes, subjects, alignment=tuple(args.alignment),
                  data_dir=args.bci2b_dir, cache_dir=out.with_suffix(".hdf5"), seed=args.seed,
                  n_jobs=args.n_jobs, progress=not args.no_progress)
    df = df.drop(columns=[c for c in df.columns if c.startswith("carbon")], errors="ignore")
    with file_lock(out):  # keep the rows of other pipelines / modes already in the file
        if out.is_file():
            old = pd.read_csv(out)
            ran = set(zip(df["pipeline"], df["cs_mode"]))
            keep = [(p, m) not in ran for p, m in zip(old["pipeline"], old["cs_mode"])]
            df = pd.concat([old[keep], df], ignore_index=True)
        scores = [c for c in df.columns if c.startswith("score")]
        df[scores] = df[scores].astype(float).round(6)  # MOABB keeps float32: equal is equal
        atomic_write(out, df.to_csv(index=False))
    wall = time.perf_counter() - t0
    tables = summarise(df)
    figure = out.with_name(out.stem + "_accuracy.png")
    variant_pairs_plot(df, "score_accuracy" if "score_accuracy" in df else "score",
                       panel="cs_mode", label="accuracy", path=figure)
    text = "\n".join([*summary_header(out, command_line(args), wall,
                                      "MOABB cross-subject evaluation (BCIC IV 2b export)"),
                      tables, "", f"Figure: `{figure.name}` (accuracy per target subject, "
                      "each method beside its +EA variant, one panel per mode).", ""])
    summary = out.with_name(out.stem + "_summary.md")
    atomic_write(summary, text)
    print(tables)
    print(f"\n{len(df)} rows in {display_path(out)}; summary {display_path(summary)}; "
          f"figure {display_path(figure)}; wall {elapsed_s():.1f} s")
    return 0
