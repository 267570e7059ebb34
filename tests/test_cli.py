"""The ``eegmtl`` command: help of every command, data check, report, dispatch to the
experiments (and the pipelines/ scripts running the same code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from eegmtl import cli, experiments
from eegmtl.evaluation.report import report
from eegmtl.evaluation.stats import paired_tests

ENV_VARS = ("EEGMTL_DATA_DIR", "EEGMTL_RESULTS_DIR", "EEGMTL_PIPELINES_DIR", "EEGMTL_BCI2B_DIR",
            "EEGMTL_MNIST_DIR", "EEGMTL_FASHION_MNIST_DIR")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Unset the eegmtl variables; monkeypatch restores them after the test (cli.main sets
    them in os.environ)."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([], capsys)
    commands = [c for c in experiments.COMMANDS if not c.startswith("bench-")]
    for command in [*commands, "bench", "report", "data", "methods", "--data-dir",
                    "--results-dir", "eegmtl-results"]:
        assert command in out
    assert cli.main([]) == 0  # no command: prints the help
    assert "usage: eegmtl" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["train"], ["sd"], ["si"], ["ablations"], ["csp-lda"], ["vision"], ["toy"], ["bench", "mtl"],
    ["bench", "mixnet"], ["report"], ["data", "check"], ["methods"], ["moabb-si"],
])
def test_help_of_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(command, capsys)
    assert out.startswith(f"usage: eegmtl {' '.join(command)}")
    assert "--help" in out


def test_specific_options_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--max-epochs" in _help(["train"], capsys)
    sd = _help(["sd"], capsys)
    for option in ("--methods", "--subjects", "--folds", "--seeds", "--n-jobs", "--backend",
                   "--results", "--max-epochs", "--device"):
        assert option in sd
    assert "--reference" in _help(["report"], capsys)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from eegmtl import __version__

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_bench_without_choice_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench"]) == 0
    out = capsys.readouterr().out
    assert "mtl" in out and "mixnet" in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "nonsense"])
    assert exc.value.code == 2


def test_unknown_option_of_a_library_command_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["methods", "--bogus"])
    assert exc.value.code == 2
    assert "--bogus" in capsys.readouterr().err


def test_method_without_defaults_for_the_protocol_is_a_clear_error(tmp_path: Path) -> None:
    """An SD-tuned pipeline asked for under SI stops before any data is loaded, naming the
    alias and what it stands for."""
    with pytest.raises(SystemExit, match=r"eegmtl si: 'MixNet\[best\]' stands for"):
        experiments.main("si", ["--methods", "MixNet[best]", "--subjects", "1",
                                "--results", str(tmp_path / "si.csv")])
    assert not (tmp_path / "si.csv").exists()


def test_methods_lists_registries(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("MixNet", "CSP+LDA", "pcgrad", "aligned_mtl", "blending", "rlw"):
        assert name in out


# --------------------------------------------------------------------------- data check
def _fake_data(root: Path, n_mat: int) -> None:
    (root / "bcic_iv_2b" / "epochs_mat").mkdir(parents=True)
    for i in range(n_mat):
        (root / "bcic_iv_2b" / "epochs_mat" / f"B01{i:02d}T.mat").write_bytes(b"")
    (root / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "mnist" / name).write_bytes(b"")


def test_data_check_reports_each_data_set(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _fake_data(tmp_path, n_mat=2)
    assert cli.main(["--data-dir", str(tmp_path), "data", "check"]) == 0
    assert os.environ["EEGMTL_DATA_DIR"] == str(tmp_path.resolve())
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    assert "INCOMPLETE" in lines["bcic_iv_2b"] and "2/45" in lines["bcic_iv_2b"]
    assert " ok " in lines["mnist"] and "4/4" in lines["mnist"]
    assert "MISSING" in lines["fashion_mnist"] and "MISSING" in lines["nyuv2"]
    # a named data set that is missing or incomplete gives exit status 1
    assert cli.main(["data", "check", "--dataset", "mnist"]) == 0
    assert cli.main(["data", "check", "--dataset", "bcic_iv_2b"]) == 1
    # the per-data-set variable wins over $EEGMTL_DATA_DIR
    clean_env.setenv("EEGMTL_MNIST_DIR", str(tmp_path / "elsewhere"))
    capsys.readouterr()
    assert cli.main(["data", "check", "--dataset", "mnist"]) == 1
    assert "$EEGMTL_MNIST_DIR" in capsys.readouterr().out


def test_data_check_without_configuration(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    status = cli.data_check(["bcic_iv_2b"])
    assert status == {"bcic_iv_2b": False}
    out = capsys.readouterr().out
    assert "not configured" in out and "$EEGMTL_BCI2B_DIR" in out
    with pytest.raises(SystemExit, match="unknown data set"):
        cli.data_check(["imagenet"])


# --------------------------------------------------------------------------- report
def _records(n_subjects: int = 6, gain: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(1, n_subjects + 1):
        base = 0.6 + 0.03 * s
        for fold in (1, 2):
            for pipe, acc in (("CSP+LDA", base), ("MixNet", base + gain + 0.01 * (s % 2))):
                a = acc + rng.normal(0, 0.005)
                rows.append({"dataset": "synthetic", "protocol": "subject_dependent",
                             "pipeline": pipe, "subject": s, "fold": fold, "seed": 0,
                             "accuracy": a, "f1_macro": a - 0.01, "kappa": 2 * a - 1,
                             "roc_auc": a + 0.05, "score": a + 0.05, "samples": 288,
                             "time": 1.0, "n_epochs_trained": np.nan, "config_hash": "x",
                             "config": "{}", "versions": "{}"})
    return pd.DataFrame(rows)


def test_paired_tests_match_scipy() -> None:
    df = _records()
    res = paired_tests(df, "MixNet")
    assert list(res["pipeline"]) == ["CSP+LDA"]
    row = res.iloc[0]
    tab = df.pivot_table(index="subject", columns="pipeline", values="accuracy")
    expected = wilcoxon(tab["MixNet"], tab["CSP+LDA"])
    assert row["n_subjects"] == 6 and row["wins"] == 6
    assert row["p"] == pytest.approx(expected.pvalue)
    assert row["p"] == pytest.approx(2 / 2**6)  # exact two-sided p, all 6 differences > 0
    assert row["mean_difference"] == pytest.approx((tab["MixNet"] - tab["CSP+LDA"]).mean())
    assert row["n_runs"] == 12
    # a pipeline run on fold 1 only is compared with the reference's fold-1 runs only
    fold1 = df[(df.pipeline == "CSP+LDA") & (df.fold == 1)]
    shifted = df[df.pipeline == "MixNet"].assign(
        accuracy=lambda d: d.accuracy + np.where(d.fold == 2, 0.3, 0.0))
    part = paired_tests(pd.concat([fold1, shifted]), "MixNet").iloc[0]
    ref1 = df[(df.pipeline == "MixNet") & (df.fold == 1)].accuracy.mean()
    assert part["n_runs"] == 6 and part["reference_mean"] == pytest.approx(ref1)
    # a fold-model ensemble (one row per subject at fold 0) pairs with every fold of the
    # reference's subject; two ensembles pair with each other as usual
    ens = (df[df.pipeline == "CSP+LDA"].groupby("subject", as_index=False)
           .agg(accuracy=("accuracy", "mean")).assign(pipeline="CSP+LDA+ens2", fold=0, seed=0,
                                                      protocol="subject_dependent"))
    ens_row = paired_tests(pd.concat([df, ens]), "MixNet").set_index("pipeline").loc[
        "CSP+LDA+ens2"]
    assert ens_row["n_runs"] == 6 and ens_row["n_subjects"] == 6
    assert ens_row["mean_difference"] == pytest.approx(row["mean_difference"])
    assert ens_row["p"] == pytest.approx(row["p"])
    both = pd.concat([ens, ens.assign(pipeline="MixNet+ens2")])
    assert paired_tests(both, "MixNet+ens2").iloc[0]["n_runs"] == 6
    few = paired_tests(_records(n_subjects=3), "MixNet")
    assert np.isnan(few.iloc[0]["p"]) and few.iloc[0]["n_subjects"] == 3
    with pytest.raises(ValueError, match="reference pipeline"):
        paired_tests(df, "EEGNet")


def test_report_writes_markdown_and_figures(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    records = tmp_path / "results" / "sd.csv"
    records.parent.mkdir()
    _records().to_csv(records, index=False)
    vision = tmp_path / "results" / "vision_lenet.csv"
    pd.DataFrame({
        "benchmark": "multimnist", "dataset": "multi_mnist", "model": "lenet",
        "method": ["ew", "ew", "pcgrad", "pcgrad"], "seed": [0, 1, 0, 1],
        "task": "avg", "avg_accuracy": [0.88, 0.90, 0.89, 0.91], "delta_p": [0, 0, 0.5, 0.7],
        "conflict_rate": [0.3, 0.4, 0.3, 0.5],
    }).to_csv(vision, index=False)
    (tmp_path / "results" / "other.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "report"

    assert cli.main(["--results-dir", str(tmp_path / "results"), "report", "--out",
                     str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "| subject_dependent | MixNet |" in text and "| subject_dependent | CSP+LDA |" in text
    assert "S6" in text  # per-subject table
    assert "0.0312" in text  # Wilcoxon p of MixNet vs CSP+LDA (6/6 subjects better)
    assert "| multi_mnist | pcgrad | 90.00 ± 1.41 |" in text  # vision table, mean ± SD
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "sd_subject_dependent_accuracy_per_subject.png" in pngs
    assert "sd_subject_dependent_MixNet_vs_CSP_LDA.png" in pngs
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text
    assert "other.csv" in capsys.readouterr().err  # unknown schema: skipped with a note


def test_report_errors(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        report([tmp_path / "missing.csv"], tmp_path)
    clean_env.setenv("EEGMTL_RESULTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no record CSV"):
        report(None, tmp_path / "out")


def test_report_without_reference_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    _records().to_csv(path, index=False)
    md = report([path], tmp_path / "out", reference="EEGNet", metric="kappa").read_text()
    assert "not in these records" in md
    assert (tmp_path / "out" / "r_subject_dependent_kappa_per_subject.png").is_file()
    # a reference named on the command line must be in the records: an error (with the close
    # name) before anything is written, not a report without tests over the last one
    out = tmp_path / "named"
    assert cli.main(["report", str(path), "--out", str(out), "--reference", "MixNt"]) == 2
    assert not out.exists()
    with pytest.raises(ValueError, match=r"'MixNt' is in none of the records \(did you mean "
                                         r"'MixNet'\?\); pipelines there: "):
        report([path], out, reference="MixNt", require_reference=True)
    assert cli.main(["report", str(path), "--out", str(out)]) == 0  # default MixNet: present


def test_report_combines_files_tags_alignment_and_filters_folds(tmp_path: Path) -> None:
    plain = _records()
    aligned = plain[plain.pipeline == "MixNet"].assign(
        config='{"alignment": "transductive"}', accuracy=lambda d: d.accuracy + 0.02)
    a, b = tmp_path / "plain.csv", tmp_path / "aligned.csv"
    plain.to_csv(a, index=False)
    aligned.to_csv(b, index=False)
    out = tmp_path / "out"
    assert cli.main(["report", str(a), str(b), "--out", str(out), "--combine", "--folds", "1",
                     "--reference", "MixNet+EA"]) == 0
    text = (out / "report.md").read_text()
    assert "## combined" in text and "## plain" not in text and "folds 1 only" in text
    assert "| subject_dependent | MixNet+EA |" in text
    tests = [line for line in text.splitlines() if line.startswith("| CSP+LDA |")]
    assert len(tests) == 1 and "| 6 | 6 |" in tests[0]  # 6 subjects, fold 1 only: 6 runs
    assert "| MixNet | 6 | 6 |" in text  # the unaligned MixNet is its own pipeline
    # the header names the options; the overview figure of the paired differences is linked
    assert "(`--reference MixNet+EA --metric accuracy --level fold --combine`)" in text
    assert "](combined_subject_dependent_MixNet_EA_differences.png)" in text
    assert (out / "combined_subject_dependent_MixNet_EA_differences.png").is_file()
    bracketed = tmp_path / "bracketed.csv"
    plain.assign(pipeline=plain["pipeline"].replace("MixNet", "MixNet[x]")).to_csv(bracketed,
                                                                                index=False)
    assert cli.main(["report", str(bracketed), "--out", str(out), "--reference",
                     "MixNet[x]"]) == 0
    assert "(`--reference 'MixNet[x]' --metric accuracy --level fold`)" in (
        out / "report.md").read_text()


def test_report_exclude_leaves_pipelines_out_and_rejects_unknown_names(tmp_path: Path) -> None:
    rec = _records()
    rec = pd.concat([rec, rec[rec.pipeline == "MixNet"].assign(pipeline="MixNet[val-tuned]+aug")])
    path = tmp_path / "r.csv"
    rec.to_csv(path, index=False)
    out = tmp_path / "out"
    assert cli.main(["report", str(path), "--out", str(out), "--combine",
                     "--exclude", "MixNet[val-tuned]*"]) == 0
    text = (out / "report.md").read_text()
    assert "pipelines `MixNet[val-tuned]*` excluded" in text
    assert "| subject_dependent | MixNet[val-tuned]" not in text
    assert "| subject_dependent | MixNet |" in text
    assert not list(out.glob("*val-tuned*.png"))
    with pytest.raises(ValueError, match="no pipeline of the records matches"):
        report([path], out, exclude=["MixNet[val]"])  # brackets are literal, not a glob class



def test_report_pipelines_and_seeds_keep_only_the_named_rows(tmp_path: Path) -> None:
    rec = _records()
    more = rec.assign(seed=1, accuracy=rec["accuracy"] - 0.2)  # a second seed, much worse
    extra = rec[rec.pipeline == "MixNet"].assign(pipeline="EEGNet")
    path = tmp_path / "r.csv"
    pd.concat([rec, more, extra]).to_csv(path, index=False)
    out = tmp_path / "out"
    assert cli.main(["report", str(path), "--out", str(out), "--combine",
                     "--pipelines", "MixNet", "CSP*", "--seeds", "0"]) == 0
    text = (out / "report.md").read_text()
    assert "seeds 0 only, pipelines `MixNet`, `CSP*` only" in text
    assert "| subject_dependent | EEGNet |" not in text
    mixnet = next(line for line in text.splitlines()
                  if line.startswith("| subject_dependent | MixNet |"))
    expected = rec.loc[rec.pipeline == "MixNet", "accuracy"].mean() * 100
    assert f"{expected:.2f}" in mixnet and mixnet.rstrip(" |").endswith("12")  # seed 0 only
    # both seeds: 24 rows and a lower mean
    cli.main(["report", str(path), "--out", str(out), "--combine", "--pipelines", "MixNet"])
    text = (out / "report.md").read_text()
    assert "| subject_dependent | CSP+LDA |" not in text
    assert "| 24 |" in next(line for line in text.splitlines()
                             if line.startswith("| subject_dependent | MixNet |"))
    with pytest.raises(ValueError, match="--pipelines \\['EEGNet\\[x\\]'\\]: no pipeline"):
        report([path], out, pipelines=["EEGNet[x]"])
    with pytest.raises(ValueError, match="no rows of \\['r.csv'\\] are left after the filters"):
        report([path], out, pipelines=["MixNet"], seeds=[7])

# --------------------------------------------------------------------------- dispatch
def _capture_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Replace every experiment's ``run`` by a recorder of (module, parsed args)."""
    calls: list[tuple[str, object]] = []
    for name in experiments.COMMANDS:
        module = experiments.load(name)
        monkeypatch.setattr(module, "run", lambda args, m=module.__name__: calls.append(
            (m.rsplit(".", 1)[1], args)) or 0)
    return calls


