"""Pooling: ``MaxPool2d``, ``AvgPool2d``, ``MaxPool1d``, ``AvgPool1d``, ``GlobalAvgPool2d``.

Each window offset ``(p, q)`` of a ``kh x kw`` pooling is one strided view of
the (padded) input, so a pooling is ``kh*kw`` whole-array operations (a loop
over kernel offsets only): running maximum with the offset of the first
maximum kept in a ``uint8`` array (backward sends each window's gradient to
that one element, as PyTorch does), or a running sum. Strided views keep the
input's memory order, so channels-last activations from ``Conv2d`` stay so.
The 1-D layers are the 2-D ones with a unit height. Floor mode throughout.
"""

from .._checks import check_input
from ..backend import get_array_module
from ..module import Module
from ..parallel import parallel_for
from .conv import int_tuple

__all__ = ["MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d", "GlobalAvgPool2d"]


# --------------------------------------------------------------------- kernels
def _padded(x, padding, value):
    """``x`` (N, C, H, W) with ``padding = (ph, pw)`` of ``value`` on each side, in ``x``'s memory order."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    # allocate channels-last when x is, so the views below stay cache-friendly
    channels_last = x.strides[1] < x.strides[3]
    shape = (n, h + 2 * ph, w + 2 * pw, c) if channels_last else (n, c, h + 2 * ph, w + 2 * pw)
    out = xp.full(shape, value, dtype=x.dtype)
    if channels_last:
        out = out.transpose(0, 3, 1, 2)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _window_slices(kernel, stride, out_size):
    """``(k, rows, cols)`` for each window offset ``(p, q)``: its flat index
    ``k = p*kw + q`` and the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    for p in range(kh):
        for q in range(kw):
            yield p * kw + q, slice(p, p + sh * (ho - 1) + 1, sh), slice(q, q + sw * (wo - 1) + 1, sw)


def pool_output_size(size, kernel, stride, padding):
    """``floor((size + 2*padding - kernel) / stride) + 1`` per axis."""
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding, strict=True))


def _greater(a, b, itype, out=None):
    """``a > b`` as 0/1 of integer type ``itype`` (strict: ties keep the first
    maximum), written into ``out`` when given."""
    xp = get_array_module(a)
    if itype().itemsize == 1:  # bool and uint8 share their bytes: no conversion pass
        if out is None:
            return xp.greater(a, b).view(itype)
        xp.greater(a, b, out=out.view(bool))
        return out
    if out is None:
        return (a > b).astype(itype)
    out[...] = a > b
    return out


def _maxpool_piece(xpad, y, argmax, slices, itype):
    """Running maximum over the window offsets of one batch piece, into ``y``
    (and the offset of the first maximum into ``argmax`` when not None)."""
    xp = get_array_module(xpad)
    first = xpad[:, :, slices[0][1], slices[0][2]]
    if len(slices) == 1:
        y[...] = first
        if argmax is not None:
            argmax[...] = 0
        return
    second = xpad[:, :, slices[1][1], slices[1][2]]
    if argmax is not None:
        _greater(second, first, itype, out=argmax)
    xp.maximum(first, second, out=y)
    for k, rows, cols in slices[2:]:
        window = xpad[:, :, rows, cols]
        if argmax is not None:
            # offsets k only grow, so "k where better, else argmax" is
            # max(argmax, better * k) (copyto(where=) is 10x slower)
            better = _greater(window, y, itype)
            better *= itype(k)
            xp.maximum(argmax, better, out=argmax)
        xp.maximum(y, window, out=y)


def maxpool2d_forward(x, kernel, stride, padding, with_argmax=True):
    """``y[n, c, i, j] = max`` over the window; returns ``(y, argmax)`` with
    ``argmax`` the flat offset ``p*kw + q`` of the first maximum (uint8 or
    int32), or None when ``with_argmax`` is False (inference). Batch pieces
    run on nnumpy's threads."""
    xp = get_array_module(x)
    xpad = _padded(x, padding, -xp.inf)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding)
    slices = list(_window_slices(kernel, stride, out_size))
    itype = xp.uint8 if len(slices) < 256 else xp.int32
    # empty_like keeps the strided view's memory order (channels-last from Conv2d)
    first = xpad[:, :, slices[0][1], slices[0][2]]
    y = xp.empty_like(first)
    argmax = xp.empty_like(first, dtype=itype) if with_argmax else None

    def piece(lo, hi):
        _maxpool_piece(xpad[lo:hi], y[lo:hi], None if argmax is None else argmax[lo:hi], slices, itype)

    parallel_for(piece, x.shape[0], x)
    return y, argmax


def _memory_order(a):
    """The axes of ``a`` from the largest stride to the smallest (its memory layout)."""
    return tuple(sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis])))


