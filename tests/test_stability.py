"""Numerical stability: huge logits, degenerate probabilities, zero-variance
features and large activations give finite values and gradients, with every
floating-point warning turned into an error."""

import numpy as np
import pytest

from nnumpy import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNormalization,
    ClassNLLCriterion,
    ClassNLLCriterionUnstable,
    CrossEntropyCriterion,
    LogSoftMax,
    Sigmoid,
    SoftMax,
    SoftPlus,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]


def huge_logits(dtype):
    return np.array(
        [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4], [0.0, 1e4, -1e4], [-1e4, 0.0, 1e4]], dtype=dtype
    )


def assert_finite(*arrays):
    for a in arrays:
        assert np.all(np.isfinite(a)), a


def forward_backward(module, x, g):
    """``(output, gradInput)`` of a fresh ``module`` with every floating-point warning raised as an error."""
    with np.errstate(all="raise"):
        return module.forward(x), module.backward(x, g)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_family_with_huge_logits(dtype):
    x = huge_logits(dtype)
    g = np.ones_like(x)
    g[:, 0] = -2
    y, gi = forward_backward(SoftMax(), x, g)
    ly, lgi = forward_backward(LogSoftMax(), x, g)
    assert_finite(y, gi, ly, lgi)
    assert y.dtype == ly.dtype == gi.dtype == lgi.dtype == dtype
    expected = np.array([[1, 0, 0], [1 / 3] * 3, [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(y, expected, atol=1e-6)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(ly[0], [0, -2e4, -1e4], rtol=1e-6)  # exact log-probabilities, no clipping
    np.testing.assert_allclose(ly[1], np.log(1 / 3) * np.ones(3), rtol=1e-6)
    np.testing.assert_allclose(lgi[0], [-2, 1, 1], atol=1e-6)  # g - softmax * sum(g), and sum(g) = 0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("target", ["labels", "onehot", "soft"])
def test_cross_entropy_with_huge_logits(dtype, target):
    x = huge_logits(dtype)
    labels = np.array([1, 0, 2, 1, 2])
    t = {
        "labels": labels,
        "onehot": np.eye(3, dtype=dtype)[labels],
        "soft": np.full((5, 3), 1 / 3, dtype=dtype),
    }[target]
    crit = CrossEntropyCriterion()
    with np.errstate(all="raise"):
        loss = crit.forward(x, t)
        grad = crit.backward(x, t)
    assert_finite(loss, grad)
    assert np.asarray(loss).dtype == grad.dtype == dtype
    if target != "soft":
        # rows: 2e4, log 3, 2e4 + log 2, 0, 0 (wrong-by-a-mile predictions cost their margin, exactly)
        expected = (2e4 + np.log(3) + 2e4 + np.log(2)) / 5
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)
    # the same through LogSoftMax + ClassNLLCriterion
    with np.errstate(all="raise"):
        lsm = LogSoftMax()
        nll = ClassNLLCriterion()
        y = lsm.forward(x)
        loss2 = nll.forward(y, t)
        grad2 = lsm.backward(x, nll.backward(y, t))
    assert_finite(loss2, grad2)
    np.testing.assert_allclose(loss2, loss, rtol=1e-6)
    np.testing.assert_allclose(grad2, grad, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_class_nll_unstable_with_zero_probabilities(dtype):
    p = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=dtype)
    t = np.eye(3, dtype=dtype)[[0, 0, 2]]  # the first and last rows put 0 on the true class
    crit = ClassNLLCriterionUnstable()
    with np.errstate(all="raise"):
        loss = crit.forward(p, t)
        grad = crit.backward(p, t)
        loss_labels = crit.forward(p, np.array([0, 0, 2]))
        grad_labels = crit.backward(p, np.array([0, 0, 2]))
    assert_finite(loss, grad)
    np.testing.assert_allclose(loss, 2 * -np.log(1e-15) / 3, rtol=1e-5)  # clipped at EPS = 1e-15
    np.testing.assert_allclose(loss_labels, loss, rtol=1e-6)
    np.testing.assert_allclose(grad_labels, grad, rtol=1e-6)
    assert grad[0, 0] == pytest.approx(-1 / 1e-15 / 3, rel=1e-5)
    assert grad[1, 0] == pytest.approx(-1 / 3 / (1 if dtype == np.float32 else 1 - 1e-15), rel=1e-6)
    assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: BatchNormalization(alpha=0.5), (6, 3)),
        (lambda: BatchNorm1d(3), (6, 3)),
        (lambda: BatchNorm1d(3), (4, 3, 5)),
        (lambda: BatchNorm2d(3), (2, 3, 2, 2)),
    ],
    ids=["BatchNormalization", "BatchNorm1d", "BatchNorm1d-3d", "BatchNorm2d"],
)
def test_batchnorm_constant_feature(make, shape, dtype):
    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    x[:, 1] = 7.0  # zero variance in feature/channel 1
    m = make()
    g = np.random.default_rng(1).normal(size=shape).astype(dtype)
    with np.errstate(all="raise"):
        y = m.forward(x)
        gi = m.backward(x, g)
    assert_finite(y, gi)
    np.testing.assert_allclose(y[:, 1], 0 if not hasattr(m, "bias") else m.bias[1], atol=1e-6)
    # xhat = 0 there, so the gradient is (g - mean(g)) / sqrt(eps): large but finite and exact
    eps = m.EPS if isinstance(m, BatchNormalization) else m.eps
    g1 = g[:, 1].astype(np.float64)
    np.testing.assert_allclose(gi[:, 1], (g1 - g1.mean()) / np.sqrt(eps), rtol=1e-4, atol=1e-4)
    assert y.dtype == gi.dtype == dtype
    m.evaluate()
    with np.errstate(all="raise"):
        assert_finite(m.forward(x), m.backward(x, g))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softplus_and_sigmoid_for_large_inputs(dtype):
    x = np.array([[-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]], dtype=dtype)
    g = np.ones_like(x)
    y, gy = forward_backward(SoftPlus(), x, g)
    s, gs = forward_backward(Sigmoid(), x, g)
    assert_finite(y, gy, s, gs)
    assert y.dtype == gy.dtype == s.dtype == gs.dtype == dtype
    np.testing.assert_allclose(y[0, 4:], [30.0, 100.0, 1e4], rtol=1e-7)  # softplus(x) -> x
    np.testing.assert_allclose(y[0, :3], [0.0, np.exp(-100.0), np.exp(-30.0)], rtol=1e-5, atol=1e-45)
    assert y[0, 3] == pytest.approx(np.log(2))
    assert (y >= 0).all()
    np.testing.assert_allclose(s[0], [0, 0, 9.357623e-14, 0.5, 1, 1, 1], rtol=1e-5, atol=1e-40)
    np.testing.assert_allclose(gy, s, rtol=1e-5, atol=1e-40)  # softplus' = sigmoid
    np.testing.assert_allclose(gs[0, [0, 1, 5, 6]], 0, atol=1e-30)
