"""Each fast kernel of nnumpy.kernels against its plain reference, in float64,
over random shapes, with the default sizes and with the smallest ones (set
through the public knob, ``nnumpy.kernels.tuning``): every array split over the
3 threads, one sample per im2col chunk, widened BatchNorm rows of 8 values."""

import numpy as np
import pytest
from conftest import SMALL_SIZES
from helpers import assert_close

from nnumpy import kernels
from nnumpy.kernels import batchnorm as bn
from nnumpy.kernels import conv, elementwise, pooling
from nnumpy.kernels.matmul import matmul_reference


@pytest.fixture(params=["default sizes", "small sizes"])
def sizes(request):
    with kernels.tuning(**(kernels.DEFAULTS | {"threads": 3} if request.param == "default sizes" else SMALL_SIZES)):
        yield request.param


def same(ours, ref):
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert_close(ours, ref, np.float64, "fast vs reference")


def channels_last(r, shape):
    """A random (N, C, *) array whose memory is channels-last (what Conv2d outputs)."""
    n, c, *spatial = shape
    return r.standard_normal((n, *spatial, c)).transpose(0, len(shape) - 1, *range(1, len(shape) - 1))


# ------------------------------------------------------------------ convolution
def conv_configs(count=12, seed=0):
    r = np.random.default_rng(seed)
    for _ in range(count):
        groups = int(r.choice([1, 1, 2, 3]))
        cin, cout = groups * int(r.integers(1, 4)), groups * int(r.integers(1, 4))
        kernel = tuple(int(k) for k in r.integers(1, 4, size=2))
        stride = tuple(int(s) for s in r.integers(1, 3, size=2))
        dilation = tuple(int(d) for d in r.integers(1, 3, size=2))
        pads = tuple((int(lo), int(hi)) for lo, hi in r.integers(0, 3, size=(2, 2)))
        reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
        size = tuple(int(x) for x in reach + r.integers(0, 6, size=2))
        yield int(r.integers(1, 8)), cin, cout, kernel, stride, pads, dilation, groups, size, bool(r.integers(0, 2))


CONV = list(conv_configs())


@pytest.mark.parametrize("config", CONV, ids=[f"conv{i}" for i in range(len(CONV))])
def test_conv2d_matches_reference(config, sizes):
    n, cin, cout, kernel, stride, pads, dilation, groups, size, bias = config
    r = np.random.default_rng(1)
    x = r.standard_normal((n, cin, *size))
    W = r.standard_normal((cout, cin // groups, *kernel))
    b = r.standard_normal(cout) if bias else None
    geometry = (stride, pads, dilation, groups)
    y_ref = conv.conv2d_forward_reference(x, W, b, *geometry)
    for keep in (False, True):
        y, xpad, cols = conv.conv2d_forward(x, W, b, *geometry, keep_columns=keep)
        same(y, y_ref)
        g = r.standard_normal(y.shape)
        refs = conv.conv2d_backward_reference(g, x, W, *geometry, bias=bias)
        grads = conv.conv2d_backward(g, xpad, W, x.shape, *geometry, bias=bias, cols=cols)
        for ours, ref in zip(grads, refs, strict=True):
            if ref is None:
                assert ours is None
            else:
                same(ours, ref)
        gx, gw, gb = conv.conv2d_backward(g, xpad, W, x.shape, *geometry, bias=bias, need_params=False)
        same(gx, refs[0])
        assert gw is None and gb is None


def test_conv2d_keeps_columns_only_when_asked_and_small():
    x, W = np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3))
    geometry = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert conv.conv2d_forward(x, W, None, *geometry)[2] is None
    assert conv.conv2d_forward(x, W, None, *geometry, keep_columns=True)[2] is not None
    with kernels.tuning(keep_columns_bytes=100):
        assert conv.conv2d_forward(x, W, None, *geometry, keep_columns=True)[2] is None


# ------------------------------------------------------------------ batch normalisation
def row_matrices(count=8, seed=2):
    """(M, C) matrices: contiguous, and channels-last views of an NCHW input (not contiguous)."""
    r = np.random.default_rng(seed)
    for i in range(count):
        n, c, h, w = (int(v) for v in r.integers(1, 7, size=4))
        if i % 2:
            yield bn.channel_rows(np.ascontiguousarray(channels_last(r, (n, c, h, w)))) * 3 + 1  # a copy: contiguous
        else:
            yield bn.channel_rows(r.standard_normal((n, c, h, w)))  # NCHW: the rows are a strided copy or view


