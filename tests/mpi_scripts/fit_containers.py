"""Containers under ``nnumpy.distributed.fit``: a Residual/table model, a
Graph that uses one Linear and one BatchNorm1d at two nodes, and a Graph of
two inputs given as a tuple of arrays, each with BatchNorm in training mode
(statistics synchronised over the ranks).

Run as one process or under ``mpiexec -n K``: the global batch is the same,
so the results must not depend on K. After every optimizer step the ranks
check that their parameters and buffers are bitwise identical.

    python fit_containers.py OUT_DIR [--epochs 2]

Writes OUT_DIR/<kind>.rank<r>.npz (the final state_dict, keys as they are)
and <kind>.history.json, and, for the graph, a checkpoint
OUT_DIR/graph.checkpoint.npz (rank 0 writes it).
"""

import argparse
import json
from pathlib import Path

import numpy as np

import nnumpy as nn
import nnumpy.distributed as dist
from nnumpy.data import take
from nnumpy.training import Callback, ModelCheckpoint

N_SAMPLES = 75  # 4 full global batches of 16, then a tail of 11 split 5/6 over two ranks
BATCH = 16
KINDS = ("residual", "graph", "two_inputs")


def build(kind, dtype=np.float64):
    """The two models. A Linear whose output reaches only BatchNorms (through
    linear maps) has no bias: its gradient would be rounding noise, which Adam
    turns into real steps, and ranks could not match one process."""
    r = np.random.default_rng(1)
    if kind == "residual":
        body = nn.Sequential(
            nn.Linear(8, 8, bias=False, dtype=dtype, rng=r),
            nn.BatchNorm1d(8, dtype=dtype),
            nn.ReLU(),
            nn.Linear(8, 8, bias=False, dtype=dtype, rng=r),  # a bias here would reach BatchNorm only
        )
        down = nn.Residual(
            nn.Sequential(nn.Linear(8, 4, bias=False, dtype=dtype, rng=r), nn.BatchNorm1d(4, dtype=dtype)),
            nn.Sequential(nn.Linear(8, 4, bias=False, dtype=dtype, rng=r), nn.BatchNorm1d(4, dtype=dtype)),
        )
        return nn.Sequential(
            nn.Linear(6, 8, bias=False, dtype=dtype, rng=r),
            nn.BatchNorm1d(8, dtype=dtype),
            nn.ReLU(),
            nn.Residual(body),
            down,
            nn.ReLU(),
            nn.ConcatTable(nn.Linear(4, 3, dtype=dtype, rng=r), nn.Linear(4, 3, dtype=dtype, rng=r)),
            nn.CAddTable(),
            nn.LogSoftMax(),
        )
    if kind == "graph":
        x = nn.Input()
        h = nn.ReLU()(
            nn.BatchNorm1d(8, dtype=dtype)(nn.Linear(6, 8, bias=False, dtype=dtype, rng=r)(x, name="stem"), name="bn")
        )
        mix, bn2 = nn.Linear(8, 8, bias=False, dtype=dtype, rng=r), nn.BatchNorm1d(8, dtype=dtype)
        a = nn.ReLU()(bn2(mix(h, name="mix"), name="bn2"))
        b = bn2(mix(a))  # the second use of mix and bn2: tied weights, shared running statistics
        s = nn.CAddTable()(h, b, name="add")
        head = nn.Linear(16, 3, dtype=dtype, rng=r)(nn.JoinTable(1)(s, a), name="head")
        return nn.Graph(x, nn.LogSoftMax()(head))
    if kind == "two_inputs":  # data(kind) gives the first 3 features to a, the other 3 to b
        a, b = nn.Input(), nn.Input()
        ha = nn.ReLU()(nn.BatchNorm1d(8, dtype=dtype)(nn.Linear(3, 8, bias=False, dtype=dtype, rng=r)(a, name="a")))
        hb = nn.Tanh()(nn.Linear(3, 8, dtype=dtype, rng=r)(b, name="b"))
        head = nn.Linear(16, 3, dtype=dtype, rng=r)(nn.JoinTable(1)(ha, hb), name="head")
        return nn.Graph([a, b], nn.LogSoftMax()(head))
    raise ValueError(kind)


def data(kind="residual", dtype=np.float64):
    """``(X, y)``; for ``two_inputs`` X is the pair of arrays (features 0-2, features 3-5)."""
    r = np.random.default_rng(2)
    X = r.normal(size=(N_SAMPLES, 6)).astype(dtype)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1).astype(np.int64)
    return ((X[:, :3], X[:, 3:]) if kind == "two_inputs" else X), y


def validation(X, y):
    return take(X, slice(0, 32)), y[:32]


class InSync(Callback):
    """Every rank's parameters and buffers bitwise equal after every step."""

    def __init__(self):
        self.checks = 0

    def on_batch_end(self, trainer, step, logs):
        dist.check_parameters_in_sync(trainer.model)
        self.checks += 1


def train(kind, out, epochs):
    model = build(kind)
    X, y = data(kind)
    sync = InSync()
    callbacks = [sync] + ([ModelCheckpoint(out / "graph.checkpoint.npz")] if kind == "graph" else [])
    history = dist.fit(
        model,
        nn.ClassNLLCriterion(),
        "adam",
        (X, y),
        val_data=validation(X, y),
        epochs=epochs,
        batch_size=BATCH,
        seed=0,
        lr=1e-2,
        verbose=False,
        callbacks=callbacks,
    )
    return model, history, sync.checks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    dist.init()
    out = Path(args.out)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    for kind in KINDS:
        model, history, checks = train(kind, out, args.epochs)
        np.savez(out / f"{kind}.rank{dist.rank()}.npz", **model.state_dict())
        if dist.is_main():
            record = dict(history.to_dict(), checks=checks, ranks=dist.size())
            (out / f"{kind}.history.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
