"""LayerNorm, GroupNorm, InstanceNorm1d/2d and GELU: their gradcheck and PyTorch
parity over random configurations are entries of the module table
(tests/module_table.py); here: InstanceNorm's evaluate-mode gradcheck, numerics,
dtypes and empty batches, error cases, and the erf kernel GELU rests on."""

import doctest
import importlib
import math

import numpy as np
import pytest
import torch
from helpers import assert_close
from layers_extra_common import check_parity, state_round_trip, t

import nnumpy
from nnumpy import GELU, GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from nnumpy.layers.activation import erfc

torch.set_num_threads(1)


# ------------------------------------------------------------------ LayerNorm
def test_layernorm_float64_parity_and_empty_batch():
    ours, theirs = LayerNorm(7), torch.nn.LayerNorm(7).double()
    check_parity(ours.to(np.float64), theirs, np.random.default_rng(0).normal(size=(3, 7)), dtype=np.float64)
    y = LayerNorm(7).forward(np.zeros((0, 7), np.float32))
    assert y.shape == (0, 7)


def test_layernorm_constant_rows_and_huge_offset_are_finite():
    m = LayerNorm(6)
    x = np.full((2, 6), 3.0, np.float32)
    x[1] = 1e4 + np.arange(6, dtype=np.float32)
    with np.errstate(all="raise"):
        y = m.forward(x)
        gi = m.backward(x, np.ones_like(y))
    np.testing.assert_array_equal(y[0], 0)
    # the two-pass variance keeps the offset row's normalisation exact-ish in float32
    ref = torch.nn.functional.layer_norm(t(x[1:]), (6,))
    assert_close(y[1:], ref, np.float32, "offset row")
    assert np.isfinite(gi).all()


def test_layernorm_gradients_accumulate_and_state_dict():
    m = LayerNorm((2, 3))
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    g = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    m.zeroGradParameters()
    m.forward(x)
    m.backward(x, g)
    once = m.gradWeight.copy(), m.gradBias.copy()
    m.backward(x, g)
    assert_close(m.gradWeight, 2 * once[0], np.float32, "gradWeight accumulates")
    assert_close(m.gradBias, 2 * once[1], np.float32, "gradBias accumulates")
    assert sorted(m.state_dict()) == ["bias", "weight"]
    assert m.weight.dtype == np.float32 and m.weight.shape == (2, 3)
    state_round_trip(lambda: LayerNorm((2, 3)), x)
    assert LayerNorm(4, elementwise_affine=False).state_dict() == {}
    assert list(LayerNorm(4, bias=False).state_dict()) == ["weight"]


def test_layernorm_repr_matches_torch_words():
    assert repr(LayerNorm(8)) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    assert repr(LayerNorm(8, bias=False)).endswith("bias=False)")


def test_layernorm_errors():
    m = LayerNorm((3, 4))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(3, 4\).*expected input of shape \(\*, 3, 4\), got \(2, 4, 3\)"):
        m.forward(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match="got \\(4,\\)"):
        m.forward(np.zeros((4,), np.float32))
    with pytest.raises(TypeError, match="floating dtype"):
        m.forward(np.zeros((2, 3, 4), np.int64))
    assert m.output is None  # nothing changed by the refused calls
    with pytest.raises(ValueError, match="normalized_shape must be an integer >= 1"):
        LayerNorm(0)
    with pytest.raises(ValueError, match="must not be empty"):
        LayerNorm(())
    with pytest.raises(TypeError, match="normalized_shape"):
        LayerNorm(2.5)
    with pytest.raises(ValueError, match="eps must be > 0"):
        LayerNorm(3, eps=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        LayerNorm(3).backward(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32))


