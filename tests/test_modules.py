"""One table of every core module and criterion (PyTorch's ``ModuleInfo`` style),
and generic tests that run over it: gradcheck in float64, forward/backward parity
with PyTorch (strict in float64, the shared tolerance in float32), dtype kept,
repr, state_dict round trip, train vs evaluate, batch of one, backward before
forward, gradient accumulation. What the table cannot say (Dropout's mask
statistics, BatchNorm's moving statistics) follows it."""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy
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

torch.set_num_threads(1)

DTYPES = (np.float64, np.float32)
TORCH_NAME = {"W": "weight", "b": "bias"}  # our parameter name -> torch's (others are equal)


# ------------------------------------------------------------------ torch equivalents
def tensor(a):
    return torch.from_numpy(np.array(a))


class TorchChannelwiseScaling(torch.nn.Module):
    """``y = gamma * x + beta`` per channel (no torch equivalent)."""

    def __init__(self, gamma, beta):
        super().__init__()
        self.gamma = torch.nn.Parameter(tensor(gamma))
        self.beta = torch.nn.Parameter(tensor(beta))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.gamma.view(shape) + self.beta.view(shape)


def t_linear(m, shape):
    lin = torch.nn.Linear(m.n_in, m.n_out, bias=m.b is not None)
    lin.weight = torch.nn.Parameter(tensor(m.W))
    if m.b is not None:
        lin.bias = torch.nn.Parameter(tensor(m.b))
    return lin


def t_batchnormalization(m, shape):
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    bn = cls(shape[1], eps=m.EPS, momentum=1 - m.alpha, affine=False)
    return bn.to(torch.float64 if m.moving_mean is None or m.moving_mean.dtype == np.float64 else torch.float32)


def t_batchnorm(m, shape):
    cls = torch.nn.BatchNorm2d if isinstance(m, BatchNorm2d) else torch.nn.BatchNorm1d
    bn = cls(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine)
    bn.weight = torch.nn.Parameter(tensor(m.weight))
    bn.bias = torch.nn.Parameter(tensor(m.bias))
    bn.running_mean = tensor(m.running_mean)
    bn.running_var = tensor(m.running_var)
    return bn


def t_sequential(m, shape):
    return torch.nn.Sequential(*[to_torch(child, shape) for child in m.modules])


TORCH_BUILDERS = {
    Linear: t_linear,
    SoftMax: lambda m, s: torch.nn.Softmax(dim=1),
    LogSoftMax: lambda m, s: torch.nn.LogSoftmax(dim=1),
    BatchNormalization: t_batchnormalization,
    ChannelwiseScaling: lambda m, s: TorchChannelwiseScaling(m.gamma, m.beta),
    ReLU: lambda m, s: torch.nn.ReLU(),
    LeakyReLU: lambda m, s: torch.nn.LeakyReLU(m.slope),
    ELU: lambda m, s: torch.nn.ELU(m.alpha),
    SoftPlus: lambda m, s: torch.nn.Softplus(),
    Sigmoid: lambda m, s: torch.nn.Sigmoid(),
    Tanh: lambda m, s: torch.nn.Tanh(),
    Flatten: lambda m, s: torch.nn.Flatten(),
    Identity: lambda m, s: torch.nn.Identity(),
    Dropout: lambda m, s: torch.nn.Dropout(m.p),  # only ever compared in eval mode
    Sequential: t_sequential,
    BatchNorm1d: t_batchnorm,
    BatchNorm2d: t_batchnorm,
}


def to_torch(module, shape):
    """The torch module equivalent to ours, with our parameter values copied."""
    return TORCH_BUILDERS[type(module)](module, shape)


# ------------------------------------------------------------------ the table
def _biased_running_var(ours, tbn):
    """The seeds keep the biased moving variance, PyTorch the unbiased one: give
    torch ours before comparing evaluate mode."""
    tbn.running_var.copy_(tensor(ours.moving_variance))


def _bn1d(seed=0):
    m = BatchNorm1d(3)
    r = np.random.default_rng(seed)
    m.weight[...] = r.uniform(0.5, 1.5, 3)
    m.bias[...] = r.uniform(-0.5, 0.5, 3)
    return m


