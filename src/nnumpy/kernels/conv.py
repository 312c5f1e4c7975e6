"""2-D convolution (cross-correlation, as PyTorch): the fast kernels and their references.

``y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] * xpad[n, g(o)*C/g + c, i*sh + p*dh, j*sw + q*dw]``

with ``xpad`` the zero-padded input and ``g(o)`` the group of output channel
``o``. The references compute it as a textbook does: one product per kernel
offset ``(p, q)`` between the strided window of the padded input and the
weights at that offset.

The fast kernels compute the same sums as im2col products, in chunks:

- channels-last: the padded input is laid out ``(N, Hp, Wp, C)``; the output
  is an ``(N, O, Ho, Wo)`` view of channels-last memory, which the
  element-wise layers that follow keep, so no transpose is copied between
  layers;
- the im2col matrix of the whole batch is never built (it is ``kh*kw`` times
  the input): each thread takes a contiguous piece of the batch and walks it
  in chunks of ~``chunk_bytes`` of columns (``nnumpy.kernels.tuning``),
  copies a chunk's windows into its own small buffer (``as_strided`` views, a
  column of ones for the bias) and multiplies it while it is still in its
  core's cache, with BLAS on one thread per call;
- backward walks the same chunks: the weight gradient is a product with the
  columns (copied again, or those a training forward kept when they take at
  most ``keep_columns_bytes``), the input gradient a product with the weights
  followed by col2im, one strided add per kernel offset (no ``np.add.at``).
"""

import numpy as np

from ..backend import get_array_module
from .config import settings
from .parallel import parallel_for

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_forward_reference", "conv2d_backward_reference"]


# ------------------------------------------------------------------ references
def _output_size(size, kernel, stride, pads, dilation):
    """``floor((size + lo + hi - d*(k-1) - 1) / s) + 1`` per spatial axis."""
    return tuple(
        (s + lo + hi - d * (k - 1) - 1) // st + 1
        for s, k, st, (lo, hi), d in zip(size, kernel, stride, pads, dilation, strict=True)
    )


