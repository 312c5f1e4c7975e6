"""Pooling over ``kh x kw`` windows: the fast kernels and their references.

``maxpool: y[n, c, i, j] = max_{p, q} xpad[n, c, i*sh + p, j*sw + q]`` (padding ``-inf``);
``avgpool: y[n, c, i, j] = sum_{p, q} xpad[n, c, i*sh + p, j*sw + q] / count`` (padding 0).
Backward sends each window's gradient to its first maximum (as PyTorch), or
``1/count`` of it to each of its elements. Floor mode, or ``ceil_mode``
(PyTorch's: one more window where the input leaves a partial one, as long as
it starts inside the input or the left padding): the padded input gets the
few extra rows/columns at the bottom/right that the last window needs
(``-inf`` or zeros), and the average's divisor counts only what lies inside
the input and its padding.

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
    "pool_pads",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "maxpool2d_forward_reference",
    "maxpool2d_backward_reference",
    "avgpool2d_forward_reference",
    "avgpool2d_backward_reference",
]


def pool_output_size(size, kernel, stride, padding, ceil_mode=False):
    """``floor((size + 2*padding - kernel) / stride) + 1`` per axis; with ``ceil_mode``
    the ceiling, less one when that last window would start past the input and
    the left padding (``(out - 1)*stride >= size + padding``), as PyTorch."""
    out = []
    for s, k, st, p in zip(size, kernel, stride, padding, strict=True):
        o = -(-(s + 2 * p - k) // st) + 1 if ceil_mode else (s + 2 * p - k) // st + 1
        if ceil_mode and (o - 1) * st >= s + p:
            o -= 1
        out.append(o)
    return tuple(out)


def pool_pads(size, kernel, stride, padding, ceil_mode=False):
    """``((top, bottom), (left, right))``: ``padding`` on both sides, and at the
    bottom/right what the last window of ``ceil_mode`` reaches past it."""
    out = pool_output_size(size, kernel, stride, padding, ceil_mode)
    return tuple(
        (p, p + max(0, (o - 1) * st + k - (s + 2 * p)))
        for s, k, st, p, o in zip(size, kernel, stride, padding, out, strict=True)
    )


def _window_slices(kernel, stride, out_size):
    """``(k, rows, cols)`` for each window offset ``(p, q)``: its flat index
    ``k = p*kw + q`` and the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    for p in range(kh):
        for q in range(kw):
            yield p * kw + q, slice(p, p + sh * (ho - 1) + 1, sh), slice(q, q + sw * (wo - 1) + 1, sw)


# ------------------------------------------------------------------ references
def _windows_reference(x, kernel, stride, padding, value, ceil_mode=False):
    """The windows as one array ``(kh*kw, N, C, Ho, Wo)``, offset ``k = p*kw + q`` first."""
    xp = get_array_module(x)
    pads = pool_pads(x.shape[2:], kernel, stride, padding, ceil_mode)
    xpad = xp.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding, ceil_mode)
    return xp.stack([xpad[:, :, rows, cols] for _, rows, cols in _window_slices(kernel, stride, out_size)])


def maxpool2d_forward_reference(x, kernel, stride, padding, ceil_mode=False):
    """``(y, argmax)``: each window's maximum and the offset of its first maximum."""
    windows = _windows_reference(x, kernel, stride, padding, -get_array_module(x).inf, ceil_mode)
    return windows.max(axis=0), windows.argmax(axis=0)


def maxpool2d_backward_reference(grad_out, argmax, x_shape, kernel, stride, padding, ceil_mode=False):
    """``gradInput[window k] += grad_out * (argmax == k)`` over the offsets ``k``, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    (_, bottom), (_, right) = pool_pads((h, w), kernel, stride, padding, ceil_mode)
    gpad = xp.zeros((n, c, h + ph + bottom, w + pw + right), dtype=grad_out.dtype)
    for k, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += grad_out * (argmax == k)
    return gpad[:, :, ph : ph + h, pw : pw + w]


def _inside_mask(xp, size, pads, padding, count_include_pad, dtype):
    """1 where a window's element counts towards its average, on the padded grid:
    the input (and its ``padding`` when ``count_include_pad``), never the extra
    rows/columns of ``ceil_mode``."""
    (h, w), ((top, bottom), (left, right)), (ph, pw) = size, pads, padding
    mask = xp.zeros((h + top + bottom, w + left + right), dtype=dtype)
    if count_include_pad:
        mask[: h + 2 * ph, : w + 2 * pw] = 1
    else:
        mask[ph : ph + h, pw : pw + w] = 1
    return mask


def _count_reference(xp, size, kernel, stride, padding, count_include_pad, ceil_mode, dtype):
    """Each window's divisor: how many of its elements ``_inside_mask`` counts."""
    mask = _inside_mask(xp, size, pool_pads(size, kernel, stride, padding, ceil_mode), padding, count_include_pad,
                        dtype)  # fmt: skip
    out_size = pool_output_size(size, kernel, stride, padding, ceil_mode)
    return xp.stack([mask[rows, cols] for _, rows, cols in _window_slices(kernel, stride, out_size)]).sum(axis=0)


