"""Convolutions: ``Conv2d`` and ``Conv1d`` (cross-correlation, as PyTorch).

``y[n, o] = b[o] + sum_{c, p, q} W[o, c, p, q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]``
over the input channels ``c`` of output channel ``o``'s group. The kernels
(``nnumpy.kernels.conv``: im2col products, chunked over the batch, beside a
plain reference) compute the output and, in one pass, both gradients.
``Conv1d`` is ``Conv2d`` with ``H = 1``.
"""

import numpy as np

from .._checks import as_shape, check_input, check_positive_int, shape_probe
from ..backend import DEFAULT_DTYPE, resolve_rng
from ..kernels.conv import conv2d_backward, conv2d_forward
from ..module import Module
from .padding import pad_axis, unpad_axis

__all__ = ["Conv2d", "Conv1d"]


def int_tuple(name, arg, value, n, minimum=1):
    """An int or an n-sequence of ints as an n-tuple of ints >= ``minimum``
    (shared by the convolution and pooling layers)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise ValueError(f"{name}: {arg} must be an int or a {n}-tuple, got {value!r}")
    return tuple(check_positive_int(name, arg, v, minimum) for v in items)


def config_kernel_size(config, nd):
    """A configuration's ``kernel_size`` as an ``nd``-tuple (``parameter_shapes``)."""
    k = config["kernel_size"]
    return (k,) * nd if isinstance(k, int) else tuple(k)


