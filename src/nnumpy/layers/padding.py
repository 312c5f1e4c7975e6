"""2-D padding layers (PyTorch's ``ZeroPad2d``, ``ReflectionPad2d``,
``ReplicationPad2d``): the last two axes of ``(N, C, H, W)`` or ``(C, H, W)``.

The kernels pad one axis at a time; backward adds each padded position's
gradient back onto the input position it copies (reflection: the mirrored
rows, replication: the edge row), with slices, never a loop over positions.
"""

import numpy as np

from .._checks import as_shape, check_input, shape_probe
from ..backend import get_array_module
from ..module import Module

__all__ = ["ZeroPad2d", "ReflectionPad2d", "ReplicationPad2d"]

_NUMPY_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _along(axis, index, ndim):
    """An index tuple selecting ``index`` (a slice) along ``axis`` of an ``ndim`` array."""
    return (slice(None),) * (axis % ndim) + (index,)


def pad_axis(x, axis, before, after, mode):
    """``x`` padded along ``axis`` with ``before``/``after`` entries (negative: cropped; zeros mode only)."""
    xp = get_array_module(x)
    size = x.shape[axis]
    crop = slice(max(-before, 0), size - max(-after, 0))
    x = x[_along(axis, crop, x.ndim)]
    widths = [(0, 0)] * x.ndim
    widths[axis % x.ndim] = (max(before, 0), max(after, 0))
    return xp.pad(x, widths, mode=_NUMPY_MODE[mode])


def unpad_axis(g, axis, before, after, size, mode):
    """Gradient w.r.t. the input of ``pad_axis`` (input length ``size``) from ``g``."""
    xp = get_array_module(g)
    nd = g.ndim
    lo, hi = max(before, 0), max(after, 0)
    kept = size - max(-before, 0) - max(-after, 0)  # the input positions that reach the output
    core = g[_along(axis, slice(lo, lo + kept), nd)].copy()
    if mode == "reflect" and lo:
        # output position lo - k (k = 1..lo) copies input position k
        core[_along(axis, slice(1, lo + 1), nd)] += xp.flip(g[_along(axis, slice(0, lo), nd)], axis=axis)
    if mode == "reflect" and hi:
        # output position lo + size - 1 + k copies input position size - 1 - k
        tail = g[_along(axis, slice(lo + kept, lo + kept + hi), nd)]
        core[_along(axis, slice(kept - 1 - hi, kept - 1), nd)] += xp.flip(tail, axis=axis)
    if mode == "replicate" and lo:
        core[_along(axis, slice(0, 1), nd)] += g[_along(axis, slice(0, lo), nd)].sum(axis=axis, keepdims=True)
    if mode == "replicate" and hi:
        tail = g[_along(axis, slice(lo + kept, lo + kept + hi), nd)]
        core[_along(axis, slice(kept - 1, kept), nd)] += tail.sum(axis=axis, keepdims=True)
    if mode == "circular" and lo:
        # output position lo - k (k = 1..lo) copies input position size - k
        core[_along(axis, slice(kept - lo, kept), nd)] += g[_along(axis, slice(0, lo), nd)]
    if mode == "circular" and hi:
        # output position lo + size + k (k = 0..hi-1) copies input position k
        core[_along(axis, slice(0, hi), nd)] += g[_along(axis, slice(lo + kept, lo + kept + hi), nd)]
    if kept == size:
        return core
    widths = [(0, 0)] * nd  # cropped input positions get no gradient
    widths[axis % nd] = (max(-before, 0), max(-after, 0))
    return xp.pad(core, widths)


def _as_padding(name, padding):
    """``(left, right, top, bottom)`` from an int or a 4-tuple."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return (int(padding),) * 4
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 4
        and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding)
    ):
        return tuple(int(p) for p in padding)
    raise TypeError(f"{name}: padding must be an int or a 4-tuple (left, right, top, bottom) of ints, got {padding!r}")


class _Pad2d(Module):
    """Shared: the padding argument, the input check, forward and backward per axis."""

    mode = "zeros"

    def __init__(self, padding):
        super().__init__()
        name = type(self).__name__
        self.padding = _as_padding(name, padding)
        if self.mode != "zeros" and min(self.padding) < 0:
            raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")

    def _check(self, input):
        check_input(self, input, ndim=(3, 4), layout="(N, C, H, W) or (C, H, W)")
        left, right, top, bottom = self.padding
        h, w = input.shape[-2:]
        if self.mode == "reflect" and not (max(top, bottom) < h and max(left, right) < w):
            raise ValueError(
                f"{self!r}: padding must be smaller than the input's H and W (reflection), got input {input.shape}"
            )
        if self.mode == "replicate" and (h == 0 or w == 0):
            raise ValueError(f"{self!r}: expected non-empty H and W, got input {input.shape}")
        if h + top + bottom < 0 or w + left + right < 0:
            raise ValueError(f"{self!r}: padding crops more than the input holds, got input {input.shape}")

    def output_shape(self, input_shape):
        """The input's shape with ``H + top + bottom`` and ``W + left + right``."""
        shape = as_shape(self, input_shape)
        self._check(shape_probe(shape))
        left, right, top, bottom = self.padding
        return (*shape[:-2], shape[-2] + top + bottom, shape[-1] + left + right)

    def updateOutput(self, input):
        self._check(input)
        left, right, top, bottom = self.padding
        y = pad_axis(input, -1, left, right, self.mode)
        self.output = pad_axis(y, -2, top, bottom, self.mode)
        return self.output

    def updateGradInput(self, input, gradOutput):
        left, right, top, bottom = self.padding
        h, w = input.shape[-2:]
        g = unpad_axis(gradOutput, -2, top, bottom, h, self.mode)
        self.gradInput = unpad_axis(g, -1, left, right, w, self.mode)
        return self.gradInput

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(_Pad2d):
    """``y`` = ``x`` with zeros added around ``H`` and ``W`` (PyTorch's ``ZeroPad2d``).

    Args:
        padding: int (all four sides) or ``(left, right, top, bottom)``;
            negative values crop, as in PyTorch.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``H + top + bottom``,
        ``W + left + right``.

    Backward: ``gradInput`` is the gradient's central window (zeros for cropped positions).

    Example:
        >>> import numpy as np
        >>> ZeroPad2d((1, 0, 0, 1)).forward(np.ones((1, 1, 1, 2))).tolist()
        [[[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]]]
    """

    mode = "zeros"


class ReflectionPad2d(_Pad2d):
    """``y`` = ``x`` padded with its reflection, the edge not repeated
    (PyTorch's ``ReflectionPad2d``; ``numpy.pad(mode='reflect')``).

    Args:
        padding: int or ``(left, right, top, bottom)``, each ``>= 0`` and
            smaller than the input's size along that axis.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``H + top + bottom``, ``W + left + right``.

    Backward: each padded position's gradient is added to the input position it mirrors.

    Example:
        >>> import numpy as np
        >>> ReflectionPad2d((2, 1, 0, 0)).forward(np.array([[[[1.0, 2.0, 3.0]]]])).tolist()
        [[[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]]
    """

    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """``y`` = ``x`` padded by repeating its edge values (PyTorch's ``ReplicationPad2d``).

    Args:
        padding: int or ``(left, right, top, bottom)``, each ``>= 0``.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``H + top + bottom``, ``W + left + right``.

    Backward: the padded positions' gradients are summed onto the edge row/column they copy.

    Example:
        >>> import numpy as np
        >>> ReplicationPad2d((2, 1, 0, 0)).forward(np.array([[[[1.0, 2.0, 3.0]]]])).tolist()
        [[[[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]]]
    """

    mode = "replicate"
