"""Generic tests over the one module table (``tests/module_table.py``): every
public module and container has an entry, and each entry is gradchecked in
float64 on every configuration, compared with PyTorch in float32 and float64
(output, input gradients, parameter gradients, buffers; training then
evaluate mode) where PyTorch has the class, keeps its dtype, round-trips
through ``state_dict`` and a model file, behaves in train vs evaluate mode,
raises its error cases (naming the module, before any state changes), has no
undeclared arrays and accumulates its gradients. Then the parameter contract
(declarations that fail loudly), what the table cannot say (Dropout's mask
statistics, BatchNorm's moving statistics) and the criteria."""

import copy
import re

import numpy as np
import pytest
import torch
from helpers import assert_close
from module_table import (
    CRITERIA,
    CRITERIA_PUBLIC,
    CRITERION_ERRORS,
    MODULES,
    PUBLIC,
    TorchLeaves,
    _requires_grad,
    _upstream,
)
from module_table import make_input as table_input

import nnumpy
from nnumpy import (
    BatchNorm1d,
    BatchNormalization,
    Dropout,
    Linear,
    Sequential,
)
from nnumpy.interop import to_torch_state_dict
from nnumpy.io import load_model, module_config, save_model

torch.set_num_threads(1)
# the PyTorch oracle's notes on its own fast paths (the family files filtered them too)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
]

DTYPES = (np.float64, np.float32)
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def tensor(a):
    return torch.from_numpy(np.array(a))


def make_input(shape, dtype=np.float64, seed=0):
    """Random values kept away from 0 (ReLU's kink) by at least 0.1."""
    n = np.random.default_rng(seed).normal(size=shape)
    return (np.sign(n) * (0.1 + np.abs(n))).astype(dtype)


# ------------------------------------------------------------------ structures (tuples of arrays)
def leaves(x):
    """The arrays of a nested tuple, in order (None kept)."""
    if isinstance(x, (tuple, list)):
        return [leaf for part in x for leaf in leaves(part)]
    return [x]


def like(x, f):
    """``x``'s structure with ``f`` applied to each leaf."""
    if isinstance(x, (tuple, list)):
        return tuple(like(part, f) for part in x)
    return f(x)


def is_float(a):
    return getattr(a, "dtype", None) is not None and np.dtype(a.dtype).kind == "f"


def random_grad(y, seed, dtype=None):
    r = np.random.default_rng(seed)
    return like(y, lambda a: r.normal(size=a.shape).astype(dtype or a.dtype) if is_float(a) else None)


def to_torch_input(x):
    """Torch leaves for our input: float arrays require grad, integer ones do not."""
    return like(x, lambda a: tensor(a).requires_grad_(True) if is_float(a) else tensor(a))


def torch_keywords(entry, xt):
    """The entry's forward keywords for PyTorch: arrays as tensors, float ones in the input's dtype."""
    dtype = next(a.dtype for a in leaves(xt) if a.dtype.is_floating_point)
    kw = {}
    for key, value in entry.forward_kwargs.items():
        if isinstance(value, np.ndarray):
            value = tensor(value).to(dtype) if value.dtype.kind == "f" else tensor(value)
        kw[key] = value
    return kw


def call_torch(entry, tmod, xt):
    if entry.forward_kwargs:
        return entry.torch_call(tmod, xt, **torch_keywords(entry, xt))
    if entry.torch_call is not None:
        return entry.torch_call(tmod, xt)
    return tmod(*xt) if isinstance(xt, tuple) else tmod(xt)


def torch_backward(yt, g):
    total = sum((a * tensor(b)).sum() for a, b in zip(leaves(yt), leaves(g), strict=True) if b is not None)
    total.backward()


def copy_into_torch(ours, tmod):
    tmod.load_state_dict(to_torch_state_dict(ours, as_tensors=True, like=tmod), strict=True)


def grads_under_torch_names(ours, tmod):
    """Our parameter gradients keyed by the torch module's parameter names."""
    twin = copy.deepcopy(ours)
    for _, m in twin.named_modules():
        for p, g in m.own_parameter_pairs():
            getattr(m, p)[...] = getattr(m, g)
    state = to_torch_state_dict(twin, like=tmod)
    return {name: state[name] for name, _ in tmod.named_parameters()}


