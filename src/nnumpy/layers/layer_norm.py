"""Per-sample normalisation: ``LayerNorm`` over the trailing dims (PyTorch's
names, arguments and parameter names).

Each normalises groups of values *within one sample*, so train and evaluate
modes compute the same thing and the batch size does not matter. The kernels
work on the input as an ``(M, D)`` matrix, one normalised group per row:
``mean`` and ``var`` are row reductions, the affine parameters (if any) are
per column.
"""

import numpy as np

from .._checks import check_float_array, check_positive_int, check_real
from ..backend import DEFAULT_DTYPE, get_array_module
from ..module import Module

__all__ = ["LayerNorm"]


def _check_eps(name, eps):
    eps = check_real(name, "eps", eps)
    if not eps > 0:
        raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
    return eps


def rownorm_forward(rows, eps):
    """``(xhat, inv_std)`` of ``rows`` (M, D): ``xhat = (x - mean) * inv_std``
    with ``inv_std = 1 / sqrt(var + eps)``, mean and biased variance per row.
    The variance is the mean of squared deviations (two passes: ``E[x^2] -
    E[x]^2`` cancels catastrophically in float32)."""
    xp = get_array_module(rows)
    d = rows.shape[1]
    mean = rows.sum(axis=1, keepdims=True) / rows.dtype.type(d)
    xhat = rows - mean
    var = xp.einsum("ij,ij->i", xhat, xhat) / rows.dtype.type(d)
    inv_std = 1.0 / xp.sqrt(var + rows.dtype.type(eps))
    xhat *= inv_std[:, None]
    return xhat, inv_std


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

    def _rows(self, a):
        d = int(np.prod(self.normalized_shape))
        return a.reshape(-1, d)

    def updateOutput(self, input):
        check_float_array(self, input)
        k = len(self.normalized_shape)
        if input.ndim < k or tuple(input.shape[input.ndim - k :]) != self.normalized_shape:
            want = "(*, " + ", ".join(str(d) for d in self.normalized_shape) + ")"
            raise ValueError(f"{self!r}: expected input of shape {want}, got {tuple(input.shape)}")
        self._xhat, self._inv_std = rownorm_forward(self._rows(input), self.eps)
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
