"""nnumpy vs PyTorch-CPU on the sequence models LSTM-F and TRF-F (../shared/BENCHMARKS.md).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_seq.py --figure all
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_seq.py --accuracy --models lstm
    python benchmarks/bench_seq.py --figure 1 --quick           # fewer steps, for development
    python benchmarks/bench_seq.py --profile lstm               # cProfile of nnumpy's LSTM-F train step
    python benchmarks/bench_seq.py --phases trf                 # forward / backward / optimizer, both libraries

Figures: 1 train-step throughput (batch 128, Adam 1e-3, cross-entropy: zero
grads, forward, loss, backward, step; 5 warm-up steps, median of 5 repeats of
50 steps), 2 inference throughput (eval mode, batch 1000 over the test set),
5 peak memory of the train step (each library in its own child process, peak
RSS minus RSS after imports and data). ``--accuracy``: test accuracy after 3
epochs, seeds 0, 1, 2, both libraries with the same recipe, the same initial
weights (PyTorch's model gets a copy of nnumpy's) and the same batch order,
with wall seconds per epoch.

Timings alternate nnumpy and PyTorch inside one process (the machine is
shared and noisy: only same-run ratios count), both with the same thread
count (``nnumpy.num_threads`` for nnumpy's kernels and NumPy's BLAS,
``torch.set_num_threads``), with a pause before each timed repeat so that the
other library's idle threads have stopped spinning. Unset
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` when timing (``env -u``): a
core type forced by the environment holds NumPy's OpenBLAS to older kernels
than the machine has (see benchmarks/README.md).

Models (the same in both libraries):
    LSTM-F: LSTM(28, 128, batch_first) -> last hidden state -> Linear(128, 10).
    TRF-F: Linear(28, 64) + learned positions (28 x 64) -> 2 x
        TransformerEncoderLayer(64, 4 heads, feed-forward 128, dropout 0.1,
        norm_first, batch_first) -> mean over the 28 steps -> Linear(64, 10).
Each image is 28 steps of 28 pixels (its rows), scaled to [0, 1] and
normalised with mean 0.2860, std 0.3530.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

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

import nnumpy as nn

BATCH, INFER_BATCH = 128, 1000
NAMES = {"lstm": "LSTM-F", "trf": "TRF-F"}
SEEDS = (0, 1, 2)
EPOCHS = 3


# ----------------------------------------------------------------------- data
def load_data():
    """``(x_train, y_train, x_test, y_test, source)``: images as sequences (N, 28, 28) float32, normalised."""
    return load_fashion_mnist((28, 28))


# ----------------------------------------------------------------------- models
def _token_linear(n_in, n_out):
    """``nn.Linear`` on ``(N, L, n_in)`` tokens. nnumpy's Linear takes ``(*, n_in)``
    like PyTorch's once the kernels branch is merged; before that, a reshape around it."""
    layer = nn.Linear(n_in, n_out)
    try:
        layer.forward(np.zeros((1, 2, n_in), np.float32))
        return layer
    except ValueError:
        return nn.Sequential(_Rows(n_in), layer, nn.Unflatten(0, (-1, 28)))


class _Rows(nn.Module):
    """``(N, L, F) -> (N * L, F)`` (what ``Flatten(0, 1)`` does in PyTorch)."""

    def __init__(self, features):
        super().__init__()
        self.features = features

    def updateOutput(self, input):
        self.output = input.reshape(-1, self.features)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.reshape(input.shape)
        return self.gradInput


def build_nnumpy(kind, seed=0):
    nn.manual_seed(seed)
    if kind == "lstm":
        model = nn.Sequential(nn.LSTM(28, 128, batch_first=True), nn.LastStep(), nn.Linear(128, 10))
    else:
        layer = dict(dim_feedforward=128, dropout=0.1, norm_first=True, batch_first=True)
        model = nn.Sequential(
            _token_linear(28, 64), nn.LearnedPositionalEncoding(64, max_len=28, batch_first=True),
            nn.TransformerEncoderLayer(64, 4, **layer), nn.TransformerEncoderLayer(64, 4, **layer),
            nn.Mean(1), nn.Linear(64, 10),
        )  # fmt: skip
    model.skip_input_grad = True  # PyTorch does not compute the input gradient either
    return model


def build_torch(kind, source=None):
    """The same architecture in PyTorch, with ``source``'s (an nnumpy model) weights."""
    import torch

    T = torch.nn

    class LSTMF(T.Module):
        def __init__(self):
            super().__init__()
            self.lstm = T.LSTM(28, 128, batch_first=True)
            self.head = T.Linear(128, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[1][0][-1])

    class Positions(T.Module):
        def __init__(self):
            super().__init__()
            self.weight = T.Parameter(torch.zeros(28, 64))

    class TRFF(T.Module):
        def __init__(self):
            super().__init__()
            self.inp = T.Linear(28, 64)
            self.pos = Positions()
            self.layers = T.ModuleList(
                [T.TransformerEncoderLayer(64, 4, 128, 0.1, batch_first=True, norm_first=True) for _ in range(2)]
            )
            self.head = T.Linear(64, 10)

        def forward(self, x):
            h = self.inp(x) + self.pos.weight
            for layer in self.layers:
                h = layer(h)
            return self.head(h.mean(dim=1))

    model = LSTMF() if kind == "lstm" else TRFF()
    if source is not None:
        ours = [v for v in source.state_dict().values()]
        theirs = list(model.state_dict().values())
        assert len(ours) == len(theirs), f"{kind}: {len(ours)} nnumpy tensors, {len(theirs)} PyTorch tensors"
        with torch.no_grad():
            for a, t in zip(ours, theirs, strict=True):
                assert tuple(a.shape) == tuple(t.shape), f"{kind}: shapes {a.shape} and {tuple(t.shape)}"
                t.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return model


