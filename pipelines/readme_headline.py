"""Refresh the headline tables of README.md ("Results") from the committed EEG records.

One table per protocol: every pipeline of :data:`HEADLINES` with its mean ± SD accuracy and
macro-F1 over the subject × fold fits of one seed (test sessions only), the mean over three
seeds where all three are recorded, and the Wilcoxon signed-rank test of the protocol's
MixNet-family choice against it (:func:`eegmtl.evaluation.stats.paired_tests`: subjects as
units, folds averaged per subject; uncorrected p). The records are read as ``eegmtl report
--combine`` reads them (:func:`eegmtl.evaluation.records.combine_records`: aligned runs tagged
``+EA``, the first file wins where several hold one run). The tables sit between the markers
``<!-- headline:sd -->`` / ``<!-- /headline:sd -->`` (and ``si``) of README.md; a test checks
that they match the records. Run from the checkout root after committing new records::

    python pipelines/readme_headline.py           # rewrite the tables in README.md
    python pipelines/readme_headline.py --check   # exit 1 if README.md differs from the records
    python pipelines/readme_headline.py --figures # also the reports of the same comparisons

``--figures`` writes, per table, the ``eegmtl report`` of the same records, pipelines and
reference into ``pipelines/results/report_headline_<key>/`` (its per-subject tables, paired
tests and figures; the README shows its overview of the paired differences).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.evaluation.records import combine_records
from eegmtl.evaluation.stats import paired_tests
from eegmtl.evaluation.tables import markdown_table, signed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "pipelines" / "results"
README = ROOT / "README.md"


@dataclass(frozen=True)
class Headline:
    """One headline table: its record files, split, seed, reference and rows."""

    key: str  # marker name in README.md
    files: tuple[str, ...]  # record files of the seed, in combine order (first wins)
    folds: tuple[int, ...] | None  # None: every fold
    seed: int
    reference: str  # the MixNet-family choice, tested against every other row
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (kind, pipelines), rows sorted within
    seed_files: tuple[str, ...] = ()  # files of the other seeds' runs (three-seed column)
    n_seeds: int = 3


SD_FILES = ("sd_sota_gpu.csv", "sd_sota_gpu_ea.csv", "sd_sota_ea.csv", "sd.csv", "sd_ea.csv",
            "sd_sota.csv")
SI_FILES = ("si.csv", "si_sota.csv", "si_sota_ea.csv", "si_sota_gpu.csv", "si_sota_gpu_ea.csv")
SD_CHOICE = ("MixNet[val-tuned]+aug[sr,x2]+set[monitor=val_classification_loss,"
             "unlabeled_trials=transductive]+EA")
SI_CHOICE = "EEGNet+mtl[aligned_mtl]+aug+EA"

#: the headline tables; a listed pipeline without the full split in the records is an error
HEADLINES: tuple[Headline, ...] = (
    Headline("sd", SD_FILES, None, 0, SD_CHOICE, (
        ("MixNet, paper settings", ("MixNet",)),
        ("**MixNet family, the SD choice**", (SD_CHOICE,)),
        ("MixNet family", (
            "MixNet[val-tuned]+aug[sr,x2]+set[monitor=val_classification_loss]+EA",
            "MixNet[val-tuned]+mtl[aligned_mtl]+aug[sr,x2]+EA", "MixNet[best]+EA",
            "EEGNet+mtl[aligned_mtl]+aug+EA", "ATCNet+mtl[aligned_mtl]+aug+EA",
            "MixNet[val-tuned]+EA", "MixNet[val-tuned]", "EEGNet+mtl[aligned_mtl]+recipe",
            "EEGTCNet+mtl[aligned_mtl]+recipe")),
        ("baseline, aligned", ("EEGNet+aug+EA", "TCFormer+EA", "ATCNet+EA", "EEGTCNet+EA",
                               "EEGNet+EA")),
        ("baseline", ("TCFormer", "ATCNet", "EEGTCNet", "IFNet", "FBCNet", "EEGNet[val]",
                      "CTNet", "EEGNet+aug", "EEGNet", "ShallowFBCSPNet", "EEGConformer",
                      "MIN2Net", "FBCSP+SVM", "TS+SVM", "CSP+LDA")),
    ), seed_files=("sd_seeds_ea.csv",)),
    Headline("si", SI_FILES, (1,), 0, SI_CHOICE, (
        ("MixNet, paper settings", ("MixNet",)),
        ("**MixNet family, the SI choice**", (SI_CHOICE,)),
        ("MixNet family", ("MixNet+aug+EA", "MixNet+aug+set[monitor=val_classification_loss]+EA",
                           "MixNet+EA", "EEGNet+mtl[aligned_mtl]+aug")),
        ("baseline, aligned", ("TCFormer+EA", "CTNet+EA", "EEGNet+aug+EA", "EEGTCNet+EA",
                               "ATCNet+EA", "IFNet+EA", "EEGNet+EA", "FBCSP+SVM+EA")),
        ("baseline", ("TCFormer", "ATCNet", "CTNet", "IFNet", "EEGTCNet", "EEGNet+aug",
                      "EEGNet", "MIN2Net", "FBCSP+SVM", "TS+SVM", "CSP+LDA")),
    )),
)


def _records(h: Headline, results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records of ``h``'s seed (from ``files``), and those plus the other seeds' (from
    ``seed_files``)."""
    df = combine_records([results / f for f in h.files], folds=h.folds)
    df = df[df["seed"] == h.seed]
    if not h.seed_files:
        return df, df
    other = combine_records([results / f for f in h.seed_files], folds=h.folds)
    return df, pd.concat([df, other[other["seed"] != h.seed]], ignore_index=True)


