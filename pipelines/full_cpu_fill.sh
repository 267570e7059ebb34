#!/usr/bin/env bash
# The part of `eegmtl benchmark --preset full` that a GPU speeds up least, fitted on a CPU, so
# that GPU time goes to the networks that gain most from it. Speed-up of one GPU worker (16
# sharing an H200) over one CPU thread, per pipeline (`eegmtl benchmark --preset full
# --estimate --gpu-speedup 38` prints them): MIN2Net 1.2x, the MixNet variants 1.5-3x,
# EEG-TCNet 2.7x, ATCNet 2.9x, EEGNet[val] 3.5x, against 9-128x for EEGNet, ShallowFBCSPNet,
# FBCNet, CTNet, IFNet, TCFormer and EEG-Conformer, which are left to the GPU lane `full` of
# .ci/gpu. Same records, config hashes and record files as a GPU run (device aside).
# Resumable (finished fits are skipped) and time-boxed: no fit starts that would not end within
# LIMIT seconds (default 3 h); the summaries are written at the end, also on Ctrl-C / SIGTERM.
# Run from the repository root:  nohup nice -n 5 bash pipelines/full_cpu_fill.sh [LIMIT] &
# JOBS (default 2) one-thread workers; ARGS are added (e.g. ARGS="--protocols si" or
# ARGS="--estimate" to print what is left).
set -u
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MNE_LOGGING_LEVEL=WARNING
export EEGMTL_DATA_DIR=${EEGMTL_DATA_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data} MOABB_DOWNLOAD_PROVIDER=upstream
METHODS=(MIN2Net MixNet MixNet+ew MixNet+rlw MixNet+aligned_mtl MixNet+pcgrad MixNet+cagrad
  MixNet+f-pcgrad 'MixNet[val-acc]' 'MixNet[val-tuned]' EEGTCNet ATCNet 'EEGNet[val]')
# `--list`: the pipelines, one per line (.ci/gpu stage leaves them out of the GPU lane `full`)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${METHODS[@]}"; exit 0; fi
PY=${PY:-.venv/bin/python}
LIMIT=${1:-10800}
ARGS=${ARGS:-}
# shellcheck disable=SC2086  # ARGS is a word list
$PY -m eegmtl benchmark --preset full --device cpu --n-jobs "${JOBS:-2}" --threads 1 \
  --no-progress --time-limit "$LIMIT" --methods "${METHODS[@]}" $ARGS
