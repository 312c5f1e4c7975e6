"""Upsampling (PyTorch's ``Upsample``, ``UpsamplingNearest2d``,
``UpsamplingBilinear2d``): nearest and (bi)linear interpolation of
``(N, C, L)`` and ``(N, C, H, W)`` inputs.

Both modes are separable: each spatial axis is resampled in turn, as a
gather of one (nearest) or two (linear) source rows per output row. The
source indices and weights follow PyTorch's formulas, computed in the same
precision (float32 for nearest, the input's dtype for linear), so the outputs
match PyTorch's. Backward adds each output row's gradient back onto its
source rows: the source indices never decrease, so ``add.reduceat`` over
runs of equal indices does it without a loop over positions.
"""

import math

import numpy as np

from .._checks import as_shape, check_input, check_positive_int, check_real, shape_probe
from ..backend import get_array_module
from ..module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]

_MODES = {"nearest": (1, 2), "linear": (1,), "bilinear": (2,)}  # mode -> accepted numbers of spatial axes


def nearest_indices(in_size, out_size, scale=None):
    """PyTorch's ``nearest`` source index of every output position:
    ``min(floor(i * s), in - 1)`` with ``s = 1 / scale`` (or ``in / out``) in float32."""
    i = np.arange(out_size)
    if out_size == in_size:
        return i
    if out_size == 2 * in_size:
        return i >> 1
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(i.astype(np.float32) * s).astype(np.int64), in_size - 1)


def linear_indices(in_size, out_size, align_corners, scale, dtype):
    """``(i0, i1, w0, w1)``: the two source positions of every output position and
    their weights, by PyTorch's formulas in ``dtype``. ``align_corners``:
    ``src = i * (in - 1) / (out - 1)``; else ``src = max((i + 0.5) * s - 0.5, 0)``
    with ``s = 1 / scale`` (or ``in / out``)."""
    t = np.dtype(dtype).type
    i = np.arange(out_size).astype(dtype)
    if align_corners:
        s = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        src = i * s
    else:
        s = t(1.0 / scale) if scale else t(in_size) / t(out_size)
        src = np.maximum(s * (i + t(0.5)) - t(0.5), t(0))
    i0 = src.astype(np.int64)  # src >= 0: truncation is floor
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(dtype)).astype(dtype)
    return i0, i1, (t(1) - w1).astype(dtype), w1


def _take(x, idx, axis):
    return get_array_module(x).take(x, idx, axis=axis)


