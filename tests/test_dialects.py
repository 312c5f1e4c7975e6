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


# ---------------------------------------------------------------- issue 14: the seeds' users
class Seed003Linear(Module):
    """Seed 003's Linear as its notebook writes it: forward/backward overridden,
    W stored (in, out), gradients created (rebound) in backward, parameters() lists."""

    def __init__(self, dim_in, dim_out, bias=True, keepdims=False, rng=0):
        super().__init__()
        self._bias, self._keepdims = bias, keepdims
        stdv = 1 / np.sqrt(dim_in)
        r = np.random.default_rng(rng)
        self.W = r.uniform(-stdv, stdv, size=(dim_in, dim_out))
        if self._bias:
            self.b = r.uniform(-stdv, stdv, size=dim_out)

    def forward(self, input):
        self.output = np.dot(input, self.W)
        self.output += self.b if self._bias else 0
        return self.output

    def backward(self, input, grad_output):
        self.grad_W = np.dot(input.T, grad_output)
        grad_input = np.dot(grad_output, self.W.T)
        if self._bias:
            self.grad_b = np.sum(grad_output, axis=0, keepdims=self._keepdims)
        return grad_input

    def parameters(self):
        return [self.W, self.b] if self._bias else [self.W]

    def grad_parameters(self):
        return [self.grad_W, self.grad_b] if self._bias else [self.grad_W]


