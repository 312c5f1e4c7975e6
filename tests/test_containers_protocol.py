"""The module protocol around every container, Graph included (issue 15:
"each with ... getParameters / parameters(), state_dict, train/eval,
freezing"): one table of containers (nested, with BatchNorm and Dropout,
shared modules, several inputs and outputs), and for each: getParameters'
per-leaf structure, parameters() against state_dict, train/eval reaching
every module (and changing what BatchNorm and Dropout compute), freezing the
whole container or one child (a tied one too), and a state_dict round trip
into the same architecture built separately."""

import copy

import numpy as np
import pytest

import nnumpy as nn
from nnumpy import (
    BatchNorm1d,
    CAddTable,
    CMulTable,
    Concat,
    ConcatTable,
    Dropout,
    Graph,
    Input,
    JoinTable,
    Linear,
    ParallelTable,
    ReLU,
    Residual,
    Sequential,
    Tanh,
)

N = 6


def arr(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _graph(s):
    x = Input()
    lin = Linear(4, 4, rng=s)
    h = ReLU()(BatchNorm1d(4)(lin(x, name="proj"), name="bn"))
    h = Dropout(0.3, rng=s)(lin(h), name="drop")  # proj used twice
    return Graph(x, CAddTable()(h, Linear(4, 4, rng=s + 1)(x, name="skip")))


def _graph_two(s):
    a, b = Input(), Input()
    enc = Sequential(Linear(4, 3, rng=s), BatchNorm1d(3), Tanh())
    ya, yb = enc(a, name="enc"), enc(b)
    return Graph([a, b], [CMulTable()(ya, yb), JoinTable(1)(ya, Linear(4, 2, rng=s + 1)(b, name="side"))])


def _nested_graph(s):
    u = Input()
    inner = Graph(u, Dropout(0.5, rng=s)(BatchNorm1d(4)(Linear(4, 4, rng=s)(u, name="lin"), name="bn"), name="drop"))
    x = Input()
    return Graph(x, Residual(Sequential(inner, Tanh()), Linear(4, 4, rng=s + 1))(inner(x), name="res"))


ONE = lambda: arr(N, 4)  # noqa: E731
TWO = lambda: (arr(N, 4), arr(N, 4, seed=1))  # noqa: E731

# (id, make(seed), make_input)
CASES = [
    ("Sequential", lambda s: Sequential(Linear(4, 4, rng=s), BatchNorm1d(4), Dropout(0.3, rng=s), Tanh()), ONE),
    ("Residual", lambda s: Residual(Sequential(Linear(4, 4, rng=s), BatchNorm1d(4), Dropout(0.3, rng=s))), ONE),
    (
        "Residual-shortcut",
        lambda s: Residual(Sequential(Linear(4, 3, rng=s), BatchNorm1d(3)), Sequential(Linear(4, 3, rng=s + 1))),
        ONE,
    ),
    (
        "ConcatTable",
        lambda s: ConcatTable(Sequential(Linear(4, 3, rng=s), BatchNorm1d(3)), Dropout(0.3, rng=s), Tanh()),
        ONE,
    ),
    (
        "ParallelTable",
        lambda s: ParallelTable(Sequential(Linear(4, 3, rng=s), BatchNorm1d(3)), Dropout(0.3, rng=s)),
        TWO,
    ),
    ("Concat", lambda s: Concat(1, Sequential(Linear(4, 3, rng=s), BatchNorm1d(3)), Dropout(0.3, rng=s)), ONE),
    ("Graph", _graph, ONE),
    ("Graph-two-in-two-out", _graph_two, TWO),
    ("Graph-nested-in-Residual", _nested_graph, ONE),
]
IDS = [c[0] for c in CASES]


def flat(x):
    return [v for item in x for v in flat(item)] if isinstance(x, (tuple, list)) else [x]


def ones_like(out):
    return tuple(ones_like(o) for o in out) if isinstance(out, tuple) else np.ones_like(out)


def run(m, x):
    """One forward and backward (gradients zeroed first); returns (outputs, input gradients, parameter gradients)."""
    out = m.forward(x)
    m.zeroGradParameters()
    gin = m.backward(x, ones_like(out))
    return [o.copy() for o in flat(out)], [g.copy() for g in flat(gin)], [g.copy() for g in m.grad_parameters()]


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_get_parameters_is_one_list_per_leaf_and_parameters_flat_and_unique(name, make, make_input):
    m = make(0)
    leaves = m.leaves()
    assert len({id(leaf) for leaf in leaves}) == len(leaves), "a tied module is one leaf"
    nested, grads = m.getParameters(), m.getGradParameters()
    assert len(nested) == len(leaves) and all(isinstance(p, list) for p in nested)
    for leaf, params, leaf_grads in zip(leaves, nested, grads, strict=True):
        assert [id(p) for p in params] == [id(p) for p in leaf.getParameters()]
        assert [g.shape for g in leaf_grads] == [p.shape for p in params]
    flat_params = m.parameters()
    assert [id(p) for p in flat_params] == [id(p) for params in nested for p in params]
    assert len({id(p) for p in flat_params}) == len(flat_params), "each array once"
    named = dict(m.named_parameters())
    assert [id(p) for p in named.values()] == [id(p) for p in flat_params], "named_parameters in the same order"
    state = m.state_dict()
    buffers = dict(m.named_buffers())
    assert list(state) == list(named) + list(buffers)
    assert all(state[k] is v for k, v in {**named, **buffers}.items()), "the arrays themselves"
    assert m.num_parameters == sum(p.size for p in flat_params)


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_train_and_eval_reach_every_module_and_change_what_it_computes(name, make, make_input):
    m, x = make(0), make_input()
    m.eval()
    assert not any(sub.training for _, sub in m.named_modules())
    a = [o.copy() for o in flat(m.forward(x))]
    b = flat(m.forward(x))
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True)), "evaluate mode is deterministic"
    m.train()
    assert all(sub.training for _, sub in m.named_modules())
    c = flat(m.forward(x))  # batch statistics and a Dropout mask
    assert any(not np.allclose(u, v) for u, v in zip(a, c, strict=True)), "training mode computes otherwise"
    with m.preserved_modes():
        m.evaluate()
    assert all(sub.training for _, sub in m.named_modules())


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_freezing_the_container_trains_nothing_and_keeps_the_input_gradient(name, make, make_input):
    x = make_input()
    m = make(0).eval()  # evaluate mode: the same numbers at every forward
    _, gin, _ = run(m, x)
    before = [p.copy() for p in m.parameters()]
    m.freeze()
    assert m.frozen and all(sub.frozen for _, sub in m.named_modules())
    assert m.parameter_pairs() == [] and len(m.parameter_pairs(trainable_only=False)) == len(before)
    opt = nn.SGD(m, lr=0.1)
    _, gin_frozen, grads = run(m, x)
    opt.step()
    assert all(not g.any() for g in grads), "a frozen container accumulates nothing"
    assert all(np.array_equal(p, q) for p, q in zip(m.parameters(), before, strict=True))
    assert all(np.array_equal(g, h) for g, h in zip(gin_frozen, gin, strict=True))
    m.unfreeze()
    assert not any(sub.frozen for _, sub in m.named_modules()) and len(m.parameter_pairs()) == len(before)


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_freezing_one_child_leaves_the_others_training(name, make, make_input):
    x = make_input()
    m = make(0).eval()
    _, gin, grads = run(m, x)
    trainable = [leaf for leaf in m.leaves() if leaf.parameters()]
    frozen = trainable[0]  # the first one (in a graph: the tied module where there is one)
    frozen.freeze()
    ids = {id(p) for p in frozen.parameters()}
    assert {id(p) for p, _ in m.parameter_pairs()} == {id(p) for p in m.parameters()} - ids
    _, gin2, grads2 = run(m, x)
    for p, g, g2 in zip(m.parameters(), grads, grads2, strict=True):
        if id(p) in ids:
            assert not g2.any(), "the frozen child accumulated a gradient"
        else:
            assert np.array_equal(g, g2), "another child's gradient changed"
    assert all(np.array_equal(a, b) for a, b in zip(gin, gin2, strict=True))


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_state_dict_round_trip_into_a_separately_built_model(name, make, make_input):
    a, b = make(0), make(10)
    x = make_input()
    for seed in range(2):  # move the running statistics away from their start
        a.forward(make_input() if seed == 0 else tuple(2 * v for v in flat(x)) if isinstance(x, tuple) else 2 * x)
    state = copy.deepcopy(a.state_dict())
    assert list(state) == list(b.state_dict())
    assert any("running_mean" in k for k in state)
    b.load_state_dict(state)
    a.eval(), b.eval()
    assert all(np.array_equal(u, v) for u, v in zip(flat(a.forward(x)), flat(b.forward(x)), strict=True))
    key = next(iter(state))
    with pytest.raises(ValueError, match=rf"load_state_dict: missing keys \[{key!r}\]"):
        b.load_state_dict({k: v for k, v in state.items() if k != key})
    with pytest.raises(ValueError, match=r"load_state_dict: unexpected keys \['extra.W'\]"):
        b.load_state_dict({**state, "extra.W": np.zeros(2)})