def _weighted(w, axis, ndim):
    """Weights ``(L,)`` shaped to broadcast along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return w.reshape(shape)


def scatter_sorted(g, idx, size, axis):
    """``out`` with ``out[..., j, ...] = sum of g[..., k, ...] over idx[k] == j``
    along ``axis`` (``idx`` non-decreasing, length ``g.shape[axis]``); zeros where no ``idx`` is ``j``."""
    xp = get_array_module(g)
    targets, starts = np.unique(idx, return_index=True)
    shape = list(g.shape)
    shape[axis] = size
    out = xp.zeros(shape, g.dtype)
    where = (slice(None),) * axis + (targets,)
    if len(targets) == len(idx):  # one source per output row (an upsampling by an integer often is not)
        out[where] = g
    else:
        out[where] = xp.add.reduceat(g, starts, axis=axis)
    return out


def _as_tuple(name, what, value, n, convert):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n:
        raise ValueError(f"{name}: {what} must have one value per spatial axis ({n}), got {value!r}")
    return tuple(convert(v) for v in values)


class Upsample(Module):
    """``y`` = ``x`` resampled to a larger (or smaller) size along its spatial
    axes by nearest or (bi)linear interpolation (PyTorch's ``Upsample``).

    Args:
        size: the output size: int or tuple, one per spatial axis.
        scale_factor: or the output size as ``floor(input_size * scale_factor)``:
            float or tuple; give exactly one of ``size`` and ``scale_factor``.
        mode: ``'nearest'`` (any of the shapes below), ``'linear'``
            (``(N, C, L)``) or ``'bilinear'`` (``(N, C, H, W)``).
        align_corners: linear modes only (None means False): True maps the
            corner pixels' centres onto each other, ``src = dst * (in - 1) /
            (out - 1)``; False maps the pixel areas, ``src = (dst + 0.5) *
            in / out - 0.5`` (with ``scale_factor``, ``1 / scale_factor`` for
            ``in / out``, as PyTorch).

    Shape:
        Input ``(N, C, L)`` or ``(N, C, H, W)``; output ``(N, C, L_out)`` or
        ``(N, C, H_out, W_out)``.

    Backward: the transpose of the interpolation: each output gradient is
    added to its source position (nearest), or to its two source positions
    per axis with the interpolation weights (linear, bilinear).

    Example:
        >>> import numpy as np
        >>> Upsample(scale_factor=2).forward(np.array([[[1.0, 2.0]]])).tolist()
        [[[1.0, 1.0, 2.0, 2.0]]]
        >>> Upsample(size=3, mode="linear", align_corners=True).forward(np.array([[[1.0, 2.0]]])).tolist()
        [[[1.0, 1.5, 2.0]]]
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        name = type(self).__name__
        if mode not in _MODES:
            raise ValueError(f"{name}: mode must be one of {sorted(_MODES)}, got {mode!r}")
        if (size is None) == (scale_factor is None):
            given = f"size={size!r}, scale_factor={scale_factor!r}"
            raise ValueError(f"{name}: give exactly one of size and scale_factor, got {given}")
        if mode == "nearest" and align_corners is not None:
            raise ValueError(f"{name}: align_corners can only be set with the linear modes, got mode='nearest'")
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        # validated now; their number must match the input's spatial axes (checked at forward)
        given = size if size is not None else scale_factor
        n = len(given) if isinstance(given, (tuple, list)) else 1
        if size is not None:
            _as_tuple(name, "size", size, n, lambda v: check_positive_int(name, "size", v))
        else:
            factors = _as_tuple(name, "scale_factor", scale_factor, n, lambda v: check_real(name, "scale_factor", v))
            if not all(f > 0 and math.isfinite(f) for f in factors):
                raise ValueError(f"{name}: scale_factor must be > 0, got {scale_factor!r}")

    def _geometry(self, input):
        """``[(in, out, scale), ...]`` per spatial axis, after checking ``input``."""
        ranks = _MODES[self.mode]
        layouts = {1: "(N, C, L)", 2: "(N, C, H, W)"}
        check_input(self, input, ndim=tuple(r + 2 for r in ranks), layout=" or ".join(layouts[r] for r in ranks))
        spatial = input.shape[2:]
        n = len(spatial)
        name = type(self).__name__
        if self.size is not None:
            out = _as_tuple(name, "size", self.size, n, int)
            scales = (None,) * n
        else:
            scales = _as_tuple(name, "scale_factor", self.scale_factor, n, float)
            out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, scales, strict=True))
        if min(spatial, default=1) < 1 or min(out) < 1:
            raise ValueError(f"{self!r}: expected an output of at least one position, got input {input.shape}")
        return list(zip(spatial, out, scales, strict=True))

    def _tables(self, geometry, dtype):
        if self.mode == "nearest":
            return [nearest_indices(i, o, s) for i, o, s in geometry]
        return [linear_indices(i, o, bool(self.align_corners), s, dtype) for i, o, s in geometry]

    def output_shape(self, input_shape):
        """``(N, C, *out)`` with the output size ``size`` or ``floor(size * scale_factor)``."""
        shape = as_shape(self, input_shape)
        return (*shape[:2], *(o for _, o, _ in self._geometry(shape_probe(shape))))

    def updateOutput(self, input):
        geometry = self._geometry(input)
        self._geometry_used = geometry
        self._indices = tables = self._tables(geometry, input.dtype)
        y = input
        for k, table in enumerate(tables):
            axis = 2 + k
            if self.mode == "nearest":
                y = _take(y, table, axis)
            else:
                i0, i1, w0, w1 = table
                y = _take(y, i0, axis) * _weighted(w0, axis, y.ndim) + _take(y, i1, axis) * _weighted(w1, axis, y.ndim)
        self.output = y
        return self.output

    def updateGradInput(self, input, gradOutput):
        g = gradOutput
        for k in reversed(range(len(self._indices))):
            axis, size, table = 2 + k, self._geometry_used[k][0], self._indices[k]
            if self.mode == "nearest":
                g = scatter_sorted(g, table, size, axis)
            else:
                i0, i1, w0, w1 = table
                g = scatter_sorted(g * _weighted(w0, axis, g.ndim), i0, size, axis) + scatter_sorted(
                    g * _weighted(w1, axis, g.ndim), i1, size, axis
                )
        self.gradInput = g
        return self.gradInput

    def extra_repr(self):
        text = f"size={self.size!r}, scale_factor={self.scale_factor!r}, mode={self.mode!r}"
        return text if self.align_corners is None else f"{text}, align_corners={self.align_corners}"


class UpsamplingNearest2d(Upsample):
    """PyTorch's ``UpsamplingNearest2d(size, scale_factor)``:
    ``Upsample(size, scale_factor, mode='nearest')`` on ``(N, C, H, W)`` input.

    Example:
        >>> import numpy as np
        >>> UpsamplingNearest2d(scale_factor=2).forward(np.ones((1, 1, 2, 2))).shape
        (1, 1, 4, 4)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")

    def _geometry(self, input):
        check_input(self, input, ndim=4, layout="(N, C, H, W)")
        return super()._geometry(input)


class UpsamplingBilinear2d(Upsample):
    """PyTorch's ``UpsamplingBilinear2d(size, scale_factor)``:
    ``Upsample(size, scale_factor, mode='bilinear', align_corners=True)``.

    Example:
        >>> import numpy as np
        >>> UpsamplingBilinear2d(size=(1, 3)).forward(np.array([[[[0.0, 2.0]]]])).tolist()
        [[[[0.0, 1.0, 2.0]]]]
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
