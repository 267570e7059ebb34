"""The ``eegmtl`` command: one entry point for the experiments, reports and data checks.

``eegmtl <command> --help`` explains every option. The command is thin: it parses options and
calls library functions or the experiment scripts of ``pipelines/``, so ``eegmtl sd ...`` and
``python pipelines/subject_dependent.py ...`` are the same run and write the same records.

Commands
--------
train       MixNet subject-dependent on the competition split (``pipelines/train_mixnet.py``)
sd, si      subject-dependent / subject-independent evaluation of any registered methods
            (:func:`eegmtl.evaluation.run_protocol`, ``pipelines/subject_dependent.py``)
ablations   MixNet ablations, Tables S1-S3 (``pipelines/ablations.py``)
vision      MultiMNIST-family MTL benchmarks (``pipelines/vision.py``)
toy         two-task landscape (``pipelines/toy.py``)
bench       step-time (``mtl``) or MixNet fit/latency (``mixnet``) benchmarks
report      markdown tables and figures from result-record CSVs
data check  where every data set is looked for and whether its files are there
methods     the registered evaluation pipelines, aggregators and weightings

Global options (before or after the command): ``--data-dir DIR`` sets ``$EEGMTL_DATA_DIR``
(data sets are looked for in ``DIR/bcic_iv_2b``, ``DIR/mnist``, ...), ``--results-dir DIR``
sets ``$EEGMTL_RESULTS_DIR`` and makes the experiment commands write their records there
(unless their own ``--results`` / ``--out`` is given).

The experiment commands need the ``pipelines/`` folder of an eegmtl checkout (found next to the
installed package, in the current directory, or at ``$EEGMTL_PIPELINES_DIR``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["build_parser", "data_check", "main", "paired_tests", "pipelines_dir", "report"]

#: delegated command -> (script stem, one-line description)
SCRIPTS: dict[str, tuple[str, str]] = {
    "train": ("train_mixnet", "train MixNet subject-dependently (train sessions 1-3, test 4-5) "
                              "on chosen subjects and record the test scores"),
    "sd": ("subject_dependent", "subject-dependent evaluation (5 folds per subject on sessions "
                                "1-3, test sessions 4-5) of any registered methods"),
    "si": ("subject_dependent", "subject-independent evaluation (leave one subject out, "
                                "validation folds by subject) of any registered methods"),
    "ablations": ("ablations", "MixNet ablations (margin, latent size, warm-up; Tables S1-S3), "
                               "chosen on validation accuracy"),
    "vision": ("vision", "MultiMNIST / MultiFashion / MultiFashion+MNIST benchmarks of the MTL "
                         "methods"),
    "toy": ("toy", "two-task landscape: trajectories of the MTL methods, plot and table"),
}
BENCHES: dict[str, tuple[str, str]] = {
    "mtl": ("bench_mtl", "step time of every aggregator relative to equal weighting"),
    "mixnet": ("bench_mixnet", "MixNet fit time, memory and single-trial latency"),
}

#: per-data-set file check: (glob pattern relative to the data set folder, files expected)
DATA_FILES: dict[str, tuple[str, int]] = {
    "bcic_iv_2b": ("epochs_mat/B*.mat", 45),
    "mnist": ("*-idx?-ubyte*", 4),
    "fashion_mnist": ("*-idx?-ubyte*", 4),
}


# --------------------------------------------------------------------------- helpers
def pipelines_dir() -> Path:
    """The ``pipelines/`` folder with the experiment scripts.

    Looked for at ``$EEGMTL_PIPELINES_DIR``, next to the package (an editable install or a
    checkout), then in the current directory.

    Raises
    ------
    FileNotFoundError
        No candidate holds ``train_mixnet.py``; the message lists where it looked.
    """
    candidates = []
    if os.environ.get("EEGMTL_PIPELINES_DIR"):
        candidates.append(Path(os.environ["EEGMTL_PIPELINES_DIR"]).expanduser())
    candidates += [Path(__file__).resolve().parents[1] / "pipelines", Path.cwd() / "pipelines"]
    for c in candidates:
        if (c / "train_mixnet.py").is_file():
            return c
    raise FileNotFoundError(
        "the experiment scripts (pipelines/*.py) were not found in "
        + ", ".join(str(c) for c in candidates)
        + ". Run eegmtl from an eegmtl checkout (git clone + pip install -e .) or set "
        "$EEGMTL_PIPELINES_DIR to its pipelines/ folder."
    )


def _load_script(stem: str) -> ModuleType:
    """Import ``pipelines/<stem>.py`` as a module (without running its ``__main__`` block)."""
    folder = pipelines_dir()
    if str(folder) not in sys.path:  # the scripts import each other (subject_dependent)
        sys.path.insert(0, str(folder))
    name, path = f"_eegmtl_pipelines_{stem}", (folder / f"{stem}.py").resolve()
    cached = sys.modules.get(name)
    if cached is not None and Path(getattr(cached, "__file__", "")).resolve() == path:
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _has_option(argv: Sequence[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in argv)


def _option_value(argv: Sequence[str], option: str, default: str | None = None) -> str | None:
    for i, a in enumerate(argv):
        if a == option and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(option + "="):
            return a.split("=", 1)[1]
    return default


def _default_records(command: str, argv: Sequence[str]) -> tuple[str, str] | None:
    """(option, file name) of the record file of a delegated command, for ``--results-dir``."""
    quick = "_quick" if "--quick" in argv else ""
    if command == "train":
        return "--out", f"mixnet_sd_main{quick}.csv"
    if command in ("sd", "si"):
        return "--results", f"{command}{quick}.csv"
    if command == "ablations":
        return "--results", f"ablations_{_option_value(argv, '--protocol', 'sd')}{quick}.csv"
    if command == "vision":
        model = _option_value(argv, "--model")
        if model is None:
            resnet = "resnet18" in (_option_value(argv, "--protocol"),
                                    _option_value(argv, "--gpu-protocol"))
            model = "resnet18" if resnet else "lenet"
        return "--results", f"vision_{model}.csv"
    return None  # toy reads $EEGMTL_RESULTS_DIR itself; benches write no records


def run_script(command: str, argv: Sequence[str], prog: str | None = None) -> int:
    """Run the experiment script behind ``command`` with the options ``argv``.

    Scripts with ``main(argv)`` are imported and called (so the command they record is the
    equivalent ``python pipelines/<script>.py ...``); ``bench mtl`` parses ``sys.argv``.
    ``$EEGMTL_RESULTS_DIR`` (set by ``--results-dir``) becomes the script's record path unless
    ``argv`` names one.
    """
    argv = list(argv)
    if command.startswith("bench-"):
        stem = BENCHES[command.split("-", 1)[1]][0]
    else:
        stem = SCRIPTS[command][0]
    target = _default_records(command, argv)
    if target and os.environ.get("EEGMTL_RESULTS_DIR") and not _has_option(argv, target[0]) \
            and "--help" not in argv and "-h" not in argv:
        argv += [target[0], str(Path(os.environ["EEGMTL_RESULTS_DIR"]) / target[1])]
    old_argv = sys.argv
    sys.argv = [prog or f"eegmtl {command.replace('-', ' ')}", *argv]  # argparse's prog
    try:
        if stem == "bench_mtl":  # main(Namespace); its __main__ block parses sys.argv first
            if "--active-wait" not in argv:
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts
            module = _load_script(stem)
            module.main(module._parse())
            return 0
        module = _load_script(stem)
        if command == "si":
            return int(module.main(argv, protocol="subject_independent") or 0)
        return int(module.main(argv) or 0)
    finally:
        sys.argv = old_argv


# --------------------------------------------------------------------------- data check
def data_check(names: Sequence[str] | None = None, *, stream: Any = None) -> dict[str, bool]:
    """Print where each data set is looked for and whether its files are there.

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`eegmtl.config.DATASETS`; default all.
    stream : file-like, optional
        Where to print (default ``sys.stdout``).

    Returns
    -------
    dict
        ``name -> True`` when the folder exists (and holds the expected files where known).
    """
    from eegmtl.config import DATASETS, DataNotFoundError, resolve_data_dir

    out = stream or sys.stdout
    names = list(names) if names else list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown data set(s) {unknown}; known: {sorted(DATASETS)}")
    print(f"EEGMTL_DATA_DIR = {os.environ.get('EEGMTL_DATA_DIR') or '(not set)'}", file=out)
    status: dict[str, bool] = {}
    for name in names:
        env = DATASETS[name][0]
        try:
            folder = resolve_data_dir(name, must_exist=False)
        except DataNotFoundError:
            print(f"{name:14s} not configured: set ${env} or $EEGMTL_DATA_DIR "
                  "(or pass --data-dir)", file=out)
            status[name] = False
            continue
        how = f"${env}" if os.environ.get(env) else "$EEGMTL_DATA_DIR"
        if not folder.is_dir():
            print(f"{name:14s} MISSING  {folder} (from {how})", file=out)
            status[name] = False
            continue
        pattern, n_expected = DATA_FILES.get(name, ("*", 0))
        n_found = len(list(folder.glob(pattern)))
        ok = n_found >= n_expected if n_expected else n_found > 0
        what = (f"{n_found}/{n_expected} files {pattern}" if n_expected
                else f"{n_found} entries")
        print(f"{name:14s} {'ok' if ok else 'INCOMPLETE':8s} {folder} (from {how}): {what}",
              file=out)
        status[name] = ok
    if "bcic_iv_2b" in names:
        print("(BCIC IV 2b can also be read through MOABB with load_bci2b(source='bnci'), which "
              "downloads the BNCI files into ~/mne_data or $MNE_DATASETS_BNCI_PATH when "
              "online.)", file=out)
    return status


# --------------------------------------------------------------------------- report
EEG_COLUMNS = ("pipeline", "subject", "accuracy")
VISION_COLUMNS = ("dataset", "method", "avg_accuracy")


def paired_tests(
    df: Any, reference: str, metric: str = "accuracy", *, protocol: str | None = None,
    match: tuple[str, ...] = ("subject", "fold", "seed"),
) -> Any:
    """Wilcoxon signed-rank test of ``reference`` against every other pipeline.

    Only the runs both pipelines have are compared: rows are matched on ``match`` (default
    subject, fold and seed; those columns that exist), so a pipeline run on fold 1 only is
    compared with the reference's fold-1 fits, not with its 5-fold mean. Each pipeline is
    then reduced to one value per subject (mean of ``metric`` over the matched folds and
    seeds). Two-sided
    :func:`scipy.stats.wilcoxon` (exact for small samples); ``p`` is NaN with fewer than 5
    paired subjects or when all differences are zero.

    Returns
    -------
    DataFrame
        One row per other pipeline: ``pipeline``, ``n_subjects``, ``n_runs`` (matched
        subject × fold × seed cells), ``reference_mean``,
        ``pipeline_mean``, ``mean_difference`` (reference - pipeline), ``wins`` (subjects where
        the reference is better), ``statistic``, ``p``.
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import wilcoxon

    from eegmtl.evaluation.results import per_subject

    data = df if protocol is None else df[df["protocol"] == protocol]
    pipes = list(dict.fromkeys(data["pipeline"]))
    if reference not in pipes:
        raise ValueError(f"reference pipeline {reference!r} not in the records ({pipes})")
    keys = [c for c in match if c in data.columns]
    ref_rows = data[data["pipeline"] == reference]
    rows = []
    for other in pipes:
        if other == reference:
            continue
        other_rows = data[data["pipeline"] == other]
        common = ref_rows[keys].merge(other_rows[keys]).drop_duplicates()
        matched = pd.concat([ref_rows, other_rows]).merge(common, on=keys)
        tab = per_subject(matched, metric, by=("pipeline",)).reindex([reference, other])
        pair = tab.T.dropna()
        a, b = pair[reference].to_numpy(), pair[other].to_numpy()
        diff = a - b
        stat = p = float("nan")
        if len(diff) >= 5 and np.any(diff != 0):
            res = wilcoxon(a, b)
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append({"pipeline": other, "n_subjects": len(diff), "n_runs": len(common),
                     "reference_mean": float(a.mean()) if len(a) else float("nan"),
                     "pipeline_mean": float(b.mean()) if len(b) else float("nan"),
                     "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
                     "wins": int((diff > 0).sum()), "statistic": stat, "p": p})
    return pd.DataFrame(rows, columns=["pipeline", "n_subjects", "n_runs", "reference_mean",
                                       "pipeline_mean", "mean_difference", "wins",
                                       "statistic", "p"])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text)).strip("_")


