"""Pooling: ``MaxPool2d``, ``AvgPool2d``, ``MaxPool1d``, ``AvgPool1d``, ``GlobalAvgPool2d``.

A window pooling reduces each ``kh x kw`` window of the padded input to its
maximum or its mean; backward sends each window's gradient to its first
maximum (as PyTorch) or shares it evenly. The kernels
(``nnumpy.kernels.pooling``, beside plain references) work with one strided
view per window offset, keep the input's memory order and split the batch
over nnumpy's threads. The 1-D layers are the 2-D ones with a unit height.
Floor mode by default; ``ceil_mode=True`` adds the last, partial window
wherever it starts inside the input or the left padding (PyTorch's rule).
"""

from .._checks import as_shape, check_input, check_shape, shape_probe
from ..backend import get_array_module
from ..kernels.pooling import (
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    pool_output_size,
)
from ..module import Module
from .conv import int_tuple

__all__ = ["MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d", "GlobalAvgPool2d"]


class _Pool2d(Module):
    """Shared arguments, checks and 1-D handling of the window poolings."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.ceil_mode = bool(ceil_mode)
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd)
        self.stride = self.kernel_size if stride is None else int_tuple(name, "stride", stride, nd)
        self.padding = int_tuple(name, "padding", padding, nd, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half the kernel size {self.kernel_size} (as PyTorch)"
            )
        self._saved = None  # what backward needs from the last forward: the argmax, or the divisor

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

    def output_shape(self, input_shape):
        """``(N, C, *out)`` (the formula under Shape); raises what ``forward`` would."""
        shape = as_shape(self, input_shape)
        self._check(shape_probe(shape))
        ceil = getattr(self, "ceil_mode", False)
        out = pool_output_size(shape[2:], self.kernel_size, self.stride, self.padding, ceil)
        return (*shape[:2], *out)

    def updateOutput(self, input):
        self._check(input)
        y, self._saved = self._forward(self._as_2d(input), *self._geometry())
        self.output = self._from_2d(y)
        return self.output

    def updateGradInput(self, input, gradOutput):
        x = self._as_2d(input)
        if self._saved is None:  # evaluate mode skipped what backward needs: recompute it
            self._saved = self._forward(x, *self._geometry(), need_backward=True)[1]
        g = self._backward_kernel(self._as_2d(gradOutput), self._saved, x.shape, *self._geometry(),
                                  ceil_mode=self.ceil_mode)  # fmt: skip
        self.gradInput = self._from_2d(g)
        return self.gradInput

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Maximum over each ``kh x kw`` window: ``y[n, c, i, j] = max x[n, c, i*sh + p - ph, j*sw + q - pw]``.

    Args:
        kernel_size: an int or ``(kh, kw)``.
        stride: an int or ``(sh, sw)``; defaults to ``kernel_size``.
        padding: implicit ``-inf`` on each side, an int or ``(ph, pw)`` (0),
            at most half the kernel.
        ceil_mode: keyword only (PyTorch's fourth and fifth arguments,
            ``dilation`` and ``return_indices``, are not implemented). False:
            trailing rows/columns that fill no window are dropped; True: the
            last, partial window is kept when it starts inside the input or
            the left padding (as PyTorch).

    Shape:
        Input ``(N, C, H, W)``; output ``(N, C, Ho, Wo)`` with
        ``Ho = floor((H + 2*ph - kh) / sh) + 1``, ``Wo = floor((W + 2*pw - kw) / sw) + 1``;
        ``ceil_mode``: ``ceil`` instead of ``floor``, less one where
        ``(Ho - 1)*sh >= H + ph`` (the last window would start in the right padding).

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
        >>> MaxPool2d(2, ceil_mode=True).forward(np.zeros((2, 3, 7, 5), np.float32)).shape
        (2, 3, 4, 3)
    """

    _backward_kernel = staticmethod(maxpool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, *, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode)

    def _forward(self, x, kernel, stride, padding, need_backward=None):
        # the argmax is only needed for backward: skipped in evaluate mode
        with_argmax = self.training if need_backward is None else need_backward
        return maxpool2d_forward(x, kernel, stride, padding, with_argmax, ceil_mode=self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Mean over each ``kh x kw`` window.

    Args:
        kernel_size, stride, padding: as ``MaxPool2d`` (zero padding).
        ceil_mode: keep the last, partial window (as ``MaxPool2d``; False).
        count_include_pad: divide by ``kh*kw`` even where the window covers
            padding (True, PyTorch's default); False divides by the number
            of real elements. A partial window of ``ceil_mode`` divides by
            what it covers of the input and its padding (as PyTorch).

    Shape:
        As ``MaxPool2d``: ``Ho = floor((H + 2*ph - kh) / sh) + 1``, same for
        ``Wo``; ``ceil`` with ``ceil_mode``, less one where ``(Ho - 1)*sh >= H + ph``.

    Attributes:
        kernel_size, stride, padding: 2-tuples; count_include_pad.

    Backward: ``gradInput[window] += gradOutput / count`` for every window.

    Example:
        >>> import numpy as np
        >>> AvgPool2d(2).forward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))[0, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """

    _backward_kernel = staticmethod(avgpool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _forward(self, x, kernel, stride, padding, need_backward=None):
        return avgpool2d_forward(x, kernel, stride, padding, self.count_include_pad, ceil_mode=self.ceil_mode)

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

    def output_shape(self, input_shape):
        """``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``."""
        n, c = check_shape(self, as_shape(self, input_shape), ndim=4, layout="(N, C, H, W)")[:2]
        return (n, c, 1, 1) if self.keepdims else (n, c)

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