def test_experiment_commands_run_the_experiment_modules(
    tmp_path: Path, clean_env: pytest.MonkeyPatch,
) -> None:
    calls = _capture_runs(clean_env)
    res = tmp_path / "res"
    assert cli.main(["--data-dir", str(tmp_path), "--results-dir", str(res), "train",
                     "--subjects", "4", "--max-epochs", "2"]) == 0
    assert os.environ["EEGMTL_DATA_DIR"] == str(tmp_path.resolve())
    assert cli.main(["si", "--methods", "CSP+LDA", "--results", "mine.csv"]) == 0
    assert cli.main(["sd", "--quick"]) == 0
    assert cli.main(["ablations", "--param", "margin", "--protocol=si"]) == 0
    assert cli.main(["vision", "--gpu-protocol", "resnet18"]) == 0
    assert cli.main(["toy", "--n-iter", "10"]) == 0
    assert cli.main(["bench", "mixnet", "--subject", "1"]) == 0
    assert cli.main(["csp-lda", "--subjects", "2"]) == 0
    assert [m for m, _ in calls] == ["train_mixnet", "protocol", "protocol", "ablations",
                                     "vision", "toy", "bench_mixnet", "csp_lda"]
    train, si, sd, abl, vision, toy, bench, csp = (a for _, a in calls)
    assert train.subjects == [4] and train.max_epochs == 2
    assert train.command_prefix == ["eegmtl", "train"]
    assert train.argv == ["--subjects", "4", "--max-epochs", "2"]
    assert si.protocol == "subject_independent" and si.methods == ["CSP+LDA"]
    assert si.results == Path("mine.csv")  # an explicit path is kept
    assert sd.protocol == "subject_dependent" and sd.quick
    assert sd.results == res.resolve() / "sd.csv"  # --results-dir sets the default folder
    assert abl.protocol == "si" and abl.param == "margin"
    assert vision.gpu_protocol == "resnet18" and toy.n_iter == 10
    assert bench.subject == 1 and bench.command_prefix == ["eegmtl", "bench", "mixnet"]
    assert csp.subjects == [2]


