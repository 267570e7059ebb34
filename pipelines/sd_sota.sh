#!/usr/bin/env bash
# SD fold 1 of the modern deep baselines and the MixNet-family candidates, MixNet-family candidates first, then baselines cheapest first, into
# pipelines/results/sd_sota.csv (resumable: rerun this script; finished fits are skipped, a
# braindecode fit in progress continues from its epoch checkpoint in ~/.cache/eegmtl/eeg_fits).
# Run from the repository root:  OMP_NUM_THREADS=1 nohup nice -n 5 bash pipelines/sd_sota.sh &
# ARGS are added to every call; to print what is left and its CPU time without fitting:
#   FOLDS="1 2 3 4 5" ARGS="--estimate --estimate-from pipelines/results/sd.csv" bash pipelines/sd_sota.sh
set -u
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MNE_LOGGING_LEVEL=WARNING
export EEGMTL_DATA_DIR=${EEGMTL_DATA_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data} MOABB_DOWNLOAD_PROVIDER=upstream
PY=${PY:-.venv/bin/python}
FOLDS=${FOLDS:-1}
ARGS=${ARGS:-}
# shellcheck disable=SC2086  # FOLDS and ARGS are word lists
run() { $PY pipelines/subject_dependent.py --methods "$@" --subjects 1..9 --only-folds $FOLDS \
          --results pipelines/results/sd_sota.csv --no-progress $ARGS; }
# MixNet-family candidates (chosen on validation accuracy of fold 1; see eegmtl.evaluation.methods)
run 'MixNet[val-tuned]+aug' 'MixNet[val-tuned]+mtl[aligned_mtl]' \
    'MixNet[val-tuned]+mtl[aligned_mtl]+aug' 'MixNet+aligned_mtl+aug' \
    'MixNet[val-tuned]+aug[sr,ft]' 'EEGNet+mtl[blending]' 'EEGNet+mtl[aligned_mtl]'
run 'EEGNet[val]' 'EEGNet+aug'
run EEGTCNet
run ATCNet
# all 5 folds of these five are in sd_sota_gpu.csv (one H200, `bash .ci/gpu sd-start`, 442 s);
# on one CPU thread they cost ~85 h, so they run here only with CPU_BASELINES=1
if [ "${CPU_BASELINES:-0}" = 1 ]; then
  run FBCNet
  run CTNet
  run IFNet
  run TCFormer
  run EEGConformer
fi
