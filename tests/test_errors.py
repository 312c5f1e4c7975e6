"""Bad input raises the documented exception (ValueError for values and shapes,
TypeError for types, RuntimeError for protocol misuse) with a message that
names the layer, says what was expected and what came; nothing changes before
the check, so the module stays usable afterwards."""

import copy

import numpy as np
import pytest

from nnumpy import (
    ELU,
    BatchNorm1d,
    BatchNorm2d,
    BatchNormalization,
    ChannelwiseScaling,
    ClassNLLCriterion,
    ClassNLLCriterionUnstable,
    CrossEntropyCriterion,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MSECriterion,
    ReLU,
    Sequential,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)


def f32(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def net():
    return Sequential(Linear(4, 3, rng=0), ReLU(), Sequential(Linear(3, 2, rng=1), LogSoftMax()))


# (id, module factory, a valid input, the bad call, exception type, regex the message must match)
INPUT_CASES = [
    (
        "Linear-rank",
        lambda: Linear(784, 256, rng=0),
        f32(2, 784),
        lambda m: m.forward(f32()),  # (*, 784) like PyTorch's: any leading axes, but a feature axis
        ValueError,
        r"^Linear\(784 -> 256\): expected input of shape \(N, 784\) or \(\*, 784\), got \(\)$",
    ),
    (
        "Linear-features",
        lambda: Linear(784, 256, rng=0),
        f32(2, 784),
        lambda m: m.forward(f32(2, 100)),
        ValueError,
        r"^Linear\(784 -> 256\): expected input of shape \(N, 784\) or \(\*, 784\), got \(2, 100\)$",
    ),
    (
        "Linear-int",
        lambda: Linear(784, 256, rng=0),
        f32(2, 784),
        lambda m: m.forward(np.ones((2, 784), int)),
        TypeError,
        r"^Linear\(784 -> 256\): expected input of a floating dtype .*got dtype int64$",
    ),
    (
        "Linear-list",
        lambda: Linear(3, 2, rng=0),
        f32(2, 3),
        lambda m: m.forward([[1.0, 2.0, 3.0]]),
        TypeError,
        r"^Linear\(3 -> 2\): expected input to be a float array, got list$",
    ),
    (
        "Linear-gradOutput",
        lambda: Linear(784, 256, rng=0),
        f32(2, 784),
        lambda m: m.backward(f32(2, 784), f32(2, 255)),
        ValueError,
        r"^Linear\(784 -> 256\): expected gradOutput of shape \(2, 256\).*got \(2, 255\)$",
    ),
    (
        "SoftMax-rank",
        SoftMax,
        f32(3, 4),
        lambda m: m.forward(f32(4)),
        ValueError,
        r"^SoftMax\(\): expected input of shape \(N, C, \*\), got \(4,\)$",
    ),
    (
        "LogSoftMax-int",
        LogSoftMax,
        f32(3, 4),
        lambda m: m.forward(np.ones((3, 4), np.int32)),
        TypeError,
        r"^LogSoftMax\(\): .*floating dtype.*got dtype int32$",
    ),
    ("ReLU-int", ReLU, f32(3, 4), lambda m: m.forward(np.ones((3, 4), int)), TypeError, r"^ReLU\(\): .*int64$"),
    (
        "Tanh-gradOutput",
        Tanh,
        f32(3, 4),
        lambda m: m.backward(f32(3, 4), f32(4, 3)),
        ValueError,
        r"^Tanh\(\): expected gradOutput of shape \(3, 4\).*got \(4, 3\)$",
    ),
    (
        "BatchNorm1d-features",
        lambda: BatchNorm1d(3),
        f32(4, 3),
        lambda m: m.forward(f32(4, 5)),
        ValueError,
        r"^BatchNorm1d\(3, .*\): expected input of shape \(N, 3\) or \(N, 3, L\), got \(4, 5\)$",
    ),
    (
        "BatchNorm1d-rank",
        lambda: BatchNorm1d(3),
        f32(4, 3),
        lambda m: m.forward(f32(4, 3, 2, 2)),
        ValueError,
        r"^BatchNorm1d\(3, .*\): expected input of shape .*got \(4, 3, 2, 2\)$",
    ),
    (
        "BatchNorm2d-rank",
        lambda: BatchNorm2d(3),
        f32(2, 3, 2, 2),
        lambda m: m.forward(f32(4, 3)),
        ValueError,
        r"^BatchNorm2d\(3, .*\): expected input of shape \(N, 3, H, W\), got \(4, 3\)$",
    ),
    (
        "BatchNormalization-features",
        lambda: BatchNormalization(0.5, n_feats=3),
        f32(4, 3),
        lambda m: m.forward(f32(4, 5)),
        ValueError,
        r"^BatchNormalization\(alpha=0.5\): expected input of shape .*\(4, 5\)$",
    ),
    (
        "BatchNormalization-int",
        lambda: BatchNormalization(0.5),
        f32(4, 3),
        lambda m: m.forward(np.ones((4, 3), int)),
        TypeError,
        r"^BatchNormalization\(alpha=0.5\): .*int64$",
    ),
    (
        "ChannelwiseScaling-features",
        lambda: ChannelwiseScaling(3, rng=0),
        f32(4, 3),
        lambda m: m.forward(f32(4, 5)),
        ValueError,
        r"^ChannelwiseScaling\(3\): expected input of shape \(N, 3\) or \(N, 3, \*\), got \(4, 5\)$",
    ),
    (
        "Dropout-int",
        lambda: Dropout(0.5, rng=0),
        f32(3, 4),
        lambda m: m.forward(np.ones((3, 4), int)),
        TypeError,
        r"^Dropout\(p=0.5\): .*int64$",
    ),
    (
        "Flatten-scalar",
        Flatten,
        f32(2, 3, 4),
        lambda m: m.forward(np.float32(1.0).reshape(())),
        ValueError,
        r"^Flatten\(\): expected input with a batch axis",
    ),
    ("Identity-int", Identity, f32(2, 3), lambda m: m.forward(np.ones(3, int)), TypeError, r"^Identity\(\): "),
    (
        "Sequential-child",
        net,
        f32(2, 4),
        lambda m: m.forward(f32(2, 5)),
        ValueError,
        r"^Sequential child \(0\) Linear: Linear\(4 -> 3\): "
        r"expected input of shape \(N, 4\) or \(\*, 4\), got \(2, 5\)$",
    ),
    (
        "Sequential-int",
        net,
        f32(2, 4),
        lambda m: m.forward(np.ones((2, 4), int)),
        TypeError,
        r"^Sequential child \(0\) Linear: Linear\(4 -> 3\): .*int64$",
    ),
    (
        "Sequential-gradOutput",
        net,
        f32(2, 4),
        lambda m: m.backward(f32(2, 4), f32(2, 3)),
        ValueError,
        r"^Sequential child \(2\) Sequential: Sequential child \(1\) LogSoftMax: LogSoftMax\(\): "
        r"expected gradOutput of shape \(2, 2\).*got \(2, 3\)$",
    ),
]


def snapshot(m):
    return {k: v.copy() for k, v in m.state_dict().items()}, copy.deepcopy(m.output)


@pytest.mark.parametrize("make,x,bad,exc,pattern", [c[1:] for c in INPUT_CASES], ids=[c[0] for c in INPUT_CASES])
def test_bad_input_raises_and_module_stays_usable(make, x, bad, exc, pattern):
    m = make()
    twin = make()
    y = m.forward(x)
    m.backward(x, np.ones_like(y))
    twin.forward(x)
    twin.backward(x, np.ones_like(y))
    before, output = snapshot(m)
    with pytest.raises(exc, match=pattern) as info:
        bad(m)
    assert "\n" not in str(info.value)
    after, output_after = snapshot(m)
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=f"{k} changed by a rejected call")
    np.testing.assert_array_equal(output_after, output)  # validated before any state change
    # a valid forward/backward still works and gives what an untouched twin gives
    m.evaluate()
    twin.evaluate()
    y, yt = m.forward(x), twin.forward(x)
    np.testing.assert_array_equal(y, yt)
    g = np.ones_like(y)
    np.testing.assert_array_equal(m.backward(x, g), twin.backward(x, g))


