"""Conv2d / Conv1d: what the module table (tests/module_table.py: PyTorch
parity and gradcheck over 55 randomly drawn configurations, dtype, round
trips, input errors) cannot say: padding defaults, layouts, chunk sizes,
argument errors, the stateless kernels."""

import numpy as np
import pytest
from module_table import CONV_CONFIGS_1D, CONV_CONFIGS_2D

import nnumpy as nn
from nnumpy import Conv1d, Conv2d

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")


def test_configurations_cover_the_space():
    """The table's random configurations (tests/module_table.py, parity with
    PyTorch in float32 and float64 and gradcheck there) reach every option."""
    convs = [make(0) for make, _ in CONV_CONFIGS_2D]
    shapes = [shape for _, shape in CONV_CONFIGS_2D]
    assert {c.groups for c in convs} == {1, 2, 4}
    assert any(c.groups == c.in_channels > 1 for c in convs)  # depthwise
    assert any(c.padding == "same" for c in convs) and any(c.padding is None for c in convs)
    assert any(max(c.stride) == 3 for c in convs) and any(max(c.dilation) == 2 for c in convs)
    assert any(c.kernel_size[0] != c.kernel_size[1] for c in convs)
    assert any(k % 2 == 0 for c in convs for k in c.kernel_size)
    assert any(s[0] == 1 for s in shapes) and any(s[2] != s[3] for s in shapes)
    assert {len(make(0).kernel_size) for make, _ in CONV_CONFIGS_1D} == {1}


def test_default_padding_keeps_size_and_differs_from_torch_default():
    conv = Conv2d(3, 8, 3)
    assert conv.pads == ((1, 1), (1, 1))
    assert conv.forward(np.zeros((2, 3, 6, 9), np.float32)).shape == (2, 8, 6, 9)
    assert Conv2d(3, 8, 5, dilation=2).pads == ((4, 4), (4, 4))
    assert Conv2d(3, 8, 3, padding=0).forward(np.zeros((2, 3, 6, 9), np.float32)).shape == (2, 8, 4, 7)
    assert Conv2d(1, 1, (2, 4), padding="same").pads == ((0, 1), (1, 2))
    assert Conv1d(2, 2, 4, padding="same").pads == ((1, 2),)
    assert Conv1d(2, 2, 3).forward(np.zeros((1, 2, 7), np.float32)).shape == (1, 2, 7)


def test_input_layouts_give_the_same_result():
    r = np.random.default_rng(0)
    conv = Conv2d(4, 6, 3, stride=(1, 2), groups=2)
    x = r.normal(size=(2, 4, 7, 6)).astype(np.float32)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y1 = conv.forward(x).copy()
    g = r.normal(size=y1.shape).astype(np.float32)
    gx1 = conv.backward(x, g).copy()
    y2 = conv.forward(channels_last)
    gx2 = conv.backward(channels_last, np.ascontiguousarray(g))
    np.testing.assert_allclose(y1, y2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-6, atol=1e-6)


def test_gradients_accumulate_and_float32_is_kept():
    conv = Conv2d(2, 3, 3)
    x = np.ones((1, 2, 4, 4), np.float32)
    y = conv.forward(x)
    conv.backward(x, np.ones_like(y))
    first = conv.gradW.copy()
    conv.backward(x, np.ones_like(y))
    np.testing.assert_allclose(conv.gradW, 2 * first, rtol=1e-6)
    assert y.dtype == conv.gradW.dtype == np.float32
    assert Conv2d(2, 3, 3, bias=False).getParameters()[0].shape == (3, 2, 3, 3)
    assert len(Conv2d(2, 3, 3, bias=False).getParameters()) == 1


def test_init_bound_is_torchs():
    conv = Conv2d(4, 64, 3, groups=2, rng=0)
    bound = 1 / np.sqrt(2 * 9)
    assert conv.W.shape == (64, 2, 3, 3) and np.abs(conv.W).max() <= bound
    assert np.abs(conv.W).max() > 0.9 * bound and np.abs(conv.b).max() <= bound


def test_repr():
    assert repr(Conv2d(3, 16, 3)) == "Conv2d(3 -> 16, kernel_size=(3, 3), stride=(1, 1), padding=None)"
    text = repr(Conv1d(4, 4, 2, dilation=2, groups=4, bias=False, padding="same"))
    assert text == "Conv1d(4 -> 4, kernel_size=(2,), stride=(1,), padding='same', dilation=(2,), groups=4, bias=False)"


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"Conv2d: in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"
    ):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="padding must be"):
        Conv2d(3, 4, 3, padding=-1)
    with pytest.raises(ValueError, match="kernel_size must be an int or a 2-tuple"):
        Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        Conv2d(3, 4, 3, stride=0)
    with pytest.raises(TypeError, match="float"):
        Conv2d(3, 4, 3).forward(np.zeros((1, 3, 5, 5), np.int64))