# ------------------------------------------------------------------ erf and GELU
def test_erfc_against_math():
    u = np.linspace(-9, 9, 20001)
    ref = np.array([math.erfc(v) for v in u])
    got = erfc(u)
    # relative error: exp(-u^2) carries u^2 * eps, the polynomial a few ulp
    assert np.max(np.abs(got - ref) / ref) < 2e-14
    assert np.max(np.abs((1 - got) - np.array([math.erf(v) for v in u]))) < 5e-16
    got32 = erfc(u.astype(np.float32))
    assert got32.dtype == np.float32
    ref32 = np.array([math.erfc(float(v)) for v in u.astype(np.float32)])
    keep = ref32 > 1e-30
    assert np.max(np.abs(got32[keep] - ref32[keep]) / ref32[keep]) < 1e-5
    assert np.max(np.abs(got32 - ref32)) < 4e-7  # a few float32 ulp of values up to 2


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradcheck(approximate):
    x = np.random.default_rng(0).normal(size=(4, 6)) * 3
    nnumpy.gradcheck(GELU(approximate), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_parity(approximate, dtype):
    rng = np.random.default_rng(5)
    for shape in [(7,), (3, 5), (2, 3, 4, 5)]:
        x = rng.normal(size=shape) * rng.choice([0.1, 1.0, 6.0])
        check_parity(GELU(approximate), torch.nn.GELU(approximate), x, dtype=dtype)
    # beyond +-40 torch's tanh form overflows (x^3: NaN gradients); ours: test_gelu_extreme_inputs...
    wide = np.concatenate([np.linspace(-40, 40, 4001), [-1e-30, 0.0, 1e-30]])
    check_parity(GELU(approximate), torch.nn.GELU(approximate), wide, dtype=dtype)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_extreme_inputs_raise_no_floating_point_error(approximate):
    x = np.array([-3e38, -1e30, -60, -1e-30, -1e-44, 0, 1e-40, 60, 3e38], np.float32)
    with np.errstate(all="raise"):
        m = GELU(approximate)
        y = m.forward(x)
        gi = m.backward(x, np.ones_like(x))
    np.testing.assert_array_equal(y[[0, 1, 2]], 0)
    assert y[-1] == np.float32(3e38) and y[-2] == 60  # x * Phi(x) = x (torch's exact GELU gives inf at 3e38)
    np.testing.assert_array_equal(gi[[0, 1, 2, -2, -1]], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(gi[3:7], 0.5)


def test_gelu_errors_and_repr():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        GELU("erf")
    with pytest.raises(TypeError, match="GELU"):
        GELU().forward(np.arange(3))
    assert repr(GELU("tanh")) == "GELU(approximate='tanh')"


# ------------------------------------------------------------------ GroupNorm


def test_groupnorm_state_dict_repr_and_errors():
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    state_round_trip(lambda: GroupNorm(3, 6), x)
    assert sorted(GroupNorm(3, 6).state_dict()) == ["bias", "weight"]
    assert GroupNorm(3, 6, affine=False).state_dict() == {}
    assert repr(GroupNorm(3, 6)) == "GroupNorm(3, 6, eps=1e-05, affine=True)"
    assert GroupNorm(3, 6).forward(np.zeros((0, 6, 2), np.float32)).shape == (0, 6, 2)
    m = GroupNorm(3, 6)
    with pytest.raises(ValueError, match=r"GroupNorm\(3, 6.*expected input of shape \(N, 6, \*\), got \(2, 4, 3\)"):
        m.forward(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 6, \*\), got \(6,\)"):
        m.forward(np.zeros(6, np.float32))
    assert m.output is None
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 2.*expected more than 1 value per group, got .*\(1, 2\)"):
        GroupNorm(2, 2).forward(np.zeros((1, 2), np.float32))  # as torch: each group is a single value
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        GroupNorm(2, 5)
    with pytest.raises(ValueError, match="num_groups must be an integer >= 1"):
        GroupNorm(0, 4)


# ------------------------------------------------------------------ InstanceNorm
INSTANCE = [
    (InstanceNorm1d, torch.nn.InstanceNorm1d, (3, 4, 5)),
    (InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 4, 3, 5)),
]
INSTANCE_IDS = ["1d", "2d"]


@pytest.mark.parametrize("ours, theirs, shape", INSTANCE, ids=INSTANCE_IDS)
@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (True, True), (False, True)])
def test_instancenorm_gradcheck_train_and_eval(ours, theirs, shape, affine, track):
    rng = np.random.default_rng(4)
    m = ours(shape[1], affine=affine, track_running_stats=track)
    for v in m.state_dict().values():
        v[...] = np.abs(rng.normal(size=v.shape)) + 0.5
    x = rng.normal(size=shape) * 2 + 1
    nnumpy.gradcheck(m, x)
    nnumpy.gradcheck(m.evaluate(), x)


