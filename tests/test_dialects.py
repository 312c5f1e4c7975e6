"""The seeds' other dialects (issue 7): every snippet of docs/seed-dialects.md
runs, and the aliases give exactly the numbers of the canonical calls."""

import copy
import pathlib
import re
import warnings

import numpy as np
import pytest
from helpers import short_sample_run

import nnumpy
from nnumpy import (
    MSE,
    SGD,
    Adam,
    BatchNorm,
    BatchNorm1d,
    ClassNLLCriterionUnstable,
    CrossEntropy,
    Linear,
    Module,
    Momentum,
    MSECriterion,
    ReLU,
    RMSprop,
    Sequential,
    SoftMax,
)

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "seed-dialects.md"


def doc_snippets():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(doc_snippets())))
def test_doc_snippet_runs(index):
    exec(compile(doc_snippets()[index], f"{DOC.name}[{index}]", "exec"), {})


class SnakeLinear(Module):
    """A seed-000-style module: only the snake_case hooks and accessors."""

    def __init__(self, W, b):
        super().__init__()
        self.W, self.b = W.copy(), b.copy()
        self.gW, self.gb = np.zeros_like(W), np.zeros_like(b)

    def _compute_output(self, input):
        return input @ self.W.T + self.b

    def _compute_input_grad(self, input, output_grad):
        return output_grad @ self.W

    def _update_parameters_grad(self, input, output_grad):
        self.gW += output_grad.T @ input
        self.gb += output_grad.sum(axis=0)

    def zero_grad(self):
        self.gW.fill(0)
        self.gb.fill(0)

    def get_parameters(self):
        return [self.W, self.b]

    def get_parameters_grad(self):
        return [self.gW, self.gb]


class TorchyLinear(Module):
    """A seed-003-style module: forward/backward overridden, parameters()/grad_parameters()."""

    def __init__(self, W, b):
        super().__init__()
        self.W, self.b = W.copy(), b.copy()

    def forward(self, input):
        self.output = input @ self.W.T + self.b
        return self.output

    def backward(self, input, grad_output):
        self.grad_W = grad_output.T @ input
        self.grad_b = grad_output.sum(axis=0)
        return grad_output @ self.W

    def parameters(self):
        return [self.W, self.b]

    def grad_parameters(self):
        return [self.grad_W, self.grad_b]


def _data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, n)


@pytest.mark.parametrize("cls", [SnakeLinear, TorchyLinear])
def test_dialect_module_trains_like_canonical_linear(cls):
    x, y = _data()
    ref_layer = Linear(3, 2, dtype=np.float64, rng=0)
    ours = Sequential(cls(ref_layer.W, ref_layer.b), nnumpy.LogSoftMax())
    ref = Sequential(ref_layer, nnumpy.LogSoftMax())
    crit = nnumpy.ClassNLLCriterion()
    opts = [Adam(ours, lr=0.05), Adam(ref, lr=0.05)]
    for _ in range(20):
        for net, opt in zip((ours, ref), opts, strict=True):
            net.zeroGradParameters()
            out = net.forward(x)
            crit.forward(out, y)
            net.backward(x, crit.backward(out, y))
            opt.step()
    np.testing.assert_array_equal(ours[0].W, ref[0].W)
    np.testing.assert_array_equal(ours[0].b, ref[0].b)
    assert len(ours.getParameters()[0]) == 2


def test_seed000_names_are_the_canonical_operations():
    net = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(4, 2, rng=1))
    for ours, canonical in zip(net.get_parameters(), net.getParameters(), strict=True):
        assert all(a is b for a, b in zip(ours, canonical, strict=True))
    x = np.ones((2, 3), np.float32)
    net.backward(x, np.ones_like(net.forward(x)))
    assert any(np.any(g) for g in net.grad_parameters())
    net.zero_grad()
    assert not any(np.any(g) for layer in net.get_parameters_grad() for g in layer)
    assert net[0]._output is net[0].output
    net._train = False
    assert net.training is False


def test_seed003_flat_parameters_match_and_modes():
    net = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    params, grads = net.parameters(), net.grad_parameters()
    assert [p.shape for p in params] == [g.shape for g in grads] == [(4, 3), (4,), (2, 4), (2,)]
    net.eval()
    assert not net.training and not net[0].training
    net.train()
    assert net[2]._train


