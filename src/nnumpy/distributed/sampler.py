"""Sharding the data: every rank takes its slice of each global batch.

``DistributedSampler`` gives the per-rank indices, ``ShardedLoader`` the
per-rank ``(xb, yb)`` batches; ``grad_scale`` keeps an unevenly split batch's
averaged gradient equal to the whole batch's.
"""

import numpy as np

from ..data import num_examples, take
from .comm import rank as this_rank
from .comm import size

__all__ = ["grad_scale", "shard_bounds", "DistributedSampler", "ShardedLoader"]


def grad_scale(local_count, global_count, ranks=None):
    """``local_count * ranks / global_count``: the factor that makes a rank's
    batch-mean loss gradient weigh ``local_count / global_count`` after the
    plain average over ranks (1.0 when every rank has the same share)."""
    ranks = size() if ranks is None else ranks
    return local_count * ranks / global_count


def shard_bounds(n, parts, index):
    """Bounds of part ``index`` when ``n`` items are split into ``parts`` nearly equal contiguous parts."""
    return index * n // parts, (index + 1) * n // parts


class DistributedSampler:
    """Per-rank sample indices of each global batch.

    Every rank computes the same permutation of ``range(n)`` (from ``seed``
    and the epoch, set with ``set_epoch``), cuts it into global batches of
    ``batch_size`` and keeps its own contiguous slice of each:
    ``batch_size / K`` samples. The last, smaller batch of an epoch is split
    as evenly as possible (scale the loss gradient by ``grad_scale`` so the
    average over ranks stays the whole batch's gradient); a tail with fewer
    samples than ranks is dropped, as is any tail with ``drop_last``.

    Args:
        n: number of samples.
        batch_size: the GLOBAL batch size; must be divisible by the number of
            ranks, so that the same command trains the same with any K.
        shuffle: permute every epoch (False: in order).
        seed: the permutation of epoch ``e`` is ``default_rng([seed, e])``'s.
        drop_last: drop the last incomplete batch.
        num_replicas, rank: default ``size()`` and ``rank()``.

    Iterating yields one index array per global batch.
    """

    def __init__(self, n, batch_size, shuffle=True, seed=0, drop_last=False, num_replicas=None, rank=None):
        self.num_replicas = size() if num_replicas is None else int(num_replicas)
        self.rank = this_rank() if rank is None else int(rank)
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"DistributedSampler: batch_size must be a positive int, got {batch_size!r}")
        if batch_size % self.num_replicas:
            raise ValueError(
                f"DistributedSampler: the global batch size {batch_size} is not divisible by the number of "
                f"ranks {self.num_replicas}; choose a batch size that is a multiple of {self.num_replicas} "
                f"(each rank gets batch_size / ranks samples)"
            )
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in [0, {self.num_replicas})")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch):
        """Select epoch ``epoch``'s permutation (call before each epoch)."""
        self.epoch = int(epoch)

    def permutation(self):
        """The global order of this epoch's samples (the same on every rank)."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def global_batches(self):
        """The global batches of this epoch as index arrays (the same on every rank)."""
        order = self.permutation()
        full = self.n // self.batch_size * self.batch_size
        batches = [order[i : i + self.batch_size] for i in range(0, full, self.batch_size)]
        tail = order[full:]
        if len(tail) >= self.num_replicas and not self.drop_last:
            batches.append(tail)
        return batches

    def __iter__(self):
        for batch in self.global_batches():
            lo, hi = shard_bounds(len(batch), self.num_replicas, self.rank)
            yield batch[lo:hi]

    def __len__(self):
        return len(self.global_batches()) if self.n else 0


class ShardedLoader:
    """Batches of ``(X, y)`` for this rank: its slice of each global batch.

    ``ShardedLoader(X, y, batch_size)`` iterates like a data loader with the
    GLOBAL ``batch_size``; each rank gets ``batch_size / K`` rows of every
    batch (see ``DistributedSampler``). ``y`` may be None (yields ``X``
    batches).

    After each batch, ``global_count`` is that batch's size over all ranks and
    ``grad_scale`` the factor to multiply this rank's loss gradient by before
    ``backward``: ``local_count * K / global_count``, exactly 1.0 unless the
    batch was split unevenly (the last one of an epoch). A batch-mean loss on
    ``n_k`` samples then contributes ``n_k / N`` of the global gradient on
    every rank alike, which also keeps synchronised BatchNorm's backward
    exact (scaling the rank's gradients after ``backward`` would not).
    """

    def __init__(self, X, y=None, batch_size=128, shuffle=True, seed=0, drop_last=False, num_replicas=None, rank=None):
        n = num_examples(X, "ShardedLoader")
        if y is not None and n != len(y):
            raise ValueError(f"ShardedLoader: X has {n} samples but y has {len(y)}")
        self.X, self.y = X, y
        self.sampler = DistributedSampler(
            n, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, num_replicas=num_replicas, rank=rank
        )
        self.global_count = None
        self.grad_scale = 1.0
        self.global_index = None  # the current global batch's indices, and this rank's slice of it
        self.local_slice = slice(0, 0)

    @property
    def batch_size(self):
        return self.sampler.batch_size

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        s = self.sampler
        for batch in s.global_batches():
            lo, hi = shard_bounds(len(batch), s.num_replicas, s.rank)
            idx = batch[lo:hi]
            self.global_index, self.local_slice = batch, slice(lo, hi)
            self.global_count = len(batch)
            self.grad_scale = grad_scale(hi - lo, len(batch), s.num_replicas)
            yield take(self.X, idx) if self.y is None else (take(self.X, idx), self.y[idx])

    def __len__(self):
        return len(self.sampler)
