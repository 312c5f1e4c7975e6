"""nnumpy vs PyTorch-CPU on MLP-F and CNN-F (../shared/BENCHMARKS.md figures 1, 2, 3, 5).

    python benchmarks/bench.py --figure all          # the full protocol
    python benchmarks/bench.py --figure 1 --quick    # fewer steps, for development
    python benchmarks/bench.py --profile cnn         # cProfile of nnumpy's CNN-F train step
    python benchmarks/bench.py --layers cnn --threads 1  # per-layer CPU times of that step
    python benchmarks/bench.py --phases mlp          # zero/forward/backward/optimizer times, both libraries

Timings alternate nnumpy and PyTorch inside one process (the machine is shared
and noisy: only same-run ratios count); both run with the same thread count
(``nnumpy.set_num_threads`` for nnumpy's kernels and NumPy's BLAS,
``torch.set_num_threads``), with a pause before each timed repeat so that
the other library's idle threads have stopped spinning. Peak memory runs
each library in its own child process (peak RSS minus RSS after imports).
Data: Fashion-MNIST from /usr/share/datasets/fashion-mnist when present
(``apt-get install dataset-fashion-mnist``), else random data of the same shape.
"""

import argparse
import json
import os
import time

import numpy as np  # before nnumpy, as user scripts do
from common import (
    batches,
    bench_memory,
    inference_throughput,
    load_fashion_mnist,
    machine_info,
    marker,
    print_phase_times,
    profile_steps,
    row,
    rss_kib,
    train_throughput,
)
from threadpoolctl import threadpool_info

import nnumpy as nn

BATCH, INFER_BATCH = 128, 1000


# ----------------------------------------------------------------------- data
def load_data():
    """``(x_train, y_train, x_test, y_test, source)``: images (N, 1, 28, 28) float32 normalised."""
    return load_fashion_mnist((1, 28, 28))


# ----------------------------------------------------------------------- models
def build_nnumpy(kind):
    nn.manual_seed(0)
    if kind == "mlp":
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10),
            nn.LogSoftMax(),
        )  # fmt: skip
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25, rng=0), nn.Linear(128, 10),
            nn.LogSoftMax(),
        )  # fmt: skip
    model.skip_input_grad = True  # PyTorch does not compute the input gradient either
    return model


def build_torch(kind, source=None):
    """The same architecture in PyTorch, with ``source``'s (an nnumpy model) weights."""
    import torch

    T = torch.nn
    torch.manual_seed(0)
    if kind == "mlp":
        model = T.Sequential(
            T.Flatten(), T.Linear(784, 256), T.ReLU(), T.Linear(256, 256), T.ReLU(), T.Linear(256, 10),
            T.LogSoftmax(dim=1),
        )  # fmt: skip
    else:
        model = T.Sequential(
            T.Conv2d(1, 32, 3, padding=1), T.BatchNorm2d(32), T.ReLU(), T.MaxPool2d(2),
            T.Conv2d(32, 64, 3, padding=1), T.BatchNorm2d(64), T.ReLU(), T.MaxPool2d(2),
            T.Flatten(), T.Linear(3136, 128), T.ReLU(), T.Dropout(0.25), T.Linear(128, 10),
            T.LogSoftmax(dim=1),
        )  # fmt: skip
    if source is not None:
        with torch.no_grad():
            for ours, theirs in zip(source, model, strict=True):
                for name, tname in (("W", "weight"), ("b", "bias"), ("weight", "weight"), ("bias", "bias")):
                    if getattr(ours, name, None) is not None and hasattr(theirs, tname):
                        getattr(theirs, tname).copy_(torch.from_numpy(getattr(ours, name)))
    return model


def forward_flops(kind):
    """2 x multiply-accumulates of one sample's forward pass (conv and linear layers)."""
    if kind == "mlp":
        macs = 784 * 256 + 256 * 256 + 256 * 10
    else:
        macs = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10
    return 2 * macs


