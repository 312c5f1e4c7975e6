"""Batch normalisation: the seeds' ``BatchNormalization`` + ``ChannelwiseScaling``
pair and PyTorch's affine ``BatchNorm1d`` / ``BatchNorm2d``.

All of them normalise per feature over the batch (2-D input ``(N, C)``) or per
channel over batch and space (``(N, C, L)`` or ``(N, C, H, W)``), and share the
kernels below. Every batch statistic is a mean computed by ``_batch_mean``;
data-parallel training replaces ``stats_sync`` to average those sums over
processes (synchronised BatchNorm).
"""

import numpy as np

from .._checks import check_input, check_positive_int
from ..backend import DEFAULT_DTYPE, resolve_rng
from ..module import Module

__all__ = ["BatchNormalization", "ChannelwiseScaling", "BatchNorm1d", "BatchNorm2d", "BatchNorm"]


def channel_axes(x):
    """Reduction axes and the broadcast shape of a per-channel vector for ``x``."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return axes, shape


def batchnorm_normalize(x, mean, var, eps, shape):
    """``xhat = (x - mean) / sqrt(var + eps)``; returns ``(xhat, inv_std)``."""
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    return xhat, inv_std


def batchnorm_backward(grad_xhat, xhat, inv_std, shape, batch_mean):
    """Gradient w.r.t. ``x`` of training-mode normalisation, given the gradient
    w.r.t. ``xhat``: ``inv_std * (g - mean(g) - xhat * mean(g * xhat))``."""
    mean_g = batch_mean(grad_xhat)
    mean_gx = batch_mean(grad_xhat * xhat)
    return (grad_xhat - mean_g.reshape(shape) - xhat * mean_gx.reshape(shape)) * inv_std.reshape(shape)


class _BatchStatistics(Module):
    """Shared machinery: the batch mean hook, the normalise step, the backward."""

    stats_sync = None  # callable(local_sum, count) -> (global_sum, global_count)

    def _batch_mean(self, a):
        axes, _ = channel_axes(a)
        total = a.sum(axis=axes)
        count = a.size // a.shape[1]
        if self.stats_sync is not None:
            total, count = self.stats_sync(total, count)
        self._stats_count = count  # the (global) count behind the last batch statistic
        return total / count

    def _check(self, input, n_features):
        layout = f"(N, {n_features}) or (N, {n_features}, L) or (N, {n_features}, H, W)" if n_features else None
        check_input(self, input, ndim=(2, 3, 4), features=n_features, layout=layout)

    def _normalize_train(self, input, eps):
        """Normalise with batch statistics; returns ``(xhat, mean, biased_var, count)``."""
        _, shape = channel_axes(input)
        mean = self._batch_mean(input)
        centered = input - mean.reshape(shape)
        var = self._batch_mean(centered * centered)
        inv_std = 1.0 / np.sqrt(var + eps)
        self._xhat = centered * inv_std.reshape(shape)
        self._inv_std = inv_std
        return self._xhat, mean, var, self._stats_count

    def _normalize_eval(self, input, mean, var, eps):
        _, shape = channel_axes(input)
        self._xhat, self._inv_std = batchnorm_normalize(
            input, mean.astype(input.dtype, copy=False), var.astype(input.dtype, copy=False), eps, shape
        )
        return self._xhat

    def _grad_from_xhat(self, grad_xhat):
        _, shape = channel_axes(grad_xhat)
        if self.training:
            return batchnorm_backward(grad_xhat, self._xhat, self._inv_std, shape, self._batch_mean)
        return grad_xhat * self._inv_std.reshape(shape)


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
        if self.training:
            xhat, mean, var, _ = self._normalize_train(input, self.EPS)
            keep = self.alpha
            self.moving_mean *= keep
            self.moving_mean += (1 - keep) * mean
            self.moving_variance *= keep
            self.moving_variance += (1 - keep) * var
        else:
            xhat = self._normalize_eval(input, self.moving_mean, self.moving_variance, self.EPS)
        self.output = xhat
        return xhat

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._grad_from_xhat(gradOutput)
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
        _, shape = channel_axes(input)
        self.output = input * self.gamma.astype(input.dtype, copy=False).reshape(shape) + self.beta.astype(
            input.dtype, copy=False
        ).reshape(shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        _, shape = channel_axes(input)
        self.gradInput = gradOutput * self.gamma.astype(gradOutput.dtype, copy=False).reshape(shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        axes, _ = channel_axes(input)
        self.gradGamma += (gradOutput * input).sum(axis=axes)
        self.gradBeta += gradOutput.sum(axis=axes)

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
        if self.training:
            xhat, mean, var, count = self._normalize_train(input, self.eps)
            m = self.momentum
            unbiased = var * (count / max(count - 1, 1))
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * unbiased
        else:
            xhat = self._normalize_eval(input, self.running_mean, self.running_var, self.eps)
        if self.affine:
            _, shape = channel_axes(input)
            self.output = xhat * self.weight.astype(input.dtype, copy=False).reshape(shape)
            self.output += self.bias.astype(input.dtype, copy=False).reshape(shape)
        else:
            self.output = xhat
        return self.output

    def updateGradInput(self, input, gradOutput):
        grad_xhat = gradOutput
        if self.affine:
            _, shape = channel_axes(input)
            grad_xhat = gradOutput * self.weight.astype(gradOutput.dtype, copy=False).reshape(shape)
        self.gradInput = self._grad_from_xhat(grad_xhat)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        if self.affine:
            axes, _ = channel_axes(gradOutput)
            self.gradWeight += (gradOutput * self._xhat).sum(axis=axes)
            self.gradBias += gradOutput.sum(axis=axes)

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
