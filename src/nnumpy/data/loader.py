"""``DataLoader``: seeded, resumable mini-batches over arrays."""

import numpy as np

from ..backend import default_rng

__all__ = ["DataLoader", "num_examples", "take", "is_several_inputs"]


def is_several_inputs(x):
    """True for a non-empty tuple or list of arrays: the inputs of a model with several inputs."""
    return isinstance(x, (tuple, list)) and bool(x) and all(hasattr(a, "shape") for a in x)


def num_examples(x, who="DataLoader"):
    """The number of examples in ``x``: an array, or a tuple or list of
    arrays (a model with several inputs) whose first axes agree.

    Example:
        >>> num_examples((np.zeros((5, 3)), np.zeros((5, 2, 2))))
        5
    """
    if isinstance(x, (tuple, list)):
        if not x or not all(hasattr(a, "shape") and a.ndim > 0 for a in x):
            raise TypeError(f"{who}: several inputs must be a non-empty tuple of arrays, got {_kinds(x)}")
        counts = [len(a) for a in x]
        if len(set(counts)) > 1:
            raise ValueError(f"{who}: the inputs have different numbers of examples: {counts}")
        return counts[0]
    if not hasattr(x, "shape") or x.ndim == 0:
        raise TypeError(f"{who}: expected an array of examples (or a tuple of them), got {type(x).__name__}")
    return len(x)


def take(x, index):
    """``x[index]`` along the first axis, for an array or each array of a tuple (a tuple back)."""
    return tuple(a[index] for a in x) if isinstance(x, (tuple, list)) else x[index]


def _kinds(x):
    names = [type(a).__name__ for a in x[:4]] + (["..."] if len(x) > 4 else [])
    return f"{type(x).__name__} of ({', '.join(names)})"


class DataLoader:
    """Mini-batches ``(xb, yb)`` over arrays ``x``, ``y`` (first axis = examples).
    ``x`` may be a tuple of arrays for a model with several inputs (a
    ``Graph``): each ``xb`` is then the tuple of their batches.

    The shuffle order of an epoch is a pure function of ``(seed, epoch)``:
    ``np.random.default_rng([seed, epoch]).permutation(n)``, so a run is
    reproducible and resumable, and a distributed sampler can shard
    ``indices()`` by overriding it. The epoch advances by one after every
    complete pass; ``set_epoch(e)`` sets it (as PyTorch's samplers do).
    ``state_dict()`` records ``(seed, epoch, position)``: loading it in the
    middle of an epoch makes the next pass resume at the following batch.

    Args:
        x, y: arrays of equal length (``y`` may be None: batches are ``(xb, None)``);
            ``x`` an array or a tuple of arrays.
        batch_size: examples per batch (the last one may be smaller).
        shuffle: reshuffle every epoch.
        drop_last: drop the last, incomplete batch.
        rng: an int seed, a ``numpy.random.Generator`` (one seed is drawn
            from it) or None (drawn from nnumpy's default generator, which
            ``nnumpy.manual_seed`` controls).
    """

    def __init__(self, x, y=None, batch_size=128, shuffle=False, drop_last=False, rng=None):
        n = num_examples(x)
        if y is not None and len(y) != n:
            raise ValueError(f"DataLoader: {n} examples but {len(y)} labels")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.x, self.y = (tuple(x) if isinstance(x, list) else x), y
        self._n = n
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if isinstance(rng, (int, np.integer)):
            self.seed = int(rng)
        else:
            generator = rng if isinstance(rng, np.random.Generator) else default_rng()
            self.seed = int(generator.integers(2**63))
        self.epoch = 0
        self._position = 0  # batches handed out in the current pass
        self._resume_at = 0  # first batch of the next pass (set by load_state_dict)

    @property
    def num_samples(self):
        """Examples per epoch (a distributed subclass returns its shard's size)."""
        return self._n

    def indices(self, epoch=None):
        """The order of examples for ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(self._n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self._n)

    def set_epoch(self, epoch):
        """Use the shuffle order of ``epoch`` for the next pass, from its start."""
        self.epoch = int(epoch)
        self._position = self._resume_at = 0

    def __len__(self):
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = None if not self.shuffle and type(self).indices is DataLoader.indices else self.indices()
        start, self._resume_at = self._resume_at, 0
        for b in range(start, len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.num_samples)
            self._position = b + 1
            if order is None:  # contiguous slices: views, no copy
                xb, yb = take(self.x, slice(lo, hi)), None if self.y is None else self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb, yb = take(self.x, idx), None if self.y is None else self.y[idx]
            yield xb, yb
        self.epoch += 1
        self._position = 0

    def state_dict(self):
        """``{"seed", "epoch", "position"}`` (JSON-able)."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self._position}

    def load_state_dict(self, state):
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._position = self._resume_at = int(state.get("position", 0))

    def __repr__(self):
        return (
            f"DataLoader({self.num_samples} examples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch})"
        )
