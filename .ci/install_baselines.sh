#!/usr/bin/env bash
# Install eegmtl's optional `baselines` extra (braindecode, pyriemann) and make braindecode
# importable on a CPU-only torch.
#
# Why: braindecode >= 1.0 requires torchaudio; the only Linux torchaudio wheel on the index
# (2.11.0) is built against CUDA 13, so with torch==2.13.0+cpu `import torchaudio` (and thus
# `import braindecode`) fails with
#   OSError: Could not load this library: .../torchaudio/lib/_torchaudio.abi3.so
# torchaudio imports as pure Python when its lib/*.so files are absent, which is all braindecode
# needs. This script removes those libraries ONLY when they cannot be loaded (a CUDA torch with a
# matching torchaudio is left untouched), then checks that an EEGNet builds and runs.
#
# Usage (from the repository root):  bash .ci/install_baselines.sh [python]
#   python: interpreter of the target environment (default: $PYTHON, else .venv/bin/python,
#           else python3). Set EEGMTL_SKIP_PIP=1 to skip the pip step (fix + check only).
set -euo pipefail

PY="${1:-${PYTHON:-}}"
if [[ -z "${PY}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
echo "[install_baselines] python: ${PY}"

if [[ "${EEGMTL_SKIP_PIP:-0}" != "1" ]]; then
  # torch must already be installed (pip install torch==2.13.0 first, see README); pip keeps it.
  "${PY}" -m pip install -e ".[baselines]"
fi

"${PY}" - <<'PYEOF'
import importlib.util
import pathlib
import sys

spec = importlib.util.find_spec("torchaudio")
if spec is None:
    print("[install_baselines] torchaudio not installed; nothing to fix")
    sys.exit(0)
lib = pathlib.Path(next(iter(spec.submodule_search_locations))) / "lib"
try:
    import torchaudio  # noqa: F401
    print(f"[install_baselines] torchaudio {torchaudio.__version__} imports; nothing to fix")
except OSError as err:
    import torch

    if torch.version.cuda is not None:
        sys.exit(f"[install_baselines] torchaudio fails on a CUDA torch ({err}); install the "
                 "torchaudio build that matches your torch instead")
    removed = sorted(lib.glob("*.so"))
    for so in removed:
        so.unlink()
    print(f"[install_baselines] CPU torch: removed {len(removed)} CUDA-only torchaudio "
          f"libraries from {lib}: {[p.name for p in removed]}")
PYEOF

"${PY}" - <<'PYEOF'
import torch

torch.set_num_threads(1)
from eegmtl._compat import import_braindecode

bd = import_braindecode()
from braindecode.models import EEGNet

net = EEGNet(n_chans=3, n_outputs=2, n_times=1000, sfreq=250.0)
out = net(torch.randn(2, 3, 1000))
assert out.shape == (2, 2), out.shape
print(f"[install_baselines] braindecode {bd.__version__}: EEGNet forward OK {tuple(out.shape)}")
PYEOF
