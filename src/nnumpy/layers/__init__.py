"""Layers, one file per family."""

from .activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    LeakyReLU,
    LogSoftMax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    SoftMax,
    SoftPlus,
    Softsign,
    Tanh,
    Tanhshrink,
)
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .layer_norm import LayerNorm
from .linear import Linear
from .normalization import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
from .pooling import AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d
from .reshape import Flatten

__all__ = [
    "Linear",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "SoftPlus",
    "Sigmoid",
    "Tanh",
    "SoftMax",
    "LogSoftMax",
    "Identity",
    "Dropout",
    "BatchNormalization",
    "ChannelwiseScaling",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm",
    "Flatten",
    "Conv2d",
    "Conv1d",
    "MaxPool2d",
    "AvgPool2d",
    "MaxPool1d",
    "AvgPool1d",
    "GlobalAvgPool2d",
    "LayerNorm",
    "GELU",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "ReLU6",
    "Hardtanh",
    "PReLU",
    "SELU",
    "CELU",
    "Softsign",
    "Tanhshrink",
]
