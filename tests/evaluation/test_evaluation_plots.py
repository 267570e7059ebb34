"""Figures from records and histories: they draw, save and return a Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from eegmtl.evaluation.plots import (
    confusion_matrix_plot,
    paired_comparison_plot,
    paired_differences_plot,
    save_figure,
    subject_scores_plot,
    task_weights_plot,
    variant_pairs_plot,
)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"protocol": "subject_dependent", "pipeline": p, "subject": s, "fold": f,
             "accuracy": b + 0.02 * s + rng.normal(0, 0.02)}
            for p, b in (("MixNet", 0.7), ("CSP+LDA", 0.65)) for s in range(1, 10)
            for f in range(1, 6)]
    return pd.DataFrame(rows)


def test_subject_scores_plot(records, tmp_path):
    fig = subject_scores_plot(records, path=tmp_path / "subjects.png")
    assert isinstance(fig, Figure) and (tmp_path / "subjects.png").stat().st_size > 0
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"S{s}" for s in range(1, 10)]
    assert len(ax.get_legend().get_texts()) == 2


def test_paired_comparison_plot(records, tmp_path):
    fig = paired_comparison_plot(records, "CSP+LDA", "MixNet", path=tmp_path / "paired.pdf")
    means = records.pivot_table(index="subject", columns="pipeline", values="accuracy")
    wins = int((means["MixNet"] > means["CSP+LDA"]).sum())
    assert fig.axes[0].get_title() == f"MixNet better on {wins}/9 subjects"
    assert (tmp_path / "paired.pdf").exists()
    with pytest.raises(ValueError, match="not in records"):
        paired_comparison_plot(records, "CSP+LDA", "EEGNet")


def test_task_weights_plot(tmp_path):
    hist = pd.DataFrame({"epoch": np.repeat(np.arange(10), 3), "step": np.arange(30),
                         "weight_recon": np.linspace(1, 0.2, 30),
                         "weight_triplet": 0.3, "weight_ce": np.linspace(1, 0.5, 30),
                         "loss_ce": 0.1})
    fig = task_weights_plot(hist, path=tmp_path / "w.png")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["recon", "triplet", "ce"]
    assert np.allclose(lines[0].get_ydata(), hist.groupby("epoch").weight_recon.mean())
    assert len(task_weights_plot(hist, x="step").axes[0].get_lines()[0].get_xdata()) == 30
    with pytest.raises(ValueError, match="weight_<task>"):
        task_weights_plot(hist[["epoch", "loss_ce"]])


def test_confusion_matrix_plot(tmp_path):
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 1, 1, 0, 1])
    fig = confusion_matrix_plot(y, p, path=tmp_path / "cm.png")
    img = fig.axes[0].get_images()[0].get_array()
    assert np.allclose(img, [[2 / 3, 1 / 3], [1 / 5, 4 / 5]])
    counts = confusion_matrix_plot(y, p, normalize=None).axes[0].get_images()[0].get_array()
    assert np.array_equal(counts, [[2, 1], [1, 4]])


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_writes_the_suffix_format_atomically(tmp_path, suffix, magic):
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = tmp_path / "sub" / f"fig{suffix}"
    assert save_figure(fig, path) == path
    assert path.read_bytes().startswith(magic)
    assert [f.name for f in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_save_figure_keeps_the_old_file_when_drawing_fails(tmp_path):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="no suffix"):
        save_figure(Figure(), tmp_path / "fig")
    with pytest.raises(ValueError):  # matplotlib rejects an unknown format mid-save
        save_figure(Figure(), tmp_path / "fig.notaformat")
    assert path.read_bytes() == b"old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fig.png"]


def test_paired_differences_plot(records, tmp_path):
    from eegmtl.evaluation.stats import paired_differences, paired_tests

    mixnet = records[records["pipeline"] == "MixNet"]
    df = pd.concat([records, mixnet.assign(pipeline="EEGNet", accuracy=mixnet["accuracy"] + 0.01)])
    fig = paired_differences_plot(df, "MixNet", path=tmp_path / "diff.png")
    assert (tmp_path / "diff.png").stat().st_size > 0
    ax = fig.axes[0]
    tests = paired_tests(df, "MixNet")
    # closest competitor on top: EEGNet (MixNet 1 point below it), then CSP+LDA
    assert [t.get_text() for t in ax.get_yticklabels()] == ["EEGNet", "CSP+LDA"]
    diffs = paired_differences(df, "MixNet")
    assert len(diffs) == 18 and np.allclose(
        diffs.groupby("pipeline")["difference"].mean().reindex(tests["pipeline"]),
        tests["mean_difference"])
    # the means are the diamonds; a significant win by >= 2 points is filled
    means = [c for c in ax.collections if c.get_offsets().shape[0] == 1]
    x = [float(c.get_offsets()[0, 0]) for c in means]
    assert np.allclose(x, 100 * tests.sort_values("mean_difference")["mean_difference"])
    filled = [tuple(c.get_facecolor()[0]) != (1.0, 1.0, 1.0, 1.0) for c in means]
    assert filled == [False, True]
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("-1.00") and t.endswith("0/9") for t in texts)
    with pytest.raises(ValueError, match="reference pipeline"):
        paired_differences_plot(df, "ATCNet")


def test_variant_pairs_plot_joins_each_subject_and_draws_the_means(tmp_path):
    rows = [{"pipeline": p, "subject": s, "session": k, "cs_mode": m,
             "score": 0.6 + 0.01 * s + (0.05 if p.endswith("+EA") else 0.0) + 0.01 * k}
            for m in ("train", "train_and_target_labeled_20p")
            for p in ("CSP+LDA", "CSP+LDA+EA", "MixNet") for s in range(1, 6) for k in (0, 1)]
    df = pd.DataFrame(rows)
    df = df[~((df["cs_mode"] != "train") & (df["pipeline"] == "MixNet"))]
    fig = variant_pairs_plot(df, "score", panel="cs_mode", path=tmp_path / "pairs.png")
    assert (tmp_path / "pairs.png").stat().st_size > 0
    first, second = fig.axes
    assert [t.get_text() for t in first.get_xticklabels()] == ["CSP+LDA", "+EA", "MixNet"]
    assert [t.get_text() for t in second.get_xticklabels()] == ["CSP+LDA", "+EA"]
    assert second.get_title() == "train_and_target_labeled_20p"
    # one line per subject from the plain score (sessions averaged) to the aligned one
    points = [line.get_ydata() for line in first.lines if line.get_marker() == "o"]
    pairs = [p for p in points if len(p) == 2]
    assert len(points) == 10  # and MixNet (no variant): one point per subject
    assert len(pairs) == 5
    assert np.allclose(sorted(p[0] for p in pairs), [100 * (0.605 + 0.01 * s) for s in range(1, 6)])
    assert np.allclose([p[1] - p[0] for p in pairs], 5.0)
    means = first.collections[0].get_segments()
    assert np.allclose([seg[0][1] for seg in means], [63.5, 68.5])
    with pytest.raises(ValueError, match="lack column"):
        variant_pairs_plot(df.drop(columns="cs_mode"), "score", panel="cs_mode")
    with pytest.raises(ValueError, match="no records"):
        variant_pairs_plot(df.assign(score=np.nan), "score")


def test_paired_differences_plot_title_clears_the_column_header(records):
    """A long reference name: the title and the header of the right-hand column do not
    overlap once drawn."""
    long = "MixNet[val-tuned]+mtl[aligned_mtl]+aug[sr,mask]+EA"
    mixnet = records[records["pipeline"] == "MixNet"]
    df = pd.concat([records[records["pipeline"] != "MixNet"], mixnet.assign(pipeline=long)])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = paired_differences_plot(df, long)
    renderer = FigureCanvasAgg(fig).get_renderer()
    header = [t for t in fig.axes[0].texts if t.get_text().startswith("mean  p")]
    assert len(header) == 1
    title = [t for t in [fig._suptitle, fig.axes[0].title]
             if t is not None and long in t.get_text()]
    assert len(title) == 1
    box_h = header[0].get_window_extent(renderer)
    box_t = title[0].get_window_extent(renderer)
    assert not box_h.overlaps(box_t)