ROWS = list(row_matrices())


@pytest.mark.parametrize("rows", ROWS, ids=[f"rows{i}-{r.shape[0]}x{r.shape[1]}" for i, r in enumerate(ROWS)])
@pytest.mark.parametrize("affine", [False, True])
def test_batchnorm_matches_reference(rows, affine, sizes):
    r = np.random.default_rng(3)
    c = rows.shape[1]
    weight, bias = (r.standard_normal(c), r.standard_normal(c)) if affine else (None, None)
    g = r.standard_normal(rows.shape)
    for ours, ref in zip(bn.column_sums(g, rows), bn.column_sums_reference(g, rows), strict=True):
        same(ours, ref)
    same(bn.column_sums(rows), bn.column_sums_reference(rows))
    scale = r.standard_normal(c)
    same(bn.scale_shift(rows, scale, bias), bn.scale_shift_reference(rows, scale, bias))
    fast = bn.batchnorm_forward_train(rows, weight, bias, 1e-5)
    ref = bn.batchnorm_forward_train_reference(rows, weight, bias, 1e-5)
    for ours, theirs in zip(fast, ref, strict=True):
        same(ours, theirs)
    again = bn.batchnorm_forward_train(rows * 2, weight, bias, 1e-5, centered_out=fast[3])  # the buffer reused
    same(again[0], bn.batchnorm_forward_train_reference(rows * 2, weight, bias, 1e-5)[0])
    _, _, _, centered, inv_std = ref
    sums = bn.column_sums(g, centered)
    grad, scratch = bn.batchnorm_backward_train(g, centered, inv_std, weight, sums)
    same(grad, bn.batchnorm_backward_train_reference(g, centered, inv_std, weight))
    grad2, _ = bn.batchnorm_backward_train(g, centered, inv_std, weight, sums, scratch=scratch)
    same(grad2, grad)


def test_batchnorm_rows_round_trip_without_copies():
    x = channels_last(np.random.default_rng(4), (2, 3, 4, 5))
    rows = bn.channel_rows(x)
    assert np.shares_memory(rows, x) and rows.shape == (40, 3)
    back = bn.from_rows(rows, x.shape)
    assert np.shares_memory(back, x) and np.array_equal(back, x)


