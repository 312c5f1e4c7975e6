"""Reshaping layers."""

import math

import numpy as np

from .._checks import as_shape, check_float_array
from ..module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flatten all but the batch axis: ``(N, *) -> (N, prod(*))``.

    Used between convolutional and linear layers. Backward reshapes the
    gradient back to the input's shape.
    """

    def updateOutput(self, input):
        check_float_array(self, input)
        if input.ndim < 1:
            raise ValueError(f"{self!r}: expected input with a batch axis, got a scalar")
        # the size from the shape, not -1: numpy cannot infer -1 for an empty batch (math.prod: no array made)
        self.output = input.reshape(input.shape[0], math.prod(input.shape[1:]))
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.reshape(input.shape)
        return self.gradInput

    def output_shape(self, input_shape):
        """``(N, prod(*))``: known from the shape, so also for an empty batch."""
        shape = as_shape(self, input_shape)
        if len(shape) < 1:
            raise ValueError(f"{self!r}: expected input with a batch axis, got a scalar")
        return (shape[0], int(np.prod(shape[1:], dtype=np.int64)))


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size``: ``(*, prod(sizes), *) ->
    (*, *sizes, *)`` (PyTorch's ``Unflatten``; the inverse of ``Flatten``).

    Args:
        dim: the axis to split (negative counts from the end).
        unflattened_size: tuple of ints whose product is that axis's size;
            one of them may be -1 (inferred).

    Shape:
        Input ``(*, S, *)`` with ``S = prod(unflattened_size)`` at ``dim``;
        output ``(*, *unflattened_size, *)``.

    Backward: the gradient reshaped back to the input's shape.

    Example:
        >>> import numpy as np
        >>> Unflatten(1, (2, 3)).forward(np.zeros((4, 6))).shape
        (4, 2, 3)
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Unflatten: dim must be an int, got {dim!r}")
        sizes = tuple(unflattened_size) if isinstance(unflattened_size, (tuple, list)) else None
        ok = sizes is not None and len(sizes) > 0
        ok = ok and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes)
        if not ok:
            raise TypeError(f"Unflatten: unflattened_size must be a non-empty tuple of ints, got {unflattened_size!r}")
        if any(s < 1 and s != -1 for s in sizes) or sum(s == -1 for s in sizes) > 1:
            raise ValueError(f"Unflatten: unflattened_size must hold sizes >= 1 and at most one -1, got {sizes!r}")
        self.dim = int(dim)
        self.unflattened_size = tuple(int(s) for s in sizes)

    def output_shape(self, input_shape):
        """The input's shape with axis ``dim`` split into ``unflattened_size``."""
        shape = as_shape(self, input_shape)
        if not -len(shape) <= self.dim < len(shape):
            raise ValueError(f"{self!r}: expected input with axis {self.dim}, got {shape}")
        axis = self.dim % len(shape)
        size, known = shape[axis], int(np.prod([s for s in self.unflattened_size if s != -1]))
        sizes = tuple(size // known if s == -1 else s for s in self.unflattened_size)
        if int(np.prod(sizes)) != size:
            want = f"a multiple of {known}" if -1 in self.unflattened_size else f"{known}"
            raise ValueError(f"{self!r}: expected axis {self.dim} of size {want}, got input {shape}")
        return shape[:axis] + sizes + shape[axis + 1 :]

    def updateOutput(self, input):
        check_float_array(self, input)
        self.output = input.reshape(self.output_shape(input.shape))
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.reshape(input.shape)
        return self.gradInput

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
