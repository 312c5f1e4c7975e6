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
from .adaptive_pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .attention import MultiheadAttention
from .conv import Conv1d, Conv2d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .embedding import Embedding
from .layer_norm import GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from .linear import Linear
from .normalization import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
from .padding import ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from .pooling import AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .reshape import Flatten, Unflatten
from .sequence import LastStep, Mean
from .transformer import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

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
    "ConvTranspose1d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "MaxPool1d",
    "AvgPool1d",
    "GlobalAvgPool2d",
    "Embedding",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "LastStep",
    "Mean",
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
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Dropout2d",
    "ZeroPad2d",
    "ReflectionPad2d",
    "ReplicationPad2d",
    "Unflatten",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "TransformerDecoderLayer",
    "TransformerDecoder",
    "Transformer",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
]
