"""Two ranks, one NaN sample that only rank 1's slice of the third global
batch holds: ``nnumpy.distributed.fit`` must stop on every rank at the same
step (the decision uses the loss reduced over the ranks), with no hang.

    python diverge.py OUT_DIR

Writes OUT_DIR/rank{R}.json: the step and loss of the TrainingDivergedError each rank caught.
"""

import json
import sys
from pathlib import Path

import numpy as np

import nnumpy as nn
import nnumpy.distributed as dist
from nnumpy.training import TrainingDivergedError


def main():
    out = Path(sys.argv[1])
    dist.init()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X[2 * 16 + 12] = np.nan  # global batch 2 (16 samples, 8 per rank): rank 1's half
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 2, rng=1))
    try:
        dist.fit(model, None, nn.SGD(model, lr=0.1), (X, y), epochs=2, batch_size=16, shuffle=False, verbose=False)
    except TrainingDivergedError as error:
        finite = all(bool(np.isfinite(p).all()) for p in model.parameters())
        result = {"step": error.step, "loss": str(error.loss), "finite": finite, "message": str(error)}
        (out / f"rank{dist.rank()}.json").write_text(json.dumps(result))
        return
    (out / f"rank{dist.rank()}.json").write_text(json.dumps({"step": None}))


if __name__ == "__main__":
    main()
