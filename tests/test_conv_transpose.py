"""ConvTranspose1d / ConvTranspose2d: parity with PyTorch in float32 and float64
over random configurations (stride, padding, output_padding past the padding,
dilation, groups, bias, rectangular kernels, output_size), gradcheck in
float64, accumulation, frozen modules, state_dict and model-file round
trips, error cases raised before any state changes; the kernels against
their references."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from layers_extra_common import check_accumulates, check_parity, copy_parameters, t

import nnumpy
from nnumpy import ConvTranspose1d, ConvTranspose2d
from nnumpy.kernels import conv_transpose as ct

torch.set_num_threads(1)


def _configs(seed, count, nd):
    """Random (constructor kwargs, input shape) that PyTorch accepts."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 4, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        p = tuple(int(v) for v in rng.integers(0, 3, nd))
        op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d, strict=True))
        size = tuple(int(v) for v in rng.integers(1, 6, nd))
        outs = [
            (n - 1) * si - 2 * pi + di * (ki - 1) + o + 1
            for n, si, pi, di, ki, o in zip(size, s, p, d, k, op, strict=True)
        ]
        if min(outs) < 1:
            continue
        one = rng.random() < 0.3  # ints instead of tuples
        kwargs = {
            "kernel_size": k[0] if one else k,
            "stride": s[0] if one else s,
            "padding": p[0] if one else p,
            "output_padding": op[0] if one else op,
            "dilation": d[0] if one else d,
            "groups": groups,
            "bias": bool(rng.random() < 0.8),
        }
        if one and min(outs) >= 1:
            k1, s1, p1, d1, o1 = k[0], s[0], p[0], d[0], op[0]
            if any((n - 1) * s1 - 2 * p1 + d1 * (k1 - 1) + o1 + 1 < 1 for n in size) or o1 >= max(s1, d1):
                continue
        out.append((cin, cout, kwargs, (int(rng.integers(1, 3)), cin, *size)))
    return out


CONFIGS_2D = _configs(0, 30, 2)
CONFIGS_1D = _configs(1, 15, 1)


