"""Batch normalisation over the rows of an ``(M, C)`` matrix: fast kernels and references.

Training mode, per column (channel) ``c`` over the ``M`` rows::

    mean = sum(x) / M            var = sum((x - mean)**2) / M      (two passes, biased)
    xhat = (x - mean) / sqrt(var + eps)                y = xhat * weight + bias
    grad_x = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps),   gh = g * weight

The layers hand their input over as that matrix with channels last (a view of
what ``Conv2d`` outputs), so every statistic is a column reduction.

The fast kernels compute the same with fewer passes over memory and on
nnumpy's threads: the column sums are ``einsum`` reductions over row pieces
(one per thread, added after); the backward is one fused pass
``a*g + b*centered + c`` per channel; a private buffer of the previous call
is reused instead of allocated; and when the matrix is contiguous, ``(M, C)``
is viewed as ``(M/k, k*C)`` rows of up to ``wide_row`` values
(``nnumpy.kernels.tuning``), with the per-channel vectors tiled ``k`` times,
because NumPy pays a loop overhead per row and rows of 32 values spend as
much time in it as in arithmetic. Every mean comes from per-channel sums
through ``mean_of(sum, count)``, which synchronised BatchNorm replaces to add
the sums over processes.
"""

from ..backend import get_array_module
from .config import settings
from .parallel import parallel_for

__all__ = [
    "channel_rows",
    "from_rows",
    "column_sums",
    "scale_shift",
    "batchnorm_forward_train",
    "batchnorm_backward_train",
    "column_sums_reference",
    "scale_shift_reference",
    "batchnorm_forward_train_reference",
    "batchnorm_backward_train_reference",
]


