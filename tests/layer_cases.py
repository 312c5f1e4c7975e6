"""One small case per public layer (``nnumpy.layers.__all__``): how to build it
and a sample input, for the sweeps of tests/test_edge_inputs.py and
tests/test_output_shape.py. ``CASES[name] = (make, inputs)``: ``make()`` builds
the layer; ``inputs(n, dtype)`` gives an input with batch size ``n`` (an array
or a tuple). A layer added to ``nnumpy.layers.__all__`` must get a case here
(test_every_public_layer_has_a_case)."""

import numpy as np

import nnumpy as nn


def _x(*shape):
    def inputs(n, dtype=np.float32, seed=0):
        return np.random.default_rng(seed).normal(size=(n, *shape)).astype(dtype)

    return inputs


def _ints(high, *shape):
    def inputs(n, dtype=np.float32, seed=0):
        return np.random.default_rng(seed).integers(0, high, size=(n, *shape))

    return inputs


def _pair(a, b):
    def inputs(n, dtype=np.float32, seed=0):
        return (a(n, dtype, seed), b(n, dtype, seed + 1))

    return inputs


_SEQ = dict(batch_first=True)
_TRF = dict(dim_feedforward=16, dropout=0.0, batch_first=True)

CASES = {
    "Linear": (lambda: nn.Linear(4, 3), _x(4)),
    "ReLU": (nn.ReLU, _x(4)),
    "LeakyReLU": (nn.LeakyReLU, _x(4)),
    "ELU": (nn.ELU, _x(4)),
    "SoftPlus": (nn.SoftPlus, _x(4)),
    "Sigmoid": (nn.Sigmoid, _x(4)),
    "Tanh": (nn.Tanh, _x(4)),
    "SoftMax": (nn.SoftMax, _x(4)),
    "LogSoftMax": (nn.LogSoftMax, _x(4)),
    "Identity": (nn.Identity, _x(4)),
    "Dropout": (nn.Dropout, _x(4)),
    "BatchNormalization": (nn.BatchNormalization, _x(3)),
    "ChannelwiseScaling": (lambda: nn.ChannelwiseScaling(3), _x(3, 2)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), _x(3)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), _x(3, 2, 2)),
    "BatchNorm": (lambda: nn.BatchNorm(3), _x(3)),
    "Flatten": (nn.Flatten, _x(2, 3, 3)),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), _x(3, 5, 5)),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3), _x(3, 6)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2), _x(3, 4, 4)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2), _x(3, 5)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), _x(3, 4, 4)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), _x(3, 4, 4)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), _x(3, 6)),
    "AvgPool1d": (lambda: nn.AvgPool1d(2), _x(3, 6)),
    "GlobalAvgPool2d": (nn.GlobalAvgPool2d, _x(3, 4, 4)),
    "Embedding": (lambda: nn.Embedding(10, 4), _ints(10, 5)),
    "RNN": (lambda: nn.RNN(4, 5, **_SEQ), _x(3, 4)),
    "LSTM": (lambda: nn.LSTM(4, 5, **_SEQ), _x(3, 4)),
    "GRU": (lambda: nn.GRU(4, 5, **_SEQ), _x(3, 4)),
    "RNNCell": (lambda: nn.RNNCell(4, 5), _x(4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), _x(4)),
    "GRUCell": (lambda: nn.GRUCell(4, 5), _x(4)),
    "LastStep": (nn.LastStep, _x(3, 4)),
    "Mean": (lambda: nn.Mean(1), _x(3, 4)),
    "LayerNorm": (lambda: nn.LayerNorm(4), _x(4)),
    "GELU": (nn.GELU, _x(4)),
    "SiLU": (nn.SiLU, _x(4)),
    "Mish": (nn.Mish, _x(4)),
    "Hardswish": (nn.Hardswish, _x(4)),
    "Hardsigmoid": (nn.Hardsigmoid, _x(4)),
    "ReLU6": (nn.ReLU6, _x(4)),
    "Hardtanh": (nn.Hardtanh, _x(4)),
    "PReLU": (nn.PReLU, _x(4)),
    "SELU": (nn.SELU, _x(4)),
    "CELU": (nn.CELU, _x(4)),
    "Softsign": (nn.Softsign, _x(4)),
    "Tanhshrink": (nn.Tanhshrink, _x(4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), _x(4, 3)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3), _x(3, 5)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3), _x(3, 4, 4)),
    "Upsample": (lambda: nn.Upsample(scale_factor=2), _x(3, 4, 4)),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=2), _x(3, 4, 4)),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(scale_factor=2), _x(3, 4, 4)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(2), _x(3, 5, 5)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), _x(3, 5, 5)),
    "Dropout2d": (nn.Dropout2d, _x(3, 4, 4)),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(1), _x(3, 4, 4)),
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d(1), _x(3, 4, 4)),
    "ReplicationPad2d": (lambda: nn.ReplicationPad2d(1), _x(3, 4, 4)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 2)), _x(4)),
    "MultiheadAttention": (lambda: nn.MultiheadAttention(8, 2, **_SEQ), _x(3, 8)),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, **_TRF), _x(3, 8)),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **_TRF), 2), _x(3, 8)),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(8, 2, **_TRF), _pair(_x(3, 8), _x(4, 8))),
    "TransformerDecoder": (
        lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, **_TRF), 2),
        _pair(_x(3, 8), _x(4, 8)),
    ),
    "Transformer": (
        lambda: nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, **_TRF),
        _pair(_x(4, 8), _x(3, 8)),
    ),
    "SinusoidalPositionalEncoding": (lambda: nn.SinusoidalPositionalEncoding(8, **_SEQ), _x(3, 8)),
    "LearnedPositionalEncoding": (lambda: nn.LearnedPositionalEncoding(8, **_SEQ), _x(3, 8)),
}

NAMES = sorted(CASES)