# ----------------------------------------------------------------------- steps
def nnumpy_train_step(kind, seed=0):
    model = build_nnumpy(kind, seed)
    criterion = nn.CrossEntropyLoss()
    opt = nn.Adam(model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step(x, y, marks=None):
        mark = marker(marks)
        opt.zero_grad()
        mark()
        out = model.forward(x)
        mark()
        loss = criterion.forward(out, y)
        model.backward(x, criterion.backward(out, y))
        mark()
        opt.step()
        mark()
        return loss

    return model, step


def torch_train_step(kind, source):
    import torch

    model = build_torch(kind, source)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y, marks=None):
        mark = marker(marks)
        opt.zero_grad()
        mark()
        out = model(x)
        mark()
        loss = loss_fn(out, y)
        loss.backward()
        mark()
        opt.step()
        mark()
        return loss

    return model, step


def bench_train(kind, data, steps, repeats, warmup):
    np_model, np_step = nnumpy_train_step(kind)
    t_model, t_step = torch_train_step(kind, np_model)
    t_model.train()
    return train_throughput(np_step, t_step, batches(data[0], data[1], BATCH, steps + warmup), warmup, repeats)


def bench_inference(kind, data, repeats, warmup_batches=2):
    np_model = build_nnumpy(kind).evaluate()
    t_model = build_torch(kind, np_model).eval()
    return inference_throughput(np_model, t_model, data[2], INFER_BATCH, repeats, kind, warmup_batches)


# ----------------------------------------------------------------------- memory
def reset_peak():
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


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
        reset_peak()  # the data's preparation peaked above this; count from here
        if library == "torch":
            _, step = torch_train_step(kind, build_nnumpy(kind))
        else:
            _, step = nnumpy_train_step(kind)
        for _ in range(steps):
            step(x, y)
    print(json.dumps({"peak_mib": (rss_kib("VmHWM") - baseline) / 1024}))


# ----------------------------------------------------------------------- accuracy
def nnumpy_accuracy(model, x, y):
    model.evaluate()
    correct = sum(int((model.forward(x[i : i + INFER_BATCH]).argmax(1) == y[i : i + INFER_BATCH]).sum())
                  for i in range(0, len(x), INFER_BATCH))  # fmt: skip
    model.train()
    return correct / len(x)


def torch_accuracy(model, x, y):
    import torch

    model.eval()
    with torch.inference_mode():
        correct = sum(int((model(torch.from_numpy(x[i : i + INFER_BATCH])).argmax(1).numpy()
                           == y[i : i + INFER_BATCH]).sum()) for i in range(0, len(x), INFER_BATCH))  # fmt: skip
    model.train()
    return correct / len(x)


def train_run(library, kind, data, seed, epochs):
    """``{"accuracy": test accuracy after ``epochs``, "seconds_per_epoch": [...]}``:
    Adam 1e-3, batch 128, cross-entropy, the batch order of ``seed``."""
    import torch

    xtr, ytr, xte, yte = data[:4]
    np_model, np_step = nnumpy_train_step(kind, seed)
    if library == "torch":
        torch.manual_seed(seed)  # its dropout masks
        model, step = torch_train_step(kind, np_model)
        model.train()
        xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    else:
        model, step = np_model, np_step
    order_rng = np.random.default_rng(seed)
    seconds = []
    for _ in range(epochs):
        order = order_rng.permutation(len(xtr))
        t0 = time.perf_counter()
        for i in range(0, len(xtr), BATCH):
            idx = order[i : i + BATCH]
            if library == "torch":
                t_idx = torch.from_numpy(idx)
                step(xtr_t[t_idx], ytr_t[t_idx])
            else:
                step(xtr[idx], ytr[idx])
        seconds.append(time.perf_counter() - t0)
    acc = torch_accuracy(model, xte, yte) if library == "torch" else nnumpy_accuracy(model, xte, yte)
    return {"accuracy": acc, "seconds_per_epoch": seconds}


