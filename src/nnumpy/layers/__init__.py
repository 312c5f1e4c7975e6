"""Layers, one file per family."""

from .activation import ELU, Identity, LeakyReLU, LogSoftMax, ReLU, Sigmoid, SoftMax, SoftPlus, Tanh
from .dropout import Dropout
from .linear import Linear
from .normalization import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
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
]
