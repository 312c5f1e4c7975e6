"""Fully connected layer."""

import numpy as np

from .._checks import as_shape, check_float_array, check_positive_int
from ..backend import DEFAULT_DTYPE, resolve_rng
from ..kernels.matmul import matmul
from ..module import Module

__all__ = ["Linear"]


def _rows(a):
    """``(*, F)`` as the ``(M, F)`` matrix of its rows (a view when it can be)."""
    return a if a.ndim == 2 else a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])

def as_dtype_of(param, x):
    """``param`` in ``x``'s float dtype, so a float32 input never meets a float64 weight."""
    return param if param.dtype == x.dtype else param.astype(x.dtype)


class Linear(Module):
    """Affine map ``y = x @ W.T + b``.

    Args:
        n_in: input features.
        n_out: output features.
        bias: learn an additive bias (default True).
        dtype: parameter dtype (float32 by default).
        rng: seed or ``numpy.random.Generator`` for initialisation.

    Shape:
        Input ``(*, n_in)``, output ``(*, n_out)``: any leading axes, as
        PyTorch's (``(N, n_in)`` a batch, ``(N, L, n_in)`` a sequence's tokens,
        ``(n_in,)`` one sample). The leading axes are one ``M``-row matrix for
        the products.

    Attributes:
        W: ``(n_out, n_in)``, uniform in ``±1/sqrt(n_in)`` (the seeds', PyTorch's bound).
        b: ``(n_out,)``, same initialisation; None when ``bias=False``.
        gradW, gradb: gradients, same shapes, accumulated.

    Backward:
        ``gradInput = gradOutput @ W``; ``gradW += gradOutput.T @ x``;
        ``gradb += gradOutput.sum(0)``.

    Example:
        >>> import numpy as np
        >>> layer = Linear(3, 2)
        >>> layer.forward(np.ones((4, 3), np.float32)).shape
        (4, 2)
    """

    _parameters = (("W", "gradW"), ("b", "gradb"))

    def __init__(self, n_in, n_out, bias=True, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.n_in = check_positive_int("Linear", "n_in", n_in)
        self.n_out = check_positive_int("Linear", "n_out", n_out)
        rng = resolve_rng(rng)
        bound = 1.0 / np.sqrt(n_in)
        self.W = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(dtype)
        self.b = rng.uniform(-bound, bound, size=n_out).astype(dtype) if bias else None
        self.gradW = np.zeros_like(self.W)
        self.gradb = np.zeros_like(self.b) if bias else None

    def get_config(self):
        """The constructor's arguments, the sizes read from ``W`` and ``b`` (model files)."""
        n_out, n_in = self.W.shape
        return {**super().get_config(), "n_in": n_in, "n_out": n_out, "bias": self.b is not None}

    @classmethod
    def parameter_shapes(cls, config):
        """``W``: ``(n_out, n_in)``; ``b``: ``(n_out,)`` (model files check them before building)."""
        shapes = {"W": (config["n_out"], config["n_in"])}
        if config.get("bias", True):
            shapes["b"] = (config["n_out"],)
        return shapes

    def output_shape(self, input_shape):
        """``(*, n_out)`` for an input of shape ``(*, n_in)``; raises what ``forward`` would."""
        n_out, n_in = self.W.shape
        shape = as_shape(self, input_shape)
        if len(shape) < 1 or shape[-1] != n_in:
            raise ValueError(f"{self!r}: expected input of shape (N, {n_in}) or (*, {n_in}), got {shape}")
        return shape[:-1] + (n_out,)

    def updateOutput(self, input):
        n_out, n_in = self.W.shape
        check_float_array(self, input)
        if input.ndim < 1 or input.shape[-1] != n_in:
            raise ValueError(f"{self!r}: expected input of shape (N, {n_in}) or (*, {n_in}), got {tuple(input.shape)}")
        output = matmul(_rows(input), as_dtype_of(self.W, input).T)
        if self.b is not None:
            output += as_dtype_of(self.b, input)
        output = output if input.ndim == 2 else output.reshape(input.shape[:-1] + (n_out,))
        self.output = output
        return output

    def updateGradInput(self, input, gradOutput):
        grad = matmul(_rows(gradOutput), as_dtype_of(self.W, gradOutput))
        self.gradInput = grad if input.ndim == 2 else grad.reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        g = _rows(gradOutput)
        self.gradW += matmul(g.T, _rows(input))
        if self.b is not None:
            self.gradb += g.sum(axis=0)

    def extra_repr(self):
        text = f"{self.W.shape[1]} -> {self.W.shape[0]}"
        return text if self.b is not None else text + ", bias=False"