def _pct(values: pd.Series) -> str:
    return f"{100 * values.mean():.2f} ± {100 * values.std(ddof=1):.2f}"


def _p(p: float) -> str:
    if p != p:  # NaN: fewer than 5 subjects, or no difference
        return "—"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def table(h: Headline, results: Path = RESULTS) -> str:
    """The markdown table of ``h`` made from the record files in ``results``.

    Raises
    ------
    ValueError
        A listed pipeline has not every subject × fold fit of the seed in the records.
    """
    df, every = _records(h, results)
    expected = df.groupby("pipeline")[["subject", "fold"]].apply(
        lambda g: len(g.drop_duplicates())).to_dict()
    full = max(expected.values(), default=0)
    missing = [p for _, names in h.groups for p in names if expected.get(p, 0) < full]
    if missing:
        raise ValueError(f"headline {h.key}: no complete seed-{h.seed} run of {missing} in "
                         f"{', '.join(h.files)} ({full} fits expected)")
    tests = paired_tests(df, h.reference).set_index("pipeline")
    rows = []
    for kind, names in h.groups:
        means = {p: df.loc[df["pipeline"] == p, "accuracy"].mean() for p in names}
        for p in sorted(names, key=lambda n: -means[n]):
            mine = df[df["pipeline"] == p]
            seeds = every[every["pipeline"] == p]
            three = (_pct(seeds["accuracy"])
                     if seeds["seed"].nunique() >= h.n_seeds and len(seeds) >= h.n_seeds * full
                     else "—")
            if p == h.reference:
                delta, wins, p_value = "", "", ""
            else:
                t = tests.loc[p]
                delta = signed(t["mean_difference"])
                wins = f"{int(t['wins'])}/{int(t['n_subjects'])}"
                p_value = _p(float(t["p"]))
            rows.append([kind, f"`{p}`", _pct(mine["accuracy"]),
                         f"{100 * mine['f1_macro'].mean():.2f}", three, delta, wins, p_value])
    header = ["kind", "pipeline", f"accuracy % (seed {h.seed}, {full} fits)", "macro-F1 %",
              f"accuracy %, {h.n_seeds} seeds", "choice − it (pp)", "choice better on",
              "p (Wilcoxon)"]
    if all(r[4] == "—" for r in rows):  # no pipeline has every seed: no such column
        header.pop(4)
        rows = [r[:4] + r[5:] for r in rows]
    return markdown_table(header, rows)


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` (README.md) with every headline table between its markers made anew."""
    for h in HEADLINES:
        start, end = f"<!-- headline:{h.key} -->", f"<!-- /headline:{h.key} -->"
        found = re.search(re.escape(start) + r".*?" + re.escape(end), text, flags=re.S)
        if found is None:
            raise ValueError(f"README.md has no {start} ... {end} block")
        block = f"{start}\n{table(h, results)}\n{end}"
        text = text[:found.start()] + block + text[found.end():]
    return text


def figures(results: Path = RESULTS) -> list[Path]:
    """The report (:func:`eegmtl.evaluation.report.report`) of every headline table's records,
    pipelines and reference, in ``results/report_headline_<key>/``; returns the report files."""
    from eegmtl.evaluation.report import report

    out = []
    for h in HEADLINES:
        names = [p for _, group in h.groups for p in group]
        out.append(report([results / f for f in h.files], results / f"report_headline_{h.key}",
                          reference=h.reference, combine=True, seeds=[h.seed], folds=h.folds,
                          pipelines=names, require_reference=True))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if README.md's tables differ from the records")
    parser.add_argument("--figures", action="store_true",
                        help="also write the reports of the same comparisons "
                             "(pipelines/results/report_headline_<key>/)")
    args = parser.parse_args(argv)
    if args.figures:
        for path in figures():
            print(f"report: {path}")
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print("README.md's headline tables differ from the records: run "
                  "python pipelines/readme_headline.py")
            return 1
        return 0
    if new != text:
        atomic_write(README, new)
        print("README.md: headline tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
