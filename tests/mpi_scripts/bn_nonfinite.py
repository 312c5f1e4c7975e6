"""Two ranks, synchronised BatchNorm1d, one NaN value that only rank 1's
local batch holds: the batch statistics are synchronised, so both ranks must
raise NonFiniteError together in forward (no hang in a later collective), and
neither changes its running statistics.

    python bn_nonfinite.py OUT_DIR

Writes OUT_DIR/rank{R}.json: whether the rank raised, its message, whether its
running statistics are unchanged.
"""

import json
import sys
from pathlib import Path

import numpy as np

import nnumpy as nn
import nnumpy.distributed as dist


def main():
    out = Path(sys.argv[1])
    dist.init()
    bn = nn.BatchNorm1d(3)
    assert dist.sync_batchnorm(bn) == 1
    x = np.random.default_rng(dist.rank()).normal(size=(4, 3)).astype(np.float32)
    if dist.rank() == 1:
        x[2, 1] = np.nan
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    result = {"raised": False}
    try:
        bn.forward(x)
    except nn.NonFiniteError as error:
        result = {"raised": True, "message": str(error)}
    result["unchanged"] = all(np.array_equal(before[k], v) for k, v in bn.state_dict().items())
    # a clean batch afterwards still synchronises (no rank is left behind in a collective)
    bn.forward(np.ones((2, 3), np.float32) * (dist.rank() + 1))
    result["after"] = bn.running_mean.tolist()
    (out / f"rank{dist.rank()}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