def _pair(cls, torch_cls, cin, cout, kwargs, dtype):
    ours = cls(cin, cout, **kwargs, dtype=dtype)
    theirs = torch_cls(cin, cout, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    copy_parameters(ours, theirs, np.random.default_rng(7))
    return ours, theirs


@pytest.mark.parametrize("cin, cout, kwargs, shape", CONFIGS_2D, ids=[str(c) for c in range(len(CONFIGS_2D))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_parity_with_torch(cin, cout, kwargs, shape, dtype):
    ours, theirs = _pair(ConvTranspose2d, torch.nn.ConvTranspose2d, cin, cout, kwargs, dtype)
    x = np.random.default_rng(3).normal(size=shape)
    y, _ = check_parity(ours, theirs, x, dtype=dtype)
    assert y.shape == ours.output_shape(shape)


@pytest.mark.parametrize("cin, cout, kwargs, shape", CONFIGS_1D, ids=[str(c) for c in range(len(CONFIGS_1D))])
def test_conv_transpose1d_parity_with_torch(cin, cout, kwargs, shape):
    for dtype in (np.float32, np.float64):
        ours, theirs = _pair(ConvTranspose1d, torch.nn.ConvTranspose1d, cin, cout, kwargs, dtype)
        y, _ = check_parity(ours, theirs, np.random.default_rng(4).normal(size=shape), dtype=dtype)
        assert y.shape == ours.output_shape(shape)


GRADCHECK = [(ConvTranspose2d, *c) for c in CONFIGS_2D[::3]] + [(ConvTranspose1d, *c) for c in CONFIGS_1D[::3]]


@pytest.mark.parametrize("cls, cin, cout, kwargs, shape", GRADCHECK)
def test_conv_transpose_gradcheck(cls, cin, cout, kwargs, shape):
    m = cls(cin, cout, **kwargs, dtype=np.float64, rng=0)
    nnumpy.gradcheck(m, np.random.default_rng(5).normal(size=shape))


@pytest.mark.parametrize("output_size", [(13, 13), (14, 14), (13, 14), (2, 4, 14, 13)])
def test_output_size_chooses_the_output_padding_as_torch(output_size):
    kwargs = {"kernel_size": 3, "stride": 2, "padding": 1}
    ours, theirs = _pair(ConvTranspose2d, torch.nn.ConvTranspose2d, 4, 2, kwargs, np.float32)
    x = np.random.default_rng(0).normal(size=(2, 4, 7, 7)).astype(np.float32)
    y = ours.forward(x, output_size=output_size)
    tx = t(x, grad=True)
    ty = theirs(tx, output_size=list(output_size))
    assert_close(y, ty, np.float32, "output_size")
    g = np.random.default_rng(1).normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    gi = ours.backward(x, g)
    ty.backward(t(g))
    assert_close(gi, tx.grad, np.float32, "gradInput")
    assert_close(ours.gradWeight, theirs.weight.grad, np.float32, "gradWeight")
    assert ours.forward(x).shape == (2, 2, 13, 13)  # the next call is back to output_padding


def test_output_size_out_of_range_is_refused():
    m = ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    x = np.zeros((1, 4, 7, 7), np.float32)
    with pytest.raises(
        ValueError, match=r"ConvTranspose2d.*output_size \(15, 13\) is not between \(13, 13\) and \(14, 14\)"
    ):
        m.forward(x, output_size=(15, 13))
    with pytest.raises(ValueError, match="output_size must be 2 ints"):
        m.forward(x, output_size=(13,))
    assert m.output is None


def test_accumulates_and_frozen():
    m = ConvTranspose2d(4, 6, 3, stride=2, groups=2, rng=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 5)).astype(np.float32)
    check_accumulates(m, x)
    m.zeroGradParameters()
    m.freeze()
    gi = m.backward(x, np.ones_like(m.forward(x)))
    assert gi.shape == x.shape and not m.gradWeight.any() and not m.gradBias.any()


def test_weight_gradient_without_input_gradient():
    """A first layer (containers skip its input gradient) still gets the weight gradient."""
    m = ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0)
    net = nnumpy.Sequential(m, nnumpy.ReLU())
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    y = net.forward(x)
    g = np.random.default_rng(1).normal(size=y.shape).astype(np.float32)
    net.zeroGradParameters()
    net.backward_pass(x, g, need_input_grad=False)
    got = m.gradWeight.copy()
    m.zeroGradParameters()
    net.backward(x, g)
    assert_close(got, m.gradWeight, np.float32, "gradWeight without input gradient")


def test_dtype_kept_and_initialisation_bound():
    m = ConvTranspose2d(4, 6, (3, 2), groups=2, rng=0)
    bound = 1 / np.sqrt(6 // 2 * 3 * 2)
    assert m.weight.shape == (4, 3, 3, 2) and m.bias.shape == (6,) and m.weight.dtype == np.float32
    assert np.abs(m.weight).max() <= bound and np.abs(m.bias).max() <= bound
    assert m.forward(np.zeros((1, 4, 3, 3), np.float64)).dtype == np.float64
    assert ConvTranspose1d(2, 2, 3, bias=False).bias is None


def test_state_dict_and_model_file_round_trip(tmp_path):
    m = ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1, rng=0)
    other = ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, rng=1)
    other.load_state_dict(m.state_dict())
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(other.forward(x), m.forward(x))
    nnumpy.save_model(m, tmp_path / "m.npz")
    loaded = nnumpy.load_model(tmp_path / "m.npz")
    assert type(loaded) is ConvTranspose2d and loaded.output_padding == (1, 1)
    np.testing.assert_array_equal(loaded.forward(x), m.forward(x))


