"""The fit-time breakdown and memory sampler of ``eegmtl bench mixnet`` (the speed work's
instruments): every part of a MixNet fit is timed once, the wrappers are removed again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.experiments._fit_profile import FitTimer, RSSSampler
from eegmtl.mixnet import net
from eegmtl.mixnet.config import resolve_mtl


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.standard_normal((n, 18, 400)).astype(np.float32)
    x[y == 1, :4] *= 1.5
    return x, y


def _fit(max_epochs: int = 2):
    x_tr, y_tr = _data(64, 0)
    x_va, y_va = _data(16, 1)  # 16 val trials over 2 train batches: 8-trial interleaved batches
    return net.fit_network(
        x_tr, y_tr, x_va, y_va, n_classes=2, method=resolve_mtl("blending"), latent_dim=4,
        margin=0.1, warmup=1, batch_size=32, max_epochs=max_epochs, seed=0, device="cpu",
    )


def test_fit_timer_splits_a_fit_into_parts() -> None:
    torch.set_num_threads(1)
    with FitTimer() as timer:
        _, trainer, _ = _fit(max_epochs=2)
    loop = float(trainer.history_frame("epoch")["time"].sum())
    assert timer.calls["steps"] == 4  # 2 epochs x 2 batches
    assert timer.calls["interleaved_validation"] == 4
    assert timer.calls["evaluation"] == 2
    parts = timer.seconds["steps"] + timer.seconds["interleaved_validation"] + timer.seconds[
        "evaluation"]
    assert 0 < parts <= loop
    # the wrappers are removed again
    from eegmtl.mtl.step import MTLStep

    assert "timed" not in MTLStep.__call__.__qualname__


def test_rss_sampler_sees_this_process() -> None:
    pytest.importorskip("psutil")
    with RSSSampler(0.05) as mem:
        block = np.ones(20 * 2**20 // 8)  # 20 MiB
        mem.sample()
    del block
    assert mem.peak_main_mb >= 20 and mem.peak_total_mb >= mem.peak_main_mb


# --------------------------------------------------------------------------- speed-ups keep results
def test_chunks_cover_the_batch_in_near_equal_parts() -> None:
    from eegmtl.mtl.evaluate import _chunks

    for n, size in [(1024, 128), (176, 128), (1030, 128), (5, 2), (129, 128)]:
        parts = _chunks(n, size)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        sizes = [b - a for a, b in parts]
        assert max(sizes) <= size and max(sizes) - min(sizes) <= 1


def test_sliced_loader_gives_the_batches_of_the_unshuffled_loader_as_views() -> None:
    from eegmtl.mtl.batches import SlicedLoader
    from eegmtl.mtl.data import MultiTaskLoader

    x, y = _data(70, 3)
    ds = net._dataset(x, y)
    for drop_last in (False, True):
        ref = list(MultiTaskLoader(ds, 32, shuffle=False, drop_last=drop_last))
        got = list(SlicedLoader(ds, 32, drop_last=drop_last))
        assert len(got) == len(ref) == len(SlicedLoader(ds, 32, drop_last=drop_last))
        for (xa, ta), (xb, tb) in zip(ref, got):
            assert torch.equal(xa, xb) and ta.keys() == tb.keys()
            assert all(torch.equal(ta[k], tb[k]) for k in ta)
            assert xb.untyped_storage().data_ptr() == ds.x.untyped_storage().data_ptr()


def test_chunked_evaluation_equals_the_whole_batch() -> None:
    from eegmtl.mtl.batches import SlicedLoader
    from eegmtl.mtl.evaluate import evaluate_tasks, predict_tasks

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = net.build_network(variant="mixnet", n_channels=18, n_times=400, n_classes=2,
                              latent_dim=4).eval()
    x, y = _data(300, 4)
    loader = SlicedLoader(net._dataset(x, y), 300)
    tasks = net.make_tasks(y, 2, 0.1)
    cpu = torch.device("cpu")
    whole = evaluate_tasks(model, loader, tasks, cpu)
    chunked = evaluate_tasks(model, loader, tasks, cpu, forward_batch_size=128)
    assert whole.keys() == chunked.keys()
    for k in whole:
        assert chunked[k] == pytest.approx(whole[k], rel=1e-6, abs=1e-7), k
    names = list(model.task_names)
    p0 = predict_tasks(model, loader, names, cpu)
    p1 = predict_tasks(model, loader, names, cpu, forward_batch_size=100)
    for k in names:
        torch.testing.assert_close(p1[k], p0[k], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="forward_batch_size"):
        evaluate_tasks(model, loader, tasks, cpu, forward_batch_size=0)


def test_mixnet_fit_history_unchanged_by_chunked_validation(monkeypatch) -> None:
    torch.set_num_threads(1)
    x_tr, y_tr = _data(64, 0)
    x_va, y_va = _data(300, 1)  # > 128: the validation forward runs in chunks

    def fit():
        _, trainer, _ = net.fit_network(
            x_tr, y_tr, x_va, y_va, n_classes=2, method=resolve_mtl("blending"), latent_dim=4,
            margin=0.1, warmup=1, batch_size=32, max_epochs=2, seed=0, device="cpu",
        )
        return trainer.history_frame("epoch").drop(columns="time")

    chunked = fit()
    monkeypatch.setattr(net, "_EVAL_FORWARD_CPU", None)
    whole = fit()
    assert chunked.columns.tolist() == whole.columns.tolist()
    np.testing.assert_allclose(chunked.to_numpy(float), whole.to_numpy(float), rtol=1e-6)


def test_bandwise_csp_full_rank_shortcut_keeps_the_filters(monkeypatch) -> None:
    import mne.rank
    from mne.decoding import CSP

    from eegmtl.eeg.baselines import BandwiseTransformer, _clearly_full_rank

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 2, 3, 200))
    X[y == 1, :, 0] *= 2.0
    deficient = X.copy()
    # rank 2 of 3 exactly, in any floating-point arithmetic: a dead channel (a channel that is the
    # sum of the other two is rank 2 only up to rounding, and on some CPUs MNE then estimates
    # rank 3 and its CSP's generalised eigenproblem fails)
    deficient[:, :, 2] = 0.0
    assert _clearly_full_rank(X[:, 0]) and not _clearly_full_rank(deficient[:, 0])
    estimate = mne.rank._estimate_rank_meeg_signals
    calls = []
    monkeypatch.setattr(mne.rank, "_estimate_rank_meeg_signals",
                        lambda *a, **k: calls.append(1) or estimate(*a, **k))
    fast = BandwiseTransformer(CSP(2, log=True)).fit(X, y)
    assert [e.rank for e in fast.estimators_] == ["full", "full"]
    assert not calls  # MNE's SVD rank estimate is skipped indeed
    for k, est in enumerate(fast.estimators_):  # MNE's own rank estimate, one band at a time
        ref = CSP(2, log=True).fit(X[:, k], y)
        assert np.array_equal(est.filters_, ref.filters_)
        assert np.array_equal(est.transform(X[:, k]), ref.transform(X[:, k]))
    kept = BandwiseTransformer(CSP(2, log=True)).fit(deficient, y)
    assert [e.rank for e in kept.estimators_] == [None, None]
    assert calls


@pytest.mark.parametrize("shape", [(7, 3, 400), (2, 1, 40), (3, 2, 12)])
def test_filter_bank_ba_equals_scipy_filtfilt_per_band(shape) -> None:
    import scipy.signal

    from eegmtl.eeg.filters import MIXNET_BANDS, design_filter_bank

    X = np.random.default_rng(1).standard_normal(shape)
    bank = design_filter_bank(MIXNET_BANDS, 100.0)
    out = bank.apply(X)
    pad = min(bank.padlen, shape[-1] - 1)
    for k, (b, a) in enumerate(bank.coefficients):
        ref = scipy.signal.filtfilt(b, a, X, axis=-1, padtype="odd", padlen=pad)
        assert np.array_equal(out[:, k], ref), k


def test_validation_pass_ab_reports_identical_results() -> None:
    from eegmtl.experiments._fit_profile import validation_pass_ab

    torch.set_num_threads(1)
    ab = validation_pass_ab(n_val=200, latent_dim=4, rounds=2)
    assert ab["identical"] and ab["a_s"] > 0 and ab["b_s"] > 0
    assert ab["ratio_q25"] <= ab["ratio_median"] <= ab["ratio_q75"]
