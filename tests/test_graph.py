"""Graph (nngraph's gModule): building, running and back-propagating any DAG
(30 seeded random DAGs against the same computation in PyTorch are entries of
the one table, tests/module_table.py; here: that they cover sharing, fan-out
and every kind of node); shared modules
(tied weights) accumulating over their uses with per-use state; names and
state_dict keys; the real results (a ResNet basic block as Residual and as
Graph giving identical numbers and PyTorch's, a U-Net-style skip, a siamese
pair with tied weights); the error contract."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from module_table import TorchLeaves as Torch
from module_table import random_dag
from test_containers import Lookup, Spy, arr, flat

import nnumpy as nn
from nnumpy import (
    CAddTable,
    CMulTable,
    ConcatTable,
    Conv2d,
    CSubTable,
    Graph,
    Input,
    JoinTable,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from nnumpy.blocks import basic_block, basic_block_graph
from nnumpy.interop import load_torch_state_dict

torch.set_num_threads(1)
N = 3


def to_torch(x):
    if isinstance(x, (tuple, list)):
        return tuple(to_torch(v) for v in x)
    return torch.tensor(x, requires_grad=x.dtype.kind == "f")


def _compare(name, net, x, reference):
    """Forward, backward with a random gradient; the same in torch via ``reference(t, tx)``."""
    out = net.forward(x)
    g = tuple(arr(*o.shape, seed=9 + i, dtype=o.dtype) for i, o in enumerate(flat(out)))
    g = g if isinstance(out, tuple) else g[0]
    net.zeroGradParameters()
    gin = net.backward(x, g)
    t = Torch()
    tx = to_torch(x)
    tout = reference(t, tx)
    for i, (a, b) in enumerate(zip(flat(out), flat(tout), strict=True)):
        assert_close(a, b, a.dtype, f"{name} output {i}")
    torch.autograd.backward(flat(tout), [torch.tensor(v) for v in flat(g)])
    for i, (a, b) in enumerate(zip(flat(gin), flat(tx), strict=True)):
        assert_close(a, b.grad, a.dtype, f"{name} gradInput {i}")
    ours = {id(p): grad for p, grad in net.parameter_pairs()}
    assert set(ours) == set(t.leaves)
    for key, (array, leaf) in t.leaves.items():
        assert_close(ours[key], leaf.grad, array.dtype, f"{name} gradient of a {array.shape} parameter")


# ------------------------------------------------------------------ basics
def test_the_issue_example():
    x = Input()
    proj = Linear(8, 8, rng=0)
    h = proj(x)
    y = CAddTable()(h, x)
    net = Graph(x, y)
    data = arr(N, 8, dtype=np.float32)
    assert_close(net.forward(data), data @ proj.W.T + proj.b + data, np.float32, "forward")
    assert nn.gradcheck(net, arr(N, 8)).ok
    _compare("issue", net, data, lambda t, tx: t.linear(proj, tx) + tx)


def test_several_inputs_and_outputs():
    x1, x2 = Input(), Input(name="b")
    a, b = Linear(4, 3, rng=0), Linear(5, 3, rng=1)
    h1, h2 = Tanh()(a(x1)), b(x2)
    y1 = CMulTable()(h1, h2)
    y2 = JoinTable(1)(h1, x2)  # a node feeding two others, an input feeding two others
    net = Graph([x1, x2], [y1, y2])
    x = (arr(N, 4, dtype=np.float32), arr(N, 5, seed=1, dtype=np.float32))
    out = net.forward(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(N, 3), (N, 8)]
    assert nn.gradcheck(net, (arr(N, 4), arr(N, 5, seed=1))).ok

    def reference(t, tx):
        th1 = torch.tanh(t.linear(a, tx[0]))
        return th1 * t.linear(b, tx[1]), torch.cat([th1, tx[1]], 1)

    _compare("two-in-two-out", net, x, reference)
    assert "(b): Input" in repr(net) and "-> (cmultable_0, jointable_0)" in repr(net)


def test_list_of_one_means_a_tuple_of_one():
    x = Input()
    net = Graph([x], [Tanh()(x)])
    out = net.forward((arr(N, 2),))
    assert isinstance(out, tuple) and len(out) == 1
    assert isinstance(net.backward((arr(N, 2),), (np.ones((N, 2)),)), tuple)


def test_outputs_that_are_inputs_or_repeated_and_nodes_feeding_outputs_and_nodes():
    x = Input()
    h = Tanh()(x)
    y = Sigmoid()(h)
    net = Graph(x, [h, y, x, h])
    data = arr(N, 4)
    out = net.forward(data)
    assert out[2] is data and out[0] is out[3]
    assert nn.gradcheck(net, data).ok


def test_module_on_a_list_of_nodes_and_node_indexing():
    x = Input()
    pair = ConcatTable(Linear(4, 3, rng=0), Tanh())(x)
    first, second = pair[0], pair[-1]  # SelectTable nodes
    y = JoinTable(1)([first, second])  # a list of nodes is one tuple argument
    net = Graph(x, y)
    assert nn.gradcheck(net, arr(N, 4)).ok
    assert net.forward(arr(N, 4)).shape == (N, 7)
    with pytest.raises(TypeError, match=r"cannot be unpacked or iterated; take its entries with node\[i\]$"):
        a, b = pair


def test_nested_graph_used_twice():
    u = Input()
    inner = Graph(u, Tanh()(Linear(4, 4, rng=0)(u)))
    x = Input()
    y = CAddTable()(inner(x), inner(inner(x)))  # three uses of one graph (and its Linear)
    net = Graph(x, y)
    assert [name for name, _ in net.children()] == ["graph_0", "caddtable_0"]
    assert list(net.state_dict()) == ["graph_0.linear_0.W", "graph_0.linear_0.b"]
    assert nn.gradcheck(net, arr(N, 4)).ok
    lin = inner.children()[0][1]

    def reference(t, tx):
        f = lambda v: torch.tanh(t.linear(lin, v))  # noqa: E731
        return f(tx) + f(f(tx))

    _compare("nested", net, arr(N, 4, dtype=np.float32), reference)


def test_inside_sequential_with_skip_input_grad():
    x = Input()
    lin = Linear(4, 4, rng=0)
    net = Sequential(Tanh(), Graph(x, CAddTable()(ReLU()(x), lin(x))))
    data = arr(N, 4, dtype=np.float32)
    g = np.ones((N, 4), np.float32)
    net.forward(data)
    net.zeroGradParameters()
    full = net.backward(data, g)
    expected = lin.gradW.copy(), lin.gradb.copy()
    net.skip_input_grad = True
    net.forward(data)
    net.zeroGradParameters()
    assert net.backward(data, g) is None and full is not None
    assert np.array_equal(lin.gradW, expected[0]) and np.array_equal(lin.gradb, expected[1])


def test_unreached_input_gets_none_and_integer_inputs():
    idx, x = Input(), Input()
    spy = Spy()
    lookup = Lookup(5, 4)
    y = CAddTable()(lookup(spy(idx)), Linear(4, 4, rng=0)(x))
    net = Graph([idx, x], y)
    data = (np.array([0, 1, 1]), arr(N, 4, dtype=np.float32))
    net.forward(data)
    gin = net.backward(data, np.ones((N, 4), np.float32))
    assert gin[0] is None and gin[1].shape == (N, 4) and spy.calls == 0
    assert nn.gradcheck(net, data).checked == ["input[1]", "lookup_0.weight", "linear_0.W", "linear_0.b"]


def test_deep_copy_between_forward_and_backward():
    x = Input()
    lin = Linear(4, 4, rng=0)
    net = Graph(x, Tanh()(lin(Tanh()(lin(x)))))
    data = arr(N, 4)
    net.forward(data)
    clone = copy.deepcopy(net)
    g = np.ones((N, 4))
    assert np.array_equal(net.backward(data, g), clone.backward(data, g))


# ------------------------------------------------------------------ names and state_dict
def test_names_and_state_dict_keys():
    x = Input()
    a = Linear(4, 4, rng=0)
    h = a(x, name="proj")
    h = Linear(4, 4, rng=1)(Tanh()(h))
    h = a(h)  # a second use of proj
    h = Linear(4, 2, rng=2)(h)
    net = Graph(x, h)
    assert [name for name, _ in net.children()] == ["proj", "tanh_0", "linear_0", "linear_1"]
    assert list(net.state_dict()) == [f"{n}.{p}" for n in ("proj", "linear_0", "linear_1") for p in "Wb"]
    assert "(proj@1): Linear, shared with proj <- linear_0" in repr(net)
    # round trip into the same architecture built afresh
    other = Graph(x, h)
    other.load_state_dict({k: v + 1 for k, v in net.state_dict().items()})
    assert np.array_equal(other.state_dict()["proj.W"], net.state_dict()["proj.W"])  # same modules
    assert np.array_equal(a.W, net.state_dict()["proj.W"])


def test_default_names_skip_given_names():
    x = Input(name="input_1")
    h = Tanh()(x, name="tanh_0")
    net = Graph(x, Tanh()(h))
    assert "(input_1): Input" in repr(net) and "(tanh_1): Tanh() <- tanh_0" in repr(net)


class TorchBlock(torch.nn.Module):
    """torchvision's BasicBlock, for the state_dict mapping and the parity."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


