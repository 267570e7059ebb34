"""Metrics against hand computations and published tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eegmtl.mtl.metrics import (
    ConflictCounter,
    brier_score,
    condition_number,
    conflict_rate,
    delta_m,
    delta_m_task,
    delta_p,
    expected_calibration_error,
    gradient_conflict,
    gradient_magnitude_similarity,
    pairwise_cosine,
    predictive_entropy,
)

# NYUv2 metric order: mIoU, PixAcc | AbsErr, RelErr | Mean, Median, <11.25, <22.5, <30
NYU_DIRS = {"seg": True, "depth": False, "normal": [False, False, True, True, True]}


def test_delta_p_golden_rlw_table1() -> None:
    # RLW paper (arXiv 2111.10603) Table 1: RLW vs EW on NYUv2 = +1.04
    ew = {"seg": [53.77, 75.45], "depth": [0.3845, 0.1605],
          "normal": [23.57, 17.04, 35.04, 60.93, 72.07]}  # fmt: skip
    rlw = {"seg": [54.11, 75.77], "depth": [0.3809, 0.1575],
           "normal": [23.38, 16.74, 35.71, 61.52, 72.45]}  # fmt: skip
    assert delta_p(rlw, ew, NYU_DIRS) == pytest.approx(1.04, abs=0.005)
    assert delta_p(ew, ew, NYU_DIRS) == 0.0


def test_delta_m_golden_libmtl_segnet() -> None:
    # mtl-reference.md §1.4: LibMTL SegNet EW vs STL, metric-weighted Δm = +2.35
    stl = [38.30, 63.76, 0.6754, 0.2780, 25.01, 19.21, 30.14, 57.20, 69.15]
    ew = [40.89, 66.14, 0.5524, 0.2347, 27.27, 22.41, 24.38, 50.18, 63.36]
    hib = [True, True, False, False, False, False, True, True, True]
    assert delta_m(ew, stl, hib) == pytest.approx(2.35, abs=0.005)


def test_sign_conventions_by_hand() -> None:
    # task a: accuracy 0.8 -> 0.9 (higher better): +12.5 %; task b: error 2.0 -> 1.0: +50 %
    m, base = {"a": 0.9, "b": 1.0}, {"a": 0.8, "b": 2.0}
    hib = {"a": True, "b": False}
    assert delta_p(m, base, hib) == pytest.approx((12.5 + 50.0) / 2)
    assert delta_m(m, base, hib) == pytest.approx(-(12.5 + 50.0) / 2)  # better than STL: < 0
    # per-task vs metric-weighted: task a has 3 metrics, b has 1
    m2 = {"a": [2.0, 2.0, 2.0], "b": [1.0]}
    b2 = {"a": [1.0, 1.0, 1.0], "b": [2.0]}
    d2 = {"a": True, "b": True}  # a: +100 % x3, b: -50 %
    assert delta_m(m2, b2, d2) == pytest.approx(-(300.0 - 50.0) / 4)
    assert delta_m_task(m2, b2, d2) == pytest.approx(-(100.0 - 50.0) / 2)
    assert delta_m_task(m2, b2, d2) == pytest.approx(-delta_p(m2, b2, d2))
    # flat arrays, torch input
    assert delta_p(torch.tensor([0.9, 1.0]), np.array([0.8, 2.0]), [True, False]) == pytest.approx(
        31.25
    )


def test_relative_metrics_bad_input() -> None:
    with pytest.raises(ValueError, match="different tasks"):
        delta_p({"a": 1.0}, {"b": 1.0}, True)
    with pytest.raises(ValueError, match="equal length"):
        delta_p([1.0, 2.0], [1.0], True)
    with pytest.raises(ValueError, match="is 0"):
        delta_m([1.0], [0.0], True)
    with pytest.raises(ValueError, match="NaN"):
        delta_p([float("nan")], [1.0], True)
    with pytest.raises(TypeError, match="both be mappings"):
        delta_p({"a": 1.0}, [1.0], True)


def test_brier_by_hand() -> None:
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert brier_score(probs, [0, 1]) == pytest.approx((0.0 + 0.5) / 2)
    assert brier_score(torch.tensor([1.0, 0.5]), torch.tensor([1, 1])) == pytest.approx(0.125)
    three = np.array([[0.2, 0.3, 0.5]])
    assert brier_score(three, [2]) == pytest.approx(0.04 + 0.09 + 0.25)


def test_ece_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.45, 0.55], [0.3, 0.7], [0.78, 0.22]])
    y = np.array([0, 0, 1, 0])
    # n_bins=5: conf .9 -> (.8,1] right; .55 -> (.4,.6] wrong; .7, .78 -> (.6,.8] both right
    expected = 0.25 * 0.1 + 0.25 * 0.55 + 0.5 * (1.0 - 0.74)
    assert expected_calibration_error(probs, y, n_bins=5) == pytest.approx(expected)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, [0, 1]) == 0.0


def test_entropy_by_hand() -> None:
    assert predictive_entropy(np.full((2, 4), 0.25)) == pytest.approx(math.log(4))
    assert predictive_entropy(np.eye(3)) == 0.0
    per = predictive_entropy(np.array([[0.5, 0.5], [1.0, 0.0]]), reduction="none")
    np.testing.assert_allclose(per, [math.log(2), 0.0])


def test_calibration_bad_input() -> None:
    with pytest.raises(ValueError, match="one label per row"):
        brier_score(np.full((3, 2), 0.5), [0, 1])
    with pytest.raises(ValueError, match="logits"):
        expected_calibration_error(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match="sum to 1"):
        predictive_entropy(np.array([[0.2, 0.2]]))
    with pytest.raises(ValueError, match="class indices"):
        brier_score(np.full((1, 2), 0.5), [2])
    with pytest.raises(ValueError, match="n_samples"):
        predictive_entropy(np.ones((2, 2, 2)) / 2)


def test_gradient_conflict_and_cosine() -> None:
    g = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    cos = pairwise_cosine(g)
    np.testing.assert_allclose(cos, [[1, -1, 0], [-1, 1, 0], [0, 0, 1]], atol=1e-12)
    assert gradient_conflict(g) == pytest.approx(1 / 3)
    assert conflict_rate(torch.tensor(g)) == pytest.approx(1 / 3)
    counter = ConflictCounter()
    assert math.isnan(counter.rate)
    assert counter.update(g) is True
    assert counter.update(np.eye(2)) is False
    assert counter.rate == 0.5
    with pytest.raises(ValueError, match="at least 2 tasks"):
        gradient_conflict(np.ones((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pairwise_cosine(np.array([[1.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="n_tasks, n_params"):
        pairwise_cosine(np.ones(3))


def test_magnitude_similarity_and_condition_number() -> None:
    g = np.array([[3.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(gradient_magnitude_similarity(g), [[1, 0.6], [0.6, 1]])
    assert condition_number(g) == pytest.approx(3.0)
    assert condition_number(torch.tensor([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)
    assert math.isnan(condition_number(np.zeros((2, 3))))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 10))
    s = np.linalg.svd(a, compute_uv=False)
    assert condition_number(a) == pytest.approx(s[0] / s[-1])