def test_pipelines_scripts_parse_like_the_commands(
    tmp_path: Path, clean_env: pytest.MonkeyPatch,
) -> None:
    """``python pipelines/<script>.py ARGS`` runs the same experiment with the same options as
    ``eegmtl <command> ARGS``; only the recorded command prefix differs."""
    import importlib.util

    calls = _capture_runs(clean_env)
    scripts = Path(__file__).resolve().parents[1] / "pipelines"
    cases = {"subject_dependent": "sd", "subject_independent": "si", "ablations": "ablations",
             "vision": "vision", "toy": "toy", "train_mixnet": "train", "csp_lda": "csp-lda",
             "bench_mixnet": "bench mixnet", "bench_si": "bench si"}
    argv = {"ablations": ["--param", "warmup"], "toy": ["--n-iter", "5"]}
    for stem, command in cases.items():
        spec = importlib.util.spec_from_file_location(f"_script_{stem}", scripts / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        args = argv.get(stem, [])
        assert module.main(args) == 0
        assert cli.main([*command.split(), *args]) == 0
        (m1, a1), (m2, a2) = calls[-2:]
        assert m1 == m2
        assert a1.command_prefix == ["python", f"pipelines/{stem}.py"]
        assert a2.command_prefix == ["eegmtl", *command.split()]
        assert {k: v for k, v in vars(a1).items() if k != "command_prefix"} == \
            {k: v for k, v in vars(a2).items() if k != "command_prefix"}


def test_results_folder_outside_a_checkout(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from eegmtl import config

    assert config.results_dir() == Path(cli.__file__).resolve().parents[1] / "pipelines" / \
        "results"
    clean_env.setattr(config, "checkout_root", lambda: None)  # as an installed wheel
    assert config.results_dir() == Path("eegmtl-results")
    clean_env.setenv("EEGMTL_RESULTS_DIR", str(tmp_path))
    assert config.results_dir() == tmp_path
    assert "./eegmtl-results" in _help(["sd"], capsys)


def test_missing_experiment_module_is_explained(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setitem(experiments.COMMANDS, "nothing",
                      experiments.Command("no_such_module", "x", "x.py"))
    with pytest.raises(SystemExit, match="not part of this eegmtl version"):
        experiments.load("nothing")


def test_python_dash_m(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "eegmtl", "--help"], capture_output=True,
                         text=True, check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])})
    assert "usage: eegmtl" in out.stdout