def _uses(m):
    """How many places each module of ``m`` sits at (a tied module: more than one)."""
    counts = {}

    def walk(module):
        counts[id(module)] = counts.get(id(module), 0) + 1
        if counts[id(module)] > 1:
            return
        slots = [step[0] for step in module.plan()["steps"]] if isinstance(module, Graph) else None
        for child in slots if slots is not None else [c for _, c in module.children()]:
            walk(child)

    walk(m)
    return sorted(counts.values())


def _train_step(m, opt, x):
    opt.zero_grad()
    out = m.forward(x)
    m.backward(x, tuple(0.1 * o for o in out) if isinstance(out, tuple) else 0.1 * out)
    opt.step()
    return [o.copy() for o in flat(m.forward(x))]


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_model_file_keeps_names_buffers_ties_and_modes(tmp_path, name, make, make_input):
    m, x = make(0), make_input()
    m.forward(x)  # running statistics away from their start
    m.leaves()[-1].freeze()
    m.eval()
    nn.save_model(m, tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    assert type(loaded) is type(m) and repr(loaded) == repr(m)
    assert list(loaded.state_dict()) == list(m.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(loaded.state_dict().values(), m.state_dict().values(), strict=True))
    assert _uses(loaded) == _uses(m), "tied modules stay tied"
    assert [leaf.frozen for leaf in loaded.leaves()] == [leaf.frozen for leaf in m.leaves()]
    loaded.eval()
    assert all(np.array_equal(a, b) for a, b in zip(flat(loaded.forward(x)), flat(m.forward(x)), strict=True))


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_checkpoint_resumes_training_bit_for_bit(tmp_path, name, make, make_input):
    m, x = make(0), make_input()
    opt = nn.Adam(m, lr=0.01)
    _train_step(m, opt, x)
    nn.save_checkpoint(tmp_path / "c.npz", m, opt, epoch=1, step=1)
    expected = _train_step(m, opt, x)  # Dropout masks from the modules' generators, BatchNorm in training mode
    ckpt = nn.load_checkpoint(tmp_path / "c.npz")
    resumed = nn.io.restore_optimizer(ckpt)
    got = _train_step(ckpt.model, resumed, x)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(ckpt.model.parameters(), m.parameters(), strict=True))