# ----------------------------------------------------------------------- steps
def nnumpy_train_step(kind):
    model = build_nnumpy(kind)
    criterion = nn.ClassNLLCriterion()
    opt = nn.Adam(model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step(x, y, marks=None):
        mark = marker(marks)
        opt.zero_grad()
        mark()
        out = model.forward(x)
        mark()
        criterion.forward(out, y)
        model.backward(x, criterion.backward(out, y))
        mark()
        opt.step()
        mark()

    return model, step


def torch_train_step(kind, source):
    import torch

    model = build_torch(kind, source)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.NLLLoss()

    def step(x, y, marks=None):
        mark = marker(marks)
        opt.zero_grad()
        mark()
        out = model(x)
        mark()
        loss_fn(out, y).backward()
        mark()
        opt.step()
        mark()

    return model, step


def bench_train(kind, data, steps, repeats, warmup):
    np_model, np_step = nnumpy_train_step(kind)
    _, t_step = torch_train_step(kind, np_model)
    return train_throughput(np_step, t_step, batches(data[0], data[1], BATCH, steps + warmup), warmup, repeats)


def bench_inference(kind, data, repeats, warmup_batches=2):
    np_model = build_nnumpy(kind).evaluate()
    t_model = build_torch(kind, np_model).eval()
    return inference_throughput(np_model, t_model, data[2], INFER_BATCH, repeats, kind, warmup_batches)


def sgemm_gflops(repeats=5):
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    b = np.random.default_rng(1).random((2048, 2048), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 2048**3 / min(times) / 1e9


# ----------------------------------------------------------------------- memory
def memory_child(library, kind, steps, threads):
    """Run in a child process: peak RSS minus RSS after imports and data, in MiB."""
    data = load_data()
    x, y = data[0][:BATCH].copy(), data[1][:BATCH].copy()
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    with nn.num_threads(threads):
        baseline = rss_kib("VmRSS")
        if library == "torch":
            _, step = torch_train_step(kind, build_nnumpy(kind))
        else:
            _, step = nnumpy_train_step(kind)
        for _ in range(steps):
            step(x, y)
    print(json.dumps({"peak_mib": (rss_kib("VmHWM") - baseline) / 1024}))


# ----------------------------------------------------------------------- report
def profile_nnumpy(kind, data, steps):
    _, step = nnumpy_train_step(kind)
    profile_steps(step, batches(data[0], data[1], BATCH, steps), rows=25)


def phase_times(kind, data, steps, repeats):
    """Microseconds per step in each phase of the train step, both libraries alternating."""
    np_model, np_step = nnumpy_train_step(kind)
    _, t_step = torch_train_step(kind, np_model)
    print_phase_times(kind, np_step, t_step, batches(data[0], data[1], BATCH, steps + 5), repeats)


def layer_times(kind, data, repeats=7):
    """Per-layer forward / input-gradient / parameter-gradient times of one
    nnumpy train step (minimum over repeats). With one BLAS thread this is
    process CPU time, which the other processes of a shared machine barely
    disturb; with more threads it is wall time."""
    blas_threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    clock = time.process_time if blas_threads == 1 else time.perf_counter
    model, step = nnumpy_train_step(kind)
    x, y = data[0][:BATCH], data[1][:BATCH]
    for _ in range(3):
        step(x, y)
    criterion = nn.ClassNLLCriterion()
    best = np.full((len(model), 3), np.inf)
    for _ in range(repeats):
        inputs, h = [], x
        for i, m in enumerate(model):
            inputs.append(h)
            t0 = clock()
            h = m.forward(h)
            best[i, 0] = min(best[i, 0], clock() - t0)
        g = criterion.backward(h, y)
        for i in range(len(model) - 1, -1, -1):
            m = model[i]
            t0 = clock()
            g_in = m.updateGradInput(inputs[i], g) if i > 0 else None  # skip_input_grad skips layer 0
            t1 = clock()
            m.accGradParameters(inputs[i], g)
            best[i, 1:] = np.minimum(best[i, 1:], (t1 - t0, clock() - t1))
            g = g_in
    print("| layer | forward ms | gradInput ms | gradParams ms |\n|---|---|---|---|")
    for m, (f, gi, gp) in zip(model, best * 1e3, strict=True):
        print(f"| {m!r} | {f:.2f} | {gi:.2f} | {gp:.2f} |")
    print(f"| total | {best[:, 0].sum() * 1e3:.1f} | {best[:, 1].sum() * 1e3:.1f} | {best[:, 2].sum() * 1e3:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", default="all", help="1, 2, 3, 5 or all (comma-separated)")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 10 steps (development)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--profile", choices=["mlp", "cnn"], help="cProfile of nnumpy's train step")
    parser.add_argument("--layers", choices=["mlp", "cnn"], help="per-layer times of nnumpy's train step")
    parser.add_argument("--phases", choices=["mlp", "cnn"], help="time per phase of the train step, both libraries")
    parser.add_argument("--memory-child", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (10 if args.quick else 50)
    repeats = args.repeats or (3 if args.quick else 5)
    if args.memory_child:
        memory_child(*args.memory_child, steps=min(steps, 10), threads=args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    figures = {"1", "2", "3", "5"} if args.figure == "all" else set(args.figure.split(","))
    models = args.models.split(",")
    names = {"mlp": "MLP-F", "cnn": "CNN-F"}
    with nn.num_threads(args.threads):  # nnumpy's kernels and its BLAS
        data = load_data()
        if args.profile:
            profile_nnumpy(args.profile, data, steps)
            return
        if args.layers:
            layer_times(args.layers, data)
            return
        if args.phases:
            phase_times(args.phases, data, steps, repeats)
            return
        print("\n".join(machine_info(args.threads)))
        print(f"load average before the run: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
        print(f"Data: {data[4]}; batch {BATCH} (train), {INFER_BATCH} (inference); {repeats} repeats of {steps} "
              f"steps after 5 warm-up steps, median; nnumpy and PyTorch alternate")  # fmt: skip
        lines = ["| figure | nnumpy | PyTorch | ratio |", "|---|---|---|---|"]
        ceiling = sgemm_gflops()
        train = {}
        for kind in models:
            if figures & {"1", "3"}:
                train[kind] = bench_train(kind, data, steps, repeats, warmup=5)
                lines.append(row(f"{names[kind]} train step", train[kind]["nnumpy"], train[kind]["torch"],
                                 "samples/s"))  # fmt: skip
            if "2" in figures:
                r = bench_inference(kind, data, repeats)
                lines.append(row(f"{names[kind]} inference", r["nnumpy"], r["torch"], "samples/s"))
        if "3" in figures:
            lines.append(f"| numpy float32 matmul 2048² (same run) | {ceiling:.0f} GFLOP/s | | |")
            for kind, r in train.items():
                flops = 3 * forward_flops(kind)  # backward = 2 x forward
                ours, theirs = r["nnumpy"] * flops / 1e9, r["torch"] * flops / 1e9
                lines.append(f"| {names[kind]} train GFLOP/s (of sgemm) | {ours:.1f} ({ours / ceiling:.0%}) | "
                             f"{theirs:.1f} ({theirs / ceiling:.0%}) | {ours / theirs:.2f}x |")  # fmt: skip
        if "5" in figures and "cnn" in models:
            m = bench_memory(__file__, "cnn", steps, args.threads)
            lines.append(f"| CNN-F train step peak memory | {m['nnumpy']:.0f} MiB | {m['torch']:.0f} MiB | "
                         f"{m['nnumpy'] / m['torch']:.2f}x |")  # fmt: skip
        print("\n".join(lines))
        print(f"load average after the run: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
