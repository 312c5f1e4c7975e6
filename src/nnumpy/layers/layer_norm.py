"""Per-sample normalisation (PyTorch's names, arguments and parameter names):
``LayerNorm`` over the trailing dims, ``GroupNorm`` over groups of channels,
``InstanceNorm1d`` / ``InstanceNorm2d`` over each channel's positions.

Each normalises groups of values *within one sample*, so train and evaluate
modes compute the same thing and the batch size does not matter. The kernels
work on the input as an ``(M, D)`` matrix, one normalised group per row:
``mean`` and ``var`` are row reductions, the affine parameters (if any) are
per column.
"""

import numpy as np

from .._checks import as_shape, check_float_array, check_input, check_positive_int, check_real, shape_probe
from ..anomaly import check_statistics
from ..backend import DEFAULT_DTYPE, get_array_module
from ..module import Module

__all__ = ["LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d"]


def _check_eps(name, eps):
    eps = check_real(name, "eps", eps)
    if not eps > 0:
        raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
    return eps


def rownorm_forward(rows, eps):
    """``(xhat, inv_std, mean, var)`` of ``rows`` (M, D): ``xhat = (x - mean) * inv_std``
    with ``inv_std = 1 / sqrt(var + eps)``, mean and biased variance ``(M,)`` per row.
    The variance is the mean of squared deviations (two passes: ``E[x^2] -
    E[x]^2`` cancels catastrophically in float32)."""
    xp = get_array_module(rows)
    d = rows.shape[1]
    mean = rows.sum(axis=1, keepdims=True) / rows.dtype.type(d)
    xhat = rows - mean
    var = xp.einsum("ij,ij->i", xhat, xhat) / rows.dtype.type(d)
    inv_std = 1.0 / xp.sqrt(var + rows.dtype.type(eps))
    xhat *= inv_std[:, None]
    return xhat, inv_std, mean[:, 0], var


def rownorm_backward(grad_rows, xhat, inv_std):
    """Gradient w.r.t. ``x`` of ``xhat`` for ``gh = dL/dxhat`` (M, D):
    ``inv_std * (gh - mean(gh) - xhat * mean(gh * xhat))`` per row."""
    xp = get_array_module(grad_rows)
    d = grad_rows.dtype.type(grad_rows.shape[1])
    mean_g = grad_rows.sum(axis=1, keepdims=True) / d
    mean_gx = xp.einsum("ij,ij->i", grad_rows, xhat)[:, None] / d
    grad = grad_rows - mean_g
    grad -= xhat * mean_gx
    grad *= inv_std[:, None]
    return grad