class SeedEvalModule(Module):
    """Overrides eval/train like seed 003 (no arguments)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def train(self):
        self.calls.append("train")
        self._train = True

    def eval(self):
        self.calls.append("eval")
        self._train = False


def test_container_honours_a_users_train_and_eval():
    child = SeedEvalModule()
    net = Sequential(child)
    net.eval()
    net.train()
    assert child.calls == ["eval", "train"]


@pytest.mark.parametrize(
    "seed_style, canonical",
    [
        (
            lambda: Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7),
            lambda m: Adam(m, lr=0.01, betas=(0.8, 0.99), eps=1e-7),
        ),
        (lambda: Momentum(lr=0.1, momentum=0.9), lambda m: SGD(m, lr=0.1, momentum=0.9)),
        (lambda: SGD(lr=0.1), lambda m: SGD(m, lr=0.1)),
    ],
)
def test_callable_optimizers_equal_model_bound_ones(seed_style, canonical):
    """Seed 003's optimizers (built without a model) follow the seed's rules;
    where those equal PyTorch's (SGD, Momentum at a constant lr, Adam) the
    numbers agree to rounding. RMSProp and Nadam differ: tests/test_optim_groups.py
    checks every seed 003 optimizer against the seed's own code."""
    x, y = _data(1)
    a = Sequential(Linear(3, 5, dtype=np.float64, rng=3), ReLU(), Linear(5, 2, dtype=np.float64, rng=4))
    b = copy.deepcopy(a)
    opt_a, opt_b = seed_style(), canonical(b)
    crit = MSECriterion()
    target = np.eye(2)[y]
    for _ in range(15):
        for net in (a, b):
            net.zero_grad()
            out = net.forward(x)
            net.backward(x, crit.backward(out, target))
        opt_a(a.parameters(), a.grad_parameters())
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=1e-10, atol=1e-12)


def test_reset_t_restarts_bias_correction():
    w = np.ones(3)
    opt = Adam(lr=0.1)  # seed 003's Adam: t counts the calls from 1
    opt([w], [np.full(3, 0.5)])
    assert opt.t == 2
    opt.reset_t()
    assert opt.t == 1
    before = opt.state[0]["m"].copy()
    opt([w], [np.full(3, 0.5)])
    assert opt.t == 2 and not np.array_equal(before, opt.state[0]["m"])


def test_mse_and_crossentropy_aliases_give_the_same_numbers():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    assert MSE().forward(x, t) == MSECriterion().forward(x, t)
    np.testing.assert_array_equal(MSE().backward(x, t), MSECriterion().backward(x, t))
    p = SoftMax().forward(rng.normal(size=(6, 4)))
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    ce = CrossEntropy()
    expected = -np.mean(np.log(np.clip(p, 1e-9, 1 - 1e-9))[np.arange(6), labels])
    assert np.isclose(ce.forward(p, onehot), expected, rtol=1e-12)
    assert np.isclose(ce.forward(p, labels), expected, rtol=1e-12)
    ref = ClassNLLCriterionUnstable()
    np.testing.assert_allclose(ce.backward(p, onehot), ref.backward(p, onehot), rtol=1e-12)


def test_crossentropy_warns_once_on_logits():
    ce = CrossEntropy()
    logits = np.random.default_rng(0).normal(size=(5, 3)) * 4
    with pytest.warns(UserWarning, match="CrossEntropyCriterion"):
        ce.forward(logits, np.array([0, 1, 2, 0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ce.forward(logits, np.array([0, 1, 2, 0, 1]))  # only once
        CrossEntropy().forward(SoftMax().forward(logits), np.array([0, 1, 2, 0, 1]))  # probabilities: silent


def test_batchnorm_alias_is_batchnorm1d():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    a, b = BatchNorm(3, 1e-5), BatchNorm1d(3, eps=1e-5)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.testing.assert_array_equal(a.running_var, b.running_var)
    assert isinstance(a, BatchNorm1d)


def _seed004_run(optimizer, **kwargs):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = Sequential(Linear(6, 16, rng=0), ReLU(), Linear(16, 2, rng=1), nnumpy.LogSoftMax())
    if not isinstance(optimizer, str):
        optimizer = optimizer(model)
    history = nnumpy.fit(
        model, None, optimizer, (X, y), val_data=(X, y), epochs=3, batch_size=50, verbose=False, **kwargs
    )
    return model, history


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("Vanilla", lambda m: SGD(m, lr=0.05, weight_decay=1e-3)),
        ("MomentumUpdate", lambda m: SGD(m, lr=0.05, momentum=0.9, weight_decay=1e-3)),
        ("AdaGrad", lambda m: nnumpy.Adagrad(m, lr=0.05, weight_decay=1e-3)),
        ("RMSprop", lambda m: RMSprop(m, lr=0.05, weight_decay=1e-3)),
        ("Adam", lambda m: Adam(m, lr=0.05, weight_decay=1e-3)),
    ],
)
def test_seed004_optimizer_names_equal_canonical_optimizers(name, canonical):
    by_name, h_name = _seed004_run(name, lr=0.05, weight_decay=1e-3)
    by_object, h_object = _seed004_run(canonical)
    for a, b in zip(by_name.parameters(), by_object.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert h_name.val_accuracy == h_object.val_accuracy and len(h_name.loss) == 3


def test_seed004_optimizer_name_on_the_command_line(tmp_path):
    ckpt = short_sample_run(tmp_path, "--optimizer", "MomentumUpdate", "--lr", "0.01")
    assert ckpt.optimizer_class == "Momentum"
