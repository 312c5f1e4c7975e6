"""Residual and torch7's table containers, what the one table cannot say (its
container cases, each with the same computation written in PyTorch, get
gradcheck, parity, dtype and the other generic columns in tests/module_table.py):
over those cases, shared arrays stored once, ties through a model file,
train/eval, freezing, repr, None in gradOutput; then the tuple/None protocol,
shared modules, the error contract of every container, a hand-written composite."""

import copy

import numpy as np
import pytest
from module_table import MODULES, _shared_concat, _shared_seq
from module_table import make_input as table_input

import nnumpy as nn
from nnumpy import (
    CAddTable,
    CMulTable,
    Concat,
    ConcatTable,
    CSubTable,
    JoinTable,
    Linear,
    Module,
    ParallelTable,
    Residual,
    SelectTable,
    Sequential,
    Sigmoid,
    SplitTable,
    Tanh,
)

N = 3


def arr(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def flat(x):
    return [v for item in x for v in flat(item)] if isinstance(x, (tuple, list)) else [x]


# ------------------------------------------------------------------ the table's container cases
# tests/module_table.py holds them (gradcheck, parity with the same computation in PyTorch, dtype and
# the other generic columns run there); these tests say what the table cannot: shared arrays stored
# once, ties surviving a model file, freezing, None in gradOutput
CASES = [(e.name.removesuffix("-vs-torch"), e.make, lambda d, e=e: table_input(e.inputs[0], d), e.torch_fn)
         for e in MODULES if e.name.endswith("-vs-torch")]  # fmt: skip
IDS = [c[0] for c in CASES]


def _grad_like(out, seed=7):
    if isinstance(out, (tuple, list)):
        return tuple(_grad_like(v, seed + i + 1) for i, v in enumerate(out))
    return arr(*out.shape, seed=seed, dtype=out.dtype)


@pytest.mark.parametrize("name, make, make_input, ref", CASES, ids=IDS)
def test_state_dict_round_trip(name, make, make_input, ref):
    a, b = make(0), make(10)
    state = a.state_dict()
    assert list(state) == list(b.state_dict())
    assert len(state) == len({id(v) for v in state.values()}), "a shared array appears once"
    b.load_state_dict(copy.deepcopy(state))
    x = make_input(np.float32)
    for ya, yb in zip(flat(a.forward(x)), flat(b.forward(x)), strict=True):
        assert np.array_equal(ya, yb)


@pytest.mark.parametrize("name, make, make_input, ref", CASES, ids=IDS)
def test_model_file_round_trip(tmp_path, name, make, make_input, ref):
    m = make(0)
    x = make_input(np.float32)
    path = tmp_path / "m.npz"
    nn.save_model(m, path)
    loaded = nn.load_model(path)
    assert repr(loaded) == repr(m)
    # a module shared between two places is stored once and comes back shared
    assert len(loaded.parameters()) == len(m.parameters())
    assert [n for n, _ in loaded.named_modules()] == [n for n, _ in m.named_modules()]
    for a, b in zip(flat(loaded.forward(x)), flat(m.forward(x)), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name, make, make_input, ref", CASES, ids=IDS)
def test_train_eval_freeze_repr(name, make, make_input, ref):
    m = make(0)
    m.eval()
    assert not any(sub.training for _, sub in m.named_modules())
    m.train()
    assert all(sub.training for _, sub in m.named_modules())
    text = repr(m)
    assert text.startswith(type(m).__name__)
    for _, child in m.children():
        assert repr(child).split("\n")[0] in text

    m.freeze()
    assert m.parameter_pairs() == []
    x = make_input(np.float32)
    out = m.forward(x)
    m.zeroGradParameters()
    gin = m.backward(x, _grad_like(out))
    assert all(not g.any() for g in m.grad_parameters()), "a frozen container accumulates nothing"
    assert all(g is not None for g in flat(gin)) or name.startswith("SelectTable")
    m.unfreeze()
    assert len(m.parameter_pairs()) == len(m.parameters())


@pytest.mark.parametrize("name, make, make_input, ref", CASES, ids=IDS)
def test_none_in_grad_output_means_zeros(name, make, make_input, ref):
    m = make(0)
    x = make_input(np.float64)
    out = m.forward(x)
    if not isinstance(out, tuple):
        g_none, g_zero = None, np.zeros_like(out)
    else:
        g_none = (None,) + _grad_like(out)[1:]
        g_zero = (np.zeros_like(flat(out[0])[0]) if not isinstance(out[0], tuple) else _zeros(out[0]),)
        g_zero += _grad_like(out)[1:]
    m.zeroGradParameters()
    a = m.backward(x, g_none)
    grads_a = [g.copy() for g in m.grad_parameters()]
    m.zeroGradParameters()
    b = m.backward(x, g_zero)
    for ga, gb in zip(flat(a), flat(b), strict=True):
        assert (ga is None and not np.any(gb)) or np.array_equal(ga if ga is not None else 0 * gb, gb)
    for ga, gb in zip(grads_a, m.grad_parameters(), strict=True):
        assert np.array_equal(ga, gb)


def _zeros(x):
    return tuple(_zeros(v) for v in x) if isinstance(x, tuple) else np.zeros_like(x)


# ------------------------------------------------------------------ the protocol
class Spy(Module):
    """``y = 3 x``, counting backward calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def updateOutput(self, input):
        self.output = 3 * input
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.calls += 1
        self.gradInput = 3 * gradOutput
        return self.gradInput


class Lookup(Module):
    """Rows of ``weight`` picked by integer indices; the indices get None as their gradient."""

    _parameters = (("weight", "gradWeight"),)

    def __init__(self, n, d):
        super().__init__()
        self.weight = arr(n, d, seed=3, dtype=np.float32)
        self.gradWeight = np.zeros_like(self.weight)

    def updateOutput(self, input):
        self.output = self.weight[input]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = None
        return None

    def accGradParameters(self, input, gradOutput):
        np.add.at(self.gradWeight, input, gradOutput)


def test_leaf_gets_zeros_for_none():
    lin = Linear(4, 3, rng=0)
    x = arr(N, 4, dtype=np.float32)
    lin.forward(x)
    lin.zeroGradParameters()
    gin = lin.backward(x, None)
    assert gin.shape == x.shape and not gin.any() and not lin.gradW.any()


def test_split_table_stacks_zeros_for_none():
    x = arr(N, 3, 2)
    m = SplitTable(1)
    out = m.forward(x)
    g = m.backward(x, (None, np.ones_like(out[1]), None))
    expected = np.zeros_like(x)
    expected[:, 1] = 1
    assert np.array_equal(g, expected)


def test_containers_skip_a_child_whose_gradient_is_none():
    a, b = Spy(), Spy()
    x = arr(N, 4)
    table = ConcatTable(a, b)
    table.forward(x)
    g = table.backward(x, (np.ones((N, 4)), None))
    assert (a.calls, b.calls) == (1, 0) and np.array_equal(g, np.full((N, 4), 3.0))
    assert table.backward(x, (None, None)) is None and (a.calls, b.calls) == (1, 0)
    seq = Sequential(a, SelectTable(0))
    seq.forward((x, x))
    with pytest.raises(TypeError):  # Spy cannot take a tuple: forward fails, nothing runs
        seq.forward(x)


def test_integer_inputs_get_none_and_containers_stop_there():
    idx = np.array([0, 1, 1])
    spy = Spy()
    net = Sequential(spy, Lookup(5, 4), Linear(4, 2, rng=0))  # spy before the lookup never gets a gradient
    net.forward(idx)
    net.zeroGradParameters()
    assert net.backward(idx, np.ones((N, 2), np.float32)) is None
    assert spy.calls == 0 and net[1].gradWeight.any()
    par = ParallelTable(Lookup(5, 4), Tanh())
    x = arr(N, 4, dtype=np.float32)
    par.forward((idx, x))
    g = par.backward((idx, x), (np.ones((N, 4), np.float32), np.ones((N, 4), np.float32)))
    assert g[0] is None and g[1].shape == x.shape
    # gradcheck passes the indices as they are and checks the float part only
    result = nn.gradcheck(par, (idx, x))
    assert result.checked == ["input[1]", "0.weight"]


def test_call_on_arrays_packs_several_arguments():
    a, b = arr(N, 4), arr(N, 4, seed=1)
    assert np.array_equal(CAddTable()(a, b), a + b)
    assert np.array_equal(CAddTable()((a, b)), a + b)
    with pytest.raises(TypeError, match=r"^CAddTable\(\): name= is only for building a graph"):
        CAddTable()(a, b, name="sum")
    with pytest.raises(TypeError, match=r"^Tanh\(\): expected an input, got none$"):
        Tanh()()


def test_structure_mismatch_names_the_module_and_both_structures():
    m = ConcatTable(Linear(4, 3, rng=0), Tanh())
    x = arr(N, 4, dtype=np.float32)
    m.forward(x)
    with pytest.raises(
        ValueError,
        match=r"^ConcatTable: expected gradOutput of structure \(array\(3, 3\), array\(3, 4\)\) \(the output's\), "
        r"got \(array\(3, 3\),\)$",
    ):
        m.backward(x, (np.ones((N, 3), np.float32),))
    with pytest.raises(ValueError, match=r"structure \(array\(3, 3\), array\(3, 4\)\).*got array\(3, 4\)$"):
        m.backward(x, np.ones((N, 4), np.float32))
    split = SplitTable(1)
    split.forward(x)
    with pytest.raises(ValueError, match=r"^SplitTable\(dim=1\): expected gradOutput of structure \(array\(3\), "):
        split.backward(x, (np.ones(N),) * 3)


def test_shared_module_counts_once_and_the_optimizer_steps_it_once():
    net = _shared_seq(0)
    lin = net[0]
    assert len(net.parameters()) == 2 and net.num_parameters == 20 and list(net.state_dict()) == ["0.W", "0.b"]
    assert [name for name, _ in net.named_modules()] == ["", "0", "1", "3"]
    x = arr(N, 4, dtype=np.float32)
    before = lin.W.copy()
    opt = nn.SGD(net, lr=0.1)
    opt.zero_grad()
    out = net.forward(x)
    net.backward(x, np.ones_like(out))
    opt.step()
    assert np.allclose(lin.W, before - 0.1 * lin.gradW)


def test_deep_copy_between_forward_and_backward():
    m = _shared_concat(0)
    x = arr(N, 4)
    out = m.forward(x)
    g = _grad_like(out)
    clone = copy.deepcopy(m)
    m.zeroGradParameters()
    clone.zeroGradParameters()
    assert np.array_equal(m.backward(x, g), clone.backward(x, g))
    assert all(np.array_equal(a, b) for a, b in zip(m.grad_parameters(), clone.grad_parameters(), strict=True))


# ------------------------------------------------------------------ the error contract
def _raises(exc, pattern, fn):
    with pytest.raises(exc, match=pattern):
        fn()


X4 = arr(N, 4, dtype=np.float32)
X3 = arr(N, 3, dtype=np.float32)
ERRORS = [
    ("Residual-body", lambda: Residual("conv"), TypeError, r"^Residual: expected body to be a Module, got str$"),
    (
        "Residual-shortcut",
        lambda: Residual(Tanh(), 3),
        TypeError,
        r"^Residual: expected shortcut to be a Module, got int$",
    ),
    (
        "Residual-shape",
        lambda: Residual(Linear(4, 3, rng=0)).forward(X4),
        ValueError,
        r"^Residual: the body's output array\(3, 3\) and the shortcut's array\(3, 4\) must have the same shape$",
    ),
    (
        "Residual-child",
        lambda: Residual(Linear(5, 4, rng=0)).forward(X4),
        ValueError,
        r"^Residual body Linear: Linear\(5 -> 4\): expected input of shape \(N, 5\) or \(\*, 5\), got \(3, 4\)$",
    ),
    ("Residual-before-forward", lambda: Residual(Tanh()).backward(X4, X4), RuntimeError, r"before forward"),
    ("ConcatTable-empty", lambda: ConcatTable().forward(X4), RuntimeError, r"^ConcatTable: has no modules"),
    ("ConcatTable-add", lambda: ConcatTable().add(np.zeros(2)), TypeError, r"^ConcatTable.add: expected a Module"),
    (
        "ConcatTable-child",
        lambda: ConcatTable(Tanh(), Linear(3, 2, rng=0)).forward(X4),
        ValueError,
        r"^ConcatTable branch \(1\) Linear: Linear\(3 -> 2\): "
        r"expected input of shape \(N, 3\) or \(\*, 3\), got \(3, 4\)$",
    ),
    (
        "ConcatTable-before-forward",
        lambda: ConcatTable(Tanh()).backward(X4, (X4,)),
        RuntimeError,
        r"^ConcatTable: backward called before forward$",
    ),
    (
        "ParallelTable-not-tuple",
        lambda: ParallelTable(Tanh(), Tanh()).forward(X4),
        TypeError,
        r"^ParallelTable: expected a tuple of 2 inputs \(one per module\), got array\(3, 4\)$",
    ),
    (
        "ParallelTable-count",
        lambda: ParallelTable(Tanh(), Tanh()).forward((X4,)),
        ValueError,
        r"^ParallelTable: expected a tuple of 2 inputs \(one per module\), got 1: \(array\(3, 4\),\)$",
    ),
    ("Concat-dim", lambda: Concat(1.0, Tanh()), TypeError, r"^Concat: dim must be an integer axis, got 1.0$"),
    ("Concat-no-dim", lambda: Concat(Tanh(), Tanh()), TypeError, r"^Concat: the first argument is dim"),
    (
        "Concat-dim-keyword",
        lambda: Concat(Tanh(), dim="x"),
        TypeError,
        r"^Concat: dim must be an integer axis, got 'x'$",
    ),
    (
        "Concat-shapes",
        lambda: Concat(0, Linear(4, 3, rng=0), Tanh()).forward(X4),
        ValueError,
        r"^Concat\(dim=0\): branch outputs must have the same shape except along dim 0, got \(3, 3\), \(3, 4\)$",
    ),
    (
        "Concat-axis",
        lambda: Concat(2, Tanh()).forward(X4),
        ValueError,
        r"^Concat\(dim=2\): branch outputs must have one rank with an axis 2, got shapes \(3, 4\)$",
    ),
    (
        "CAddTable-array",
        lambda: CAddTable().forward(X4),
        TypeError,
        r"^CAddTable\(\): expected a tuple of arrays, got array\(3, 4\)$",
    ),
    (
        "CAddTable-empty",
        lambda: CAddTable().forward(()),
        ValueError,
        r"^CAddTable\(\): expected a tuple of arrays, got an empty one$",
    ),
    (
        "CAddTable-int",
        lambda: CAddTable().forward((X4, np.ones((N, 4), int))),
        TypeError,
        r"^CAddTable\(\): expected input\[1\] of a floating dtype .*got dtype int64$",
    ),
    (
        "CAddTable-dtypes",
        lambda: CAddTable().forward((X4, X4.astype(np.float64))),
        TypeError,
        r"^CAddTable\(\): expected arrays of one dtype, got float32, float64$",
    ),
    (
        "CAddTable-broadcast",
        lambda: CAddTable().forward((X4, X3)),
        ValueError,
        r"^CAddTable\(\): input shapes \(3, 4\), \(3, 3\) do not broadcast together$",
    ),
    (
        "CSubTable-count",
        lambda: CSubTable().forward((X4, X4, X4)),
        ValueError,
        r"^CSubTable\(\): expected a tuple of 2 arrays, got 3: ",
    ),
    (
        "CMulTable-broadcast",
        lambda: CMulTable().forward((X4, X3)),
        ValueError,
        r"^CMulTable\(\): input shapes \(3, 4\), \(3, 3\) do not broadcast together$",
    ),
    (
        "JoinTable-shapes",
        lambda: JoinTable(1).forward((X4, X3[:2])),
        ValueError,
        r"^JoinTable\(dim=1\): inputs must have the same shape except along dim 1, got \(3, 4\), \(2, 3\)$",
    ),
    (
        "JoinTable-axis",
        lambda: JoinTable(-3).forward((X4, X3)),
        ValueError,
        r"^JoinTable\(dim=-3\): inputs must have one rank with an axis -3, got shapes \(3, 4\), \(3, 3\)$",
    ),
    ("JoinTable-dim", lambda: JoinTable("1"), TypeError, r"^JoinTable: dim must be an integer axis, got '1'$"),
    (
        "SplitTable-axis",
        lambda: SplitTable(2).forward(X4),
        ValueError,
        r"^SplitTable\(dim=2\): expected an input with an axis 2, got shape \(3, 4\)$",
    ),
    (
        "SplitTable-tuple",
        lambda: SplitTable(0).forward((X4,)),
        TypeError,
        r"^SplitTable\(dim=0\): expected an array, got \(array\(3, 4\),\)$",
    ),
    ("SelectTable-index", lambda: SelectTable(1.5), TypeError, r"^SelectTable: index must be an integer, got 1.5$"),
    (
        "SelectTable-range",
        lambda: SelectTable(2).forward((X4, X3)),
        ValueError,
        r"^SelectTable\(2\): expected a tuple of more than 2 entries, got \(array\(3, 4\), array\(3, 3\)\)$",
    ),
    (
        "SelectTable-negative-range",
        lambda: SelectTable(-3).forward((X4, X3)),
        ValueError,
        r"^SelectTable\(-3\): expected a tuple of more than 2 entries",
    ),
    (
        "SelectTable-array",
        lambda: SelectTable(0).forward(X4),
        TypeError,
        r"^SelectTable\(0\): expected a tuple, got array\(3, 4\)$",
    ),
]


@pytest.mark.parametrize("name, fn, exc, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name, fn, exc, pattern):
    _raises(exc, pattern, fn)


def test_table_errors_leave_no_state():
    m = CAddTable()
    with pytest.raises(ValueError):
        m.forward((X4, X3))
    assert m.output is None
    j = JoinTable(1)
    j.forward((X4, X3))
    before = j.output
    with pytest.raises(ValueError):
        j.forward((X4, X3[:2]))
    assert j.output is before


# ------------------------------------------------------------------ a hand-written composite
class GatedSkip(Module):
    """``y = x + sigmoid(gate(x)) * body(x)``: forward and backward written by
    hand, calling the children's (what a user does without the containers)."""

    def __init__(self, n):
        super().__init__()
        self.gate, self.body, self.act = Linear(n, n, rng=0), Linear(n, n, rng=1), Sigmoid()

    def children(self):
        return [("gate", self.gate), ("body", self.body), ("act", self.act)]

    def updateOutput(self, input):
        self._s = self.act.forward(self.gate.forward(input))
        self._b = self.body.forward(input)
        self.output = input + self._s * self._b
        return self.output

    def updateGradInput(self, input, gradOutput):
        g_gate = self.gate.backward(input, self.act.backward(self.gate.output, gradOutput * self._b))
        g_body = self.body.backward(input, gradOutput * self._s)
        self.gradInput = gradOutput + g_gate + g_body
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        pass  # the children's backward above accumulated their gradients


def test_hand_written_composite():
    m = GatedSkip(4)
    assert nn.gradcheck(m, arr(N, 4)).ok
    assert list(m.state_dict()) == ["gate.W", "gate.b", "body.W", "body.b"]
    inside = Sequential(m, Tanh())  # and it composes with the containers
    assert nn.gradcheck(inside, arr(N, 4)).ok