# ------------------------------------------------------------------ a ResNet basic block
@pytest.mark.parametrize("cin, cout, stride", [(3, 3, 1), (2, 4, 2)])
def test_resnet_block_residual_and_graph_identical_and_torch(cin, cout, stride):
    a = basic_block(cin, cout, stride, rng=0)
    b = basic_block_graph(cin, cout, stride, rng=0)
    x = arr(2, cin, 6, 6, dtype=np.float32)
    ya, yb = a.forward(x), b.forward(x)
    g = arr(*ya.shape, seed=1, dtype=np.float32)
    a.zeroGradParameters()
    b.zeroGradParameters()
    ga, gb = a.backward(x, g), b.backward(x, g)
    assert np.array_equal(ya, yb) and np.array_equal(ga, gb)
    pairs_a, pairs_b = a.parameter_pairs(), b.parameter_pairs()
    assert len(pairs_a) == len(pairs_b) == (9 if stride != 1 else 6)
    for (pa, da), (pb, db) in zip(pairs_a, pairs_b, strict=True):
        assert np.array_equal(pa, pb) and np.array_equal(da, db)
    for (ka, va), (kb, vb) in zip(a.named_buffers(), b.named_buffers(), strict=True):
        assert np.array_equal(va, vb), (ka, kb)

    # PyTorch's block with the same weights, loaded through the state_dict mapping
    ref = TorchBlock(cin, cout, stride)
    for net in (a, b):
        load_torch_state_dict(net, ref.state_dict())
    tx = torch.tensor(x, requires_grad=True)
    tout = ref(tx)
    tout.backward(torch.tensor(g))
    for net in (a, b):
        out = net.forward(x)
        net.zeroGradParameters()
        gin = net.backward(x, g)
        assert_close(out, tout, np.float32, "block output")
        assert_close(gin, tx.grad, np.float32, "block gradInput")
        grads = [d for _, d in net.parameter_pairs()]
        for ours, (name, p) in zip(grads, ref.named_parameters(), strict=True):
            assert_close(ours, p.grad, np.float32, f"block {name}.grad")
    assert np.array_equal(a.forward(x), b.forward(x))


