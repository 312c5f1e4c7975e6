"""Edge inputs over every public layer (nnumpy.layers.__all__, cases in
tests/layer_cases.py): an empty batch, an integer gradOutput, float16 input."""

import warnings

import numpy as np
import pytest
from layer_cases import CASES, NAMES

import nnumpy as nn
from nnumpy._structure import flatten

# BatchNorm's batch statistics need values: training mode refuses an empty batch (naming the layer)
NEEDS_A_BATCH = {"BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNormalization"}


def _map(x, f):
    return tuple(_map(v, f) for v in x) if isinstance(x, (tuple, list)) else (None if x is None else f(x))


def _shapes(x):
    return [None if a is None else tuple(a.shape) for _, a in flatten(x)]


def _build(name, seed=0):
    nn.manual_seed(seed)
    return CASES[name][0]()


def test_every_public_layer_has_a_case():
    assert set(nn.layers.__all__) <= set(CASES), sorted(set(nn.layers.__all__) - set(CASES))


def _empty_shapes(name, fn):
    """The shapes ``fn(module, x)`` gives for batch sizes 2 and 3, with every axis
    that follows the batch size set to 0: what an empty batch must give."""
    inputs = CASES[name][1]
    a, b = (_shapes(fn(_build(name), inputs(n))) for n in (2, 3))
    return [None if s is None else tuple(0 if (u, v) == (2, 3) else u for u, v in zip(s, t, strict=True))
            for s, t in zip(a, b, strict=True)]


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_gives_empty_results_forward_and_backward(name):
    inputs = CASES[name][1]

    def run(module, x, backward=False):
        y = module.forward(x)
        if not backward:
            return y
        return module.backward(x, _map(y, lambda a: np.ones_like(a)))

    x = inputs(0)
    module = _build(name)
    if name in NEEDS_A_BATCH:
        with pytest.raises(ValueError, match=rf"^{name}\(.*empty batch \(N = 0\)"):
            module.forward(x)
        before = {k: v.copy() for k, v in module.state_dict().items()}
        module.evaluate()
        y = module.forward(x)  # evaluate mode normalises it with the running statistics
        assert y.shape == x.shape
        assert all(np.array_equal(before[k], v) for k, v in module.state_dict().items())
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" or division warnings either
        y = module.forward(x)
        assert _shapes(y) == _empty_shapes(name, run)
        grad = module.backward(x, _map(y, lambda a: np.ones_like(a)))
    if grad is not None:  # None for integer inputs (Embedding)
        assert _shapes(grad) == _shapes(x)
    for p, g in module.parameter_pairs():
        assert g.shape == p.shape and not np.any(g)  # nothing to accumulate from no samples


def test_flatten_of_an_empty_batch_knows_its_size():
    assert nn.Flatten().forward(np.zeros((0, 2, 3, 3), np.float32)).shape == (0, 18)


@pytest.mark.parametrize("name", NAMES)
def test_an_integer_grad_output_gives_the_float_gradients(name):
    x = CASES[name][1](2)
    grads = []
    for kind in (np.float32, np.int64):
        module = _build(name)
        y = module.forward(x)
        g = _map(y, lambda a, kind=kind: np.arange(a.size).reshape(a.shape).astype(kind) % 3 + 1)
        gin = module.backward(x, g)
        grads.append((gin, [gp.copy() for _, gp in module.parameter_pairs()]))
    (gin_f, params_f), (gin_i, params_i) = grads
    for (_, a), (_, b) in zip(flatten(gin_f), flatten(gin_i), strict=True):
        if a is None:
            assert b is None
            continue
        assert b.dtype == a.dtype and np.array_equal(a, b)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(params_f, params_i, strict=True))
    assert not params_f or any(np.any(a) for a in params_i)  # never an all-zero gradient


def test_linear_integer_grad_output_regression():
    """Today's bug: Linear accumulated an all-zero integer gradient."""
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    layer.forward(x)
    layer.backward(x, np.ones((4, 2), np.int64))
    assert layer.gradW.dtype == np.float32 and np.allclose(layer.gradW, 4.0)


@pytest.mark.parametrize("name", NAMES)
def test_float16_input_works_or_is_refused_naming_the_layer(name):
    x = _map(CASES[name][1](2), lambda a: a.astype(np.float16) if a.dtype.kind == "f" else a)
    module = _build(name)
    try:
        y = module.forward(x)
    except TypeError as error:  # a clear refusal is allowed: it names the layer and the dtype
        assert str(error).startswith(type(module).__name__) and "float16" in str(error)
        return
    floats_in = [a for _, a in flatten(x) if a.dtype.kind == "f"]
    if floats_in:
        assert {a.dtype for _, a in flatten(y)} == {np.dtype(np.float16)}
    gin = module.backward(x, _map(y, lambda a: np.ones_like(a)))
    assert all(a is None or a.dtype == np.float16 for _, a in flatten(gin)) or not floats_in
    assert all(np.isfinite(a).all() for _, a in flatten(y))


def test_dropout_float16_regression():
    """Today's bug: Dropout failed inside numpy's random module for float16."""
    y = nn.Dropout(0.5, rng=0).forward(np.ones((4, 8), np.float16))
    assert y.dtype == np.float16 and set(np.unique(y)) <= {0.0, 2.0}
