"""run_protocol: records, resume, interruption, parallel = serial, validation passing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegmtl.evaluation.records import RECORD_COLUMNS, load_records
from eegmtl.evaluation.runner import fit_seed, run_protocol

sys.path.insert(0, str(Path(__file__).parent))  # the shared synthetic-data helpers
from evaluation_synth import CountingClassifier, logvar_lr, synthetic_data  # noqa: E402

SCHEMA_COLUMNS = ["dataset", "protocol", "pipeline", "subject", "fold", "seed", "accuracy",
                  "f1_macro", "kappa", "roc_auc", "score", "samples", "time",
                  "n_epochs_trained", "config_hash", "config", "versions"]
MOABB_COLUMNS = ["score", "time", "samples", "samples_test", "subject", "session", "channels",
                 "n_sessions", "dataset", "pipeline"]


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


@pytest.fixture(autouse=True)
def _reset_counter():
    CountingClassifier.n_fits = 0
    CountingClassifier.saw_validation = []


def test_end_to_end_one_subject_one_fold(tmp_path, data):
    path = tmp_path / "sd.csv"
    df = run_protocol("sd", {"LogVarLR": logvar_lr()}, subjects=[1], data=data, folds=[1],
                      results_path=path, progress=False)
    assert len(df) == 1
    disk = load_records(path)
    for col in SCHEMA_COLUMNS + MOABB_COLUMNS:
        assert col in disk.columns, col
    assert list(disk.columns) == list(RECORD_COLUMNS)
    r = disk.iloc[0]
    assert (r.protocol, r.pipeline, r.subject, r.fold, r.seed) == (
        "subject_dependent", "LogVarLR", 1, 1, 0)
    assert r.dataset == "BNCI2014_004-export"
    assert r.samples == 288 and r.samples_test == 240 and r.samples_val == 72
    assert r.channels == 3 and r.n_sessions == 5 and r.session == "3test+4test"
    assert r.accuracy > 0.75 and r.score == r.roc_auc and 0.5 < r.roc_auc <= 1
    assert r.kappa == pytest.approx(2 * r.accuracy - 1, abs=0.05)  # balanced test set
    assert r.fit_seed == fit_seed(0, 1, 1)
    cfg = json.loads(r.config)
    assert cfg["protocol"] == "subject_dependent" and cfg["n_folds"] == 5
    assert "LogisticRegression" in json.dumps(cfg["method_config"])
    assert json.loads(r.versions)["scikit-learn"]


def test_subject_independent_record_and_validation_passing(tmp_path, data):
    X, y, meta = data
    small = meta.subject <= 6
    sub = (X[small.to_numpy()], y[small.to_numpy()], meta[small].reset_index(drop=True))
    df = run_protocol("si", {"Count": CountingClassifier()}, subjects=[2], data=sub,
                      folds=[1], progress=False)
    r = df.iloc[0]
    n_val = len(r.val_subjects.split(";"))
    assert r.samples_test == 240 and r.samples_val == 600 * n_val
    assert r.samples == 600 * (5 - n_val) and r.n_epochs_trained == 3
    assert CountingClassifier.saw_validation == [600 * n_val]  # fit got X_val / y_val


def test_resume_skips_finished_fits(tmp_path, data):
    path = tmp_path / "r.csv"
    kw = dict(subjects=[1, 2], data=data, folds=[1, 2], results_path=path, progress=False)
    first = run_protocol("sd", {"Count": CountingClassifier()}, **kw)
    assert CountingClassifier.n_fits == 4 and len(first) == 4
    again = run_protocol("sd", {"Count": CountingClassifier()}, **kw)
    assert CountingClassifier.n_fits == 4  # nothing refitted
    pd.testing.assert_frame_equal(first, again)
    run_protocol("sd", {"Count": CountingClassifier()}, **{**kw, "folds": [1, 2, 3]})
    assert CountingClassifier.n_fits == 6  # only the new fold of each subject
    # a different config is a different row (new hash), not a cache hit
    run_protocol("sd", {"Count": CountingClassifier(fail_after=10**6)}, **kw)
    assert CountingClassifier.n_fits == 10 and load_records(path).config_hash.nunique() == 2
    run_protocol("sd", {"Count": CountingClassifier()}, **kw, resume=False)
    assert CountingClassifier.n_fits == 14 and len(load_records(path)) == 10


def test_interrupted_run_keeps_finished_fits(tmp_path, data):
    path = tmp_path / "r.csv"
    kw = dict(subjects=[1, 2], data=data, folds=[1, 2], results_path=path, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_protocol("sd", {"Count": CountingClassifier(fail_after=3)}, **kw)
    assert len(load_records(path)) == 3  # the three finished fits are on disk
    CountingClassifier.n_fits = 0
    run_protocol("sd", {"Count": CountingClassifier(fail_after=3)}, **kw)
    assert CountingClassifier.n_fits == 1 and len(load_records(path)) == 4


def test_parallel_and_serial_give_identical_records(tmp_path, data):
    kw = dict(subjects=[1, 3], data=data, folds=[1, 2], seeds=(0, 1), progress=False)
    methods = {"Count": CountingClassifier(), "LogVarLR": logvar_lr()}
    serial = run_protocol("sd", methods, n_jobs=1, results_path=tmp_path / "s.csv", **kw)
    parallel = run_protocol("sd", methods, n_jobs=2, backend="loky",
                            results_path=tmp_path / "p.csv", **kw)
    assert len(serial) == 16
    drop = ["time", "versions"]
    pd.testing.assert_frame_equal(serial.drop(columns=drop), parallel.drop(columns=drop))
    # the seed is used: different seeds give different (jittered) AUCs for the same fold
    c = serial[(serial.pipeline == "Count") & (serial.subject == 1) & (serial.fold == 1)]
    assert c.fit_seed.nunique() == 2
    threads = run_protocol("sd", methods, n_jobs=2, backend="threading", **kw)
    pd.testing.assert_frame_equal(serial.drop(columns=drop), threads.drop(columns=drop))


def test_expected_fit_times_start_the_longest_fits_first(tmp_path, data):
    kw = dict(subjects=[1, 3], data=data, folds=[1], progress=False)
    methods = {"Count": CountingClassifier(), "LogVarLR": logvar_lr()}
    usual = run_protocol("sd", methods, plan_only=True, **kw)
    assert usual["pipeline"].tolist() == ["Count", "LogVarLR"] * 2  # subject-major
    plan = run_protocol("sd", methods, plan_only=True, expected_fit_s={"LogVarLR": 9.0}, **kw)
    assert plan["pipeline"].tolist() == ["LogVarLR", "LogVarLR", "Count", "Count"]
    assert plan["subject"].tolist() == [1, 3, 1, 3]  # stable within a pipeline
    # only the order changes: the records are those of the usual order
    a = run_protocol("sd", methods, results_path=tmp_path / "a.csv", **kw)
    b = run_protocol("sd", methods, results_path=tmp_path / "b.csv",
                     expected_fit_s={"LogVarLR": 9.0}, **kw)
    drop = ["time", "versions"]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))


class _SlowCounting(CountingClassifier):
    """A fit that takes 1 s."""

    def fit(self, X, y, X_val=None, y_val=None):
        import time

        time.sleep(1.0)
        return super().fit(X, y, X_val, y_val)


def test_deadline_starts_only_the_fits_that_end_before_it(tmp_path, data):
    import time

    kw = dict(subjects=[1, 3], data=data, folds=[1], progress=False,
              results_path=tmp_path / "r.csv")
    methods = {"Count": CountingClassifier(), "LogVarLR": logvar_lr()}
    # LogVarLR is expected to take longer than the time left; Count has no estimate and
    # starts while time is left
    df = run_protocol("sd", methods, expected_fit_s={"LogVarLR": 1e6},
                      deadline=time.time() + 60, **kw)
    assert df["pipeline"].tolist() == ["Count", "Count"]
    assert (df.attrs["n_fitted"], df.attrs["n_deferred"]) == (2, 2)
    # past the deadline nothing starts; without one, the same call resumes the deferred fits
    late = run_protocol("sd", methods, deadline=time.time() - 1, **kw)
    assert (late.attrs["n_fitted"], late.attrs["n_deferred"]) == (0, 2) and len(late) == 2
    rest = run_protocol("sd", methods, **kw)
    assert sorted(rest["pipeline"]) == ["Count", "Count", "LogVarLR", "LogVarLR"]
    assert rest.attrs["n_fitted"] == 2 and rest.attrs["n_deferred"] == 0
    # the check is made as each fit starts: after a 1 s fit, a second 1 s fit would end
    # past a deadline 1.9 s away, so it waits for the next run
    slow = run_protocol("sd", {"Slow": _SlowCounting()}, subjects=[1, 3], data=data,
                        folds=[1, 2], progress=False, expected_fit_s={"Slow": 1.0},
                        deadline=time.time() + 1.9)
    assert (slow.attrs["n_fitted"], slow.attrs["n_deferred"]) == (1, 3)
    # an estimate far too low is corrected by the fit times observed in the run: expected
    # 0.1 s, the first fit takes 1 s, so a second would end past the deadline
    slow = run_protocol("sd", {"Slow": _SlowCounting()}, subjects=[1, 3], data=data,
                        folds=[1, 2], progress=False, expected_fit_s={"Slow": 0.1},
                        deadline=time.time() + 1.9)
    assert (slow.attrs["n_fitted"], slow.attrs["n_deferred"]) == (1, 3)


def test_bad_inputs_fail_loudly(data):
    X, y, meta = data
    with pytest.raises(ValueError, match="one row per trial"):
        run_protocol("sd", {"m": logvar_lr()}, data=(X[:-1], y, meta), progress=False)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_protocol("sd", {"m": logvar_lr()}, data=(bad, y, meta), progress=False)
    with pytest.raises(TypeError, match="unfitted scikit-learn estimator"):
        run_protocol("sd", {"m": 3}, data=data, progress=False)
    # a fold the protocol does not have would have run nothing and said nothing
    with pytest.raises(ValueError, match=r"folds \[0, 7\] do not exist: with n_folds=5 the "
                                         r"folds are 1-5"):
        run_protocol("sd", {"m": logvar_lr()}, data=data, folds=[0, 1, 7], progress=False)


def test_predictions_dir_writes_one_row_per_test_trial(tmp_path, data):
    from sklearn.metrics import accuracy_score

    X, y, meta = data
    df = run_protocol("sd", {"LogVarLR": logvar_lr()}, subjects=[2], data=data, folds=[1],
                      progress=False, predictions_dir=tmp_path / "pred")
    files = sorted((tmp_path / "pred").glob("*_predictions.csv"))
    assert len(files) == 1 and "LogVarLR_S2_F1" in files[0].name
    pred = pd.read_csv(files[0])
    assert len(pred) == df.iloc[0].samples_test == 240
    assert (pred.trial_subject == 2).all() and set(pred.trial_session) == {4, 5}
    assert (pred.y_true.to_numpy() == y[pred.trial.to_numpy()]).all()
    assert accuracy_score(pred.y_true, pred.y_pred) == pytest.approx(df.iloc[0].accuracy)
    proba = pred.filter(like="score_").to_numpy()
    assert proba.shape[1] == 2 and np.allclose(proba.sum(axis=1), 1)


def test_batch_fits_trains_braindecode_fits_together(tmp_path):
    """``batch_fits=3``: the four fits of a braindecode pipeline run as a batch of three and a
    batch of one (recorded in ``step_config``), the other pipeline one by one, unchanged."""
    pytest.importorskip("braindecode")
    from eegmtl.eeg.deep_baselines import make_deep_baseline

    data = synthetic_data(n_times=250)
    methods = {"Shallow": make_deep_baseline("ShallowFBCSPNet", max_epochs=3, batch_size=32,
                                             augmentation=None),
               "LogVarLR": logvar_lr()}
    kw = {"subjects": [1], "data": data, "folds": [1, 2], "seeds": [0, 1], "progress": False}
    df = run_protocol("sd", methods, results_path=tmp_path / "b.csv", batch_fits=3, **kw)
    plain = run_protocol("sd", {"LogVarLR": logvar_lr()}, results_path=tmp_path / "p.csv", **kw)
    shallow = df[df.pipeline == "Shallow"]
    assert len(shallow) == 4 and shallow.accuracy.between(0, 1).all()
    sizes = sorted(json.loads(s)["batched_fits"] for s in shallow.step_config)
    assert sizes == [1, 3, 3, 3]
    assert (shallow.n_epochs_trained <= 3).all() and shallow.val_accuracy.notna().all()
    lr = df[df.pipeline == "LogVarLR"].reset_index(drop=True)
    assert lr.step_config.fillna("").eq("").all()
    pd.testing.assert_series_equal(lr.accuracy, plain.accuracy)
    with pytest.raises(ValueError, match="batch_fits"):
        run_protocol("sd", methods, batch_fits=0, **kw)
    # under a deadline a batch (of any size from 2 to batch_fits) is expected to take
    # max(1, batch_fits / batch_speedup) fits' time: with 100 s per fit and 250 s left, the
    # batch of three waits without a gain and runs with 2x; with 80 s left nothing starts,
    # however large the gain (a batch ends no sooner than its slowest fit alone)
    import time

    kw = {**kw, "methods": {"Shallow": methods["Shallow"]}, "batch_fits": 3,
          "expected_fit_s": {"Shallow": 100.0}}
    wait = run_protocol("sd", deadline=time.time() + 250, **kw)
    assert (wait.attrs["n_fitted"], wait.attrs["n_deferred"]) == (1, 3)  # the batch of one ran
    ran = run_protocol("sd", deadline=time.time() + 250, batch_speedup=2.0, **kw)
    assert (ran.attrs["n_fitted"], ran.attrs["n_deferred"]) == (4, 0)
    none = run_protocol("sd", deadline=time.time() + 80, batch_speedup=6.0, **kw)
    assert (none.attrs["n_fitted"], none.attrs["n_deferred"]) == (0, 4)
    with pytest.raises(ValueError, match="batch_speedup"):
        run_protocol("sd", batch_speedup=0.0, **kw)


def test_a_dead_worker_keeps_finished_fits_and_says_how_to_resume(tmp_path, data):
    import os

    from evaluation_synth import DyingClassifier

    from eegmtl.parallel import WorkerDiedError

    path = tmp_path / "r.csv"
    kw = dict(subjects=[1, 2], data=data, folds=[1], results_path=path, progress=False)
    alive = {"Count": DyingClassifier(parent_pid=os.getpid())}
    run_protocol("sd", alive, **{**kw, "subjects": [1]})  # in this process: one record
    dying = {"Count": DyingClassifier(parent_pid=-1)}  # every fit in a worker kills it
    with pytest.raises(WorkerDiedError, match=r"worker process died.*0 fits this run finished "
                                              r"are recorded in .*same command again"):
        run_protocol("sd", dying, n_jobs=2, backend="loky", **kw)
    assert len(load_records(path)) == 1  # the earlier record is intact
    done = run_protocol("sd", alive, **kw)  # the same run resumes: only subject 2 is fitted
    assert done.attrs["n_fitted"] == 1 and len(load_records(path)) == 2
