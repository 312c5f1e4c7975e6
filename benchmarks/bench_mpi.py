"""Data-parallel scaling of the CNN-F train step with MPI (nnumpy.distributed).

    python benchmarks/bench_mpi.py [--ranks 1 2] [--steps 20] [--repeats 3] [--rounds 2]

The driver launches ``mpiexec -n K python bench_mpi.py --worker`` for each K,
alternating K over ``--rounds`` rounds (the machine is shared and noisy: only
numbers from the same run compare), every rank with 1 BLAS thread. Each worker
trains CNN-F (``../shared/BENCHMARKS.md``: Adam 1e-3, float32, global batch
128 split across the ranks, synchronised BatchNorm) on real Fashion-MNIST
batches (random ones if the files are missing): 5 warm-up steps, then the
median of ``--repeats`` runs of ``--steps`` steps. It reports global samples/s
and the share of step time rank 0 spent inside Allreduce (gradients, and
BatchNorm statistics), waiting for the slower rank included.

Scaling efficiency = samples/s with K ranks / (K x samples/s with 1 rank).
Two reference rows tell the parts apart: 1 rank at the per-rank batch
(smaller batches are less efficient per sample), and K independent 1-rank
processes side by side without MPI (what the machine's cores, caches and
memory bandwidth allow; on a shared machine, also what the neighbours leave).
"""

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FMNIST = Path(os.environ.get("NNUMPY_DATA", "/usr/share/datasets/fashion-mnist"))
MEAN, STD = 0.2860, 0.3530


def fashion_mnist_train(n):
    """The first ``n`` training images (N, 1, 28, 28) normalised, and labels; random data if absent."""
    images, labels = FMNIST / "train-images-idx3-ubyte.gz", FMNIST / "train-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        with gzip.open(images) as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28)
        with gzip.open(labels) as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64)
        return ((x.astype(np.float32) / 255 - MEAN) / STD), y, "Fashion-MNIST"
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n), "random"


def cnn_f(rng):
    import nnumpy as nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, rng=rng),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, rng=rng),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128, rng=rng),
        nn.ReLU(),
        nn.Dropout(0.25, rng=rng),
        nn.Linear(128, 10, rng=rng),
        nn.LogSoftMax(),
    )


