"""Subject-dependent (SD) evaluation on BCIC IV 2b: every method on the same splits.

Protocol (MixNet paper; ``eegmtl.evaluation.protocols``): per subject, StratifiedKFold(5,
shuffle, random_state=42) on sessions 1-3 gives train / validation; the test set is always
sessions 4-5 of that subject. 9 subjects x 5 folds = 45 fits per method and seed. MixNet-type
methods use the validation fold for early stopping; the baselines are fitted on the training
part only (the deep baselines hold out their own 20 % of it).

Writes one record per subject x fold x method x seed to ``--results`` (CSV, DESIGN.md schema,
MOABB-compatible columns), rewritten atomically after every fit; a rerun skips finished fits
(same pipeline, subject, fold, seed and config hash). Then writes a markdown summary generated
from the records (``--summary``, default ``<results>_summary.md``) whose header holds the exact
commands and wall times of every run that wrote into the record file.

Usage::

    python pipelines/subject_dependent.py --methods CSP+LDA TS+SVM            # all subjects
    python pipelines/subject_dependent.py --methods MixNet --n-jobs 2 --max-epochs 200
    python pipelines/subject_dependent.py --quick                             # smoke test
    python pipelines/subject_dependent.py --methods MixNet --backend dask     # Dask cluster
      (create a dask.distributed.Client in a wrapper, or use --backend ray with Ray installed)
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # wall time includes the imports

import os  # noqa: E402

os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")  # quiet CSP logs (workers inherit it)

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from eegmtl.config import results_dir  # noqa: E402
from eegmtl.evaluation import available_methods, default_config, run_protocol  # noqa: E402

_HERE = Path(__file__).resolve().parent
from eegmtl.evaluation.protocols import normalize_protocol  # noqa: E402
from eegmtl.evaluation.results import load_records, to_markdown  # noqa: E402

DEFAULT_METHODS = ["MixNet", "CSP+LDA", "FBCSP+SVM", "TS+SVM", "EEGNet", "ShallowFBCSPNet"]
#: methods whose configs take the deep-learning options (--max-epochs, --device)
DEEP = {"EEGNet", "ShallowFBCSPNet"} | {m for m in available_methods()
                                       if m.startswith("MixNet") or m == "MIN2Net"}
SHORT = {"subject_dependent": "sd", "subject_independent": "si"}

CONTEXT = (
    "Data: the local BCIC IV 2b epoched export (C3/Cz/C4, 250 Hz, 0-4 s after the cue, "
    "band-limited to about 6.7-25 Hz, 120 trials per session). The MixNet paper's 77.07 % (SD) "
    "/ 75.66 % (SI) were obtained on differently pre-processed data with hyper-parameters "
    "chosen on the test sessions; they are a reference, not the same experiment."
)


def parse_subjects(values: list[str]) -> list[int]:
    """``["1..9"]``, ``["1-3", "7"]`` or ``["1", "2"]`` -> sorted subject list."""
    out: set[int] = set()
    for v in values:
        for part in v.split(","):
            for sep in ("..", "-"):
                if sep in part:
                    a, b = part.split(sep)
                    out.update(range(int(a), int(b) + 1))
                    break
            else:
                out.add(int(part))
    return sorted(out)


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the text."""
    low = text.lower()
    if low in {"true", "false"}:
        return low == "true"
    if low in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def build_parser(protocol: str) -> argparse.ArgumentParser:
    short = SHORT[protocol]
    p = argparse.ArgumentParser(description=f"{protocol.replace('_', '-')} evaluation on "
                                "BCIC IV 2b (eegmtl.evaluation.run_protocol)")
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS,
                   help=f"registry names (available: {', '.join(available_methods())})")
    p.add_argument("--subjects", nargs="+", default=["1..9"], help="e.g. 1..9, 1-3 7, 1 2")
    p.add_argument("--folds", type=int, default=5, help="folds per subject (default 5)")
    p.add_argument("--only-folds", type=int, nargs="+", default=None,
                   help="run only these folds (1-based)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n-jobs", type=int, default=1, help="parallel fits (joblib)")
    p.add_argument("--backend", default="loky", help="joblib backend: loky, threading, "
                   "multiprocessing, dask, ray, ...")
    p.add_argument("--results", type=Path,
                   default=results_dir(default=_HERE / "results") / f"{short}.csv",
                   help="record CSV (default: $EEGMTL_RESULTS_DIR or pipelines/results)")
    p.add_argument("--summary-only", action="store_true",
                   help="only regenerate the markdown summary from the records")
    p.add_argument("--summary", type=Path, default=None,
                   help="markdown summary (default: <results stem>_summary.md)")
    p.add_argument("--max-epochs", type=int, default=None, help="deep methods only")
    p.add_argument("--device", default=None, help="deep methods only: cpu, cuda, auto")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config override for every method whose config has KEY "
                        "(e.g. lr=5e-4 patience=30)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: subject 1, fold 1, 2 epochs, results to *_quick.csv")
    p.add_argument("--no-resume", action="store_true", help="refit finished fits")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--history-dir", type=Path, default=None,
                   help="save per-fit training histories (task weights) as CSV")
    p.add_argument("--predictions-dir", type=Path, default=None,
                   help="save per-fit test predictions (label and probabilities per trial) "
                        "as CSV")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch threads per worker (default 1)")
    return p


