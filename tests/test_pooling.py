"""Pooling: what the module table (tests/module_table.py: PyTorch parity and
gradcheck over kernel != stride, padding, non-square inputs, with and
without counting the padding; input errors) cannot say: ties, layouts,
evaluate-mode backward, wide windows, argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

from nnumpy import AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d


def test_maxpool_gradient_goes_to_one_maximum_like_torch():
    x = np.zeros((1, 1, 4, 4), np.float32)  # every window is a 4-way tie
    x[0, 0, 3, 3] = -1
    g = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    m = MaxPool2d(2)
    m.forward(x)
    gx = m.backward(x, g)
    xt = torch.from_numpy(x).requires_grad_()
    F.max_pool2d(xt, 2).backward(torch.from_numpy(g))
    np.testing.assert_array_equal(gx, xt.grad.numpy())
    assert np.count_nonzero(gx) == 4
    # overlapping windows accumulate onto the shared maximum
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5
    m = MaxPool2d(2, stride=1)
    m.forward(x)
    assert m.backward(x, np.ones((1, 1, 2, 2)))[0, 0, 1, 1] == 4


def test_channels_last_input():
    r = np.random.default_rng(2)
    x = r.normal(size=(2, 3, 6, 6)).astype(np.float32)
    cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for m in (MaxPool2d(2), MaxPool2d(3, 2, 1), AvgPool2d(3, 2, 1)):
        y = m.forward(x).copy()
        g = np.ones_like(y)
        gx = m.backward(x, g).copy()
        np.testing.assert_array_equal(m.forward(cl), y)
        np.testing.assert_array_equal(m.backward(cl, g), gx)


def test_global_avg_pool():
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5)).astype(np.float32)
    y = GlobalAvgPool2d().forward(x)
    assert y.shape == (2, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)), rtol=1e-6)
    assert GlobalAvgPool2d(keepdims=True).forward(x).shape == (2, 3, 1, 1)


def test_defaults_and_repr():
    m = MaxPool2d(3)
    assert m.kernel_size == m.stride == (3, 3) and m.padding == (0, 0)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert MaxPool1d(2, 1).stride == (1,)
    assert "count_include_pad=False" in repr(AvgPool2d(2, count_include_pad=False))


def test_argument_errors():
    with pytest.raises(ValueError, match="at most half the kernel"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        AvgPool2d(2, stride=0)


def test_maxpool_backward_in_evaluate_mode():
    """Evaluate mode skips the argmax in forward; backward recomputes it."""
    r = np.random.default_rng(5)
    x = r.normal(size=(2, 3, 6, 5))
    g = r.normal(size=(2, 3, 2, 2))
    train = MaxPool2d(3, 2)
    train.forward(x)
    expected = train.backward(x, g)
    m = MaxPool2d(3, 2).evaluate()
    np.testing.assert_array_equal(m.forward(x), train.output)
    np.testing.assert_array_equal(m.backward(x, g), expected)


def test_large_window_uses_wide_argmax():
    """More than 255 window offsets: the argmax no longer fits uint8."""
    r = np.random.default_rng(6)
    x = r.normal(size=(2, 2, 17, 18))
    m = MaxPool2d((16, 17), stride=1)
    y = m.forward(x)
    g = r.normal(size=y.shape)
    gx = m.backward(x, g)
    xt = torch.from_numpy(x).requires_grad_()
    F.max_pool2d(xt, (16, 17), 1).backward(torch.from_numpy(g))
    assert m._saved.dtype == np.int32
    assert_close(gx, xt.grad, np.float64, "gradInput")
