"""The ``eegmtl`` command: one entry point for the experiments, reports and data checks.

``eegmtl <command> --help`` explains every option. The command only dispatches: experiment
commands parse their options and run the library code of :mod:`eegmtl.experiments` (the same
code as ``python pipelines/<script>.py`` in a checkout), the others call
:mod:`eegmtl.evaluation.report` and :mod:`eegmtl.config`.

Commands
--------
train       MixNet subject-dependent on the competition split
sd, si      subject-dependent / subject-independent evaluation of any registered methods
            (:func:`eegmtl.evaluation.run_protocol`)
ablations   MixNet ablations, Tables S1-S3
csp-lda     CSP-type baselines on the competition split
vision      MultiMNIST-family MTL benchmarks
toy         two-task landscape
bench       step-time (``mtl``), MixNet fit/latency (``mixnet``), device (``cuda``), fits
            at once (``fits``) or roofline (``roofline``) benchmarks
benchmark   every registered pipeline, SD and SI, 3 seeds (``--preset full|tiny``)
report      markdown tables and figures from result-record CSVs
data check  where every data set is looked for and whether its files are there
methods     the registered evaluation pipelines, aggregators and weightings

Global options (before or after the command): ``--data-dir DIR`` sets ``$EEGMTL_DATA_DIR``
(data sets are looked for in ``DIR/bcic_iv_2b``, ``DIR/mnist``, ...), ``--results-dir DIR``
sets ``$EEGMTL_RESULTS_DIR``, the folder where the experiments write their records (unless
their own ``--results`` / ``--out`` is given). Without it, records go to ``pipelines/results``
of the checkout eegmtl runs from, or to ``./eegmtl-results`` for an installed package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eegmtl.config import RESULTS_DIR_HELP
from eegmtl.experiments import COMMANDS, guarded
from eegmtl.experiments import main as run_experiment

__all__ = ["build_parser", "data_check", "main"]

#: ``eegmtl bench <which>`` -> experiment command
BENCHES: dict[str, str] = {"mtl": "bench-mtl", "mixnet": "bench-mixnet", "si": "bench-si",
                           "cuda": "bench-cuda", "fits": "bench-fits",
                           "roofline": "bench-roofline"}

#: per-data-set file check: (glob pattern relative to the data set folder, files expected)
DATA_FILES: dict[str, tuple[str, int]] = {
    "bcic_iv_2b": ("epochs_mat/B*.mat", 45),
    "mnist": ("*-idx?-ubyte*", 4),
    "fashion_mnist": ("*-idx?-ubyte*", 4),
}


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


# --------------------------------------------------------------------------- parser
def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", default=default, metavar="DIR",
                        help="folder holding the data sets (bcic_iv_2b/, mnist/, "
                             "fashion_mnist/, ...); sets $EEGMTL_DATA_DIR")
    parser.add_argument("--results-dir", default=default, metavar="DIR",
                        help=f"folder for result records; sets $EEGMTL_RESULTS_DIR ("
                             f"{RESULTS_DIR_HELP})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eegmtl`` command (experiment commands parse their own
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
               "  eegmtl report pipelines/results/sd.csv --out report/\n\n"
               f"Results: {RESULTS_DIR_HELP}.\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"eegmtl {__version__}")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="<command>")
    for name, cmd in COMMANDS.items():
        if name.startswith("bench-"):
            continue
        sp = sub.add_parser(name, help=f"{cmd.help} (options: eegmtl {name} --help)",
                            add_help=False, allow_abbrev=False)
        _global_options(sp, suppress=True)
    bench = sub.add_parser("bench", help="benchmarks: `eegmtl bench mtl` ("
                           + COMMANDS["bench-mtl"].help + "), `eegmtl bench mixnet` ("
                           + COMMANDS["bench-mixnet"].help + "), `eegmtl bench si` ("
                           + COMMANDS["bench-si"].help + "), `eegmtl bench cuda` ("
                           + COMMANDS["bench-cuda"].help + "), `eegmtl bench fits` ("
                           + COMMANDS["bench-fits"].help + "), `eegmtl bench roofline` ("
                           + COMMANDS["bench-roofline"].help + ")",
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
    rep.add_argument("--reference", default=None,
                     help="pipeline compared with every other; an error if no record has it "
                          "(default MixNet, where present)")
    rep.add_argument("--level", choices=["fold", "subject"], default="fold",
                     help="SD over all subject x fold rows (fold, default, as the MixNet "
                          "paper) or over subject means (subject)")
    rep.add_argument("--folds", type=int, nargs="+", default=None, metavar="K",
                     help="keep only the rows of these folds (e.g. 1)")
    rep.add_argument("--combine", action="store_true",
                     help="one table and one set of tests over all record files (aligned "
                          "runs tagged +EA) instead of one per file")
    rep.add_argument("--exclude", nargs="+", default=None, metavar="NAME",
                     help="leave out these pipelines (names as in the tables, +EA included; "
                          "'*' matches any text, e.g. 'MixNet*+aug*')")
    rep.add_argument("--pipelines", nargs="+", default=None, metavar="NAME",
                     help="keep only these pipelines (names and '*' as for --exclude)")
    rep.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                     help="keep only the rows of these seeds (e.g. 0)")
    rep.add_argument("--friedman", nargs="+", default=None, metavar="NAME",
                     help="also a Friedman test over these pipelines (at least 3; names and "
                          "'*' as for --pipelines), subjects as blocks")
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
    from eegmtl.models.eeg_architectures import EEG_ARCHITECTURES
    from eegmtl.mtl.aggregators import AGGREGATORS
    from eegmtl.mtl.weightings import WEIGHTINGS

    return "\n".join([
        "evaluation pipelines (eegmtl sd/si --methods): " + ", ".join(available_methods()),
        "aggregators (MixNetClassifier(mtl=...), 'f-<name>' for flat minima): "
        + ", ".join(sorted(AGGREGATORS)),
        "weightings (MixNetClassifier(mtl=...)): " + ", ".join(sorted(WEIGHTINGS)),
        "composed pipeline names: <deep pipeline>+aug | +aug[sr,ft,mask,chdrop,noise] | +noaug "
        "(+aug[...,x2]: two augmented copies per batch); "
        "<MixNet row or braindecode model>+mtl[<aggregator or weighting>] "
        "(+recipe after it: the braindecode network's own training recipe); "
        "<MixNet-family name>+arch[" + "|".join(EEG_ARCHITECTURES) + "]; "
        "<any of these>+set[key=value,...] (a config entry, a MixNetClassifier parameter, "
        "model.<network argument> or flat.<FlatConfig field>) "
        "(e.g. EEGNet+mtl[blending]+arch[mmoe]+aug, TCFormer+set[betas=0.5/0.999])",
    ])


def _report(args: argparse.Namespace) -> int:
    from eegmtl.evaluation.report import report

    path = report(args.records or None, args.out, metric=args.metric,
                  reference=args.reference or "MixNet", level=args.level, folds=args.folds,
                  combine=args.combine, exclude=args.exclude, pipelines=args.pipelines,
                  seeds=args.seeds, friedman=args.friedman,
                  require_reference=args.reference is not None)
    print(f"report: {path}")
    return 0


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
    if args.command in COMMANDS:
        return run_experiment(args.command, rest)
    if args.command == "bench":
        if args.which is None:
            print(f"usage: eegmtl bench {{{','.join(BENCHES)}}} [options]\n\n" + "\n".join(
                f"  {k:7s} {COMMANDS[v].help}" for k, v in BENCHES.items())
                + "\n\n`eegmtl bench <which> --help` lists the options.")
            return 0 if ("--help" in rest or "-h" in rest or not rest) else 2
        if args.which == "mtl" and "--active-wait" not in rest:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts
        return run_experiment(BENCHES[args.which], rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "report":
        return guarded("eegmtl report", lambda: _report(args))
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