def _bn2d(seed=0):
    m = BatchNorm2d(2, momentum=0.3)
    r = np.random.default_rng(seed)
    m.weight[...] = r.uniform(0.5, 1.5, 2)
    m.bias[...] = r.uniform(-0.5, 0.5, 2)
    return m


def _nested(seed=0):
    return Sequential(
        Linear(4, 5, rng=seed),
        ReLU(),
        Sequential(Linear(5, 3, rng=seed + 1), Tanh()),
        Sequential(),
        LogSoftMax(),
    )


@dataclass
class ModuleInfo:
    name: str
    make: Callable  # seed -> a fresh module (parameters from that seed)
    shapes: list  # >= 3 input shapes
    repr: str
    random: bool = False  # output depends on a random mask in training mode (Dropout)
    mode_dependent: bool = False  # train and evaluate differ (Dropout, BatchNorm)
    batch_stats: bool = False  # normalises over the batch in training mode
    buffers: dict = field(default_factory=dict)  # our buffer -> torch buffer compared after forward
    before_eval: Callable = None  # (ours, torch module): align state torch keeps differently


MODULES = [
    ModuleInfo("Linear", lambda s: Linear(4, 3, rng=s), [(2, 4), (5, 4), (7, 4)], "Linear(4 -> 3)"),
    ModuleInfo(
        "Linear_nobias",
        lambda s: Linear(4, 3, bias=False, rng=s),
        [(2, 4), (3, 4), (6, 4)],
        "Linear(4 -> 3, bias=False)",
    ),
    ModuleInfo("SoftMax", lambda s: SoftMax(), [(3, 5), (2, 4), (4, 3, 2)], "SoftMax()"),
    ModuleInfo("LogSoftMax", lambda s: LogSoftMax(), [(3, 5), (2, 4), (4, 3, 2)], "LogSoftMax()"),
    ModuleInfo(
        "BatchNormalization",
        lambda s: BatchNormalization(alpha=0.9),
        [(6, 3), (4, 5), (5, 2, 3)],
        "BatchNormalization(alpha=0.9)",
        mode_dependent=True,
        batch_stats=True,
        buffers={"moving_mean": "running_mean"},
        before_eval=_biased_running_var,
    ),
    ModuleInfo(
        "BatchNormalization_alpha0",
        lambda s: BatchNormalization(),
        [(5, 3), (3, 2), (2, 3, 2, 2)],
        "BatchNormalization(alpha=0.0)",
        mode_dependent=True,
        batch_stats=True,
        buffers={"moving_mean": "running_mean"},
        before_eval=_biased_running_var,
    ),
    ModuleInfo(
        "ChannelwiseScaling",
        lambda s: ChannelwiseScaling(3, rng=s),
        [(4, 3), (2, 3, 3, 2), (5, 3)],
        "ChannelwiseScaling(3)",
    ),
    ModuleInfo(
        "Dropout",
        lambda s: Dropout(0.3, rng=s),
        [(4, 5), (3, 2, 2), (6, 3)],
        "Dropout(p=0.3)",
        random=True,
        mode_dependent=True,
    ),
    ModuleInfo("ReLU", lambda s: ReLU(), [(3, 4), (2, 3, 2), (5, 2)], "ReLU()"),
    ModuleInfo("LeakyReLU", lambda s: LeakyReLU(0.1), [(3, 4), (2, 3, 2), (5, 2)], "LeakyReLU(slope=0.1)"),
    ModuleInfo("ELU", lambda s: ELU(0.7), [(3, 4), (2, 3, 2), (5, 2)], "ELU(alpha=0.7)"),
    ModuleInfo("SoftPlus", lambda s: SoftPlus(), [(3, 4), (2, 3, 2), (5, 2)], "SoftPlus()"),
    ModuleInfo("Sigmoid", lambda s: Sigmoid(), [(3, 4), (2, 3, 2), (5, 2)], "Sigmoid()"),
    ModuleInfo("Tanh", lambda s: Tanh(), [(3, 4), (2, 3, 2), (5, 2)], "Tanh()"),
    ModuleInfo("Flatten", lambda s: Flatten(), [(2, 3, 4), (3, 2, 2, 2), (4, 5)], "Flatten()"),
    ModuleInfo("Identity", lambda s: Identity(), [(3, 4), (2, 3, 2), (5, 2)], "Identity()"),
    ModuleInfo(
        "Sequential_nested",
        _nested,
        [(3, 4), (2, 4), (6, 4)],
        "Sequential(\n  (0): Linear(4 -> 5)\n  (1): ReLU()\n  (2): Sequential(\n    (0): Linear(5 -> 3)\n"
        "    (1): Tanh()\n  )\n  (3): Sequential()\n  (4): LogSoftMax()\n)",
    ),
    ModuleInfo(
        "BatchNorm1d",
        _bn1d,
        [(5, 3), (4, 3, 6), (7, 3)],
        "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True)",
        mode_dependent=True,
        batch_stats=True,
        buffers={"running_mean": "running_mean", "running_var": "running_var"},
    ),
    ModuleInfo(
        "BatchNorm2d",
        _bn2d,
        [(3, 2, 4, 4), (2, 2, 3, 5), (4, 2, 2, 2)],
        "BatchNorm2d(2, eps=1e-05, momentum=0.3, affine=True)",
        mode_dependent=True,
        batch_stats=True,
        buffers={"running_mean": "running_mean", "running_var": "running_var"},
    ),
]
MODULE_IDS = [info.name for info in MODULES]
WITH_PARAMS = [info for info in MODULES if info.make(0).parameters()]
CASES = [(info, shape) for info in MODULES for shape in info.shapes]
CASE_IDS = [f"{info.name}-{'x'.join(map(str, shape))}" for info, shape in CASES]