def channel_rows(x):
    """``x`` (N, C, *) as an ``(M, C)`` matrix, channels last: a view when
    ``x``'s memory is channels-last (what ``Conv2d`` outputs), else one copy."""
    if x.ndim == 2:
        return x
    return x.transpose(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def from_rows(rows, shape):
    """The ``(M, C)`` matrix back as an ``(N, C, *)`` view of the same memory."""
    if len(shape) == 2:
        return rows.reshape(shape)
    n, c, *spatial = shape
    return rows.reshape(n, *spatial, c).transpose(0, len(shape) - 1, *range(1, len(shape) - 1))


def mean_over_rows(local_sum, count):
    """The default ``mean_of``: ``sum / count``."""
    return local_sum / count


# ------------------------------------------------------------------ references
def column_sums_reference(a, b=None):
    """``sum(a, axis=0)``, and ``sum(a * b, axis=0)`` when ``b`` is given."""
    return a.sum(axis=0) if b is None else (a.sum(axis=0), (a * b).sum(axis=0))


def scale_shift_reference(rows, scale, shift):
    """``rows * scale + shift`` per column (``shift`` may be None)."""
    return rows * scale if shift is None else rows * scale + shift


def batchnorm_forward_train_reference(rows, weight, bias, eps, mean_of=mean_over_rows):
    """``(y, mean, var, centered, inv_std)`` as the formulas above (``weight``/``bias`` may be None)."""
    xp = get_array_module(rows)
    m = rows.shape[0]
    mean = mean_of(rows.sum(axis=0), m)
    centered = rows - mean
    var = mean_of((centered * centered).sum(axis=0), m)
    inv_std = 1.0 / xp.sqrt(var + eps)
    y = centered * inv_std
    if weight is not None:
        y = y * weight
    return (y if bias is None else y + bias), mean, var, centered, inv_std


def batchnorm_backward_train_reference(grad_rows, centered, inv_std, weight, mean_of=mean_over_rows):
    """``grad_x = (gh - mean(gh) - xhat * mean(gh * xhat)) * inv_std`` with ``gh = g * weight``."""
    m = grad_rows.shape[0]
    xhat = centered * inv_std
    gh = grad_rows if weight is None else grad_rows * weight
    return (gh - mean_of(gh.sum(axis=0), m) - xhat * mean_of((gh * xhat).sum(axis=0), m)) * inv_std


# ------------------------------------------------------------------ fast kernels
def _reuse(buffer, like):
    """``buffer`` when it can hold an array like ``like``, else a new one."""
    if buffer is not None and buffer.shape == like.shape and buffer.dtype == like.dtype:
        return buffer
    return get_array_module(like).empty(like.shape, like.dtype)


def _widening(rows, *others):
    """``k`` such that ``rows`` (M, C) and ``others`` (same shape) can be
    viewed as ``(M/k, k*C)`` with ``k*C <= wide_row``; 1 when an array is not
    C-contiguous."""
    m, c = rows.shape
    if not all(a.flags.c_contiguous for a in (rows, *others)):
        return 1
    k, wide_row = 1, settings["wide_row"]
    while 2 * k * c <= wide_row and m % (2 * k) == 0:
        k *= 2
    return k


def _wide(a, k):
    """``a`` (M, C) viewed as ``(M/k, k*C)``."""
    return a if k == 1 else a.reshape(a.shape[0] // k, k * a.shape[1])


def _tiled(v, k):
    """A per-channel vector ``(C,)`` repeated for the ``(M/k, k*C)`` view (None and scalars as they are)."""
    if k == 1 or v is None or getattr(v, "ndim", 0) == 0:
        return v
    return get_array_module(v).tile(v, k)


def _folded(total, k):
    """Per-column sums of a ``(M/k, k*C)`` view back to the ``(C,)`` sums."""
    return total if k == 1 else total.reshape(k, -1).sum(axis=0)


def _by_rows(fn, rows):
    """``fn(lo, hi)`` over row pieces of ``rows`` on nnumpy's threads; the list of results."""
    return parallel_for(fn, rows.shape[0], rows)


def column_sums(*arrays):
    """``column_sums_reference(*arrays)``: per-column sums of ``arrays[0]`` (M, C)
    and, given a second array, of the product ``arrays[0] * arrays[1]``
    (``einsum``, which makes no temporary), over row pieces on nnumpy's threads."""
    xp = get_array_module(arrays[0])
    k = _widening(*arrays)
    wide = [_wide(a, k) for a in arrays]
    if len(wide) == 1:
        (a,) = wide
        return _folded(sum(_by_rows(lambda lo, hi: xp.einsum("ij->j", a[lo:hi]), a)), k)
    a, b = wide
    parts = _by_rows(lambda lo, hi: (xp.einsum("ij->j", a[lo:hi]), xp.einsum("ij,ij->j", a[lo:hi], b[lo:hi])), a)
    return _folded(sum(p[0] for p in parts), k), _folded(sum(p[1] for p in parts), k)


def scale_shift(rows, scale, shift):
    """``scale_shift_reference``, on nnumpy's threads."""
    xp = get_array_module(rows)
    y = xp.empty(rows.shape, rows.dtype)
    k = _widening(rows, y)
    x, out, scale, shift = _wide(rows, k), _wide(y, k), _tiled(scale, k), _tiled(shift, k)

    def piece(lo, hi):
        xp.multiply(x[lo:hi], scale, out=out[lo:hi])
        if shift is not None:
            out[lo:hi] += shift

    _by_rows(piece, x)
    return y


def batchnorm_forward_train(rows, weight, bias, eps, mean_of=mean_over_rows, centered_out=None):
    """``batchnorm_forward_train_reference``: ``(y, mean, biased_var, centered,
    inv_std)``; backward needs ``centered`` and ``inv_std``. ``centered_out``:
    the previous call's ``centered``, reused when it fits. The variance is the
    mean of squared deviations (two passes, not ``E[x^2] - E[x]^2``, which
    cancels catastrophically in float32)."""
    xp = get_array_module(rows)
    mean = mean_of(column_sums(rows), rows.shape[0])
    centered = _reuse(centered_out, rows)
    k = _widening(rows, centered)
    x, xc, wide_mean = _wide(rows, k), _wide(centered, k), _tiled(mean, k)

    def center(lo, hi):
        c = xp.subtract(x[lo:hi], wide_mean, out=xc[lo:hi])
        return xp.einsum("ij,ij->j", c, c)

    var = mean_of(_folded(sum(_by_rows(center, x)), k), rows.shape[0])
    inv_std = 1.0 / xp.sqrt(var + eps)
    y = scale_shift(centered, inv_std if weight is None else inv_std * weight, bias)
    return y, mean, var, centered, inv_std


def batchnorm_backward_train(grad_rows, centered, inv_std, weight, sums, mean_of=mean_over_rows, scratch=None):
    """``batchnorm_backward_train_reference``, written as ``a*g + b*centered + c``
    per channel, given ``sums = column_sums(grad_rows, centered)`` (the local
    ``sum(g)`` and ``sum(g * centered)``, which ``accGradParameters`` also
    uses). ``scratch``: a private buffer like ``grad_rows`` for ``a*g``.
    Returns ``(grad, scratch)``."""
    xp = get_array_module(grad_rows)
    count = grad_rows.shape[0]
    sum_g, sum_gc = sums
    mean_g = mean_of(sum_g, count)
    mean_gxhat = mean_of(sum_gc * inv_std, count)
    a = inv_std if weight is None else inv_std * weight
    b, c = -a * inv_std * mean_gxhat, -a * mean_g
    grad = xp.empty(grad_rows.shape, grad_rows.dtype)
    scratch = _reuse(scratch, grad_rows)
    k = _widening(grad_rows, centered, grad, scratch)
    g, xc, out, tmp = (_wide(v, k) for v in (grad_rows, centered, grad, scratch))
    a, b, c = (_tiled(v, k) for v in (a, b, c))

    def piece(lo, hi):
        o = xp.multiply(xc[lo:hi], b, out=out[lo:hi])
        o += c
        o += xp.multiply(g[lo:hi], a, out=tmp[lo:hi])

    _by_rows(piece, g)
    return grad, scratch