def test_resnet_block_gradcheck():
    # one use of the shared ReLU restores the other's state: checked by finite differences
    assert nn.gradcheck(basic_block_graph(2, 3, 2, rng=0), arr(2, 2, 4, 4)).ok
    assert nn.gradcheck(basic_block(2, 2, 1, rng=0), arr(2, 2, 4, 4)).ok


def test_resnet_block_evaluate_mode_matches_torch():
    b = basic_block_graph(2, 4, 2, rng=0)
    ref = TorchBlock(2, 4, 2)
    load_torch_state_dict(b, ref.state_dict())
    for _ in range(2):
        x = arr(4, 2, 6, 6, seed=_, dtype=np.float32)
        b.forward(x)
        ref(torch.tensor(x))
    ours, theirs = dict(b.named_buffers()), dict(ref.named_buffers())
    for name in ("bn1", "bn2", "downsample.1"):
        for stat in ("running_mean", "running_var"):
            assert_close(ours[f"{name}.{stat}"], theirs[f"{name}.{stat}"], np.float32, f"{name}.{stat}")
    b.eval(), ref.eval()
    x = arr(2, 2, 6, 6, seed=5, dtype=np.float32)
    assert_close(b.forward(x), ref(torch.tensor(x)), np.float32, "evaluate mode")


# ------------------------------------------------------------------ a U-Net-style skip
def unet_skip(rng=0):
    """enc = relu(conv(x)); dec = relu(conv(relu(conv(enc)))); y = conv1x1(cat(dec, enc))."""
    r = np.random.default_rng(rng)
    x = Input()
    enc = ReLU()(Conv2d(2, 4, 3, padding=1, rng=r)(x, name="enc"))
    mid = ReLU()(Conv2d(4, 4, 3, padding=1, rng=r)(enc, name="down"))
    dec = ReLU()(Conv2d(4, 4, 3, padding=1, rng=r)(mid, name="up"))
    y = Conv2d(8, 2, 1, padding=0, rng=r)(JoinTable(1)(dec, enc), name="head")
    return Graph(x, y)


