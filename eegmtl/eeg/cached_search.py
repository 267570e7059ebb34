"""Grid search over the last step of a pipeline, without refitting what the grid does not touch.

:class:`FoldCachedGridSearchCV` is a :class:`sklearn.model_selection.GridSearchCV` for the
common case of a feature pipeline followed by a classifier whose hyper-parameters are searched
(FBCSP + SVM: resample -> filter bank -> CSP -> feature selection -> SVC over kernel x C).
``GridSearchCV`` refits every step for every grid point and fold; here

- the leading ``n_stateless`` steps (per-trial transforms whose output does not depend on the
  training data, e.g. resampling and a fixed filter bank) run **once** on all of ``X`` before
  the search and once more never (the refit reuses their output);
- the remaining transformer steps (e.g. CSP and mutual-information selection) are fitted
  **once per fold** and their features shared by every grid point;
- only the last step is fitted per grid point and fold.

The candidates, folds, scores (the last step's ``score``, i.e. accuracy for a classifier),
ranking, ``best_params_``, the refitted ``best_estimator_`` (a fitted clone of the whole
pipeline) and therefore the predictions are those of ``GridSearchCV`` with the same arguments;
only the fit/score times in ``cv_results_`` differ (a fold's shared transformer time is split
evenly over its grid points). Grids that touch an earlier step fall back to ``GridSearchCV``'s
own search.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import indexable

__all__ = ["FoldCachedGridSearchCV"]


def _fold_scores(
    pipe: Pipeline, n_stateless: int, candidates: list[dict[str, Any]], Xs: np.ndarray,
    y: np.ndarray, train: np.ndarray, test: np.ndarray,
) -> list[dict[str, Any]]:
    """Fit the middle steps on one fold once, then the last step for every candidate."""
    name, last = pipe.steps[-1]
    t0 = time.perf_counter()
    middle = pipe.steps[n_stateless:-1]
    if middle:
        head = clone(Pipeline(middle))
        f_tr, f_te = head.fit_transform(Xs[train], y[train]), head.transform(Xs[test])
    else:
        f_tr, f_te = Xs[train], Xs[test]
    shared = (time.perf_counter() - t0) / len(candidates)
    out = []
    prefix = f"{name}__"
    for params in candidates:
        est = clone(last).set_params(**{k[len(prefix):]: v for k, v in params.items()})
        t1 = time.perf_counter()
        est.fit(f_tr, y[train])
        t2 = time.perf_counter()
        score = float(est.score(f_te, y[test]))
        out.append({"fit_time": shared + t2 - t1, "score_time": time.perf_counter() - t2,
                    "test_scores": score})
    return out


class FoldCachedGridSearchCV(GridSearchCV):
    """``GridSearchCV`` of a :class:`~sklearn.pipeline.Pipeline` whose grid touches only the
    last step: stateless leading steps run once, the other transformers once per fold (see the
    module docstring). Same results as ``GridSearchCV(estimator, param_grid, cv=cv)``.

    Parameters
    ----------
    estimator : Pipeline
    param_grid : dict or list of dicts
        As in ``GridSearchCV``; keys must be ``<last step>__<param>`` for the cached search.
    cv : int, cross-validation generator or iterable, default None
    n_jobs : int or None, default None
        Folds searched in parallel (joblib).
    n_stateless : int, default 0
        How many leading steps are stateless per-trial transforms (output of a trial does not
        depend on the other trials or on ``y``), computed once on all of ``X``.
    """

    def __init__(
        self, estimator: Any, param_grid: Any, *, cv: Any = None, n_jobs: int | None = None,
        n_stateless: int = 0,
    ) -> None:
        super().__init__(estimator, param_grid, cv=cv, n_jobs=n_jobs)
        self.n_stateless = n_stateless

    def _cacheable(self, candidates: list[dict[str, Any]]) -> bool:
        pipe = self.estimator
        if not isinstance(pipe, Pipeline) or not 0 <= int(self.n_stateless) < len(pipe.steps):
            return False
        prefix = f"{pipe.steps[-1][0]}__"
        return all(k.startswith(prefix) for p in candidates for k in p)

    def fit(self, X: Any, y: Any = None, **params: Any) -> FoldCachedGridSearchCV:
        """Run the cached search (or ``GridSearchCV.fit`` if the grid is not cacheable)."""
        from joblib import Parallel, delayed

        candidates = list(ParameterGrid(self.param_grid))
        if params or y is None or not self._cacheable(candidates):
            return super().fit(X, y, **params)
        X, y = indexable(X, y)
        y = np.asarray(y)
        pipe, n = self.estimator, int(self.n_stateless)
        head = Pipeline(clone(pipe).steps[:n]) if n else None
        Xs = head.fit_transform(X, y) if head is not None else X
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y))
        per_fold = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_scores)(pipe, n, candidates, Xs, y, tr, te) for tr, te in splits
        )
        out = [per_fold[j][i] for i in range(len(candidates)) for j in range(len(splits))]
        results = self._format_results(candidates, len(splits), out)
        self.multimetric_ = False
        self.best_index_ = int(self._select_best_index(self.refit, "score", results))
        self.best_score_ = results["mean_test_score"][self.best_index_]
        self.best_params_ = results["params"][self.best_index_]
        best = clone(pipe).set_params(**clone(self.best_params_, safe=False))
        t0 = time.time()
        if n:
            Pipeline(best.steps[:n]).fit(X, y)  # stateless: fit = parameter checks / design
        Pipeline(best.steps[n:]).fit(Xs, y)
        self.refit_time_ = time.time() - t0
        self.best_estimator_ = best
        self.scorer_ = self._get_scorers()[0]
        self.n_splits_ = len(splits)
        self.cv_results_ = results
        return self