def _bn_first(s):
    return Sequential(Linear(4, 3, rng=s), BatchNorm1d(3))


def _graph_bad_late(s):
    x = Input()
    h = _bn_first(s)(x, name="first")
    return Graph(x, JoinTable(1)(h, Linear(5, 2, rng=s)(x, name="late")))


def _graph_two_bad(s):
    a, b = Input(), Input()
    return Graph([a, b], CAddTable()(_bn_first(s)(a, name="first"), b))  # (N, 3) + (N, 4)


# (id, make, input, the error forward raises): a shape error found after a BatchNorm would have run
PRE_CHECK = [
    ("Residual", lambda s: Residual(_bn_first(s)), ONE, r"^Residual: the body's output array\(6, 3\) and the shortcut"),
    (
        "Residual-shortcut",
        lambda s: Residual(_bn_first(s), Linear(5, 3, rng=s)),
        ONE,
        r"^Residual shortcut Linear: Linear\(5 -> 3\): expected input of shape",
    ),
    (
        "ConcatTable",
        lambda s: ConcatTable(_bn_first(s), Linear(5, 2, rng=s)),
        ONE,
        r"^ConcatTable branch \(1\) Linear: Linear\(5 -> 2\)",
    ),
    (
        "ParallelTable",
        lambda s: ParallelTable(_bn_first(s), Linear(5, 2, rng=s)),
        TWO,
        r"^ParallelTable branch \(1\) Linear: Linear\(5 -> 2\)",
    ),
    ("Concat", lambda s: Concat(1, _bn_first(s), Linear(5, 2, rng=s)), ONE, r"^Concat branch \(1\) Linear"),
    ("Concat-join", lambda s: Concat(0, _bn_first(s), Tanh()), ONE, r"^Concat\(dim=0\): branch outputs must have"),
    ("Graph", _graph_bad_late, ONE, r"^Graph node 'late' Linear: Linear\(5 -> 2\)"),
    (
        "Graph-two-in",
        _graph_two_bad,
        TWO,
        r"^Graph node 'caddtable_0' CAddTable: CAddTable\(\): input shapes \(6, 3\), \(6, 4\)",
    ),
    (
        "Sequential-through-a-tuple",
        lambda s: Sequential(ConcatTable(_bn_first(s), Linear(4, 4, rng=s)), CAddTable()),
        ONE,
        r"^Sequential child \(1\) CAddTable: CAddTable\(\): input shapes \(6, 3\), \(6, 4\) do not broadcast",
    ),
    (
        "Graph-in-Sequential",
        lambda s: Sequential(Tanh(), ConcatTable(Residual(_bn_first(s), Linear(4, 3, rng=s)), _graph_bad_late(s))),
        ONE,
        r"^Sequential child \(1\) ConcatTable: ConcatTable branch \(1\) Graph: Graph node 'late'",
    ),
]


@pytest.mark.parametrize("name, make, make_input, pattern", PRE_CHECK, ids=[c[0] for c in PRE_CHECK])
def test_a_shape_error_in_a_later_child_leaves_an_earlier_batchnorm_untouched(name, make, make_input, pattern):
    m = make(0)
    before = copy.deepcopy(m.state_dict())
    with pytest.raises(ValueError, match=pattern):
        m.forward(make_input())
    for key, value in m.state_dict().items():
        assert np.array_equal(value, before[key]), f"{name}: {key} changed before the error"
    assert not any(sub.output is not None for _, sub in m.named_modules() if not sub.children()), "no child ran"
