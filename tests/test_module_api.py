"""The Module API around the protocol: the seed names, getParameters' nested
structure, parameters/state_dict naming and loading, freezing, initialisers,
seeding, Sequential as a list, user modules, skip_input_grad, dtype conversion."""

import math

import numpy as np
import pytest

import nnumpy
from nnumpy import (
    BatchNorm1d,
    BatchNormalization,
    ChannelwiseScaling,
    ClassNLLCriterion,
    Dropout,
    Flatten,
    Linear,
    LogSoftMax,
    Module,
    ReLU,
    Sequential,
    Tanh,
    init,
)

SEED_NAMES = [
    # seed 001
    "Module", "Sequential", "Linear", "SoftMax", "LogSoftMax", "BatchNormalization", "ChannelwiseScaling",
    "Dropout", "ReLU", "LeakyReLU", "ELU", "SoftPlus", "Criterion", "MSECriterion", "ClassNLLCriterionUnstable",
    "ClassNLLCriterion", "sgd_momentum", "adam_optimizer",
    # issue 2's further names
    "Sigmoid", "Tanh", "Flatten", "Identity", "BatchNorm1d", "BatchNorm2d", "CrossEntropyCriterion",
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RMSProp", "AdaGrad", "Nadam",
    "gradcheck", "manual_seed",
]  # fmt: skip


def test_star_import_gives_every_seed_name():
    namespace = {}
    exec("from nnumpy import *", namespace)
    missing = [name for name in SEED_NAMES if name not in namespace]
    assert not missing
    assert namespace["Linear"] is Linear
    assert all(hasattr(nnumpy, name) for name in nnumpy.__all__)


def mlp(seed=0):
    return Sequential(Linear(4, 3, rng=seed), ReLU(), Linear(3, 2, rng=seed + 1))


def nested(seed=0):
    return Sequential(Linear(4, 3, rng=seed), Sequential(ReLU(), Linear(3, 2, rng=seed + 1)), BatchNorm1d(2))


# ------------------------------------------------------------------ parameter structure
def test_get_parameters_structure():
    net = mlp()
    params = net.getParameters()
    assert len(params) == 3 and params[1] == []
    assert params[0][0] is net[0].W and params[0][1] is net[0].b
    assert params[2][0] is net[2].W and params[2][1] is net[2].b
    grads = net.getGradParameters()
    assert [len(g) for g in grads] == [2, 0, 2]
    assert grads[0][0] is net[0].gradW and grads[2][1] is net[2].gradb
    leaf = Linear(3, 2)
    assert len(leaf.getParameters()) == 2 and leaf.getParameters()[0] is leaf.W  # flat for a leaf
    assert leaf.getGradParameters()[1] is leaf.gradb
    assert Linear(3, 2, bias=False).getParameters()[0].shape == (2, 3)
    assert len(Linear(3, 2, bias=False).getParameters()) == 1
    assert ReLU().getParameters() == [] and ReLU().getGradParameters() == []
    # nested containers are flattened: one list per leaf
    n = nested()
    assert [len(p) for p in n.getParameters()] == [2, 0, 2, 2]
    assert n.getParameters()[2][0] is n[1][1].W
    assert n.getParameters()[3][0] is n[2].weight
    assert Sequential().getParameters() == [] and Sequential(Sequential()).getParameters() == []


def test_parameters_and_named_parameters():
    n = nested()
    names = [name for name, _ in n.named_parameters()]
    assert names == ["0.W", "0.b", "1.1.W", "1.1.b", "2.weight", "2.bias"]
    assert [p is q for p, (_, q) in zip(n.parameters(), n.named_parameters(), strict=True)] == [True] * 6
    assert dict(n.named_parameters())["1.1.W"] is n[1][1].W
    assert [name for name, _ in Linear(2, 2).named_parameters()] == ["W", "b"]
    assert [name for name, _ in Linear(2, 2, bias=False).named_parameters()] == ["W"]
    assert [name for name, _ in n.named_buffers()] == ["2.running_mean", "2.running_var"]


