"""Convolutions: ``Conv2d`` and ``Conv1d`` (cross-correlation, as PyTorch).

The kernels work channels-last: the padded input is laid out ``(N, Hp, Wp, C)``,
strided windows of it (``as_strided``, no copy) are copied once into the
column matrix ``cols`` of shape ``(groups, N*Ho*Wo, kh*kw*C/groups + 1)`` (the
last column is ones, for the bias) and the convolution is one matrix product
with the weights. The output is returned as an ``(N, C, H, W)`` view of
channels-last memory, which the element-wise layers that follow keep, so no
transpose is ever copied between layers. Backward: the weight gradient is one
matrix product with ``cols``; the input gradient is one product and one
strided add per kernel offset (``kh*kw`` of them, no ``np.add.at``).
``Conv1d`` is ``Conv2d`` with ``H = 1``.
"""

import numpy as np

from .._checks import check_input, check_positive_int
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..module import Module
from ..parallel import parallel_for

__all__ = ["Conv2d", "Conv1d"]


# --------------------------------------------------------------------- kernels
def _pad_channels_last(x, pads):
    """``(xpad, fill)``: ``xpad`` is ``x`` (N, C, H, W) as a zero-padded
    channels-last array (N, Hp, Wp, C), and ``fill(lo, hi)`` writes samples
    ``lo:hi`` of it (the caller runs it, so the padding shares the im2col
    copy's pieces and threads). When nothing needs padding, ``xpad`` is a view
    of ``x`` and ``fill`` does nothing."""
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
    ``cols``, with the bias ``b`` (O,) as one more column when given."""
    o, cg, kh, kw = W.shape
    Wg = W.reshape(groups, o // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2).reshape(groups, o // groups, -1)
    if b is None:
        return Wg
    return get_array_module(W).concatenate([Wg, b.reshape(groups, o // groups, 1)], axis=2)


def conv2d_forward(x, W, b, stride, pads, dilation, groups, cols_out=None):
    """Forward convolution. Returns ``(y, cols)``; ``cols`` is what backward needs.

    ``y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] *
    xpad[n, g(o)*C/g + c, i*sh + p*dh, j*sw + q*dw]``. ``cols`` is
    ``(groups, N*Ho*Wo, kh*kw*C/g [+ 1])``: with a bias, a last column of
    ones makes the bias part of the matrix product (no separate pass over the
    output, and ``gradb`` comes out of the weight-gradient product). ``cols_out``:
    a previous ``cols`` to reuse when it fits (saves allocating and
    page-faulting tens of MB per call).
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    o, cg, kh, kw = W.shape
    (sh, sw), (dh, dw) = stride, dilation
    xpad, fill_padding = _pad_channels_last(x, pads)
    ho = (xpad.shape[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (xpad.shape[2] - dw * (kw - 1) - 1) // sw + 1
    s = xpad.strides
    # windows[n, i, j, p, q, g, c] = xpad[n, i*sh + p*dh, j*sw + q*dw, g*cg + c]
    windows = xp.lib.stride_tricks.as_strided(
        xpad,
        shape=(n, ho, wo, kh, kw, groups, cg),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3] * cg, s[3]),
    )
    # im2col: one copy of the windows. The copy runs fastest along the longer
    # contiguous run: kw*C/g input values (row-major cols) or Wo outputs (a
    # column-major buffer, e.g. a first layer with 1 channel: 8x faster);
    # BLAS takes either layout of cols as it is.
    k_major = kw * cg < wo
    npos, k = n * ho * wo, kh * kw * cg
    shape = (groups, npos, k + (b is not None))
    fits = (
        cols_out is not None
        and cols_out.shape == shape
        and cols_out.dtype == x.dtype
        and (cols_out.strides[1] == x.itemsize) == k_major
    )
    if not fits:
        if k_major:
            cols_out = xp.empty((groups, shape[2], npos), x.dtype).transpose(0, 2, 1)
        else:
            cols_out = xp.empty(shape, x.dtype)
        if b is not None:
            cols_out[:, :, k] = 1
    cols = cols_out
    st = cols.strides  # (group, position, column); every target below is a view of cols
    if k_major:
        target, order = (groups, kh, kw, cg, n, ho, wo), (5, 3, 4, 6, 0, 1, 2)
        t_strides = (st[0], st[2] * kw * cg, st[2] * cg, st[2], st[1] * ho * wo, st[1] * wo, st[1])
    else:
        target, order = (groups, n, ho, wo, kh, kw, cg), (5, 0, 1, 2, 3, 4, 6)
        t_strides = (st[0], st[1] * ho * wo, st[1] * wo, st[1], st[2] * kw * cg, st[2] * cg, st[2])
    dst = xp.lib.stride_tricks.as_strided(cols, shape=target, strides=t_strides)
    src = windows.transpose(order)
    batch_axis = order.index(0)  # the copy is split over the batch on nnumpy's threads
    cut = (slice(None),) * batch_axis

    def piece(lo, hi):  # pad and copy the windows of samples lo:hi
        fill_padding(lo, hi)
        xp.copyto(dst[(*cut, slice(lo, hi))], src[(*cut, slice(lo, hi))])

    parallel_for(piece, n, cols)
    if groups == 1:
        y = cols[0] @ _grouped_weight(W, b, 1)[0].T
    else:
        y = xp.matmul(cols, _grouped_weight(W, b, groups).transpose(0, 2, 1))
        y = y.transpose(1, 0, 2).reshape(npos, o)
    return y.reshape(n, ho, wo, o).transpose(0, 3, 1, 2), cols