def _eeg_report(df: Any, stem: str, out: Path, metric: str, reference: str | None,
                level: str) -> list[str]:
    from eegmtl.evaluation.plots import paired_comparison_plot, subject_scores_plot
    from eegmtl.evaluation.results import markdown_table, to_markdown

    lines = [f"## {stem}", ""]
    by = ("protocol", "pipeline") if "protocol" in df.columns else ("pipeline",)
    lines += [to_markdown(df, by=by, level=level, per_subject_metric=metric), ""]
    protocols = list(dict.fromkeys(df["protocol"])) if "protocol" in df.columns else [None]
    for proto in protocols:
        sub = df if proto is None else df[df["protocol"] == proto]
        tag = _slug(f"{stem}_{proto}" if proto else stem)
        fig = out / f"{tag}_{metric}_per_subject.png"
        subject_scores_plot(sub, metric, path=fig)
        lines += [f"![{metric} per subject]({fig.name})", ""]
        pipes = list(dict.fromkeys(sub["pipeline"]))
        ref = reference if reference in pipes else None
        if ref is None and reference is not None and len(pipes) > 1:
            lines += [f"(reference pipeline {reference!r} not in these records: no paired "
                      "comparison)", ""]
        if ref is None or len(pipes) < 2:
            continue
        tests = paired_tests(sub, ref, metric)
        rows = [[r.pipeline, r.n_subjects, r.n_runs, f"{100 * r.reference_mean:.2f}",
                 f"{100 * r.pipeline_mean:.2f}", f"{100 * r.mean_difference:+.2f}",
                 f"{r.wins}/{r.n_subjects}",
                 "–" if r.p != r.p else f"{r.p:.4f}"] for r in tests.itertuples()]
        lines += [f"Paired comparison with {ref} ({metric}; only the subject × fold × seed "
                  "runs both pipelines have, averaged per subject; two-sided Wilcoxon "
                  "signed-rank; – = fewer than 5 paired subjects):", "",
                  markdown_table(["pipeline", "subjects", "runs", f"{ref} (%)", "pipeline (%)",
                                  "difference (pp)", f"{ref} better", "p"], rows)]
        for other in tests["pipeline"]:
            fig = out / f"{tag}_{_slug(ref)}_vs_{_slug(other)}.png"
            paired_comparison_plot(sub, other, ref, metric, path=fig)
            lines += [f"![{ref} vs {other}]({fig.name})", ""]
    return lines


