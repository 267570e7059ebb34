"""Subject-dependent (SD) and subject-independent (SI) evaluation on BCIC IV 2b: every method on
the same splits (``eegmtl sd`` / ``eegmtl si``).

SD (MixNet paper): per subject, StratifiedKFold(5, shuffle, random_state=42) on sessions 1-3
gives train / validation; the test set is always sessions 4-5 of that subject. SI: each subject
is held out in turn and tested on its sessions 4-5; the other 8 subjects are split **by
subject** into 5 folds (validation groups of 2, 2, 2, 1, 1 subjects); training pools sessions
1-5 of the remaining subjects. 9 subjects x 5 folds = 45 fits per method and seed. MixNet-type
methods use the validation fold for early stopping; the baselines are fitted on the training
part only (the deep baselines hold out their own 20 % of it).

Writes one record per subject x fold x method x seed to ``--results`` (CSV, MOABB-compatible
columns), merged atomically after every fit; a rerun skips finished fits (same pipeline,
subject, fold, seed and config hash). Then writes a markdown summary generated from the records
(``--summary``, default ``<results>_summary.md``) whose header holds the exact commands and wall
times of every run that wrote into the record file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.evaluation.methods import (
    available_methods,
    default_config,
    is_deep_method,
    is_method,
    method_error,
)
from eegmtl.evaluation.overrides import (
    FLAT_PREFIX,
    NETWORK_PREFIX,
    apply_overrides,
    check_flat_fields,
    check_network_args,
    network_slot,
)
from eegmtl.experiments._common import (
    add_checkpoint_arguments,
    add_parallel_arguments,
    add_scheduling_arguments,
    command_line,
    deadline_after,
    elapsed_s,
    fit_checkpoint_dir,
    non_negative_int,
    parse_subjects,
    parse_value,
    positive_int,
    set_torch_threads,
)
from eegmtl.mixnet.defaults import normalize_protocol, protocol_short
from eegmtl.parallel import WorkerDiedError

__all__ = ["DEFAULT_METHODS", "add_arguments", "expected_fit_times", "method_params", "run"]

DEFAULT_METHODS = ["MixNet", "CSP+LDA", "FBCSP+SVM", "TS+SVM", "EEGNet", "ShallowFBCSPNet"]
#: methods whose configs take the deep-learning options (--max-epochs, --device)
DEEP = {"EEGNet", "ShallowFBCSPNet"} | {m for m in available_methods()
                                       if m.startswith("MixNet") or m == "MIN2Net"}


def _default_results(protocol: str) -> Path:
    return results_dir() / f"{protocol_short(protocol)}.csv"


def add_arguments(parser: argparse.ArgumentParser, protocol: str = "subject_dependent") -> None:
    """Options of ``eegmtl sd`` (``protocol="subject_dependent"``) or ``eegmtl si``."""
    protocol = normalize_protocol(protocol)
    parser.set_defaults(protocol=protocol)
    parser.description = (f"{protocol.replace('_', '-')} evaluation on BCIC IV 2b "
                          f"(eegmtl.evaluation.run_protocol). {RESULTS_DIR_HELP}.")
    p = parser
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS,
                   help=f"registry names (available: {', '.join(available_methods())})")
    p.add_argument("--subjects", nargs="+", default=["1..9"], help="e.g. 1..9, 1-3 7, 1 2")
    p.add_argument("--folds", type=int, default=5, help="folds per subject (default 5)")
    p.add_argument("--only-folds", type=int, nargs="+", default=None,
                   help="run only these folds (1-based)")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0])
    add_parallel_arguments(p)
    p.add_argument("--results", type=Path, default=_default_results(protocol),
                   help=f"record CSV (default <results folder>/{protocol_short(protocol)}.csv; "
                        f"{RESULTS_DIR_HELP})")
    p.add_argument("--summary-only", action="store_true",
                   help="only regenerate the markdown summary from the records")
    p.add_argument("--summary", type=Path, default=None,
                   help="markdown summary (default: <results stem>_summary.md)")
    p.add_argument("--max-epochs", type=positive_int, default=None, help="deep methods only")
    p.add_argument("--device", default=None, help="deep methods only: cpu, cuda, auto")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config override for every method whose config has KEY "
                        "(e.g. lr=5e-4 patience=30; model.ARG=VALUE: an argument of the "
                        "braindecode network; flat.FIELD=VALUE: of a MixNet-family "
                        "pipeline's flat-minima step); the pipeline names do not carry it: "
                        "for a named variant use NAME+set[KEY=VALUE,...]")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: subject 1, fold 1, 2 epochs, results to *_quick.csv")
    p.add_argument("--no-resume", action="store_true", help="refit finished fits")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--history-dir", type=Path, default=None,
                   help="save per-fit training histories (task weights) as CSV")
    p.add_argument("--augment", default=None, metavar="SPEC",
                   help="augment every deep method's training batches: 'sr' (= NAME+aug) or "
                        "a list such as 'sr,ft' (= NAME+aug[sr,ft]); the pipeline names carry it")
    p.add_argument("--alignment", choices=("none", "transductive", "inductive"), default="none",
                   help="Euclidean alignment per recording (subject x session): transductive = "
                        "each recording on its own trials (the cross-subject literature's "
                        "setting); inductive = references fitted on training trials only")
    p.add_argument("--validation", choices=("random", "session"), default="random",
                   help="SD validation part: random = stratified folds of sessions 1-3 (the "
                        "reference); session = each training session held out in turn (3 "
                        "folds; validation sees the shift between sessions)")
    p.add_argument("--predictions-dir", type=Path, default=None,
                   help="save per-fit test predictions (label and probabilities per trial) "
                        "as CSV")
    add_checkpoint_arguments(p)
    add_scheduling_arguments(p, expected="by the recorded fit times of its pipeline on this "
                                          "kind of device in --results / --estimate-from")
    p.add_argument("--estimate", action="store_true",
                   help="fit nothing: print the fits still to run per pipeline and their CPU "
                        "time, estimated from the fit times of the records (--results and "
                        "--estimate-from)")
    p.add_argument("--estimate-from", type=Path, nargs="+", default=[], metavar="CSV",
                   help="more record files whose fit times --estimate may use")


def method_params(args: argparse.Namespace, protocol: str) -> dict[str, dict[str, Any]]:
    """Per-method config overrides from --max-epochs, --device and --set."""
    sets = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        sets[k] = parse_value(v)
    out: dict[str, dict[str, Any]] = {}
    unused = set(sets)
    network = {k: v for k, v in sets.items() if k.startswith(NETWORK_PREFIX)}
    flat = {k: v for k, v in sets.items() if k.startswith(FLAT_PREFIX)}
    try:
        check_flat_fields(flat)
    except ValueError as err:
        raise SystemExit(f"eegmtl {protocol_short(protocol)}: --set: {err}") from None
    for name in args.methods:
        try:
            cfg = default_config(name, protocol)
        except ValueError as err:
            raise SystemExit(f"eegmtl {protocol_short(protocol)}: {err}") from None
        over = {k: v for k, v in sets.items() if k in cfg}
        # model.<argument> where the method has a braindecode network, flat.<field> where it
        # is MixNet-family (its flat-minima step): applied to the config, the changed entries
        nested = {**(network if network_slot(cfg) is not None else {}),
                  **(flat if "mtl" in cfg else {})}
        if nested:
            try:
                check_network_args(cfg, nested)
            except ValueError as err:
                raise SystemExit(f"eegmtl {protocol_short(protocol)}: --set for {name}: "
                                 f"{err}") from None
            changed = apply_overrides(cfg, nested)
            over.update({k: v for k, v in changed.items() if cfg.get(k) != v})
            unused -= set(nested)
        unused -= set(over)
        if is_deep_method(name) and args.max_epochs is not None:
            over["max_epochs"] = args.max_epochs
        if is_deep_method(name) and args.device is not None:
            over["device"] = args.device
        if over:
            out[name] = over
    if unused:
        raise SystemExit(f"eegmtl {protocol_short(protocol)}: --set {sorted(unused)}: none of "
                         f"{list(args.methods)} has such a setting (a key of a method's "
                         "configuration, model.<argument> of a braindecode network or "
                         "flat.<field> of a MixNet-family pipeline's flat-minima step).")
    return out


def _records_of(record_files: list[Path]) -> tuple[Any, list[Path]]:
    """The records of those of ``record_files`` that exist, in one frame (empty, with the
    columns the estimates read, when none does), and the files found."""
    import pandas as pd

    from eegmtl.evaluation.records import load_records

    found = [f for f in record_files if Path(f).is_file()]
    records = (pd.concat([load_records(f) for f in found], ignore_index=True) if found
               else pd.DataFrame(columns=["pipeline", "config_hash", "time"]))
    return records, found


def expected_fit_times(record_files: list[Path], protocol: str, methods: list[str],
                       gpu: bool | Mapping[str, bool], *,
                       config_hashes: Mapping[str, Iterable[str]] | None = None,
                       ) -> dict[str, float]:
    """Median recorded time of one fit per pipeline of ``methods`` in ``protocol``, from the
    records of ``record_files`` made on the same kind of device as the pipeline's fits will
    run on (``gpu``: for every pipeline, or per pipeline; GPU records where true, CPU records
    otherwise; :func:`~eegmtl.evaluation.estimate.timed_on_gpu`): those with one of the
    pipeline's ``config_hashes`` (the settings of the fits to run, e.g. not a shorter
    ``--max-epochs`` run under the same name) where there are any, else those of the same
    name (:func:`~eegmtl.evaluation.estimate.reference_records`); pipelines without such
    records are left out."""
    import numpy as np
    import pandas as pd

    from eegmtl.evaluation.estimate import reference_records, timed_on_gpu

    records = _records_of(record_files)[0]
    if not {"pipeline", "protocol", "time"} <= set(records.columns):
        return {}
    on_gpu = timed_on_gpu(records)
    out = {}
    for m in methods:
        same = on_gpu == (gpu.get(m, False) if isinstance(gpu, Mapping) else gpu)
        ref = reference_records(records[same], m, protocol=protocol,
                                config_hashes=(config_hashes or {}).get(m, ()))[0]
        times = pd.to_numeric(ref["time"], errors="coerce").dropna() if len(ref) else []
        if len(times):
            out[m] = float(np.median(times))
    return out


def _print_estimate(plan: Any, record_files: list[Path]) -> int:
    """Print :func:`~eegmtl.evaluation.estimate.estimate_remaining` for ``plan``."""
    import pandas as pd

    from eegmtl.evaluation.estimate import estimate_remaining
    from eegmtl.evaluation.tables import markdown_table

    records, found = _records_of(record_files)
    table = estimate_remaining(plan, records)
    if table.empty:
        print(f"nothing to run: all {plan.attrs.get('n_done', 0)} requested fits have a record")
        return 0
    show = table.copy()
    for c in ("fit_s_mean", "fit_s_min", "fit_s_max"):
        show[c] = show[c].map(lambda v: "–" if pd.isna(v) else f"{v:.0f}")
    show["cpu_h"] = show["cpu_h"].map(lambda v: "?" if pd.isna(v) else f"{v:.2f}")
    print(markdown_table(list(show.columns), show.itertuples(index=False)), end="")
    unknown = table.attrs["unknown"]
    sources = ", ".join(str(f) for f in found) or "none found"
    head = (f"{int(table['todo'].sum())} fits to run ({plan.attrs.get('n_done', 0)} of those "
            f"requested are done)")
    if len(unknown) == len(table):
        print(f"{head}: CPU time unknown, no reference fit time for {unknown} in the records "
              f"({sources}); add record files with --estimate-from")
    else:
        print(f"{head}: ≈ {table.attrs['total_cpu_h']:.1f} CPU-h at the fit times of the "
              f"records ({sources}), one fit per thread"
              + (f", plus the fits of {unknown}, which have no reference fit time"
                 if unknown else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the evaluation (or regenerate its summary) as parsed by :func:`add_arguments`."""
    from eegmtl.evaluation.runner import run_protocol
    from eegmtl.evaluation.tables import to_markdown
    from eegmtl.experiments.summaries import (
        record_keys,
        selection_rows,
        write_interrupted_summary,
        write_summary,
    )

    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")  # quiet CSP logs (workers inherit)
    protocol = normalize_protocol(args.protocol)
    if args.augment:
        suffix = "+aug" if args.augment == "sr" else f"+aug[{args.augment}]"
        args.methods = [m + suffix if is_method(m) and is_deep_method(m) and "+aug" not in m else m
                        for m in args.methods]
    errors = {m: method_error(m) for m in dict.fromkeys(args.methods)}
    errors = {m: e for m, e in errors.items() if e is not None}
    if errors:
        raise SystemExit("\n".join(["invalid method name(s):",
                                     *(f"  {m}: {e}" for m, e in errors.items())]))
    subjects, folds, results = parse_subjects(args.subjects), args.only_folds, args.results
    if args.quick:
        subjects, folds = subjects[:1], [1]
        args.max_epochs = 2 if args.max_epochs is None else args.max_epochs
        if results == _default_results(protocol):
            results = results.with_name(f"{protocol_short(protocol)}_quick.csv")
    summary = args.summary or results.with_name(f"{results.stem}_summary.md")
    set_torch_threads(args.torch_threads)
    title = f"BCIC IV 2b, {protocol.replace('_', '-')} protocol"
    if args.summary_only:
        write_summary(results, summary, protocol, None, 0.0, title=title)
        print(f"summary {summary} regenerated from {results}")
        return 0
    run_kw = dict(
        n_folds=args.folds, folds=folds, seeds=args.seeds, n_jobs=args.n_jobs,
        backend=args.backend, address=args.address, results_path=results,
        resume=not args.no_resume, progress=not args.no_progress,
        method_params=method_params(args, protocol), history_dir=args.history_dir,
        torch_threads=args.torch_threads, predictions_dir=args.predictions_dir,
        alignment=args.alignment, validation=args.validation,
        checkpoint_dir=fit_checkpoint_dir(args),
        batch_fits=args.batch_fits, batch_speedup=args.batch_speedup)
    limited = {}
    if args.time_limit is not None and not args.estimate:
        from eegmtl.mtl.runtime import select_device

        deadline = deadline_after(args.time_limit)
        # networks train on the GPU when there is one (device "auto") or where --device says;
        # the other pipelines on the CPU
        gpu_run = select_device(args.device or "auto").type != "cpu"
        gpu = {m: gpu_run and is_deep_method(m) for m in args.methods}
        # the config hashes of the fits to run: records of the same settings come first
        plan = run_protocol(protocol, args.methods, subjects, plan_only=True, **run_kw)
        hashes = {m: set(plan.loc[plan["pipeline"] == m, "config_hash"].astype(str))
                  for m in args.methods}
        limited = {"deadline": deadline,
                   "expected_fit_s": expected_fit_times([results, *args.estimate_from],
                                                        protocol, list(args.methods), gpu,
                                                        config_hashes=hashes)}
    keys_before = record_keys(results, args.methods) if not args.estimate else set()
    try:
        df = run_protocol(protocol, args.methods, subjects, plan_only=args.estimate,
                          **run_kw, **limited)
    except (KeyboardInterrupt, WorkerDiedError) as err:  # Ctrl-C, SIGTERM, a dead worker:
        # the summary of what is recorded so far
        if not args.estimate:
            write_interrupted_summary(results, summary, protocol, command_line(args),
                                      elapsed_s(), title=title,
                                      keys_before=keys_before, pipelines=args.methods,
                                      n_recorded=getattr(err, "n_recorded", None))
            print(f"summary {summary} written from the records so far", file=sys.stderr)
        raise
    if args.estimate:
        return _print_estimate(df, [results, *args.estimate_from])
    wall = elapsed_s()
    n_new = df.attrs["n_fitted"]
    # a call that only found finished fits adds nothing to the record of what made the file
    write_summary(results, summary, protocol, command_line(args) if n_new else None, wall,
                  title=title)
    selection = selection_rows(df)
    if (~selection).any():
        print(to_markdown(df[~selection], by=("pipeline",), metrics=("accuracy", "f1_macro")))
    if selection.any():
        print("validation accuracy of the model-selection run (test scores recorded, not shown):")
        print(to_markdown(df[selection], by=("pipeline",), metrics=("val_accuracy",)))
    print(f"{len(df)} records in {results} ({n_new} new); summary {summary}; "
          f"wall {wall:.1f} s")
    if df.attrs.get("n_deferred"):
        print(f"time limit: {df.attrs['n_deferred']} fits not started; run the same command "
              "again to resume")
    return 0
