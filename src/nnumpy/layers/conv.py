"""Convolutions: ``Conv2d`` and ``Conv1d`` (cross-correlation, as PyTorch).

The kernels work channels-last: the padded input is laid out ``(N, Hp, Wp, C)``,
and strided windows of it (``as_strided``, no copy) are copied into im2col
columns ``(groups, rows, kh*kw*C/groups + 1)`` (the last column is ones, for
the bias), a chunk of samples at a time, each multiplied with the weights
while it is still in cache (``_Plan``). The output is returned as an
``(N, C, H, W)`` view of channels-last memory, which the element-wise layers
that follow keep, so no transpose is ever copied between layers. Backward, in
the same chunks: the weight gradient is a product with the columns (copied
again from the padded input); the input gradient is a product with the
weights and one strided add per kernel offset (``kh*kw`` of them, no
``np.add.at``). ``Conv1d`` is ``Conv2d`` with ``H = 1``.
"""

import numpy as np

from .._checks import check_input, check_positive_int
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..module import Module
from ..parallel import parallel_for

__all__ = ["Conv2d", "Conv1d"]


# --------------------------------------------------------------------- kernels
CHUNK_BYTES = 1 << 20  # im2col rows made at a time (~1 MiB): they stay in cache until multiplied
KEEP_COLUMNS_BYTES = 8 << 20  # a training forward keeps im2col columns up to this size for backward


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
    """The geometry of one convolution call and its im2col, chunked over the batch.

    The kernels never build the im2col matrix of the whole batch (CNN-F's conv
    2: 29 MB, 9x its input). Each thread takes a contiguous piece of the batch
    and walks it in chunks of ``images`` samples (~``CHUNK_BYTES`` of columns):
    it copies the chunk's windows into its own small column buffer and
    multiplies them while they are still in its core's cache, with BLAS on one
    thread per call (``parallel_for(..., calls_blas=True)``). Backward copies
    the windows again from the padded input, unless the training forward kept
    the columns (at most ``KEEP_COLUMNS_BYTES`` of them).
    """

    def __init__(self, x_shape, W_shape, stride, pads, dilation, groups, bias, dtype, xp):
        self.n, self.c, h, w = x_shape
        self.o, self.cg, self.kh, self.kw = W_shape
        self.stride, self.dilation, self.groups, self.bias, self.dtype, self.xp = (
            stride, dilation, groups, bias, dtype, xp
        )  # fmt: skip
        (top, bottom), (left, right) = pads
        self.hp, self.wp = h + top + bottom, w + left + right
        (sh, sw), (dh, dw) = stride, dilation
        self.ho = (self.hp - dh * (self.kh - 1) - 1) // sh + 1
        self.wo = (self.wp - dw * (self.kw - 1) - 1) // sw + 1
        self.positions = self.ho * self.wo  # output positions (im2col rows) per sample
        self.k = self.kh * self.kw * self.cg  # im2col columns per group, without the bias column
        width = groups * (self.k + bias)
        one_chunk = xp is not np  # CuPy: the whole batch at once (the GPU is already parallel)
        self.images = self.n if one_chunk else max(1, CHUNK_BYTES // (self.positions * width * dtype.itemsize))
        # The copy runs fastest along the longer contiguous run: kw*C/g input
        # values (row-major columns) or Wo outputs (a column-major buffer, e.g.
        # a first layer with 1 channel: 8x faster); BLAS takes either layout.
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


def conv2d_forward(x, W, b, stride, pads, dilation, groups, keep_columns_bytes=0):
    """Forward convolution. Returns ``(y, xpad, cols)``; backward needs
    ``xpad``, and takes ``cols`` (the im2col columns of the whole batch) when
    given: they are kept (else None) when they take at most
    ``keep_columns_bytes``, since copying the windows again costs more than
    keeping them for small layers (CNN-F's first: 4 MB; its second: 29 MB).

    ``y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] *
    xpad[n, g(o)*C/g + c, i*sh + p*dh, j*sw + q*dw]``, with ``xpad`` the
    zero-padded input, channels-last ``(N, Hp, Wp, C)``. Per chunk of samples
    (``_Plan``): one matrix product of the chunk's im2col columns with the
    weights (and the bias, through a column of ones). ``y`` is an
    ``(N, O, Ho, Wo)`` view of channels-last memory.
    """
    xp = get_array_module(x)
    plan = _Plan(x.shape, W.shape, stride, pads, dilation, groups, b is not None, x.dtype, xp)
    xpad, fill_padding = _pad_channels_last(x, pads)
    windows = plan.windows(xpad)
    weights = _grouped_weight(W, b, groups).transpose(0, 2, 1)  # (g, k [+ 1], O/g)
    y = xp.empty((plan.n * plan.positions, plan.o), x.dtype)
    all_bytes = plan.n * plan.positions * groups * (plan.k + plan.bias) * x.itemsize
    kept = plan.column_buffer(plan.n) if all_bytes <= keep_columns_bytes else None

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
    """``(grad_x, grad_W, grad_b)`` of ``conv2d_forward`` (``xpad`` and
    ``cols`` are what it returned); each is None when not asked for
    (``need_input``, ``need_params``; ``grad_b`` also without ``bias``).

    Per chunk of samples (``_Plan``), on the same threads:
    ``[gradW | gradb] += (cols.T @ grad_rows).T`` per group, with the
    chunk's im2col columns (from ``cols``, else copied again from ``xpad``); and for the input,
    the product of the output gradient with the weights, then col2im: each
    kernel offset's block is added into its strided window of the padded
    input gradient (``kh*kw`` strided adds, no ``np.add.at``), and the
    padding is cropped.

    With ``groups == 1`` the input-gradient product is one product per kernel
    offset, ``(kh*kw, rows, C)``, so each offset's block is contiguous and its
    add runs along ``Wo*C`` values at a time (one ``(rows, kh*kw*C)`` product
    is ~30 % faster, but its offsets interleave every ``C`` values and the adds
    took twice as long). Grouped convolutions keep one product per group,
    ``(groups, rows, kh*kw*C/g)``: ``kh*kw*groups`` small products cost more
    than the adds save (depthwise 44 -> 110 ms).
    """
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    plan = _Plan(x_shape, W.shape, stride, pads, dilation, groups, bias, grad_out.dtype, xp)
    o, cg, kh, kw = W.shape
    (sh, sw), (dh, dw) = stride, dilation
    (top, bottom), (left, right) = pads
    ho, wo, k = plan.ho, plan.wo, plan.k
    rows, g_rows = _grad_rows(grad_out, groups)
    windows = plan.windows(xpad)
    if groups == 1:
        w_offsets = W.reshape(o, c, kh * kw).transpose(2, 0, 1)  # [p*kw + q] = W[:, :, p, q]
    else:
        w_grouped = _grouped_weight(W, None, groups)
    gpad = xp.empty((n, plan.hp, plan.wp, groups, cg), dtype=grad_out.dtype) if need_input else None
    offsets = [
        (p, q, slice(p * dh, p * dh + sh * (ho - 1) + 1, sh), slice(q * dw, q * dw + sw * (wo - 1) + 1, sw))
        for p in range(kh)
        for q in range(kw)
    ]

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
        self._xpad = None  # the padded channels-last input of the last forward, for backward
        self._cols = None  # and its im2col columns when small enough to keep (KEEP_COLUMNS_BYTES)

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
        keep = KEEP_COLUMNS_BYTES if self.training else 0
        x, W = self._as_2d(input), self._weight_2d(input)
        y, self._xpad, self._cols = conv2d_forward(x, W, b, *self._geometry(), self.groups, keep_columns_bytes=keep)
        self._kept_for_acc = None
        self.output = self._from_2d(y)
        return self.output

    def _backward_kernel(self, input, gradOutput, need_input, need_params):
        return conv2d_backward(
            self._as_2d(gradOutput), self._xpad, self._weight_2d(input), self._as_2d(input).shape,
            *self._geometry(), self.groups, bias=self.b is not None, need_input=need_input, need_params=need_params,
            cols=self._cols,
        )  # fmt: skip

    def updateGradInput(self, input, gradOutput):
        # The parameter gradients come out of the same pass over the chunks; accGradParameters,
        # which the same backward calls next (unless the module is frozen), takes them.
        need_params = not self._frozen
        gx, gw, gb = self._backward_kernel(input, gradOutput, True, need_params)
        if need_params:
            self._keep_for_acc(gradOutput, (gw, gb))
        self.gradInput = self._from_2d(gx)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        cached = self._take_kept(gradOutput)
        gw, gb = cached if cached is not None else self._backward_kernel(input, gradOutput, False, True)[1:]
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

    Memory: the module keeps the zero-padded input of the last forward; the
    im2col columns, ``kh*kw`` times larger, exist ~1 MiB at a time, or are
    kept for backward when a training batch's take at most
    ``KEEP_COLUMNS_BYTES`` (8 MiB, module constant).

    Backward (per group, with ``cols`` the im2col matrix and ``G`` the output
    gradient as a ``(N*Ho*Wo, O)`` matrix, both taken chunk by chunk):
        ``gradW += G.T @ cols``; ``gradb += G.sum(0)``;
        ``gradInput = col2im(G @ W)``: each kernel offset's columns are
        added back to the input positions they were read from.

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
