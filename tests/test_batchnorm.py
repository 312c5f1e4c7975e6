"""BatchNorm1d / BatchNorm2d against PyTorch in training and evaluation mode
over several steps (running statistics, unbiased running variance), the
seeds' BatchNormalization / ChannelwiseScaling on 4-D input, gradcheck."""

import numpy as np
import pytest
import torch
from helpers import assert_close

from nnumpy import BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling, gradcheck


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "cls, tcls, shape, kwargs",
    [
        (BatchNorm1d, torch.nn.BatchNorm1d, (8, 5), {}),
        (BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 6), {"momentum": 0.3}),
        (BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6), {}),
        (BatchNorm2d, torch.nn.BatchNorm2d, (1, 2, 3, 4), {"eps": 1e-3, "momentum": 0.5}),
        (BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 2, 5), {"affine": False}),
    ],
)
def test_train_and_eval_match_torch(cls, tcls, shape, kwargs, dtype):
    r = np.random.default_rng(0)
    c = shape[1]
    m = cls(c, dtype=dtype, **kwargs)
    ref = tcls(c, dtype=torch.float64 if dtype == np.float64 else torch.float32, **kwargs)
    if m.affine:
        m.weight[...] = r.uniform(0.5, 1.5, size=c)
        m.bias[...] = r.normal(size=c)
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(m.weight))
            ref.bias.copy_(torch.from_numpy(m.bias))
    for step in range(3):  # running statistics accumulate over steps
        x = (r.normal(size=shape) * 2 + 1).astype(dtype)
        if step == 1:  # a channels-last input (what Conv2d outputs)
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            x = np.moveaxis(x, -1, 1)
        g = r.normal(size=shape).astype(dtype)
        m.zeroGradParameters()
        y = m.forward(x)
        gx = m.backward(x, g)
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
        ref.zero_grad()
        yt = ref(xt)
        yt.backward(torch.from_numpy(g))
        assert y.dtype == gx.dtype == dtype
        assert_close(y, yt, dtype, f"train output step {step}")
        assert_close(gx, xt.grad, dtype, f"train gradInput step {step}")
        if m.affine:
            assert_close(m.gradWeight, ref.weight.grad, dtype, "gradWeight")
            assert_close(m.gradBias, ref.bias.grad, dtype, "gradBias")
        assert_close(m.running_mean, ref.running_mean, dtype, "running_mean")
        assert_close(m.running_var, ref.running_var, dtype, "running_var (unbiased)")
    m.evaluate()
    ref.eval()
    x = r.normal(size=shape).astype(dtype)
    g = r.normal(size=shape).astype(dtype)
    y = m.forward(x)
    gx = m.backward(x, g)
    xt = torch.from_numpy(x).requires_grad_()
    yt = ref(xt)
    yt.backward(torch.from_numpy(g))
    assert_close(y, yt, dtype, "eval output")
    assert_close(gx, xt.grad, dtype, "eval gradInput")


@pytest.mark.parametrize(
    "m, shape",
    [
        (BatchNorm2d(3), (4, 3, 2, 3)),
        (BatchNorm1d(2), (5, 2, 3)),
        (BatchNorm1d(3), (6, 3)),
        (BatchNormalization(alpha=0.5), (3, 2, 2, 3)),
        (ChannelwiseScaling(3, rng=0), (2, 3, 2, 2)),
    ],
)
def test_gradcheck_train_and_eval(m, shape):
    x = np.random.default_rng(5).normal(size=shape)
    if hasattr(m, "weight") and m.weight is not None:
        m.weight[...] = np.linspace(0.5, 1.5, m.weight.size)
        m.bias[...] = np.linspace(-1, 1, m.bias.size)
    gradcheck(m, x)
    m.forward(x.astype(np.float32))  # fill the running statistics
    m.evaluate()
    gradcheck(m, x)


def test_seed_layers_work_per_channel_on_4d_input():
    r = np.random.default_rng(6)
    x = r.normal(size=(4, 3, 5, 5)) * 3 + 2
    bn = BatchNormalization(alpha=0.0)
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(bn.moving_mean, x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn.moving_variance, x.var(axis=(0, 2, 3)))
    ref = torch.nn.BatchNorm2d(3, eps=BatchNormalization.EPS, momentum=1.0, affine=False, dtype=torch.float64)
    assert_close(y, ref(torch.from_numpy(x)), np.float64, "BatchNormalization 4-D")
    scale = ChannelwiseScaling(3, dtype=np.float64, rng=0)
    out = scale.forward(y)
    np.testing.assert_allclose(out, y * scale.gamma[:, None, None] + scale.beta[:, None, None])


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expected input of shape \(N, 3, H, W\), got \(2, 4, 5, 5\)"):
        BatchNorm2d(3).forward(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*got \(2, 3, 5\)"):
        BatchNorm2d(3).forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3.*expected input of shape \(N, 3\) or \(N, 3, L\)"):
        BatchNorm1d(3).forward(np.zeros((2, 3, 5, 5), np.float32))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: BatchNorm1d(3), (6, 3)),
        (lambda: BatchNorm2d(3), (4, 3, 5, 5)),
        (lambda: BatchNormalization(0.5), (6, 3)),
    ],
)
def test_backward_uses_the_statistics_of_its_forward_even_after_a_mode_switch(make, shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    g = rng.normal(size=shape)
    reference, switched = make().to(np.float64), make().to(np.float64)
    reference.forward(x)
    expected = reference.backward(x, g)
    switched.forward(x)
    switched.evaluate()
    np.testing.assert_allclose(switched.backward(x, g), expected, rtol=1e-12, atol=1e-12)
