"""The README's headline tables are made from the committed records (pipelines/readme_headline.py),
and the numbers and tests in them are computed as the table says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("readme_headline",
                                                  ROOT / "pipelines" / "readme_headline.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # the dataclass looks its module up while it is defined
    spec.loader.exec_module(mod)
    return mod


def test_readme_headline_tables_match_the_committed_records():
    mod = _module()
    text = mod.README.read_text(encoding="utf-8")
    assert mod.render(text) == text, (
        "README.md's headline tables differ from the records: run "
        "python pipelines/readme_headline.py")


def _records(folder: Path, name: str, rows: list[tuple[str, int, int, int, float]],
             aligned: bool = False) -> None:
    cfg = json.dumps({"alignment": "transductive"} if aligned else {})
    pd.DataFrame([{"dataset": "d", "protocol": "subject_dependent", "pipeline": p,
                   "subject": s, "fold": f, "seed": seed, "accuracy": a, "f1_macro": a - 0.01,
                   "config_hash": f"h-{p}-{aligned}", "config": cfg}
                  for p, s, f, seed, a in rows]).to_csv(folder / name, index=False)


def test_headline_table_means_differences_and_wilcoxon(tmp_path):
    """Choice C against A (C better on 9/9 subjects by 2-10 points: exact p = 2/2^9) and B
    (seed 0 in one file, seeds 1-2 in the seed file: the three-seed column)."""
    mod = _module()
    rows = []
    for s in range(1, 10):
        for f in (1, 2):
            rows += [("C", s, f, 0, 0.70 + 0.01 * s), ("A", s, f, 0, 0.70 - 0.01 * s),
                     ("B", s, f, 0, 0.70 + 0.01 * s)]
    _records(tmp_path, "r.csv", rows)
    _records(tmp_path, "seeds.csv", [("B", s, f, seed, 0.60 + 0.01 * s) for s in range(1, 10)
                                     for f in (1, 2) for seed in (0, 1, 2)])
    h = mod.Headline("x", ("r.csv",), None, 0, "C",
                     (("choice", ("C",)), ("others", ("A", "B"))), seed_files=("seeds.csv",))
    lines = mod.table(h, tmp_path).splitlines()
    assert "accuracy % (seed 0, 18 fits)" in lines[0] and "3 seeds" in lines[0]
    cells = {}
    for line in lines[2:]:
        row = [c.strip() for c in line.strip()[1:-1].split("|")]
        cells[row[1]] = row
    # 71-79 % twice each: mean 75, SD sqrt(120 / 17)
    assert cells["`C`"][2] == "75.00 ± 2.66" and cells["`C`"][3] == "74.00"
    assert cells["`C`"][5:] == ["", "", ""]
    a = cells["`A`"]
    assert a[5:] == ["+10.00", "9/9", f"{2 / 2 ** 9:.3f}"]
    # B: seed 0 from r.csv (the seed file's seed-0 rows are not counted twice), seeds 1-2 from
    # the seed file: mean of 75 (18 fits) and 65 (36 fits)
    b = cells["`B`"]
    assert b[4].startswith(f"{(75 + 2 * 65) / 3:.2f} ± ")
    assert b[5:] == ["0.00", "0/9", "—"]  # no difference: no test
    # rows within a group sorted by accuracy; a listed pipeline without its fits is an error
    assert [c[1] for c in cells.values()] == ["`C`", "`B`", "`A`"]
    bad = mod.Headline("x", ("r.csv",), None, 0, "C", (("o", ("C", "D")),))
    with pytest.raises(ValueError, match=r"no complete seed-0 run of \['D'\]"):
        mod.table(bad, tmp_path)


def test_render_needs_the_markers():
    mod = _module()
    with pytest.raises(ValueError, match="no <!-- headline:sd -->"):
        mod.render("# a README without the tables\n")
