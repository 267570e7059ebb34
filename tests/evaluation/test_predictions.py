"""The per-fit prediction files: names made by ``fit_stem`` are the ones ``load_predictions``
finds, the table ``fold_predictions`` writes reads back unchanged, and the helpers say what is
wrong with a table that cannot be averaged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from eegmtl.evaluation.predictions import (
    file_token,
    fit_stem,
    load_predictions,
    score_classes,
    score_columns,
)
from eegmtl.evaluation.scoring import fold_predictions


def test_fit_stem_replaces_characters_outside_the_file_name_set() -> None:
    stem = fit_stem("subject_dependent", "MixNet[val-tuned]+aug[sr,x2]", 3, 2, 1, "0a1b")
    assert stem == "subject_dependent_MixNet_val-tuned_+aug_sr_x2__S3_F2_seed1_0a1b"
    assert file_token("a b/c:d") == "a_b_c_d"


def test_written_files_read_back_by_pipeline_name(tmp_path: Path) -> None:
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    written = {}
    for pipeline in ("Net[a]+aug[sr,x2]", "Net[a]"):  # the second name is a prefix of the first
        task = SimpleNamespace(protocol="subject_dependent", pipeline=pipeline, subject=1,
                               fold=2, seed=0, config_hash="abc")
        df = fold_predictions(y, np.arange(5), proba.argmax(1), proba, np.array([0, 1]), task)
        df.to_csv(tmp_path / f"{fit_stem('subject_dependent', pipeline, 1, 2, 0, 'abc')}"
                  "_predictions.csv", index=False)
        written[pipeline] = df
    for pipeline, df in written.items():
        back = load_predictions(tmp_path, [pipeline])
        assert set(back["pipeline"]) == {pipeline}
        pd.testing.assert_frame_equal(back.drop(columns="source"), df, check_dtype=False)
        assert score_columns(back) == ["score_0", "score_1"]
        np.testing.assert_array_equal(score_classes(score_columns(back), back["y_true"]), [0, 1])
    assert load_predictions(tmp_path, ["Net[a]"], protocol="subject_dependent").shape[0] == 5
    with pytest.raises(FileNotFoundError, match="no prediction files of pipeline 'Net.b.'"):
        load_predictions(tmp_path, ["Net[b]"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictions(tmp_path / "missing", ["Net[a]"])


def test_tables_without_probabilities_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="decision_function values"):
        score_columns(pd.DataFrame({"y_true": [0, 1], "decision": [0.3, -0.1]}))
    with pytest.raises(ValueError, match="do not name numeric classes"):
        score_classes(["score_left", "score_right"], np.array([0, 1]))
    np.testing.assert_array_equal(
        score_classes(["score_left", "score_right"], np.array(["left", "right"])),
        ["left", "right"])