def case_id(entry, i):
    return f"{entry.name}-{i}"


CASES = [(e, i) for e in MODULES for i in range(len(e.inputs)) if e.gradcheck is None or i in e.gradcheck]
PARITY = [(e, i) for e in MODULES if e.torch is not None for i in range(len(e.inputs))]
ERRORS = [(e, spec, pattern) for e in MODULES for spec, pattern in e.errors]
IDS = [e.name for e in MODULES]


# ------------------------------------------------------------------ the table covers everything
def test_every_public_module_has_an_entry():
    covered = {entry.cls for entry in MODULES}
    missing = [name for name in PUBLIC if getattr(nnumpy, name) not in covered]
    assert not missing, f"public modules without an entry in tests/module_table.py: {missing}"
    assert len({e.name for e in MODULES}) == len(MODULES), "entry names must be unique"


# ------------------------------------------------------------------ generic tests
@pytest.mark.parametrize("entry,i", CASES, ids=[case_id(*c) for c in CASES])
def test_gradcheck(entry, i):
    module = entry.make(0)
    x = table_input(entry.inputs[i], np.float64, seed=1)
    result = nnumpy.gradcheck(module, x, eps=1e-6, atol=1e-6, rtol=1e-4)
    assert result.ok and not result.undeclared
    assert set(dict(module.named_parameters())) <= set(result.checked)
    assert any(name.startswith("input") for name in result.checked) == any(is_float(a) for a in leaves(x))