def _grad_rows(grad_out, groups):
    """``grad_out`` (N, O, Ho, Wo) as the stack (g, N*Ho*Wo, O/g) (a view when channels-last)."""
    n, o, ho, wo = grad_out.shape
    rows = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
    return rows.reshape(-1, groups, o // groups).transpose(1, 0, 2), rows


def conv2d_backward_weight(grad_out, cols, W_shape, groups, bias=True):
    """``(gradW, gradb)``: ``[gradW | gradb] = (cols.T @ grad_rows).T`` per group
    (``cols``' column of ones gives ``gradb = sum(grad_out)`` over N, Ho, Wo;
    None when ``bias`` is False)."""
    o, cg, kh, kw = W_shape
    g_rows, rows = _grad_rows(grad_out, groups)
    # cols.T @ rows (then a tiny transpose) is ~3x faster in OpenBLAS than rows.T @ cols
    if groups == 1:
        gw = (cols[0].T @ rows).T[None]
    else:
        gw = get_array_module(cols).matmul(cols.transpose(0, 2, 1), g_rows).transpose(0, 2, 1)
    k = kh * kw * cg
    gb = gw[:, :, k].reshape(o) if bias else None
    gw = gw[:, :, :k].reshape(groups, o // groups, kh, kw, cg).transpose(0, 1, 4, 2, 3).reshape(W_shape)
    return gw, gb


def conv2d_backward_input(grad_out, W, x_shape, stride, pads, dilation, groups, gcols_out=None):
    """``(gradInput, gcols)``: the product of the output gradient with the
    weights, ``gcols`` (written into ``gcols_out`` when it fits), then col2im:
    each kernel offset's block of ``gcols`` is added into its strided window
    of the padded input gradient (``kh*kw`` strided adds, no ``np.add.at``),
    and the padding is cropped.

    With ``groups == 1``, ``gcols`` is ``(kh*kw, N*Ho*Wo, C)``, one product
    per kernel offset in one batched ``matmul``: each offset's block is
    contiguous, so the adds run along ``Wo*C`` values at a time. (One
    ``(N*Ho*Wo, kh*kw*C)`` product is ~30 % faster, but there the offsets
    interleave every ``C`` values and the adds took twice as long: CNN-F's
    conv 2 backward 7.4 -> 6.6 ms, a 3-channel input 15.6 -> 5.4 ms.) Grouped
    convolutions keep one product per group, ``(groups, N*Ho*Wo, kh*kw*C/g)``:
    ``kh*kw*groups`` small products cost more than the adds save (depthwise
    44 -> 110 ms).
    """
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    o, cg, kh, kw = W.shape
    (sh, sw), (dh, dw) = stride, dilation
    (top, bottom), (left, right) = pads
    _, ho, wo = grad_out.shape[1:]
    g_rows, rows = _grad_rows(grad_out, groups)
    shape = (kh * kw, n * ho * wo, c) if groups == 1 else (groups, n * ho * wo, kh * kw * cg)
    fits = gcols_out is not None and gcols_out.shape == shape and gcols_out.dtype == grad_out.dtype
    gcols = gcols_out if fits else xp.empty(shape, dtype=grad_out.dtype)
    # blocks[p, q, n, i, j, group, c]: what offset (p, q) adds at output position (n, i, j)
    if groups == 1:
        xp.matmul(rows, W.reshape(o, c, kh * kw).transpose(2, 0, 1), out=gcols)
        blocks = gcols.reshape(kh, kw, n, ho, wo, 1, c)
    else:
        xp.matmul(g_rows, _grouped_weight(W, None, groups), out=gcols)
        blocks = gcols.reshape(groups, n, ho, wo, kh, kw, cg).transpose(4, 5, 1, 2, 3, 0, 6)
    gpad = xp.empty((n, h + top + bottom, w + left + right, groups, cg), dtype=grad_out.dtype)
    offsets = [
        (p, q, slice(p * dh, p * dh + sh * (ho - 1) + 1, sh), slice(q * dw, q * dw + sw * (wo - 1) + 1, sw))
        for p in range(kh)
        for q in range(kw)
    ]

    def piece(lo, hi):  # col2im of a batch piece, on nnumpy's threads
        gp = gpad[lo:hi]
        gp[...] = 0
        for p, q, rows_p, cols_q in offsets:
            gp[:, rows_p, cols_q] += blocks[p, q, lo:hi]

    parallel_for(piece, n, gpad)
    gx = gpad[:, top : top + h, left : left + w].reshape(n, h, w, c)
    return gx.transpose(0, 3, 1, 2), gcols


def conv2d_backward(grad_out, cols, W, x_shape, stride, pads, dilation, groups, bias=True):
    """``(grad_x, grad_W, grad_b)`` of ``conv2d_forward`` (``cols`` is what it returned)."""
    grad_x, _ = conv2d_backward_input(grad_out, W, x_shape, stride, pads, dilation, groups)
    return (grad_x, *conv2d_backward_weight(grad_out, cols, W.shape, groups, bias))


# --------------------------------------------------------------------- modules
def int_tuple(name, arg, value, n, minimum=1):
    """An int or an n-sequence of ints as an n-tuple of ints >= ``minimum``
    (shared by the convolution and pooling layers)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise ValueError(f"{name}: {arg} must be an int or a {n}-tuple, got {value!r}")
    return tuple(check_positive_int(name, arg, v, minimum) for v in items)


def resolve_padding(name, padding, kernel, stride, dilation):
    """``((lo, hi), ...)`` per spatial axis from the ``padding`` argument.

    None: ``dilation*(k-1)//2`` on both sides (the seeds' "same"; PyTorch's
    default is 0); ``'same'``: PyTorch's split (``lo = total//2``, stride 1 only);
    ``'valid'``: 0; an int or a tuple: that many zeros on both sides.
    """
    n = len(kernel)
    if padding is None:
        return tuple((d * (k - 1) // 2,) * 2 for k, d in zip(kernel, dilation, strict=True))
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride={stride}")
            total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{name}: padding must be None, 'same', 'valid', an int or a tuple, got {padding!r}")
    pads = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * n
    if len(pads) != n or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0 for p in pads):
        raise ValueError(f"{name}: padding must be an int >= 0 or a {n}-tuple of them, got {padding!r}")
    return tuple((int(p), int(p)) for p in pads)


class _ConvNd(Module):
    """Shared construction, checks and protocol of ``Conv1d``/``Conv2d``."""

    _parameters = (("W", "gradW"), ("b", "gradb"))
    _nd = 2
    eval_cache_bytes = 256 * 2**20  # largest im2col buffer kept between evaluate-mode calls

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=None,
        dilation=1,
        groups=1,
        bias=True,
        dtype=DEFAULT_DTYPE,
        rng=None,
    ):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.in_channels = check_positive_int(name, "in_channels", in_channels)
        self.out_channels = check_positive_int(name, "out_channels", out_channels)
        self.groups = check_positive_int(name, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must both be divisible by groups ({groups})"
            )
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd)
        self.stride = int_tuple(name, "stride", stride, nd)
        self.dilation = int_tuple(name, "dilation", dilation, nd)
        self.padding = padding
        self.pads = resolve_padding(name, padding, self.kernel_size, self.stride, self.dilation)
        rng = resolve_rng(rng)
        fan_in = in_channels // groups * int(np.prod(self.kernel_size))
        bound = 1.0 / np.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.W = rng.uniform(-bound, bound, size=shape).astype(dtype)
        self.b = rng.uniform(-bound, bound, size=out_channels).astype(dtype) if bias else None
        self.gradW = np.zeros_like(self.W)
        self.gradb = np.zeros_like(self.b) if bias else None
        self._cols = self._gcols = None  # im2col buffers, reused from call to call

    # 2-D views of the parameters and data (Conv1d adds a unit H axis)
    def _as_2d(self, a):
        return a

    def _from_2d(self, a):
        return a

    def _weight_2d(self, x):
        W = self.W if self.W.dtype == x.dtype else self.W.astype(x.dtype)
        return self._as_2d(W)

    def _geometry(self):
        return self.stride, self.pads, self.dilation

    def _check(self, input):
        c, nd = self.in_channels, self._nd
        spatial = ("L",) if nd == 1 else ("H", "W")
        layout = f"(N, {c}, {', '.join(spatial)})"
        check_input(self, input, ndim=nd + 2, features=c, layout=layout)
        size = input.shape[2:]
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, self.pads, strict=True))
        reach = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))
        if any(p < r for p, r in zip(padded, reach, strict=True)):
            raise ValueError(
                f"{self!r}: input of spatial size {tuple(size)} (padded {padded}) is smaller than "
                f"the dilated kernel {reach}"
            )

    def updateOutput(self, input):
        self._check(input)
        b = None if self.b is None else self.b.astype(input.dtype, copy=False)
        x, W = self._as_2d(input), self._weight_2d(input)
        y, cols = conv2d_forward(x, W, b, *self._geometry(), self.groups, cols_out=self._cols)
        # training keeps cols for backward (its buffer is reused at the next step); evaluate
        # mode keeps it only up to eval_cache_bytes (batch 10,000 through CNN-F's conv 2: 2 GB)
        self._cols = cols if self.training or cols.nbytes <= self.eval_cache_bytes else None
        self.output = self._from_2d(y)
        return self.output

    def updateGradInput(self, input, gradOutput):
        x = self._as_2d(input)
        g, self._gcols = conv2d_backward_input(
            self._as_2d(gradOutput), self._weight_2d(input), x.shape, *self._geometry(), self.groups, self._gcols
        )
        self.gradInput = self._from_2d(g)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        g = self._as_2d(gradOutput)
        W_shape = self._as_2d(self.W).shape
        cols = self._cols
        if cols is None:  # forward ran in evaluate mode: rebuild the columns
            b = None if self.b is None else self.b.astype(input.dtype, copy=False)
            cols = conv2d_forward(self._as_2d(input), self._weight_2d(input), b, *self._geometry(), self.groups)[1]
        gw, gb = conv2d_backward_weight(g, cols, W_shape, self.groups, bias=self.b is not None)
        self.gradW += gw.reshape(self.W.shape)
        if self.b is not None:
            self.gradb += gb

    def extra_repr(self):
        text = f"{self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding!r}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text if self.b is not None else text + ", bias=False"


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation, as PyTorch):
    ``y[n, o] = b[o] + sum_c W[o, c] * x[n, group(o) channels c]`` over each window.

    Args:
        in_channels, out_channels: C and O (both divisible by ``groups``).
        kernel_size: an int or ``(kh, kw)``.
        stride: an int or ``(sh, sw)`` (1).
        padding: **None (the default) pads ``dilation*(k-1)//2`` zeros on each
            side** (the seeds' "same": ``Conv2d(3, 8, 3)`` keeps H x W at
            stride 1; PyTorch's default is 0, pass ``padding=0`` or ``'valid'``
            for it); ``'same'`` (stride 1; for even kernels the extra zero goes
            at the bottom/right, as PyTorch); ``'valid'`` (0); an int or
            ``(ph, pw)``.
        dilation: an int or ``(dh, dw)`` (1).
        groups: split channels into this many independent groups (1);
            ``groups = in_channels`` is a depthwise convolution.
        bias: learn an additive bias (True).
        dtype, rng: parameter dtype (float32) and initialisation generator.

    Shape:
        Input ``(N, C, H, W)``; output ``(N, O, Ho, Wo)`` with
        ``Ho = floor((H + top + bottom - dh*(kh-1) - 1) / sh) + 1`` and
        ``Wo = floor((W + left + right - dw*(kw-1) - 1) / sw) + 1``.
        The output is a view of channels-last memory (``np.ascontiguousarray``
        gives an NCHW copy if one is needed).

    Attributes:
        W: ``(O, C/groups, kh, kw)``, uniform in ``±1/sqrt(fan_in)``,
            ``fan_in = C/groups*kh*kw`` (PyTorch's bound). gradW: same shape.
        b: ``(O,)``, same initialisation, None when ``bias=False``. gradb.
        kernel_size, stride, dilation: 2-tuples; padding: the argument as
        given; pads: ``((top, bottom), (left, right))`` as resolved.
        eval_cache_bytes: the im2col buffer (``N*Ho*Wo x C*kh*kw`` values) is
        reused between calls; in evaluate mode it is kept only up to this
        size (256 MiB, class attribute).

    Backward (per group, with ``cols`` the im2col matrix of the forward and
    ``G`` the output gradient as a ``(N*Ho*Wo, O)`` matrix):
        ``gradW += G.T @ cols``; ``gradb += G.sum(0)``;
        ``gradInput = col2im(G @ W)``: each kernel offset's column slice is
        added back to the input positions it was read from.

    Example:
        >>> import numpy as np
        >>> conv = Conv2d(3, 8, 3)
        >>> conv.forward(np.zeros((2, 3, 5, 7), np.float32)).shape
        (2, 8, 5, 7)
        >>> Conv2d(3, 8, (3, 2), stride=2, padding=0).forward(np.zeros((2, 3, 5, 7), np.float32)).shape
        (2, 8, 2, 3)
    """


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C, L)``: ``Conv2d`` with a unit height.

    Same arguments as ``Conv2d`` with ints (or 1-tuples) for ``kernel_size``,
    ``stride``, ``padding`` and ``dilation``; the same default padding
    ``dilation*(k-1)//2`` on each side (PyTorch's is 0).

    Shape:
        Input ``(N, C, L)``; output ``(N, O, Lo)``,
        ``Lo = floor((L + left + right - d*(k-1) - 1) / s) + 1``.

    Attributes:
        W: ``(O, C/groups, k)``; b: ``(O,)`` or None; gradW, gradb;
        kernel_size, stride, dilation: 1-tuples; pads: ``((left, right),)``.

    Backward: as ``Conv2d``.

    Example:
        >>> import numpy as np
        >>> Conv1d(4, 6, 5, stride=2).forward(np.zeros((3, 4, 20), np.float32)).shape
        (3, 6, 10)
    """

    _nd = 1

    def _as_2d(self, a):
        return a[:, :, None, :]

    def _from_2d(self, a):
        return a[:, :, 0, :]

    def _geometry(self):
        return (1, *self.stride), ((0, 0), *self.pads), (1, *self.dilation)
