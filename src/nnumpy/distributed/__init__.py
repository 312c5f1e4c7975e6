"""Data-parallel training over MPI (``mpi4py``), the Horovod / ChainerMN way.

Every process (rank) holds a full copy of the model, trains on its own slice
of each global batch, and after ``backward`` the gradients are averaged over
all ranks with ``Allreduce``, so every rank applies the same update and the
copies stay identical. Run a script under ``mpiexec -n K python script.py``;
the same script runs unchanged as one plain process (``size() == 1``, every
collective is a no-op, mpi4py need not be installed).

The pieces (files: ``comm.py``, ``collectives.py``, ``sampler.py``,
``batchnorm.py``, ``rngs.py``, ``trainer.py``):

* ``fit(model, criterion, optimizer, (X, y), ...)``: ``nnumpy.fit``'s loop,
  data-parallel (``DistributedTrainer``), with ``sync_batchnorm=True``;
* ``rank()``, ``size()``, ``is_main()``, ``barrier()``, ``init()``: the
  communicator (``MPI.COMM_WORLD`` when launched by ``mpiexec``/``mpirun``);
* ``broadcast_parameters(model)``: rank 0's parameters and buffers everywhere;
* ``allreduce_gradients(model)``: packs the gradients into a few large
  contiguous buffers (one dtype each, at most ``bucket_bytes``) and averages
  them with one in-place ``Allreduce`` per buffer;
* ``DistributedOptimizer(optimizer)``: ``step()`` = average gradients + step;
* ``DistributedSampler`` / ``ShardedLoader``: the same permutation on every
  rank, each global batch split into contiguous per-rank slices;
* ``sync_batchnorm(model)``: BatchNorm statistics over the global batch;
* ``allreduce_sum``, ``weighted_mean``, ``allreduce_buffers``: metrics and
  per-rank statistics;
* ``gather_object`` / ``scatter_object``, ``rng_states`` /
  ``set_rng_states``: every rank's RNG state in rank 0's checkpoint;
* ``install_excepthook()`` / ``abort_on_error()``: an exception on one rank
  aborts the whole job (``comm.Abort``) instead of leaving the others blocked
  in a collective forever. Importing ``nnumpy.distributed`` installs nothing;
  ``init()`` installs the hook (``sys.excepthook``) when running on several
  ranks, unless called with ``abort_on_exception=False``.

With the global batch split this way, the averaged gradient of K ranks equals
the gradient of the whole batch in one process (up to float rounding), so a
run with K ranks follows the single-process run step for step.

Example (runs as one process too)::

    import numpy as np, nnumpy as nn
    import nnumpy.distributed as dist

    dist.init()                                   # MPI + abort on error (abort_on_exception=False: not)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3), nn.LogSoftMax())
    dist.broadcast_parameters(model)
    opt = dist.DistributedOptimizer(nn.Adam(model, lr=1e-3))
    crit = nn.ClassNLLCriterion()
    X = np.random.default_rng(0).normal(size=(512, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    loader = dist.ShardedLoader(X, y, batch_size=64, seed=0)   # global batch 64
    for epoch in range(3):
        loader.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            out = model.forward(xb)
            crit.forward(out, yb)
            model.backward(xb, crit.backward(out, yb) * loader.grad_scale)
            opt.step()
"""

from .batchnorm import sync_batchnorm
from .collectives import (
    DEFAULT_BUCKET_BYTES,
    DistributedOptimizer,
    allreduce_buffers,
    allreduce_gradients,
    allreduce_sum,
    broadcast_object,
    broadcast_parameters,
    check_parameters_in_sync,
    gather_object,
    parameters_digest,
    scatter_object,
    weighted_mean,
)
from .comm import (
    abort,
    abort_on_error,
    barrier,
    find_mpiexec,
    get_comm,
    init,
    install_excepthook,
    is_distributed,
    is_main,
    launched_by_mpi,
    local_size,
    rank,
    share_cores,
    size,
    threads_per_rank,
)
from .rngs import decorrelate_rngs, rng_states, set_rng_states
from .sampler import DistributedSampler, ShardedLoader, grad_scale
from .trainer import DistributedTrainer, fit

__all__ = [
    "fit",
    "DistributedTrainer",
    "init",
    "get_comm",
    "rank",
    "size",
    "is_main",
    "is_distributed",
    "barrier",
    "launched_by_mpi",
    "find_mpiexec",
    "local_size",
    "threads_per_rank",
    "share_cores",
    "broadcast_parameters",
    "broadcast_object",
    "allreduce_gradients",
    "allreduce_buffers",
    "allreduce_sum",
    "weighted_mean",
    "parameters_digest",
    "check_parameters_in_sync",
    "DistributedOptimizer",
    "DEFAULT_BUCKET_BYTES",
    "DistributedSampler",
    "grad_scale",
    "ShardedLoader",
    "sync_batchnorm",
    "gather_object",
    "scatter_object",
    "rng_states",
    "set_rng_states",
    "decorrelate_rngs",
    "install_excepthook",
    "abort_on_error",
    "abort",
]