def _offsets(kernel, stride, dilation, out_size):
    """``(p, q, rows, cols)`` per kernel offset: the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_size
    for p in range(kh):
        for q in range(kw):
            yield p, q, slice(p * dh, p * dh + sh * (ho - 1) + 1, sh), slice(q * dw, q * dw + sw * (wo - 1) + 1, sw)


def conv2d_forward_reference(x, W, b, stride, pads, dilation, groups):
    """``y`` (N, O, Ho, Wo) from ``x`` (N, C, H, W), ``W`` (O, C/g, kh, kw), ``b`` (O,) or None:
    ``y += window(p, q) . W[:, :, p, q]`` over the kernel offsets."""
    xp = get_array_module(x)
    n, o, (kh, kw) = x.shape[0], W.shape[0], W.shape[2:]
    xpad = xp.pad(x, ((0, 0), (0, 0), *pads))
    ho, wo = _output_size(x.shape[2:], (kh, kw), stride, pads, dilation)
    xg = xpad.reshape(n, groups, -1, *xpad.shape[2:])  # (N, g, C/g, Hp, Wp)
    Wg = W.reshape(groups, o // groups, *W.shape[1:])  # (g, O/g, C/g, kh, kw)
    y = xp.zeros((n, groups, o // groups, ho, wo), dtype=x.dtype)
    for p, q, rows, cols in _offsets((kh, kw), stride, dilation, (ho, wo)):
        y += xp.einsum("ngchw,goc->ngohw", xg[..., rows, cols], Wg[..., p, q])
    y = y.reshape(n, o, ho, wo)
    return y if b is None else y + b.reshape(1, o, 1, 1)


def conv2d_backward_reference(grad_out, x, W, stride, pads, dilation, groups, bias=True):
    """``(grad_x, grad_W, grad_b)`` of ``conv2d_forward_reference``:
    ``grad_b = sum(g)``; per kernel offset, ``grad_W[:, :, p, q] = g . window(p, q)``
    and ``g . W[:, :, p, q]`` is added back into ``window(p, q)`` of the padded
    input gradient, which is then cropped."""
    xp = get_array_module(grad_out)
    n, o, ho, wo = grad_out.shape
    (top, _), (left, _) = pads
    h, w = x.shape[2:]
    xpad = xp.pad(x, ((0, 0), (0, 0), *pads))
    xg = xpad.reshape(n, groups, -1, *xpad.shape[2:])
    Wg = W.reshape(groups, o // groups, *W.shape[1:])
    gg = grad_out.reshape(n, groups, o // groups, ho, wo)
    grad_xg = xp.zeros_like(xg)
    grad_Wg = xp.zeros_like(Wg)
    for p, q, rows, cols in _offsets(W.shape[2:], stride, dilation, (ho, wo)):
        grad_Wg[..., p, q] = xp.einsum("ngohw,ngchw->goc", gg, xg[..., rows, cols])
        grad_xg[..., rows, cols] += xp.einsum("ngohw,goc->ngchw", gg, Wg[..., p, q])
    grad_x = grad_xg.reshape(xpad.shape)[:, :, top : top + h, left : left + w]
    return grad_x, grad_Wg.reshape(W.shape), grad_out.sum(axis=(0, 2, 3)) if bias else None


# ------------------------------------------------------------------ fast kernels
def _pad_channels_last(x, pads):
    """``(xpad, fill)``: ``xpad`` is ``x`` (N, C, H, W) as a zero-padded
    channels-last array (N, Hp, Wp, C), and ``fill(lo, hi)`` writes samples
    ``lo:hi`` of it (the caller runs it, chunk by chunk, just before reading
    them). When nothing needs padding, ``xpad`` is a view of ``x`` and
    ``fill`` does nothing."""
    xp = get_array_module(x)
    (top, bottom), (left, right) = pads
    xt = x.transpose(0, 2, 3, 1)
    if top == bottom == left == right == 0:
        return xt, lambda lo, hi: None
    n, h, w, c = xt.shape
    out = xp.empty((n, h + top + bottom, w + left + right, c), dtype=x.dtype)

    def fill(lo, hi):  # zero only the border, copy the inside
        o = out[lo:hi]
        o[:, :top] = 0
        o[:, top + h :] = 0
        o[:, top : top + h, :left] = 0
        o[:, top : top + h, left + w :] = 0
        o[:, top : top + h, left : left + w] = xt[lo:hi]

    return out, fill


def _grouped_weight(W, b, groups):
    """``W`` (O, C/g, kh, kw) as the matrix stack (g, O/g, kh*kw*C/g) matching
    the im2col columns, with the bias ``b`` (O,) as one more column when given."""
    o, cg, kh, kw = W.shape
    Wg = W.reshape(groups, o // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2).reshape(groups, o // groups, -1)
    if b is None:
        return Wg
    return get_array_module(W).concatenate([Wg, b.reshape(groups, o // groups, 1)], axis=2)


class _Plan:
    """The geometry of one convolution call and its im2col, chunked over the batch."""

    def __init__(self, x_shape, W_shape, stride, pads, dilation, groups, bias, dtype, xp):
        self.n, self.c, h, w = x_shape
        self.o, self.cg, self.kh, self.kw = W_shape
        self.stride, self.dilation, self.groups, self.bias, self.dtype, self.xp = (
            stride, dilation, groups, bias, dtype, xp
        )  # fmt: skip
        (top, bottom), (left, right) = pads
        self.hp, self.wp = h + top + bottom, w + left + right
        self.ho, self.wo = _output_size((h, w), (self.kh, self.kw), stride, pads, dilation)
        self.positions = self.ho * self.wo  # output positions (im2col rows) per sample
        self.k = self.kh * self.kw * self.cg  # im2col columns per group, without the bias column
        width = groups * (self.k + bias)
        one_chunk = xp is not np  # CuPy: the whole batch at once (the GPU is already parallel)
        chunk_bytes = settings["chunk_bytes"]
        self.images = self.n if one_chunk else max(1, chunk_bytes // (self.positions * width * dtype.itemsize))
        # The copy runs fastest along the longer contiguous run: kw*C/g input
        # values (row-major columns) or Wo outputs (a column-major buffer, e.g.
        # a first layer with one channel); BLAS takes either layout.
        self.k_major = self.kw * self.cg < self.wo

    def chunks(self, lo, hi):
        """``(c0, c1, rows)``: the chunks of samples ``lo:hi`` and their im2col rows."""
        for c0 in range(lo, hi, self.images):
            c1 = min(hi, c0 + self.images)
            yield c0, c1, slice(c0 * self.positions, c1 * self.positions)

    def windows(self, xpad):
        """``windows[n, i, j, p, q, g, c] = xpad[n, i*sh + p*dh, j*sw + q*dw, g*C/g + c]`` (a view)."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        s = xpad.strides
        return self.xp.lib.stride_tricks.as_strided(
            xpad,
            shape=(self.n, self.ho, self.wo, self.kh, self.kw, self.groups, self.cg),
            strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3] * self.cg, s[3]),
        )

    def column_buffer(self, images=None):
        """A buffer for the columns of ``images`` samples (one chunk's by
        default), ``(groups, images*Ho*Wo, k [+ 1])``; with a bias, a last
        column of ones makes the bias part of the product."""
        rows, width = (images or self.images) * self.positions, self.k + self.bias
        xp = self.xp
        if self.k_major:
            cols = xp.empty((self.groups, width, rows), self.dtype).transpose(0, 2, 1)
        else:
            cols = xp.empty((self.groups, rows, width), self.dtype)
        if self.bias:
            cols[:, :, self.k] = 1
        return cols

    def im2col(self, cols, windows, c0, c1):
        """Copy the windows of samples ``c0:c1`` into ``cols``; the filled rows."""
        m = c1 - c0
        st = cols.strides  # (group, position, column)
        if self.k_major:
            shape, order = (self.groups, self.kh, self.kw, self.cg, m, self.ho, self.wo), (5, 3, 4, 6, 0, 1, 2)
            strides = (st[0], st[2] * self.kw * self.cg, st[2] * self.cg, st[2], st[1] * self.positions,
                       st[1] * self.wo, st[1])  # fmt: skip
        else:
            shape, order = (self.groups, m, self.ho, self.wo, self.kh, self.kw, self.cg), (5, 0, 1, 2, 3, 4, 6)
            strides = (st[0], st[1] * self.positions, st[1] * self.wo, st[1], st[2] * self.kw * self.cg,
                       st[2] * self.cg, st[2])  # fmt: skip
        dst = self.xp.lib.stride_tricks.as_strided(cols, shape=shape, strides=strides)
        self.xp.copyto(dst, windows[c0:c1].transpose(order))
        return cols[:, : m * self.positions]


