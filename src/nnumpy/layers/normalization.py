"""Batch normalisation: the seeds' ``BatchNormalization`` + ``ChannelwiseScaling``
pair and PyTorch's affine ``BatchNorm1d`` / ``BatchNorm2d``.

All of them normalise per feature over the batch (2-D input ``(N, C)``) or per
channel over batch and space (``(N, C, L)`` or ``(N, C, H, W)``), and share the
kernels below. They work on the input as an ``(M, C)`` matrix with channels
last (a view of what ``Conv2d`` outputs), so each per-channel statistic is a
column reduction (``einsum('ij->j')``) and the output stays channels-last.
Every batch statistic is a mean computed from per-channel sums by
``_mean_of``; data-parallel training sets ``stats_sync`` to add those sums
over processes (synchronised BatchNorm).
"""

import numpy as np

from .._checks import check_input, check_positive_int
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..module import Module
from ..parallel import parallel_for

__all__ = ["BatchNormalization", "ChannelwiseScaling", "BatchNorm1d", "BatchNorm2d", "BatchNorm"]


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


def _reuse(buffer, like):
    """``buffer`` when it can hold an array like ``like`` (a private buffer of
    the previous call: reusing it saves allocating and page-faulting), else a new one."""
    if buffer is not None and buffer.shape == like.shape and buffer.dtype == like.dtype:
        return buffer
    return get_array_module(like).empty(like.shape, like.dtype)


WIDE_ROW = 512  # values per row of the widened (M/k, k*C) views below


def _widening(rows, *others):
    """``k`` such that ``rows`` (M, C) and ``others`` (same shape) can be viewed
    as ``(M/k, k*C)``: NumPy runs one inner loop per row, and rows of C = 32
    values spend as much time in loop overhead as in arithmetic (rows of
    ~512 values: the per-channel passes take 12-23 % less time). 1 when an
    array is not C-contiguous."""
    m, c = rows.shape
    if not all(a.flags.c_contiguous for a in (rows, *others)):
        return 1
    k = 1
    while 2 * k * c <= WIDE_ROW and m % (2 * k) == 0:
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
    """Per-column sums of ``arrays[0]`` (M, C) and, given a second array, of
    the product ``arrays[0] * arrays[1]`` (``einsum``: 4x faster than
    ``sum(axis=0)``), each computed over row pieces on nnumpy's threads."""
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
    """``rows * scale + shift`` per column (``shift`` may be None), on nnumpy's threads."""
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


def batchnorm_forward_train(rows, weight, bias, eps, mean_of, centered_out=None):
    """Training-mode normalisation of ``rows`` (M, C) with batch statistics.

    ``y = (x - mean) * weight / sqrt(var + eps) + bias`` (``weight``/``bias``
    may be None). ``mean_of(local_sum, count)`` turns per-channel sums into
    means (over all processes under synchronised BatchNorm). Returns
    ``(y, mean, biased_var, centered, inv_std)``; backward needs ``centered`` and ``inv_std``.
    ``centered_out``: the previous call's ``centered``, reused when it fits.
    The variance is the mean of squared deviations (two passes, not
    ``E[x^2] - E[x]^2``, which cancels catastrophically in float32).
    """
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


