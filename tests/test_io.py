"""eegmtl._io: atomic writes, lock, hashes of committed records, versions, record store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eegmtl._io import (
    RecordStore,
    atomic_open,
    atomic_write,
    config_hash,
    file_lock,
    library_versions,
    machine_info,
    read_json,
    stable_json,
    write_json,
)

RESULTS = Path(__file__).resolve().parents[1] / "pipelines" / "results"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "a" / "f.txt"
    atomic_write(p, "one\n")
    atomic_write(p, b"two\n")
    assert p.read_bytes() == b"two\n"
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic_write(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p) as fh:
        fh.write("new, half written")
        raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_temp_of_killed_writer_is_removed(tmp_path: Path) -> None:
    p = tmp_path / "f.json"
    # a writer that dies (SIGKILL) inside the block leaves its temp behind
    code = ("import os, signal\nfrom eegmtl._io import atomic_open\n"
            f"with atomic_open({str(p)!r}) as fh:\n"
            "    fh.write('{\"half\": ')\n    fh.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    stale = [x for x in tmp_path.iterdir() if x.name.endswith(".tmp")]
    assert len(stale) == 1 and not p.exists()
    write_json(p, {"a": 1})
    assert read_json(p) == {"a": 1}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.json"]


def test_read_json_names_truncated_file(tmp_path: Path) -> None:
    p = tmp_path / "cfg.json"
    p.write_text('{"a": [1, 2')
    with pytest.raises(ValueError, match="cfg.json"):
        read_json(p)
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_json(p)


def test_file_lock_is_exclusive(tmp_path: Path) -> None:
    import fcntl

    target = tmp_path / "records.csv"
    with file_lock(target) as lock:
        with open(lock) as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_stable_json_and_hash_ignore_key_order_and_tuple_type() -> None:
    a = {"b": (1, 2), "a": {"y": 1.5, "x": None}}
    b = {"a": {"x": None, "y": 1.5}, "b": [1, 2]}
    assert stable_json(a) == stable_json(b) == '{"a":{"x":null,"y":1.5},"b":[1,2]}'
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**b, "b": [1, 3]})
    with pytest.raises(TypeError, match="JSON-like"):
        config_hash({"model": object()})
    with pytest.raises(ValueError, match="style"):
        config_hash(a, style="md5")


@pytest.mark.parametrize(("name", "style"), [
    ("sd.csv", "canonical"), ("si.csv", "canonical"), ("ablations_sd.csv", "canonical"),
    ("csp_lda_sd.csv", "canonical"), ("vision_lenet.csv", "loose"),
])
def test_hash_reproduces_committed_records(name: str, style: str) -> None:
    path = RESULTS / name
    if not path.is_file():
        pytest.skip(f"{path} not in this checkout")
    df = pd.read_csv(path, dtype={"config_hash": str})
    for cfg, h in zip(df["config"], df["config_hash"]):
        assert config_hash(json.loads(cfg), len(h), style=style) == h


def test_library_versions() -> None:
    v = library_versions(["pandas", "python", "surely-not-a-package-xyz"])
    assert v["pandas"] == pd.__version__
    assert v["python"].count(".") == 2
    assert v["surely-not-a-package-xyz"] is None
    assert "numpy" in library_versions()


def test_machine_info_names_the_hardware() -> None:
    import os

    import torch

    info = machine_info()
    assert info["cpu_count"] == os.cpu_count() and info["arch"]
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["gpu"] == (torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    json.dumps(info)  # stored as a JSON column


def _store(path: Path) -> RecordStore:
    return RecordStore(path, key=("name", "seed"), columns=("name", "seed", "value"),
                       sort_by=("name", "seed"), dtypes={"name": str}, numeric=("value",),
                       key_types=(str, int))


def test_record_store_merge_replaces_by_key_and_resumes(tmp_path: Path) -> None:
    store = _store(tmp_path / "r.csv")
    assert store.load().empty and store.done_keys() == set()
    store.merge(pd.DataFrame({"value": [1.0, 2.0], "seed": [0, 1], "name": ["b", "a"]}))
    out = store.merge(pd.DataFrame({"name": ["b", "c"], "seed": [0, 0], "value": [9.0, 3.0]}))
    assert list(out.columns) == ["name", "seed", "value"]
    assert out.values.tolist() == [["a", 1, 2.0], ["b", 0, 9.0], ["c", 0, 3.0]]
    assert store.done_keys() == {("a", 1), ("b", 0), ("c", 0)}
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "name,seed,value"


def test_record_store_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    code = ("import sys, pandas as pd\nfrom eegmtl._io import RecordStore\n"
            f"s = RecordStore({str(path)!r}, key=('name', 'seed'), key_types=(str, int))\n"
            "for i in range(10):\n"
            "    s.merge(pd.DataFrame({'name': [sys.argv[1]], 'seed': [i], 'value': [1.0]}))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code, n], env=env) for n in "xyz"]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(_store(path).done_keys()) == 30


def test_record_store_names_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"name,seed,value\n\"a,0,1\nb,1")
    with pytest.raises(ValueError, match="bad.csv"):
        _store(path).load()
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="bad.csv"):
        _store(path).load()