def _vision_report(df: Any, stem: str) -> list[str]:
    from eegmtl.evaluation.results import markdown_table

    data = df[df["task"] == "avg"] if "task" in df.columns else df
    cols = [c for c in ("avg_accuracy", "delta_p", "conflict_rate", "brier", "ece")
            if c in data.columns]
    g = data.groupby(["dataset", "method"], sort=True)
    rows = []
    for (ds, method), grp in g:
        cells = [ds, method]
        for c in cols:
            scale = 100.0 if c in ("avg_accuracy", "delta_p") else 1.0
            m, s = grp[c].mean() * scale, grp[c].std(ddof=1) * scale
            cells.append(f"{m:.2f}" + (f" ± {s:.2f}" if s == s else "")
                         if scale == 100.0 else f"{m:.3f}")
        cells.append(len(grp))
        rows.append(cells)
    header = ["dataset", "method"] + [f"{c} (%)" if c in ("avg_accuracy", "delta_p") else c
                                      for c in cols] + ["seeds"]
    return [f"## {stem}", "", "Mean ± SD over seeds (rows with task = avg).", "",
            markdown_table(header, rows)]


def report(
    records: Sequence[str | os.PathLike[str]] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    metric: str = "accuracy",
    reference: str | None = "MixNet",
    level: str = "fold",
) -> Path:
    """Write ``report.md`` (tables) and PNG figures from result-record CSV files.

    EEG records (columns ``pipeline``, ``subject``, ``accuracy``) get the mean ± SD table of
    :func:`eegmtl.evaluation.results.to_markdown` with a per-subject table, a per-subject
    figure per protocol (:func:`eegmtl.evaluation.plots.subject_scores_plot`) and, when
    ``reference`` is present, a Wilcoxon test (:func:`paired_tests`) and a paired figure
    (:func:`eegmtl.evaluation.plots.paired_comparison_plot`) against every other pipeline.
    Vision records (``dataset``, ``method``, ``avg_accuracy``) get a mean ± SD table over seeds.
    Other CSV files are skipped with a note.

    Parameters
    ----------
    records : sequence of path, optional
        Record CSV files; default every ``*.csv`` of the results directory
        (:func:`eegmtl.config.results_dir`).
    out : path, optional
        Output folder; default ``<results directory>/report``.
    metric : str
        Metric of the per-subject table, figures and tests; default ``"accuracy"``.
    reference : str or None
        Pipeline compared with all others; default ``"MixNet"``.
    level : {"fold", "subject"}
        SD over all rows (default, as the MixNet paper) or over subject means.

    Returns
    -------
    Path
        The markdown file written.
    """
    import pandas as pd

    from eegmtl.config import results_dir
    from eegmtl.evaluation.results import load_records

    if records:
        paths = [Path(p) for p in records]
    else:
        paths = sorted(results_dir().glob("*.csv"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"record file(s) not found: {missing}")
    if not paths:
        raise FileNotFoundError(f"no record CSV files in {results_dir()}; pass them as "
                                "arguments or set --results-dir")
    out_dir = Path(out) if out is not None else results_dir() / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# eegmtl report", "", "Generated by `eegmtl report` from "
             + ", ".join(f"`{p.name}`" for p in paths) + "; do not edit by hand.", ""]
    for path in paths:
        head = pd.read_csv(path, nrows=0).columns
        if all(c in head for c in EEG_COLUMNS):
            df = load_records(path)
            if metric not in df.columns:
                lines += [f"## {path.stem}", "", f"(no column {metric!r}; skipped)", ""]
                continue
            lines += _eeg_report(df, path.stem, out_dir, metric, reference, level)
        elif all(c in head for c in VISION_COLUMNS):
            lines += _vision_report(pd.read_csv(path), path.stem)
        else:
            print(f"note: {path.name} is not a record file of a known schema; skipped",
                  file=sys.stderr)
    target = out_dir / "report.md"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


