"""What bench.py (MLP-F, CNN-F) and bench_seq.py (LSTM-F, TRF-F) share: the
Fashion-MNIST loader, the alternating timer, batching, peak-memory child
runs and the report lines. Model-specific code stays in each script."""

import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # before nnumpy, as user scripts do
from threadpoolctl import threadpool_info

import nnumpy as nn

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530


# ----------------------------------------------------------------------- data
def read_idx(path):
    """Array from an IDX file (gzip or raw): magic (dtype code, ndim), dims, data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(shape):
    """``(x_train, y_train, x_test, y_test, source)``: images ``(N, *shape)``
    float32, scaled to [0, 1] and normalised with ``MEAN``, ``STD``; random
    data of the same shape when Fashion-MNIST is not installed."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]  # fmt: skip
    if all((DATA_DIR / n).exists() for n in names):
        xtr, ytr, xte, yte = (read_idx(DATA_DIR / n) for n in names)
        source = f"Fashion-MNIST ({DATA_DIR})"
    else:
        r = np.random.default_rng(0)
        xtr, xte = r.integers(0, 256, (60000, 28, 28), np.uint8), r.integers(0, 256, (10000, 28, 28), np.uint8)
        ytr, yte = r.integers(0, 10, 60000), r.integers(0, 10, 10000)
        source = "random data (Fashion-MNIST not found)"

    def prep(x):
        return ((x.astype(np.float32) / 255 - np.float32(MEAN)) / np.float32(STD)).reshape(-1, *shape)

    return prep(xtr), ytr.astype(np.int64), prep(xte), yte.astype(np.int64), source


def batches(x, y, size, count, offset=0):
    n = x.shape[0] // size
    return [(x[(offset + i) % n * size :][:size], y[(offset + i) % n * size :][:size]) for i in range(count)]


# ----------------------------------------------------------------------- timing
def marker(marks):
    """A callable that appends the time to ``marks`` (a list), or does nothing when it is None."""
    if marks is None:
        return lambda: None
    marks.append(time.perf_counter())
    return lambda: marks.append(time.perf_counter())


# Pause before each timed repeat: a library's idle worker threads keep spinning
# on the cores after its last call (OpenBLAS for ~2^28 cycles, about 0.1 s;
# OpenMP runtimes up to 0.2 s) and would slow down the other library's repeat.
SETTLE_S = 0.3


def time_alternating(runners, repeats, warmup):
    """``{name: [seconds per repeat]}``; each runner is ``(name, callable running one repeat)``."""
    for _, run in runners:
        run(warmup)
    times = {name: [] for name, _ in runners}
    for _ in range(repeats):
        for name, run in runners:
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            run(None)
            times[name].append(time.perf_counter() - t0)
    return times


def torch_batches(items):
    import torch

    return [(torch.from_numpy(x.copy()), torch.from_numpy(y)) for x, y in items]


def train_throughput(np_step, t_step, items, warmup, repeats):
    """``{"nnumpy": samples/s, "torch": samples/s}`` of two train steps
    ``step(x, y)`` on the same batches ``items``: ``warmup`` of them first,
    then ``repeats`` alternating repeats over the rest (median)."""
    t_items = torch_batches(items)

    def runner(step, chosen_items):
        def run(warm):
            for x, y in chosen_items[:warm] if warm else chosen_items[warmup:]:
                step(x, y)

        return run

    times = time_alternating([("nnumpy", runner(np_step, items)), ("torch", runner(t_step, t_items))],
                             repeats, warmup)  # fmt: skip
    samples = sum(x.shape[0] for x, _ in items[warmup:])
    return {k: samples / statistics.median(v) for k, v in times.items()}


