"""The package keeps one job per module: no module grows past the layout's size (about 400
lines; a module that needs more is split by job, as ``evaluation.predictions`` was out of
``evaluation.ensemble``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "eegmtl"
LIMIT = 420


def test_no_module_over_the_size_limit() -> None:
    sizes = {p.relative_to(PACKAGE.parent).as_posix(): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 100  # the walk found the package
    big = {p: n for p, n in sizes.items() if n > LIMIT}
    assert not big, f"modules over {LIMIT} lines (split them by job): {big}"
