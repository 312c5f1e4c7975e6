"""Batch normalisation: the seeds' ``BatchNormalization`` + ``ChannelwiseScaling``
pair and PyTorch's affine ``BatchNorm1d`` / ``BatchNorm2d``.

All of them normalise per feature over the batch (2-D input ``(N, C)``) or per
channel over batch and space (``(N, C, L)`` or ``(N, C, H, W)``)::

    y = (x - mean) / sqrt(var + eps) * weight + bias

with the batch's mean and (biased) variance in training mode, the running
statistics in evaluate mode. The kernels (``nnumpy.kernels.batchnorm``) take
the input as an ``(M, C)`` matrix with channels last (``channel_rows``), so
each statistic is a column reduction and the output keeps the input's memory
order. Every batch statistic is a mean of per-channel sums (``_mean_of``);
data-parallel training sets ``stats_sync`` to add those sums over processes
(synchronised BatchNorm).
"""

import numpy as np

from .._checks import as_shape, check_input, check_positive_int, shape_probe
from ..anomaly import check_statistics
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..kernels.batchnorm import (
    batchnorm_backward_train,
    batchnorm_forward_train,
    channel_rows,
    column_sums,
    from_rows,
    scale_shift,
)
from ..module import Module

__all__ = ["BatchNormalization", "ChannelwiseScaling", "BatchNorm1d", "BatchNorm2d", "BatchNorm"]


class _BatchStatistics(Module):
    """Shared machinery of the batch norms: normalisation with the batch's or
    the running statistics, and its backward.

    Training forward: ``y = (x - mean) * inv_std * weight + bias`` with the
    batch's ``mean`` and ``inv_std = 1 / sqrt(var + eps)``; backward
    ``gradInput = (gh - mean(gh) - xhat * mean(gh * xhat)) * inv_std`` with
    ``gh = g * weight`` and ``xhat = (x - mean) * inv_std``. Evaluate mode: the
    running statistics are constants, so ``y = x * scale + shift`` and
    ``gradInput = g * scale`` with ``scale = inv_std * weight``.
    """

    stats_sync = None  # callable(local_sum, count) -> (global_sum, global_count)

    def __init__(self):
        super().__init__()
        self._used_batch_stats = False  # the last forward normalised with the batch's statistics
        self._centered = None  # x - mean of the last training forward, (M, C) channels-last
        self._eval_mean = None  # the running mean the last evaluate-mode forward used
        self._inv_std = None  # 1 / sqrt(var + eps) of the last forward, (C,)
        self._count = None  # how many rows the last batch statistics covered (over all processes)
        self._scratch = None  # a buffer backward reuses from call to call

    def _mean_of(self, local_sum, count):
        if self.stats_sync is not None:
            local_sum, count = self.stats_sync(local_sum, count)  # every rank gets the same count
        if count == 0:
            raise ValueError(
                f"{self!r}: training mode needs at least one value per channel to compute batch statistics, got an "
                "empty batch (N = 0); skip empty batches, or call evaluate() to normalise them with the running "
                "statistics"
            )
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
                rows, weight, bias, eps, self._mean_of, centered_out=self._centered
            )
            # synchronised statistics are the same on every rank: all ranks raise together
            check_statistics(self, mean, var)
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
            # the affine layers' accGradParameters needs the same sums: computed once
            sums = self._grad_sums(input, gradOutput, keep=weight is not None and not self._frozen)
            grad, self._scratch = batchnorm_backward_train(
                rows, self._centered, self._inv_std, weight, sums, self._mean_of, scratch=self._scratch
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

    @classmethod
    def parameter_shapes(cls, config):
        """The moving statistics, ``(n_feats,)`` each, when ``n_feats`` is given
        (otherwise sized at the first batch, from the file when loading)."""
        n = config.get("n_feats")
        return {} if n is None else {"moving_mean": (n,), "moving_variance": (n,)}

    def _init_moving(self, n, dtype):
        self.moving_mean = np.zeros(n, dtype=dtype)
        self.moving_variance = np.ones(n, dtype=dtype)

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it."""
        shape = as_shape(self, input_shape)
        self._check(shape_probe(shape), self.moving_mean.shape[0] if self.moving_mean is not None else None)
        return shape

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

    @classmethod
    def parameter_shapes(cls, config):
        """``gamma`` and ``beta``: ``(n_out,)`` (model files check them before building)."""
        return {"gamma": (config["n_out"],), "beta": (config["n_out"],)}

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it."""
        shape = as_shape(self, input_shape)
        n = self.gamma.shape[0]
        check_input(self, shape_probe(shape), ndim=(2, 3, 4), features=n, layout=f"(N, {n}) or (N, {n}, *)")
        return shape

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

    @classmethod
    def parameter_shapes(cls, config):
        """``weight``, ``bias`` (when affine), ``running_mean``, ``running_var``:
        ``(num_features,)`` each (model files check them before building)."""
        names = (["weight", "bias"] if config.get("affine", True) else []) + ["running_mean", "running_var"]
        return {n: (config["num_features"],) for n in names}

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it."""
        shape, c = as_shape(self, input_shape), self.num_features
        check_input(self, shape_probe(shape), ndim=self._ndims, features=c, layout=self._layout.format(c=c))
        return shape

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
