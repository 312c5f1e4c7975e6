"""Element-wise activations and the softmax family.

Gradients are derived from the saved output where the math allows (ReLU,
Sigmoid, Tanh, SoftMax, LogSoftMax), so no extra array is kept.
"""

import numpy as np

from .._checks import check_float_array, check_input, check_real
from ..backend import get_array_module
from ..module import Module
from ..parallel import map_batches

__all__ = ["ReLU", "LeakyReLU", "ELU", "SoftPlus", "Sigmoid", "Tanh", "SoftMax", "LogSoftMax", "Identity"]


def safe_exp(shifted):
    """``exp`` of non-positive ``shifted`` with the argument floored where the
    result would leave the normal float range (~1e-27 in float32, ~1e-215 in
    float64), so products with it never underflow into subnormals. The floored
    values are below the dtype's resolution next to the row maximum's 1."""
    floor = 0.7 * float(np.log(np.finfo(shifted.dtype).tiny))
    return np.exp(np.maximum(shifted, floor))


class _Elementwise(Module):
    """Shared input check for element-wise modules (any shape, float dtype)."""

    def _check(self, input):
        check_float_array(self, input)


class Identity(Module):
    """``y = x``. Shape: any."""

    def updateOutput(self, input):
        check_float_array(self, input)
        self.output = input
        return input

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput
        return gradOutput


def _relu_grad(g, y, out):
    """``g * (y > 0)`` into ``out`` (NaN in ``g`` propagates where ``y > 0``, as PyTorch)."""
    return get_array_module(g).multiply(g, y > 0, out=out)


class ReLU(_Elementwise):
    """``y = max(x, 0)``. Shape: any. Backward: ``g * (y > 0)``.

    Example:
        >>> import numpy as np
        >>> ReLU().forward(np.array([[-1.0, 2.0]])).tolist()
        [[0.0, 2.0]]
    """

    def updateOutput(self, input):
        self._check(input)
        xp = get_array_module(input)
        self.output = map_batches(lambda x, out: xp.maximum(x, 0, out=out), xp.empty_like(input), input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        xp = get_array_module(gradOutput)
        self.gradInput = map_batches(_relu_grad, xp.empty_like(gradOutput), gradOutput, self.output)
        return self.gradInput


class LeakyReLU(_Elementwise):
    """``y = x if x > 0 else slope * x``. Shape: any.

    Args:
        slope: the negative slope (seed default 0.03; PyTorch's is 0.01).

    Backward: ``g`` where ``x > 0``, else ``slope * g``.
    """

    def __init__(self, slope=0.03):
        super().__init__()
        self.slope = check_real("LeakyReLU", "slope", slope)

    def updateOutput(self, input):
        self._check(input)
        self.output = np.where(input > 0, input, input * self.slope)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = np.where(input > 0, gradOutput, gradOutput * self.slope)
        return self.gradInput

    def extra_repr(self):
        return f"slope={self.slope}"


class ELU(_Elementwise):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``. Shape: any.

    Backward: ``g`` where ``x > 0``, else ``g * (y + alpha)``.
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_real("ELU", "alpha", alpha)

    def updateOutput(self, input):
        self._check(input)
        negative = np.expm1(np.minimum(input, 0)) * self.alpha
        self.output = np.where(input > 0, input, negative)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = np.where(input > 0, gradOutput, gradOutput * (self.output + self.alpha))
        return self.gradInput

    def extra_repr(self):
        return f"alpha={self.alpha}"


def stable_sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow for any ``x``, in ``x``'s dtype.
    Underflow to 0 is the exact answer for very negative ``x``, so it is not
    reported (code running under ``np.errstate(all='raise')`` keeps working)."""
    with np.errstate(under="ignore"):
        return np.exp(-np.logaddexp(0, -x))


class SoftPlus(_Elementwise):
    """``y = log(1 + exp(x))``, computed as ``logaddexp(0, x)`` (stable for
    large ``|x|``). Shape: any. Backward: ``g * sigmoid(x)``."""

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):  # log1p(exp(-|x|)) underflows to the exact 0
            self.output = np.logaddexp(0, input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        # sigmoid(x) = exp(x - softplus(x)), reusing the saved output
        with np.errstate(under="ignore"):
            self.gradInput = gradOutput * np.exp(input - self.output)
        return self.gradInput


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))``. Shape: any. Backward: ``g * y * (1 - y)``."""

    def updateOutput(self, input):
        self._check(input)
        self.output = stable_sigmoid(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * self.output * (1 - self.output)
        return self.gradInput


class Tanh(_Elementwise):
    """``y = tanh(x)``. Shape: any. Backward: ``g * (1 - y**2)``."""

    def updateOutput(self, input):
        self._check(input)
        self.output = np.tanh(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * (1 - self.output * self.output)
        return self.gradInput


class SoftMax(Module):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` over the feature axis (axis 1),
    computed from ``x - max(x)`` so huge logits are safe.

    Shape:
        Input ``(N, C)`` or ``(N, C, *)``; output the same.

    Backward: ``gradInput = y * (g - sum(g * y, axis=1))``.
    """

    def updateOutput(self, input):
        check_input(self, input, ndim=(2, 3, 4, 5), layout="(N, C, *)")
        e = safe_exp(input - input.max(axis=1, keepdims=True))
        self.output = e / e.sum(axis=1, keepdims=True)
        return self.output

    def updateGradInput(self, input, gradOutput):
        y = self.output
        self.gradInput = y * (gradOutput - (gradOutput * y).sum(axis=1, keepdims=True))
        return self.gradInput


def log_softmax(x):
    """``x - logsumexp(x, axis=1)``, stable for huge logits."""
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(safe_exp(shifted).sum(axis=1, keepdims=True))


class LogSoftMax(Module):
    """``y_i = x_i - log(sum_j exp(x_j))`` over the feature axis (axis 1).

    Shape:
        Input ``(N, C)`` or ``(N, C, *)``; output the same.

    Backward: ``gradInput = g - exp(y) * sum(g, axis=1)``.
    """

    def updateOutput(self, input):
        check_input(self, input, ndim=(2, 3, 4, 5), layout="(N, C, *)")
        self.output = log_softmax(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput - safe_exp(self.output) * gradOutput.sum(axis=1, keepdims=True)
        return self.gradInput