def test_nested_sequential_names_every_level():
    m = Sequential(Linear(4, 3, rng=0), Sequential(ReLU(), Linear(4, 2)))
    pattern = (
        r"^Sequential child \(1\) Sequential: Sequential child \(1\) Linear: Linear\(4 -> 2\): "
        r"expected input of shape \(N, 4\) or \(\*, 4\), got \(2, 3\)$"
    )
    with pytest.raises(ValueError, match=pattern):
        m.forward(f32(2, 4))


def test_sequential_error_keeps_the_original_as_cause():
    m = net()
    with pytest.raises(ValueError) as info:
        m.forward(f32(2, 5))
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__).startswith("Linear(4 -> 3): expected input")


def test_sequential_names_a_user_module_by_repr_when_its_message_does_not():
    class Broken(Identity):
        def updateOutput(self, input):
            raise KeyError("boom")

    with pytest.raises(KeyError, match=r"Sequential child \(1\) Broken\(\): 'boom'"):
        Sequential(ReLU(), Broken()).forward(f32(2, 2))


ALL_MODULES = [
    lambda: Linear(3, 2),
    SoftMax,
    LogSoftMax,
    lambda: BatchNormalization(0.1),
    lambda: ChannelwiseScaling(3),
    lambda: Dropout(0.5),
    ReLU,
    lambda: LeakyReLU(0.1),
    lambda: ELU(1.0),
    SoftPlus,
    Sigmoid,
    Tanh,
    Flatten,
    Identity,
    lambda: BatchNorm1d(3),
    net,
]


