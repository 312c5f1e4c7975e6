"""Transposed convolutions: ``ConvTranspose2d`` and ``ConvTranspose1d`` (PyTorch's).

``full[n, o, i*sh + p*dh, j*sw + q*dw] += sum_c W[c, o, p, q] * x[n, c, i, j]``
over the input channels ``c`` of output channel ``o``'s group, and
``y = b + full`` cropped by ``padding`` on each side (``output_padding``
more rows/columns kept at the bottom/right). It is the transpose of
``Conv2d`` with the same geometry: its forward is the convolution's input
gradient, its backward the convolution's forward and weight gradient
(``nnumpy.kernels.conv_transpose``, built on ``nnumpy.kernels.conv``).
``ConvTranspose1d`` is ``ConvTranspose2d`` with ``H = 1``.
"""

import numpy as np

from .._checks import check_float_array
from ..backend import DEFAULT_DTYPE, resolve_rng
from ..kernels.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward, transpose_geometry
from ..module import Module
from .conv import config_kernel_size, int_tuple, set_conv_args

__all__ = ["ConvTranspose2d", "ConvTranspose1d"]


class _ConvTransposeNd(Module):
    """Shared construction, checks and protocol of ``ConvTranspose1d``/``ConvTranspose2d``."""

    _parameters = (("weight", "gradWeight"), ("bias", "gradBias"))
    _nd = 2

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        padding_mode="zeros",
        dtype=DEFAULT_DTYPE,
        rng=None,
    ):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        set_conv_args(self, in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = int_tuple(name, "padding", padding, nd, minimum=0)
        self.output_padding = int_tuple(name, "output_padding", output_padding, nd, minimum=0)
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)):
            raise ValueError(
                f"{name}: output_padding {self.output_padding} must be smaller than the stride {self.stride} "
                f"or the dilation {self.dilation} (as PyTorch)"
            )
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported (as PyTorch), got {padding_mode!r}")
        self.padding_mode = padding_mode
        rng = resolve_rng(rng)
        # PyTorch's bound: fan_in = weight.shape[1] * prod(kernel) = out_channels/groups * prod(kernel)
        fan_in = out_channels // groups * int(np.prod(self.kernel_size))
        bound = 1.0 / np.sqrt(fan_in)
        shape = (in_channels, out_channels // groups, *self.kernel_size)
        self.weight = rng.uniform(-bound, bound, size=shape).astype(dtype)
        self.bias = rng.uniform(-bound, bound, size=out_channels).astype(dtype) if bias else None
        self.gradWeight = np.zeros_like(self.weight)
        self.gradBias = np.zeros_like(self.bias) if bias else None
        self._call_output_padding = None  # from forward(input, output_size), for that call only

    @classmethod
    def parameter_shapes(cls, config):
        """``weight``: ``(in_channels, out_channels // groups, *kernel_size)``;
        ``bias``: ``(out_channels,)`` (model files check them before building)."""
        k = config_kernel_size(config, cls._nd)
        shapes = {"weight": (config["in_channels"], config["out_channels"] // config.get("groups", 1), *k)}
        if config.get("bias", True):
            shapes["bias"] = (config["out_channels"],)
        return shapes

    # 2-D views of the data and geometry (ConvTranspose1d adds a unit H axis)
    def _as_2d(self, a):
        return a

    def _from_2d(self, a):
        return a

    def _geometry(self, output_padding):
        return self.stride, self.padding, output_padding, self.dilation

    def _weight(self, x):
        W = self.weight if self.weight.dtype == x.dtype else self.weight.astype(x.dtype)
        return W if self._nd == 2 else W[:, :, None, :]

    def output_shape(self, input_shape, output_size=None):
        """The output shape for an input of shape ``input_shape`` (and, as in
        ``forward``, an optional ``output_size``); raises what ``forward`` would."""
        nd, c = self._nd, self.in_channels
        layout = f"(N, {c}, {', '.join(('L',) if nd == 1 else ('H', 'W'))})"
        shape = tuple(input_shape)
        if len(shape) != nd + 2 or shape[1] != c:
            raise ValueError(f"{self!r}: expected input of shape {layout}, got {shape}")
        op = self._output_padding_for(shape[2:], output_size)
        out = transpose_geometry(shape[2:], self.kernel_size, self.stride, self.padding, op, self.dilation)[0]
        if min(out, default=1) < 1:
            raise ValueError(f"{self!r}: input of spatial size {shape[2:]} gives an empty output {out}")
        return (shape[0], self.out_channels, *out)

    def _output_padding_for(self, size, output_size):
        """``output_padding``, or the one that gives ``output_size`` (PyTorch's rule:
        between the smallest output and ``stride - 1`` more)."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        wanted = tuple(output_size)
        if len(wanted) == nd + 2:
            wanted = wanted[2:]
        if len(wanted) != nd or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in wanted):
            raise ValueError(f"{self!r}: output_size must be {nd} ints (or {nd + 2} with N and C), got {output_size!r}")
        zero = (0,) * nd
        smallest = transpose_geometry(size, self.kernel_size, self.stride, self.padding, zero, self.dilation)[0]
        if any(not lo <= w <= lo + s - 1 for w, lo, s in zip(wanted, smallest, self.stride, strict=True)):
            largest = tuple(lo + s - 1 for lo, s in zip(smallest, self.stride, strict=True))
            raise ValueError(
                f"{self!r}: output_size {tuple(wanted)} is not between {smallest} and {largest} "
                f"for an input of spatial size {tuple(size)}"
            )
        return tuple(int(w - lo) for w, lo in zip(wanted, smallest, strict=True))

    def forward(self, input, output_size=None):
        """``output`` for ``input``; ``output_size`` (the spatial size, or the
        whole shape) chooses the output padding of this call, as in PyTorch."""
        check_float_array(self, input)
        self.output_shape(input.shape, output_size)  # every check before any state changes
        self._call_output_padding = self._output_padding_for(input.shape[2:], output_size)
        try:
            return super().forward(input)
        finally:
            self._call_output_padding = None

    def updateOutput(self, input):
        check_float_array(self, input)
        op = self._call_output_padding
        if op is None:
            self.output_shape(input.shape)
            op = self.output_padding
        b = None if self.bias is None else self.bias.astype(input.dtype, copy=False)
        y = conv_transpose2d_forward(self._as_2d(input), self._weight(input), b, *self._geometry(op), self.groups)
        self.output = self._from_2d(y)
        return self.output

    def _backward_kernel(self, input, gradOutput, need_input, need_params):
        geometry = self._geometry(self._output_padding_from(input, gradOutput))
        return conv_transpose2d_backward(
            self._as_2d(gradOutput), self._as_2d(input), self._weight(input), *geometry, self.groups,
            bias=self.bias is not None, need_input=need_input, need_params=need_params,
        )  # fmt: skip

    def _output_padding_from(self, input, gradOutput):
        """The output padding of the forward whose gradient this is (read off its size)."""
        zero = (0,) * self._nd
        smallest = transpose_geometry(input.shape[2:], self.kernel_size, self.stride, self.padding, zero,
                                      self.dilation)[0]  # fmt: skip
        return tuple(int(g - s) for g, s in zip(gradOutput.shape[2:], smallest, strict=True))

    def updateGradInput(self, input, gradOutput):
        # the parameter gradients come out of the same pass; accGradParameters takes them
        need_params = not self._frozen
        gx, gw, gb = self._backward_kernel(input, gradOutput, True, need_params)
        if need_params:
            self._keep_for_acc(gradOutput, (gw, gb))
        self.gradInput = self._from_2d(gx)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        cached = self._take_kept(gradOutput)
        gw, gb = cached if cached is not None else self._backward_kernel(input, gradOutput, False, True)[1:]
        self.gradWeight += gw.reshape(self.weight.shape)
        if self.bias is not None:
            self.gradBias += gb

    def extra_repr(self):
        text = f"{self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            text += f", padding={self.padding}"
        if any(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text if self.bias is not None else text + ", bias=False"


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution (PyTorch's ``ConvTranspose2d``, "deconvolution"):
    ``y = b + crop(sum_{i, j} x[n, :, i, j] . W`` placed at ``(i*sh, j*sw))``,
    the transpose (gradient) of ``Conv2d`` with the same geometry.

    Each input position adds a copy of the kernel, weighted by its channels,
    into the output at ``stride`` times its position: a stride-2 layer
    doubles H and W (``kernel_size=2, stride=2``, or ``3, stride=2,
    padding=1, output_padding=1``).

    Args:
        in_channels, out_channels: C and O (both divisible by ``groups``).
        kernel_size: an int or ``(kh, kw)``.
        stride: an int or ``(sh, sw)`` (1).
        padding: ``dilation*(k-1) - padding`` is the zero padding of the
            equivalent convolution; here it crops ``padding`` rows/columns
            from each side of the output. An int or ``(ph, pw)`` (0).
        output_padding: rows/columns added at the bottom/right of the output,
            smaller than the stride or the dilation (0); resolves the
            ambiguity of a strided convolution's input size.
        groups: independent groups of channels (1).
        bias: learn an additive bias (True).
        dilation: spacing of the kernel's taps, an int or ``(dh, dw)`` (1).
        padding_mode: only ``'zeros'`` (as PyTorch).
        dtype, rng: parameter dtype (float32) and initialisation generator.

    Shape:
        Input ``(N, C, H, W)``; output ``(N, O, Ho, Wo)`` with
        ``Ho = (H - 1)*sh - 2*ph + dh*(kh - 1) + oph + 1`` (same for ``Wo``).
        ``forward(x, output_size=(Ho, Wo))`` picks the output padding that
        gives that size (between the size with 0 and ``stride - 1`` more).

    Attributes:
        weight: ``(C, O/groups, kh, kw)`` (PyTorch's layout, input channels
            first), uniform in ``±1/sqrt(fan_in)`` with
            ``fan_in = O/groups*kh*kw`` (PyTorch's bound). gradWeight.
        bias: ``(O,)``, same initialisation, None when ``bias=False``. gradBias.
        kernel_size, stride, padding, output_padding, dilation: 2-tuples.

    Backward (``Conv2d`` with weights ``W`` read as ``(O', C', kh, kw) = (C, O/g, kh, kw)``,
    the roles of input and output exchanged):
        ``gradInput = conv2d(gradOutput, W)``, a convolution;
        ``gradWeight += conv2d_weight_gradient(input=gradOutput, gradOutput=x)``;
        ``gradBias += gradOutput.sum((0, 2, 3))``.

    Example:
        >>> import numpy as np
        >>> up = ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        >>> up.forward(np.zeros((2, 8, 7, 7), np.float32)).shape
        (2, 4, 14, 14)
        >>> up.forward(np.zeros((2, 8, 7, 7), np.float32), output_size=(13, 13)).shape
        (2, 4, 13, 13)
    """


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over ``(N, C, L)``: ``ConvTranspose2d`` with a unit height.

    Same arguments as ``ConvTranspose2d`` with ints (or 1-tuples) for
    ``kernel_size``, ``stride``, ``padding``, ``output_padding`` and ``dilation``.

    Shape:
        Input ``(N, C, L)``; output ``(N, O, Lo)``,
        ``Lo = (L - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    Attributes:
        weight: ``(C, O/groups, k)``; bias: ``(O,)`` or None; gradWeight, gradBias;
        kernel_size, stride, padding, output_padding, dilation: 1-tuples.

    Backward: as ``ConvTranspose2d``.

    Example:
        >>> import numpy as np
        >>> ConvTranspose1d(4, 6, 4, stride=2, padding=1).forward(np.zeros((3, 4, 10), np.float32)).shape
        (3, 6, 20)
    """

    _nd = 1

    def _as_2d(self, a):
        return a[:, :, None, :]

    def _from_2d(self, a):
        return a[:, :, 0, :]

    def _geometry(self, output_padding):
        return (1, *self.stride), (0, *self.padding), (0, *output_padding), (1, *self.dilation)