def _two_blobs(n=200, seed=3):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(2, 1, (n // 2, 2)), rng.normal(-2, 1, (n // 2, 2))])
    return X, np.array([0] * (n // 2) + [1] * (n // 2))


def test_seed003_module_that_creates_its_gradients_in_backward_trains_in_fit():
    X, y = _two_blobs()
    model = Sequential(Seed003Linear(2, 8, rng=0), ReLU(), Seed003Linear(8, 2, rng=1))
    history = nnumpy.fit(model, None, "adam", (X, y), epochs=5, batch_size=50, lr=0.05, verbose=False)
    assert history.accuracy[-1] > 0.97 and history.loss[-1] < history.loss[0]
    # the same numbers as nnumpy's Linear holding the transposed weights
    reference = Sequential(Linear(2, 8), ReLU(), Linear(8, 2)).to(np.float64)
    seed_style = Sequential(Seed003Linear(2, 8, rng=0), ReLU(), Seed003Linear(8, 2, rng=1))
    for ours, theirs in zip((reference[0], reference[2]), (seed_style[0], seed_style[2]), strict=True):
        ours.W[...], ours.b[...] = theirs.W.T, theirs.b
    for net in (reference, seed_style):
        nnumpy.fit(net, None, nnumpy.SGD(net, lr=0.1), (X, y), epochs=2, batch_size=50, verbose=False)
    np.testing.assert_allclose(reference[0].W, seed_style[0].W.T, rtol=1e-12)


def test_seed003_gradient_of_the_wrong_shape_is_named():
    X, y = _two_blobs()
    model = Sequential(Seed003Linear(2, 3, keepdims=True, rng=0))  # grad_b (1, 3) for b (3,)
    with pytest.raises(ValueError, match=r"gradient of parameter b has shape \(1, 3\), but b has shape \(3,\)"):
        nnumpy.fit(model, None, "sgd", (X, y), epochs=1, verbose=False)
    # a declared module whose accGradParameters rebinds a keepdims gradient: named too
    layer = Linear(2, 3)
    layer.gradb = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"Linear\(2 -> 3\): the gradient of parameter b has shape \(1, 3\)"):
        nnumpy.SGD(layer, lr=0.1).step()


def test_seed003_sequential_layers():
    a, b = Linear(2, 3), ReLU()
    net = Sequential(a, b)
    assert net.layers == (a, b) and net.layers[0] is a
    net.add(Linear(3, 1))
    assert len(net.layers) == 3


def test_seed000_dropout_mask_is_the_binary_keep_mask():
    drop = nnumpy.Dropout(0.25, rng=0)
    x = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    out = drop.forward(x)
    mask = drop.mask
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_allclose(out, x * mask / (1 - 0.25), rtol=1e-6)  # seed 000: input * mask * (1 / (1 - p))
    g = np.ones_like(x)
    np.testing.assert_allclose(drop.backward(x, g), mask / (1 - 0.25), rtol=1e-6)
    drop.evaluate()
    drop.forward(x)
    assert drop.mask is None
    channel = nnumpy.Dropout2d(0.5, rng=0)
    channel.forward(np.ones((2, 3, 4, 4), np.float32))
    assert channel.mask.shape == (2, 3, 1, 1) and set(np.unique(channel.mask)) <= {0.0, 1.0}


def test_seed000_assigning_a_float64_weight_makes_its_gradient_float64():
    layer = Linear(3, 2)
    layer.W = np.ones((2, 3))  # float64, as the seeds' users assign
    optimizer = SGD(layer, lr=0.1)
    optimizer.zero_grad()
    x = np.ones((4, 3))
    layer.backward(x, np.ones_like(layer.forward(x)))
    assert layer.gradW.dtype == np.float64 and layer.getGradParameters()[0].dtype == np.float64
    np.testing.assert_array_equal(layer.gradW, np.full((2, 3), 4.0))
    # a gradient accumulated in float32 before the assignment keeps its values
    layer = Linear(3, 2)
    x32 = x.astype(np.float32)
    layer.backward(x32, np.ones_like(layer.forward(x32)))
    before = layer.gradW.copy()
    layer.W = layer.W.astype(np.float64)
    assert layer.getGradParameters()[0].dtype == np.float64
    np.testing.assert_array_equal(layer.gradW, before)


# seed 004's one test cell (In [141]) as it stands (one comment shortened), with CNN from nnumpy.compat.seed004
SEED004_TEST_CELL = """
NUM_EXAMPLES = 2
NUM_CHANNELS = 3
NUM_FILTERS = 3
INPUT_HEIGHT = 4
INPUT_WIDTH =  4
FILTER_HEIGHT = 4
FILTER_WIDTH = 4
STRIDE = 2
PAD = 1

x_shape = (NUM_EXAMPLES, NUM_CHANNELS, INPUT_HEIGHT, INPUT_WIDTH) # num_examples, depth(channels), height, width
w_shape = (NUM_FILTERS, NUM_CHANNELS, FILTER_HEIGHT, FILTER_WIDTH) # num_filters, depth, kernel_height, kernel_width
b_shape = (NUM_FILTERS, 1)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=np.prod(b_shape)).reshape(b_shape)

cnn = CNN()
out = cnn.forward(x, w, b, STRIDE, PAD)
dout = np.ones_like(out)
dX, dW, db = cnn.backward(dout)
"""


def test_seed004_test_cell_runs_with_the_mapping_and_matches_torch():
    import torch

    from nnumpy.compat import seed004

    scope = {"np": np, "CNN": seed004.CNN}
    exec(SEED004_TEST_CELL, scope)
    x = torch.tensor(scope["x"], requires_grad=True)
    w = torch.tensor(scope["w"], requires_grad=True)
    b = torch.tensor(scope["b"][:, 0], requires_grad=True)
    out = torch.nn.functional.conv2d(x, w, b, stride=2, padding=1)
    out.backward(torch.ones_like(out))
    assert scope["out"].shape == (2, 3, 2, 2) and scope["dX"].shape == (2, 3, 4, 4) and scope["db"].shape == (3, 1)
    np.testing.assert_allclose(scope["out"], out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(scope["dX"], x.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scope["dW"], w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(scope["db"][:, 0], b.grad.numpy(), rtol=1e-12)
    # the mapping: nnumpy.Conv2d gives the same numbers
    conv = nnumpy.Conv2d(3, 3, 4, stride=2, padding=1).to(np.float64)
    weight, bias = conv.parameters()
    weight[...], bias[...] = scope["w"], scope["b"][:, 0]
    np.testing.assert_allclose(conv.forward(scope["x"]), scope["out"], rtol=1e-12)


@pytest.mark.parametrize("shape, size, stride", [((2, 3, 4, 4), 2, 2), ((2, 2, 6, 4), 2, 2), ((1, 2, 5, 5), 3, 1)])
def test_seed004_maxpool_matches_torch(shape, size, stride):
    import torch

    from nnumpy.compat import seed004

    X = np.random.default_rng(0).normal(size=shape)
    out, cache = seed004.maxpool_forward(X, size, stride)
    dout = np.random.default_rng(1).normal(size=out.shape)
    dX = seed004.maxpool_backward(dout, cache)
    xt = torch.tensor(X, requires_grad=True)
    ref = torch.nn.functional.max_pool2d(xt, size, stride)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy())
    np.testing.assert_allclose(dX, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="Invalid output dimension"):
        seed004.maxpool_forward(np.zeros((1, 1, 5, 5)), 2, 2)


def test_seed004_functional_optimizers_equal_nnumpy_optimizers():
    from nnumpy.compat import seed004

    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]

    def run(canonical, seed_step):
        layer = Linear(4, 3, bias=False).to(np.float64)
        start = layer.W.copy()
        optimizer = canonical(layer)
        for g in grads:
            layer.gradW[...] = g
            optimizer.step()
        x, state = start.copy(), {}
        for g in grads:
            x = seed_step(x, g, state)
        return layer.W, x

    def momentum(x, g, s):
        x, s["v"] = seed004.MomentumUpdate(x, g, s.get("v", 0.0), 0.1, 0.9)
        return x

    def adagrad(x, g, s):
        return seed004.AdaGrad(x, g, 0.1, s.setdefault("cache", np.zeros_like(x)), 1e-5)[0]

    def rmsprop(x, g, s):
        x, s["cache"] = seed004.RMSprop(x, g, 0.1, s.get("cache", np.zeros_like(x)), 1e-5, 0.99)
        return x

    cases = [
        (lambda m: SGD(m, lr=0.1), lambda x, g, s: seed004.VanillaUpdate(x, g, 0.1)),
        (lambda m: SGD(m, lr=0.1, momentum=0.9), momentum),
        (lambda m: nnumpy.Adagrad(m, lr=0.1, eps=1e-5), adagrad),
        (lambda m: RMSprop(m, lr=0.1, alpha=0.99, eps=1e-5), rmsprop),
    ]
    for canonical, seed_step in cases:
        ours, theirs = run(canonical, seed_step)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    # seed 004's Adam has no bias correction: x -= lr * m / (sqrt(v) + eps); t is unused
    x, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    x, m, v = seed004.Adam(x, np.full(3, 2.0), 0.01, m, v, 0, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(m, 0.2) and np.testing.assert_allclose(v, 0.004)
    np.testing.assert_allclose(x, 1 - 0.01 * 0.2 / (np.sqrt(0.004) + 1e-8))