def set_conv_args(layer, in_channels, out_channels, kernel_size, stride, dilation, groups):
    """Check and set a convolution layer's ``in_channels``, ``out_channels``,
    ``groups`` (dividing both) and its ``kernel_size``, ``stride``,
    ``dilation`` as ``layer._nd``-tuples (shared by ``Conv*d`` and
    ``ConvTranspose*d``); errors name the layer's class."""
    name, nd = type(layer).__name__, layer._nd
    layer.in_channels = check_positive_int(name, "in_channels", in_channels)
    layer.out_channels = check_positive_int(name, "out_channels", out_channels)
    layer.groups = check_positive_int(name, "groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
            f"must both be divisible by groups ({groups})"
        )
    layer.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd)
    layer.stride = int_tuple(name, "stride", stride, nd)
    layer.dilation = int_tuple(name, "dilation", dilation, nd)


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


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
        padding_mode="zeros",
        dtype=DEFAULT_DTYPE,
        rng=None,
    ):
        super().__init__()
        name = type(self).__name__
        set_conv_args(self, in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = padding
        self.pads = resolve_padding(name, padding, self.kernel_size, self.stride, self.dilation)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        rng = resolve_rng(rng)
        fan_in = in_channels // groups * int(np.prod(self.kernel_size))
        bound = 1.0 / np.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.W = rng.uniform(-bound, bound, size=shape).astype(dtype)
        self.b = rng.uniform(-bound, bound, size=out_channels).astype(dtype) if bias else None
        self.gradW = np.zeros_like(self.W)
        self.gradb = np.zeros_like(self.b) if bias else None
        self._xpad = None  # the padded channels-last input of the last forward, for backward
        self._cols = None  # and its im2col columns, when a training forward kept them

    @classmethod
    def parameter_shapes(cls, config):
        """``W``: ``(out_channels, in_channels // groups, *kernel_size)``; ``b``:
        ``(out_channels,)`` (model files check them before building)."""
        k = config_kernel_size(config, cls._nd)
        shapes = {"W": (config["out_channels"], config["in_channels"] // config.get("groups", 1), *k)}
        if config.get("bias", True):
            shapes["b"] = (config["out_channels"],)
        return shapes

    # 2-D views of the parameters and data (Conv1d adds a unit H axis)
    def _as_2d(self, a):
        return a

    def _from_2d(self, a):
        return a

    def _weight_2d(self, x):
        W = self.W if self.W.dtype == x.dtype else self.W.astype(x.dtype)
        return self._as_2d(W)

    def _geometry(self):
        return self.stride, self._kernel_pads(), self.dilation

    def _pads_2d(self):
        return self.pads if self._nd == 2 else ((0, 0), *self.pads)

    def _kernel_pads(self):
        """The zero padding the kernel adds (none when ``padding_mode`` pads the input first)."""
        return self._pads_2d() if self.padding_mode == "zeros" else ((0, 0), (0, 0))

    def _padded_2d(self, input):
        """The input as the kernel convolves it: padded by ``padding_mode`` (zeros: by the kernel)."""
        x = self._as_2d(input)
        if self.padding_mode != "zeros":
            for axis, (lo, hi) in zip((2, 3), self._pads_2d(), strict=True):
                x = pad_axis(x, axis, lo, hi, self.padding_mode)
        return x

    def _unpad_2d(self, grad, input):
        """The gradient w.r.t. ``input`` from the one w.r.t. ``_padded_2d(input)``: each
        padded position's gradient goes back to the input position it copies."""
        if self.padding_mode != "zeros":
            size = self._as_2d(input).shape[2:]
            for axis, (lo, hi), n in zip((3, 2), self._pads_2d()[::-1], size[::-1], strict=True):
                grad = unpad_axis(grad, axis, lo, hi, n, self.padding_mode)
        return grad

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
        mode = self.padding_mode
        if mode in ("reflect", "circular") and any(
            max(lo, hi) > s - (mode == "reflect") for s, (lo, hi) in zip(size, self.pads, strict=True)
        ):
            bound = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{self!r}: padding_mode={mode!r} needs padding {bound} the input's spatial size, "
                f"got padding {self.pads} for size {tuple(size)}"
            )

    def output_shape(self, input_shape):
        """``(N, out_channels, *out)``, ``out = (size + pads - dilation*(k-1) - 1) // stride + 1``
        per spatial axis; raises what ``forward`` would."""
        shape = as_shape(self, input_shape)
        self._check(shape_probe(shape))
        out = tuple(
            (s + lo + hi - d * (k - 1) - 1) // st + 1
            for s, (lo, hi), k, d, st in zip(shape[2:], self.pads, self.kernel_size, self.dilation, self.stride,
                                             strict=True)
        )
        return (shape[0], self.out_channels, *out)

    def updateOutput(self, input):
        self._check(input)
        b = None if self.b is None else self.b.astype(input.dtype, copy=False)
        x, W = self._padded_2d(input), self._weight_2d(input)
        y, self._xpad, self._cols = conv2d_forward(x, W, b, *self._geometry(), self.groups, keep_columns=self.training)
        self._kept_for_acc = None
        self.output = self._from_2d(y)
        return self.output

    def _backward_kernel(self, input, gradOutput, need_input, need_params):
        return conv2d_backward(
            self._as_2d(gradOutput), self._xpad, self._weight_2d(input), self._padded_shape(input),
            *self._geometry(), self.groups, bias=self.b is not None, need_input=need_input, need_params=need_params,
            cols=self._cols,
        )  # fmt: skip

    def _padded_shape(self, input):
        shape = self._as_2d(input).shape
        pads = self._pads_2d() if self.padding_mode != "zeros" else ((0, 0), (0, 0))
        return (*shape[:2], *(s + lo + hi for s, (lo, hi) in zip(shape[2:], pads, strict=True)))

    def updateGradInput(self, input, gradOutput):
        # The parameter gradients come out of the same pass over the chunks; accGradParameters,
        # which the same backward calls next (unless the module is frozen), takes them.
        need_params = not self._frozen
        gx, gw, gb = self._backward_kernel(input, gradOutput, True, need_params)
        if need_params:
            self._keep_for_acc(gradOutput, (gw, gb))
        self.gradInput = self._from_2d(self._unpad_2d(gx, input))
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
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
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
        padding_mode: what the padding holds, as PyTorch: ``'zeros'`` (the
            default), ``'reflect'`` (the input mirrored, edge not repeated;
            padding smaller than the input), ``'replicate'`` (the edge
            repeated) or ``'circular'`` (the input wrapped around; padding at
            most the input). Other than zeros, the input is padded first
            (``layers.padding``) and the kernel pads nothing; backward adds
            each padded position's gradient back onto the input position it
            copies.
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
    im2col columns, ``kh*kw`` times larger, exist a chunk (~1 MiB) at a time,
    or are kept for backward when a training batch's are small
    (``nnumpy.kernels.tuning``: ``chunk_bytes``, ``keep_columns_bytes``).

    Backward (per group, with ``cols`` the im2col matrix, one row per output
    position and one column per ``(p, q, c)``, and ``G`` the output gradient
    as a ``(N*Ho*Wo, O)`` matrix):
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
        >>> Conv2d(3, 8, 3, padding=1, padding_mode="circular").forward(np.zeros((2, 3, 5, 7), np.float32)).shape
        (2, 8, 5, 7)
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
        return (1, *self.stride), self._kernel_pads(), (1, *self.dilation)