def test_num_parameters():
    assert Linear(4, 3).num_parameters == 15
    assert Linear(4, 3, bias=False).num_parameters == 12
    assert mlp().num_parameters == 15 + 8
    assert nested().num_parameters == 15 + 8 + 4
    assert ReLU().num_parameters == 0


# ------------------------------------------------------------------ state_dict
def test_state_dict_keys_and_identity():
    n = nested()
    state = n.state_dict()
    assert list(state) == ["0.W", "0.b", "1.1.W", "1.1.b", "2.weight", "2.bias", "2.running_mean", "2.running_var"]
    assert state["0.W"] is n[0].W  # the arrays themselves
    bn = Sequential(Linear(2, 3), BatchNormalization(0.5, n_feats=3), ChannelwiseScaling(3))
    assert list(bn.state_dict()) == [
        "0.W",
        "0.b",
        "2.gamma",
        "2.beta",
        "1.moving_mean",
        "1.moving_variance",
    ]  # parameters, then buffers


def test_load_state_dict_copies_in_place():
    a, b = nested(0), nested(5)
    b_W = b[0].W
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert b[0].W is b_W  # in place: optimizers keep their references
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


@pytest.mark.parametrize(
    "edit,pattern",
    [
        (lambda s: s.pop("1.1.b"), r"missing keys \['1\.1\.b'\]"),
        (lambda s: s.update({"3.W": np.zeros(2)}), r"unexpected keys \['3\.W'\]"),
        (lambda s: s.update({"0.W": np.zeros((4, 3))}), r"0\.W: expected shape \(3, 4\), got \(4, 3\)"),
        (lambda s: s.update({"2.running_mean": np.zeros(5)}), r"2\.running_mean: expected shape \(2,\), got \(5,\)"),
    ],
    ids=["missing", "unexpected", "wrong-shape", "wrong-shape-buffer"],
)
def test_load_state_dict_errors_leave_the_model_unchanged(edit, pattern):
    source, target = nested(0), nested(5)
    state = {k: v.copy() + 1 for k, v in source.state_dict().items()}
    state["1.1.W"] = state["1.1.W"] + 100  # a valid key that must not be copied either
    edit(state)
    before = {k: v.copy() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=pattern):
        target.load_state_dict(state)
    for k, v in target.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_state_dict_round_trip_before_lazy_buffers_exist():
    """A fresh model with a lazily sized BatchNormalization loads its own state_dict."""
    fresh = Sequential(Linear(2, 3, rng=0), BatchNormalization(0.5))
    other = Sequential(Linear(2, 3, rng=1), BatchNormalization(0.5))
    other.load_state_dict(fresh.state_dict())
    np.testing.assert_array_equal(other[0].W, fresh[0].W)
    assert other[1].moving_mean is None
    trained = Sequential(Linear(2, 3, rng=2), BatchNormalization(0.5))
    trained.forward(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"missing keys \['1.moving_mean', '1.moving_variance'\]"):
        trained.load_state_dict(fresh.state_dict())  # sized buffers are still required


def test_load_state_dict_non_strict():
    target = nested(5)
    partial = {"0.W": np.ones((3, 4), np.float32), "extra": np.zeros(1)}
    target.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(target[0].W, 1)
    with pytest.raises(ValueError, match="expected shape"):
        target.load_state_dict({"0.W": np.ones((2, 2))}, strict=False)


# ------------------------------------------------------------------ freezing
def test_freeze_and_unfreeze():
    net = mlp()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert net[0].freeze() is net[0] and net[0].frozen and not net[2].frozen
    y = net.forward(x)
    gi = net.backward(x, np.ones_like(y))
    assert gi is not None and gi.shape == x.shape  # the input gradient still flows through a frozen layer
    assert not np.any(net[0].gradW) and not np.any(net[0].gradb)
    assert np.any(net[2].gradW)
    assert len(net.parameter_pairs()) == 2  # optimizers see only the trainable ones
    assert len(net.parameters()) == 4  # but parameters() lists all
    net.unfreeze()
    assert not net[0].frozen
    net.backward(x, np.ones_like(y))
    assert np.any(net[0].gradW)
    net.freeze()
    assert all(m.frozen for _, m in net.named_modules()) and net.parameter_pairs() == []