# ------------------------------------------------------------------ pooling
def pool_configs(count=10, seed=5):
    r = np.random.default_rng(seed)
    for _ in range(count):
        kernel = tuple(int(k) for k in r.integers(1, 4, size=2))
        stride = tuple(int(s) for s in r.integers(1, 4, size=2))
        padding = tuple(int(r.integers(0, k // 2 + 1)) for k in kernel)
        size = tuple(int(k + r.integers(0, 6)) for k in kernel)
        yield (int(r.integers(1, 8)), int(r.integers(1, 4)), *size), kernel, stride, padding, bool(r.integers(0, 2))


POOL = list(pool_configs())


@pytest.mark.parametrize("config", POOL, ids=[f"pool{i}" for i in range(len(POOL))])
def test_pooling_matches_reference(config, sizes):
    shape, kernel, stride, padding, layout = config
    r = np.random.default_rng(6)
    x = channels_last(r, shape) if layout else r.standard_normal(shape)
    y, argmax = pooling.maxpool2d_forward(x, kernel, stride, padding)
    y_ref, argmax_ref = pooling.maxpool2d_forward_reference(x, kernel, stride, padding)
    same(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    assert pooling.maxpool2d_forward(x, kernel, stride, padding, with_argmax=False)[1] is None
    g = r.standard_normal(y.shape)
    same(pooling.maxpool2d_backward(g, argmax, x.shape, kernel, stride, padding),
         pooling.maxpool2d_backward_reference(g, argmax_ref, x.shape, kernel, stride, padding))  # fmt: skip
    same(pooling.maxpool2d_backward(np.ascontiguousarray(g), argmax, x.shape, kernel, stride, padding),
         pooling.maxpool2d_backward_reference(g, argmax_ref, x.shape, kernel, stride, padding))  # fmt: skip
    for include in (True, False):
        y, divisor = pooling.avgpool2d_forward(x, kernel, stride, padding, include)
        same(y, pooling.avgpool2d_forward_reference(x, kernel, stride, padding, include))
        same(pooling.avgpool2d_backward(g, divisor, x.shape, kernel, stride, padding),
             pooling.avgpool2d_backward_reference(g, x.shape, kernel, stride, padding, include))  # fmt: skip


def test_maxpool_ties_go_to_the_first_maximum(sizes):
    x = np.random.default_rng(7).integers(0, 3, size=(5, 2, 6, 6)).astype(np.float64)  # many ties
    y, argmax = pooling.maxpool2d_forward(x, (3, 3), (2, 2), (1, 1))
    y_ref, argmax_ref = pooling.maxpool2d_forward_reference(x, (3, 3), (2, 2), (1, 1))
    same(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


@pytest.mark.parametrize("config", POOL, ids=[f"pool{i}" for i in range(len(POOL))])
def test_pooling_ceil_mode_matches_reference(config, sizes):
    shape, kernel, stride, padding, layout = config
    r = np.random.default_rng(8)
    x = channels_last(r, shape) if layout else r.standard_normal(shape)
    y, argmax = pooling.maxpool2d_forward(x, kernel, stride, padding, ceil_mode=True)
    y_ref, argmax_ref = pooling.maxpool2d_forward_reference(x, kernel, stride, padding, ceil_mode=True)
    same(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    g = r.standard_normal(y.shape)
    geometry = (x.shape, kernel, stride, padding)
    same(pooling.maxpool2d_backward(g, argmax, *geometry, ceil_mode=True),
         pooling.maxpool2d_backward_reference(g, argmax_ref, *geometry, ceil_mode=True))  # fmt: skip
    for include in (True, False):
        y, divisor = pooling.avgpool2d_forward(x, kernel, stride, padding, include, ceil_mode=True)
        same(y, pooling.avgpool2d_forward_reference(x, kernel, stride, padding, include, ceil_mode=True))
        same(pooling.avgpool2d_backward(g, divisor, *geometry, ceil_mode=True),
             pooling.avgpool2d_backward_reference(g, *geometry, include, ceil_mode=True))  # fmt: skip


# ------------------------------------------------------------------ element-wise and products
@pytest.mark.parametrize("shape", [(1,), (7, 3), (5, 4, 3, 2)])
def test_relu_matches_reference(shape, sizes):
    r = np.random.default_rng(8)
    x, g = r.standard_normal(shape), r.standard_normal(shape)
    y = elementwise.relu_forward(x)
    same(y, elementwise.relu_forward_reference(x))
    same(elementwise.relu_backward(g, y), elementwise.relu_backward_reference(g, y))


@pytest.mark.parametrize("seed", range(4))
def test_matmul_matches_reference(seed, sizes):
    r = np.random.default_rng(seed)
    m, k, n = (int(v) for v in r.integers(1, 40, size=3))
    a, b = r.standard_normal((m, k)), r.standard_normal((k, n))
    kernels.parallel_for(lambda lo, hi: None, 8, np.zeros(8 << 17))  # splits: the products go to nnumpy's threads
    same(kernels.matmul(a, b), matmul_reference(a, b))
    same(kernels.matmul(np.asfortranarray(a), b), matmul_reference(a, b))


# ------------------------------------------------------------------ the knob
def test_tuning_checks_every_setting_before_changing_any():
    before = kernels.get_tuning()
    with pytest.raises(TypeError, match="unknown setting 'chunk'; the settings are"):
        kernels.set_tuning(chunk_bytes=5, chunk=3)
    with pytest.raises(ValueError, match="chunk_bytes must be >= 1, got 0"):
        kernels.set_tuning(min_bytes_per_thread=5, chunk_bytes=0)
    with pytest.raises(TypeError, match="min_bytes_per_thread must be an int, got float"):
        kernels.set_tuning(min_bytes_per_thread=1.5)
    with pytest.raises(TypeError, match="threads must be an int"):
        kernels.set_tuning(threads=True)
    assert kernels.get_tuning() == before
    with kernels.tuning(chunk_bytes=np.int64(7), split_window_calls=0) as settings:
        assert settings["chunk_bytes"] == 7 and settings["split_window_calls"] == 0
        assert kernels.set_tuning(chunk_bytes=9) == {"chunk_bytes": 7}
    assert kernels.get_tuning() == before