class LayerNorm(Module):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics over the
    trailing ``len(normalized_shape)`` dims of each sample (PyTorch's ``LayerNorm``).

    ``mean`` and the biased ``var`` are taken over the last ``D =
    prod(normalized_shape)`` values of every sample; train and evaluate modes
    are the same (no running statistics).

    Args:
        normalized_shape: int or tuple: the trailing shape to normalise over.
        eps: added to the variance (1e-5).
        elementwise_affine: learn ``weight`` (and ``bias``) of shape
            ``normalized_shape`` (True).
        bias: learn ``bias`` too, when ``elementwise_affine`` (True).
        dtype: parameter dtype (float32).

    Shape:
        Input ``(*, *normalized_shape)``; output the same.

    Attributes:
        weight: ``normalized_shape``, ones; bias: ``normalized_shape``, zeros
        (None when not learnt); gradWeight, gradBias.

    Backward (``xhat = (x - mean) / sqrt(var + eps)``, ``gh = g * weight``, means over the D values):
        ``gradInput = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)``;
        ``gradWeight += sum(g * xhat)``, ``gradBias += sum(g)`` over the leading dims.

    Example:
        >>> import numpy as np
        >>> ln = LayerNorm(4)
        >>> y = ln.forward(np.array([[1.0, 2.0, 3.0, 4.0]]))
        >>> np.round(y, 4).tolist()
        [[-1.3416, -0.4472, 0.4472, 1.3416]]
    """

    _parameters = (("weight", "gradWeight"), ("bias", "gradBias"))

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=DEFAULT_DTYPE):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(
                f"LayerNorm: normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
            ) from None
        if not shape:
            raise ValueError("LayerNorm: normalized_shape must not be empty")
        self.normalized_shape = tuple(check_positive_int("LayerNorm", "normalized_shape", d) for d in shape)
        self.eps = _check_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        with_bias = self.elementwise_affine and bool(bias)
        self.weight = np.ones(self.normalized_shape, dtype=dtype) if self.elementwise_affine else None
        self.bias = np.zeros(self.normalized_shape, dtype=dtype) if with_bias else None
        self.gradWeight = None if self.weight is None else np.zeros_like(self.weight)
        self.gradBias = None if self.bias is None else np.zeros_like(self.bias)

    @classmethod
    def parameter_shapes(cls, config):
        """``weight`` and ``bias``: ``normalized_shape`` each (model files check them before building)."""
        shape = config["normalized_shape"]
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        affine = bool(config.get("elementwise_affine", True))
        names = [n for n, on in (("weight", affine), ("bias", affine and bool(config.get("bias", True)))) if on]
        return {n: shape for n in names}

    def _rows(self, a):
        d = int(np.prod(self.normalized_shape))
        return a.reshape(-1, d)

    def output_shape(self, input_shape):
        """The input's shape, whose last axes must be ``normalized_shape``."""
        shape = as_shape(self, input_shape)
        k = len(self.normalized_shape)
        if len(shape) < k or shape[len(shape) - k :] != self.normalized_shape:
            want = "(*, " + ", ".join(str(d) for d in self.normalized_shape) + ")"
            raise ValueError(f"{self!r}: expected input of shape {want}, got {shape}")
        return shape

    def updateOutput(self, input):
        check_float_array(self, input)
        k = len(self.normalized_shape)
        if input.ndim < k or tuple(input.shape[input.ndim - k :]) != self.normalized_shape:
            want = "(*, " + ", ".join(str(d) for d in self.normalized_shape) + ")"
            raise ValueError(f"{self!r}: expected input of shape {want}, got {tuple(input.shape)}")
        self._xhat, self._inv_std, _, _ = rownorm_forward(self._rows(input), self.eps)
        y = self._xhat
        if self.weight is not None:
            y = y * self.weight.reshape(-1).astype(input.dtype, copy=False)
        if self.bias is not None:
            y = y + self.bias.reshape(-1).astype(input.dtype, copy=False)
        self.output = y.reshape(input.shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        g = self._rows(gradOutput)
        if self.weight is not None:
            g = g * self.weight.reshape(-1).astype(gradOutput.dtype, copy=False)
        self.gradInput = rownorm_backward(g, self._xhat, self._inv_std).reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        if self.weight is None:
            return
        xp = get_array_module(gradOutput)
        g = self._rows(gradOutput)
        self.gradWeight += xp.einsum("ij,ij->j", g, self._xhat).reshape(self.normalized_shape)
        if self.bias is not None:
            self.gradBias += xp.einsum("ij->j", g).reshape(self.normalized_shape)

    def extra_repr(self):
        text = f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        return text if not self.elementwise_affine or self.bias is not None else text + ", bias=False"


class _ChannelGroupNorm(Module):
    """Shared machinery of GroupNorm and InstanceNorm: the input ``(N, C, *)``
    is normalised per sample over groups of ``C / groups`` channels and all
    positions (rows of the ``(N * groups, D)`` matrix), then scaled and
    shifted per channel."""

    _parameters = (("weight", "gradWeight"), ("bias", "gradBias"))

    @classmethod
    def parameter_shapes(cls, config):
        """``weight``, ``bias`` (when affine) and the running statistics (when
        tracked): one value per channel each."""
        channels = config["num_channels"] if "num_channels" in config else config["num_features"]
        names = ["weight", "bias"] if config.get("affine", "num_channels" in config) else []
        names += ["running_mean", "running_var"] if config.get("track_running_stats", False) else []
        return {n: (channels,) for n in names}

    def _init_affine(self, channels, affine, dtype):
        self.affine = bool(affine)
        self.weight = np.ones(channels, dtype=dtype) if self.affine else None
        self.bias = np.zeros(channels, dtype=dtype) if self.affine else None
        self.gradWeight = None if self.weight is None else np.zeros_like(self.weight)
        self.gradBias = None if self.bias is None else np.zeros_like(self.bias)

    def _per_channel(self, v, like):
        """A per-channel vector ``(C,)`` shaped to broadcast against ``(N, C, S)``, in ``like``'s dtype."""
        return v.astype(like.dtype, copy=False)[:, None]

    def _normalise(self, x3, groups):
        """Normalise ``x3`` (N, C, S) per sample over groups of channels; keeps what backward needs."""
        n, c, s = x3.shape
        xhat, self._inv_std, mean, var = rownorm_forward(x3.reshape(n * groups, c // groups * s), self.eps)
        self._xhat = xhat.reshape(x3.shape)
        self._groups = groups
        return mean, var

    def _affine_out(self, xhat3):
        if not self.affine:
            return xhat3
        return xhat3 * self._per_channel(self.weight, xhat3) + self._per_channel(self.bias, xhat3)

    def _grad_normalised(self, g3):
        """Gradient w.r.t. the input ``(N, C, S)`` from ``g3``, the gradient w.r.t. the output."""
        rows = (g3.shape[0] * self._groups, g3[0].size // self._groups if g3.shape[0] else 0)
        gh = g3 * self._per_channel(self.weight, g3) if self.affine else g3
        grad = rownorm_backward(gh.reshape(rows), self._xhat.reshape(rows), self._inv_std)
        return grad.reshape(g3.shape)

    def _acc_affine(self, g3):
        if self.affine:
            xp = get_array_module(g3)
            self.gradWeight += xp.einsum("ncs,ncs->c", g3, self._xhat)
            self.gradBias += xp.einsum("ncs->c", g3)


class GroupNorm(_ChannelGroupNorm):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics per
    sample over each group of ``num_channels / num_groups`` channels and all
    their positions (PyTorch's ``GroupNorm``). Train and evaluate modes are the same.

    Args:
        num_groups: G, dividing ``num_channels``.
        num_channels: C.
        eps: added to the variance (1e-5).
        affine: learn a per-channel ``weight`` and ``bias`` (True).
        dtype: parameter dtype (float32).

    Shape:
        Input ``(N, C, *)``; output the same.

    Attributes:
        weight: ``(C,)`` ones; bias: ``(C,)`` zeros (None without affine); gradWeight, gradBias.

    Backward (per group, ``xhat`` the normalised input, ``gh = g * weight``, means over the group):
        ``gradInput = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)``;
        ``gradWeight += sum(g * xhat)``, ``gradBias += sum(g)`` over every axis but C.

    Example:
        >>> import numpy as np
        >>> gn = GroupNorm(2, 4)
        >>> y = gn.forward(np.arange(16.0).reshape(2, 4, 2))
        >>> y.shape, bool(abs(y[0, :2].mean()) < 1e-12)
        ((2, 4, 2), True)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=DEFAULT_DTYPE):
        super().__init__()
        self.num_groups = check_positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = check_positive_int("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.eps = _check_eps("GroupNorm", eps)
        self._init_affine(self.num_channels, affine, dtype)

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it."""
        shape, c = as_shape(self, input_shape), self.num_channels
        check_input(self, shape_probe(shape), ndim=range(2, 33), features=c, layout=f"(N, {c}, *)")
        if c // self.num_groups * int(np.prod(shape[2:])) == 1:
            raise ValueError(f"{self!r}: expected more than 1 value per group, got input of shape {shape}")
        return shape

    def updateOutput(self, input):
        c = self.num_channels
        check_input(self, input, ndim=range(2, 33), features=c, layout=f"(N, {c}, *)")
        x3 = input.reshape(input.shape[0], c, int(np.prod(input.shape[2:])))
        if c // self.num_groups * x3.shape[2] == 1:
            raise ValueError(f"{self!r}: expected more than 1 value per group, got input of shape {input.shape}")
        self._normalise(x3, self.num_groups)
        self.output = self._affine_out(self._xhat).reshape(input.shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        g3 = gradOutput.reshape(self._xhat.shape)
        self.gradInput = self._grad_normalised(g3).reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self._acc_affine(gradOutput.reshape(self._xhat.shape))

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_ChannelGroupNorm):
    """PyTorch's instance norm: each channel of each sample normalised over its positions."""

    _buffers = ("running_mean", "running_var")
    _spatial = 1

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, dtype=DEFAULT_DTYPE
    ):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_positive_int(name, "num_features", num_features)
        self.eps = _check_eps(name, eps)
        momentum = check_real(name, "momentum", momentum)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
        self.momentum = momentum
        self.track_running_stats = bool(track_running_stats)
        self._init_affine(self.num_features, affine, dtype)
        self.running_mean = np.zeros(num_features, dtype=dtype) if self.track_running_stats else None
        self.running_var = np.ones(num_features, dtype=dtype) if self.track_running_stats else None

    def _batched(self, input):
        """``input`` as ``(N, C, S)``, checked (an unbatched ``(C, *)`` input is a batch of one)."""
        c, k = self.num_features, self._spatial
        dims = ", ".join("HW"[i] if k == 2 else "L" for i in range(k))
        check_input(self, input, ndim=(k + 1, k + 2), layout=f"(N, {c}, {dims}) or ({c}, {dims})")
        x = input if input.ndim == k + 2 else input[None]
        if x.shape[1] != c:
            raise ValueError(f"{self!r}: expected input of shape (N, {c}, {dims}) or ({c}, {dims}), got {input.shape}")
        return x.reshape(x.shape[0], c, int(np.prod(x.shape[2:])))

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it (in training mode,
        more than one position per channel)."""
        shape = as_shape(self, input_shape)
        x3 = self._batched(shape_probe(shape))
        if (self.training or not self.track_running_stats) and x3.shape[2] <= 1:
            raise ValueError(f"{self!r}: expected more than 1 spatial element when training, got {shape}")
        return shape

    def updateOutput(self, input):
        x3 = self._batched(input)
        self._used_input_stats = self.training or not self.track_running_stats
        if self._used_input_stats:
            if x3.shape[2] <= 1:
                raise ValueError(f"{self!r}: expected more than 1 spatial element when training, got {input.shape}")
            mean, var = self._normalise(x3, self.num_features)
            if self.track_running_stats and x3.shape[0] > 0:
                s, m = x3.shape[2], self.momentum
                batch_mean = mean.reshape(x3.shape[:2]).mean(axis=0)
                batch_var = var.reshape(x3.shape[:2]).mean(axis=0) * (s / (s - 1))  # unbiased, as PyTorch
                check_statistics(self, batch_mean, batch_var)  # before the running statistics change
                self.running_mean *= 1 - m
                self.running_mean += m * batch_mean
                self.running_var *= 1 - m
                self.running_var += m * batch_var
        else:
            xp = get_array_module(x3)
            mean = self._per_channel(self.running_mean, x3)
            self._channel_inv_std = 1.0 / xp.sqrt(self._per_channel(self.running_var, x3) + x3.dtype.type(self.eps))
            self._xhat = (x3 - mean) * self._channel_inv_std
        self.output = self._affine_out(self._xhat).reshape(input.shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        g3 = gradOutput.reshape(self._xhat.shape)
        if self._used_input_stats:
            grad = self._grad_normalised(g3)
        else:
            scale = self._channel_inv_std
            grad = g3 * (scale * self._per_channel(self.weight, g3) if self.affine else scale)
        self.gradInput = grad.reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self._acc_affine(gradOutput.reshape(self._xhat.shape))

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics per
    sample and channel over the length L (PyTorch's ``InstanceNorm1d``).

    Args:
        num_features: C (the input's channel axis must have that size).
        eps: added to the variance (1e-5).
        momentum: running statistics update ``running = (1 - momentum) *
            running + momentum * mean over the batch of the instance statistics`` (0.1).
        affine: learn a per-channel ``weight`` and ``bias`` (False, as PyTorch).
        track_running_stats: keep ``running_mean`` / ``running_var`` (the
            unbiased instance variance, as PyTorch) and use them in evaluate
            mode (False: instance statistics in both modes).
        dtype: parameter and buffer dtype (float32).

    Shape:
        Input ``(N, C, L)`` or ``(C, L)``; output the same. Training with
        instance statistics needs ``L > 1``.

    Attributes:
        weight: ``(C,)`` ones; bias: ``(C,)`` zeros (None unless affine);
        running_mean: ``(C,)`` zeros, running_var: ``(C,)`` ones (None unless tracked).

    Backward (instance statistics; ``xhat`` normalised, ``gh = g * weight``, means over L):
        ``gradInput = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)``;
        with running statistics ``gradInput = gh / sqrt(running_var + eps)``;
        ``gradWeight += sum(g * xhat)``, ``gradBias += sum(g)`` over N and L.

    Example:
        >>> import numpy as np
        >>> y = InstanceNorm1d(2).forward(np.array([[[1.0, 3.0], [2.0, 2.0]]]))
        >>> np.round(y, 3).tolist()
        [[[-1.0, 1.0], [0.0, 0.0]]]
    """

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics per
    sample and channel over ``H, W`` (PyTorch's ``InstanceNorm2d``).

    Same arguments, attributes and formulas as ``InstanceNorm1d``.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output the same.

    Example:
        >>> import numpy as np
        >>> y = InstanceNorm2d(3, affine=True).forward(np.random.default_rng(0).normal(size=(2, 3, 4, 4)))
        >>> bool(np.allclose(y.mean(axis=(2, 3)), 0))
        True
    """

    _spatial = 2
