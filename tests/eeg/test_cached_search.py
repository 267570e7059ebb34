"""FoldCachedGridSearchCV gives GridSearchCV's results (FBCSP+SVM: same scores, best
parameters and predictions) with one CSP fit per fold instead of one per grid point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from eegmtl.eeg import baselines
from eegmtl.eeg.cached_search import FoldCachedGridSearchCV


def _synthetic(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, 3, 500))
    X[y == 1, 0] *= 1.6
    X[y == 0, 2] *= 1.3
    return X, y


def _reference(est: FoldCachedGridSearchCV) -> GridSearchCV:
    return GridSearchCV(est.estimator, est.param_grid, cv=est.cv, n_jobs=None)


def _assert_same(new: FoldCachedGridSearchCV, old: GridSearchCV, X: np.ndarray) -> None:
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{i}_test_score" for i in range(new.n_splits_)
    ]:
        np.testing.assert_array_equal(new.cv_results_[key], old.cv_results_[key], err_msg=key)
    assert new.cv_results_["params"] == old.cv_results_["params"]
    assert new.best_params_ == old.best_params_ and new.best_index_ == old.best_index_
    assert new.best_score_ == old.best_score_
    np.testing.assert_array_equal(new.predict(X), old.predict(X))
    np.testing.assert_allclose(new.decision_function(X), old.decision_function(X),
                               rtol=1e-10, atol=1e-12)
    steps = [name for name, _ in new.best_estimator_.steps]
    assert steps == ["resample", "filterbank", "csp", "select", "svc"]


def test_fbcsp_search_equals_gridsearchcv_synthetic() -> None:
    X, y = _synthetic()
    est = baselines.make_fbcsp_svm(k=4, cv_splits=3)
    assert isinstance(est, FoldCachedGridSearchCV)
    new = est.fit(X, y)
    old = _reference(est).fit(X, y)
    Xt, _ = _synthetic(40, seed=1)
    _assert_same(new, old, Xt)
    assert new.cv_results_["mean_fit_time"].shape == (10,)


def test_grid_on_an_earlier_step_falls_back_to_gridsearchcv() -> None:
    X, y = _synthetic(40)
    est = baselines.make_fbcsp_svm(k=4, cv_splits=2)
    est.set_params(param_grid={"select__k": [2, 4], "svc__C": [1.0]})
    assert not est._cacheable([{"select__k": 2, "svc__C": 1.0}])
    new = est.fit(X, y)
    old = _reference(est).fit(X, y)
    _assert_same(new, old, X)


@pytest.mark.realdata
def test_fbcsp_search_equals_gridsearchcv_real_subset(real_2b: Path) -> None:
    from eegmtl.eeg.datasets import load_bci2b

    X, y, meta = load_bci2b(subjects=[4], units="uV")
    tr = meta["session_index"].isin([1, 2, 3]).to_numpy()
    idx = np.flatnonzero(tr)[::2]  # 180 training trials keep the test quick
    est = baselines.make_fbcsp_svm()
    new = est.fit(X[idx], y[idx])
    old = _reference(est).fit(X[idx], y[idx])
    _assert_same(new, old, X[~tr])
