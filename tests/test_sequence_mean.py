"""Mean (sequence pooling): parity with torch.mean, gradcheck in float64,
dtypes kept, keepdim and tuples of axes, errors, state_dict, TRF-F's pooling in a Sequential."""

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy as nn


@pytest.mark.parametrize(
    "shape, dim, keepdim",
    [((4, 7, 5), 1, False), ((4, 7, 5), -1, True), ((3, 4, 5, 2), (1, 3), False), ((6, 3), 0, True)],
)
def test_parity_with_torch(shape, dim, keepdim):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    m = nn.Mean(dim, keepdim=keepdim)
    y = m.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.mean(xt, dim=dim, keepdim=keepdim)
    assert_close(y, yt, what="forward")
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    assert_close(m.backward(x, g), xt.grad, what="gradInput")


@pytest.mark.parametrize("dim, keepdim", [(1, False), ((0, 2), True)])
def test_gradcheck(dim, keepdim):
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    assert nn.gradcheck(nn.Mean(dim, keepdim), x, atol=1e-8, rtol=1e-6).ok


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_in_is_dtype_out(dtype):
    x = np.ones((2, 3, 4), dtype)
    m = nn.Mean(1)
    assert m.forward(x).dtype == dtype
    grad = m.backward(x, np.ones((2, 4), dtype))
    assert grad.dtype == dtype and grad.shape == x.shape
    assert np.allclose(grad, 1 / 3)


def test_gradient_is_writable_and_not_a_view():
    x = np.ones((2, 3, 4), np.float32)
    m = nn.Mean(1)
    m.forward(x)
    g = np.ones((2, 4), np.float32)
    grad = m.backward(x, g)
    grad += 1  # a broadcast view would refuse this
    assert np.all(g == 1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [({"dim": 1.5}, TypeError, "dim must be an int"), ({"dim": ()}, TypeError, "dim must be an int"),
     ({"dim": True}, TypeError, "dim must be an int")],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.Mean(**kwargs)


def test_input_errors_name_the_module():
    with pytest.raises(ValueError, match=r"Mean\(dim=3\): expected input with axis 3, got shape \(2, 3\)"):
        nn.Mean(3).forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="axis twice"):
        nn.Mean((1, -1)).forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        nn.Mean(1).forward(np.ones((2, 3), np.int64))


def test_state_dict_is_empty_and_repr():
    m = nn.Mean(1, keepdim=True)
    assert m.state_dict() == {}
    assert repr(m) == "Mean(dim=1, keepdim=True)"


def test_sequence_classifier_head_matches_torch():
    """Mean pools an encoder's steps in a plain Sequential, as TRF-F's head."""
    x = np.random.default_rng(3).standard_normal((4, 6, 8)).astype(np.float32)
    head = nn.Linear(8, 3, rng=0)
    net = nn.Sequential(nn.Mean(1), head)
    ref = torch.nn.Linear(8, 3)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(head.W))
        ref.bias.copy_(torch.tensor(head.b))
    xt = torch.tensor(x, requires_grad=True)
    out = ref(xt.mean(dim=1))
    assert_close(net.forward(x), out, what="forward")
    g = np.ones((4, 3), np.float32)
    out.backward(torch.tensor(g))
    assert_close(net.backward(x, g), xt.grad, what="gradInput")
