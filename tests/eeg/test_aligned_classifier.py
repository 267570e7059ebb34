"""AlignedClassifier: source subjects on their own trials, target reference from the target
data MOABB routes, calibration trials added to training, clear errors, MOABB end to end."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import GridSearchCV

pytest.importorskip("moabb")

from moabb.datasets.preprocessing import EuclideanAlignment  # noqa: E402

from eegmtl.eeg.aligned_classifier import AlignedClassifier  # noqa: E402


class Recorder(ClassifierMixin, BaseEstimator):
    """Keeps the trials it is fitted and asked on; predicts the first class."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Recorder:
        self.X_fit_, self.y_fit_ = X, y
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.X_pred_ = X
        return np.full(len(X), self.classes_[0])


def _subject(seed: int, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.eye(3) + rng.standard_normal((3, 3))
    return np.einsum("ij,njt->nit", mix, rng.standard_normal((n, 3, 200)))


def _source() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.concatenate([_subject(0), _subject(1)])
    y = np.tile([0, 1], 20)
    return X, y, np.repeat([1, 2], 20)


def test_source_subjects_aligned_on_their_own_trials() -> None:
    X, y, subj = _source()
    clf = AlignedClassifier(Recorder()).fit(X, y, subjects=subj)
    for s in (1, 2):
        np.testing.assert_allclose(clf.estimator_.X_fit_[subj == s],
                                   EuclideanAlignment().fit_transform(X[subj == s]))
    assert clf.target_access_ == "none" and clf.n_calibration_ == 0
    one = AlignedClassifier(Recorder()).fit(X, y)  # no subjects: one domain
    np.testing.assert_allclose(one.estimator_.X_fit_, EuclideanAlignment().fit_transform(X))


def test_unlabeled_target_reference_is_used_at_predict() -> None:
    X, y, subj = _source()
    target = _subject(7, 40)
    calib, test = target[:8], target[8:]
    clf = AlignedClassifier(Recorder()).fit(X, y, subjects=subj, X_target_unlabeled=calib)
    assert clf.target_access_ == "unlabeled" and len(clf.estimator_.y_fit_) == len(X)
    clf.predict(test[:3])  # a reference from fit: any batch size works
    np.testing.assert_allclose(clf.estimator_.X_pred_,
                               EuclideanAlignment().fit(calib).transform(test[:3]))


def test_labeled_calibration_joins_the_training_set() -> None:
    X, y, subj = _source()
    target = _subject(7, 40)
    yl = np.tile([0, 1], 4)
    clf = AlignedClassifier(Recorder()).fit(X, y, subjects=subj, X_target_labeled=target[:8],
                                            y_target_labeled=yl)
    assert clf.target_access_ == "labeled" and clf.n_calibration_ == 8
    np.testing.assert_array_equal(clf.estimator_.y_fit_, np.concatenate([y, yl]))
    np.testing.assert_allclose(clf.estimator_.X_fit_[-8:],
                               EuclideanAlignment().fit_transform(target[:8]))


def test_without_target_data_batch_or_pooled() -> None:
    X, y, subj = _source()
    test = _subject(7, 30)
    batch = AlignedClassifier(Recorder()).fit(X, y, subjects=subj)
    batch.predict(test)
    np.testing.assert_allclose(batch.estimator_.X_pred_, EuclideanAlignment().fit_transform(test))
    with pytest.raises(ValueError, match="min_batch=10.*X_target_unlabeled"):
        batch.predict(test[:1])
    pooled = AlignedClassifier(Recorder(), unseen="pooled").fit(X, y, subjects=subj)
    pooled.predict(test[:1])  # inductive: one trial is aligned as in any batch
    np.testing.assert_allclose(pooled.estimator_.X_pred_,
                               EuclideanAlignment().fit(X).transform(test[:1]))


def test_bad_input_says_what_is_wrong() -> None:
    X, y, subj = _source()
    with pytest.raises(ValueError, match="one id per trial"):
        AlignedClassifier(Recorder()).fit(X, y, subjects=subj[:5])
    with pytest.raises(ValueError, match="one label per trial"):
        AlignedClassifier(Recorder()).fit(X, y[:3])
    with pytest.raises(ValueError, match="unseen must be one of"):
        AlignedClassifier(Recorder(), unseen="online").fit(X, y)
    with pytest.raises(ValueError, match="needs y_target_labeled"):
        AlignedClassifier(Recorder()).fit(X, y, X_target_labeled=X[:4])
    with pytest.raises(ValueError, match="same channels"):
        AlignedClassifier(Recorder()).fit(X, y, X_target_unlabeled=X[:4, :2])
    bad = X.copy()
    bad[3, 1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AlignedClassifier(Recorder()).fit(bad, y)


def test_sklearn_conventions_clone_grid_search_and_routing() -> None:
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.utils.metadata_routing import get_routing_for_object

    est = AlignedClassifier(make_pipeline(CSP(2), LinearDiscriminantAnalysis()))
    assert clone(est).get_params()["unseen"] == "batch"
    consumed = get_routing_for_object(est).consumes(
        "fit", {"subjects", "X_target_unlabeled", "X_target_labeled", "y_target_labeled", "w"})
    assert consumed == {"subjects", "X_target_unlabeled", "X_target_labeled",
                        "y_target_labeled"}
    X, _, _ = _source()
    y = np.repeat([0, 1], 20)
    X[y == 1, 0] *= 3.0  # a class-dependent variance CSP can find
    gs = GridSearchCV(est, {"unseen": ["batch", "pooled"]}, cv=2).fit(X, y)
    assert gs.best_estimator_.predict_proba(X).shape == (40, 2)
    assert not hasattr(AlignedClassifier(Recorder()), "predict_proba")


@pytest.mark.realdata
def test_moabb_cross_subject_modes_route_target_data(bci2b_dir, tmp_path) -> None:
    """On the real 2b export through MOABB: ``cs_mode`` target slices reach ``fit``."""
    from moabb.evaluations import CrossSubjectEvaluation
    from moabb.paradigms import LeftRightImagery

    from eegmtl.eeg.baselines import make_csp_lda
    from eegmtl.eeg.datasets import BCI2bExport

    seen: list[dict] = []

    class Spy(AlignedClassifier):
        def fit(self, X, y, subjects=None, X_target_unlabeled=None, X_target_labeled=None,
                y_target_labeled=None):
            seen.append({"subjects": None if subjects is None else set(np.unique(subjects)),
                         "unlabeled": None if X_target_unlabeled is None
                         else len(X_target_unlabeled),
                         "labeled": None if X_target_labeled is None else len(X_target_labeled)})
            return super().fit(X, y, subjects, X_target_unlabeled, X_target_labeled,
                               y_target_labeled)

    ds = BCI2bExport(path=bci2b_dir, subjects=[1, 4, 8], sessions=[1])
    for mode, key in (("train_and_target_unlabeled_20p", "unlabeled"),
                      ("train_and_target_labeled_20p", "labeled")):
        seen.clear()
        ev = CrossSubjectEvaluation(paradigm=LeftRightImagery(fmin=None, fmax=None),
                                    datasets=[ds], overwrite=True, hdf5_path=str(tmp_path),
                                    random_state=0, cs_mode=mode)
        res = ev.process({"CSP+LDA+EA": Spy(make_csp_lda())})
        assert len(res) == 3 and len(seen) == 3
        for call in seen:  # two source subjects; 20 % of the target's 120 trials
            assert len(call["subjects"]) == 2 and call[key] == 24
        assert res["score"].mean() > 0.5  # ROC-AUC over subjects 1, 4, 8
