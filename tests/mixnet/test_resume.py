"""Epoch checkpoints of MixNet-family fits: an interrupted fit with augmentation and unlabelled
trials resumes exactly (the augmentation's random states travel with the checkpoint), writes
are throttled by ``checkpoint_every_s``, and the fold runner resumes an interrupted MixNet fit
and removes its checkpoint once the record is written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegmtl import MixNetClassifier
from eegmtl.mtl import callbacks

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluation"))
from evaluation_synth import check_runner_resumes, synthetic_data, tiny_epochs  # noqa: E402

AUG = {"transforms": ["segment_recombine", "gaussian_noise"], "n_augmentation": 1}


class _Crash(RuntimeError):
    pass


class _CtrlC(KeyboardInterrupt):
    pass


def _crash_after(monkeypatch: pytest.MonkeyPatch, n_epochs: int,
                 error: type[BaseException] = _Crash) -> None:
    """Make the process 'die' (or the user press Ctrl-C) right after the checkpoint step of
    epoch ``n_epochs``."""
    orig = callbacks.Checkpoint.on_epoch_saved

    def crash(self: callbacks.Checkpoint, trainer: object, epoch: int) -> None:
        orig(self, trainer, epoch)
        if epoch + 1 == n_epochs:
            raise error(f"killed after epoch {n_epochs}")

    monkeypatch.setattr(callbacks.Checkpoint, "on_epoch_saved", crash)


def _est(**kw: object) -> MixNetClassifier:
    base = {"max_epochs": 4, "patience": None, "random_state": 0, "device": "cpu",
            "batch_size": 8, "augmentation": AUG}
    return MixNetClassifier(**{**base, **kw})


def _losses(est: MixNetClassifier) -> pd.DataFrame:
    return est.history_.drop(columns=[c for c in est.history_ if c == "time"])


def test_interrupted_fit_with_augmentation_and_unlabelled_trials_resumes_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = tiny_epochs(60)
    fit = {"X_val": X[1::2][:12], "y_val": y[1::2][:12], "X_unlabeled": X[1::2][12:]}
    straight = _est().fit(X[::2], y[::2], **fit)
    ckpt = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        _crash_after(m, 2)
        with pytest.raises(_Crash):
            _est(checkpoint_dir=ckpt).fit(X[::2], y[::2], **fit)
    assert (ckpt / "last.pt").is_file()
    resumed = _est(checkpoint_dir=ckpt, checkpoint_every_s=60.0).fit(
        X[::2], y[::2], resume=True, **fit)
    assert resumed.resumed_epochs_ == 2 and resumed.resumed_seconds_ > 0
    assert resumed.n_epochs_trained_ == 4
    pd.testing.assert_frame_equal(_losses(resumed), _losses(straight))
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))


def test_checkpoint_writes_are_throttled(tmp_path: Path) -> None:
    X, y = tiny_epochs(40)
    _est(max_epochs=2, checkpoint_dir=tmp_path / "rare", checkpoint_every_s=1e6).fit(X, y)
    assert not (tmp_path / "rare" / "last.pt").exists()
    every = _est(max_epochs=2, checkpoint_dir=tmp_path / "every").fit(X, y)
    assert (tmp_path / "every" / "last.pt").is_file()
    assert every.resumed_epochs_ == 0 and every.resumed_seconds_ == 0.0


@pytest.mark.parametrize("error", [_Crash, _CtrlC])
def test_runner_resumes_an_interrupted_mixnet_fit_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]) -> None:
    """Also a Ctrl-C in a one-process run: the interrupted fit is not recorded."""
    X, y, meta = synthetic_data(n_times=1000)
    est = _est(max_epochs=3, checkpoint_every_s=0.0, unlabeled_trials="transductive")
    args = dict(protocol="sd", methods={"MixNet+aug": est}, subjects=[2],
                data=(10.0 * X, y, meta), folds=[1], progress=False)  # µV
    out = check_runner_resumes(args, tmp_path, monkeypatch,
                               lambda m, epoch: _crash_after(m, epoch, error))
    assert out["time"].iloc[0] > 0


def test_runner_throttles_the_checkpoints_of_estimators_without_a_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eegmtl.evaluation import fit_fold
    from eegmtl.evaluation.runner import run_protocol
    from eegmtl.mixnet import classifier

    seen: list[float | None] = []
    orig = classifier.train_network

    def spy(est: MixNetClassifier, *a: object, **kw: object) -> None:
        seen.append(est.checkpoint_every_s)
        orig(est, *a, **kw)

    monkeypatch.setattr(classifier, "train_network", spy)
    X, y, meta = synthetic_data(n_times=1000)
    run_protocol("sd", {"MixNet": _est(max_epochs=1, augmentation=None)}, subjects=[2],
                 data=(10.0 * X, y, meta), folds=[1], progress=False,
                 results_path=tmp_path / "r.csv", checkpoint_dir=tmp_path / "ckpt")
    assert seen == [fit_fold.CHECKPOINT_EVERY_S]
