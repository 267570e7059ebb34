"""Any classifier behind Euclidean alignment, for MOABB's cross-subject target-access modes.

:class:`AlignedClassifier` wraps a scikit-learn classifier (MixNet, a braindecode network, a
``Pipeline`` such as CSP+LDA) so that it is trained on Euclidean-aligned trials (He & Wu,
2020, IEEE TBME 67(2), Eq. 1-2: ``X̃_i = R^{-1/2} X_i`` with ``R`` the mean trial
covariance of a domain) and predicts on target trials aligned the same way. It reads the
metadata that MOABB's :class:`moabb.evaluations.CrossSubjectEvaluation` routes to a pipeline
(MOABB ≥ 1.7, ``cs_mode``):

``subjects``
    subject of every training trial: each source subject is aligned on its own trials, its
    sessions pooled (MOABB routes subject ids only; the runner of ``eegmtl sd|si
    --alignment`` aligns each subject × session instead);
``X_target_unlabeled``
    an unlabelled slice of the held-out subject (``cs_mode="train_and_target_unlabeled_20p"``,
    ``"..._50p"``, ``"..._full"``): the target reference is fitted on it;
``X_target_labeled``, ``y_target_labeled``
    a labelled slice (``"train_and_target_labeled_20p"``, ``"..._50p"``): the target reference
    is fitted on it, and the aligned calibration trials join the training set.

With no target data (``cs_mode="train"``, or a plain ``fit(X, y)``) the trials given to
``predict`` are aligned according to ``unseen``: on their own statistics (``"batch"``, the
transductive per-recording EA of the cross-subject literature, as ``eegmtl si --alignment
transductive``) or with the pooled reference of all training trials (``"pooled"``, inductive:
no statistic of the predicted trials is used, as ``--alignment inductive``).

The references are MOABB's :class:`moabb.datasets.preprocessing.EuclideanAlignment`
(Ledoit-Wolf trial covariances by default), grouped by
:class:`eegmtl.eeg.alignment.RecordingAlignment`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from eegmtl.eeg.alignment import RecordingAlignment, _ea
from eegmtl.eeg.preprocessing import check_epochs_array

__all__ = ["AlignedClassifier"]

_UNSEEN = ("batch", "pooled")


def _inner_has(method: str) -> Any:
    def check(self: AlignedClassifier) -> bool:
        inner = getattr(self, "estimator_", self.estimator)
        return hasattr(inner, method)

    return check


class AlignedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier trained and applied on Euclidean-aligned trials (see the module docstring).

    Parameters
    ----------
    estimator : scikit-learn classifier
        Fitted on the aligned training trials (a clone is fitted; the argument is untouched).
    unseen : {"batch", "pooled"}, default "batch"
        How predicted trials are aligned when ``fit`` got no target trials: ``"batch"`` fits a
        reference on the trials given to ``predict`` (transductive; predict one recording at a
        time, at least ``min_batch`` trials), ``"pooled"`` applies the reference of all training
        trials (inductive).
    min_batch : int, default 10
        Fewest trials ``predict`` accepts with ``unseen="batch"``: a reference fitted on a
        handful of trials whitens away the spatial pattern it should keep.
    covariance : str, default "lwf"
        Trial covariance estimator (pyRiemann name) passed to MOABB's ``EuclideanAlignment``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone.
    source_ : RecordingAlignment
        Inductive references, one per training subject, plus the pooled one.
    target_ : EuclideanAlignment or None
        Reference fitted on the target trials given to ``fit`` (``None`` without them).
    target_access_ : {"none", "unlabeled", "labeled"}
        Which target data ``fit`` received.
    n_calibration_ : int
        Labelled target trials added to the training set.
    classes_ : ndarray
        Class labels (of the fitted estimator).

    Examples
    --------
    In MOABB: ``CrossSubjectEvaluation(paradigm, datasets=[ds],
    cs_mode="train_and_target_unlabeled_20p").process({"CSP+LDA+EA":
    AlignedClassifier(make_csp_lda())})`` (or ``eegmtl moabb-si``). Directly:

    >>> import numpy as np
    >>> from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((40, 3, 250)), np.tile([0, 1], 20)
    >>> log_var = FunctionTransformer(lambda X: np.log(X.var(axis=-1)))
    >>> clf = AlignedClassifier(make_pipeline(log_var, LinearDiscriminantAnalysis()))
    >>> clf.fit(X, y, subjects=np.repeat([1, 2], 20), X_target_unlabeled=X[:8]).target_access_
    'unlabeled'
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    # MOABB routes these to every pipeline step that requests them (sklearn metadata routing).
    __metadata_request__fit = {"subjects": True, "X_target_unlabeled": True,  # noqa: RUF012
                               "X_target_labeled": True, "y_target_labeled": True}

    def __init__(self, estimator: Any, unseen: str = "batch", min_batch: int = 10,
                 covariance: str = "lwf") -> None:
        self.estimator = estimator
        self.unseen = unseen
        self.min_batch = min_batch
        self.covariance = covariance

    def fit(self, X: Any, y: Any, subjects: Any = None, X_target_unlabeled: Any = None,
            X_target_labeled: Any = None, y_target_labeled: Any = None) -> AlignedClassifier:
        """Align the source subjects, fit the target reference, fit the estimator.

        Parameters
        ----------
        X : array, shape (n_trials, n_channels, n_times)
            Training (source) trials.
        y : array, shape (n_trials,)
        subjects : array, shape (n_trials,), optional
            Subject (or recording) of every training trial; ``None``: one domain.
        X_target_unlabeled : array, shape (n_cal, n_channels, n_times), optional
            Unlabelled trials of the target subject (reference only).
        X_target_labeled, y_target_labeled : arrays, optional
            Labelled target trials: reference, and added to the training set.
        """
        if self.unseen not in _UNSEEN:
            raise ValueError(f"unseen must be one of {_UNSEEN}, got {self.unseen!r}.")
        X = check_epochs_array(X, ndim=3)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must hold one label per trial of X ({len(X)}), got shape "
                             f"{y.shape}.")
        groups = np.zeros(len(X), int) if subjects is None else np.asarray(subjects)
        if groups.shape != (len(X),):
            raise ValueError(f"subjects must hold one id per trial of X ({len(X)}), got shape "
                             f"{groups.shape}.")
        self.source_ = RecordingAlignment(mode="inductive", estimator=self.covariance).fit(
            X, groups)
        Xa = self.source_.transform(X, groups)
        unlabeled, labeled = self._target_trials(X, X_target_unlabeled, X_target_labeled,
                                                 y_target_labeled)
        target = [t for t in (unlabeled, labeled) if t is not None]
        self.target_ = _ea(self.covariance).fit(np.concatenate(target)) if target else None
        self.n_calibration_ = 0
        if labeled is not None:
            Xl = self.target_.transform(labeled)
            Xa = np.concatenate([Xa, Xl])
            y = np.concatenate([y, np.asarray(y_target_labeled)])
            self.n_calibration_ = len(Xl)
        self.target_access_ = ("labeled" if X_target_labeled is not None else
                               "unlabeled" if X_target_unlabeled is not None else "none")
        self.estimator_ = clone(self.estimator).fit(Xa, y)
        return self

    @staticmethod
    def _target_trials(X: np.ndarray, unlabeled: Any, labeled: Any, y_labeled: Any
                       ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The checked unlabelled and labelled target trials (``None`` where not given)."""
        parts = []
        for name, part in (("X_target_unlabeled", unlabeled), ("X_target_labeled", labeled)):
            if part is not None:
                part = check_epochs_array(part, ndim=3, name=name)
                if part.shape[1:] != X.shape[1:]:
                    raise ValueError(f"{name} has trials of shape {part.shape[1:]}, the "
                                     f"training trials {X.shape[1:]}: same channels and length "
                                     "needed.")
            parts.append(part)
        if labeled is not None:
            yl = None if y_labeled is None else np.asarray(y_labeled)
            if yl is None or yl.shape != (len(labeled),):
                raise ValueError("X_target_labeled needs y_target_labeled, one label per trial "
                                 f"({len(labeled)}); got "
                                 f"{None if yl is None else yl.shape}.")
        elif y_labeled is not None:
            raise ValueError("y_target_labeled given without X_target_labeled.")
        return parts[0], parts[1]

    def align(self, X: Any) -> np.ndarray:
        """The trials as the fitted estimator sees them (target reference, else ``unseen``)."""
        check_is_fitted(self, "estimator_")
        X = check_epochs_array(X, ndim=3)
        if self.target_ is not None:
            return self.target_.transform(X)
        if self.unseen == "pooled":
            return self.source_.pooled_.transform(X)
        if len(X) < self.min_batch:
            raise ValueError(
                f"unseen='batch' aligns predicted trials on their own covariance, which needs at "
                f"least min_batch={self.min_batch} trials of one recording; got {len(X)}. "
                "Predict whole recordings, give target trials to fit (X_target_unlabeled, e.g. "
                "MOABB cs_mode='train_and_target_unlabeled_20p'), or use unseen='pooled'.")
        return _ea(self.covariance).fit_transform(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels of the aligned trials."""
        return self.estimator_.predict(self.align(X))

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the aligned trials."""
        return self.estimator_.predict_proba(self.align(X))

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision values of the aligned trials."""
        return self.estimator_.decision_function(self.align(X))

    @property
    def classes_(self) -> np.ndarray:
        """Class labels of the fitted estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_
