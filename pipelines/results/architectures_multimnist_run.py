"""MultiMNIST smoke run of the LeNet-expert architectures (EW, 1 epoch, 10k pairs, seed 0).

Models with records in the results file are skipped (rerun to add the missing ones).
"""

import time
from pathlib import Path

import pandas as pd

from eegmtl.benchmarks.multimnist import load_multimnist
from eegmtl.benchmarks.runner import run_benchmark

RESULTS = "pipelines/results/architectures_multimnist.csv"

t0 = time.perf_counter()
splits = load_multimnist("multi_mnist")
print(f"data loaded {time.perf_counter() - t0:.0f}s", flush=True)
done = set(pd.read_csv(RESULTS)["model"]) if Path(RESULTS).exists() else set()
for model in ("lenet", "mmoe", "cgc", "ple", "cross_stitch"):
    if model in done:
        continue
    t = time.perf_counter()
    rec = run_benchmark(
        "multimnist", model=model, method="ew", seed=0, epochs=1, n_train=10000,
        splits=splits, threads=1, results_path=RESULTS,
    )
    avg = rec[rec.task == "avg"].iloc[0]
    wall = time.perf_counter() - t
    print(f"{model}: avg acc {avg.avg_accuracy:.4f} fit {avg.time:.1f}s wall {wall:.1f}s")
print(f"total wall {time.perf_counter() - t0:.0f}s", flush=True)
