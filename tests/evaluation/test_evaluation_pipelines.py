"""The SD/SI and ablation experiments through the pipeline scripts: option parsing, summary
files, and the ablation chain (fake MixNet)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import eegmtl.evaluation.runner as runner
from eegmtl.evaluation import load_records
from eegmtl.evaluation.methods import METHODS, register_method

sys.path.insert(0, str(Path(__file__).parent))  # the shared synthetic-data helpers
from evaluation_synth import log_variance, synthetic_data  # noqa: E402

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_eval_pipeline_{name}", PIPELINES / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class FakeMixNet(ClassifierMixin, BaseEstimator):
    """Stands in for MixNetClassifier: nearest class mean on log-variance whose features are
    blurred by noise unless margin = 5 and latent_dim = 8 (so validation has a clear optimum)."""

    def __init__(self, protocol="sd", mtl="blending", margin=1.0, latent_dim=18, warmup=5,
                 batch_size=32, lr=1e-3, max_epochs=200, patience=20, random_state=None,
                 device="auto"):
        self.protocol, self.mtl = protocol, mtl
        self.margin, self.latent_dim, self.warmup = margin, latent_dim, warmup
        self.batch_size, self.lr = batch_size, lr
        self.max_epochs, self.patience = max_epochs, patience
        self.random_state, self.device = random_state, device

    def _noise(self) -> float:
        return 0.05 * abs(np.log10(self.margin / 5)) + 0.002 * abs(self.latent_dim - 8)

    def fit(self, X, y, X_val=None, y_val=None):
        F = log_variance(X)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([F[y == c].mean(0) for c in self.classes_])
        self.n_epochs_trained_ = self.warmup
        return self

    def decision_function(self, X):
        F = log_variance(X)
        F = F + np.random.default_rng(0).normal(0, self._noise() * 20, F.shape)
        d = ((F[:, None, :] - self.means_[None]) ** 2).sum(-1)
        return d[:, 0] - d[:, 1]

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def fake_factory(config):
    return FakeMixNet(**{k: v for k, v in config.items() if k != "method"})


@pytest.fixture
def fake_mixnet(monkeypatch):
    data = synthetic_data(n_times=16, n_subjects=6)
    monkeypatch.setattr(runner, "load_default_data", lambda *a, **k: data)
    old = METHODS["MixNet"]
    register_method("MixNet", fake_factory, old[1], overwrite=True)
    yield
    METHODS["MixNet"] = old


def test_parse_subjects_and_values():
    from eegmtl.experiments._common import parse_subjects, parse_value

    assert parse_subjects(["1..9"]) == list(range(1, 10))
    assert parse_subjects(["1-3", "7", "2,8"]) == [1, 2, 3, 7, 8]
    assert [parse_value(v) for v in ("3", "0.5", "true", "none", "x", "0.5/0.999", "4-28/4")] == [
        3, 0.5, True, None, "x", [0.5, 0.999], "4-28/4"]


def test_subject_dependent_script_writes_records_and_summary(fake_mixnet, tmp_path):
    sd = _load("subject_dependent.py")
    res = tmp_path / "sd.csv"
    sd.main(["--methods", "MixNet", "--subjects", "1", "2", "--only-folds", "1",
             "--results", str(res), "--no-progress", "--max-epochs", "7"])
    df = load_records(res)
    assert len(df) == 2 and set(df.subject) == {1, 2}
    assert '"max_epochs":7' in df.config.iloc[0]
    text = (tmp_path / "sd_summary.md").read_text()
    command = text.split("```")[1].strip().split("\t")[-1]  # the exact command, in the header
    assert command.startswith("python pipelines/subject_dependent.py --methods MixNet")
    assert "| MixNet |" in text and "do not edit by hand" in text
    log = tmp_path / "sd.csv.commands.log"
    assert len(log.read_text().splitlines()) == 1
    # a rerun that only finds finished fits leaves the command log as it was
    sd.main(["--methods", "MixNet", "--subjects", "1", "2", "--only-folds", "1",
             "--results", str(res), "--no-progress", "--max-epochs", "7"])
    assert len(log.read_text().splitlines()) == 1 and len(load_records(res)) == 2



def test_selection_run_summary_shows_validation_only(fake_mixnet, tmp_path, capsys):
    from eegmtl.experiments.summaries import SELECTION_NOTE

    sd = _load("subject_dependent.py")
    res = tmp_path / "sel.csv"
    sd.main(["--methods", "MixNet", "--subjects", "1", "--validation", "session",
             "--results", str(res), "--no-progress"])
    df = load_records(res)
    assert len(df) == 3 and df["accuracy"].notna().all()  # recorded ...
    out = capsys.readouterr().out
    text = (tmp_path / "sel_summary.md").read_text()
    for shown in (out, text):  # ... but neither printed nor summarised
        assert "acc (%)" not in shown.replace("val acc (%)", "")
        assert "F1" not in shown and "val acc" in shown
    assert SELECTION_NOTE in text and "(ddof = 1), test sessions" not in text
    # a scored run in the same file gets its test table; the selection rows stay out of it
    sd.main(["--methods", "MixNet", "--subjects", "1", "--only-folds", "1",
             "--results", str(res), "--no-progress"])
    text = (tmp_path / "sel_summary.md").read_text()
    scored = text.split(SELECTION_NOTE)[0]
    assert "(ddof = 1), test sessions" in scored and "| MixNet | " in scored
    assert "| 1 |" in scored.split("(ddof = 1), test sessions")[1].split("Validation accuracy")[0]

def test_estimate_plans_without_fitting(fake_mixnet, tmp_path, capsys):
    sd = _load("subject_dependent.py")
    res = tmp_path / "sd.csv"
    args = ["--methods", "MixNet", "--subjects", "1", "2", "3", "--only-folds", "1",
            "--results", str(res), "--no-progress", "--max-epochs", "7"]
    sd.main([*args, "--estimate"])
    out = capsys.readouterr().out
    assert not res.exists()  # nothing was fitted
    assert "| MixNet" in out and "3 fits to run (0 of those requested are done)" in out
    assert "CPU time unknown, no reference fit time for ['MixNet']" in out
    sd.main(args[:4] + args[6:])  # subject 1 only
    done = load_records(res)
    sd.main([*args, "--estimate"])
    out = capsys.readouterr().out
    assert len(load_records(res)) == 1  # still only the fit of subject 1
    assert "2 fits to run (1 of those requested are done)" in out
    assert "same config (1)" in out
    assert f"{2 * done['time'].iloc[0] / 3600:.1f} CPU-h" in out
    sd.main(args[:4] + args[6:] + ["--estimate"])
    assert "nothing to run: all 1 requested fits have a record" in capsys.readouterr().out


def test_time_limit_defers_fits_by_the_recorded_fit_times(fake_mixnet, tmp_path, capsys):
    """``--time-limit``: a fit starts only if its pipeline's recorded fit time ends before
    the limit; the rest waits for the same command, which resumes it."""
    import pandas as pd

    sd = _load("subject_dependent.py")
    res = tmp_path / "sd.csv"
    args = ["--methods", "MixNet", "--subjects", "1", "2", "3", "--only-folds", "1",
            "--results", str(res), "--no-progress", "--max-epochs", "7"]
    sd.main(args[:4] + args[6:])  # subject 1 only
    done = load_records(res)
    assert len(done) == 1
    # the recorded fit says 1 h: none of the other two fits fits into 600 s (counted from the
    # command's start, not the test process's)
    rec = pd.read_csv(res)
    rec["time"] = 3600.0
    # two quick fits of other settings under the same name (e.g. a --max-epochs 1 run): the
    # fits to run are expected to take as long as the record of their own settings
    other = pd.concat([rec] * 2, ignore_index=True).assign(
        subject=[8, 9], config_hash="0ther5ettings", time=1.0)
    pd.concat([rec, other], ignore_index=True).to_csv(res, index=False)
    from eegmtl.experiments.protocol import expected_fit_times

    assert expected_fit_times([res], "subject_dependent", ["MixNet"], gpu=False) == {
        "MixNet": 1.0}  # by name only
    own = {"MixNet": {str(rec["config_hash"][0])}}
    assert expected_fit_times([res], "subject_dependent", ["MixNet"], gpu=False,
                              config_hashes=own) == {"MixNet": 3600.0}
    assert expected_fit_times([res], "subject_dependent", ["MixNet"], gpu=True) == {}
    # per pipeline: the kind of device each pipeline's fits will run on
    assert expected_fit_times([res], "subject_dependent", ["MixNet"], config_hashes=own,
                              gpu={"MixNet": False, "EEGNet": True}) == {"MixNet": 3600.0}
    assert expected_fit_times([res], "subject_dependent", ["MixNet"], gpu={"MixNet": True}) == {}
    capsys.readouterr()
    sd.main([*args, "--time-limit", "600"])
    out = capsys.readouterr().out
    assert len(load_records(res)) == 3  # 1 + the two of other settings
    assert "time limit: 2 fits not started; run the same command again" in out
    sd.main([*args, "--time-limit", "1e6"])
    assert len(load_records(res)) == 5
    for limit in ("-1", "5"):  # not above the 10 s kept for the summaries
        with pytest.raises(SystemExit, match="--time-limit must be more than the 10 s"):
            sd.main([*args, "--time-limit", limit])


class _TerminatedMixNet(FakeMixNet):
    """The fake MixNet whose second fit gets SIGTERM (as from a scheduler's time limit)."""

    fits = 0
    #: a record file that another run writes to while this one runs (its first row, renamed)
    other_writer: Path | None = None

    def fit(self, X, y, X_val=None, y_val=None):
        import os
        import signal
        import time

        type(self).fits += 1
        if type(self).fits == 2:
            if self.other_writer is not None:
                from eegmtl.evaluation.records import merge_records

                first = load_records(self.other_writer).head(1)
                # another run's rows: another pipeline, and the same pipeline (another seed, as
                # a second process of the same pipeline would add)
                merge_records(first.assign(pipeline="OtherRun"), self.other_writer)
                merge_records(first.assign(seed=7), self.other_writer)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
        return super().fit(X, y, X_val, y_val)


def test_sigterm_stops_like_ctrl_c_and_writes_the_summary(fake_mixnet, tmp_path, capsys):
    """SIGTERM during ``sd``: exit status 143, the finished fit recorded, the summary written
    from it and the command logged as interrupted with the records it added (not those another
    run added to the same file meanwhile); the same command then finishes the run."""
    import signal

    old = METHODS["MixNet"]
    res = tmp_path / "sd.csv"
    _TerminatedMixNet.fits, _TerminatedMixNet.other_writer = 0, res
    register_method("MixNet", lambda c: _TerminatedMixNet(
        **{k: v for k, v in c.items() if k != "method"}), old[1], overwrite=True)
    sd = _load("subject_dependent.py")
    args = ["--methods", "MixNet", "--subjects", "1", "2", "3", "--only-folds", "1",
            "--results", str(res), "--no-progress"]
    handler = signal.getsignal(signal.SIGTERM)
    assert sd.main(args) == 143
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's handler is gone
    assert "terminated" in capsys.readouterr().err
    assert sorted(load_records(res)["pipeline"]) == ["MixNet", "MixNet", "OtherRun"]
    log = (tmp_path / "sd.csv.commands.log").read_text().splitlines()
    assert len(log) == 1 and log[0].endswith("# interrupted after 1 new records")
    assert "| MixNet |" in (tmp_path / "sd_summary.md").read_text()
    _TerminatedMixNet.other_writer = None
    assert sd.main(args) == 0 and len(load_records(res)) == 5


class _DyingMixNet(FakeMixNet):
    """The fake MixNet whose fits are killed (SIGKILL, as by the out-of-memory killer) in any
    process but ``DYING_PARENT``."""

    def fit(self, X, y, X_val=None, y_val=None):
        import os
        import signal

        if os.getpid() != int(os.environ["DYING_PARENT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y, X_val, y_val)


def test_a_dead_worker_ends_the_command_with_its_summary(fake_mixnet, tmp_path, capsys,
                                                           monkeypatch):
    """A worker killed mid-fit: exit status 1 with what was kept and how to resume, the
    summary and command log written as for an interrupted run."""
    import os

    old = METHODS["MixNet"]
    register_method("MixNet", lambda c: _DyingMixNet(
        **{k: v for k, v in c.items() if k != "method"}), old[1], overwrite=True)
    monkeypatch.setenv("DYING_PARENT", str(os.getpid()))
    sd = _load("subject_dependent.py")
    res = tmp_path / "sd.csv"
    args = ["--methods", "MixNet", "--subjects", "1", "--only-folds", "1",
            "--results", str(res), "--no-progress"]
    assert sd.main(args) == 0  # in this process
    monkeypatch.setenv("DYING_PARENT", "-1")
    (tmp_path / "sd_summary.md").unlink()  # written again on the way out
    capsys.readouterr()
    args[4] = "2"
    assert sd.main([*args, "--n-jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "error: a worker process died" in err and "same command again" in err
    assert len(load_records(res)) == 1
    log = (tmp_path / "sd.csv.commands.log").read_text().splitlines()
    assert len(log) == 1  # the run added no record: nothing to log
    assert "| MixNet |" in (tmp_path / "sd_summary.md").read_text()


def test_ablation_chain_selects_on_validation(fake_mixnet, tmp_path):
    ab = _load("ablations.py")
    res = tmp_path / "ab.csv"
    ab.main(["--param", "all", "--protocol", "sd", "--subjects", "1", "2", "--only-folds", "1",
             "--results", str(res), "--no-progress"])
    df = load_records(res)
    # S1: 6 margins; S2: 7 latents (one equals S1's pick: cached); S3: 5 warm-ups (one cached)
    assert df.pipeline.nunique() == 6 + 6 + 4 and len(df) == 2 * 16
    text = (tmp_path / "ab_summary.md").read_text()
    assert "Chosen on validation: margin = 5" in text
    assert "Chosen on validation: latent = 8" in text
    assert "Final setting: margin = 5, latent = 8" in text
    s2 = df[df.pipeline.str.contains("warmup=5") & df.pipeline.str.startswith("MixNet[margin=5,")]
    assert len(s2) >= 2 * 7


def test_si_ablation_reports_the_leave_target_out_check(fake_mixnet, tmp_path):
    """SI grids also say whether each target's choice, made without the fits validated on
    that target's trials, agrees with the pooled one."""
    import re

    ab = _load("ablations.py")
    res = tmp_path / "ab_si.csv"
    ab.main(["--param", "warmup", "--protocol", "si", "--subjects", "1", "2", "3",
             "--only-folds", "1", "--results", str(res), "--no-progress"])
    text = (tmp_path / "ab_si_summary.md").read_text()
    m = re.search(r"Leave-target-out check .*?: the pooled choice for (\d) of 3 targets", text)
    assert m is not None and 0 <= int(m.group(1)) <= 3