def conv2d_forward(x, W, b, stride, pads, dilation, groups, keep_columns=False):
    """``conv2d_forward_reference``, chunked. Returns ``(y, xpad, cols)``:
    ``conv2d_backward`` needs ``xpad`` (the padded channels-last input) and
    takes ``cols``, the im2col columns of the whole batch, which are kept
    when ``keep_columns`` and they take at most ``keep_columns_bytes``
    (``nnumpy.kernels.tuning``), else None. ``y`` is an ``(N, O, Ho, Wo)``
    view of channels-last memory."""
    xp = get_array_module(x)
    plan = _Plan(x.shape, W.shape, stride, pads, dilation, groups, b is not None, x.dtype, xp)
    xpad, fill_padding = _pad_channels_last(x, pads)
    windows = plan.windows(xpad)
    weights = _grouped_weight(W, b, groups).transpose(0, 2, 1)  # (g, k [+ 1], O/g)
    y = xp.empty((plan.n * plan.positions, plan.o), x.dtype)
    all_bytes = plan.n * plan.positions * groups * (plan.k + plan.bias) * x.itemsize
    keep = keep_columns and all_bytes <= settings["keep_columns_bytes"]
    kept = plan.column_buffer(plan.n) if keep else None

    def piece(lo, hi):
        cols = plan.column_buffer() if kept is None else None
        for c0, c1, rows in plan.chunks(lo, hi):
            fill_padding(c0, c1)
            chunk = plan.im2col(cols if kept is None else kept[:, rows], windows, c0, c1)
            if groups == 1:
                xp.matmul(chunk[0], weights[0], out=y[rows])
            else:
                y[rows] = xp.matmul(chunk, weights).transpose(1, 0, 2).reshape(-1, plan.o)

    parallel_for(piece, plan.n, y, calls_blas=True)
    return y.reshape(plan.n, plan.ho, plan.wo, plan.o).transpose(0, 3, 1, 2), xpad, kept