def inference_throughput(np_model, t_model, x, batch, repeats, what, warmup_batches=2):
    """``{"nnumpy": samples/s, "torch": samples/s}`` of two models in
    evaluate mode over ``x`` in batches of ``batch``, after checking that
    their outputs agree (``what`` names the model in that error)."""
    import torch

    chunks = [x[i : i + batch] for i in range(0, x.shape[0], batch)]
    t_chunks = [torch.from_numpy(c.copy()) for c in chunks]

    def np_run(warm):
        for c in chunks[:warm] if warm else chunks:
            np_model.forward(c)

    def t_run(warm):
        with torch.inference_mode():
            for c in t_chunks[:warm] if warm else t_chunks:
                t_model(c)

    with torch.inference_mode():  # the two libraries agree on what they compute
        diff = np.abs(np_model.forward(chunks[0]) - t_model(t_chunks[0]).numpy()).max()
    assert diff < 1e-3, f"{what}: nnumpy and PyTorch outputs differ by {diff}"
    times = time_alternating([("nnumpy", np_run), ("torch", t_run)], repeats, warmup_batches)
    return {k: x.shape[0] / statistics.median(v) for k, v in times.items()}


PHASES = ("zero grads", "forward", "loss + backward", "optimizer step")


def print_phase_times(what, np_step, t_step, items, repeats, warmup=5):
    """Microseconds per step in each phase of the train step (``PHASES``, timed
    by ``step(x, y, marks)``), nnumpy and PyTorch alternating repeat by repeat
    (median over repeats of the mean over the steps after ``warmup``), as a table."""
    runs = (("nnumpy", np_step, items), ("PyTorch", t_step, torch_batches(items)))
    times = {"nnumpy": [], "PyTorch": []}
    for _, step, chosen in runs:
        for x, y in chosen[:warmup]:
            step(x, y)
    for _ in range(repeats):
        for name, step, chosen in runs:
            time.sleep(SETTLE_S)
            per_step = []
            for x, y in chosen[warmup:]:
                marks = []
                step(x, y, marks)
                per_step.append(np.diff(marks))
            times[name].append(np.mean(per_step, axis=0))
    med = {name: np.median(v, axis=0) * 1e6 for name, v in times.items()}
    print(f"| {what} train step phase | nnumpy us | PyTorch us |\n|---|---|---|")
    for i, phase in enumerate(PHASES):
        print(f"| {phase} | {med['nnumpy'][i]:,.0f} | {med['PyTorch'][i]:,.0f} |")
    print(f"| step | {med['nnumpy'].sum():,.0f} | {med['PyTorch'].sum():,.0f} |")


def profile_steps(step, items, rows):
    """cProfile of ``step(x, y)`` over ``items`` (after 3 untimed steps), its
    ``rows`` most expensive functions by own time."""
    import cProfile
    import pstats

    for x, y in items[:3]:
        step(x, y)
    profiler = cProfile.Profile()
    profiler.enable()
    for x, y in items:
        step(x, y)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(rows)


# ----------------------------------------------------------------------- memory
def rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bench_memory(script, kind, steps, threads):
    """``{library: peak MiB}``, each library's train step run by ``script
    --memory-child`` in its own process."""
    out = {}
    for library in ("nnumpy", "torch"):
        cmd = [sys.executable, script, "--memory-child", library, kind, "--threads", str(threads),
               "--steps", str(steps)]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[library] = json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]
    return out


# ----------------------------------------------------------------------- report
def machine_info(threads):
    import torch

    blas = [f"{i['internal_api']} {i['version']} ({i.get('architecture', '?')}, {i['num_threads']} threads)"
            for i in threadpool_info() if i["user_api"] == "blas"]  # fmt: skip
    names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_THREAD_TIMEOUT", "NNUMPY_NUM_THREADS")
    env = {k: os.environ[k] for k in names if k in os.environ}
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    lines = [
        f"CPU: {cpu}, {os.cpu_count()} cores; threads: {threads} (nnumpy.num_threads: its kernels and "
        "numpy's BLAS; torch.set_num_threads)",
        f"Python {platform.python_version()}, numpy {np.__version__}, BLAS: {'; '.join(blas)}",
        f"torch {torch.__version__}, nnumpy {nn.__version__}, OpenBLAS env: {env or 'not set'}",
    ]
    if "OPENBLAS_CORETYPE" in env:
        lines.append("warning: OPENBLAS_CORETYPE is set; run under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`")
    return lines


def row(name, ours, theirs, unit):
    return f"| {name} | {ours:,.0f} {unit} | {theirs:,.0f} {unit} | {ours / theirs:.2f}x |"