def maxpool2d_backward(grad_out, argmax, x_shape, kernel, stride, padding):
    """Each window's gradient goes to its (first) maximum:
    ``gradInput[window k] += grad_out * (argmax == k)``, padding cropped.
    Batch pieces run on nnumpy's threads."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    ho, wo = grad_out.shape[2:]
    like = None
    if _memory_order(grad_out) != _memory_order(argmax):
        # e.g. NCHW from Flatten vs channels-last argmax: one copy per piece
        # makes every window op below contiguous-friendly (a cropped view in
        # the same order, as Conv2d's input gradient, needs none)
        like = xp.empty_like(argmax, dtype=grad_out.dtype)
    overlap = any(k > s for k, s in zip(kernel, stride, strict=True))
    # windows that tile the padded input exactly write every element once: no zero fill
    tiles = not overlap and kernel == stride and (h + 2 * ph, w + 2 * pw) == (ho * kernel[0], wo * kernel[1])
    gpad = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=grad_out.dtype).transpose(0, 3, 1, 2)
    windows = list(_window_slices(kernel, stride, (ho, wo)))

    def piece(lo, hi):
        g, am, gp = grad_out[lo:hi], argmax[lo:hi], gpad[lo:hi]
        if like is not None:
            xp.copyto(like[lo:hi], g)
            g = like[lo:hi]
        if not tiles:
            gp[...] = 0
        for k, rows, cols in windows:
            if overlap:
                gp[:, :, rows, cols] += g * (am == k)
            else:  # written straight into the strided window view
                xp.multiply(g, am == k, out=gp[:, :, rows, cols])

    parallel_for(piece, n, gpad)
    return gpad[:, :, ph : ph + h, pw : pw + w]


def avgpool2d_forward(x, kernel, stride, padding, count_include_pad=True):
    """``y = sum(window) / count``, ``count = kh*kw`` or the number of
    non-padding elements of each window (``count_include_pad=False``);
    returns ``(y, divisor)``."""
    xp = get_array_module(x)
    xpad = _padded(x, padding, 0)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding)
    slices = list(_window_slices(kernel, stride, out_size))
    _, rows, cols = slices[0]
    y = xpad[:, :, rows, cols].copy(order="K")
    for _, rows, cols in slices[1:]:
        y += xpad[:, :, rows, cols]
    divisor = _avg_divisor(xp, x.shape[2:], kernel, stride, padding, out_size, count_include_pad, x.dtype)
    y /= divisor
    return y, divisor


def _avg_divisor(xp, size, kernel, stride, padding, out_size, count_include_pad, dtype):
    if count_include_pad or padding == (0, 0):
        return dtype.type(kernel[0] * kernel[1])
    ph, pw = padding
    ones = xp.zeros((size[0] + 2 * ph, size[1] + 2 * pw), dtype=dtype)
    ones[ph : ph + size[0], pw : pw + size[1]] = 1
    count = xp.zeros(out_size, dtype=dtype)
    for _, rows, cols in _window_slices(kernel, stride, out_size):
        count += ones[rows, cols]
    return count


def avgpool2d_backward(grad_out, divisor, x_shape, kernel, stride, padding):
    """``gradInput[window] += grad_out / count`` for every window, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    share = grad_out / divisor
    gpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=grad_out.dtype).transpose(0, 3, 1, 2)
    for _, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += share
    return gpad[:, :, ph : ph + h, pw : pw + w]


