"""Pooling over ``kh x kw`` windows: the fast kernels and their references.

``maxpool: y[n, c, i, j] = max_{p, q} xpad[n, c, i*sh + p, j*sw + q]`` (padding ``-inf``);
``avgpool: y[n, c, i, j] = sum_{p, q} xpad[n, c, i*sh + p, j*sw + q] / count`` (padding 0).
Backward sends each window's gradient to its first maximum (as PyTorch), or
``1/count`` of it to each of its elements. Floor mode throughout.

Each window offset ``(p, q)`` is one strided view of the padded input, so both
compute with ``kh*kw`` whole-array operations (a loop over kernel offsets
only). The references stack those views and reduce them. The fast kernels
keep a running maximum, with the offset of the first maximum in a ``uint8``
array written through ``bool`` views of the same bytes (no conversion
pass); they keep the input's memory order (channels-last from ``Conv2d``
stays so) and split the batch over nnumpy's threads.
"""

from ..backend import get_array_module
from .parallel import parallel_for

__all__ = [
    "pool_output_size",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "maxpool2d_forward_reference",
    "maxpool2d_backward_reference",
    "avgpool2d_forward_reference",
    "avgpool2d_backward_reference",
]


def pool_output_size(size, kernel, stride, padding):
    """``floor((size + 2*padding - kernel) / stride) + 1`` per axis."""
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding, strict=True))


def _window_slices(kernel, stride, out_size):
    """``(k, rows, cols)`` for each window offset ``(p, q)``: its flat index
    ``k = p*kw + q`` and the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    for p in range(kh):
        for q in range(kw):
            yield p * kw + q, slice(p, p + sh * (ho - 1) + 1, sh), slice(q, q + sw * (wo - 1) + 1, sw)


# ------------------------------------------------------------------ references
def _windows_reference(x, kernel, stride, padding, value):
    """The windows as one array ``(kh*kw, N, C, Ho, Wo)``, offset ``k = p*kw + q`` first."""
    xp = get_array_module(x)
    (ph, pw) = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding)
    return xp.stack([xpad[:, :, rows, cols] for _, rows, cols in _window_slices(kernel, stride, out_size)])


def maxpool2d_forward_reference(x, kernel, stride, padding):
    """``(y, argmax)``: each window's maximum and the offset of its first maximum."""
    windows = _windows_reference(x, kernel, stride, padding, -get_array_module(x).inf)
    return windows.max(axis=0), windows.argmax(axis=0)


def maxpool2d_backward_reference(grad_out, argmax, x_shape, kernel, stride, padding):
    """``gradInput[window k] += grad_out * (argmax == k)`` over the offsets ``k``, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    gpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad_out.dtype)
    for k, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += grad_out * (argmax == k)
    return gpad[:, :, ph : ph + h, pw : pw + w]


def avgpool2d_forward_reference(x, kernel, stride, padding, count_include_pad=True):
    """``y = sum(window) / count``; ``count`` counts the padding too unless ``count_include_pad`` is False."""
    xp = get_array_module(x)
    total = _windows_reference(x, kernel, stride, padding, 0).sum(axis=0)
    if count_include_pad:
        return total / x.dtype.type(kernel[0] * kernel[1])
    ones = xp.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
    return total / _windows_reference(ones, kernel, stride, padding, 0).sum(axis=0)


def avgpool2d_backward_reference(grad_out, x_shape, kernel, stride, padding, count_include_pad=True):
    """``gradInput[window] += grad_out / count`` for every window, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    if count_include_pad:
        share = grad_out / grad_out.dtype.type(kernel[0] * kernel[1])
    else:
        ones = xp.ones((1, 1, h, w), dtype=grad_out.dtype)
        share = grad_out / _windows_reference(ones, kernel, stride, padding, 0).sum(axis=0)
    gpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad_out.dtype)
    for _, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += share
    return gpad[:, :, ph : ph + h, pw : pw + w]


# ------------------------------------------------------------------ fast kernels
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
            # max(argmax, better * k), two cheap passes instead of a masked copy
            better = _greater(window, y, itype)
            better *= itype(k)
            xp.maximum(argmax, better, out=argmax)
        xp.maximum(y, window, out=y)


def maxpool2d_forward(x, kernel, stride, padding, with_argmax=True):
    """``maxpool2d_forward_reference``: ``(y, argmax)`` with ``argmax`` the
    flat offset ``p*kw + q`` of each window's first maximum as uint8 (int32
    for windows of 256 values and more), or None when ``with_argmax`` is
    False (inference). Batch pieces run on nnumpy's threads."""
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
    """``maxpool2d_backward_reference``; windows that tile the input write
    their offset's share straight into place (no zero fill), and batch pieces
    run on nnumpy's threads."""
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
    returns ``(y, divisor)``. A running sum over the window offsets, in the
    input's memory order."""
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