# ------------------------------------------------------------------ init
INITS = [
    ("uniform_", lambda a, rng: init.uniform_(a, -0.3, 0.2, rng=rng), (-0.3, 0.2)),
    ("fan_in_uniform_", lambda a, rng: init.fan_in_uniform_(a, rng=rng), (-1 / math.sqrt(40), 1 / math.sqrt(40))),
    ("xavier_uniform_", lambda a, rng: init.xavier_uniform_(a, rng=rng), (-math.sqrt(6 / 70), math.sqrt(6 / 70))),
    ("kaiming_uniform_", lambda a, rng: init.kaiming_uniform_(a, rng=rng), (-math.sqrt(6 / 40), math.sqrt(6 / 40))),
    ("kaiming_uniform_fan_out", lambda a, rng: init.kaiming_uniform_(a, mode="fan_out", rng=rng),
     (-math.sqrt(6 / 30), math.sqrt(6 / 30))),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,fill,bounds", INITS, ids=[i[0] for i in INITS])
def test_uniform_initialisers(name, fill, bounds, dtype):
    a = np.zeros((30, 10, 2, 2), dtype)  # fan_in = 40, fan_out = 120 for a conv weight
    if name in ("xavier_uniform_",):
        a = np.zeros((30, 40), dtype)  # fan_in 40, fan_out 30
    if name == "kaiming_uniform_fan_out":
        a = np.zeros((30, 40), dtype)
    out = fill(a, 0)
    assert out is a and a.dtype == dtype
    low, high = bounds
    assert a.min() >= low and a.max() <= high
    assert a.min() < low + 0.1 * (high - low) and a.max() > high - 0.1 * (high - low)  # fills the range
    b = np.zeros_like(a)
    fill(b, 0)
    np.testing.assert_array_equal(a, b)  # seeded: deterministic
    fill(b, 1)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "fill,std",
    [
        (lambda a: init.normal_(a, 0.5, 2.0, rng=0), 2.0),
        (lambda a: init.xavier_normal_(a, rng=0), math.sqrt(2 / (200 + 100))),
        (lambda a: init.kaiming_normal_(a, rng=0), math.sqrt(2 / 200)),
        (lambda a: init.kaiming_normal_(a, nonlinearity="tanh", rng=0), 5 / 3 / math.sqrt(200)),
        (lambda a: init.he_normal_(a, rng=0), math.sqrt(2 / 200)),
        (lambda a: init.glorot_normal_(a, rng=0), math.sqrt(2 / (200 + 100))),
    ],
)
def test_normal_initialisers(fill, std):
    a = np.zeros((100, 200), np.float32)
    fill(a)
    assert abs(a.std() - std) < 0.02 * std


def test_constant_initialisers_and_fans():
    a = np.full((3, 4), 7.0, np.float32)
    assert init.zeros_(a) is a and not a.any()
    assert init.ones_(a) is a and (a == 1).all()
    init.constant_(a, 0.25)
    assert (a == 0.25).all()
    assert init.calculate_fan(np.zeros((16, 3, 5, 5))) == (75, 400)
    assert init.calculate_fan(np.zeros((8, 4))) == (4, 8)
    assert init.glorot_uniform_ is init.xavier_uniform_ and init.he_uniform_ is init.kaiming_uniform_
    with pytest.raises(ValueError, match="nonlinearity"):
        init.kaiming_uniform_(np.zeros((2, 2)), nonlinearity="swish")
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(np.zeros((2, 2)), mode="fan_avg")


def test_reinitialising_a_layer():
    layer = Linear(256, 128)
    W = layer.W
    init.kaiming_uniform_(layer.W, rng=0)
    init.zeros_(layer.b)
    assert layer.W is W and not layer.b.any()
    assert np.abs(layer.W).max() <= math.sqrt(6 / 256)


