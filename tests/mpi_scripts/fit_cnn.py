"""CNN-F trained by ``nnumpy.distributed.fit`` on a slice of the bundled
Fashion-MNIST sample, with a checkpoint every epoch (rank 0 writes it).

    python fit_cnn.py OUT_DIR --epochs E [--resume CHECKPOINT] [--stop-after STEPS] [--n 320]

``--stop-after S`` requests a stop (as Ctrl-C does) after step S: training ends
one batch later, mid-epoch, and ModelCheckpoint saves on the interrupt.

Writes OUT_DIR/checkpoint.npz and, on rank 0, OUT_DIR/history.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np

import nnumpy as nn
import nnumpy.distributed as dist
from nnumpy.data import load_sample
from nnumpy.models import cnn_f
from nnumpy.training import Callback, ModelCheckpoint


class StopAfter(Callback):
    def __init__(self, steps):
        self.steps = steps

    def on_batch_end(self, trainer, step, logs):
        if step == self.steps:
            trainer.stop_requested = True  # what the Ctrl-C handler does


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--resume")
    parser.add_argument("--stop-after", type=int)
    parser.add_argument("--n", type=int, default=320)
    args = parser.parse_args()
    dist.init()
    (x_train, y_train), _ = load_sample()
    X = ((x_train[: args.n].astype(np.float32) / 255 - 0.2860) / 0.3530).reshape(-1, 1, 28, 28)
    y = y_train[: args.n].astype(np.int64)
    model = cnn_f(rng=0)
    out = Path(args.out)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
    history = dist.fit(
        model,
        nn.ClassNLLCriterion(),
        nn.Adam(model, lr=1e-3),
        (X, y),
        val_data=(X[:96], y[:96]),
        epochs=args.epochs,
        batch_size=64,
        seed=0,
        verbose=False,
        callbacks=[ModelCheckpoint(out / "checkpoint.npz")] + ([StopAfter(args.stop_after)] if args.stop_after else []),
        resume=args.resume,
    )
    if dist.is_main():
        (out / "history.json").write_text(json.dumps(history.to_dict()))
    arrays = {f"p{i}": a for i, a in enumerate(model.state_dict().values())}
    np.savez(out / f"final.rank{dist.rank()}.npz", **arrays)


if __name__ == "__main__":
    main()
