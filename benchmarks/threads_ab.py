"""In-process A/B of nnumpy's thread settings on the MLP-F / CNN-F train step (benchmarks/README.md, run K).

    python benchmarks/threads_ab.py cnn products            # products on nnumpy's threads vs on BLAS's
    python benchmarks/threads_ab.py cnn spin --spins 18,28  # OpenBLAS's idle spin (tune_process), 2^18 vs 2^28
    python benchmarks/threads_ab.py mlp spin --spins 22,28

The settings alternate repeat by repeat in one process (each repeat: a few
warm-up steps, a 0.3 s pause, then the timed steps), so a shared machine's
load hits both alike; best and median time per step over the repeats.
numpy is imported first and nothing is tuned but the setting compared.
"""

import argparse
import statistics
import time

import numpy as np  # noqa: F401  (first, as user scripts do)
from bench import BATCH, batches, load_data, nnumpy_train_step

import nnumpy as nn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["mlp", "cnn"])
    parser.add_argument("compare", choices=["products", "spin"])
    parser.add_argument("--spins", default="18,28", help="two OPENBLAS_THREAD_TIMEOUT exponents (compare=spin)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    nn.set_num_threads(args.threads)
    data = load_data()
    items = batches(data[0], data[1], BATCH, args.steps + 3)
    _, step = nnumpy_train_step(args.model)
    if args.compare == "products":  # split_window_calls=0: the products always on BLAS's own threads
        settings = {"products on nnumpy's threads (default)": 64, "products on BLAS's threads": 0}

        def use(window):
            nn.kernels.set_tuning(split_window_calls=window)
    else:
        settings = {f"spin 2^{s}": int(s) for s in args.spins.split(",")}

        def use(spin):
            nn.tune_process(blas_spin=spin)

    times = {name: [] for name in settings}
    for _ in range(args.repeats):
        for name, value in settings.items():
            use(value)
            for x, y in items[:3]:
                step(x, y)
            time.sleep(0.3)
            t0 = time.perf_counter()
            for x, y in items[3:]:
                step(x, y)
            times[name].append((time.perf_counter() - t0) / args.steps)
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"{args.model} {name}: best {best * 1e3:.2f} ms ({BATCH / best:,.0f} samples/s), "
              f"median {median * 1e3:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
