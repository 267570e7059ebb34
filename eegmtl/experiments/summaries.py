"""Markdown summaries of EEG record files, generated from the records (never typed by hand).

Each summary starts with every command that wrote into the record file (kept in
``<records>.commands.log``: date, wall time, command), then mean ± SD tables, the validation
scores, fit times and the settings that tell the pipelines apart. Rows of model-selection runs
(validation on held-out training sessions) are summarised by their validation scores only.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.evaluation.records import done_keys, load_records
from eegmtl.evaluation.tables import markdown_table, to_markdown
from eegmtl.experiments._common import display_path

__all__ = ["CONTEXT", "SELECTION_NOTE", "SETTING_KEYS", "record_keys", "selection_rows",
           "summary_header", "write_interrupted_summary", "write_summary"]

CONTEXT = (
    "Data: the local BCIC IV 2b epoched export (C3/Cz/C4, 250 Hz, 0-4 s after the cue, "
    "band-limited to about 6.7-25 Hz, 120 trials per session). The MixNet paper's 77.07 % (SD) "
    "/ 75.66 % (SI) were obtained on differently pre-processed data with hyper-parameters "
    "chosen on the test sessions; they are a reference, not the same experiment."
)

#: what a summary says about the rows of model-selection runs (:func:`selection_rows`)
SELECTION_NOTE = (
    "Model-selection runs (validation on each held-out training session, `--validation "
    "session`): validation accuracy only, mean ± SD over subject × fold rows. Their test "
    "scores are in the records but not shown, so that a choice made from this summary cannot "
    "read them; score the chosen pipeline in its own run."
)

#: method-config keys shown in the summary's settings table, in this order
SETTING_KEYS = ("factory", "mtl", "input", "loss_weights", "margin", "latent_dim", "warmup",
                "batch_size", "monitor")


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
             f"Records: `{display_path(records_path)}`", "",
             "Commands (date, wall time, command):",
             "", "```"]
    lines += log.read_text(encoding="utf-8").splitlines()
    return [*lines, "```", "", CONTEXT, ""]


def write_summary(
    records_path: Path, summary_path: Path, protocol: str, command: str | None, wall: float,
    *, title: str, extra: str = "",
) -> str:
    """Append (command, wall time) to ``<records>.commands.log`` and write the markdown summary
    of every record of ``protocol`` in ``records_path``; returns the text."""
    df = load_records(records_path)
    df = df[df["protocol"] == protocol]
    lines = summary_header(records_path, command, wall, title)
    selection = selection_rows(df)
    scored, chosen_from = df[~selection], df[selection]
    if df.empty:
        lines.append("No records yet.")
    if not scored.empty:
        lines += _scored_tables(scored)
    if not chosen_from.empty:
        lines += [*([""] if not scored.empty else []), SELECTION_NOTE, "",
                  to_markdown(chosen_from, by=("pipeline",), metrics=("val_accuracy",)),
                  *_fit_tables(chosen_from)]
    if extra:
        lines += ["", extra]
    text = "\n".join(lines) + "\n"
    atomic_write(summary_path, text)
    return text


def record_keys(records_path: Path, pipelines: Iterable[str] | None = None) -> set[tuple]:
    """Keys of the records in ``records_path`` (:func:`~eegmtl.evaluation.records.done_keys`),
    of ``pipelines`` only when given; empty when there is no such file."""
    if not Path(records_path).is_file():
        return set()
    df = load_records(records_path)
    if pipelines is not None:
        df = df[df["pipeline"].isin(list(pipelines))]
    return done_keys(df)


def write_interrupted_summary(
    records_path: Path, summary_path: Path, protocol: str, command: str, wall: float,
    *, title: str, keys_before: set[tuple], pipelines: Iterable[str] | None = None,
    n_recorded: int | None = None,
) -> None:
    """The summary of a run stopped by Ctrl-C or SIGTERM: every record written so far, and
    ``command`` logged (marked ``# interrupted``) when the run added records: ``n_recorded``
    when the run counted them itself, else the keys of its ``pipelines`` that were not among
    ``keys_before`` (:func:`record_keys` at its start), so that rows other runs add to the same
    file meanwhile are not counted (those of the same pipelines from a concurrent process
    would be)."""
    added = (int(n_recorded) if n_recorded is not None
             else len(record_keys(records_path, pipelines) - keys_before))
    write_summary(records_path, summary_path, protocol,
                  f"{command}  # interrupted after {added} new records" if added > 0 else None,
                  wall, title=title)


def selection_rows(df: pd.DataFrame) -> pd.Series:
    """Rows of model-selection runs: validation on held-out training sessions
    (``--validation session``), whose test scores a summary does not show."""
    if df.empty or "config" not in df:
        return pd.Series(False, index=df.index)
    by_config = {c: json.loads(c).get("validation") == "session" for c in df["config"].unique()}
    return df["config"].map(by_config).astype(bool)


def _scored_tables(df: pd.DataFrame) -> list[str]:
    lines = ["Mean ± SD over all subject × fold (× seed) rows (ddof = 1), test sessions; "
             "`n` = rows.", "",
             to_markdown(df, by=("pipeline",), per_subject_metric="accuracy"),
             "Validation accuracy (the only score used for any choice):", "",
             to_markdown(df, by=("pipeline",), metrics=("val_accuracy",)),
             *_fit_tables(df)]
    folds_per_pipe = df.groupby("pipeline")["fold"].apply(lambda f: frozenset(f.unique()))
    common = frozenset.intersection(*folds_per_pipe)
    if len(set(folds_per_pipe)) > 1 and common:
        same = df[df["fold"].isin(common)]
        shown = sorted(int(f) for f in common)
        lines += ["", f"Same folds for every pipeline (fold(s) {shown} only; some "
                  "pipelines were run on fewer folds than others, so compare them here):",
                  "", to_markdown(same, by=("pipeline",), per_subject_metric=None)]
    return lines


def _fit_tables(df: pd.DataFrame) -> list[str]:
    """Fit times and the settings that tell the pipelines apart."""
    return ["Fit time per fold (s) and epochs trained: mean over rows.", "", _times(df),
            "Settings that tell the pipelines apart (from the records' `config`):", "",
            _settings(df)]


def _times(df: pd.DataFrame) -> str:
    g = df.groupby("pipeline")
    rows = [(p, f"{g.get_group(p)['time'].mean():.1f}",
             f"{g.get_group(p)['n_epochs_trained'].mean():.1f}"
             if g.get_group(p)["n_epochs_trained"].notna().any() else "–")
            for p in g.groups]
    return markdown_table(["pipeline", "fit time (s)", "epochs"], rows)


def _settings(df: pd.DataFrame) -> str:
    rows = []
    for pipe, g in df.groupby("pipeline"):
        cfgs = [json.loads(c).get("method_config", {}) for c in g["config"].unique()]
        shown = {", ".join(f"{k}={cfg[k]}" for k in SETTING_KEYS if k in cfg) for cfg in cfgs}
        rows.append((pipe, " / ".join(sorted(shown))))
    return markdown_table(["pipeline", "settings"], rows)