# --------------------------------------------------------------------- modules
class _Pool2d(Module):
    """Shared arguments, checks and 1-D handling of the window poolings."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd)
        self.stride = self.kernel_size if stride is None else int_tuple(name, "stride", stride, nd)
        self.padding = int_tuple(name, "padding", padding, nd, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half the kernel size {self.kernel_size} (as PyTorch)"
            )
        self._saved = None

    def _geometry(self):
        if self._nd == 1:
            return (1, *self.kernel_size), (1, *self.stride), (0, *self.padding)
        return self.kernel_size, self.stride, self.padding

    def _as_2d(self, a):
        return a[:, :, None, :] if self._nd == 1 else a

    def _from_2d(self, a):
        return a[:, :, 0, :] if self._nd == 1 else a

    def _check(self, input):
        layout = "(N, C, L)" if self._nd == 1 else "(N, C, H, W)"
        check_input(self, input, ndim=self._nd + 2, layout=layout)
        padded = tuple(s + 2 * p for s, p in zip(input.shape[2:], self.padding, strict=True))
        if any(s < k for s, k in zip(padded, self.kernel_size, strict=True)):
            raise ValueError(
                f"{self!r}: input of spatial size {tuple(input.shape[2:])} (padded {padded}) is smaller "
                f"than the kernel {self.kernel_size}"
            )

    def updateOutput(self, input):
        self._check(input)
        y, self._saved = self._forward(self._as_2d(input), *self._geometry())
        self.output = self._from_2d(y)
        return self.output

    def updateGradInput(self, input, gradOutput):
        x = self._as_2d(input)
        if self._saved is None:  # evaluate mode skipped what backward needs: recompute it
            self._saved = self._forward(x, *self._geometry(), need_backward=True)[1]
        g = self._backward_kernel(self._as_2d(gradOutput), self._saved, x.shape, *self._geometry())
        self.gradInput = self._from_2d(g)
        return self.gradInput

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each ``kh x kw`` window: ``y[n, c, i, j] = max x[n, c, i*sh + p - ph, j*sw + q - pw]``.

    Args:
        kernel_size: an int or ``(kh, kw)``.
        stride: an int or ``(sh, sw)``; defaults to ``kernel_size``.
        padding: implicit ``-inf`` on each side, an int or ``(ph, pw)`` (0),
            at most half the kernel.

    Shape:
        Input ``(N, C, H, W)``; output ``(N, C, Ho, Wo)`` with
        ``Ho = floor((H + 2*ph - kh) / sh) + 1``, ``Wo = floor((W + 2*pw - kw) / sw) + 1``
        (PyTorch's floor mode: trailing rows/columns that fill no window are dropped).

    Attributes:
        kernel_size, stride, padding: 2-tuples.

    Backward:
        each output's gradient goes to the first maximum of its window (one
        element per window, as PyTorch); overlapping windows add up.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> MaxPool2d(2).forward(x)[0, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
        >>> MaxPool2d(3, stride=2, padding=1).forward(np.zeros((2, 3, 7, 5), np.float32)).shape
        (2, 3, 4, 3)
    """

    _backward_kernel = staticmethod(maxpool2d_backward)

    def _forward(self, x, kernel, stride, padding, need_backward=None):
        # the argmax is only needed for backward: skipped in evaluate mode
        with_argmax = self.training if need_backward is None else need_backward
        return maxpool2d_forward(x, kernel, stride, padding, with_argmax)


class AvgPool2d(_Pool2d):
    """Mean over each ``kh x kw`` window.

    Args:
        kernel_size, stride, padding: as ``MaxPool2d`` (zero padding).
        count_include_pad: divide by ``kh*kw`` even where the window covers
            padding (True, PyTorch's default); False divides by the number
            of real elements.

    Shape:
        As ``MaxPool2d``: ``Ho = floor((H + 2*ph - kh) / sh) + 1``, same for ``Wo``.

    Attributes:
        kernel_size, stride, padding: 2-tuples; count_include_pad.

    Backward: ``gradInput[window] += gradOutput / count`` for every window.

    Example:
        >>> import numpy as np
        >>> AvgPool2d(2).forward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))[0, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """

    _backward_kernel = staticmethod(avgpool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)

    def _forward(self, x, kernel, stride, padding, need_backward=None):
        return avgpool2d_forward(x, kernel, stride, padding, self.count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class MaxPool1d(MaxPool2d):
    """``MaxPool2d`` over ``(N, C, L)``: ``Lo = floor((L + 2*p - k) / s) + 1``.

    Arguments are ints (or 1-tuples); attributes are 1-tuples.

    Example:
        >>> import numpy as np
        >>> MaxPool1d(2).forward(np.array([[[1, 3, 2, 0, 5]]], np.float32)).tolist()
        [[[3.0, 2.0]]]
    """

    _nd = 1


class AvgPool1d(AvgPool2d):
    """``AvgPool2d`` over ``(N, C, L)``: ``Lo = floor((L + 2*p - k) / s) + 1``.

    Example:
        >>> import numpy as np
        >>> AvgPool1d(2).forward(np.array([[[1, 3, 2, 0]]], np.float32)).tolist()
        [[[2.0, 1.0]]]
    """

    _nd = 1


class GlobalAvgPool2d(Module):
    """Mean over all positions of each channel: ``y[n, c] = mean_{h, w} x[n, c, h, w]``.

    Args:
        keepdims: return ``(N, C, 1, 1)`` instead of ``(N, C)`` (False).

    Shape:
        Input ``(N, C, H, W)``; output ``(N, C)`` or ``(N, C, 1, 1)``.

    Backward: ``gradInput = gradOutput / (H*W)`` broadcast over ``H, W``.

    Example:
        >>> import numpy as np
        >>> GlobalAvgPool2d().forward(np.ones((2, 3, 4, 5), np.float32)).shape
        (2, 3)
    """

    def __init__(self, keepdims=False):
        super().__init__()
        self.keepdims = bool(keepdims)

    def updateOutput(self, input):
        check_input(self, input, ndim=4, layout="(N, C, H, W)")
        self.output = input.mean(axis=(2, 3), keepdims=self.keepdims)
        return self.output

    def updateGradInput(self, input, gradOutput):
        xp = get_array_module(gradOutput)
        n, c, h, w = input.shape
        g = gradOutput.reshape(n, c, 1, 1) / gradOutput.dtype.type(h * w)
        self.gradInput = xp.broadcast_to(g, input.shape).copy()
        return self.gradInput

    def extra_repr(self):
        return "keepdims=True" if self.keepdims else ""
