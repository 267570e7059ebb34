import time
from eegmtl.benchmarks.runner import run_benchmark
from eegmtl.benchmarks.multimnist import load_multimnist

t0 = time.perf_counter()
splits = load_multimnist("multi_mnist")
print(f"data loaded {time.perf_counter() - t0:.0f}s", flush=True)
for model in ("lenet", "mmoe", "cgc", "cross_stitch"):
    t = time.perf_counter()
    rec = run_benchmark(
        "multimnist",
        model=model,
        method="ew",
        seed=0,
        epochs=1,
        n_train=10000,
        splits=splits,
        threads=1,
        results_path="pipelines/results/architectures_multimnist.csv",
    )
    avg = rec[rec.task == "avg"].iloc[0]
    print(
        f"{model}: avg acc {avg.avg_accuracy:.4f} fit {avg.time:.1f}s wall {time.perf_counter() - t:.1f}s",
        flush=True,
    )
print(f"total wall {time.perf_counter() - t0:.0f}s", flush=True)