def _compare_step(entry, ours, tmod, x, dtype, seed, what):
    g = random_grad(ours.forward(x), seed)
    y = ours.output
    gi = ours.backward(x, g)
    xt = to_torch_input(x)
    yt = call_torch(entry, tmod, xt)
    torch_backward(yt, g)
    for k, (a, b) in enumerate(zip(leaves(y), leaves(yt), strict=True)):
        assert_close(a, b, dtype, f"{entry.name} {what} output {k}")
    for k, (a, b) in enumerate(zip(leaves(gi), leaves(xt), strict=True)):
        if b.requires_grad:
            assert_close(a, b.grad, dtype, f"{entry.name} {what} gradInput {k}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("entry,i", PARITY, ids=[case_id(*c) for c in PARITY])
def test_parity_with_torch(entry, i, dtype):
    ours = entry.make(0).to(dtype)
    tmod = entry.torch(ours).to(TORCH_DTYPE[dtype])
    tol = dtype if entry.torch_float64 else np.float32
    copy_into_torch(ours, tmod)
    spec = entry.inputs[i]
    if not entry.random:  # twice in training mode: running statistics move
        tmod.train()
        for step in range(2):
            ours.zeroGradParameters()
            tmod.zero_grad()
            _compare_step(entry, ours, tmod, table_input(spec, dtype, seed=10 + step), tol, 20 + step, "train")
            ours_grads = grads_under_torch_names(ours, tmod)
            for name, p in tmod.named_parameters():
                assert_close(ours_grads[name], p.grad, tol, f"{entry.name} grad {name}")
            if entry.torch_state:
                state = to_torch_state_dict(ours, like=tmod)
                params = dict(tmod.named_parameters())
                for name, value in tmod.state_dict().items():
                    if name not in params and value.dtype.is_floating_point:
                        assert_close(state[name], value, tol, f"{entry.name} buffer {name}")
    ours.evaluate()
    tmod.eval()
    for p in tmod.parameters():  # the same weights, fresh gradients, in evaluate mode
        p.grad = None
    _compare_step(entry, ours, tmod, table_input(spec, dtype, seed=30), tol, 31, "evaluate")


FUNCTIONAL = [(e, i) for e in MODULES if e.torch_fn is not None for i in range(len(e.inputs))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("entry,i", FUNCTIONAL, ids=[case_id(*c) for c in FUNCTIONAL])
def test_parity_with_a_torch_function(entry, i, dtype):
    """Where PyTorch has no such class: the same computation written in PyTorch
    (outputs, input gradients, every parameter's gradient, shared ones summed)."""
    m = entry.make(0).to(dtype)
    x = table_input(entry.inputs[i], dtype, seed=10)
    y = m.forward(x)
    g = random_grad(y, 20)
    m.zeroGradParameters()
    gi = m.backward(x, g)
    t = TorchLeaves()
    xt = to_torch_input(x)
    yt = entry.torch_fn(m, t, xt)
    for k, (a, b) in enumerate(zip(leaves(y), leaves(yt), strict=True)):
        assert a.dtype == dtype
        assert_close(a, b, dtype, f"{entry.name} output {k}")
    torch_backward(yt, g)
    for k, (a, b) in enumerate(zip(leaves(gi), leaves(xt), strict=True)):
        if a is None:  # None means zeros (SelectTable's other entries)
            assert b.grad is None or not b.grad.any(), f"{entry.name} gradInput {k}"
        elif b.requires_grad:
            assert_close(a, b.grad, dtype, f"{entry.name} gradInput {k}")
    ours = {id(p): grad for p, grad in m.parameter_pairs()}
    assert set(ours) == set(t.leaves), f"{entry.name}: every parameter has a torch leaf"
    for key, (array, leaf) in t.leaves.items():
        assert_close(ours[key], leaf.grad, dtype, f"{entry.name} gradient of a {array.shape} parameter")


@pytest.mark.parametrize("entry", MODULES, ids=IDS)
def test_dtype_kept(entry):
    spec = entry.inputs[0]
    own = {name: p.dtype for name, p in entry.make(0).named_parameters()}
    param_dtype = next(iter(own.values()), np.dtype(np.float32))
    for dtype in DTYPES:
        m = entry.make(0)  # float32 parameters (as built): a float64 input must still give float64
        x = table_input(spec, dtype)
        floats = [a for a in leaves(x) if is_float(a)]
        expected = dtype if floats else param_dtype  # integer input: the parameters' dtype
        y = m.forward(x)
        assert all(a.dtype == expected for a in leaves(y) if is_float(a)), f"{entry.name}: output for {dtype}"
        gi = m.backward(x, like(y, lambda a: np.ones_like(a) if is_float(a) else None))
        assert all(a is None or a.dtype == dtype for a, b in zip(leaves(gi), leaves(x), strict=False) if is_float(b))
        for name, p in m.named_parameters():
            assert p.dtype == own[name], f"{entry.name}: parameter {name} became {p.dtype}"
        for p, g in m.parameter_pairs(trainable_only=False):
            assert g.dtype == p.dtype
    m = entry.make(0).to(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    x = table_input(spec, np.float32)
    if any(is_float(a) for a in leaves(x)):  # float32 input, float64 parameters: no upcast
        assert all(a.dtype == np.float32 for a in leaves(m.forward(x)) if is_float(a))


@pytest.mark.parametrize("entry", [e for e in MODULES if e.repr], ids=[e.name for e in MODULES if e.repr])
def test_repr(entry):
    assert repr(entry.make(0)) == entry.repr


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key] is not sb[key] and sa[key].dtype == sb[key].dtype and np.array_equal(sa[key], sb[key]), key


def _same_output(a, b, x):
    for u, v in zip(leaves(a.forward(x)), leaves(b.forward(x)), strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("entry", MODULES, ids=IDS)
def test_state_dict_and_model_file_round_trip(entry, tmp_path):
    x = table_input(entry.inputs[0], np.float32, seed=3)
    trained = entry.make(0)
    trained.forward(x)  # training mode: moves running statistics
    for _, p in trained.named_parameters():
        p += np.random.default_rng(4).normal(size=p.shape).astype(p.dtype)
    fresh = entry.make(7)
    fresh.load_state_dict(trained.state_dict())
    _assert_same_state(trained, fresh)
    save_model(trained, tmp_path / "m.npz")
    loaded = entry.bind(load_model(tmp_path / "m.npz"))
    assert type(loaded) is type(trained) and module_config(loaded) == module_config(trained)
    _assert_same_state(trained, loaded)
    for other in (fresh, loaded):
        reference = copy.deepcopy(trained)  # training-mode forwards move running statistics
        reference.evaluate(), other.evaluate()
        _same_output(reference, other, x)
        if not entry.random:
            reference.train(), other.train()
            _same_output(reference, other, x)


@pytest.mark.parametrize("entry", MODULES, ids=IDS)
def test_train_vs_evaluate(entry):
    m = entry.make(0)
    x, x2 = table_input(entry.inputs[0], seed=6), table_input(entry.inputs[0], seed=16)
    m.forward(x)  # running statistics now come from x
    assert m.evaluate() is m and not m.training
    assert all(not sub.training for _, sub in m.named_modules())
    y_eval = [a.copy() for a in leaves(m.forward(x2))]
    for a, b in zip(leaves(m.forward(x2)), y_eval, strict=True):  # deterministic in evaluate mode
        np.testing.assert_array_equal(a, b)
    assert m.train() is m and m.training
    assert all(sub.training for _, sub in m.named_modules())
    y_train = leaves(m.forward(x2))
    same = all(np.allclose(a, b) for a, b in zip(y_train, y_eval, strict=True))
    assert same != entry.mode_dependent, f"{entry.name}: train and evaluate {'agree' if same else 'differ'}"
    assert m.eval() is m and not m.training  # the PyTorch alias


@pytest.mark.parametrize("entry,spec,pattern", ERRORS, ids=[f"{e.name}-{k}" for k, (e, _, _) in enumerate(ERRORS)])
def test_error_cases_name_the_module_before_any_state_changes(entry, spec, pattern):
    m = entry.make(0)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises((ValueError, TypeError)) as info:
        m.forward(table_input(spec, np.float32))
    message = str(info.value)
    assert message.startswith(type(m).__name__), message
    assert re.search(pattern, message), message
    assert m.output is None
    assert all(np.array_equal(v, m.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("entry", MODULES, ids=IDS)
def test_no_undeclared_arrays_and_backward_before_forward(entry):
    m = entry.make(0)
    x = table_input(entry.inputs[0], np.float64)
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(x, like(x, lambda a: np.ones(np.shape(a))))
    y = m.forward(x)
    m.backward(x, random_grad(y, 0))
    assert m.undeclared_arrays() == []


WITH_PARAMS = [e for e in MODULES if e.make(0).parameters() and not e.random]


@pytest.mark.parametrize("entry", WITH_PARAMS, ids=[e.name for e in WITH_PARAMS])
def test_gradients_accumulate_until_zeroed(entry):
    m = entry.make(0).to(np.float64)
    x = table_input(entry.inputs[0], np.float64, seed=11)
    g = random_grad(m.forward(x), 12)
    m.zeroGradParameters()
    m.forward(x)
    m.backward(x, g)
    once = [grad.copy() for _, grad in m.parameter_pairs()]
    # (a random convolution may see only padding: all-zero gradients are right there)
    assert any(np.abs(v).max() > 0 for v in once) or entry.name.startswith("Conv2d-random")
    m.forward(x)
    m.backward(x, g)
    for (_, grad), first in zip(m.parameter_pairs(), once, strict=True):
        np.testing.assert_allclose(grad, 2 * first, rtol=1e-12, atol=1e-14)
    m.zeroGradParameters()
    assert all(not np.any(grad) for _, grad in m.parameter_pairs())
    m.forward(x)
    m.backward(x, g)
    m.zero_grad()  # the alias
    assert all(not np.any(grad) for _, grad in m.parameter_pairs())


ONE = [e for e in MODULES if e.batch_axis is not None and not e.random]


@pytest.mark.parametrize("entry", ONE, ids=[e.name for e in ONE])
def test_batch_of_one(entry):
    """A batch of one gives the first row of a full batch (evaluate mode), and runs in training mode."""
    x = table_input(entry.inputs[0], seed=8)
    axis = entry.batch_axis
    first = lambda a: a.take([0], axis=axis) if a is not None else None  # noqa: E731
    m = entry.make(0).to(np.float64)
    m.forward(x)  # let BatchNorm see a batch, then compare in evaluate mode
    m.evaluate()
    full = like(m.forward(x), lambda a: a.copy())
    g = random_grad(full, 9)
    full_grad = like(m.backward(x, g), lambda a: None if a is None else a.copy())
    one = m.forward(like(x, first))
    for a, b in zip(leaves(one), leaves(full), strict=True):
        np.testing.assert_allclose(a, first(b), rtol=1e-10, atol=1e-12)
    for a, b in zip(leaves(m.backward(like(x, first), like(g, first))), leaves(full_grad), strict=True):
        if b is not None:
            np.testing.assert_allclose(a, first(b), rtol=1e-10, atol=1e-12)
    m.train()
    y = m.forward(like(x, first))
    assert all(np.all(np.isfinite(a)) for a in leaves(y))


# ------------------------------------------------------------------ the parameter contract
def test_gradients_accumulate_even_right_after_zeroing():
    """No write-into-zeros path: a term added between zeroGradParameters and
    backward (a penalty, a second loss) is kept, and the arrays optimizers hold
    stay the same objects."""
    m = Linear(5, 3).to(np.float64)
    x, g = np.random.default_rng(0).normal(size=(4, 5)), np.random.default_rng(1).normal(size=(4, 3))
    gradW, gradb = m.gradW, m.gradb
    m.zeroGradParameters()
    m.gradW += 0.5 * m.W  # weight decay added before backward
    m.gradb += 1.0
    m.forward(x)
    m.backward(x, g)
    assert m.gradW is gradW and m.gradb is gradb
    np.testing.assert_allclose(m.gradW, 0.5 * m.W + g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(m.gradb, 1.0 + g.sum(0), rtol=1e-12)
    m.zeroGradParameters()
    m.gradW = np.full((3, 5), 2.0)  # a new array is added to, like any other
    m.backward(x, g)
    np.testing.assert_allclose(m.gradW, 2.0 + g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(m.gradb, g.sum(0), rtol=1e-12)


class _Scale(nnumpy.Module):
    """y = x * weight; each test subclass declares (or forgets) its parameter its own way."""

    def __init__(self):
        super().__init__()
        self.weight = np.full(3, 2.0, np.float32)
        self.gradWeight = np.zeros(3, np.float32)

    def updateOutput(self, input):
        self.output = input * self.weight
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * self.weight
        return self.gradInput


def test_declared_parameter_that_does_not_exist_raises_naming_layer_and_attribute():
    class Typo(_Scale):
        _parameters = (("weigth", "gradWeight"),)

    m = Typo()
    for use in (m.parameters, m.state_dict, m.zeroGradParameters, lambda: nnumpy.SGD(m, lr=0.1)):
        with pytest.raises(AttributeError, match=r"Typo\(\): declares parameter 'weigth'.*no attribute 'weigth'"):
            use()
    with pytest.raises(AttributeError, match="weigth"):
        Sequential(Linear(3, 3), m).parameters()


def test_declared_gradient_that_does_not_exist_raises_naming_layer_and_attribute():
    class GradTypo(_Scale):
        _parameters = (("weight", "gradWieght"),)

    m = GradTypo()
    for use in (m.getGradParameters, m.zeroGradParameters, lambda: nnumpy.SGD(m, lr=0.1).step()):
        with pytest.raises(AttributeError, match=r"GradTypo\(\): declares gradient 'gradWieght' of parameter 'weight'"):
            use()

    class Lazy(_Scale):  # a gradient declared as None is created (zeros) at first use
        _parameters = (("weight", "gradWeight"),)

    lazy = Lazy()
    lazy.gradWeight = None
    (grad,) = lazy.getGradParameters()
    assert grad.shape == (3,) and grad.dtype == np.float32 and not grad.any() and lazy.gradWeight is grad


def test_assigning_a_parameter_reallocates_its_gradient():
    m = Linear(3, 2)
    m.gradW[...] = 1.0
    m.W = m.W.astype(np.float64)  # another dtype: cast, values kept
    assert m.gradW.dtype == np.float64 and np.all(m.gradW == 1.0)
    m.W = np.ones((4, 3))  # another shape: zeros of the new shape
    assert m.gradW.shape == (4, 3) and m.gradW.dtype == np.float64 and not m.gradW.any()
    same = m.gradW
    m.W = np.zeros((4, 3))  # same shape and dtype: the gradient is kept
    assert m.gradW is same
    m.b = None  # no bias any more: no gradient either
    assert m.gradb is None and len(m.parameters()) == 1
    m.b = np.zeros(4, np.float32)
    assert [g.shape for g in m.getGradParameters()] == [(4, 3), (4,)]
    x = np.ones((2, 3))
    m.forward(x)
    m.backward(x, np.ones((2, 4)))
    nnumpy.SGD(m, lr=0.1).step()  # every gradient matches its parameter
    assert m.b.dtype == np.float32 and m.gradb.dtype == np.float32


@pytest.mark.parametrize(
    "grad, match",
    [
        (np.zeros((1, 3), np.float32), r"gradient of parameter b has shape \(1, 3\), but b has shape \(3,\)"),
        (np.zeros(3, np.float64), r"gradient of parameter b has dtype float64, but b has dtype float32"),
    ],
    ids=["shape", "dtype"],
)
def test_a_gradient_written_with_the_wrong_shape_or_dtype_raises_naming_both(grad, match):
    m = Linear(2, 3)
    m.gradb = grad
    for use in (m.getGradParameters, lambda: nnumpy.SGD(m, lr=0.1).step(), m.parameter_pairs):
        with pytest.raises(ValueError, match=r"Linear\(2 -> 3\): the " + match):
            use()


def test_undeclared_arrays_are_named_by_summary_and_fail_gradcheck():
    class Forgot(_Scale):  # declares nothing: trains nothing, saves nothing
        pass

    net = Sequential(Linear(3, 3, rng=0), Forgot())
    assert net.undeclared_arrays() == ["1.weight", "1.gradWeight"]
    text = net.summary((3,), print_fn=None)
    assert "Warning: array attributes neither declared parameters nor buffers: 1.weight, 1.gradWeight" in text
    x = np.random.default_rng(0).normal(size=(2, 3))
    result = nnumpy.gradcheck(net, x, raise_exception=False)
    assert not result.ok and result.undeclared == ["1.weight"] and result.unused == ["1.gradWeight"]
    with pytest.raises(nnumpy.GradcheckError, match=r"depends on 1.weight.*neither in _parameters"):
        nnumpy.gradcheck(net, x)

    class Declared(_Scale):
        _parameters = (("weight", "gradWeight"),)

        def accGradParameters(self, input, gradOutput):
            self.gradWeight += (gradOutput * input).sum(0)

    net = Sequential(Linear(3, 3, rng=0), Declared())
    assert net.undeclared_arrays() == [] and "Warning" not in net.summary((3,), print_fn=None)
    assert nnumpy.gradcheck(net, x).ok

    class Stale(Declared):  # a public array the output does not depend on is listed, not failed
        def updateOutput(self, input):
            self.last_input = input.copy()
            return super().updateOutput(input)

    stale = Stale()
    stale.forward(x)
    result = nnumpy.gradcheck(stale, x)
    assert result.ok and result.undeclared == [] and result.unused == ["last_input"]


# ------------------------------------------------------------------ Dropout (no torch parity: random mask)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_mask_statistics(p):
    m = Dropout(p, rng=0)
    x = np.full((200, 250), 3.0, np.float32)
    y = m.forward(x)
    zeroed = y == 0
    n = x.size
    assert abs(zeroed.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)  # binomial, 4 sigma
    np.testing.assert_allclose(y[~zeroed], 3.0 / (1 - p), rtol=1e-6)  # kept values scaled by 1/(1-p)
    # independent per element: rows and columns are not all-or-nothing, and no correlation between neighbours
    assert 0 < zeroed.mean(axis=1).min() and zeroed.mean(axis=1).max() < 1
    assert 0 < zeroed.mean(axis=0).min() and zeroed.mean(axis=0).max() < 1
    a, b = zeroed[:, :-1].ravel().astype(float), zeroed[:, 1:].ravel().astype(float)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03
    # backward applies the same mask and scale
    g = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(m.backward(x, g), g * (~zeroed) / (1 - p), rtol=1e-6)
    # a new mask at every forward
    assert not np.array_equal(m.forward(x) == 0, zeroed)


def test_dropout_formula_and_identities():
    x = make_input((6, 7), np.float64, seed=2)
    m = Dropout(0.4, rng=3)
    y = m.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y, np.where(kept, x / 0.6, 0.0), rtol=1e-15)
    assert y.dtype == np.float64
    m0 = Dropout(0.0, rng=3)
    assert m0.forward(x) is x or np.array_equal(m0.forward(x), x)
    np.testing.assert_array_equal(m0.backward(x, 2 * x), 2 * x)
    m.evaluate()
    np.testing.assert_array_equal(m.forward(x), x)
    np.testing.assert_array_equal(m.backward(x, 2 * x), 2 * x)
    np.testing.assert_array_equal(Dropout(1.0, rng=0).forward(x), 0 * x)
    # seeded: the same seed gives the same mask; manual_seed drives the default generator
    np.testing.assert_array_equal(Dropout(0.5, rng=5).forward(x), Dropout(0.5, rng=5).forward(x))
    nnumpy.manual_seed(9)
    a = Dropout(0.5).forward(x)
    nnumpy.manual_seed(9)
    np.testing.assert_array_equal(Dropout(0.5).forward(x), a)


# ------------------------------------------------------------------ BatchNorm specifics
def _bn1d(seed=0):
    m = BatchNorm1d(3)
    r = np.random.default_rng(seed)
    m.weight[...] = r.uniform(0.5, 1.5, 3)
    m.bias[...] = r.uniform(-0.5, 0.5, 3)
    return m


def t_batchnorm(m, shape):
    bn = torch.nn.BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine)
    bn.weight = torch.nn.Parameter(tensor(m.weight))
    bn.bias = torch.nn.Parameter(tensor(m.bias))
    bn.running_mean = tensor(m.running_mean)
    bn.running_var = tensor(m.running_var)
    return bn


def test_batchnormalization_moving_statistics_vs_torch():
    alpha = 0.8
    ours = BatchNormalization(alpha=alpha).to(np.float64)
    tbn = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=1 - alpha, affine=False).double()
    expected_var = np.ones(4)
    for step in range(4):
        x = make_input((7, 4), seed=step) * (step + 1) + step
        y = ours.forward(x)
        assert_close(y, tbn(tensor(x)), np.float64, "output")
        assert_close(ours.moving_mean, tbn.running_mean, np.float64, "moving_mean")
        expected_var = alpha * expected_var + (1 - alpha) * x.var(axis=0)  # the seeds' biased variance
        np.testing.assert_allclose(ours.moving_variance, expected_var, rtol=1e-12)
    assert BatchNormalization.EPS == 1e-3
    ours.evaluate()
    x = make_input((3, 4), seed=9)
    np.testing.assert_allclose(
        ours.forward(x), (x - ours.moving_mean) / np.sqrt(ours.moving_variance + 1e-3), rtol=1e-12
    )


def test_batchnormalization_starts_at_zero_one_and_n_feats():
    m = BatchNormalization(alpha=0.5, n_feats=3)
    np.testing.assert_array_equal(m.moving_mean, np.zeros(3))
    np.testing.assert_array_equal(m.moving_variance, np.ones(3))
    x = make_input((5, 3))
    m.forward(x)
    np.testing.assert_allclose(m.moving_mean, 0.5 * x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(m.moving_variance, 0.5 + 0.5 * x.var(axis=0), rtol=1e-6)
    lazy = BatchNormalization()
    assert lazy.moving_mean is None
    lazy.forward(x)
    np.testing.assert_allclose(lazy.moving_mean, x.mean(axis=0), rtol=1e-12)  # alpha=0: the last batch's
    np.testing.assert_allclose(lazy.moving_variance, x.var(axis=0), rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_batchnorm1d_running_stats_vs_torch(shape, dtype):
    ours = _bn1d().to(dtype)
    tbn = t_batchnorm(ours, shape)
    for step in range(3):
        x = make_input(shape, dtype, seed=step) * 2 + step
        assert_close(ours.forward(x), tbn(tensor(x)), dtype, "train output")
        assert_close(ours.running_mean, tbn.running_mean, dtype, "running_mean")
        assert_close(ours.running_var, tbn.running_var, dtype, "running_var (unbiased)")
    axes = (0, 2) if len(shape) == 3 else 0
    count = x.size // shape[1]
    assert not np.allclose(x.var(axis=axes), x.var(axis=axes) * count / (count - 1))  # the test can tell them apart
    ours.evaluate()
    tbn.eval()
    x = make_input(shape, dtype, seed=7)
    assert_close(ours.forward(x), tbn(tensor(x)), dtype, "eval output")


def test_batchnorm_stats_sync_hook():
    """``stats_sync`` sees every batch sum; an identity hook changes nothing."""
    seen = []
    m = _bn1d()
    m.stats_sync = lambda total, count: (seen.append(count) or total, count)
    x = make_input((5, 3))
    np.testing.assert_array_equal(m.forward(x), _bn1d().forward(x))
    assert seen and all(c == 5 for c in seen)


# ------------------------------------------------------------------ criteria (the table's second part)
@pytest.mark.parametrize("case", CRITERIA, ids=repr)
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides:UserWarning")
def test_criterion_parity_with_torch_float32(case):
    x, t = case.data(np.float32)
    crit = case.ours()
    loss = crit.forward(x, t)
    g = _upstream(loss, case.reduction)
    grad = crit.backward(x, t, None if g is None else g.astype(np.float32))
    assert crit.output is loss and crit.gradInput is grad
    xt = _requires_grad(x)
    lt = case.theirs(xt, t)
    lt.backward(None if g is None else torch.from_numpy(g.astype(np.float32)))
    assert np.shape(loss) == tuple(lt.shape), case.name
    assert_close(np.asarray(loss), lt, np.float32, f"{case.name} loss")
    if isinstance(x, tuple):
        assert isinstance(grad, tuple) and len(grad) == 2
        for ours, theirs in zip(grad, xt, strict=True):
            assert ours.dtype == np.float32
            assert_close(ours, theirs.grad, np.float32, f"{case.name} gradInput")
    else:
        assert grad.dtype == np.float32 and grad.shape == x.shape
        assert_close(grad, xt.grad, np.float32, f"{case.name} gradInput")
    assert np.asarray(loss).dtype == np.float32


# gradcheck every configuration except the (many) classification ones, of which a third suffice
GRADCHECK = [c for i, c in enumerate(CRITERIA) if not c.name.startswith(("CrossEntropy", "ClassNLL")) or i % 3 == 0]


@pytest.mark.parametrize("case", GRADCHECK, ids=repr)
def test_criterion_gradcheck_float64(case):
    """nnumpy.gradcheck takes criteria as they are: pairs, and loss arrays
    (reduction='none', checked on sum(loss * G) with backward(x, t, G))."""
    x, t = case.data(np.float64)
    assert nnumpy.gradcheck(case.ours(), x, t, atol=1e-6, rtol=1e-4).ok


def test_every_public_criterion_has_entries():
    covered = {type(case.ours()) for case in CRITERIA}
    missing = [name for name in CRITERIA_PUBLIC if getattr(nnumpy, name) not in covered]
    assert not missing, f"criteria without a case in tests/module_table.py: {missing}"
    assert len({c.name for c in CRITERIA}) == len(CRITERIA)


@pytest.mark.parametrize("which", ["forward", "backward"])
@pytest.mark.parametrize(
    "crit,x,t,exc,pattern", CRITERION_ERRORS, ids=[f"{c[0]!r}-{i}" for i, c in enumerate(CRITERION_ERRORS)]
)
def test_errors_name_the_criterion(crit, x, t, exc, pattern, which):
    crit = copy.deepcopy(crit)
    with pytest.raises(exc, match=pattern):
        getattr(crit, which)(x, t)
    assert crit.output is None and crit.gradInput is None  # raised before anything was stored