def bench_accuracy(kinds, data, seeds, epochs, out_path):
    results = {}
    lines = ["| model | library | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | s/epoch |",
             "|---|---|" + "---|" * (len(seeds) + 2)]  # fmt: skip
    for kind in kinds:
        runs = {"nnumpy": [], "torch": []}
        for seed in seeds:
            for library in ("nnumpy", "torch"):  # alternating, seed by seed
                r = train_run(library, kind, data, seed, epochs)
                runs[library].append(r)
                results[kind] = runs
                if out_path:  # after every run: a long comparison cut short keeps what it measured
                    _write_results(out_path, results, seeds, epochs)
                print(f"{NAMES[kind]} seed {seed} {library}: {r['accuracy']:.2%}, "
                      f"{statistics.mean(r['seconds_per_epoch']):.1f} s/epoch", flush=True)  # fmt: skip
        results[kind] = runs
        means = {}
        for library, rs in runs.items():
            accs = [r["accuracy"] for r in rs]
            means[library] = statistics.mean(accs)
            per_epoch = statistics.mean(s for r in rs for s in r["seconds_per_epoch"])
            name = "nnumpy" if library == "nnumpy" else "PyTorch"
            lines.append(f"| {NAMES[kind]} | {name} | " + " | ".join(f"{a:.2%}" for a in accs)
                         + f" | {means[library]:.2%} | {per_epoch:.1f} |")  # fmt: skip
        lines.append(f"| {NAMES[kind]} | difference | " + "| " * len(seeds)
                     + f"{100 * (means['nnumpy'] - means['torch']):+.2f} pp | |")  # fmt: skip
    return lines


def _write_results(out_path, results, seeds, epochs):
    Path(out_path).write_text(json.dumps({"epochs": epochs, "seeds": list(seeds), "batch": BATCH, "lr": 1e-3,
                                          "optimizer": "Adam", "results": results}, indent=1))  # fmt: skip


# ----------------------------------------------------------------------- report
def profile_nnumpy(kind, data, steps):
    _, step = nnumpy_train_step(kind)
    profile_steps(step, batches(data[0], data[1], BATCH, steps), rows=30)


def phase_times(kind, data, steps, repeats):
    """Microseconds per step in each phase of the train step, both libraries alternating."""
    np_model, np_step = nnumpy_train_step(kind)
    _, t_step = torch_train_step(kind, np_model)
    print_phase_times(NAMES[kind], np_step, t_step, batches(data[0], data[1], BATCH, steps + 5), repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", default="all", help="1, 2, 5 or all (comma-separated)")
    parser.add_argument("--models", default="lstm,trf")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 10 steps (development)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--accuracy", action="store_true", help="test accuracy after 3 epochs, seeds 0, 1, 2")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of --accuracy (3)")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds of --accuracy (0,1,2)")
    parser.add_argument("--out", default=None, help="write --accuracy's results as JSON to this file")
    parser.add_argument("--profile", choices=["lstm", "trf"], help="cProfile of nnumpy's train step")
    parser.add_argument("--phases", choices=["lstm", "trf"], help="time per phase of the train step, both libraries")
    parser.add_argument("--memory-child", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (10 if args.quick else 50)
    repeats = args.repeats or (3 if args.quick else 5)
    if args.memory_child:
        memory_child(*args.memory_child, steps=min(steps, 10), threads=args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    with nn.num_threads(args.threads):
        data = load_data()
        if args.profile:
            profile_nnumpy(args.profile, data, steps)
            return
        if args.phases:
            phase_times(args.phases, data, steps, repeats)
            return
        print("\n".join(machine_info(args.threads)))
        print(f"load average before the run: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
        print(f"Data: {data[4]}")
        if args.accuracy:
            seeds = [int(s) for s in args.seeds.split(",")]
            print(f"Accuracy: {args.epochs} epochs, seeds {seeds}, Adam 1e-3, batch {BATCH}, cross-entropy; "
                  "PyTorch starts from nnumpy's initial weights, same batch order", flush=True)  # fmt: skip
            print("\n".join(bench_accuracy(models, data, seeds, args.epochs, args.out)))
        else:
            figures = {"1", "2", "5"} if args.figure == "all" else set(args.figure.split(","))
            print(f"batch {BATCH} (train), {INFER_BATCH} (inference); {repeats} repeats of {steps} steps after "
                  "5 warm-up steps, median; nnumpy and PyTorch alternate", flush=True)  # fmt: skip
            lines = ["| figure | nnumpy | PyTorch | ratio |", "|---|---|---|---|"]
            for kind in models:
                if "1" in figures:
                    r = bench_train(kind, data, steps, repeats, warmup=5)
                    lines.append(row(f"{NAMES[kind]} train step", r["nnumpy"], r["torch"], "samples/s"))
                if "2" in figures:
                    r = bench_inference(kind, data, repeats)
                    lines.append(row(f"{NAMES[kind]} inference", r["nnumpy"], r["torch"], "samples/s"))
                if "5" in figures:
                    m = bench_memory(__file__, kind, steps, args.threads)
                    lines.append(f"| {NAMES[kind]} train step peak memory | {m['nnumpy']:.0f} MiB | "
                                 f"{m['torch']:.0f} MiB | {m['nnumpy'] / m['torch']:.2f}x |")  # fmt: skip
            print("\n".join(lines))
        print(f"load average after the run: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
