"""Synchronised BatchNorm: batch statistics over the global batch, all ranks together."""

import numpy as np

from ..layers.normalization import BatchStatistics
from .comm import get_comm

__all__ = ["sync_batchnorm", "AllreduceStats"]


class AllreduceStats:
    """``stats_sync`` hook: ``(local_sum, count) -> (global_sum, global_count)``
    with one ``Allreduce`` of the sums with the count appended."""

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, local_sum, count):
        from mpi4py import MPI

        local_sum = np.asarray(local_sum)
        dtype = local_sum.dtype
        # a float32 count is exact below 2**24; past that, reduce in float64
        if dtype.itemsize < 8 and count * self.comm.Get_size() >= 2**24:
            dtype = np.dtype(np.float64)
        buf = np.empty(local_sum.size + 1, dtype=dtype)
        buf[:-1] = local_sum.reshape(-1)
        buf[-1] = count
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        total = buf[:-1].reshape(local_sum.shape).astype(local_sum.dtype, copy=False)
        return total, int(round(float(buf[-1])))

    def __repr__(self):
        return "AllreduceStats()"


def sync_batchnorm(model, enabled=True):
    """Make every BatchNorm-family module of ``model`` compute its batch
    statistics (forward means and variances, and the backward means) over the
    global batch, all ranks together, by installing an ``Allreduce`` as its
    ``stats_sync`` hook. With it, a model with BatchNorm trains the same with
    any number of ranks. ``enabled=False`` restores per-rank statistics
    (then call ``allreduce_buffers`` before saving to average the running
    statistics). Returns the number of modules changed; does nothing (returns
    0) in one process.

    All ranks must run the same forward/backward calls in training mode (every
    batch statistic is a collective). The layers' non-finite check
    (``NonFiniteError``) and their empty-batch check look at the synchronised
    statistics and count, so every rank raises at the same batch, before any
    running statistic changes, and no rank is left waiting in a collective.
    """
    comm = get_comm()
    hook = AllreduceStats(comm) if enabled and comm is not None and comm.Get_size() > 1 else None
    changed = 0
    for _, module in model.named_modules():
        if isinstance(module, BatchStatistics):
            if hook is None:
                module.__dict__.pop("stats_sync", None)
            else:
                module.stats_sync = hook
            changed += 1
    return changed if hook is not None else 0