def make_input(shape, dtype=np.float64, seed=0):
    """Random values kept away from 0 (ReLU's kink) by at least 0.1."""
    n = np.random.default_rng(seed).normal(size=shape)
    return (np.sign(n) * (0.1 + np.abs(n))).astype(dtype)


def named_grads(module):
    """``{dotted name: gradient}`` matching ``named_parameters``."""
    out = {}
    for prefix, m in module.named_modules():
        if m.children():
            continue
        for p, g in type(m)._parameters:
            if getattr(m, p, None) is not None:
                out[f"{prefix}.{p}" if prefix else p] = getattr(m, g)
    return out


def torch_name(name):
    *head, last = name.split(".")
    return ".".join([*head, TORCH_NAME.get(last, last)])


def run_torch(tmod, x, g):
    xt = tensor(x).requires_grad_(True)
    yt = tmod(xt)
    yt.backward(tensor(g))
    return yt, xt.grad


def build_pair(info, shape, dtype):
    ours = info.make(0).to(dtype)
    tmod = to_torch(ours, shape)
    tmod = tmod.to(torch.float64 if dtype == np.float64 else torch.float32)
    return ours, tmod


# ------------------------------------------------------------------ generic tests
@pytest.mark.parametrize("info,shape", CASES, ids=CASE_IDS)
def test_gradcheck(info, shape):
    result = nnumpy.gradcheck(info.make(0), make_input(shape, seed=1), eps=1e-6, atol=1e-6, rtol=1e-4)
    assert result.ok
    assert "input" in result.checked
    assert set(result.checked) == {"input", *dict(info.make(0).named_parameters())}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(
    "info,shape",
    [c for c in CASES if not c[0].random],
    ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if not c[0].random],
)
def test_parity_with_torch(info, shape, dtype):
    ours, tmod = build_pair(info, shape, dtype)
    tmod.train()
    for step in range(2):  # twice: BatchNorm's running statistics move
        x = make_input(shape, dtype, seed=10 + step)
        ours.zeroGradParameters()
        tmod.zero_grad()
        y = ours.forward(x)
        g = np.random.default_rng(20 + step).normal(size=y.shape).astype(dtype)
        gi = ours.backward(x, g)
        yt, git = run_torch(tmod, x, g)
        assert_close(y, yt, dtype, f"{info.name} output")
        assert_close(gi, git, dtype, f"{info.name} gradInput")
        tparams = dict(tmod.named_parameters())
        grads = named_grads(ours)
        assert len(grads) == len(tparams)
        for name, grad in grads.items():
            assert_close(grad, tparams[torch_name(name)].grad, dtype, f"{info.name} grad {name}")
        tbufs = dict(tmod.named_buffers())
        for ours_name, t_name in info.buffers.items():
            assert_close(getattr(ours, ours_name), tbufs[t_name], dtype, f"{info.name} {ours_name}")
    # evaluate mode: moving statistics for BatchNorm, identity for Dropout
    if info.before_eval:
        info.before_eval(ours, tmod)
    ours.evaluate()
    tmod.eval()
    x = make_input(shape, dtype, seed=30)
    y = ours.forward(x)
    g = np.random.default_rng(31).normal(size=y.shape).astype(dtype)
    yt, git = run_torch(tmod, x, g)
    assert_close(y, yt, dtype, f"{info.name} eval output")
    assert_close(ours.backward(x, g), git, dtype, f"{info.name} eval gradInput")


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_dtype_kept(info):
    shape = info.shapes[0]
    for dtype in DTYPES:
        m = info.make(0)  # float32 parameters: a float64 input must still give float64
        x = make_input(shape, dtype)
        y = m.forward(x)
        assert y.dtype == dtype, f"{info.name}: output {y.dtype} for {np.dtype(dtype)} input"
        gi = m.backward(x, np.ones_like(y))
        assert gi.dtype == dtype, f"{info.name}: gradInput {gi.dtype} for {np.dtype(dtype)} input"
        for name, p in m.named_parameters():
            assert p.dtype == np.float32, f"{info.name}: parameter {name} became {p.dtype}"
        for name, grad in named_grads(m).items():
            assert grad.dtype == np.float32, f"{info.name}: gradient {name} became {grad.dtype}"
    m = info.make(0).to(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    x = make_input(shape, np.float32)
    assert m.forward(x).dtype == np.float32  # float32 input, float64 parameters: no upcast
    assert m.backward(x, np.ones_like(m.output)).dtype == np.float32


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_repr(info):
    assert repr(info.make(0)) == info.repr


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_state_dict_round_trip(info):
    shape = info.shapes[0]
    trained = info.make(0)
    trained.forward(make_input(shape, seed=3))  # moves BatchNorm's statistics
    for _, p in trained.named_parameters():
        p += np.random.default_rng(4).normal(size=p.shape).astype(p.dtype)
    fresh = info.make(7)
    fresh.load_state_dict(trained.state_dict())
    assert list(fresh.state_dict()) == list(trained.state_dict())
    for (ka, a), (kb, b) in zip(trained.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert ka == kb and a is not b and np.array_equal(a, b)
    x = make_input(shape, seed=5)
    trained.evaluate()
    fresh.evaluate()
    np.testing.assert_array_equal(trained.forward(x), fresh.forward(x))
    if not info.random:
        trained.train()
        fresh.train()
        np.testing.assert_array_equal(trained.forward(x), fresh.forward(x))


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_train_vs_evaluate(info):
    shape = info.shapes[0]
    m = info.make(0)
    x, x2 = make_input(shape, seed=6), make_input(shape, seed=16)
    m.forward(x)  # BatchNorm's moving statistics now come from x
    assert m.evaluate() is m and not m.training
    assert all(not sub.training for _, sub in m.named_modules())
    y_eval = m.forward(x2).copy()
    np.testing.assert_array_equal(m.forward(x2), y_eval)  # deterministic in evaluate mode
    assert m.train() is m and m.training
    assert all(sub.training for _, sub in m.named_modules())
    y_train = m.forward(x2).copy()
    if info.mode_dependent:
        assert not np.allclose(y_train, y_eval)
    else:
        np.testing.assert_array_equal(y_train, y_eval)
    assert m.eval() is m and not m.training  # the PyTorch alias


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_batch_of_one(info):
    shape = info.shapes[0]
    x = make_input(shape, seed=8)
    m = info.make(0)
    if info.mode_dependent:
        m.forward(x)  # let BatchNorm see a batch, then compare in evaluate mode
        m.evaluate()
    full = m.forward(x).copy()
    g = np.random.default_rng(9).normal(size=full.shape)
    full_grad = m.backward(x, g).copy()
    one = m.forward(x[:1]).copy()
    np.testing.assert_allclose(one, full[:1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.backward(x[:1], g[:1]), full_grad[:1], rtol=1e-12, atol=1e-12)
    m.train()
    y = m.forward(x[:1])  # a batch of one also runs in training mode
    assert y.shape[0] == 1 and np.all(np.isfinite(y))
    assert np.all(np.isfinite(m.backward(x[:1], np.ones_like(y))))


@pytest.mark.parametrize("info", MODULES, ids=MODULE_IDS)
def test_backward_before_forward(info):
    m = info.make(0)
    x = make_input(info.shapes[0])
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(x, x)


@pytest.mark.parametrize("info", WITH_PARAMS, ids=[i.name for i in WITH_PARAMS])
def test_gradients_accumulate_until_zeroed(info):
    shape = info.shapes[0]
    m = info.make(0).to(np.float64)
    x = make_input(shape, seed=11)
    g = np.random.default_rng(12).normal(size=m.forward(x).shape)
    m.zeroGradParameters()
    m.forward(x)
    m.backward(x, g)
    once = {k: v.copy() for k, v in named_grads(m).items()}
    assert any(np.abs(v).max() > 0 for v in once.values())
    m.forward(x)
    m.backward(x, g)
    for name, grad in named_grads(m).items():
        np.testing.assert_allclose(grad, 2 * once[name], rtol=1e-12, atol=1e-14, err_msg=name)
    m.zeroGradParameters()
    assert all(not np.any(v) for v in named_grads(m).values())
    m.forward(x)
    m.backward(x, g)
    m.zero_grad()  # the alias
    assert all(not np.any(v) for v in named_grads(m).values())


def test_linear_writes_zeroed_gradients_in_place_and_adds_to_any_other():
    """Right after zeroGradParameters Linear writes its gradients into the same
    arrays (no temporary); a gradient it was not told is zero is added to."""
    m = Linear(5, 3).to(np.float64)
    x, g = np.random.default_rng(0).normal(size=(4, 5)), np.random.default_rng(1).normal(size=(4, 3))
    gradW, gradb = m.gradW, m.gradb
    gradW[...], gradb[...] = 1.0, 1.0  # never zeroed: backward adds
    m.forward(x)
    m.backward(x, g)
    np.testing.assert_allclose(m.gradW, 1.0 + g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(m.gradb, 1.0 + g.sum(0), rtol=1e-12)
    m.zeroGradParameters()
    m.backward(x, g)
    assert m.gradW is gradW and m.gradb is gradb  # the arrays optimizers hold
    np.testing.assert_allclose(m.gradW, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(m.gradb, g.sum(0), rtol=1e-12)
    m.zeroGradParameters()
    m.gradW = np.full((3, 5), 2.0)  # a new array after zeroing is not known to be zero
    m.backward(x, g)
    np.testing.assert_allclose(m.gradW, 2.0 + g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(m.gradb, g.sum(0), rtol=1e-12)


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


# ------------------------------------------------------------------ criteria
def _probabilities(shape, dtype, seed):
    z = np.random.default_rng(seed).normal(size=shape)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(dtype)


def _log_probabilities(shape, dtype, seed):
    return np.log(_probabilities(shape, np.float64, seed)).astype(dtype)


def _targets(kind, shape, dtype, seed):
    r = np.random.default_rng(seed)
    if kind == "same":
        return r.normal(size=shape).astype(dtype)
    labels = r.integers(0, shape[1], size=shape[0])
    if kind == "labels":
        return labels
    if kind == "onehot":
        return np.eye(shape[1], dtype=dtype)[labels]
    return _probabilities(shape, dtype, seed + 100)  # soft


def _t_labels(target):
    return tensor(target if target.ndim == 1 else target.argmax(axis=1))


@dataclass
class CriterionInfo:
    name: str
    make: Callable
    shapes: list
    target: str  # "same" (regression), "labels", "onehot", "soft"
    input: Callable  # (shape, dtype, seed) -> input
    torch_loss: Callable  # (input tensor, target array) -> torch scalar


CRITERIA = [
    CriterionInfo(
        "MSECriterion",
        MSECriterion,
        [(3, 4), (5, 2), (2, 3, 2)],
        "same",
        make_input,
        lambda x, t: torch.nn.MSELoss(reduction="sum")(x, tensor(t)) / x.shape[0],
    ),
    CriterionInfo(
        "ClassNLLCriterionUnstable_onehot",
        ClassNLLCriterionUnstable,
        [(3, 4), (5, 2), (6, 5)],
        "onehot",
        _probabilities,
        lambda x, t: torch.nn.NLLLoss()(torch.log(x.clamp(1e-15, 1 - 1e-15)), _t_labels(t)),
    ),
    CriterionInfo(
        "ClassNLLCriterionUnstable_labels",
        ClassNLLCriterionUnstable,
        [(3, 4), (5, 2), (6, 5)],
        "labels",
        _probabilities,
        lambda x, t: torch.nn.NLLLoss()(torch.log(x.clamp(1e-15, 1 - 1e-15)), _t_labels(t)),
    ),
    CriterionInfo(
        "ClassNLLCriterion_onehot",
        ClassNLLCriterion,
        [(3, 4), (5, 2), (6, 5)],
        "onehot",
        _log_probabilities,
        lambda x, t: torch.nn.NLLLoss()(x, _t_labels(t)),
    ),
    CriterionInfo(
        "ClassNLLCriterion_labels",
        ClassNLLCriterion,
        [(3, 4), (5, 2), (6, 5)],
        "labels",
        _log_probabilities,
        lambda x, t: torch.nn.NLLLoss()(x, _t_labels(t)),
    ),
    CriterionInfo(
        "CrossEntropyCriterion_labels",
        CrossEntropyCriterion,
        [(3, 4), (5, 2), (6, 5)],
        "labels",
        make_input,
        lambda x, t: torch.nn.CrossEntropyLoss()(x, _t_labels(t)),
    ),
    CriterionInfo(
        "CrossEntropyCriterion_onehot",
        CrossEntropyCriterion,
        [(3, 4), (5, 2), (6, 5)],
        "onehot",
        make_input,
        lambda x, t: torch.nn.CrossEntropyLoss()(x, _t_labels(t)),
    ),
    CriterionInfo(
        "CrossEntropyCriterion_soft",
        CrossEntropyCriterion,
        [(3, 4), (5, 2), (6, 5)],
        "soft",
        make_input,
        lambda x, t: torch.nn.CrossEntropyLoss()(x, tensor(t)),
    ),
]
CRIT_CASES = [(info, shape) for info in CRITERIA for shape in info.shapes]
CRIT_IDS = [f"{info.name}-{'x'.join(map(str, shape))}" for info, shape in CRIT_CASES]


@pytest.mark.parametrize("info,shape", CRIT_CASES, ids=CRIT_IDS)
def test_criterion_gradcheck(info, shape):
    x = info.input(shape, np.float64, 1)
    t = _targets(info.target, shape, np.float64, 2)
    assert nnumpy.gradcheck(info.make(), x, t, atol=1e-6, rtol=1e-4).ok


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("info,shape", CRIT_CASES, ids=CRIT_IDS)
def test_criterion_parity_with_torch(info, shape, dtype):
    x = info.input(shape, dtype, 3)
    t = _targets(info.target, shape, dtype, 4)
    crit = info.make()
    loss = crit.forward(x, t)
    grad = crit.backward(x, t)
    assert crit.output == loss and crit.gradInput is grad
    xt = tensor(x).requires_grad_(True)
    lt = info.torch_loss(xt, t)
    lt.backward()
    assert_close(np.asarray(loss), lt, dtype, f"{info.name} loss")
    assert_close(grad, xt.grad, dtype, f"{info.name} gradInput")


@pytest.mark.parametrize("info", CRITERIA, ids=[c.name for c in CRITERIA])
def test_criterion_dtype_kept(info):
    shape = info.shapes[0]
    for dtype in DTYPES:
        x = info.input(shape, dtype, 0)
        for target_dtype in DTYPES:  # a float64 target (NumPy's default) must not upcast
            t = _targets(info.target, shape, target_dtype, 1)
            crit = info.make()
            assert np.asarray(crit.forward(x, t)).dtype == dtype
            assert crit.backward(x, t).dtype == dtype
    assert repr(info.make()) == f"{info.make().__class__.__name__}()"


def test_mse_is_sum_over_batch_not_element_mean():
    x = np.ones((2, 5))
    t = np.zeros((2, 5))
    assert MSECriterion().forward(x, t) == 5.0  # PyTorch's MSELoss would give 1.0
