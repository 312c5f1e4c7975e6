"""Linear on ``(*, n_in)`` inputs (PyTorch's): sequences of tokens, one sample,
an empty batch; parity with torch.nn.Linear forward and backward, gradcheck,
the 2-D path unchanged, errors naming the layer."""

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy as nn


@pytest.mark.parametrize("shape", [(4, 7, 5), (2, 3, 4, 5), (5,), (4, 5), (0, 7, 5)])
def test_parity_with_torch(shape):
    layer = nn.Linear(5, 3, rng=0)
    ref = torch.nn.Linear(5, 3)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.W))
        ref.bias.copy_(torch.tensor(layer.b))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    y = layer.forward(x)
    yt = ref(xt)
    assert_close(y, yt, what="forward")
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    gx = layer.backward(x, g)
    assert gx.shape == x.shape
    assert_close(gx, xt.grad, what="gradInput")
    assert_close(layer.gradW, ref.weight.grad, what="gradW")
    assert_close(layer.gradb, ref.bias.grad, what="gradb")


def test_gradcheck_on_tokens():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    assert nn.gradcheck(nn.Linear(5, 2, rng=1), x, atol=1e-8, rtol=1e-6).ok


def test_a_token_classifier_is_a_plain_sequential():
    net = nn.Sequential(nn.Linear(28, 16, rng=0), nn.ReLU(), nn.Mean(1), nn.Linear(16, 10, rng=1))
    x = np.ones((2, 28, 28), np.float32)
    assert net.forward(x).shape == (2, 10)
    assert net.backward(x, np.ones((2, 10), np.float32)).shape == x.shape


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6), ()])
def test_wrong_features_name_the_layer(shape):
    layer = nn.Linear(5, 3)
    with pytest.raises(ValueError, match=r"Linear\(5 -> 3\): expected input of shape \(N, 5\) or \(\*, 5\)"):
        layer.forward(np.ones(shape, np.float32))
    assert layer.output is None
