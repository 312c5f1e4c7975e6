"""Conv1d/Conv2d ``padding_mode`` ('zeros', 'reflect', 'replicate', 'circular')
and the poolings' ``ceil_mode``: parity with PyTorch in float32 and float64
over random configurations, gradcheck in float64, error cases raised before
any state changes, model-file round trips."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from layers_extra_common import check_parity

import nnumpy
from nnumpy import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d

torch.set_num_threads(1)
MODES = ("zeros", "reflect", "replicate", "circular")


def _conv_configs(seed, count, nd):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        mode = MODES[len(out) % 4]
        groups = int(rng.choice([1, 2]))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 3, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        size = tuple(int(v) for v in rng.integers(2, 7, nd))
        if rng.random() < 0.25 and s == (1,) * nd:
            padding = "same"
            pads = [(di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2) for ki, di in zip(k, d, strict=True)]
        else:
            p = tuple(int(v) for v in rng.integers(0, 3, nd))
            padding = p[0] if nd == 1 else p
            pads = [(pi, pi) for pi in p]
        limit = {"reflect": -1, "circular": 0}.get(mode, 99)
        if any(max(lo, hi) > n + limit for (lo, hi), n in zip(pads, size, strict=True)):
            continue
        if any(n + lo + hi < di * (ki - 1) + 1 for n, (lo, hi), ki, di in zip(size, pads, k, d, strict=True)):
            continue
        kwargs = {"kernel_size": k, "stride": s, "padding": padding, "dilation": d, "groups": groups}
        kwargs.update(padding_mode=mode, bias=bool(rng.random() < 0.8))
        out.append((cin, cout, kwargs, (int(rng.integers(1, 3)), cin, *size)))
    return out


CONV_2D = _conv_configs(0, 24, 2)
CONV_1D = _conv_configs(1, 12, 1)


@pytest.mark.parametrize("nd, cin, cout, kwargs, shape", [(2, *c) for c in CONV_2D] + [(1, *c) for c in CONV_1D])
def test_conv_padding_mode_parity_with_torch(nd, cin, cout, kwargs, shape):
    ours_cls, theirs_cls = (Conv2d, torch.nn.Conv2d) if nd == 2 else (Conv1d, torch.nn.Conv1d)
    x = np.random.default_rng(2).normal(size=shape)
    for dtype in (np.float32, np.float64):
        ours = ours_cls(cin, cout, **kwargs, dtype=dtype)
        theirs = theirs_cls(cin, cout, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
        for (p, _), name in zip(ours.own_parameter_pairs(), ("weight", "bias"), strict=False):
            getattr(theirs, name).data = torch.from_numpy(getattr(ours, p).copy())
        y, _ = check_parity(ours, lambda tx, m=theirs: m(tx), x, dtype=dtype)  # parameters compared below
        assert_close(ours.gradW, theirs.weight.grad, dtype, "gradW")
        if ours.b is not None:
            assert_close(ours.gradb, theirs.bias.grad, dtype, "gradb")
        assert y.shape == tuple(theirs(torch.zeros(shape, dtype=theirs.weight.dtype)).shape)


@pytest.mark.parametrize(
    "nd, cin, cout, kwargs, shape", [(2, *c) for c in CONV_2D[:8]] + [(1, *c) for c in CONV_1D[:4]]
)
def test_conv_padding_mode_gradcheck(nd, cin, cout, kwargs, shape):
    cls = Conv2d if nd == 2 else Conv1d
    nnumpy.gradcheck(cls(cin, cout, **kwargs, dtype=np.float64, rng=0), np.random.default_rng(3).normal(size=shape))


def test_conv_padding_mode_errors_change_nothing():
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of .*got 'mirror'"):
        Conv2d(1, 1, 3, padding_mode="mirror")
    m = Conv2d(1, 1, 5, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv2d.*padding_mode='reflect' needs padding smaller than the input's"):
        m.forward(np.zeros((1, 1, 3, 8), np.float32))
    c = Conv1d(1, 1, 3, padding=4, padding_mode="circular")
    with pytest.raises(ValueError, match=r"Conv1d.*padding_mode='circular' needs padding at most the input's"):
        c.forward(np.zeros((1, 1, 3), np.float32))
    assert m.output is None and c.output is None
    assert c.forward(np.zeros((1, 1, 4), np.float32)).shape == (1, 1, 10)  # padding == size is accepted


def test_conv_padding_mode_model_file_round_trip(tmp_path):
    m = Conv2d(2, 3, 3, padding=1, padding_mode="replicate", rng=0)
    nnumpy.save_model(m, tmp_path / "m.npz")
    loaded = nnumpy.load_model(tmp_path / "m.npz")
    x = np.random.default_rng(0).normal(size=(1, 2, 4, 4)).astype(np.float32)
    assert loaded.padding_mode == "replicate"
    np.testing.assert_array_equal(loaded.forward(x), m.forward(x))


# ------------------------------------------------------------------ ceil_mode
def _pool_configs(seed, count, nd):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        k = tuple(int(v) for v in rng.integers(1, 5, nd))
        s = tuple(int(v) for v in rng.integers(1, 4, nd))
        p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
        size = tuple(int(v) for v in rng.integers(1, 9, nd))
        if any(n + 2 * pi < ki for n, pi, ki in zip(size, p, k, strict=True)):
            continue
        one = nd == 1 or rng.random() < 0.3
        kwargs = {"kernel_size": k[0] if one else k, "stride": s[0] if one else s, "padding": p[0] if one else p}
        if one and (any(n + 2 * p[0] < k[0] for n in size) or p[0] > k[0] // 2):
            continue
        out.append((kwargs, (int(rng.integers(1, 3)), int(rng.integers(1, 3)), *size)))
    return out


POOL_2D = _pool_configs(0, 30, 2)
POOL_1D = _pool_configs(1, 12, 1)
POOLS = [
    (2, "max", MaxPool2d, torch.nn.MaxPool2d),
    (2, "avg", AvgPool2d, torch.nn.AvgPool2d),
    (1, "max", MaxPool1d, torch.nn.MaxPool1d),
    (1, "avg", AvgPool1d, torch.nn.AvgPool1d),
]
POOL_CASES = [
    (ours, theirs, kwargs, shape, include)
    for nd, kind, ours, theirs in POOLS
    for kwargs, shape in (POOL_2D if nd == 2 else POOL_1D)
    for include in ((True, False) if kind == "avg" else (None,))
]


@pytest.mark.parametrize(
    "ours, theirs, kwargs, shape, include", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))]
)
def test_pooling_ceil_mode_parity_with_torch(ours, theirs, kwargs, shape, include):
    extra = {} if include is None else {"count_include_pad": include}
    x = np.random.default_rng(len(POOL_CASES)).normal(size=shape)
    for dtype in (np.float32, np.float64):
        for ceil in (True, False):
            m = ours(**kwargs, ceil_mode=ceil, **extra)
            y, _ = check_parity(m, theirs(**kwargs, ceil_mode=ceil, **extra), x, dtype=dtype)


@pytest.mark.parametrize("ours, theirs, kwargs, shape, include", POOL_CASES[::4])
def test_pooling_ceil_mode_gradcheck(ours, theirs, kwargs, shape, include):
    extra = {} if include is None else {"count_include_pad": include}
    x = np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape) / 7.0  # no ties for the maximum
    nnumpy.gradcheck(ours(**kwargs, ceil_mode=True, **extra), x)


def test_ceil_mode_keeps_the_partial_window_and_round_trips(tmp_path):
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    assert MaxPool2d(2, ceil_mode=True).forward(x)[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    assert AvgPool2d(2, ceil_mode=True).forward(x)[0, 0, 2].tolist() == [20.5, 22.5, 24.0]
    # a last window that would start in the right padding is dropped (PyTorch's rule)
    assert MaxPool1d(2, stride=2, padding=1, ceil_mode=True).forward(np.zeros((1, 1, 4), np.float32)).shape == (1, 1, 3)
    m = AvgPool2d(3, 2, 1, True, False)  # PyTorch's positional order: ceil_mode before count_include_pad
    assert m.ceil_mode and not m.count_include_pad
    nnumpy.save_model(nnumpy.Sequential(m, MaxPool2d(2, ceil_mode=True)), tmp_path / "m.npz")
    loaded = nnumpy.load_model(tmp_path / "m.npz")
    assert loaded[0].ceil_mode and loaded[1].ceil_mode and "ceil_mode=True" in repr(loaded[1])
    with pytest.raises(TypeError):
        MaxPool2d(2, 2, 0, True)  # ceil_mode is keyword-only for MaxPool (PyTorch's 4th is dilation)
