"""Epoch checkpoints of the braindecode baselines: an interrupted fit resumes exactly, in the
estimator and through the fold runner; other data or settings are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("braindecode")

from eegmtl.eeg import deep_baselines as db  # noqa: E402
from eegmtl.eeg import skorch_checkpoint as sc  # noqa: E402
from eegmtl.mtl.checkpoint import CheckpointMismatchError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluation"))
from evaluation_synth import check_runner_resumes  # noqa: E402

SR = {"transforms": ["segment_recombine"], "n_augmentation": 1}


def _data(seed: int = 0, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(["left", "right"], n // 2)
    X = rng.standard_normal((n, 3, 500))
    X[y == "right", 0] += 0.7  # learnable, so that the weights and losses move every epoch
    return X, y


def _clf(**kw: object) -> db.BraindecodeClassifier:
    base = {"max_epochs": 7, "batch_size": 16, "patience": None, "augmentation": SR,
            "sfreq": 125.0, "random_state": 3, "checkpoint_every_s": 0.0}
    return db.make_deep_baseline("EEGNet", **{**base, **kw})


class _Crash(RuntimeError):
    pass


class _CtrlC(KeyboardInterrupt):
    """A Ctrl-C (skorch's ``partial_fit`` swallows :class:`KeyboardInterrupt`: its early
    stopping stops a fit that way)."""


def _crash_after(monkeypatch: pytest.MonkeyPatch, epoch: int,
                 error: type[BaseException] = _Crash) -> None:
    """Make the process 'die' (or the user press Ctrl-C) right after the checkpoint of
    ``epoch`` is written."""
    orig = sc.EpochCheckpoint.on_epoch_end

    def crash(self: sc.EpochCheckpoint, net: object, **kw: object) -> None:
        orig(self, net, **kw)
        if len(net.history) == epoch:  # type: ignore[attr-defined]
            raise error(f"killed after epoch {epoch}")

    monkeypatch.setattr(sc.EpochCheckpoint, "on_epoch_end", crash)


def _history(clf: db.BraindecodeClassifier) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in ("dur", "batches")} for h in clf.history_]


@pytest.mark.parametrize("case", ["all_epochs", "early_stopped", "killed_after_last_epoch"])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    X, y = _data()
    if case == "all_epochs":  # all 7 epochs; the process dies after epoch 3
        patience, Xv, yv, crash_at, kw = None, *_data(1, 16), 3, {}
    else:  # validation noise: the best epoch is the first
        rng = np.random.default_rng(5)
        Xv, yv = rng.standard_normal((16, 3, 500)), np.repeat(["left", "right"], 8)
        if case == "early_stopped":  # early stopping ends the fit at 4; dies after epoch 2
            patience, crash_at, kw = 3, 2, {"max_epochs": 12}
        else:  # 3 epochs, dies after the last checkpoint: the best weights must still be restored
            patience, crash_at, kw = 10, 3, {"max_epochs": 3}
    ref = _clf(patience=patience, **kw).fit(X, y, Xv, yv)  # no checkpoints at all
    if patience is not None:
        assert ref.history_[0]["valid_loss_best"] and not ref.history_[-1]["valid_loss_best"]
    with monkeypatch.context() as m:
        _crash_after(m, crash_at)
        with pytest.raises(_Crash):
            _clf(patience=patience, checkpoint_dir=tmp_path, **kw).fit(X, y, Xv, yv)
    assert (tmp_path / "last.pt").is_file()
    import torch

    torch.manual_seed(12345)  # the resumed fit must not depend on the process's RNG state
    np.random.seed(7)  # noqa: NPY002
    res = _clf(patience=patience, checkpoint_dir=tmp_path, **kw).fit(X, y, Xv, yv, resume=True)
    assert res.resumed_epochs_ == crash_at and res.resumed_seconds_ > 0
    assert _history(res) == _history(ref)  # losses, accuracies, best flags of every epoch
    assert np.array_equal(res.predict_proba(Xv), ref.predict_proba(Xv))
    for a, b in zip(res.net_.module_.state_dict().values(),
                    ref.net_.module_.state_dict().values()):
        assert torch.equal(a, b)


def test_ctrl_c_or_sigterm_stops_the_fit_instead_of_ending_it_early(tmp_path: Path) -> None:
    """An interruption that skorch would swallow (and the caller then score as a finished fit)
    reaches the caller, the same exception; the checkpoint stays, so the fit resumes exactly."""
    from eegmtl.experiments import Terminated

    X, y = _data()
    ref = _clf().fit(X, y)
    for error in (_CtrlC, Terminated):
        with pytest.MonkeyPatch.context() as m:
            _crash_after(m, 2, error)
            with pytest.raises(error, match="killed after epoch 2"):
                _clf(checkpoint_dir=tmp_path).fit(X, y)
        assert (tmp_path / "last.pt").is_file()
    res = _clf(checkpoint_dir=tmp_path).fit(X, y, resume=True)
    assert res.resumed_epochs_ == 2 and _history(res) == _history(ref)
    assert np.array_equal(res.predict_proba(X), ref.predict_proba(X))


def test_early_stopping_still_ends_the_fit_quietly() -> None:
    rng = np.random.default_rng(5)  # validation noise: the best epoch is the first
    Xv, yv = rng.standard_normal((16, 3, 500)), np.repeat(["left", "right"], 8)
    clf = _clf(patience=2, max_epochs=12).fit(*_data(), Xv, yv)
    assert clf.n_epochs_trained_ < 12 and not clf.net_.interrupted_


def test_fresh_fit_ignores_and_overwrites_a_checkpoint(tmp_path: Path) -> None:
    X, y = _data()
    first = _clf(max_epochs=2, checkpoint_dir=tmp_path).fit(X, y)
    again = _clf(max_epochs=2, checkpoint_dir=tmp_path).fit(X, y)  # resume=False: from scratch
    assert again.resumed_epochs_ == 0 and again.resumed_seconds_ == 0.0
    assert np.array_equal(first.predict_proba(X), again.predict_proba(X))


def test_resume_refuses_other_data_or_settings(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data()
    with monkeypatch.context() as m:
        _crash_after(m, 1)
        with pytest.raises(_Crash):
            _clf(checkpoint_dir=tmp_path).fit(X, y)
    with pytest.raises(CheckpointMismatchError, match="data_sha256"):
        _clf(checkpoint_dir=tmp_path).fit(X + 1.0, y, resume=True)
    with pytest.raises(CheckpointMismatchError, match="settings_hash"):
        _clf(checkpoint_dir=tmp_path, lr=0.5).fit(X, y, resume=True)
    # the device and the checkpoint settings may change between the two processes
    assert _clf(checkpoint_dir=tmp_path, checkpoint_every_s=60.0).fit(
        X, y, resume=True).resumed_epochs_ == 1
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        _clf().fit(X, y, resume=True)


@pytest.mark.parametrize("error", [_Crash, _CtrlC])
def test_runner_resumes_an_interrupted_fit_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]) -> None:
    """Also a Ctrl-C in a one-process run: the interrupted fit is not recorded (its resumed
    record equals the uninterrupted one)."""
    rng = np.random.default_rng(0)
    y = np.tile(np.repeat([0, 1], 12), 5)  # one subject, 5 sessions of 24 trials (1-3 train)
    meta = pd.DataFrame({"subject": 1, "session": np.repeat([1, 2, 3, 4, 5], 24), "run": 0})
    X = rng.standard_normal((len(y), 3, 250))
    X[y == 1, 0] *= 2.0
    kw = {"max_epochs": 4, "batch_size": 8, "patience": None, "augmentation": None,
          "checkpoint_every_s": 0.0}
    args = dict(protocol="sd", methods=["EEGNet[val]"], subjects=[1], data=(X, y, meta),
                folds=[1], progress=False, method_params={"EEGNet[val]": kw})
    check_runner_resumes(args, tmp_path, monkeypatch,
                         lambda m, epoch: _crash_after(m, epoch, error))