def method_params(args: argparse.Namespace, protocol: str) -> dict[str, dict[str, Any]]:
    """Per-method config overrides from --max-epochs, --device and --set."""
    sets = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        sets[k] = parse_value(v)
    out: dict[str, dict[str, Any]] = {}
    for name in args.methods:
        cfg = default_config(name, protocol)
        over = {k: v for k, v in sets.items() if k in cfg}
        if name in DEEP and args.max_epochs is not None:
            over["max_epochs"] = args.max_epochs
        if name in DEEP and args.device is not None:
            over["device"] = args.device
        if over:
            out[name] = over
    return out


def command_line(argv: list[str] | None = None, script: str | None = None) -> str:
    """The command that ran (``sys.argv`` unless ``argv`` was passed to ``main``)."""
    if argv is None:
        return shlex.join([Path(sys.executable).name, *sys.argv])
    script = script or f"pipelines/{Path(__file__).name}"
    return shlex.join(["python", script, *argv])


def summary_header(
    records_path: Path, command: str | None, wall: float, title: str
) -> list[str]:
    """Append (date, wall time, command) to ``<records>.commands.log`` (unless ``command`` is
    None); return the summary header lines listing every command that wrote into the file."""
    log = records_path.with_suffix(records_path.suffix + ".commands.log")
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    log.parent.mkdir(parents=True, exist_ok=True)
    if command is not None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp}\t{wall:.1f} s\t{command}\n")
    if not log.exists():
        log.touch()
    lines = [f"# {title}", "",
             "Generated from the records by the command(s) below; do not edit by hand.", "",
             f"Records: `{_display_path(records_path)}`", "",
             "Commands (date, wall time, command):",
             "", "```"]
    lines += log.read_text(encoding="utf-8").splitlines()
    return [*lines, "```", "", CONTEXT, ""]


def _display_path(path: Path) -> str:
    """``path`` relative to the repository root when inside it (no machine paths in files)."""
    try:
        return Path(path).resolve().relative_to(_HERE.parent).as_posix()
    except ValueError:
        return Path(path).as_posix()


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_summary(
    records_path: Path, summary_path: Path, protocol: str, command: str | None, wall: float,
    *, title: str, extra: str = "",
) -> str:
    """Append (command, wall time) to ``<records>.commands.log`` and write the markdown summary
    of every record of ``protocol`` in ``records_path``."""
    df = load_records(records_path)
    df = df[df["protocol"] == protocol]
    lines = summary_header(records_path, command, wall, title)
    if df.empty:
        lines.append("No records yet.")
    else:
        lines += ["Mean ± SD over all subject × fold (× seed) rows (ddof = 1), test sessions; "
                  "`n` = rows.", "",
                  to_markdown(df, by=("pipeline",), per_subject_metric="accuracy"),
                  "Validation accuracy (the only score used for any choice):", "",
                  to_markdown(df, by=("pipeline",), metrics=("val_accuracy",)),
                  "Fit time per fold (s) and epochs trained: mean over rows.", "",
                  _times(df),
                  "Settings that tell the pipelines apart (from the records' `config`):", "",
                  _settings(df)]
        folds_per_pipe = df.groupby("pipeline")["fold"].apply(lambda f: frozenset(f.unique()))
        common = frozenset.intersection(*folds_per_pipe)
        if len(set(folds_per_pipe)) > 1 and common:
            same = df[df["fold"].isin(common)]
            shown = sorted(int(f) for f in common)
            lines += ["", f"Same folds for every pipeline (fold(s) {shown} only; some "
                      "pipelines were run on fewer folds than others, so compare them here):",
                      "", to_markdown(same, by=("pipeline",), per_subject_metric=None)]
    if extra:
        lines += ["", extra]
    text = "\n".join(lines) + "\n"
    write_text_atomic(summary_path, text)
    return text