# ------------------------------------------------------------------ seeding
def test_manual_seed_reproducibility():
    def build():
        return Sequential(Linear(5, 4), Dropout(0.5), ChannelwiseScaling(4))

    x = np.ones((3, 5), np.float32)
    nnumpy.manual_seed(42)
    a = build()
    ya = a.forward(x)
    ia = init.normal_(np.zeros(4), rng=None)
    nnumpy.manual_seed(42)
    b = build()
    yb = b.forward(x)
    ib = init.normal_(np.zeros(4), rng=None)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(ya, yb)  # the Dropout mask too
    np.testing.assert_array_equal(ia, ib)
    nnumpy.manual_seed(43)
    assert not np.array_equal(build()[0].W, a[0].W)
    # a model built before manual_seed follows it too (its Dropout holds the default generator)
    nnumpy.manual_seed(5)
    first = a.forward(x).copy()
    nnumpy.manual_seed(5)
    np.testing.assert_array_equal(a.forward(x), first)
    # rng= an int or a Generator
    np.testing.assert_array_equal(Linear(5, 4, rng=7).W, Linear(5, 4, rng=np.random.default_rng(7)).W)


# ------------------------------------------------------------------ Sequential as a list
def test_sequential_list_behaviour():
    l0, r, l2 = Linear(4, 3), ReLU(), Linear(3, 2)
    net = Sequential(l0, r, l2)
    assert net[0] is l0 and net[-1] is l2 and len(net) == 3
    assert list(net) == [l0, r, l2]
    head = net[:2]
    assert isinstance(head, Sequential) and list(head) == [l0, r] and head[0] is l0
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(net[1:].forward(head.forward(x)), net.forward(x))
    built = Sequential()
    assert built.add(l0) is built
    built.add(r).add(l2)
    assert list(built) == list(net)
    assert repr(net) == "Sequential(\n  (0): Linear(4 -> 3)\n  (1): ReLU()\n  (2): Linear(3 -> 2)\n)"
    assert repr(Sequential()) == "Sequential()"
    assert repr(nested()).splitlines()[2:5] == ["  (1): Sequential(", "    (0): ReLU()", "    (1): Linear(3 -> 2)"]
    assert len(Sequential()) == 0 and Sequential().forward(x) is x


def test_call_and_init_args():
    net = mlp()
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(net(x), net.forward(x))
    crit = ClassNLLCriterion()
    y = LogSoftMax()(x)
    assert crit(y, np.array([0, 1])) == crit.forward(y, np.array([0, 1]))
    assert Linear(4, 3, bias=False).init_args == ((4, 3), {"bias": False})


def test_backward_gives_each_child_the_input_it_saw():
    net = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1)).to(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 3))
    y = net.forward(x)
    g = np.random.default_rng(1).normal(size=y.shape)
    gi = net.backward(x, g)
    h = np.tanh(x @ net[0].W.T + net[0].b)
    g_h = g @ net[2].W
    np.testing.assert_allclose(net[2].gradW, g.T @ h, rtol=1e-12)
    g_z = g_h * (1 - h * h)
    np.testing.assert_allclose(net[0].gradW, g_z.T @ x, rtol=1e-12)
    np.testing.assert_allclose(gi, g_z @ net[0].W, rtol=1e-12)
    assert net.gradInput is gi and net.output is y


# ------------------------------------------------------------------ user modules
class SeedStyleScale(Module):
    """Seed 003's style: overrides forward/backward directly, returns values,
    keeps no ``output``/``gradInput`` bookkeeping of the protocol's."""

    _parameters = (("w", "dw"),)

    def __init__(self, n):
        super().__init__()
        self.w = np.linspace(0.5, 1.5, n)
        self.dw = np.zeros(n)

    def forward(self, input):
        self.saved = input
        return input * self.w

    def backward(self, input, grad_output):
        self.dw += (grad_output * input).sum(axis=0)
        return grad_output * self.w


def test_user_module_overriding_forward_backward_inside_sequential():
    scale = SeedStyleScale(3)
    net = Sequential(Linear(4, 3, rng=0), scale, Tanh()).to(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 4))
    y = net.forward(x)
    z = x @ net[0].W.T + net[0].b
    np.testing.assert_allclose(y, np.tanh(z * scale.w), rtol=1e-12)
    g = np.ones_like(y)
    gi = net.backward(x, g)
    gz = (1 - y * y) * scale.w
    np.testing.assert_allclose(scale.dw, ((1 - y * y) * z).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gi, gz @ net[0].W, rtol=1e-12)
    assert net.getParameters()[1][0] is scale.w
    opt = nnumpy.SGD(net, lr=0.1)
    w_before = scale.w.copy()
    opt.step()
    np.testing.assert_allclose(scale.w, w_before - 0.1 * scale.dw)
    net.zeroGradParameters()
    assert not scale.dw.any()


