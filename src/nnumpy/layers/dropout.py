"""Dropout: element-wise (`Dropout`) and per channel (`Dropout2d`)."""

import numpy as np

from .._checks import as_shape, check_float_array, check_real
from ..backend import resolve_rng
from ..module import Module

__all__ = ["Dropout", "Dropout2d"]


def keep_mask(rng, shape, p):
    """Boolean array of ``shape``, each element True (kept) with probability ``1 - p``.

    Each element compares 32 random bits of ``rng``'s bit generator with
    ``p * 2^32``: the same probability as ``rng.random(shape) >= p`` (to
    ``2^-32``, finer than float32's 24-bit uniforms), about 30 % faster than
    float32 uniforms, and independent of the input's dtype (float16 too).
    """
    n = int(np.prod(shape))
    threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
    bits = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
    return (bits >= threshold).reshape(shape)


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the kept ones by
    ``1 / (1 - p)`` (inverted dropout, PyTorch's meaning of ``p``).

    A new independent mask is drawn for every element at every forward in
    training mode; in evaluate mode, and for ``p = 0``, it is the identity.

    Args:
        p: probability of zeroing an element, in ``[0, 1]`` (default 0.5).
        rng: seed or ``numpy.random.Generator`` for the masks (default: the
            generator ``nnumpy.manual_seed`` controls).

    Shape:
        Any; output the same.

    Backward: ``gradInput = g * mask`` (the scaled mask of the last forward).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not 0.0 <= check_real("Dropout", "p", p) <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = resolve_rng(rng)
        self._mask = None

    def output_shape(self, input_shape):
        """The input's shape."""
        return as_shape(self, input_shape)

    def updateOutput(self, input):
        check_float_array(self, input)
        if not self.training or self.p == 0.0:
            self._mask = None
            self.output = input
            return input
        keep = keep_mask(self.rng, input.shape, self.p)
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        self._mask = keep * input.dtype.type(scale)
        self.output = input * self._mask
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput if self._mask is None else gradOutput * self._mask
        return self.gradInput

    _scaled_mask_attr = "_mask"

    @property
    def mask(self):
        """The binary keep mask of the last training forward: 1 where an
        element was kept, 0 where dropped, in the input's dtype (seed 000's
        ``mask``); None after an evaluate-mode forward or with ``p = 0``. The
        output is ``input * mask / (1 - p)`` (seed 001's ``mask`` was that
        scaled mask, ``mask / (1 - p)``)."""
        scaled = getattr(self, self._scaled_mask_attr, None)
        return None if scaled is None else (scaled != 0).astype(scaled.dtype)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zero each whole channel of each sample with probability ``p`` and scale
    the kept ones by ``1 / (1 - p)`` (PyTorch's ``Dropout2d``: feature-map dropout).

    One draw per ``(sample, channel)`` at every training forward; in evaluate
    mode, and for ``p = 0``, it is the identity.

    Args:
        p: probability of zeroing a channel, in ``[0, 1]`` (default 0.5).
        rng: seed or ``numpy.random.Generator`` for the masks (default: the
            generator ``nnumpy.manual_seed`` controls).

    Shape:
        Input ``(N, C, H, W)``; output the same.

    Backward: ``gradInput = g * mask`` (the scaled ``(N, C, 1, 1)`` mask of the last forward).

    Example:
        >>> import numpy as np
        >>> y = Dropout2d(0.5, rng=0).forward(np.ones((2, 3, 4, 4), np.float32))
        >>> bool(np.all((y == y[:, :, :1, :1]) & ((y == 0) | (y == 2))))  # whole channels, kept ones * 2
        True
    """

    _scaled_mask_attr = "_channel_mask"  # ``mask`` is (N, C, 1, 1)

    def output_shape(self, input_shape):
        """The input's shape, ``(N, C, H, W)``."""
        shape = as_shape(self, input_shape)
        if len(shape) != 4:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W), got {shape}")
        return shape

    def updateOutput(self, input):
        check_float_array(self, input)
        if input.ndim != 4:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W), got {tuple(input.shape)}")
        if not self.training or self.p == 0.0:
            self._channel_mask = None
            self.output = input
            return input
        draw = input.dtype if input.dtype in (np.float32, np.float64) else np.float32  # no float16 generator
        keep = self.rng.random((*input.shape[:2], 1, 1), dtype=draw) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        self._channel_mask = keep * input.dtype.type(scale)
        self.output = input * self._channel_mask
        return self.output

    def updateGradInput(self, input, gradOutput):
        mask = self._channel_mask
        self.gradInput = gradOutput if mask is None else gradOutput * mask
        return self.gradInput