def _times(df: Any) -> str:
    from eegmtl.evaluation.results import markdown_table

    g = df.groupby("pipeline")
    rows = [(p, f"{g.get_group(p)['time'].mean():.1f}",
             f"{g.get_group(p)['n_epochs_trained'].mean():.1f}"
             if g.get_group(p)["n_epochs_trained"].notna().any() else "–")
            for p in g.groups]
    return markdown_table(["pipeline", "fit time (s)", "epochs"], rows)


#: method-config keys shown in the summary's settings table, in this order
SETTING_KEYS = ("factory", "mtl", "input", "loss_weights", "margin", "latent_dim", "warmup",
                "batch_size", "monitor")


def _settings(df: Any) -> str:
    import json

    from eegmtl.evaluation.results import markdown_table

    rows = []
    for pipe, g in df.groupby("pipeline"):
        cfgs = [json.loads(c).get("method_config", {}) for c in g["config"].unique()]
        shown = {", ".join(f"{k}={cfg[k]}" for k in SETTING_KEYS if k in cfg) for cfg in cfgs}
        rows.append((pipe, " / ".join(sorted(shown))))
    return markdown_table(["pipeline", "settings"], rows)


def main(argv: list[str] | None = None, protocol: str = "subject_dependent") -> int:
    protocol = normalize_protocol(protocol)
    args = build_parser(protocol).parse_args(argv)
    unknown = sorted(set(args.methods) - set(available_methods()))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; available: {available_methods()}")
    subjects, folds, results = parse_subjects(args.subjects), args.only_folds, args.results
    if args.quick:
        subjects, folds = subjects[:1], [1]
        args.max_epochs = 2 if args.max_epochs is None else args.max_epochs
        if results == results_dir(default=_HERE / "results") / f"{SHORT[protocol]}.csv":
            results = results.with_name(f"{SHORT[protocol]}_quick.csv")
    summary = args.summary or results.with_name(f"{results.stem}_summary.md")
    try:
        import torch

        torch.set_num_threads(args.torch_threads)
    except ImportError:
        pass
    title = f"BCIC IV 2b, {protocol.replace('_', '-')} protocol"
    if args.summary_only:
        write_summary(results, summary, protocol, None, 0.0, title=title)
        print(f"summary {summary} regenerated from {results}")
        return 0
    df = run_protocol(
        protocol, args.methods, subjects, n_folds=args.folds, folds=folds, seeds=args.seeds,
        n_jobs=args.n_jobs, backend=args.backend, results_path=results,
        resume=not args.no_resume, progress=not args.no_progress,
        method_params=method_params(args, protocol), history_dir=args.history_dir,
        torch_threads=args.torch_threads, predictions_dir=args.predictions_dir,
    )
    wall = time.perf_counter() - _T_START
    script = "pipelines/subject_independent.py" if protocol == "subject_independent" else None
    write_summary(results, summary, protocol, command_line(argv, script), wall, title=title)
    print(to_markdown(df, by=("pipeline",), metrics=("accuracy", "f1_macro")))
    print(f"{len(df)} records in {results}; summary {summary}; wall {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
