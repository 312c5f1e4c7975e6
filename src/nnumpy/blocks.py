"""Reusable blocks made of containers: ResNet's basic block, written with
``Residual`` and again as a ``Graph``.

Both builders draw their weights in the same order from ``rng`` (conv1,
conv2, then the shortcut's convolution), so with the same seed they give the
very same numbers, forward and backward. The graph form names its nodes as
torchvision's ``BasicBlock`` names its attributes (``conv1``, ``bn1``,
``relu``, ``conv2``, ``bn2``, ``downsample``) and, like it, uses one ReLU
module twice; ``nnumpy.interop.load_torch_state_dict`` loads a torchvision
block into either form.
"""

import numpy as np

from .backend import resolve_rng
from .containers import CAddTable, Residual, Sequential
from .graph import Graph, Input
from .layers.activation import ReLU
from .layers.conv import Conv2d
from .layers.normalization import BatchNorm2d

__all__ = ["basic_block", "basic_block_graph"]


def _layers(in_channels, out_channels, stride, dtype, rng):
    rng = resolve_rng(rng)
    conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, dtype=dtype, rng=rng)
    bn1 = BatchNorm2d(out_channels, dtype=dtype)
    conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, rng=rng)
    bn2 = BatchNorm2d(out_channels, dtype=dtype)
    downsample = None
    if stride != 1 or in_channels != out_channels:
        conv = Conv2d(in_channels, out_channels, 1, stride=stride, padding=0, bias=False, dtype=dtype, rng=rng)
        downsample = Sequential(conv, BatchNorm2d(out_channels, dtype=dtype))
    return conv1, bn1, conv2, bn2, downsample


def basic_block(in_channels, out_channels, stride=1, dtype=np.float32, rng=None):
    """ResNet's basic block, ``relu(body(x) + shortcut(x))``, as
    ``Sequential(Residual(body, shortcut), ReLU())``.

    ``body`` is conv3x3(stride) - BatchNorm2d - ReLU - conv3x3 - BatchNorm2d
    (convolutions without bias); ``shortcut`` is the identity, or a strided
    1x1 convolution and BatchNorm2d where the shape changes (He et al., 2016,
    option B; torchvision's ``BasicBlock``).

    Args:
        in_channels, out_channels: channels in and out.
        stride: the first convolution's (and the shortcut's) stride.
        dtype: parameter dtype.
        rng: seed or Generator for the weights.

    Shape:
        Input ``(N, in_channels, H, W)``; output ``(N, out_channels, H', W')``
        with ``H' = (H - 1) // stride + 1``.

    Example:
        >>> import numpy as np
        >>> block = basic_block(4, 8, stride=2, rng=0)
        >>> block.forward(np.ones((2, 4, 6, 6), np.float32)).shape
        (2, 8, 3, 3)
    """
    conv1, bn1, conv2, bn2, downsample = _layers(in_channels, out_channels, stride, dtype, rng)
    body = Sequential(conv1, bn1, ReLU(), conv2, bn2)
    return Sequential(Residual(body, downsample), ReLU())


def basic_block_graph(in_channels, out_channels, stride=1, dtype=np.float32, rng=None):
    """The same block as ``basic_block`` (same arguments, same weights for the
    same ``rng``), written as a ``Graph`` whose node names are torchvision's.

    Example:
        >>> import numpy as np
        >>> block = basic_block_graph(4, 8, stride=2, rng=0)
        >>> [k for k in block.state_dict() if k.endswith("W")]
        ['conv1.W', 'conv2.W', 'downsample.0.W']
    """
    conv1, bn1, conv2, bn2, downsample = _layers(in_channels, out_channels, stride, dtype, rng)
    relu = ReLU()
    x = Input()
    h = relu(bn1(conv1(x, name="conv1"), name="bn1"), name="relu")
    h = bn2(conv2(h, name="conv2"), name="bn2")
    shortcut = x if downsample is None else downsample(x, name="downsample")
    return Graph(x, relu(CAddTable()(h, shortcut, name="add")))
