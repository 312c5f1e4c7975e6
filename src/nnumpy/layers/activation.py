"""Element-wise activations and the softmax family.

Gradients are derived from the saved output where the math allows (ReLU,
Sigmoid, Tanh, SoftMax, LogSoftMax), so no extra array is kept.
"""

import numpy as np

from .._checks import as_shape, check_float_array, check_input, check_positive_int, check_real, check_shape
from ..backend import DEFAULT_DTYPE
from ..kernels.elementwise import relu_backward, relu_forward
from ..module import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "SoftPlus", "Sigmoid", "Tanh", "SoftMax", "LogSoftMax", "Identity"]
__all__ += ["GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "ReLU6", "Hardtanh", "PReLU", "SELU", "CELU"]
__all__ += ["Softsign", "Tanhshrink"]


def safe_exp(shifted):
    """``exp`` of non-positive ``shifted`` with the argument floored where the
    result would leave the normal float range (~1e-27 in float32, ~1e-215 in
    float64), so products with it never underflow into subnormals. The floored
    values are below the dtype's resolution next to the row maximum's 1.
    NumPy flags an underflow for ``exp`` of a subnormal (whose result is 1):
    that flag is not reported."""
    floor = 0.7 * float(np.log(np.finfo(shifted.dtype).tiny))
    with np.errstate(under="ignore"):
        return np.exp(np.maximum(shifted, floor))


class _Elementwise(Module):
    """Shared input check for element-wise modules (any shape, float dtype)."""

    def _check(self, input):
        check_float_array(self, input)

    def output_shape(self, input_shape):
        """The input's shape (element-wise)."""
        return as_shape(self, input_shape)


class Identity(Module):
    """``y = x``. Shape: any."""

    def output_shape(self, input_shape):
        """The input's shape."""
        return as_shape(self, input_shape)

    def updateOutput(self, input):
        check_float_array(self, input)
        self.output = input
        return input

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput
        return gradOutput


class ReLU(_Elementwise):
    """``y = max(x, 0)``. Shape: any. Backward: ``g * (y > 0)``.

    Example:
        >>> import numpy as np
        >>> ReLU().forward(np.array([[-1.0, 2.0]])).tolist()
        [[0.0, 2.0]]
    """

    def updateOutput(self, input):
        self._check(input)
        self.output = relu_forward(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = relu_backward(gradOutput, self.output)
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


def _check_dim(owner, dim):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{owner}: dim must be an int, got {dim!r}")
    return int(dim)


class _SoftMaxFamily(Module):
    """The axis argument and input check shared by SoftMax and LogSoftMax."""

    def __init__(self, dim=1):
        super().__init__()
        self.dim = _check_dim(type(self).__name__, dim)

    def _axis(self, input):
        """The axis ``dim`` names in ``input``, checked before anything changes."""
        if self.dim == 1:  # the seeds' layout, worded as before
            check_input(self, input, ndim=range(2, 33), layout="(N, C, *)")
            return 1
        check_float_array(self, input)
        if not -input.ndim <= self.dim < input.ndim:
            need = self.dim + 1 if self.dim >= 0 else -self.dim
            raise ValueError(f"{self!r}: expected input with at least {need} dims, got {tuple(input.shape)}")
        return self.dim % input.ndim

    def output_shape(self, input_shape):
        """The input's shape, checked as ``forward`` checks it."""
        shape = as_shape(self, input_shape)
        if self.dim == 1:
            return check_shape(self, shape, ndim=range(2, 33), layout="(N, C, *)")
        if not -len(shape) <= self.dim < len(shape):
            need = self.dim + 1 if self.dim >= 0 else -self.dim
            raise ValueError(f"{self!r}: expected input with at least {need} dims, got {shape}")
        return shape

    def extra_repr(self):
        return "" if self.dim == 1 else f"dim={self.dim}"


def shifted_by_max(x, axis=1):
    """``x - max(x)`` along ``axis`` (all values <= 0). For finite ``x`` a
    difference below the dtype's range (a row holding +-3e38) is ``-inf``,
    whose ``exp`` is the exact 0: that overflow is not reported."""
    with np.errstate(over="ignore"):
        return x - x.max(axis=axis, keepdims=True)


class SoftMax(_SoftMaxFamily):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``dim`` (default 1, the
    feature axis), computed from ``x - max(x)`` so huge logits are safe: no
    floating-point warning for any finite input.

    Args:
        dim: the axis to normalise (1; negative counts from the end).

    Shape:
        Any input with axis ``dim`` (``(N, C)`` or ``(N, C, *)`` for the
        default); output the same.

    Backward: ``gradInput = y * (g - sum(g * y, axis=dim))``.

    Example:
        >>> import numpy as np
        >>> SoftMax(dim=-1).forward(np.array([[0.0, np.log(3.0)]])).round(4).tolist()
        [[0.25, 0.75]]
    """

    def updateOutput(self, input):
        self._used_axis = axis = self._axis(input)
        e = safe_exp(shifted_by_max(input, axis))
        self.output = e / e.sum(axis=axis, keepdims=True)
        return self.output

    def updateGradInput(self, input, gradOutput):
        y, axis = self.output, self._used_axis
        self.gradInput = y * (gradOutput - (gradOutput * y).sum(axis=axis, keepdims=True))
        return self.gradInput


def log_softmax(x, axis=1):
    """``x - logsumexp(x, axis)``, stable for huge logits; a log-probability
    below the dtype's range is ``-inf`` (as PyTorch), with no warning."""
    shifted = shifted_by_max(x, axis)
    return shifted - np.log(safe_exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftMax(_SoftMaxFamily):
    """``y_i = x_i - log(sum_j exp(x_j))`` along ``dim`` (default 1, the feature
    axis). No floating-point warning for any finite input; a log-probability
    below the dtype's range comes out as ``-inf``, as in PyTorch.

    Args:
        dim: the axis to normalise (1; negative counts from the end).

    Shape:
        Any input with axis ``dim`` (``(N, C)`` or ``(N, C, *)`` for the
        default); output the same.

    Backward: ``gradInput = g - exp(y) * sum(g, axis=dim)``.

    Example:
        >>> import numpy as np
        >>> LogSoftMax(dim=-1).forward(np.array([[0.0, 0.0]])).round(4).tolist()
        [[-0.6931, -0.6931]]
    """

    def updateOutput(self, input):
        self._used_axis = axis = self._axis(input)
        self.output = log_softmax(input, axis)
        return self.output

    def updateGradInput(self, input, gradOutput):
        axis = self._used_axis
        self.gradInput = gradOutput - safe_exp(self.output) * gradOutput.sum(axis=axis, keepdims=True)
        return self.gradInput


# ---------------------------------------------------------------- GELU and erf
# ``erfc(a) = t * exp(Q(t) - a^2)`` for ``a >= 0`` with ``t = 2 / (2 + a)``, one
# form for every ``a``; ``Q`` is a polynomial in ``y = 2t - 1`` (highest power
# first), fitted for this file with ``mpmath.chebyfit(Q, [-1, 1], degree + 1)``
# at 50 digits: max error 3.3e-17 (float64 table) and 6.6e-9 (float32 table),
# which is the relative error it gives erfc. Checked against ``math.erfc`` in
# tests/test_layers_extra.py.
# fmt: off
_ERFC_Q = {
    np.dtype(np.float64): (
        4.059203416871319e-09, -1.6257634004200004e-09, -3.9153823681150644e-08, 3.996584549064402e-08,
        1.532694522477242e-07, -3.175036568175422e-07, -1.6833321758830403e-07, 1.3278447814608566e-06,
        -1.2725384918465064e-06, -3.0087258428155394e-06, 8.562827807038024e-06, 1.7065643682608049e-07,
        -3.0188008635174027e-05, 3.1732769210255435e-05, 7.140106496969276e-05, -0.00017429974539128116,
        -9.373504499208804e-05, 0.0006736782487619259, -0.00014624686098279685, -0.002345812442194841,
        0.0017589335575530585, 0.008824938553557172, -0.009872689366376865, -0.04689561023107716,
        0.04734330684190415, 0.6726432239776559, -0.6717940840566923,
    ),
    np.dtype(np.float32): (
        1.5401817283772113e-05, -8.70509883316567e-05, -3.825410526006034e-05, 0.0005731254989469202,
        -0.0001758054723287054, -0.0022881236566899177, 0.0017670032525904623, 0.008808544323316852,
        -0.009873662468445727, -0.046893590304725064, 0.04734334109347023, 0.6726431522588268,
        -0.6717940840566923,
    ),
}
# fmt: on


def _horner(coefficients, y):
    r = np.full_like(y, coefficients[0])
    for c in coefficients[1:]:
        r *= y
        r += c
    return r


def erfc(u):
    """``1 - erf(u)`` element-wise, in ``u``'s dtype (float32 or float64;
    others are computed in float64), to a few ulp and with no cancellation
    for large ``u`` (``erfc(10) = 2.1e-45``). No floating-point warning for
    any input: values that underflow are the exact 0."""
    dtype = u.dtype if u.dtype in _ERFC_Q else np.dtype(np.float64)
    u = u.astype(dtype, copy=False)
    a = np.minimum(np.abs(u), 30.0)  # erfc(27) is already below float64's range
    t = 2.0 / (2.0 + a)
    q = _horner(_ERFC_Q[dtype], 2.0 * t - 1.0)
    q -= a * a
    with np.errstate(under="ignore"):
        e = np.exp(q, out=q)
    e *= t
    # erfc(-a) = 2 - erfc(a); arithmetic on the sign mask is 4x faster than np.where on random signs
    negative = (u < 0).astype(dtype)
    e += negative * (2.0 - 2.0 * e)
    return e


def gelu_exact(x):
    """``(x * Phi(x), Phi(x))`` with ``Phi(x) = erfc(-x / sqrt(2)) / 2`` the normal CDF."""
    cdf = (0.5 * erfc(x * x.dtype.type(-np.sqrt(0.5)))).astype(x.dtype, copy=False)
    return x * cdf, cdf


_GELU_K = float(np.sqrt(2.0 / np.pi))  # tanh approximation: tanh(K * (x + 0.044715 x^3))
_GELU_C = 0.044715


class GELU(_Elementwise):
    """``y = x * Phi(x)``, Phi the standard normal CDF (PyTorch's ``GELU``).

    ``approximate='tanh'``: ``y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.

    Args:
        approximate: ``'none'`` (exact, via ``erf``) or ``'tanh'``.

    Shape: any.

    Backward:
        exact: ``g * (Phi(x) + x * exp(-x^2/2) / sqrt(2 pi))``;
        tanh: ``g * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))``
        with ``t`` the tanh above.

    Example:
        >>> import numpy as np
        >>> np.round(GELU().forward(np.array([-1.0, 0.0, 1.0])), 4).tolist()
        [-0.1587, 0.0, 0.8413]
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):  # values that underflow are the exact 0
            if self.approximate == "tanh":
                xc = np.clip(input, -1e4, 1e4)  # the tanh saturates long before; no overflow in x^3
                self._t = np.tanh(xc * (_GELU_K * (1.0 + _GELU_C * xc * xc)))
                self.output = 0.5 * input * (1.0 + self._t)
            else:
                self.output, self._cdf = gelu_exact(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        xc = np.clip(input, -1e4, 1e4)
        with np.errstate(under="ignore"):
            if self.approximate == "tanh":
                t = self._t
                d = 0.5 * (1.0 + t) + (0.5 * _GELU_K) * xc * (1.0 - t * t) * (1.0 + 3 * _GELU_C * xc * xc)
            else:
                d = self._cdf + xc * (np.exp(-0.5 * xc * xc) * float(1.0 / np.sqrt(2 * np.pi)))
        self.gradInput = gradOutput * d.astype(gradOutput.dtype, copy=False)
        return self.gradInput

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


# ---------------------------------------------------------------- more element-wise activations
class SiLU(_Elementwise):
    """``y = x * sigmoid(x)`` (PyTorch's ``SiLU``, also called swish). Shape: any.

    Backward: ``g * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``.

    Example:
        >>> import numpy as np
        >>> SiLU().forward(np.array([0.0, 1.0])).round(4).tolist()
        [0.0, 0.7311]
    """

    def updateOutput(self, input):
        self._check(input)
        self._sigmoid = stable_sigmoid(input)
        with np.errstate(under="ignore"):  # here and below: results that underflow are the exact 0
            self.output = input * self._sigmoid
        return self.output

    def updateGradInput(self, input, gradOutput):
        s = self._sigmoid
        with np.errstate(under="ignore"):
            self.gradInput = gradOutput * (s * (1 + input * (1 - s)))
        return self.gradInput


class Mish(_Elementwise):
    """``y = x * tanh(softplus(x))`` (PyTorch's ``Mish``). Shape: any.

    Backward: ``g * (t + x * sigmoid(x) * (1 - t^2))`` with ``t = tanh(softplus(x))``.

    Example:
        >>> import numpy as np
        >>> Mish().forward(np.array([0.0, 1.0])).round(4).tolist()
        [0.0, 0.8651]
    """

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):  # softplus of very negative x underflows to the exact 0
            self._t = np.tanh(np.logaddexp(0, input))
            self.output = input * self._t
        return self.output

    def updateGradInput(self, input, gradOutput):
        t = self._t
        with np.errstate(under="ignore"):
            self.gradInput = gradOutput * (t + input * stable_sigmoid(input) * (1 - t * t))
        return self.gradInput


class Hardtanh(_Elementwise):
    """``y = clip(x, min_val, max_val)`` (PyTorch's ``Hardtanh``). Shape: any.

    Args:
        min_val, max_val: the clipping range (-1, 1); ``min_val < max_val``.

    Backward: ``g`` where ``min_val < x < max_val``, else 0 (PyTorch's convention at the corners).

    Example:
        >>> import numpy as np
        >>> Hardtanh().forward(np.array([-2.0, 0.5, 3.0])).tolist()
        [-1.0, 0.5, 1.0]
    """

    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        name = type(self).__name__
        self.min_val = check_real(name, "min_val", min_val)
        self.max_val = check_real(name, "max_val", max_val)
        if not self.min_val < self.max_val:
            raise ValueError(f"{name}: min_val must be < max_val, got min_val={min_val!r}, max_val={max_val!r}")

    def updateOutput(self, input):
        self._check(input)
        self.output = np.clip(input, self.min_val, self.max_val)
        return self.output

    def updateGradInput(self, input, gradOutput):
        inside = (input > self.min_val) & (input < self.max_val)
        self.gradInput = np.where(inside, gradOutput, gradOutput.dtype.type(0))
        return self.gradInput

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Hardtanh):
    """``y = min(max(x, 0), 6)`` (PyTorch's ``ReLU6``): ``Hardtanh(0, 6)``. Shape: any.

    Backward: ``g`` where ``0 < x < 6``, else 0.

    Example:
        >>> import numpy as np
        >>> ReLU6().forward(np.array([-1.0, 3.0, 8.0])).tolist()
        [0.0, 3.0, 6.0]
    """

    def __init__(self):
        super().__init__(0.0, 6.0)

    def extra_repr(self):
        return ""


class Hardsigmoid(_Elementwise):
    """``y = clip(x / 6 + 1/2, 0, 1)`` (PyTorch's ``Hardsigmoid``). Shape: any.

    Backward: ``g / 6`` where ``-3 < x < 3``, else 0.

    Example:
        >>> import numpy as np
        >>> Hardsigmoid().forward(np.array([-4.0, 0.0, 1.5])).tolist()
        [0.0, 0.5, 0.75]
    """

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):
            self.output = np.clip(input / 6 + 0.5, 0, 1)
        return self.output

    def updateGradInput(self, input, gradOutput):
        inside = (input > -3) & (input < 3)
        self.gradInput = np.where(inside, gradOutput / 6, gradOutput.dtype.type(0))
        return self.gradInput


class Hardswish(_Elementwise):
    """``y = x * clip(x + 3, 0, 6) / 6`` (PyTorch's ``Hardswish``). Shape: any.

    Backward: 0 where ``x <= -3``, ``g * (x / 3 + 1/2)`` where ``-3 < x < 3``,
    ``g`` where ``x >= 3`` (PyTorch's convention at the corners).

    Example:
        >>> import numpy as np
        >>> Hardswish().forward(np.array([-4.0, 1.0, 4.0])).tolist()
        [-0.0, 0.6666666666666666, 4.0]
    """

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):
            self.output = input * (np.clip(input + 3, 0, 6) / 6)
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore"):
            slope = np.where(input <= -3, 0, np.where(input < 3, input / 3 + 0.5, 1)).astype(
                gradOutput.dtype, copy=False
            )
            self.gradInput = gradOutput * slope
        return self.gradInput


class PReLU(Module):
    """``y = x if x > 0 else weight * x`` with a learnt slope, one per channel
    (axis 1) or one shared (PyTorch's ``PReLU``).

    Args:
        num_parameters: 1 (one slope for every channel) or the number of channels.
        init: the initial slope (0.25).
        dtype: parameter dtype (float32).

    Shape:
        Any; with ``num_parameters > 1``, ``(N, num_parameters, *)`` (a 1-D input has no
        channel axis, as in PyTorch).

    Attributes:
        weight: ``(num_parameters,)``, filled with ``init``; gradWeight.

    Backward:
        ``gradInput = g`` where ``x > 0``, else ``weight * g``;
        ``gradWeight += sum(g * x where x <= 0)`` over all but the channel axis.

    Example:
        >>> import numpy as np
        >>> PReLU().forward(np.array([[-2.0, 3.0]])).tolist()
        [[-0.5, 3.0]]
    """

    _parameters = (("weight", "gradWeight"),)

    def __init__(self, num_parameters=1, init=0.25, dtype=DEFAULT_DTYPE):
        super().__init__()
        # ``num_parameters`` is Module's count of scalars: here the size of ``weight``, PyTorch's attribute
        count = check_positive_int("PReLU", "num_parameters", num_parameters)
        self.init = check_real("PReLU", "init", init)
        self.weight = np.full(count, self.init, dtype=dtype)
        self.gradWeight = np.zeros_like(self.weight)

    @classmethod
    def parameter_shapes(cls, config):
        """``weight``: ``(num_parameters,)`` (model files check it before building)."""
        return {"weight": (config.get("num_parameters", 1),)}

    def _slope(self, x):
        """The weight shaped to broadcast against ``x`` along its channel axis."""
        w = self.weight.astype(x.dtype, copy=False)
        if w.shape[0] == 1:
            return w
        return w.reshape((1, -1) + (1,) * (x.ndim - 2))

    def output_shape(self, input_shape):
        """The input's shape (``(N, C, *)`` when ``num_parameters`` is C > 1)."""
        shape = as_shape(self, input_shape)
        c = self.weight.shape[0]
        if c > 1 and (len(shape) < 2 or shape[1] != c):
            raise ValueError(f"{self!r}: expected input of shape (N, {c}, *), got {shape}")
        return shape

    def updateOutput(self, input):
        check_float_array(self, input)
        self.output_shape(input.shape)
        with np.errstate(under="ignore"):
            self.output = np.where(input > 0, input, input * self._slope(input))
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore"):
            self.gradInput = np.where(input > 0, gradOutput, gradOutput * self._slope(gradOutput))
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        with np.errstate(under="ignore"):
            negative = np.where(input > 0, 0, input * gradOutput)
        if self.weight.shape[0] == 1:
            self.gradWeight += negative.sum()
        else:
            axes = tuple(a for a in range(input.ndim) if a != 1)
            self.gradWeight += negative.sum(axis=axes)

    def extra_repr(self):
        return f"num_parameters={self.weight.shape[0]}"


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class SELU(_Elementwise):
    """``y = scale * (x if x > 0 else alpha * (exp(x) - 1))`` with PyTorch's
    ``alpha = 1.6732632...`` and ``scale = 1.0507009...`` (``SELU``). Shape: any.

    Backward: ``g * scale`` where ``x > 0``, else ``g * scale * alpha * exp(x)``.

    Example:
        >>> import numpy as np
        >>> SELU().forward(np.array([1.0])).round(4).tolist()
        [1.0507]
    """

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore", over="ignore"):  # scale * x above the dtype's range is inf, as in PyTorch
            negative = np.expm1(np.minimum(input, 0)) * _SELU_ALPHA
            self.output = np.where(input > 0, input, negative) * input.dtype.type(_SELU_SCALE)
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore"):
            slope = np.where(input > 0, 1, _SELU_ALPHA * np.exp(np.minimum(input, 0))).astype(input.dtype, copy=False)
            self.gradInput = gradOutput * (slope * input.dtype.type(_SELU_SCALE))
        return self.gradInput


class CELU(_Elementwise):
    """``y = x if x > 0 else alpha * (exp(x / alpha) - 1)`` (PyTorch's ``CELU``). Shape: any.

    Args:
        alpha: the negative saturation (1.0); not 0.

    Backward: ``g`` where ``x > 0``, else ``g * exp(x / alpha)``.

    Example:
        >>> import numpy as np
        >>> CELU(2.0).forward(np.array([-2.0, 1.0])).round(4).tolist()
        [-1.2642, 1.0]
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_real("CELU", "alpha", alpha)
        if self.alpha == 0:
            raise ValueError("CELU: alpha must not be 0")

    def _negative_part(self, x):
        """``x / alpha`` where ``x <= 0``, else 0 (no overflow in ``exp`` of the other side)."""
        with np.errstate(under="ignore", over="ignore"):
            return np.where(x > 0, 0, x) / x.dtype.type(self.alpha)

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore", over="ignore"):  # over: exp(x / alpha) of a negative alpha is inf
            negative = np.expm1(self._negative_part(input)) * input.dtype.type(self.alpha)
            self.output = np.where(input > 0, input, negative)
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore", over="ignore"):
            slope = np.where(input > 0, 1, np.exp(self._negative_part(input))).astype(input.dtype, copy=False)
            self.gradInput = gradOutput * slope
        return self.gradInput

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Softsign(_Elementwise):
    """``y = x / (1 + |x|)`` (PyTorch's ``Softsign``). Shape: any.

    Backward: ``g / (1 + |x|)^2``.

    Example:
        >>> import numpy as np
        >>> Softsign().forward(np.array([-1.0, 3.0])).tolist()
        [-0.5, 0.75]
    """

    def updateOutput(self, input):
        self._check(input)
        with np.errstate(under="ignore"):
            self._inv = 1 / (1 + np.abs(input))
            self.output = input * self._inv
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore"):  # (1 / (1 + |x|))^2 for |x| ~ 1e20 and above is the exact 0
            self.gradInput = gradOutput * (self._inv * self._inv)
        return self.gradInput


class Tanhshrink(_Elementwise):
    """``y = x - tanh(x)`` (PyTorch's ``Tanhshrink``). Shape: any.

    Backward: ``g * tanh(x)^2``.

    Example:
        >>> import numpy as np
        >>> Tanhshrink().forward(np.array([0.0, 1.0])).round(4).tolist()
        [0.0, 0.2384]
    """

    def updateOutput(self, input):
        self._check(input)
        self._tanh = np.tanh(input)
        self.output = input - self._tanh
        return self.output

    def updateGradInput(self, input, gradOutput):
        with np.errstate(under="ignore"):
            self.gradInput = gradOutput * (self._tanh * self._tanh)
        return self.gradInput