# ------------------------------------------------------------------ skip_input_grad
@pytest.mark.parametrize(
    "build",
    [
        lambda: Sequential(Linear(4, 5, rng=0), ReLU(), Linear(5, 2, rng=1)),
        lambda: Sequential(Flatten(), Linear(4, 5, rng=0), Tanh(), Sequential(Linear(5, 3, rng=1), ReLU())),
        lambda: Sequential(Linear(4, 5, rng=0).freeze(), ReLU(), Linear(5, 2, rng=1)),
        lambda: Sequential(Sequential(Tanh(), Linear(4, 3, rng=0)), BatchNorm1d(3), Linear(3, 2, rng=1)),
    ],
    ids=["mlp", "flatten-first", "frozen-first", "nested-first"],
)
def test_skip_input_grad(build):
    x = np.random.default_rng(0).normal(size=(6, 4))
    full, skip = build().to(np.float64), build().to(np.float64)
    skip.skip_input_grad = True
    g = np.random.default_rng(1).normal(size=full.forward(x).shape)
    assert full.backward(x, g) is not None
    skip.forward(x)
    assert skip.backward(x, g) is None
    for (name, a), (_, b) in zip(dict(_grads(full)).items(), dict(_grads(skip)).items(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def _grads(module):
    for prefix, m in module.named_modules():
        if not m.children():
            for p, gname in type(m)._parameters:
                if getattr(m, p, None) is not None:
                    yield f"{prefix}.{p}", getattr(m, gname)


# ------------------------------------------------------------------ dtype conversion
def test_to_float64():
    n = nested()
    n.forward(np.ones((3, 4), np.float32))
    assert n.to(np.float64) is n
    for name, p in n.named_parameters():
        assert p.dtype == np.float64, name
    for name, b in n.named_buffers():
        assert b.dtype == np.float64, name
    assert all(g.dtype == np.float64 for _, g in _grads(n))
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert n.forward(x).dtype == np.float64
    n.to(np.float32)
    assert all(p.dtype == np.float32 for p in n.parameters())
    assert Linear(2, 2, dtype=np.float64).W.dtype == np.float64
    assert Linear(2, 2).W.dtype == np.float32  # float32 by default


# ------------------------------------------------------------------ gradcheck
class _WrongGradW(Linear):
    def accGradParameters(self, input, gradOutput):
        super().accGradParameters(input, gradOutput)
        self.gradW[1, 2] += 0.5


class _WrongMSE(nnumpy.MSECriterion):
    def updateGradInput(self, input, target):
        return super().updateGradInput(input, target) * 1.1


def test_gradcheck_reports_the_worst_element():
    x = np.random.default_rng(0).normal(size=(3, 4))
    result = nnumpy.gradcheck(_WrongGradW(4, 3, rng=0), x, raise_exception=False)
    assert not result.ok and result.worst[:2] == ("W", (1, 2))
    assert result.max_error == pytest.approx(0.5, rel=1e-4)
    with pytest.raises(nnumpy.GradcheckError, match=r"_WrongGradW\(4 -> 3\): d/dW\[1, 2\] analytic"):
        nnumpy.gradcheck(_WrongGradW(4, 3, rng=0), x)
    bad = nnumpy.gradcheck(_WrongMSE(), x, np.zeros_like(x), raise_exception=False)
    assert not bad.ok and bad.worst[0] == "input"
    assert nnumpy.gradcheck(nnumpy.MSECriterion(), x, np.zeros_like(x)).ok


def test_gradcheck_leaves_the_module_untouched_and_ignores_freezing():
    m = Linear(4, 3, rng=0).freeze()
    W = m.W.copy()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    result = nnumpy.gradcheck(m, x)
    assert result.ok and result.checked == ["input", "W", "b"]
    assert m.W.dtype == np.float32 and np.array_equal(m.W, W) and m.output is None and m.frozen