def test_instancenorm_errors_state_and_repr():
    m = InstanceNorm2d(3, affine=True, track_running_stats=True)
    assert sorted(m.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    assert InstanceNorm1d(3).state_dict() == {}
    words = "InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)"
    assert repr(InstanceNorm1d(3)) == words
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    state_round_trip(lambda: InstanceNorm2d(3, affine=True, track_running_stats=True), x)
    before = m.running_mean.copy()
    message = r"InstanceNorm2d\(3.*expected input of shape \(N, 3, H, W\) or \(3, H, W\), got \(2, 4, 4, 4\)"
    with pytest.raises(ValueError, match=message):
        m.forward(np.zeros((2, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, L\) or \(3, L\), got \(2, 3, 4, 4\)"):
        InstanceNorm1d(3).forward(x)
    with pytest.raises(ValueError, match="expected more than 1 spatial element when training"):
        m.forward(np.zeros((2, 3, 1, 1), np.float32))
    np.testing.assert_array_equal(m.running_mean, before)
    m.evaluate().forward(np.zeros((2, 3, 1, 1), np.float32))  # running statistics: any size
    with pytest.raises(ValueError, match="momentum must be in"):
        InstanceNorm1d(3, momentum=1.5)


# ------------------------------------------------------------------ every new module: dtypes and empty batches
EVERY = [
    (lambda: LayerNorm((3, 4)), (2, 3, 4)),
    (lambda: GroupNorm(2, 4), (2, 4, 3)),
    (lambda: InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 5)),
    (lambda: InstanceNorm2d(3), (2, 3, 4, 4)),
    (lambda: GELU(), (2, 5)),
    (lambda: GELU("tanh"), (2, 5)),
    (lambda: nnumpy.SiLU(), (2, 5)),
    (lambda: nnumpy.Mish(), (2, 5)),
    (lambda: nnumpy.Hardswish(), (2, 5)),
    (lambda: nnumpy.Hardsigmoid(), (2, 5)),
    (lambda: nnumpy.ReLU6(), (2, 5)),
    (lambda: nnumpy.Hardtanh(-2, 2), (2, 5)),
    (lambda: nnumpy.PReLU(5), (2, 5)),
    (lambda: nnumpy.SELU(), (2, 5)),
    (lambda: nnumpy.CELU(0.5), (2, 5)),
    (lambda: nnumpy.Softsign(), (2, 5)),
    (lambda: nnumpy.Tanhshrink(), (2, 5)),
    (lambda: nnumpy.SoftMax(dim=-1), (2, 3, 5)),
    (lambda: nnumpy.LogSoftMax(dim=2), (2, 3, 5)),
    (lambda: nnumpy.Upsample(scale_factor=2), (2, 3, 4)),
    (lambda: nnumpy.Upsample(size=(5, 7), mode="bilinear"), (2, 3, 4, 4)),
    (lambda: nnumpy.UpsamplingBilinear2d(scale_factor=2), (2, 3, 4, 4)),
    (lambda: nnumpy.AdaptiveAvgPool2d(3), (2, 3, 7, 5)),
    (lambda: nnumpy.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    (lambda: nnumpy.Dropout2d(0.5, rng=0), (2, 3, 4, 4)),
    (lambda: nnumpy.ZeroPad2d((1, -1, 0, 2)), (2, 3, 4, 4)),
    (lambda: nnumpy.ReflectionPad2d(1), (2, 3, 4, 4)),
    (lambda: nnumpy.ReplicationPad2d(2), (2, 3, 4, 4)),
    (lambda: nnumpy.Unflatten(1, (2, -1)), (2, 6)),
]
EVERY_IDS = [repr(make()) for make, _ in EVERY]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("make, shape", EVERY, ids=EVERY_IDS)
def test_dtype_in_is_dtype_out(make, shape, dtype):
    m = make()  # float32 parameters, whatever the input
    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    y = m.forward(x)
    gi = m.backward(x, np.ones_like(y))
    assert y.dtype == dtype and gi.dtype == dtype and gi.shape == x.shape
    assert np.isfinite(y).all() and np.isfinite(gi).all()
    for p, g in m.own_parameter_pairs():
        assert getattr(m, p).dtype == getattr(m, g).dtype == np.float32


@pytest.mark.parametrize("make, shape", EVERY, ids=EVERY_IDS)
def test_an_empty_batch_gives_an_empty_result(make, shape):
    m = make()
    x = np.zeros((0, *shape[1:]), np.float32)
    y = m.forward(x)
    assert y.shape[0] == 0
    assert m.backward(x, np.zeros_like(y)).shape == x.shape


LAYER_FILES = ["activation", "layer_norm", "upsample", "padding", "adaptive_pool", "dropout", "reshape"]


@pytest.mark.parametrize("name", LAYER_FILES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(f"nnumpy.layers.{name}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
