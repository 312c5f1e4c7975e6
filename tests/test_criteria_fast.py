"""ClassNLLCriterion's fast path ((N, C) input, (N,) integer labels, no weight,
'mean' or 'sum'): bit for bit what the general path gives (a target given as a
list takes the general path), and every unusual case falls back to it."""

import numpy as np
import pytest

from nnumpy import ClassNLLCriterion, LogSoftMax, NLLLoss


def _logp(n, c, dtype, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, c)) * 5
    return LogSoftMax().forward(x.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("gradOutput", [None, 2.5])
def test_fast_path_is_the_general_path(dtype, reduction, gradOutput):
    x = _logp(33, 7, dtype)
    x[3, :] = -np.inf  # a log-probability of zero at row 3
    x[4, 2] = np.nan
    y = np.random.default_rng(1).integers(0, 7, 33).astype(np.uint8)
    crit = ClassNLLCriterion(reduction=reduction)
    assert crit._plain_labels(x, y) and not crit._plain_labels(x, y.tolist())
    with np.errstate(invalid="ignore"):
        fast, general = crit.forward(x, y), crit.forward(x, y.tolist())
    assert type(fast) is type(general) and fast.dtype == dtype
    np.testing.assert_array_equal(fast, general)
    fast, general = crit.backward(x, y, gradOutput), crit.backward(x, y.tolist(), gradOutput)
    assert fast.dtype == general.dtype == dtype
    np.testing.assert_array_equal(fast, general)


def test_unusual_cases_take_the_general_path():
    x, y = _logp(6, 4, np.float32), np.array([0, 1, 2, 3, 1, 0])
    assert not ClassNLLCriterion(weight=np.ones(4))._plain_labels(x, y)
    assert not ClassNLLCriterion(reduction="none")._plain_labels(x, y)
    assert not ClassNLLCriterion(ignore_index=1)._plain_labels(x, y)  # a label to ignore is there
    assert ClassNLLCriterion(ignore_index=1)._plain_labels(x, np.array([0, 2, 2, 3, 3, 0]))
    assert not ClassNLLCriterion()._plain_labels(x, np.array([0, 1, 2, 4, 1, 0]))
    assert not ClassNLLCriterion()._plain_labels(x, y.astype(np.float32))
    assert not ClassNLLCriterion()._plain_labels(x[:0], y[:0])
    assert not ClassNLLCriterion()._plain_labels(x[None], y[None])
    # the general path's answers: ignored rows out of the mean, its errors
    ignored = ClassNLLCriterion(ignore_index=1).forward(x, y)
    kept = y != 1
    np.testing.assert_allclose(ignored, -x[np.arange(6), y][kept].mean(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"label targets must be in \[0, 3\], got values in \[0, 4\]"):
        ClassNLLCriterion().forward(x, np.array([0, 1, 2, 4, 1, 0]))
    with pytest.raises(ValueError, match="expected log-probabilities"):
        ClassNLLCriterion().backward(np.abs(x), y)
    with pytest.raises(ValueError, match="gradOutput must be a number"):
        ClassNLLCriterion().backward(x, y, np.ones(6))
    assert NLLLoss().forward(np.abs(x), y) < 0  # NLLLoss: no log-probability check on the fast path either
