"""Train a small model for a few steps with nnumpy.distributed.

Run as one process or under ``mpiexec -n K``; the global batch is the same,
so the final parameters must match a plain single-process loop (``reference``).
After every step the ranks check that their parameters are bitwise identical.

    python train_steps.py OUT.npz --model mlp|bn|cnn --dtype float32|float64 --steps N [--per-rank-bn]
"""

import argparse

import numpy as np

import nnumpy as nn
import nnumpy.distributed as dist

N_SAMPLES = 75  # 4 full global batches of 16, then a tail of 11 split 5/6 over two ranks
BATCH = 16


def build(kind, dtype):
    rng = np.random.default_rng(1)
    if kind == "mlp":
        model = nn.Sequential(
            nn.Linear(12, 24, dtype=dtype, rng=rng), nn.Tanh(), nn.Linear(24, 3, dtype=dtype, rng=rng), nn.LogSoftMax()
        )
    elif kind == "bn":  # Linear without bias before BatchNorm (its gradient would be rounding noise)
        model = nn.Sequential(
            nn.Linear(12, 24, bias=False, dtype=dtype, rng=rng),
            nn.BatchNorm1d(24, dtype=dtype),
            nn.ReLU(),
            nn.Linear(24, 3, dtype=dtype, rng=rng),
            nn.LogSoftMax(),
        )
    elif kind == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng),
            nn.BatchNorm2d(4, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 3, 3, dtype=dtype, rng=rng),
            nn.LogSoftMax(),
        )
    else:
        raise ValueError(kind)
    return model


def data(kind, dtype):
    rng = np.random.default_rng(2)
    shape = (N_SAMPLES, 1, 8, 6) if kind == "cnn" else (N_SAMPLES, 12)
    X = rng.normal(size=shape).astype(dtype)
    y = rng.integers(0, 3, size=N_SAMPLES)
    return X, y


def step(model, crit, xb, yb, grad_scale=1.0):
    out = model.forward(xb)
    loss = crit.forward(out, yb)
    model.backward(xb, crit.backward(out, yb) * grad_scale)
    return loss


def reference(kind, dtype, steps):
    """The plain single-process loop with whole global batches: no nnumpy.distributed involved."""
    model, (X, y) = build(kind, dtype), data(kind, dtype)
    opt, crit = nn.Adam(model, lr=1e-2), nn.ClassNLLCriterion()
    done, epoch = 0, 0
    while done < steps:
        order = np.random.default_rng([0, epoch]).permutation(N_SAMPLES)
        for i in range(0, N_SAMPLES, BATCH):
            if done == steps:
                break
            idx = order[i : i + BATCH]
            opt.zero_grad()
            step(model, crit, X[idx], y[idx])
            opt.step()
            done += 1
        epoch += 1
    return model


def distributed(kind, dtype, steps, sync_bn=True):
    model, (X, y) = build(kind, dtype), data(kind, dtype)
    dist.broadcast_parameters(model)
    dist.sync_batchnorm(model, enabled=sync_bn)
    opt, crit = dist.DistributedOptimizer(nn.Adam(model, lr=1e-2)), nn.ClassNLLCriterion()
    loader = dist.ShardedLoader(X, y, batch_size=BATCH, seed=0)
    done, epoch, losses = 0, 0, []
    while done < steps:
        loader.set_epoch(epoch)
        for xb, yb in loader:
            if done == steps:
                break
            opt.zero_grad()
            loss = step(model, crit, xb, yb, loader.grad_scale)
            opt.step()
            losses.append(dist.weighted_mean(loss, len(xb)))
            if not sync_bn:
                dist.allreduce_buffers(model)  # per-rank running statistics, averaged
            dist.check_parameters_in_sync(model)  # bitwise equal on every rank after every step
            done += 1
        epoch += 1
    return model, losses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--per-rank-bn", action="store_true")
    args = parser.parse_args()
    dist.init()
    model, losses = distributed(args.model, np.dtype(args.dtype), args.steps, sync_bn=not args.per_rank_bn)
    arrays = {f"p{i}": a for i, a in enumerate(model.state_dict().values())}
    np.savez(args.out.replace(".npz", f".rank{dist.rank()}.npz"), losses=np.array(losses), **arrays)
    if dist.is_main():
        print(f"ok: {dist.size()} ranks, {len(losses)} steps, final loss {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
