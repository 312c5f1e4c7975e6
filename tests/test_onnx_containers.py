"""ONNX export of the containers and Graph (issue 15): exported, checked,
run in onnxruntime at two batch sizes and compared with nnumpy's forward."""

import numpy as np
import onnx  # noqa: F401  (a test dependency: a missing one fails, not skips)
import onnxruntime  # noqa: F401
import pytest
from onnx_common import check_onnx  # noqa: E402

import nnumpy as nn
from nnumpy.blocks import basic_block, basic_block_graph


def data(*shape, seed=0):
    def make(batch):
        return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)

    return make


def test_residual_identity_and_shortcut():
    nn.manual_seed(0)
    check_onnx(nn.Residual(nn.Sequential(nn.Linear(5, 5), nn.Tanh())), data(5), opsets=(13, 18, 21))
    check_onnx(nn.Sequential(nn.Residual(nn.Linear(5, 3), nn.Linear(5, 3, bias=False)), nn.ReLU()), data(5))


def test_concat_table_and_caddtable():
    nn.manual_seed(0)
    model = nn.Sequential(nn.ConcatTable(nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)),
                          nn.CAddTable())
    check_onnx(model, data(4))


def test_concat_table_gives_several_outputs():
    nn.manual_seed(0)
    proto = check_onnx(nn.ConcatTable(nn.Linear(4, 3), nn.Tanh()), data(4), output_name=["a", "b"])
    assert [o.name for o in proto.graph.output] == ["a", "b"]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_parallel_table_csub_cmul():
    nn.manual_seed(0)

    def pair(batch):
        return data(4, seed=1)(batch), data(4, seed=2)(batch)

    check_onnx(nn.Sequential(nn.ParallelTable(nn.Linear(4, 2), nn.Linear(4, 2)), nn.CSubTable()), pair)
    check_onnx(nn.Sequential(nn.ParallelTable(nn.Sigmoid(), nn.Linear(4, 4)), nn.CMulTable()), pair)


def test_cadd_cmul_broadcast_and_three_inputs():
    def triple(batch):
        return data(3, 4, seed=1)(batch), data(1, 4, seed=2)(batch), data(3, 1, seed=3)(batch)

    check_onnx(nn.CAddTable(), triple)
    check_onnx(nn.CMulTable(), triple)


def test_join_split_select():
    nn.manual_seed(0)
    model = nn.Sequential(nn.SplitTable(1), nn.ConcatTable(nn.SelectTable(0), nn.SelectTable(-1)), nn.JoinTable(1))
    check_onnx(model, data(3, 4))
    check_onnx(nn.SplitTable(-1), data(3, 2))  # a tuple of two outputs, the last axis removed
    check_onnx(nn.Sequential(nn.SplitTable(1), nn.SelectTable(1)), data(5, 2))
    check_onnx(nn.SplitTable(1), data(1, 4))  # one slice: a tuple of one


def test_concat_branches():
    nn.manual_seed(0)
    model = nn.Concat(1, nn.Conv2d(2, 3, 3, padding=1), nn.Sequential(nn.Conv2d(2, 1, 1), nn.ReLU()))
    check_onnx(model, data(2, 5, 5))
    check_onnx(nn.Concat(-1, nn.Linear(4, 2), nn.Linear(4, 3)), data(4))


def test_graph_with_shared_module_and_names():
    nn.manual_seed(0)
    x = nn.Input()
    shared = nn.Linear(6, 6)
    h = nn.ReLU()(shared(x, name="proj"))
    y = nn.CAddTable()(shared(h), x)
    check_onnx(nn.Graph(x, y), data(6))


def test_graph_several_inputs_and_outputs():
    nn.manual_seed(0)
    a, b = nn.Input("a"), nn.Input("b")
    ha = nn.Linear(4, 5)(a)
    hb = nn.Tanh()(nn.Linear(3, 5)(b))
    s = nn.CAddTable()(ha, hb)
    m = nn.CMulTable()(s, hb)
    net = nn.Graph([a, b], [s, nn.JoinTable(1)(m, a)])

    def pair(batch):
        return data(4, seed=1)(batch), data(3, seed=2)(batch)

    proto = check_onnx(net, pair, opsets=(13, 18))
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    assert len(proto.graph.output) == 2


def test_graph_tuple_node_and_indexing():
    nn.manual_seed(0)
    x = nn.Input()
    parts = nn.SplitTable(1)(nn.Unflatten(1, (2, 3))(nn.Linear(4, 6)(x)))
    y = nn.CAddTable()(parts[0], parts[1])
    check_onnx(nn.Graph(x, y), data(4))


