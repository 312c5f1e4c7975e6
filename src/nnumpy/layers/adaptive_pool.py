"""Adaptive pooling (PyTorch's ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``):
any ``H, W`` to a fixed output size.

Output bin ``i`` of an axis of length ``L`` pooled to ``O`` covers
``[floor(i * L / O), ceil((i + 1) * L / O))`` (PyTorch's start/end index
formula; neighbouring bins may share a position). Average pooling is then a
product with a per-axis averaging matrix ``A`` ``(O, L)``: ``y = A_h x A_w^T``
and ``gradInput = A_h^T g A_w``. Max pooling gathers every bin's positions
(a bin shorter than the longest repeats its last position, which leaves the
maximum unchanged) and keeps the argmax for backward.
"""

import numpy as np

from .._checks import as_shape, check_input, check_positive_int, shape_probe
from ..backend import get_array_module
from ..module import Module

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


def adaptive_bins(in_size, out_size):
    """``(start, end)`` arrays of the ``out_size`` bins over ``in_size`` positions."""
    i = np.arange(out_size)
    return (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)


def averaging_matrix(in_size, out_size, dtype):
    """``A`` ``(out, in)``: row ``i`` is ``1 / len`` over bin ``i``, 0 elsewhere."""
    start, end = adaptive_bins(in_size, out_size)
    j = np.arange(in_size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def bin_positions(in_size, out_size):
    """``(out, K)`` positions of every bin, ``K`` the longest bin; shorter bins repeat their last position."""
    start, end = adaptive_bins(in_size, out_size)
    k = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(k), end[:, None] - 1)


def _output_size(name, output_size):
    values = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(values) != 2:
        raise ValueError(f"{name}: output_size must be an int or a pair (H_out, W_out), got {output_size!r}")
    return tuple(None if v is None else check_positive_int(name, "output_size", v) for v in values)


class _AdaptivePool2d(Module):
    """Shared: the output size argument (None entries keep the input's size) and the input check."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _output_size(type(self).__name__, output_size)
        self._given = output_size

    def _sizes(self, input):
        check_input(self, input, ndim=(3, 4), layout="(N, C, H, W) or (C, H, W)")
        h, w = input.shape[-2:]
        if h < 1 or w < 1:
            raise ValueError(f"{self!r}: expected non-empty H and W, got input {input.shape}")
        oh, ow = self.output_size
        return h, w, h if oh is None else oh, w if ow is None else ow

    def output_shape(self, input_shape):
        """``(N, C, oh, ow)`` (or ``(C, oh, ow)``); raises what ``forward`` would."""
        shape = as_shape(self, input_shape)
        _, _, oh, ow = self._sizes(shape_probe(shape))
        return (*shape[:-2], oh, ow)

    def extra_repr(self):
        return f"output_size={self._given!r}"


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """``y[..., i, j]`` = mean of ``x`` over bin ``i`` of ``H`` and bin ``j`` of
    ``W`` (PyTorch's ``AdaptiveAvgPool2d``).

    Args:
        output_size: ``(H_out, W_out)``, or one int for both; None keeps that axis's size.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, C, H_out, W_out)``
        (``(C, H_out, W_out)``). Bin ``i`` covers ``[floor(i H / H_out), ceil((i + 1) H / H_out))``.

    Backward: ``gradInput = A_h^T g A_w`` with ``A`` the averaging matrices (each
    gradient spread evenly over its bin).

    Example:
        >>> import numpy as np
        >>> AdaptiveAvgPool2d(1).forward(np.arange(4.0).reshape(1, 1, 2, 2)).tolist()
        [[[[1.5]]]]
    """

    def updateOutput(self, input):
        h, w, oh, ow = self._sizes(input)
        xp = get_array_module(input)
        self._a_h = xp.asarray(averaging_matrix(h, oh, input.dtype))
        self._a_w = xp.asarray(averaging_matrix(w, ow, input.dtype))
        lead = input.shape[:-2]
        cols = (input.reshape(-1, w) @ self._a_w.T).reshape(*lead, h, ow)  # one product over every row
        self.output = xp.matmul(self._a_h, cols)
        return self.output

    def updateGradInput(self, input, gradOutput):
        h, w = input.shape[-2:]
        xp = get_array_module(gradOutput)
        rows = xp.matmul(self._a_h.T.astype(gradOutput.dtype, copy=False), gradOutput)  # (..., h, ow)
        a_w = self._a_w.astype(gradOutput.dtype, copy=False)
        self.gradInput = (rows.reshape(-1, rows.shape[-1]) @ a_w).reshape(input.shape)
        return self.gradInput


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """``y[..., i, j]`` = max of ``x`` over bin ``i`` of ``H`` and bin ``j`` of
    ``W`` (PyTorch's ``AdaptiveMaxPool2d``; NaN propagates, ties go to the
    first position in row-major order, as PyTorch).

    Args:
        output_size: ``(H_out, W_out)``, or one int for both; None keeps that axis's size.
        return_indices: only False (the module returns one array).

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, C, H_out, W_out)``; bins as ``AdaptiveAvgPool2d``.

    Backward: each output gradient goes to its bin's argmax (added where bins share it).

    Example:
        >>> import numpy as np
        >>> AdaptiveMaxPool2d((1, 2)).forward(np.array([[[[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]]]])).tolist()
        [[[[5.0, 5.0]]]]
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        if return_indices:
            raise ValueError("AdaptiveMaxPool2d: return_indices=True is not supported (the module returns one array)")
        self.return_indices = False

    def updateOutput(self, input):
        h, w, oh, ow = self._sizes(input)
        xp = get_array_module(input)
        pos_h, pos_w = bin_positions(h, oh), bin_positions(w, ow)  # (oh, kh), (ow, kw)
        kh, kw = pos_h.shape[1], pos_w.shape[1]
        # (..., oh, kh, ow, kw) -> (..., oh, ow, kh * kw), each bin's values in row-major order
        windows = input[..., pos_h[:, :, None, None], pos_w[None, None, :, :]]
        windows = xp.moveaxis(windows, -3, -2).reshape(*input.shape[:-2], oh, ow, kh * kw)
        best = xp.argmax(windows, axis=-1)
        self.output = xp.take_along_axis(windows, best[..., None], axis=-1)[..., 0]
        # the argmax as a flat position h * W + w of the input's plane
        rows = xp.asarray(pos_h)[xp.arange(oh)[:, None], best // kw]
        cols = xp.asarray(pos_w)[xp.arange(ow)[None, :], best % kw]
        self._argmax = rows * w + cols
        return self.output

    def updateGradInput(self, input, gradOutput):
        xp = get_array_module(gradOutput)
        h, w = input.shape[-2:]
        planes = int(np.prod(input.shape[:-2]))
        oh, ow = gradOutput.shape[-2:]
        flat = self._argmax.reshape(planes, oh * ow) + (xp.arange(planes) * (h * w))[:, None]
        grad = xp.zeros(planes * h * w, gradOutput.dtype)
        xp.add.at(grad, flat.reshape(-1), gradOutput.reshape(-1))
        self.gradInput = grad.reshape(input.shape)
        return self.gradInput