@pytest.mark.parametrize("make", ALL_MODULES, ids=lambda f: repr(f()).split("(")[0])
def test_backward_before_forward_names_the_layer(make):
    m = make()
    x = f32(2, 3)
    with pytest.raises(RuntimeError, match=rf"^{type(m).__name__}\b.*: backward called before forward$"):
        m.backward(x, x)


# criteria: (id, criterion, input, bad target or input, exception, pattern)
CRITERION_CASES = [
    (
        "NLL-target-shape",
        ClassNLLCriterion(),
        f32(3, 4),
        np.array([0, 1]),
        ValueError,
        r"^ClassNLLCriterion\(\): expected target of shape \(3,\) or \(3, 4\), got \(2,\)$",
    ),
    (
        "NLL-onehot-shape",
        ClassNLLCriterion(),
        f32(3, 4),
        np.zeros((3, 3)),
        ValueError,
        r"^ClassNLLCriterion\(\): expected target of shape \(3,\) or \(3, 4\), got \(3, 3\)$",
    ),
    (
        "NLL-label-high",
        ClassNLLCriterion(),
        f32(3, 4),
        np.array([0, 1, 4]),
        ValueError,
        r"^ClassNLLCriterion\(\): label targets must be in \[0, 3\], got values in \[0, 4\]$",
    ),
    (
        "NLL-label-negative",
        ClassNLLCriterion(),
        f32(3, 4),
        np.array([0, -1, 2]),
        ValueError,
        r"^ClassNLLCriterion\(\): label targets must be in \[0, 3\], got values in \[-1, 2\]$",
    ),
    (
        "NLL-float-labels",
        ClassNLLCriterion(),
        f32(3, 4),
        np.array([0.0, 1.0, 2.0]),
        TypeError,
        r"^ClassNLLCriterion\(\): label targets must be integers, got dtype float64$",
    ),
    (
        "NLLUnstable-label-high",
        ClassNLLCriterionUnstable(),
        np.full((2, 3), 1 / 3, np.float32),
        np.array([3, 0]),
        ValueError,
        r"^ClassNLLCriterionUnstable\(\): label targets must be in \[0, 2\]",
    ),
    (
        "CE-label-high",
        CrossEntropyCriterion(),
        f32(3, 4),
        np.array([0, 1, 9]),
        ValueError,
        r"^CrossEntropyCriterion\(\): label targets must be in \[0, 3\], got values in \[0, 9\]$",
    ),
    (
        "CE-spatial-target",  # (N, C, d1) input takes (N, d1) labels
        CrossEntropyCriterion(),
        f32(3, 4, 2),
        np.array([0, 1, 2]),
        ValueError,
        r"^CrossEntropyCriterion\(\): expected target of shape \(3, 2\) or \(3, 4, 2\), got \(3,\)$",
    ),
    (
        "MSE-shape",
        MSECriterion(),
        f32(3, 4),
        np.zeros((3, 5)),
        ValueError,
        r"^MSECriterion\(\): expected target of shape \(3, 4\) \(the input's\), got \(3, 5\)$",
    ),
]


