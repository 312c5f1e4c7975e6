"""The sizes and thresholds of nnumpy's fast kernels, in one public knob.

The defaults suit a training batch of a small CNN on a few cores; none of them
changes a result beyond the order in which sums add up. Tests set small values
to walk every chunking and threading path on tiny arrays.

    >>> import nnumpy
    >>> with nnumpy.kernels.tuning(chunk_bytes=4096, threads=1):
    ...     nnumpy.kernels.get_tuning()["chunk_bytes"]
    4096
    >>> nnumpy.kernels.get_tuning()["chunk_bytes"] == 1 << 20
    True
"""

from contextlib import contextmanager

__all__ = ["DEFAULTS", "get_tuning", "set_tuning", "tuning", "version"]

DEFAULTS = {
    # Conv2d/Conv1d: im2col columns are made for ~this many bytes of samples at
    # a time, and multiplied while they are still in the core's cache.
    "chunk_bytes": 1 << 20,
    # Conv2d/Conv1d: a training forward keeps the whole batch's im2col columns
    # for backward when they take at most this (else backward copies them again).
    "keep_columns_bytes": 8 << 20,
    # Element-wise kernels split an array over nnumpy's threads into pieces of
    # at least this many bytes (handing a piece to a thread costs tens of us).
    "min_bytes_per_thread": 1 << 20,
    # Matrix products split over nnumpy's threads into pieces of at least this
    # many multiply-adds (OpenBLAS's own threshold for using a second thread).
    "min_macs_per_thread": 1 << 18,
    # A matrix product runs on nnumpy's threads (BLAS on one thread each) while
    # an element-wise kernel split over them within this many kernel calls;
    # 0: products always use the BLAS library's threads (see kernels.matmul).
    "split_window_calls": 64,
    # BatchNorm's per-channel passes view an (M, C) array as (M/k, k*C) rows of
    # up to this many values (NumPy pays a loop overhead per row).
    "wide_row": 512,
    # nnumpy's kernel threads; None: $NNUMPY_NUM_THREADS, else the CPUs this
    # process may use. ``nnumpy.set_num_threads`` also sets BLAS's.
    "threads": None,
}

settings = dict(DEFAULTS)
"""The values in use; kernels read them, users change them through ``set_tuning`` / ``tuning``."""

_MINIMUM = {"keep_columns_bytes": 0, "split_window_calls": 0}  # the rest: at least 1
_changes = [0]  # how many times the settings changed (see ``version``)


def _checked(name, value):
    if name not in DEFAULTS:
        raise TypeError(f"nnumpy.kernels.tuning: unknown setting {name!r}; the settings are {sorted(DEFAULTS)}")
    if value is None and name == "threads":
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"nnumpy.kernels.tuning: {name} must be an int, got {type(value).__name__}")
    value = value.__index__()
    minimum = _MINIMUM.get(name, 1)
    if value < minimum:
        raise ValueError(f"nnumpy.kernels.tuning: {name} must be >= {minimum}, got {value}")
    return value


def get_tuning():
    """A copy of the settings in use (``DEFAULTS`` lists and explains them)."""
    return dict(settings)


def version():
    """A number that changes whenever the settings do (the thread pool forgets
    the splits it saw under other settings)."""
    return _changes[0]


def set_tuning(**changes):
    """Change settings for the rest of the process (``tuning`` is the scoped
    form); returns the previous values of those settings. Unknown names raise
    TypeError, values out of range ValueError, before anything changes.

    Example:
        >>> import nnumpy
        >>> previous = nnumpy.kernels.set_tuning(min_bytes_per_thread=1 << 16)
        >>> previous
        {'min_bytes_per_thread': 1048576}
        >>> _ = nnumpy.kernels.set_tuning(**previous)
    """
    checked = {name: _checked(name, value) for name, value in changes.items()}
    previous = {name: settings[name] for name in checked}
    settings.update(checked)
    _changes[0] += 1
    return previous


@contextmanager
def tuning(**changes):
    """Context manager: ``set_tuning(**changes)`` inside the block, the previous
    values after it; yields the settings in use.

    Example:
        >>> import numpy as np, nnumpy
        >>> conv = nnumpy.Conv2d(3, 4, 3)
        >>> with nnumpy.kernels.tuning(chunk_bytes=1, min_bytes_per_thread=1, threads=2):
        ...     y = conv.forward(np.ones((4, 3, 8, 8), np.float32))  # one sample per chunk, 2 threads
        >>> y.shape
        (4, 4, 8, 8)
    """
    previous = set_tuning(**changes)
    try:
        yield get_tuning()
    finally:
        set_tuning(**previous)