def test_torch_state_dict_names():
    # weight and bias carry PyTorch's names and layout (export/pytorch.py's TORCH_NAMED rule)
    nnumpy.interop.register_torch_names(ConvTranspose2d)
    net = nnumpy.Sequential(ConvTranspose2d(3, 2, 2, stride=2, rng=0))
    theirs = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 2, 2, stride=2))
    nnumpy.interop.load_torch_state_dict(net, theirs.state_dict())
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)
    assert_close(net.forward(x), theirs(t(x)), np.float32, "loaded from torch")


@pytest.mark.parametrize("kwargs, message", [
    ({"groups": 2, "in_channels": 3}, r"ConvTranspose2d: in_channels \(3\) and out_channels \(4\) must both"),
    ({"stride": 2, "output_padding": 2}, r"output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or"),
    ({"output_padding": 1}, "must be smaller than the stride"),
    ({"padding": -1}, r"padding must be an integer >= 0"),
    ({"kernel_size": 0}, r"kernel_size must be an integer >= 1"),
    ({"kernel_size": (3, 3, 3)}, r"kernel_size must be an int or a 2-tuple"),
    ({"padding_mode": "reflect"}, r"only padding_mode='zeros'"),
])  # fmt: skip
def test_constructor_errors(kwargs, message):
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        ConvTranspose2d(**args)


def test_input_errors_change_nothing():
    m = ConvTranspose2d(3, 2, 3, padding=2)
    with pytest.raises(ValueError, match=r"ConvTranspose2d.*shape \(N, 3, H, W\), got \(1, 2, 4, 4\)"):
        m.forward(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\), got \(3, 4, 4\)"):
        m.forward(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"input of spatial size \(1, 1\) gives an empty output \(-1, -1\)"):
        m.forward(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(TypeError, match="floating dtype"):
        m.forward(np.zeros((1, 3, 4, 4), np.int64))
    with pytest.raises(ValueError, match=r"ConvTranspose1d.*expected input of shape \(N, 3, L\)"):
        ConvTranspose1d(3, 2, 3).forward(np.zeros((1, 3, 4, 4), np.float32))
    assert m.output is None


@pytest.mark.parametrize("cin, cout, kwargs, shape", CONFIGS_2D[:12], ids=[str(c) for c in range(12)])
def test_kernels_match_references(cin, cout, kwargs, shape):
    m = ConvTranspose2d(cin, cout, **kwargs, dtype=np.float64, rng=0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    b = m.bias
    geometry = (m.stride, m.padding, m.output_padding, m.dilation, m.groups)
    y = ct.conv_transpose2d_forward(x, m.weight, b, *geometry)
    assert_close(y, ct.conv_transpose2d_forward_reference(x, m.weight, b, *geometry), np.float64, "forward")
    g = rng.normal(size=y.shape)
    refs = ct.conv_transpose2d_backward_reference(g, x, m.weight, *geometry, bias=b is not None)
    for need_input in (True, False):
        got = ct.conv_transpose2d_backward(g, x, m.weight, *geometry, bias=b is not None, need_input=need_input)
        for name, a, r in zip(("grad_x", "grad_W", "grad_b"), got, refs, strict=True):
            if a is None:
                assert r is None or (name == "grad_x" and not need_input)
            else:
                assert_close(a, r, np.float64, name)


@pytest.mark.parametrize("cls, args", [(ConvTranspose2d, (4, 6, (3, 2))), (ConvTranspose1d, (3, 5, 4))])
def test_parameter_shapes_from_the_config(cls, args):
    for kwargs in ({}, {"groups": 1, "bias": False}, {"groups": 1, "stride": 2}):
        m = cls(*args, **kwargs)
        expected = {name: getattr(m, name).shape for name, _ in m.own_parameter_pairs() if getattr(m, name) is not None}
        assert cls.parameter_shapes(m.get_config()) == expected