def test_unet_skip_with_join_table():
    net = unet_skip()
    assert nn.gradcheck(net, arr(1, 2, 3, 3)).ok
    convs = {name: m for name, m in net.children() if isinstance(m, Conv2d)}
    assert list(convs) == ["enc", "down", "up", "head"]

    def conv(name, v):
        m = convs[name]
        return F.conv2d(v, t.p(m.W), t.p(m.b), padding=m.kernel_size[0] // 2)

    t = None

    def reference(tt, tx):
        nonlocal t
        t = tt
        e = torch.relu(conv("enc", tx))
        d = torch.relu(conv("up", torch.relu(conv("down", e))))
        return conv("head", torch.cat([d, e], 1))

    _compare("unet", net, arr(2, 2, 5, 5, dtype=np.float32), reference)


# ------------------------------------------------------------------ tied weights
def test_siamese_pair_with_tied_weights():
    encoder = Sequential(Linear(4, 5, rng=0), Tanh(), Linear(5, 3, rng=1))
    a, b = Input(), Input()
    distance = CSubTable()(encoder(a), encoder(b))  # one encoder, two uses
    net = Graph([a, b], CMulTable()(distance, distance))
    assert len(net.parameters()) == 4
    x = (arr(N, 4, dtype=np.float32), arr(N, 4, seed=1, dtype=np.float32))
    assert nn.gradcheck(net, (arr(N, 4), arr(N, 4, seed=1))).ok

    def reference(t, tx):
        enc = lambda v: t.linear(encoder[2], torch.tanh(t.linear(encoder[0], v)))  # noqa: E731
        d = enc(tx[0]) - enc(tx[1])
        return d * d

    _compare("siamese", net, x, reference)


# ------------------------------------------------------------------ random DAGs (the table's entries)
def test_random_dags_cover_sharing_fan_out_and_every_kind():
    kinds, shared, fan_out = set(), 0, 0
    for seed in range(30):
        net, _, _ = random_dag(seed)
        modules = [step[0] for step in net._steps]
        kinds.update(type(m).__name__ for m in modules)
        shared += len(modules) - len({id(m) for m in modules})
        parents = [p for step in net._steps for p in step[1]]
        fan_out += len(parents) - len(set(parents))
    assert kinds >= {"Linear", "Tanh", "Sigmoid", "ReLU", "CAddTable", "CMulTable", "JoinTable", "Residual"}
    assert shared >= 5 and fan_out >= 10


# ------------------------------------------------------------------ the error contract
def test_graph_errors():
    x, y = Input(), Input()
    h = Linear(4, 4, rng=0)(x)
    with pytest.raises(ValueError, match=r"^Graph: the outputs do not depend on input 1 \('input_1'\)$"):
        Graph([x, y], h)
    with pytest.raises(
        ValueError,
        match=r"^Graph: node 'caddtable_0' depends on an Input that is not among this graph's inputs "
        r"\(a node from another graph\?\); inputs are \['input_0'\]$",
    ):
        Graph(x, CAddTable()(h, y))
    with pytest.raises(ValueError, match=r"^Graph: an output is an Input that is not among this graph's inputs"):
        Graph(x, [h, y])
    with pytest.raises(
        TypeError, match=r"^Graph: inputs must be nodes made by nnumpy.Input\(\), got Node\(Linear\(4 -> 4\)\)$"
    ):
        Graph(h, h)
    with pytest.raises(TypeError, match=r"^Graph: outputs must be graph nodes, got ndarray$"):
        Graph(x, np.zeros(2))
    with pytest.raises(ValueError, match=r"^Graph: an Input is listed twice in inputs$"):
        Graph([x, x], h)
    with pytest.raises(ValueError, match=r"^Graph: expected at least one node in outputs, got none$"):
        Graph(x, [])
    with pytest.raises(ValueError, match=r"^Graph: the name 'same' is given to two nodes$"):
        Graph(x, Tanh()(Tanh()(x, name="same"), name="same"))
    with pytest.raises(ValueError, match=r"^a node's name must be a non-empty string without '\.', got 'a\.b'$"):
        Tanh()(x, name="a.b")
    with pytest.raises(TypeError, match=r"^CAddTable\(\): cannot mix graph nodes and ndarray in one call"):
        CAddTable()(x, np.zeros(2))


def test_graph_run_errors():
    x1, x2 = Input(), Input()
    net = Graph([x1, x2], CAddTable()(Linear(4, 4, rng=0)(x1, name="proj"), x2))
    a = arr(N, 4, dtype=np.float32)
    with pytest.raises(
        TypeError, match=r"^Graph: expected a tuple of 2 inputs \['input_0', 'input_1'\], got array\(3, 4\)$"
    ):
        net.forward(a)
    with pytest.raises(
        ValueError, match=r"^Graph: expected a tuple of 2 inputs \['input_0', 'input_1'\], got 1: \(array\(3, 4\),\)$"
    ):
        net.forward((a,))
    with pytest.raises(
        ValueError,
        match=r"^Graph node 'proj' Linear: Linear\(4 -> 4\): "
        r"expected input of shape \(N, 4\) or \(\*, 4\), got \(3, 5\)$",
    ):
        net.forward((arr(N, 5, dtype=np.float32), a))
    with pytest.raises(RuntimeError, match=r"^Graph: backward called before forward$"):
        net.backward((a, a), a)
    net.forward((a, a))
    with pytest.raises(ValueError, match=r"^Graph: expected gradOutput of shape \(3, 4\).*got \(3, 5\)$"):
        net.backward((a, a), arr(N, 5, dtype=np.float32))
    two = Graph(x1, [Tanh()(x1), Sigmoid()(x1)])
    two.forward(a)
    with pytest.raises(
        ValueError,
        match=r"^Graph: expected gradOutput of structure \(array\(3, 4\), array\(3, 4\)\) \(the output's\), "
        r"got array\(3, 4\)$",
    ):
        two.backward(a, a)


class BadGrad(nn.Module):
    """Takes a pair, returns one array as its gradInput (a protocol violation)."""

    def updateOutput(self, input):
        self.output = input[0] + input[1]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput
        return gradOutput


def test_graph_names_a_module_whose_grad_input_has_the_wrong_structure():
    x = Input()
    net = Graph(x, BadGrad()(x, Tanh()(x), name="bad"))
    a = arr(N, 4)
    net.forward(a)
    with pytest.raises(
        ValueError, match=r"^Graph node 'bad': BadGrad\(\) took a tuple of 2 but returned gradInput array\(3, 4\)"
    ):
        net.backward(a, a)


@pytest.mark.parametrize("keep_columns", [False, True])
def test_shared_conv_and_batchnorm_keep_per_use_state(keep_columns):
    # a convolution keeps its im2col columns and BatchNorm its normalised input for backward:
    # each use must get its own back (small columns are kept by default; here both ways)
    with nn.kernels.tuning(keep_columns_bytes=1 << 30 if keep_columns else 0):
        _shared_conv_and_batchnorm()


def _shared_conv_and_batchnorm():
    conv = Conv2d(2, 2, 3, padding=1, bias=False, rng=0)  # (a bias before BatchNorm has zero gradient)
    bn = nn.BatchNorm2d(2)
    x = Input()
    h = ReLU()(bn(conv(x)))
    y = CAddTable()(bn(conv(h)), x)  # conv and bn used twice, on different inputs
    net = Graph(x, y)
    data = arr(2, 2, 5, 5, dtype=np.float32)
    assert nn.gradcheck(net, arr(2, 2, 4, 4)).ok

    def reference(t, tx):
        def block(v):
            c = F.conv2d(v, t.p(conv.W), padding=1)
            return F.batch_norm(c, None, None, t.p(bn.weight), t.p(bn.bias), training=True, eps=bn.eps)

        return block(torch.relu(block(tx))) + tx

    _compare("shared conv", net, data, reference)


def test_fit_trains_a_graph():
    r = np.random.default_rng(0)
    X = r.normal(size=(256, 4)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # needs the hidden layers
    x = Input()
    h = ReLU()(Linear(4, 16, rng=0)(x))
    h = CAddTable()(h, ReLU()(Linear(16, 16, rng=1)(h)))
    net = Graph(x, nn.LogSoftMax()(Linear(16, 2, rng=2)(h)))
    history = nn.fit(net, nn.ClassNLLCriterion(), "adam", (X, y), epochs=8, batch_size=32, verbose=False, lr=1e-2)
    losses = history.to_dict()["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_none_beside_nodes_is_a_clear_error():
    # a None argument used to pass the mixing check and crash later in Graph(...)
    x = nn.Input()
    with pytest.raises(TypeError, match="cannot mix graph nodes and NoneType"):
        nn.CAddTable()(x, None)