@pytest.mark.slow
@pytest.mark.realdata
def test_sd_tiny_run_on_real_data(
    tmp_path: Path, bci2b_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CSP+LDA, subject 1, fold 1 through the whole command: the same record as the library's
    run_protocol."""
    monkeypatch.setenv("EEGMTL_BCI2B_DIR", str(bci2b_dir))
    monkeypatch.setenv("EEGMTL_RESULTS_DIR", str(tmp_path))  # restored after main() sets it
    rc = cli.main(["--results-dir", str(tmp_path), "sd", "--methods", "CSP+LDA", "--subjects",
                   "1", "--only-folds", "1", "--no-progress"])
    assert rc == 0
    from eegmtl.evaluation import run_protocol

    df = pd.read_csv(tmp_path / "sd.csv")
    assert len(df) == 1 and df.loc[0, "pipeline"] == "CSP+LDA" and df.loc[0, "subject"] == 1
    lib = run_protocol("sd", ["CSP+LDA"], [1], folds=[1], progress=False)
    assert df.loc[0, "config_hash"] == lib.loc[0, "config_hash"]
    for metric in ("accuracy", "f1_macro", "kappa", "roc_auc", "val_accuracy"):
        assert df.loc[0, metric] == pytest.approx(lib.loc[0, metric])
    assert (tmp_path / "sd_summary.md").is_file()


# --------------------------------------------------------------------------- user errors
def test_wrong_input_ends_with_one_line_error_and_status_2(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env.delenv("EEGMTL_DEBUG", raising=False)
    assert cli.main(["report", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eegmtl report: error: record file(s) not found")
    assert "Traceback" not in err and "EEGMTL_DEBUG=1" in err
    # data missing: the experiment says where it looked and what to set
    assert cli.main(["--data-dir", str(tmp_path), "si", "--methods", "CSP+LDA",
                     "--subjects", "1", "2", "--results", str(tmp_path / "si.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eegmtl si: error: data directory for 'bcic_iv_2b' not found")
    assert "EEGMTL_BCI2B_DIR" in err
    # the pipelines/ scripts name themselves
    from eegmtl.experiments import main as run

    assert run("ensemble", ["--predictions-dir", str(tmp_path / "none"), "--pipelines",
                            "MixNet"], via_script=True) == 2
    assert capsys.readouterr().err.startswith("pipelines/ensemble.py: error: predictions folder")


def test_debug_variable_keeps_the_traceback_and_ctrl_c_ends_with_130(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env.setenv("EEGMTL_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="not found"):
        cli.main(["report", str(tmp_path / "missing.csv")])
    clean_env.delenv("EEGMTL_DEBUG")

    def interrupted() -> int:
        raise KeyboardInterrupt

    def broken() -> int:
        raise ValueError("X holds NaN")

    assert experiments.guarded("eegmtl sd", interrupted) == 130
    assert capsys.readouterr().err.strip() == "eegmtl sd: interrupted"
    assert experiments.guarded("eegmtl sd", broken) == 2
    assert "eegmtl sd: error: ValueError: X holds NaN" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # not an input error: the traceback stays
        experiments.guarded("eegmtl sd", lambda: (_ for _ in ()).throw(RuntimeError("bug")))


def test_paired_tests_treat_equal_differences_as_ties_and_zero_as_zero() -> None:
    """Accuracies are multiples of 1/240: 100/240 - 92/240 and 107/240 - 99/240 are both
    8/240 but differ in the last bits of a float, and a mean of two folds can miss an equal
    mean by 1e-17. The test sees the differences as tied and the zero as zero (dropped, no
    win), as scipy's Wilcoxon on the exact differences does."""
    ref = {1: (100, 100), 2: (107, 107), 3: (123, 123), 4: (139, 139), 5: (24, 48),
           6: (200, 200), 7: (150, 150)}
    other = {1: (92, 92), 2: (99, 99), 3: (115, 115), 4: (131, 131), 5: (36, 36),
             6: (180, 180), 7: (155, 155)}
    rows = [{"protocol": "subject_dependent", "pipeline": name, "subject": s, "fold": f + 1,
             "seed": 0, "accuracy": counts[s][f] / 240}
            for name, counts in (("A", ref), ("B", other)) for s in counts for f in (0, 1)]
    df = pd.DataFrame(rows)
    raw = df.groupby(["pipeline", "subject"]).accuracy.mean().unstack(0)
    assert len(set(raw["A"] - raw["B"])) > 4  # the float differences do not tie, nor is S5 0
    row = paired_tests(df, "A").iloc[0]
    exact = np.array([8, 8, 8, 8, 0, 20, -5]) / 240
    assert row["wins"] == 5 and row["n_subjects"] == 7
    assert row["p"] == pytest.approx(wilcoxon(exact).pvalue)
    assert row["p"] != pytest.approx(wilcoxon(raw["A"] - raw["B"]).pvalue)


def test_holm_and_friedman_match_their_definitions(tmp_path: Path) -> None:
    """Holm's adjusted p-values; the Friedman test on per-subject means of the runs every
    pipeline has equals scipy's on those means; the report prints both."""
    from scipy.stats import friedmanchisquare

    from eegmtl.evaluation.report import report
    from eegmtl.evaluation.stats import friedman_test, holm

    assert holm([0.01, 0.04, 0.03, np.nan, 0.5]) == pytest.approx(
        [0.04, 0.09, 0.09, np.nan, 0.5], nan_ok=True)
    rng = np.random.default_rng(0)
    rows = [{"protocol": "subject_dependent", "pipeline": p, "subject": s, "fold": f, "seed": 0,
             "accuracy": float(rng.integers(100, 240)) / 240}
            for p in "ABC" for s in range(1, 8) for f in (1, 2)]
    rows += [{**rows[0], "pipeline": "C", "fold": 3}]  # a run the others lack: not used
    df = pd.DataFrame(rows)
    res = friedman_test(df, ["A", "B", "C"])
    two = df[df.fold < 3].groupby(["pipeline", "subject"]).accuracy.mean().unstack(0)
    assert res["p"] == pytest.approx(friedmanchisquare(two.A, two.B, two.C).pvalue)
    assert res["n_subjects"] == 7 and res["n_runs"] == 14
    with pytest.raises(ValueError, match="at least 3"):
        friedman_test(df, ["A", "B"])
    tests = paired_tests(df, "A")
    assert tests["p_holm"].tolist() == pytest.approx(holm(tests["p"]).tolist())
    path = tmp_path / "r.csv"
    df.assign(dataset="x", config_hash="h", f1_macro=df.accuracy, kappa=0.0,
              roc_auc=0.5).to_csv(path, index=False)
    text = report([path], tmp_path / "rep", reference="A", friedman=["*"]).read_text()
    assert f"p = {res['p']:.4f}" in text and "p (Holm)" in text


@pytest.mark.parametrize("flag", [["--tiny"], ["--estimate"], ["--only", "multimnist:ew:0"]])
def test_vision_refuses_preset_flags_without_a_preset(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, flag: list[str], capsys: pytest.CaptureFixture,
) -> None:
    """``--tiny``, ``--only`` and ``--estimate`` apply with ``--preset``; without one the plain
    grid would run at full size, so the command stops before training and says why."""
    import eegmtl.benchmarks.runner

    def no_grid(*args: object, **kwargs: object) -> None:
        raise AssertionError("the grid ran")

    clean_env.setattr(eegmtl.benchmarks.runner, "run_grid", no_grid)
    with pytest.raises(SystemExit, match=f"{flag[0]} applies with --preset only"):
        cli.main(["vision", "--methods", "ew", "--results", str(tmp_path / "v.csv"), *flag])


@pytest.mark.parametrize(("argv", "says"), [
    (["sd", "--methods", "CSP+LDA", "--seeds", "-1"], "--seeds: seeds are integers >= 0"),
    (["sd", "--methods", "CSP+LDA", "--max-epochs", "0"], "--max-epochs: must be a positive"),
    (["sd", "--methods", "CSP+LDA", "--n-jobs", "0"], "--n-jobs: 0 workers"),
    (["si", "--methods", "CSP+LDA", "--threads-per-worker", "0"], "must be a positive"),
    (["benchmark", "--estimate", "--alignment", "foo"], "--alignment: invalid choice"),
    (["benchmark", "--estimate", "--threads", "x"], "--threads: expected an integer"),
    (["benchmark", "--estimate", "--seeds", "0", "-2"], "seeds are integers >= 0"),
    (["ablations", "--param", "margin", "--max-epochs", "-3"], "must be a positive"),
])
def test_bad_option_values_are_refused_before_any_work(argv, says, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("command", [["benchmark", "--estimate"],
                                     ["moabb-si", "--methods", "CSP+LDA"]])
def test_subjects_2b_does_not_have_are_refused(command, tmp_path) -> None:
    with pytest.raises(SystemExit, match=r"unknown --subjects \[0, 10\]; valid subjects are "
                                         r"the integers 1-9"):
        cli.main([*command, "--results", str(tmp_path / "r.csv"), "--subjects", "0", "10", "3"])


def test_methods_listing_names_every_suffix_and_its_examples_build(capsys) -> None:
    import re

    from eegmtl.evaluation.composed import SUFFIX_KINDS
    from eegmtl.evaluation.methods import method_error

    assert cli.main(["methods"]) == 0
    composed = capsys.readouterr().out.splitlines()[-1]
    for kind in SUFFIX_KINDS.split("|"):
        assert f"+{kind}" in composed, kind
    examples = re.findall(r"\(e\.g\. ([^)]*)\)$", composed)[0].split(", ")
    assert len(examples) == 2 and all(method_error(n) is None for n in examples)
