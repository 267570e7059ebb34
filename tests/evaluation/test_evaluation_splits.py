"""Split correctness of the subject-dependent and subject-independent protocols."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold

from eegmtl.evaluation.splitters import (
    make_splits,
    subject_dependent_splits,
    subject_independent_splits,
)

sys.path.insert(0, str(Path(__file__).parent))  # the shared synthetic-data helpers
from evaluation_synth import N_SUBJECTS, synthetic_metadata  # noqa: E402


@pytest.fixture(scope="module")
def meta_y():
    return synthetic_metadata()


def _sessions_of(meta: pd.DataFrame, idx: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, meta.loc[idx, ["subject", "session"]].to_numpy().tolist()))


@pytest.mark.parametrize("subject", range(1, N_SUBJECTS + 1))
def test_sd_folds_partition_sessions_1_to_3(meta_y, subject):
    meta, y = meta_y
    splits = list(subject_dependent_splits(meta, subject, y=y))
    assert [sp.fold for sp in splits] == [1, 2, 3, 4, 5]
    pool = np.flatnonzero((meta.subject == subject) & meta.session.isin([1, 2, 3]))
    test = np.flatnonzero((meta.subject == subject) & meta.session.isin([4, 5]))
    vals = np.concatenate([sp.val for sp in splits])
    # validation sets partition the pool: each trial is validated exactly once
    assert np.array_equal(np.sort(vals), pool)
    for sp in splits:
        assert np.intersect1d(sp.train, sp.val).size == 0
        assert np.array_equal(np.sort(np.concatenate([sp.train, sp.val])), pool)
        # no trial leakage into the test set, and the test set is exactly sessions 4-5
        assert np.intersect1d(sp.test, np.concatenate([sp.train, sp.val])).size == 0
        assert np.array_equal(sp.test, test)
        assert _sessions_of(meta, sp.test) == {(subject, 4), (subject, 5)}
        assert {s for s, _ in _sessions_of(meta, sp.train)} == {subject}
        # stratified: the 4/5 : 1/5 split keeps the classes balanced (360 trials -> 72 val)
        assert len(sp.val) == 72 and abs(int((y[sp.val] == 0).sum()) - 36) <= 1


def test_sd_matches_reference_stratified_kfold(meta_y):
    meta, y = meta_y
    pool = np.flatnonzero((meta.subject == 3) & meta.session.isin([1, 2, 3]))
    ref = StratifiedKFold(5, shuffle=True, random_state=42).split(pool, y[pool])
    for sp, (tr, va) in zip(subject_dependent_splits(meta, 3, y=y), ref):
        assert np.array_equal(sp.train, pool[tr]) and np.array_equal(sp.val, pool[va])
    other = list(subject_dependent_splits(meta, 3, y=y, seed=7))
    assert not np.array_equal(other[0].val, next(subject_dependent_splits(meta, 3, y=y)).val)


@pytest.mark.parametrize("subject", range(1, N_SUBJECTS + 1))
def test_si_by_subject_folds(meta_y, subject):
    meta, _ = meta_y
    splits = list(subject_independent_splits(meta, subject))
    others = set(range(1, N_SUBJECTS + 1)) - {subject}
    assert [len(sp.val_subjects) for sp in splits] == [2, 2, 2, 1, 1]
    # validation subjects partition the 8 other subjects
    all_val = [s for sp in splits for s in sp.val_subjects]
    assert sorted(all_val) == sorted(others)
    test = np.flatnonzero((meta.subject == subject) & meta.session.isin([4, 5]))
    for sp in splits:
        train_subj = set(meta.loc[sp.train, "subject"])
        val_subj = set(meta.loc[sp.val, "subject"])
        assert val_subj == set(sp.val_subjects)
        assert train_subj == others - val_subj  # disjoint from validation and test subject
        assert subject not in train_subj | val_subj
        # sessions 1-5 of each training / validation subject, sessions 4-5 of the target only
        assert _sessions_of(meta, sp.train) == {(s, k) for s in train_subj for k in range(1, 6)}
        assert _sessions_of(meta, sp.val) == {(s, k) for s in val_subj for k in range(1, 6)}
        assert np.array_equal(sp.test, test)
        assert len(sp.train) == 600 * len(train_subj)


def test_si_matches_reference_dummy_split(meta_y):
    meta, _ = meta_y
    others = np.array([s for s in range(1, 10) if s != 4])
    ref = StratifiedKFold(5, shuffle=True, random_state=42).split(np.zeros((8, 2)), np.zeros(8))
    for sp, (_, va) in zip(subject_independent_splits(meta, 4), ref):
        assert sp.val_subjects == tuple(sorted(others[va]))


def test_make_splits_aliases_and_errors(meta_y):
    meta, y = meta_y
    assert len(make_splits("sd", meta, 1, y=y)) == 5
    assert make_splits("si", meta, 1)[0].protocol == "subject_independent"
    with pytest.raises(ValueError, match="unknown protocol"):
        make_splits("cross_session", meta, 1, y=y)
    with pytest.raises(ValueError, match="subject 12 not in metadata"):
        list(subject_dependent_splits(meta, 12, y=y))
    with pytest.raises(ValueError, match="lacks column"):
        list(subject_dependent_splits(meta.drop(columns="session"), 1, y=y))
    with pytest.raises(ValueError, match="labels"):
        list(subject_dependent_splits(meta, 1))


@pytest.mark.parametrize("names", [
    {1: "0train", 2: "1train", 3: "2train", 4: "3test", 5: "4test"},  # MOABB >= 0.5
    {k: f"session_{k - 1}" for k in range(1, 6)},  # older MOABB, 0-based
    {k: k - 1 for k in range(1, 6)},  # integers 0-4
    {k: f"session_{k}" for k in range(1, 6)},  # 1-based names
])
def test_moabb_session_names_are_read_as_1_to_5(meta_y, names):
    """Every session naming gives the same folds: the test set is sessions 4-5 (E data),
    never a training session read as a test one or the reverse."""
    meta, y = meta_y
    renamed = meta.assign(session=meta.session.map(names))
    a = list(subject_dependent_splits(meta, 2, y=y))
    b = list(subject_dependent_splits(renamed, 2, y=y))
    assert all(np.array_equal(p.test, q.test) and np.array_equal(p.val, q.val)
               and np.array_equal(p.train, q.train) for p, q in zip(a, b, strict=True))
    # MOABB's names on the test sessions alone still mean sessions 4-5
    if names[1] == "0train":
        from eegmtl.evaluation.splitters import _session_numbers

        assert _session_numbers(pd.Series(["3test", "4test"])).tolist() == [4, 5]


# --------------------------------------------------------------------------- sklearn CV objects
def test_splitters_are_sklearn_cross_validators():
    """``cv=`` of ``cross_val_score`` with the metadata as ``groups``: the same folds, train and
    test rows as the protocol's splits, and the same scores as fitting each fold by hand."""
    from evaluation_synth import logvar_lr, synthetic_data
    from sklearn.base import clone
    from sklearn.model_selection import check_cv, cross_val_score

    from eegmtl.evaluation.splitters import (
        SubjectDependentSplitter,
        SubjectIndependentSplitter,
        protocol_splitter,
    )

    X, y, meta = synthetic_data()
    for protocol, cls in (("sd", SubjectDependentSplitter), ("si", SubjectIndependentSplitter)):
        cv = cls(subjects=[1, 2])
        assert check_cv(cv) is cv and isinstance(protocol_splitter(protocol), cls)
        assert cv.get_n_splits(X, y, meta) == 10
        expected = [sp for s in (1, 2) for sp in make_splits(protocol, meta, s, y=y)]
        got = list(cv.split(X, y, meta))
        assert len(got) == len(expected) == 10
        for (train, test), sp in zip(got, expected):
            np.testing.assert_array_equal(train, sp.train)
            np.testing.assert_array_equal(test, sp.test)
            assert not set(train) & set(sp.val)  # the validation rows are not trained on
        scores = cross_val_score(logvar_lr(), X, y, groups=meta, cv=cv, scoring="accuracy")
        by_hand = [(clone(logvar_lr()).fit(X[sp.train], y[sp.train]).predict(X[sp.test])
                    == y[sp.test]).mean() for sp in expected]
        np.testing.assert_allclose(scores, by_hand)
        assert [sp.fold for sp in cv.folds(meta, y)] == [1, 2, 3, 4, 5] * 2