def test_top_level_exports():
    for name in ["Conv2d", "Conv1d", "MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d", "GlobalAvgPool2d"]:
        assert name in nn.__all__ and hasattr(nn, name)


def test_evaluate_mode_backward_matches_training_mode():
    """Evaluate mode changes nothing in a convolution, backward included."""
    r = np.random.default_rng(3)
    x = r.normal(size=(2, 3, 6, 5))
    g = r.normal(size=(2, 4, 3, 3))
    train = Conv2d(3, 4, 3, stride=2, dtype=np.float64, rng=0)
    train.forward(x)
    expected = train.backward(x, g), train.gradW.copy(), train.gradb.copy()
    conv = Conv2d(3, 4, 3, stride=2, dtype=np.float64, rng=0).evaluate()
    np.testing.assert_array_equal(conv.forward(x), train.output)
    got = conv.backward(x, g), conv.gradW, conv.gradb
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


CHUNKED = [  # (in, out, kernel, stride, padding, dilation, groups, input H x W): both im2col layouts, groups
    (3, 4, 3, 1, 1, 1, 1, (9, 7)),
    (1, 5, 3, 1, None, 1, 1, (12, 12)),  # one channel: column-major columns
    (4, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2, (8, 7)),
    (4, 4, 3, 2, 1, 1, 4, (7, 9)),  # depthwise
]


@pytest.mark.parametrize("config", CHUNKED, ids=[f"g{c[6]}-{c[7][0]}x{c[7][1]}" for c in CHUNKED])
def test_results_do_not_depend_on_the_chunk_size(config):
    """The kernels walk the batch in chunks of ~chunk_bytes of im2col columns:
    one sample, a few with a ragged last chunk, or all (the default here);
    backward copies the columns again or takes those the forward kept."""
    cin, cout, k, stride, padding, dilation, groups, size = config
    r = np.random.default_rng(5)
    x = r.normal(size=(7, cin, *size))
    results = []
    for chunk_bytes, keep_bytes in ((1 << 20, 8 << 20), (1, 0), (3000, 0), (1 << 30, 0), (1, 1 << 30), (3000, 1 << 30)):
        with nn.kernels.tuning(chunk_bytes=chunk_bytes, keep_columns_bytes=keep_bytes):  # columns copied again, or kept
            conv = Conv2d(cin, cout, k, stride, padding, dilation, groups, dtype=np.float64, rng=0)
            y = conv.forward(x)
            g = np.random.default_rng(6).normal(size=y.shape)
            results.append((y.copy(), conv.backward(x, g).copy(), conv.gradW.copy(), conv.gradb.copy()))
    for other in results[1:]:
        for a, b in zip(other, results[0], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_parameter_gradients_follow_the_gradient_given_to_acc_grad_parameters():
    """updateGradInput computes the parameter gradients in the same pass; a
    later accGradParameters with another gradOutput (or none before it) gets its own."""
    r = np.random.default_rng(7)
    x = r.normal(size=(3, 2, 5, 5))
    g1, g2 = r.normal(size=(3, 4, 5, 5)), r.normal(size=(3, 4, 5, 5))
    reference = Conv2d(2, 4, 3, dtype=np.float64, rng=0)
    reference.forward(x)
    reference.accGradParameters(x, g2)  # parameters only: no input gradient
    conv = Conv2d(2, 4, 3, dtype=np.float64, rng=0)
    conv.forward(x)
    conv.updateGradInput(x, g1)
    conv.accGradParameters(x, g2)
    np.testing.assert_allclose(conv.gradW, reference.gradW, rtol=1e-12)
    np.testing.assert_allclose(conv.gradb, reference.gradb, rtol=1e-12)
    conv.freeze()
    conv.zeroGradParameters()
    conv.backward(x, g1)  # frozen: nothing accumulates
    assert not conv.gradW.any() and not conv.gradb.any()


def test_stateless_kernels_match_the_module():
    from nnumpy.kernels.conv import conv2d_backward, conv2d_forward

    r = np.random.default_rng(4)
    conv = Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, dtype=np.float64)
    x = r.normal(size=(2, 4, 7, 6))
    y = conv.forward(x)
    g = r.normal(size=y.shape)
    gx = conv.backward(x, g)
    geometry = (conv.stride, conv.pads, conv.dilation, conv.groups)
    y2, xpad, _ = conv2d_forward(x, conv.W, conv.b, *geometry)
    grads = conv2d_backward(g, xpad, conv.W, x.shape, *geometry)
    for ours, ref in zip((y2, *grads), (y, gx, conv.gradW, conv.gradb), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    _, xpad, cols = conv2d_forward(x, conv.W, conv.b, *geometry, keep_columns=True)
    assert cols is not None
    kept = conv2d_backward(g, xpad, conv.W, x.shape, *geometry, cols=cols)
    for ours, ref in zip(kept, grads, strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