class _Timed:
    """Wrap a callable and add its wall time to ``self.seconds``."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def worker(args):
    from threadpoolctl import threadpool_limits

    import nnumpy as nn
    import nnumpy.distributed as dist
    from nnumpy.distributed import collectives

    dist.init()
    threadpool_limits(1)
    k, r = dist.size(), dist.rank()
    batch = args.batch_size
    n_batches = args.steps + 5
    X, y, source = fashion_mnist_train(batch * n_batches)
    model = cnn_f(np.random.default_rng(0))
    model.skip_input_grad = True
    dist.broadcast_parameters(model)
    dist.sync_batchnorm(model, enabled=not args.per_rank_bn)
    crit = nn.ClassNLLCriterion()
    opt = dist.DistributedOptimizer(nn.Adam(model, lr=1e-3))

    # time every Allreduce: the gradient buckets and the BatchNorm statistics
    grad_timer = _Timed(collectives.allreduce_gradients)
    collectives.allreduce_gradients = grad_timer  # DistributedOptimizer (in collectives) looks it up at each step
    bn_timer = None
    for _, m in model.named_modules():
        if getattr(m, "stats_sync", None) is not None:
            bn_timer = bn_timer or _Timed(m.stats_sync)
            m.stats_sync = bn_timer

    lo, hi = r * batch // k, (r + 1) * batch // k

    def run(steps):
        for i in range(steps):
            xb, yb = X[i * batch + lo : i * batch + hi], y[i * batch + lo : i * batch + hi]
            opt.zero_grad()
            out = model.forward(xb)
            crit.forward(out, yb)
            model.backward(xb, crit.backward(out, yb))
            opt.step()

    run(5)
    results = []
    for _ in range(args.repeats):
        grad_timer.seconds = 0.0
        if bn_timer:
            bn_timer.seconds = 0.0
        dist.barrier()
        start = time.perf_counter()
        run(args.steps)
        dist.barrier()
        elapsed = time.perf_counter() - start
        comm_s = grad_timer.seconds + (bn_timer.seconds if bn_timer else 0.0)
        results.append(
            {
                "samples_per_s": args.steps * batch / elapsed,
                "step_ms": 1e3 * elapsed / args.steps,
                "allreduce_share": comm_s / elapsed,
                "grad_allreduce_ms": 1e3 * grad_timer.seconds / args.steps,
                "bn_allreduce_ms": 1e3 * (bn_timer.seconds if bn_timer else 0.0) / args.steps,
            }
        )
    # the gradient Allreduce alone, ranks in step (no waiting for a slower rank)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(20):
        grad_timer.fn(model)
    pure_ms = 1e3 * (time.perf_counter() - start) / 20
    n_grad = sum(g.size for _, g in model.parameter_pairs())
    if dist.is_main():
        for d in results:
            d["pure_allreduce_ms"], d["grad_mb"] = pure_ms, 4 * n_grad / 2**20
        best = sorted(results, key=lambda d: d["samples_per_s"])[len(results) // 2]  # the median run
        print("RESULT " + json.dumps({"ranks": k, "data": source, **best}), flush=True)


def driver(args):
    from nnumpy.distributed import find_mpiexec

    mpiexec = find_mpiexec()
    if mpiexec is None:
        sys.exit("bench_mpi: mpiexec not found; pip install 'nnumpy[mpi]'")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # (ranks, global batch, sync BN); then the most ranks with per-rank BN (fewer collectives), and
    # 1 rank at the per-rank batch, to tell the cost of smaller batches from the cost of communication
    k_most = max(args.ranks)
    configs = [(k, args.batch_size, True) for k in args.ranks]
    configs += [(k_most, args.batch_size, False), (1, args.batch_size // k_most, True)]
    runs = {c: [] for c in configs}
    ceiling = []  # K independent 1-rank processes at the per-rank batch, side by side: what the machine allows
    for _ in range(args.rounds):
        for k, batch, sync in configs:
            runs[k, batch, sync].append(_launch([mpiexec, "-n", str(k)], args, batch, sync, env, copies=1)[0])
        if k_most > 1:
            copies = _launch([mpiexec, "-n", "1"], args, args.batch_size // k_most, True, env, copies=k_most)
            ceiling.append(sum(d["samples_per_s"] for d in copies))
    import nnumpy

    med = {
        c: {key: float(np.median([d[key] for d in runs[c]])) for key in runs[c][0] if key not in ("ranks", "data")}
        for c in configs
    }
    print("CNN-F train step, float32, Adam, 1 BLAS thread per rank")
    print(
        f"nnumpy {nnumpy.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, data: {runs[configs[0]][0]['data']}, "
        f"{args.rounds} rounds x median of {args.repeats} x {args.steps} steps, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    most = configs[len(args.ranks) - 1]
    print(
        f"gradients: {med[most]['grad_mb']:.2f} MB float32 in one bucket; one Allreduce of them with the ranks "
        f"in step: {med[most]['pure_allreduce_ms']:.2f} ms ({most[0]} ranks)"
    )
    print()
    print(
        "| ranks | BatchNorm | global batch (per rank) | samples/s | step (ms) | speed-up | efficiency "
        "| Allreduce share | grads / BN stats Allreduce (ms/step) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base = med[configs[0]]["samples_per_s"] / configs[0][0]
    for k, batch, sync in configs:
        m = med[k, batch, sync]
        speedup = m["samples_per_s"] / base
        bn = "per rank" if not sync else "synchronised" if k > 1 else "-"
        print(
            f"| {k} | {bn} | {batch} ({batch // k}) | {m['samples_per_s']:.0f} | {m['step_ms']:.0f} | {speedup:.2f}x | "
            f"{speedup / k:.0%} | {m['allreduce_share']:.1%} | {m['grad_allreduce_ms']:.1f} / "
            f"{m['bn_allreduce_ms']:.1f} |"
        )
    if ceiling:
        value = float(np.median(ceiling))
        speedup = value / base
        print(
            f"| {k_most} x 1, independent, no MPI | - | {args.batch_size} ({args.batch_size // k_most}) "
            f"| {value:.0f} | | {speedup:.2f}x | {speedup / k_most:.0%} | | |"
        )


def _launch(launcher, args, batch, sync_bn, env, copies):
    """Run ``copies`` workers at once (each ``launcher + worker``); their RESULT dicts."""
    cmd = [*launcher, sys.executable, __file__, "--worker"]
    cmd += ["--steps", str(args.steps), "--repeats", str(args.repeats), "--batch-size", str(batch)]
    cmd += [] if sync_bn else ["--per-rank-bn"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)]
    procs += [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(copies - 1)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode:
            sys.exit(f"bench_mpi: {' '.join(cmd)} failed:\n{out}{err}")
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
        results.append(json.loads(line[len("RESULT ") :]))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--per-rank-bn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    worker(args) if args.worker else driver(args)


if __name__ == "__main__":
    main()