def batchnorm_backward_train(grad_rows, centered, inv_std, weight, sums, mean_of, scratch=None):
    """Gradient w.r.t. ``x`` of training-mode normalisation:
    ``inv_std * w * (g - mean(g) - xhat * mean(g * xhat))`` with
    ``xhat = centered * inv_std``, written as ``a*g + b*centered + c`` per
    channel. ``sums = (sum(g), sum(g * centered))`` per channel (local).
    ``scratch``: a private buffer like ``grad_rows`` for the temporary ``a*g``.
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


class _BatchStatistics(Module):
    """Shared machinery: the statistics hook, train/eval normalisation, backward.

    Works on the ``(M, C)`` channels-last matrix of the input (``channel_rows``),
    so every per-channel reduction is a reduction over rows and the output
    keeps channels-last memory.
    """

    stats_sync = None  # callable(local_sum, count) -> (global_sum, global_count)

    def _mean_of(self, local_sum, count):
        if self.stats_sync is not None:
            local_sum, count = self.stats_sync(local_sum, count)
        self._count = count
        return local_sum / count

    def _check(self, input, n_features):
        layout = f"(N, {n_features}) or (N, {n_features}, L) or (N, {n_features}, H, W)" if n_features else None
        check_input(self, input, ndim=(2, 3, 4), features=n_features, layout=layout)

    def _affine(self, x):
        return None, None

    def _forward(self, input, eps, running):
        """Normalise ``input``; in training mode return the batch statistics
        ``(mean, biased_var, count)`` for the running averages, else None."""
        rows = channel_rows(input)
        weight, bias = self._affine(input)
        self._kept_for_acc = None
        # backward follows the statistics forward used, even if the mode changed in between
        self._used_batch_stats = bool(self.training)
        if self.training:
            y, mean, var, self._centered, self._inv_std = batchnorm_forward_train(
                rows, weight, bias, eps, self._mean_of, getattr(self, "_centered", None)
            )
            stats = (mean, var, self._count)
        else:
            mean, var = (a.astype(input.dtype, copy=False) for a in running)
            self._centered, self._eval_mean = None, mean
            self._inv_std = 1.0 / get_array_module(input).sqrt(var + input.dtype.type(eps))
            scale = self._inv_std if weight is None else self._inv_std * weight
            y = scale_shift(rows, scale, -mean * scale if bias is None else bias - mean * scale)
            stats = None
        self.output = from_rows(y, input.shape)
        return stats

    def _grad_sums(self, input, gradOutput, keep=False):
        """``(sum(g), sum(g * (x - mean)))`` per channel. With ``keep``, they are
        kept for the ``accGradParameters`` call that follows in the same backward
        (which reuses them for ``gradWeight``/``gradBias`` and drops them)."""
        cached = self._take_kept(gradOutput)
        if cached is not None:
            return cached
        rows = channel_rows(gradOutput)
        centered = self._centered if self._used_batch_stats else channel_rows(input) - self._eval_mean
        sums = column_sums(rows, centered)
        if keep:
            self._keep_for_acc(gradOutput, sums)
        return sums

    def _grad_input(self, input, gradOutput, weight):
        rows = channel_rows(gradOutput)
        if self._used_batch_stats:
            keep = not self._frozen and type(self)._parameters != () and getattr(self, "affine", False)
            sums = self._grad_sums(input, gradOutput, keep)
            grad, self._scratch = batchnorm_backward_train(
                rows, self._centered, self._inv_std, weight, sums, self._mean_of, getattr(self, "_scratch", None)
            )
        else:
            grad = scale_shift(rows, self._inv_std if weight is None else self._inv_std * weight, None)
        return from_rows(grad, gradOutput.shape)


class BatchNormalization(_BatchStatistics):
    """The seeds' normalisation without affine parameters:
    ``y = (x - mean) / sqrt(var + EPS)``.

    In training mode ``mean``/``var`` are the batch's (biased variance) and the
    moving statistics are updated as
    ``moving = moving * alpha + batch * (1 - alpha)``; in evaluate mode the
    moving statistics are used. Follow it with ``ChannelwiseScaling`` for the
    learnable scale and shift. This equals PyTorch's ``BatchNorm1d(C,
    eps=1e-3, momentum=1 - alpha, affine=False)`` for the output and running
    mean (PyTorch stores the *unbiased* running variance; this keeps the seeds'
    biased one).

    Args:
        alpha: moving-average keep factor (seed default 0.: the moving
            statistics are the last batch's).
        n_feats: optional number of features/channels, to size the moving
            statistics up front; otherwise they are sized by the first batch.

    Shape:
        Input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` (per channel);
        output the same.

    Attributes:
        EPS: 1e-3 (class attribute, as in the seeds).
        moving_mean: ``(C,)``, starts at 0. moving_variance: ``(C,)``, starts at 1.

    Backward (training mode):
        ``gradInput = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + EPS)``;
        evaluate mode: ``g / sqrt(moving_variance + EPS)``.
    """

    EPS = 1e-3
    _buffers = ("moving_mean", "moving_variance")

    def __init__(self, alpha=0.0, n_feats=None):
        super().__init__()
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"BatchNormalization: alpha must be in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.n_feats = None if n_feats is None else check_positive_int("BatchNormalization", "n_feats", n_feats)
        self.moving_mean = None
        self.moving_variance = None
        if self.n_feats is not None:
            self._init_moving(self.n_feats, DEFAULT_DTYPE)

    def _init_moving(self, n, dtype):
        self.moving_mean = np.zeros(n, dtype=dtype)
        self.moving_variance = np.ones(n, dtype=dtype)

    def updateOutput(self, input):
        features = self.moving_mean.shape[0] if self.moving_mean is not None else None
        self._check(input, features)
        if self.moving_mean is None:
            self._init_moving(input.shape[1], input.dtype)
        stats = self._forward(input, self.EPS, (self.moving_mean, self.moving_variance))
        if stats is not None:
            mean, var, _ = stats
            keep = self.alpha
            self.moving_mean *= keep
            self.moving_mean += (1 - keep) * mean
            self.moving_variance *= keep
            self.moving_variance += (1 - keep) * var
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._grad_input(input, gradOutput, None)
        return self.gradInput

    def extra_repr(self):
        return f"alpha={self.alpha}"


class ChannelwiseScaling(Module):
    """``y = gamma * x + beta`` per feature (2-D input) or per channel (N-D).

    Args:
        n_out: number of features/channels.
        dtype, rng: parameter dtype and initialisation generator.

    Shape:
        Input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; output the same.

    Attributes:
        gamma, beta: ``(C,)``, uniform in ``±1/sqrt(C)`` as in the seeds.
        gradGamma, gradBeta: accumulated gradients.

    Backward: ``gradInput = g * gamma``; ``gradGamma += sum(g * x)``;
    ``gradBeta += sum(g)`` over every axis but the channel axis.
    """

    _parameters = (("gamma", "gradGamma"), ("beta", "gradBeta"))

    def __init__(self, n_out, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.n_out = check_positive_int("ChannelwiseScaling", "n_out", n_out)
        rng = resolve_rng(rng)
        bound = 1.0 / np.sqrt(n_out)
        self.gamma = rng.uniform(-bound, bound, size=n_out).astype(dtype)
        self.beta = rng.uniform(-bound, bound, size=n_out).astype(dtype)
        self.gradGamma = np.zeros_like(self.gamma)
        self.gradBeta = np.zeros_like(self.beta)

    def updateOutput(self, input):
        n = self.gamma.shape[0]
        check_input(self, input, ndim=(2, 3, 4), features=n, layout=f"(N, {n}) or (N, {n}, *)")
        gamma, beta = (a.astype(input.dtype, copy=False) for a in (self.gamma, self.beta))
        self.output = from_rows(scale_shift(channel_rows(input), gamma, beta), input.shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        grad = scale_shift(channel_rows(gradOutput), self.gamma.astype(gradOutput.dtype, copy=False), None)
        self.gradInput = from_rows(grad, input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        sum_g, sum_gx = column_sums(channel_rows(gradOutput), channel_rows(input))
        self.gradGamma += sum_gx
        self.gradBeta += sum_g

    def extra_repr(self):
        return f"{self.gamma.shape[0]}"


class _BatchNorm(_BatchStatistics):
    """PyTorch's batch norm: ``y = (x - mean) / sqrt(var + eps) * weight + bias``."""

    _parameters = (("weight", "gradWeight"), ("bias", "gradBias"))
    _buffers = ("running_mean", "running_var")
    _ndims = (2, 3, 4)
    _layout = "(N, {c})"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=DEFAULT_DTYPE):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_positive_int(name, "num_features", num_features)
        if not float(eps) > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.weight = np.ones(num_features, dtype=dtype) if affine else None
        self.bias = np.zeros(num_features, dtype=dtype) if affine else None
        self.gradWeight = np.zeros_like(self.weight) if affine else None
        self.gradBias = np.zeros_like(self.bias) if affine else None
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)

    def updateOutput(self, input):
        c = self.num_features
        check_input(self, input, ndim=self._ndims, features=c, layout=self._layout.format(c=c))
        stats = self._forward(input, self.eps, (self.running_mean, self.running_var))
        if stats is not None:
            mean, var, count = stats
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (count / max(count - 1, 1))  # stored unbiased, as PyTorch
        return self.output

    def _affine(self, x):
        if not self.affine:
            return None, None
        return self.weight.astype(x.dtype, copy=False), self.bias.astype(x.dtype, copy=False)

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._grad_input(input, gradOutput, self._affine(gradOutput)[0])
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        if self.affine:
            sum_g, sum_gc = self._grad_sums(input, gradOutput)
            self.gradWeight += sum_gc * self._inv_std  # sum(g * xhat)
            self.gradBias += sum_g

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """PyTorch's ``BatchNorm1d``: per-feature normalisation with learnable affine.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``

    Args:
        num_features: C.
        eps: added to the variance (1e-5).
        momentum: running statistics update ``running = (1 - momentum) *
            running + momentum * batch`` (0.1).
        affine: learn ``weight`` and ``bias`` (True).

    Shape:
        Input ``(N, C)`` or ``(N, C, L)``; output the same.

    Attributes:
        weight: ``(C,)`` ones; bias: ``(C,)`` zeros; gradWeight, gradBias.
        running_mean: ``(C,)`` zeros; running_var: ``(C,)`` ones, stores the
        *unbiased* batch variance as PyTorch does (normalisation uses the biased one).

    Backward (training):
        ``gradInput = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)``
        with ``gh = g * weight``; ``gradWeight += sum(g * xhat)``; ``gradBias += sum(g)``.
    """

    _ndims = (2, 3)
    _layout = "(N, {c}) or (N, {c}, L)"


class BatchNorm2d(_BatchNorm):
    """PyTorch's ``BatchNorm2d``: per-channel statistics over ``N, H, W``.

    Same arguments, attributes and formulas as ``BatchNorm1d``.

    Shape:
        Input ``(N, C, H, W)``; output the same.

    Example:
        >>> import numpy as np
        >>> bn = BatchNorm2d(3)
        >>> y = bn.forward(np.random.default_rng(0).normal(size=(4, 3, 5, 5)).astype(np.float32))
        >>> bool(abs(y.mean()) < 1e-5), y.dtype
        (True, dtype('float32'))
    """

    _ndims = (4,)
    _layout = "(N, {c}, H, W)"


class BatchNorm(BatchNorm1d):
    """Seed 003's ``BatchNorm(num_features, eps)``: the affine 1-D batch norm,
    i.e. ``BatchNorm1d`` (same arguments, defaults and numbers). Seed 003's
    own default ``eps`` was 1e-8; pass it explicitly to reproduce that."""


# the public name of the base class every BatchNorm-family module shares:
# nnumpy.distributed's sync_batchnorm finds the modules whose statistics it synchronises by it
BatchStatistics = _BatchStatistics
