"""Element-wise activations on nnumpy's threads, beside their references.

Each is one NumPy call per batch piece (``map_batches``), written into a
preallocated output, so a large activation uses every core and makes no
temporary.
"""

from ..backend import get_array_module
from .parallel import map_batches

__all__ = ["relu_forward", "relu_backward", "relu_forward_reference", "relu_backward_reference"]


def relu_forward_reference(x):
    """``max(x, 0)``."""
    return get_array_module(x).maximum(x, 0)


def relu_backward_reference(grad_out, y):
    """``g * (y > 0)`` (NaN in ``g`` propagates where ``y > 0``, as PyTorch)."""
    return grad_out * (y > 0)


def relu_forward(x):
    """``relu_forward_reference``, over batch pieces on nnumpy's threads."""
    xp = get_array_module(x)
    return map_batches(lambda a, out: xp.maximum(a, 0, out=out), xp.empty_like(x), x)


def relu_backward(grad_out, y):
    """``relu_backward_reference``, over batch pieces on nnumpy's threads."""
    xp = get_array_module(grad_out)
    return map_batches(lambda g, a, out: xp.multiply(g, a > 0, out=out), xp.empty_like(grad_out), grad_out, y)