# --------------------------------------------------------------------------- parser
def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", default=default, metavar="DIR",
                        help="folder holding the data sets (bcic_iv_2b/, mnist/, "
                             "fashion_mnist/, ...); sets $EEGMTL_DATA_DIR")
    parser.add_argument("--results-dir", default=default, metavar="DIR",
                        help="folder for result records (default pipelines/results); sets "
                             "$EEGMTL_RESULTS_DIR")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eegmtl`` command (delegated commands parse their own
    options: ``eegmtl <command> --help`` prints them)."""
    from eegmtl import __version__

    p = argparse.ArgumentParser(
        prog="eegmtl", allow_abbrev=False,
        description="eegmtl: multi-task learning for EEG brain-computer interfaces. "
                    "Run `eegmtl <command> --help` for the options of a command.",
        epilog="Examples:\n"
               "  eegmtl data check\n"
               "  eegmtl train --subjects 4 --max-epochs 50\n"
               "  eegmtl sd --methods CSP+LDA MixNet --subjects 1..9 --n-jobs 2\n"
               "  eegmtl report pipelines/results/sd.csv --out report/\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"eegmtl {__version__}")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="<command>")
    for name, (stem, text) in SCRIPTS.items():
        sp = sub.add_parser(name, help=f"{text} (pipelines/{stem}.py; options: "
                                       f"eegmtl {name} --help)",
                            add_help=False, allow_abbrev=False)
        _global_options(sp, suppress=True)
    bench = sub.add_parser("bench", help="benchmarks: `eegmtl bench mtl` (" + BENCHES["mtl"][1]
                           + "), `eegmtl bench mixnet` (" + BENCHES["mixnet"][1] + ")",
                           add_help=False, allow_abbrev=False)
    bench.add_argument("which", nargs="?", choices=sorted(BENCHES),
                       help="which benchmark (then --help for its options)")
    _global_options(bench, suppress=True)

    rep = sub.add_parser(
        "report", allow_abbrev=False,
        help="markdown tables and PNG figures from result-record CSV files",
        description="Write report.md (mean ± SD tables, per-subject tables, Wilcoxon tests of "
                    "the reference pipeline against every other) and PNG figures (per-subject "
                    "scores, paired comparisons) from result records.")
    rep.add_argument("records", nargs="*",
                     help="record CSV files (default: every *.csv of the results directory)")
    rep.add_argument("--out", default=None,
                     help="output folder (default: <results directory>/report)")
    rep.add_argument("--metric", default="accuracy",
                     help="metric of the per-subject table, figures and tests "
                          "(accuracy, f1_macro, kappa, roc_auc; default accuracy)")
    rep.add_argument("--reference", default="MixNet",
                     help="pipeline compared with every other (default MixNet)")
    rep.add_argument("--level", choices=["fold", "subject"], default="fold",
                     help="SD over all subject x fold rows (fold, default, as the MixNet "
                          "paper) or over subject means (subject)")
    _global_options(rep, suppress=True)

    data = sub.add_parser("data", allow_abbrev=False, help="data set locations: `eegmtl data "
                                                           "check`")
    data_sub = data.add_subparsers(dest="data_command", metavar="<action>")
    check = data_sub.add_parser(
        "check", allow_abbrev=False,
        help="print where each data set is looked for and whether its files are there",
        description="Resolve every data set directory as the loaders do (explicit path, "
                    "$EEGMTL_<NAME>_DIR, $EEGMTL_DATA_DIR/<name>) and count the expected "
                    "files. Exit status 1 when a data set named with --dataset is missing.")
    check.add_argument("--dataset", nargs="+", default=None, metavar="NAME",
                       help="only these data sets (bcic_iv_2b, mnist, fashion_mnist, nyuv2, "
                            "cityscapes, celeba, office31, office_home; default all)")
    _global_options(check, suppress=True)
    _global_options(data, suppress=True)

    meth = sub.add_parser("methods", allow_abbrev=False,
                          help="list the evaluation pipelines, aggregators and weightings")
    _global_options(meth, suppress=True)
    return p


def _methods_listing() -> str:
    from eegmtl.evaluation import available_methods
    from eegmtl.mtl.aggregators import AGGREGATORS
    from eegmtl.mtl.weightings import WEIGHTINGS

    return "\n".join([
        "evaluation pipelines (eegmtl sd/si --methods): " + ", ".join(available_methods()),
        "aggregators (MixNetClassifier(mtl=...), 'f-<name>' for flat minima): "
        + ", ".join(sorted(AGGREGATORS)),
        "weightings (MixNetClassifier(mtl=...)): " + ", ".join(sorted(WEIGHTINGS)),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eegmtl`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "data_dir", None):
        os.environ["EEGMTL_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    if getattr(args, "results_dir", None):
        os.environ["EEGMTL_RESULTS_DIR"] = str(Path(args.results_dir).expanduser().resolve())
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MPLBACKEND", "Agg")

    if args.command is None:
        parser.print_help()
        return 0
    if args.command in SCRIPTS:
        return run_script(args.command, rest)
    if args.command == "bench":
        if args.which is None:
            print("usage: eegmtl bench {mtl,mixnet} [options]\n\n" + "\n".join(
                f"  {k:7s} {v[1]} (pipelines/{v[0]}.py)" for k, v in BENCHES.items())
                + "\n\n`eegmtl bench <which> --help` lists the options.")
            return 0 if ("--help" in rest or "-h" in rest or not rest) else 2
        return run_script(f"bench-{args.which}", rest, prog=f"eegmtl bench {args.which}")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "report":
        path = report(args.records or None, args.out, metric=args.metric,
                      reference=args.reference, level=args.level)
        print(f"report: {path}")
        return 0
    if args.command == "data":
        if args.data_command != "check":
            parser.parse_args(["data", "--help"])
        status = data_check(args.dataset)
        return 1 if args.dataset and not all(status.values()) else 0
    if args.command == "methods":
        print(_methods_listing())
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