@pytest.mark.parametrize("which", ["forward", "backward"])
@pytest.mark.parametrize(
    "crit,x,target,exc,pattern", [c[1:] for c in CRITERION_CASES], ids=[c[0] for c in CRITERION_CASES]
)
def test_criterion_bad_target(crit, x, target, exc, pattern, which):
    crit = copy.deepcopy(crit)
    with pytest.raises(exc, match=pattern):
        getattr(crit, which)(x, target)
    # still usable with a valid target
    n, c = x.shape[0], x.shape[-1]
    good = np.zeros(x.shape, np.float32) if isinstance(crit, MSECriterion) else np.arange(n) % c
    x = x if x.ndim == 2 else x[:, :, 0]
    x = np.abs(x) / np.abs(x).sum(axis=1, keepdims=True)  # probabilities
    x = np.log(x) if type(crit) is ClassNLLCriterion else x  # which takes log-probabilities
    assert np.isfinite(crit.forward(x, good))
    assert crit.backward(x, good).shape == x.shape


def test_criterion_int_input():
    for crit in (ClassNLLCriterion(), CrossEntropyCriterion(), MSECriterion()):
        with pytest.raises(TypeError, match=rf"^{type(crit).__name__}\(\): .*floating dtype.*int64"):
            crit.forward(np.zeros((3, 4), int), np.zeros((3, 4)) if isinstance(crit, MSECriterion) else [0, 1, 2])


BAD_CONSTRUCTORS = [
    (lambda: Linear(0, 3), ValueError, r"^Linear: n_in must be an integer >= 1, got 0$"),
    (lambda: Linear(2.5, 3), ValueError, r"^Linear: n_in must be an integer >= 1, got 2.5$"),
    (lambda: Linear(3, -1), ValueError, r"^Linear: n_out must be an integer >= 1, got -1$"),
    (lambda: Linear(True, 3), ValueError, r"^Linear: n_in must be an integer"),
    (lambda: Linear(3, 2, rng="x"), TypeError, r"rng must be None, an int seed or a numpy.random.Generator"),
    (lambda: Dropout(1.5), ValueError, r"^Dropout: p must be a probability in \[0, 1\], got 1.5$"),
    (lambda: Dropout(-0.1), ValueError, r"^Dropout: p must be a probability"),
    (lambda: Dropout("a"), TypeError, r"^Dropout: p must be a real number, got 'a'$"),
    (lambda: LeakyReLU("a"), TypeError, r"^LeakyReLU: slope must be a real number, got 'a'$"),
    (lambda: ELU(None), TypeError, r"^ELU: alpha must be a real number, got None$"),
    (lambda: BatchNorm1d(0), ValueError, r"^BatchNorm1d: num_features must be an integer >= 1, got 0$"),
    (lambda: BatchNorm1d(3, momentum=2), ValueError, r"^BatchNorm1d: momentum must be in \[0, 1\], got 2$"),
    (lambda: BatchNorm2d(3, eps=0), ValueError, r"^BatchNorm2d: eps must be > 0, got 0$"),
    (lambda: BatchNormalization(alpha=2), ValueError, r"^BatchNormalization: alpha must be in \[0, 1\], got 2$"),
    (lambda: BatchNormalization(n_feats=0), ValueError, r"^BatchNormalization: n_feats must be an integer >= 1"),
    (lambda: ChannelwiseScaling(0), ValueError, r"^ChannelwiseScaling: n_out must be an integer >= 1, got 0$"),
    (lambda: Sequential(3), TypeError, r"^Sequential.add: expected a Module, got int$"),
    (lambda: Sequential().add("relu"), TypeError, r"^Sequential.add: expected a Module, got str$"),
    (lambda: Sequential(ReLU, Tanh()), TypeError, r"^Sequential.add: expected a Module, got type$"),
]


@pytest.mark.parametrize("make,exc,pattern", BAD_CONSTRUCTORS, ids=[str(i) for i in range(len(BAD_CONSTRUCTORS))])
def test_bad_constructor_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()
