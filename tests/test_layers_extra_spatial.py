"""Upsample (+ UpsamplingNearest2d / UpsamplingBilinear2d), AdaptiveAvgPool2d,
AdaptiveMaxPool2d, ZeroPad2d / ReflectionPad2d / ReplicationPad2d, Dropout2d
and Unflatten: their gradcheck and PyTorch parity over random configurations
(every mode and align_corners, sizes that do not divide, overlapping bins,
every padding side, cropping) are entries of the module table
(tests/module_table.py); here: ties and NaN, aliases, errors and reprs."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from layers_extra_common import check_parity, t

import nnumpy
from nnumpy import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    Dropout2d,
    ReflectionPad2d,
    ReplicationPad2d,
    Unflatten,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
    ZeroPad2d,
)

torch.set_num_threads(1)


# ------------------------------------------------------------------ Upsample
def test_upsampling_aliases_mean_what_torch_means():
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 5))
    check_parity(UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(scale_factor=2), x)
    check_parity(UpsamplingNearest2d(size=(7, 3)), torch.nn.UpsamplingNearest2d(size=(7, 3)), x)
    check_parity(UpsamplingBilinear2d(scale_factor=1.5), torch.nn.UpsamplingBilinear2d(scale_factor=1.5), x)
    check_parity(UpsamplingBilinear2d(size=(9, 2)), torch.nn.UpsamplingBilinear2d(size=(9, 2)), x)
    message = r"UpsamplingNearest2d.*expected input of shape \(N, C, H, W\), got \(2, 3, 4\)"
    with pytest.raises(ValueError, match=message):
        UpsamplingNearest2d(scale_factor=2).forward(np.zeros((2, 3, 4), np.float32))


def test_upsample_errors_and_repr():
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor"):
        Upsample()
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor"):
        Upsample(size=3, scale_factor=2)
    with pytest.raises(ValueError, match=r"mode must be one of \['bilinear', 'linear', 'nearest'\], got 'bicubic'"):
        Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners can only be set with the linear modes"):
        Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="scale_factor must be > 0"):
        Upsample(scale_factor=-1.0)
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        Upsample(size=(2, 0))
    with pytest.raises(ValueError, match=r"Upsample\(.*mode='bilinear'.*expected input of shape \(N, C, H, W\), got"):
        Upsample(scale_factor=2, mode="bilinear").forward(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="size must have one value per spatial axis"):
        Upsample(size=(2, 3, 4)).forward(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="at least one position"):
        Upsample(scale_factor=0.2).forward(np.zeros((1, 1, 2, 2), np.float32))
    assert repr(Upsample(scale_factor=2)) == "Upsample(size=None, scale_factor=2, mode='nearest')"
    m = Upsample(size=4, mode="linear", align_corners=True)
    assert repr(m) == "Upsample(size=4, scale_factor=None, mode='linear', align_corners=True)"
    assert m.state_dict() == {} and m.forward(np.zeros((0, 2, 3), np.float32)).shape == (0, 2, 4)


# ------------------------------------------------------------------ adaptive pooling
def test_adaptive_max_pool_ties_and_nan_follow_torch():
    x = np.zeros((1, 1, 4, 6), np.float32)  # all ties: the first position of each bin
    x[0, 0, 2, 3] = np.nan
    g = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3) + 1
    check_parity(AdaptiveMaxPool2d((2, 3)), torch.nn.AdaptiveMaxPool2d((2, 3)), np.nan_to_num(x), g=g)
    ours = AdaptiveMaxPool2d((2, 3)).forward(x)
    ref = torch.nn.AdaptiveMaxPool2d((2, 3))(t(x)).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))


def test_adaptive_pool_errors_and_repr():
    with pytest.raises(ValueError, match="output_size must be an integer >= 1"):
        AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match=r"output_size must be an int or a pair"):
        AdaptiveMaxPool2d((1, 2, 3))
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        AdaptiveMaxPool2d(2, return_indices=True)
    m = AdaptiveAvgPool2d((2, None))
    assert repr(m) == "AdaptiveAvgPool2d(output_size=(2, None))"
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(4, 5\)"):
        m.forward(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="floating dtype"):
        AdaptiveMaxPool2d(2).forward(np.zeros((1, 1, 4, 4), np.int64))
    assert AdaptiveMaxPool2d(2).forward(np.zeros((0, 3, 4, 4), np.float32)).shape == (0, 3, 2, 2)


# ------------------------------------------------------------------ padding
def test_padding_errors_and_repr():
    with pytest.raises(ValueError, match="ReflectionPad2d: padding must be >= 0"):
        ReflectionPad2d(-1)
    with pytest.raises(TypeError, match=r"padding must be an int or a 4-tuple \(left, right, top, bottom\)"):
        ZeroPad2d((1, 2))
    m = ReflectionPad2d((3, 0, 0, 0))
    with pytest.raises(ValueError, match=r"ReflectionPad2d\(\(3, 0, 0, 0\)\): padding must be smaller than"):
        m.forward(np.zeros((1, 1, 4, 3), np.float32))
    assert m.output is None
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(4, 4\)"):
        ZeroPad2d(1).forward(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="crops more than the input holds"):
        ZeroPad2d(-3).forward(np.zeros((1, 1, 4, 4), np.float32))
    assert repr(ReplicationPad2d(2)) == "ReplicationPad2d((2, 2, 2, 2))"
    y = ReplicationPad2d((1, 1, 0, 0)).forward(np.ones((1, 1, 2, 2), np.float64))
    assert y.dtype == np.float64 and y.shape == (1, 1, 2, 4)


# ------------------------------------------------------------------ Dropout2d
def test_dropout2d_zeroes_whole_channels_and_scales():
    x = np.random.default_rng(0).normal(size=(64, 32, 3, 3)).astype(np.float32) + 5
    m = Dropout2d(0.25, rng=1)
    y = m.forward(x)
    kept = y[:, :, 0, 0] != 0
    assert y.dtype == np.float32
    scale = np.float32(1 / 0.75)
    np.testing.assert_array_equal(y[kept], (x * scale)[kept])  # every value of a kept channel scaled
    assert np.all(y[~kept] == 0)
    assert abs(kept.mean() - 0.75) < 0.03  # 2048 draws: 5 standard deviations
    g = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    gi = m.backward(x, g)
    np.testing.assert_array_equal(gi, g * ((y != 0) * scale))
    m.evaluate()
    assert m.forward(x) is x and m.backward(x, g) is g
    assert Dropout2d(1.0, rng=0).forward(x).max() == 0
    nnumpy.gradcheck(Dropout2d(0.5, rng=3), np.random.default_rng(4).normal(size=(2, 3, 2, 2)))


def test_dropout2d_errors_and_repr():
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\): expected input of shape \(N, C, H, W\), got \(2, 3\)"):
        Dropout2d().forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="p must be a probability"):
        Dropout2d(1.5)
    assert repr(Dropout2d(0.2)) == "Dropout2d(p=0.2)" and Dropout2d().state_dict() == {}


# ------------------------------------------------------------------ Unflatten
def test_unflatten_errors_and_repr():
    m = Unflatten(1, (2, 3))
    assert repr(m) == "Unflatten(dim=1, unflattened_size=(2, 3))"
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(2, 3\)\): expected axis 1 of size 6"):
        m.forward(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="expected input with axis 1, got \\(4,\\)"):
        m.forward(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="of size a multiple of 4"):
        Unflatten(0, (4, -1)).forward(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="at most one -1"):
        Unflatten(1, (-1, -1))
    with pytest.raises(TypeError, match="unflattened_size must be a non-empty tuple of ints"):
        Unflatten(1, 6)
    with pytest.raises(TypeError, match="dim must be an int"):
        Unflatten("1", (2, 3))
    y = Unflatten(1, (2, 3)).forward(np.zeros((4, 6), np.float64))
    assert y.dtype == np.float64
    assert_close(y.reshape(4, 6), np.zeros((4, 6)), np.float64, "values kept")
