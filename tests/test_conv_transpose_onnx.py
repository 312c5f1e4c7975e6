"""ONNX export of ConvTranspose1d/2d (random configurations: stride, padding,
output_padding past the padding, dilation, groups, bias), Conv padding_mode
(circular through Pad's wrap mode from opset 19, refused before) and the
poolings' ceil_mode, each run in onnxruntime against nnumpy's forward."""

import numpy as np
import onnx  # noqa: F401  (test dependencies: a missing one fails, not skips)
import onnxruntime  # noqa: F401
import pytest
from onnx_common import check_onnx
from test_conv_transpose import CONFIGS_1D, CONFIGS_2D

import nnumpy as nn


def _input(shape, seed=0):
    return lambda b: np.random.default_rng(seed + b).normal(size=(b, *shape[1:])).astype(np.float32)


CASES = [(nn.ConvTranspose2d, *c) for c in CONFIGS_2D[:16]] + [(nn.ConvTranspose1d, *c) for c in CONFIGS_1D[:8]]


@pytest.mark.parametrize("cls, cin, cout, kwargs, shape", CASES)
def test_conv_transpose_in_onnxruntime(cls, cin, cout, kwargs, shape):
    check_onnx(cls(cin, cout, **kwargs, rng=0), _input(shape), opsets=(13, 18))


def test_conv_transpose_autoencoder_in_onnxruntime():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
    )  # fmt: skip
    check_onnx(model, _input((1, 1, 28, 28)))


@pytest.mark.parametrize("cls, kwargs, shape", [
    (nn.Conv2d, {"padding": (2, 1)}, (1, 2, 5, 4)),
    (nn.Conv2d, {"padding": 3, "stride": 2}, (1, 2, 3, 6)),
    (nn.Conv1d, {"padding": 2, "dilation": 2}, (1, 2, 5)),
])  # fmt: skip
def test_circular_padding_exports_from_opset_19(cls, kwargs, shape):
    model = cls(2, 3, 3, padding_mode="circular", **kwargs)
    check_onnx(model, _input(shape), opsets=(19, 21))
    with pytest.raises(nn.onnx.ExportError, match="circular"):
        nn.onnx.export(model, _input(shape)(1), opset=18)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_reflect_and_replicate_padding_export(mode):
    check_onnx(nn.Conv2d(2, 3, (3, 2), padding=(1, 1), padding_mode=mode), _input((1, 2, 4, 5)), opsets=(13, 18))


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.MaxPool2d(2, ceil_mode=True), (1, 2, 5, 7)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 7)),
    (lambda: nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (1, 2, 4)),  # last window would start in the pad
    (lambda: nn.AvgPool2d(2, ceil_mode=True), (1, 2, 5, 7)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 6, 7)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 7)),
    (lambda: nn.AvgPool1d(3, stride=2, ceil_mode=True), (1, 2, 8)),
])  # fmt: skip
def test_ceil_mode_pooling_in_onnxruntime(make, shape):
    check_onnx(make(), _input(shape), opsets=(13, 18))


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_output_padding_from_the_dilation_exports(padding):
    """output_padding >= stride (allowed by the dilation): onnxruntime refuses it, the converter
    moves it into the end pads and, past them, appends zero rows before the bias."""
    model = nn.ConvTranspose2d(2, 3, 3, stride=1, padding=padding, output_padding=1, dilation=(2, 3), rng=0)
    check_onnx(model, _input((1, 2, 4, 5)), opsets=(13, 18))
    check_onnx(
        nn.ConvTranspose1d(2, 3, 2, padding=padding, output_padding=1, dilation=2, bias=False), _input((1, 2, 6))
    )
