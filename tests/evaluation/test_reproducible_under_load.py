"""Same config on the same machine gives the same records, also when the machine is busy.

Every choice that changes the arithmetic is fixed by the config (gradient backend by a rule on
the model's layers, never by timing; one torch thread per fit), so a CPU hog beside the run
must not change a single number of the records (only the time columns). Checked for both
training paths: MixNet (the project's trainer) and a braindecode network trained through
skorch with early stopping on the validation fold (``EEGNet[val]``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from eegmtl._io import machine_info


def _run(method, data, tmp_path, name):
    from eegmtl.evaluation.runner import run_protocol

    return run_protocol(
        "sd", [method], subjects=[4], data=data, folds=(1,), seeds=(0,),
        method_params={method: {"max_epochs": 2}}, results_path=tmp_path / f"{name}.csv",
        resume=False, progress=False, torch_threads=1, checkpoint_dir=tmp_path / f"ck_{name}",
    )


def _comparable(records: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in records.columns if "time" not in c.lower()]
    return records[keep].sort_values(["pipeline", "subject", "fold", "seed"]).reset_index(
        drop=True)


@pytest.mark.parametrize("method", ["MixNet", "EEGNet[val]"])
def test_records_identical_under_cpu_load(bci2b_dir, tmp_path, method):
    from eegmtl.eeg.datasets import load_bci2b

    data = load_bci2b(source="export", subjects=[4], units="uV")
    quiet = _run(method, data, tmp_path, "quiet")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = _run(method, data, tmp_path, "loaded")
    finally:
        hog.kill()
        hog.wait()
    assert len(quiet) == 1 and quiet["n_epochs_trained"].iloc[0] == 2
    assert json.loads(quiet["machine"].iloc[0]) == machine_info()  # where the claim holds
    pd.testing.assert_frame_equal(_comparable(quiet), _comparable(loaded), check_exact=True)
    written = [pd.read_csv(tmp_path / f"{n}.csv") for n in ("quiet", "loaded")]
    pd.testing.assert_frame_equal(_comparable(written[0]), _comparable(written[1]),
                                  check_exact=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
