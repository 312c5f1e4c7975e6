"""Reshaping layers."""

from .._checks import check_float_array
from ..module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flatten all but the batch axis: ``(N, *) -> (N, prod(*))``.

    Used between convolutional and linear layers. Backward reshapes the
    gradient back to the input's shape.
    """

    def updateOutput(self, input):
        check_float_array(self, input)
        if input.ndim < 1:
            raise ValueError(f"{self!r}: expected input with a batch axis, got a scalar")
        self.output = input.reshape(input.shape[0], -1)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.reshape(input.shape)
        return self.gradInput