def test_splitter_without_metadata_says_how_to_pass_it():
    from eegmtl.evaluation.splitters import SubjectDependentSplitter

    with pytest.raises(ValueError, match="groups=metadata"):
        list(SubjectDependentSplitter().split(np.zeros((4, 2)), np.zeros(4)))
    with pytest.raises(TypeError, match="metadata DataFrame"):
        list(SubjectDependentSplitter().split(np.zeros((4, 2)), np.zeros(4), np.arange(4)))


def test_sd_session_validation_holds_out_each_training_session(meta_y):
    meta, y = meta_y
    subject = 2
    splits = make_splits("sd", meta, subject, y=y, validation="session")
    assert [sp.fold for sp in splits] == [1, 2, 3]
    test = np.flatnonzero((meta.subject == subject) & meta.session.isin([4, 5]))
    for k, sp in enumerate(splits, start=1):
        assert _sessions_of(meta, sp.val) == {(subject, k)}
        assert _sessions_of(meta, sp.train) == {(subject, s) for s in (1, 2, 3) if s != k}
        assert np.intersect1d(sp.train, sp.val).size == 0
        assert np.array_equal(sp.test, test)
    # the random split is unchanged by the new option
    default = make_splits("sd", meta, subject, y=y)
    assert all(np.array_equal(a.val, b.val) for a, b in
               zip(default, make_splits("sd", meta, subject, y=y, validation="random")))
    with pytest.raises(ValueError, match="subject-dependent"):
        make_splits("si", meta, subject, validation="session")
    with pytest.raises(ValueError, match="'random' or 'session'"):
        make_splits("sd", meta, subject, y=y, validation="sessions")
