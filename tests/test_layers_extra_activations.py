"""The activations of issue 16 (SiLU, Mish, Hardswish, Hardsigmoid, ReLU6,
Hardtanh, PReLU, SELU, CELU, Softsign, Tanhshrink) and SoftMax / LogSoftMax
over any axis with issue 14's numerics. Gradcheck and parity with PyTorch
over random shapes and scales and at the kinks are in the module table
(tests/module_table.py); here: no floating-point warning at extreme finite
inputs, error cases, PReLU's channels, SoftMax's axes and numerics."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from layers_extra_common import check_accumulates, check_parity, state_round_trip, t

import nnumpy
from nnumpy import (
    CELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSoftMax,
    Mish,
    PReLU,
    ReLU6,
    SiLU,
    SoftMax,
    Softsign,
    Tanhshrink,
)

torch.set_num_threads(1)
F = torch.nn.functional

# (id, ours, torch's)
ELEMENTWISE = [
    ("SiLU", SiLU, torch.nn.SiLU),
    ("Mish", Mish, torch.nn.Mish),
    ("Hardswish", Hardswish, torch.nn.Hardswish),
    ("Hardsigmoid", Hardsigmoid, torch.nn.Hardsigmoid),
    ("ReLU6", ReLU6, torch.nn.ReLU6),
    ("Hardtanh", Hardtanh, torch.nn.Hardtanh),
    ("Hardtanh-range", lambda: Hardtanh(-0.5, 2.0), lambda: torch.nn.Hardtanh(-0.5, 2.0)),
    ("SELU", SELU, torch.nn.SELU),
    ("CELU", CELU, torch.nn.CELU),
    ("CELU-alpha", lambda: CELU(0.3), lambda: torch.nn.CELU(0.3)),
    ("CELU-negative-alpha", lambda: CELU(-2.0), lambda: torch.nn.CELU(-2.0)),
    ("Softsign", Softsign, torch.nn.Softsign),
    ("Tanhshrink", Tanhshrink, torch.nn.Tanhshrink),
    ("PReLU", PReLU, torch.nn.PReLU),
]
IDS = [e[0] for e in ELEMENTWISE]


@pytest.mark.parametrize("name, ours, theirs", ELEMENTWISE, ids=IDS)
def test_extreme_finite_inputs_raise_no_floating_point_error(name, ours, theirs):
    big = np.finfo(np.float32).max
    x = np.array([-big, -1e30, -100, -1e-30, -1e-45, 0, 1e-45, 1e-30, 100, 1e30, big], np.float32)
    m = ours()
    with np.errstate(all="raise"):
        y = m.forward(x)
        gi = m.backward(x, np.ones_like(x))
    assert y.dtype == gi.dtype == np.float32
    tx = t(x, grad=True)
    ty = theirs()(tx)
    ty.backward(torch.ones_like(ty))
    ref, ref_grad = ty.detach().numpy(), tx.grad.numpy()
    if name == "Hardswish":  # torch's x * 6 overflows before its / 6; the true value is x
        assert y[-1] == big and ref[-1] == np.inf
        ref[-1] = big
    # inf only where the true value is beyond float32's range (SELU's scale * 3.4e38,
    # CELU(-2) at -3.4e38 and its derivative exp(x / -2) there)
    for ours_a, ref_a, what in ((y, ref, "output"), (gi, ref_grad, "gradInput")):
        np.testing.assert_array_equal(np.isinf(ours_a), np.isinf(ref_a), err_msg=what)
        np.testing.assert_array_equal(ours_a[np.isinf(ref_a)], ref_a[np.isinf(ref_a)], err_msg=what)
        assert_close(ours_a[~np.isinf(ref_a)], ref_a[~np.isinf(ref_a)], np.float32, f"{name} {what}")


def test_prelu_per_channel_parity_and_state_dict():
    rng = np.random.default_rng(2)
    for shape in [(4, 3), (2, 3, 5), (2, 3, 4, 4)]:
        ours, theirs = PReLU(3, init=0.1), torch.nn.PReLU(3, init=0.1)
        weight = rng.normal(size=3).astype(np.float32)
        ours.weight[...] = weight
        theirs.weight.data = t(weight)
        check_parity(ours, theirs, rng.normal(size=shape) * 2)
    check_parity(PReLU(), torch.nn.PReLU(), rng.normal(size=(5,)))  # 1-D: no channel axis, one slope
    m = PReLU(3)
    assert m.weight.shape == (3,) and m.weight.dtype == np.float32 and np.all(m.weight == 0.25)
    assert m.num_parameters == 3 and repr(m) == "PReLU(num_parameters=3)"
    nnumpy.gradcheck(PReLU(3, init=-0.3), rng.normal(size=(2, 3, 4)))
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    check_accumulates(PReLU(3), x)
    state_round_trip(lambda: PReLU(3), x)
    assert list(PReLU().state_dict()) == ["weight"]


def test_prelu_errors():
    message = r"PReLU\(num_parameters=3\): expected input of shape \(N, 3, \*\), got \(2, 4\)"
    with pytest.raises(ValueError, match=message):
        PReLU(3).forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, \*\), got \(3,\)"):
        PReLU(3).forward(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="num_parameters must be an integer >= 1"):
        PReLU(0)
    with pytest.raises(TypeError, match="init must be a real number"):
        PReLU(1, init="a")


def test_piecewise_constructor_errors_and_reprs():
    with pytest.raises(ValueError, match="min_val must be < max_val"):
        Hardtanh(1.0, -1.0)
    with pytest.raises(TypeError, match="Hardtanh: max_val must be a real number"):
        Hardtanh(0, None)
    with pytest.raises(ValueError, match="CELU: alpha must not be 0"):
        CELU(0.0)
    with pytest.raises(TypeError, match=r"SiLU\(\): expected input of a floating dtype"):
        SiLU().forward(np.arange(3))
    assert repr(Hardtanh(-2, 2)) == "Hardtanh(min_val=-2.0, max_val=2.0)"
    assert repr(ReLU6()) == "ReLU6()" and repr(CELU(0.5)) == "CELU(alpha=0.5)"


# ------------------------------------------------------------------ SoftMax / LogSoftMax
SOFTMAX = [(SoftMax, torch.nn.Softmax), (LogSoftMax, torch.nn.LogSoftmax)]


AXES = [((3, 4), 0), ((3, 4), -1), ((2, 3, 4), 2), ((2, 3, 4), -3), ((5,), 0), ((2, 3, 2, 2), 1)]


@pytest.mark.parametrize("ours, theirs", SOFTMAX, ids=["SoftMax", "LogSoftMax"])
@pytest.mark.parametrize("shape, dim", AXES)
def test_softmax_any_axis_gradcheck_and_parity(ours, theirs, shape, dim):
    rng = np.random.default_rng(len(shape) * 10 + dim)
    x = rng.normal(size=shape) * 3
    nnumpy.gradcheck(ours(dim=dim), x)
    check_parity(ours(dim=dim), theirs(dim=dim), x)
    check_parity(ours(dim=dim), theirs(dim=dim), x, dtype=np.float64)


def test_softmax_default_dim_is_the_seeds_axis_1():
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(SoftMax().forward(x), SoftMax(dim=1).forward(x))
    assert_close(SoftMax().forward(x).sum(axis=1), np.ones((2, 4)), np.float32, "rows over axis 1")
    assert repr(SoftMax()) == "SoftMax()" and repr(LogSoftMax(dim=-1)) == "LogSoftMax(dim=-1)"


def test_softmax_axis_errors():
    with pytest.raises(ValueError, match=r"^SoftMax\(dim=2\): expected input with at least 3 dims, got \(4, 5\)$"):
        SoftMax(dim=2).forward(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"LogSoftMax\(dim=-3\): expected input with at least 3 dims"):
        LogSoftMax(dim=-3).forward(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="SoftMax: dim must be an int, got 1.0"):
        SoftMax(dim=1.0)
    m = SoftMax(dim=0)
    with pytest.raises(TypeError, match="floating dtype"):
        m.forward(np.zeros((2, 2), np.int32))
    assert m.output is None


def _assert_same_with_infinities(ours, ref, what):
    ref = ref.detach().numpy()
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref), err_msg=what)
    np.testing.assert_array_equal(ours[np.isinf(ref)], ref[np.isinf(ref)], err_msg=what)
    finite = np.isfinite(ref)
    assert_close(ours[finite], ref[finite], ours.dtype, what)


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_softmax_numerics_for_any_finite_float32_input(dim):
    """Issue 14: no floating-point warning or error for any finite float32
    input, also under np.errstate(all='raise'); a log-probability below
    float32's range is -inf, as in PyTorch."""
    big = np.finfo(np.float32).max
    rows = [[3e38, -3e38], [-3e38, 3e38], [big, -big], [-big, -big], [big, big], [1e-45, -1e-45], [0.0, -3e38]]
    x = np.array(rows, np.float32)
    rng = np.random.default_rng(0)
    values = np.array([big, -big, 3e38, -3e38, 1e30, -1e30, 100.0, -100.0, 1e-45, 0.0, 1.0, -1.0], np.float32)
    x = np.concatenate([x, rng.choice(values, size=(40, 2))])
    x = x if dim != 0 else np.ascontiguousarray(x.T)
    g = rng.normal(size=x.shape).astype(np.float32)
    for ours, theirs in ((SoftMax(dim=dim), F.softmax), (LogSoftMax(dim=dim), F.log_softmax)):
        with np.errstate(all="raise"):
            y = ours.forward(x)
            gi = ours.backward(x, g)
        tx = t(x, grad=True)
        ty = theirs(tx, dim=dim)
        _assert_same_with_infinities(y, ty, f"{ours!r} output")
        assert np.isfinite(gi).all(), f"{ours!r} gradInput"
        if isinstance(ours, SoftMax):
            assert_close(gi, torch.autograd.grad(ty, tx, t(g))[0], np.float32, f"{ours!r} gradInput")
    axis = dim % 2
    lsm = LogSoftMax(dim=dim).forward(x)
    first = lsm[0] if axis == 1 else lsm[:, 0]
    np.testing.assert_array_equal(first, [0.0, -np.inf])  # log-probability -6e38: below float32's range


def test_log_softmax_underflow_is_exact_minus_inf_in_float64_too():
    x = np.array([[1.7e308, -1.7e308, 0.0]])
    with np.errstate(all="raise"):
        y = LogSoftMax().forward(x)
        p = SoftMax().forward(x)
    np.testing.assert_array_equal(y, [[0.0, -np.inf, -1.7e308]])
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]], rtol=0, atol=1e-200)  # exp is floored above subnormals