def _grad_rows(grad_out, groups):
    """``grad_out`` (N, O, Ho, Wo) as ``(rows, g_rows)``: the matrix (N*Ho*Wo, O)
    and its per-group stack (g, N*Ho*Wo, O/g) (views when channels-last)."""
    n, o, ho, wo = grad_out.shape
    rows = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
    return rows, rows.reshape(-1, groups, o // groups).transpose(1, 0, 2)


def conv2d_backward(grad_out, xpad, W, x_shape, stride, pads, dilation, groups, bias=True, need_input=True,
                    need_params=True, cols=None):  # fmt: skip
    """``conv2d_backward_reference``, chunked: ``(grad_x, grad_W, grad_b)``
    from what ``conv2d_forward`` returned (``xpad``, ``cols``); each is None
    when not asked for (``need_input``, ``need_params``; ``grad_b`` also
    without ``bias``). ``xpad`` may be None when only ``grad_x`` is asked for
    (the transposed convolution's forward, ``kernels.conv_transpose``).

    Per chunk of samples, on the same threads:
    ``[grad_W | grad_b] += (cols.T @ grad_rows).T`` per group, with the
    chunk's im2col columns; for the input, the product of the output gradient
    with the weights, then col2im: each kernel offset's block is added into
    its strided window of the padded input gradient, and the padding is cropped.

    With ``groups == 1`` the input-gradient product is one product per kernel
    offset, ``(kh*kw, rows, C)``, so each offset's block is contiguous and its
    add runs along ``Wo*C`` values at a time; grouped convolutions make one
    product per group, ``(groups, rows, kh*kw*C/g)``, since ``kh*kw*groups``
    small products cost more than the strided adds save
    (benchmarks/README.md has the measurements).
    """
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    plan = _Plan(x_shape, W.shape, stride, pads, dilation, groups, bias, grad_out.dtype, xp)
    o, cg, kh, kw = W.shape
    (top, _), (left, _) = pads
    ho, wo, k = plan.ho, plan.wo, plan.k
    rows, g_rows = _grad_rows(grad_out, groups)
    windows = plan.windows(xpad) if need_params and cols is None else None  # the input-gradient path never reads it
    if groups == 1:
        w_offsets = W.reshape(o, c, kh * kw).transpose(2, 0, 1)  # [p*kw + q] = W[:, :, p, q]
    else:
        w_grouped = _grouped_weight(W, None, groups)
    gpad = xp.empty((n, plan.hp, plan.wp, groups, cg), dtype=grad_out.dtype) if need_input else None
    offsets = list(_offsets((kh, kw), stride, dilation, (ho, wo)))

    def input_blocks(gcols, c0, c1, rows_c):
        """``blocks[p, q, n, i, j, group, c]``: what offset (p, q) adds at (n, i, j)."""
        m, out = c1 - c0, gcols[:, : rows_c.stop - rows_c.start]
        if groups == 1:
            xp.matmul(rows[rows_c], w_offsets, out=out)
            return out.reshape(kh, kw, m, ho, wo, 1, c)
        xp.matmul(g_rows[:, rows_c], w_grouped, out=out)
        return out.reshape(groups, m, ho, wo, kh, kw, cg).transpose(4, 5, 1, 2, 3, 0, 6)

    def piece(lo, hi):
        r = plan.images * plan.positions
        gw = xp.zeros((groups, k + bias, o // groups), grad_out.dtype) if need_params else None
        buffer = plan.column_buffer() if need_params and cols is None else None
        gcols = None
        if need_input:
            gcols = xp.empty((kh * kw, r, c) if groups == 1 else (groups, r, k), grad_out.dtype)
        for c0, c1, rows_c in plan.chunks(lo, hi):
            if need_params:
                chunk = cols[:, rows_c] if cols is not None else plan.im2col(buffer, windows, c0, c1)
                gw += xp.matmul(chunk.transpose(0, 2, 1), g_rows[:, rows_c])
            if need_input:
                blocks = input_blocks(gcols, c0, c1, rows_c)
                gp = gpad[c0:c1]
                gp[...] = 0
                for p, q, rows_p, cols_q in offsets:
                    gp[:, rows_p, cols_q] += blocks[p, q]
        return gw

    partial = parallel_for(piece, n, rows, calls_blas=True)
    grad_x = grad_w = grad_b = None
    if need_input:
        grad_x = gpad[:, top : top + h, left : left + w].reshape(n, h, w, c).transpose(0, 3, 1, 2)
    if need_params:
        gw = sum(partial[1:], partial[0]).transpose(0, 2, 1)  # (g, O/g, k [+ 1])
        grad_b = gw[:, :, k].reshape(o) if bias else None
        grad_w = gw[:, :, :k].reshape(groups, o // groups, kh, kw, cg).transpose(0, 1, 4, 2, 3).reshape(W.shape)
    return grad_x, grad_w, grad_b