def avgpool2d_forward_reference(x, kernel, stride, padding, count_include_pad=True, ceil_mode=False):
    """``y = sum(window) / count``; ``count`` counts the padding too unless ``count_include_pad``
    is False, and never the extra rows/columns of ``ceil_mode``."""
    xp = get_array_module(x)
    total = _windows_reference(x, kernel, stride, padding, 0, ceil_mode).sum(axis=0)
    return total / _count_reference(xp, x.shape[2:], kernel, stride, padding, count_include_pad, ceil_mode, x.dtype)


def avgpool2d_backward_reference(grad_out, x_shape, kernel, stride, padding, count_include_pad=True,
                                 ceil_mode=False):  # fmt: skip
    """``gradInput[window] += grad_out / count`` for every window, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    share = grad_out / _count_reference(xp, (h, w), kernel, stride, padding, count_include_pad, ceil_mode,
                                        grad_out.dtype)  # fmt: skip
    (_, bottom), (_, right) = pool_pads((h, w), kernel, stride, padding, ceil_mode)
    gpad = xp.zeros((n, c, h + ph + bottom, w + pw + right), dtype=grad_out.dtype)
    for _, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += share
    return gpad[:, :, ph : ph + h, pw : pw + w]


# ------------------------------------------------------------------ fast kernels
def _padded(x, pads, value):
    """``x`` (N, C, H, W) with ``pads = ((top, bottom), (left, right))`` of ``value``, in ``x``'s memory order."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    hp, wp = h + top + bottom, w + left + right
    # allocate channels-last when x is, so the views below stay cache-friendly
    channels_last = x.strides[1] < x.strides[3]
    shape = (n, hp, wp, c) if channels_last else (n, c, hp, wp)
    out = xp.full(shape, value, dtype=x.dtype)
    if channels_last:
        out = out.transpose(0, 3, 1, 2)
    out[:, :, top : top + h, left : left + w] = x
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


def maxpool2d_forward(x, kernel, stride, padding, with_argmax=True, ceil_mode=False):
    """``maxpool2d_forward_reference``: ``(y, argmax)`` with ``argmax`` the
    flat offset ``p*kw + q`` of each window's first maximum as uint8 (int32
    for windows of 256 values and more), or None when ``with_argmax`` is
    False (inference). Batch pieces run on nnumpy's threads."""
    xp = get_array_module(x)
    xpad = _padded(x, pool_pads(x.shape[2:], kernel, stride, padding, ceil_mode), -xp.inf)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding, ceil_mode)
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


def maxpool2d_backward(grad_out, argmax, x_shape, kernel, stride, padding, ceil_mode=False):
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
    (_, bottom), (_, right) = pool_pads((h, w), kernel, stride, padding, ceil_mode)
    hp, wp = h + ph + bottom, w + pw + right
    tiles = not overlap and kernel == stride and (hp, wp) == (ho * kernel[0], wo * kernel[1])
    gpad = xp.empty((n, hp, wp, c), dtype=grad_out.dtype).transpose(0, 3, 1, 2)
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


def avgpool2d_forward(x, kernel, stride, padding, count_include_pad=True, ceil_mode=False):
    """``y = sum(window) / count``, ``count = kh*kw`` or the number of
    non-padding elements of each window (``count_include_pad=False``);
    returns ``(y, divisor)``. A running sum over the window offsets, in the
    input's memory order."""
    xp = get_array_module(x)
    pads = pool_pads(x.shape[2:], kernel, stride, padding, ceil_mode)
    xpad = _padded(x, pads, 0)
    out_size = pool_output_size(x.shape[2:], kernel, stride, padding, ceil_mode)
    slices = list(_window_slices(kernel, stride, out_size))
    _, rows, cols = slices[0]
    y = xpad[:, :, rows, cols].copy(order="K")
    for _, rows, cols in slices[1:]:
        y += xpad[:, :, rows, cols]
    divisor = _avg_divisor(xp, x.shape[2:], kernel, stride, padding, pads, out_size, count_include_pad, x.dtype)
    y /= divisor
    return y, divisor


def _avg_divisor(xp, size, kernel, stride, padding, pads, out_size, count_include_pad, dtype):
    """``kh*kw`` where every window lies inside what counts, else one count per window."""
    ceil_extra = any(hi > p for (_, hi), p in zip(pads, padding, strict=True))
    if not ceil_extra and (count_include_pad or padding == (0, 0)):
        return dtype.type(kernel[0] * kernel[1])
    ones = _inside_mask(xp, size, pads, padding, count_include_pad, dtype)
    count = xp.zeros(out_size, dtype=dtype)
    for _, rows, cols in _window_slices(kernel, stride, out_size):
        count += ones[rows, cols]
    return count


def avgpool2d_backward(grad_out, divisor, x_shape, kernel, stride, padding, ceil_mode=False):
    """``gradInput[window] += grad_out / count`` for every window, padding cropped."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    ph, pw = padding
    share = grad_out / divisor
    (_, bottom), (_, right) = pool_pads((h, w), kernel, stride, padding, ceil_mode)
    gpad = xp.zeros((n, h + ph + bottom, w + pw + right, c), dtype=grad_out.dtype).transpose(0, 3, 1, 2)
    for _, rows, cols in _window_slices(kernel, stride, grad_out.shape[2:]):
        gpad[:, :, rows, cols] += share
    return gpad[:, :, ph : ph + h, pw : pw + w]
