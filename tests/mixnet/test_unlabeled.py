"""Unlabelled trials for MixNet's reconstruction task (``fit(..., X_unlabeled=...)``,
``unlabeled_trials="transductive"`` in the evaluation harness): the label-based losses skip
them, the epoch covers them, the harness hands over the fold's validation and test trials
without their labels, bad input is refused, default settings keep their hashes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eegmtl import MixNetClassifier
from eegmtl.evaluation.fit_fold import unlabeled_rows
from eegmtl.evaluation.runner import run_protocol
from eegmtl.evaluation.splitters import Split
from eegmtl.mixnet.config import recorded_settings
from eegmtl.mixnet.inputs import data_fingerprint
from eegmtl.mixnet.losses import (
    UNLABELED,
    ClassBalancedCrossEntropy,
    LabeledOnly,
    SemiHardTripletLoss,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluation"))
from evaluation_synth import CountingClassifier, synthetic_data, tiny_epochs  # noqa: E402


@pytest.mark.parametrize("loss", [SemiHardTripletLoss(margin=0.5),
                                  ClassBalancedCrossEntropy(torch.tensor([0.8, 1.3]))])
def test_labeled_only_equals_the_loss_on_the_labelled_rows(loss):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(12, 2, generator=g, requires_grad=True)
    y = torch.tensor([0, 1, -1, 1, 0, -1, -1, 0, 1, 1, 0, -1])
    keep = y >= 0
    wrapped = LabeledOnly(loss)
    got = wrapped(out, y)
    want = loss(out[keep], y[keep])
    assert torch.allclose(got, want)
    (grad,) = torch.autograd.grad(got, out)
    assert torch.all(grad[~keep] == 0) and torch.any(grad[keep] != 0)
    full = torch.tensor([0, 1] * 6)  # every row labelled: the loss itself
    assert torch.equal(wrapped(out, full), loss(out, full))
    none = torch.full((12,), UNLABELED)
    zero = wrapped(out, none)
    assert zero.item() == 0.0
    (g0,) = torch.autograd.grad(zero, out)
    assert torch.all(g0 == 0)


def _fit(X_unlabeled=None, **kw):
    X, y = tiny_epochs(60)
    est = MixNetClassifier(max_epochs=2, patience=None, random_state=0, device="cpu",
                           batch_size=16, **kw)
    return est.fit(X[::2][:24], y[::2][:24], X_val=X[1::2], y_val=y[1::2],
                   X_unlabeled=X_unlabeled)


def test_unlabelled_trials_join_the_training_epoch_and_change_the_fit():
    X_u, _ = tiny_epochs(40, seed=3)
    plain, semi = _fit(), _fit(X_u)
    # 24 labelled trials: 2 steps of 16 per epoch; with 40 more, 64 trials: 4 steps
    assert len(plain.weights_history_) == 2 * 2 and len(semi.weights_history_) == 2 * 4
    assert plain.classes_.tolist() == semi.classes_.tolist() == [0, 1]
    w0 = next(iter(plain.model_.state_dict().values()))
    w1 = next(iter(semi.model_.state_dict().values()))
    assert not torch.equal(w0, w1)
    assert np.isfinite(semi.history_["train_loss"]).all()
    # the same unlabelled trials again: the same network (seeded)
    again = _fit(X_u)
    for a, b in zip(semi.model_.state_dict().values(), again.model_.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_unlabelled_trials_with_augmentation():
    X_u, _ = tiny_epochs(20, seed=4)
    est = _fit(X_u, augmentation={"transforms": ["segment_recombine"], "n_augmentation": 1})
    assert np.isfinite(est.history_["train_loss"]).all()


def test_bad_unlabelled_trials_are_refused_with_the_reason():
    X_u, _ = tiny_epochs(10, seed=5)
    with pytest.raises(ValueError, match="X_unlabeled"):
        _fit(X_u[:, :2])  # 2 channels where the fit has 3
    bad = X_u.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="X_unlabeled"):
        _fit(bad)
    with pytest.raises(ValueError, match="unlabeled_trials"):
        _fit(unlabeled_trials="inductive")


def test_default_settings_keep_their_hash_and_unlabelled_data_enter_the_fingerprint():
    est = MixNetClassifier()
    assert "unlabeled_trials" not in recorded_settings(est.get_params())
    assert recorded_settings(MixNetClassifier(unlabeled_trials="transductive").get_params())[
        "unlabeled_trials"] == "transductive"
    X, y = tiny_epochs(20)
    base = data_fingerprint(est, X, y)
    assert "unlabeled_sha256" not in base
    a = data_fingerprint(est, X, y, X_unlabeled=X[:5])
    b = data_fingerprint(est, X, y, X_unlabeled=X[5:10])
    assert a["unlabeled_sha256"] != b["unlabeled_sha256"]
    assert base == {k: v for k, v in a.items() if k != "unlabeled_sha256"}


class _UnlabeledSpy(CountingClassifier):
    """Records the trials ``fit`` got without labels."""

    seen: list[np.ndarray] = []

    def __init__(self, random_state=None, fail_after=None, unlabeled_trials=None):
        super().__init__(random_state, fail_after)
        self.unlabeled_trials = unlabeled_trials

    def fit(self, X, y, X_val=None, y_val=None, X_unlabeled=None):
        type(self).seen.append(None if X_unlabeled is None else np.asarray(X_unlabeled))
        return super().fit(X, y, X_val, y_val)


class _NoUnlabeledArg(CountingClassifier):
    """Asks for unlabelled trials but its ``fit`` cannot take them."""

    def __init__(self, random_state=None, fail_after=None, unlabeled_trials=None):
        super().__init__(random_state, fail_after)
        self.unlabeled_trials = unlabeled_trials


def test_unlabeled_rows_are_the_validation_and_test_rows():
    split = Split("subject_dependent", 1, 1, train=np.arange(10), val=np.arange(10, 13),
                  test=np.arange(20, 25))
    assert unlabeled_rows(_UnlabeledSpy(), split) is None
    rows = unlabeled_rows(_UnlabeledSpy(unlabeled_trials="transductive"), split)
    assert rows.tolist() == [10, 11, 12, 20, 21, 22, 23, 24]
    assert not set(rows) & set(split.train)
    with pytest.raises(TypeError, match="X_unlabeled"):
        unlabeled_rows(_NoUnlabeledArg(unlabeled_trials="transductive"), split)


@pytest.mark.parametrize("protocol", ["sd", "si"])
def test_harness_hands_over_the_trials_outside_training_without_labels(protocol):
    X, y, meta = synthetic_data()
    if protocol == "si":
        keep = (meta.subject <= 6).to_numpy()
        X, y, meta = X[keep], y[keep], meta[keep].reset_index(drop=True)
    X = X + np.arange(len(X))[:, None, None] * 1e3  # each trial identifiable by its offset
    _UnlabeledSpy.seen = []
    df = run_protocol(protocol, {"Spy": _UnlabeledSpy(unlabeled_trials="transductive")},
                      subjects=[2], data=(X, y, meta), folds=[1], progress=False)
    (got,) = _UnlabeledSpy.seen
    rows = np.sort(np.round(got[:, 0, 0] / 1e3).astype(int))  # trial index of each given trial
    r = df.iloc[0]
    assert len(rows) == r.samples_val + r.samples_test
    target = (meta.subject == 2).to_numpy()
    test_rows = np.flatnonzero(target & (meta.session >= 4).to_numpy())
    assert set(test_rows) <= set(rows)  # the target's test trials, without their labels
    assert len(set(rows)) == len(rows)
    _UnlabeledSpy.seen = []
    run_protocol(protocol, {"Spy": _UnlabeledSpy()}, subjects=[2], data=(X, y, meta),
                 folds=[1], progress=False)
    assert _UnlabeledSpy.seen == [None]  # not asked for: none given


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_unlabelled_trials_on_cuda():
    """The label masks follow the batch to the GPU; the fit trains and predicts there."""
    X_u, _ = tiny_epochs(40, seed=3)
    X, y = tiny_epochs(60)
    est = MixNetClassifier(max_epochs=2, patience=None, random_state=0, device="cuda",
                           batch_size=16).fit(X[::2][:24], y[::2][:24], X_val=X[1::2],
                                              y_val=y[1::2], X_unlabeled=X_u)
    assert next(est.model_.parameters()).is_cuda
    assert len(est.weights_history_) == 2 * 4
    assert np.isfinite(est.history_["train_loss"]).all()
    assert est.predict(X[1::2]).shape == (30,)