def test_graph_output_is_input_and_repeated():
    x = nn.Input()
    net = nn.Graph(x, [x, nn.ReLU()(x), x])
    proto = check_onnx(net, data(3))
    assert len(proto.graph.output) == 3


def test_resnet_blocks_export():
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    for block in (basic_block(3, 4, stride=2, rng=0), basic_block_graph(3, 4, stride=2, rng=0)):
        for _, m in block.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean[...] = rng.normal(size=m.num_features)
                m.running_var[...] = rng.uniform(0.5, 2, size=m.num_features)
        check_onnx(block, data(3, 6, 6))


def test_bad_io_names_and_dynamic_axes():
    export = nn.onnx.export
    x = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"dynamic_axes names \['inptu'\], which are not inputs"):
        export(nn.ReLU(), x, dynamic_axes={"inptu": {0: "N"}})
    with pytest.raises(ValueError, match=r"dynamic_axes\['input'\] names axis 2"):
        export(nn.ReLU(), x, dynamic_axes={"input": {2: "T"}})
    with pytest.raises(ValueError, match="expected 2 output names"):
        export(nn.ConcatTable(nn.ReLU(), nn.Tanh()), x, output_name=["only_one"])
    proto = export(nn.ConcatTable(nn.ReLU(), nn.Tanh()), x, output_name="y")
    assert [o.name for o in proto.graph.output] == ["y_0", "y_1"]


def random_graph(seed):
    """A random DAG over feature vectors of width 4: unary modules, sums,
    products, joins followed by a projection back to 4, splits and selects."""
    rng = np.random.default_rng(seed)
    inputs = [nn.Input(f"x{i}") for i in range(int(rng.integers(1, 3)))]
    nodes = list(inputs)
    for _ in range(int(rng.integers(3, 9))):
        a, b = (nodes[int(i)] for i in rng.integers(len(nodes), size=2))
        kind = int(rng.integers(6))
        if kind == 0:
            node = [nn.Linear(4, 4), nn.Tanh(), nn.GELU(), nn.LayerNorm(4)][int(rng.integers(4))](a)
        elif kind == 1:
            node = nn.CAddTable()(a, b)
        elif kind == 2:
            node = nn.CMulTable()(a, nn.Sigmoid()(b))
        elif kind == 3:
            node = nn.Linear(8, 4)(nn.JoinTable(1)(a, b))
        elif kind == 4:
            halves = nn.SplitTable(1)(nn.Unflatten(1, (2, 2))(a))  # (N, 2, 2) -> two (N, 2)
            node = nn.JoinTable(1)(nn.CSubTable()(halves[1], halves[0]), halves[0])
        else:
            node = nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))(a)
        nodes.append(node)
    outputs = [nodes[-1]] + ([nodes[-2]] if rng.random() < 0.5 else [])
    used = set()
    stack = list(outputs)
    while stack:
        n = stack.pop()
        if id(n) not in used:
            used.add(id(n))
            stack.extend(n.parents)
    inputs = [x for x in inputs if id(x) in used]
    return nn.Graph(inputs, outputs), len(inputs)


def test_random_graphs():
    used = set()
    for seed in range(30):
        nn.manual_seed(seed)
        net, n_inputs = random_graph(seed)
        used |= {type(m).__name__ for _, m in net.named_modules()}

        def inputs(batch, n=n_inputs, seed=seed):  # the graph takes a tuple (built with a list of inputs)
            return tuple(data(4, seed=seed + i)(batch) for i in range(n))

        check_onnx(net, inputs)
    assert {"CAddTable", "CMulTable", "JoinTable", "SplitTable", "SelectTable", "Residual", "LayerNorm"} <= used


def test_saved_graph_and_containers_export_from_the_file(tmp_path):
    """model file -> export_file -> onnxruntime, for a Graph and nested containers."""
    from helpers import assert_close
    from onnx_common import run_onnx

    nn.manual_seed(0)
    x = nn.Input("image")
    skip = nn.Conv2d(1, 4, 3)(x, name="stem")
    body = nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU()))(skip)
    joined = nn.Concat(1, nn.Identity(), nn.MaxPool2d(3, stride=1, padding=1))(body)
    net = nn.Sequential(nn.Graph(x, joined), nn.GlobalAvgPool2d(), nn.Linear(8, 3))
    nn.save_model(net, tmp_path / "g.npz", input_shape=(1, 6, 6))
    proto = nn.onnx.export_file(tmp_path / "g.npz", tmp_path / "g.onnx")
    images = data(1, 6, 6)(4)
    assert_close(run_onnx(proto, images)[0], net.evaluate().forward(images), np.float32)
