"""ONNX round trips through the container shapes that test_onnx_containers
does not build (issue 15: "ONNX ... round trips through every container"):
a Graph nested in a Graph and used three times, nested tuples in and out of
ParallelTable / ConcatTable / SelectTable, ``Sequential(m, Tanh(), m)``, a
BatchNorm1d used at two nodes of a Graph (evaluate mode, moved running
statistics), and every case of test_containers_protocol's table (BatchNorm,
Dropout, ties, several inputs and outputs). Each is exported, checked, run in
onnxruntime at two batch sizes and compared with nnumpy's forward."""

import numpy as np
import onnx  # noqa: F401  (a test dependency: a missing one fails, not skips)
import onnxruntime  # noqa: F401
import pytest
from onnx_common import check_onnx
from test_containers_protocol import CASES, IDS

import nnumpy as nn
from nnumpy import (
    BatchNorm1d,
    CAddTable,
    ConcatTable,
    Graph,
    Identity,
    Input,
    Linear,
    ParallelTable,
    SelectTable,
    Sequential,
    Tanh,
)


def data(*shape, seed=0):
    return lambda batch: np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def pair(batch):
    return data(4)(batch), data(5, seed=1)(batch)


def test_graph_nested_in_a_graph_and_used_three_times():
    nn.manual_seed(0)
    u = Input()
    inner = Graph(u, Tanh()(Linear(4, 4)(u)))
    x = Input()
    check_onnx(Graph(x, CAddTable()(inner(x), inner(inner(x)))), data(4), opsets=(13, 18))


def test_nested_tuples_through_parallel_concat_and_select_tables():
    nn.manual_seed(0)
    nested = ParallelTable(ConcatTable(Linear(4, 2), Tanh()), Identity())  # ((a, b), c) out
    proto = check_onnx(nested, pair)
    assert len(proto.graph.output) == 3
    check_onnx(Sequential(nested, SelectTable(0), SelectTable(1)), pair)


def test_one_module_twice_in_a_sequential():
    nn.manual_seed(0)
    lin = Linear(4, 4)
    check_onnx(Sequential(lin, Tanh(), lin), data(4))


def test_batchnorm_used_at_two_nodes_of_a_graph():
    bn = BatchNorm1d(4)
    bn.running_mean[...] = [0.3, -0.2, 0.1, 0.0]
    bn.running_var[...] = [2.0, 0.5, 1.0, 1.5]
    x = Input()
    check_onnx(Graph(x, CAddTable()(bn(x), bn(Tanh()(x)))), data(4))


@pytest.mark.parametrize("name, make, make_input", CASES, ids=IDS)
def test_every_container_of_the_protocol_table(name, make, make_input):
    m = make(0)
    m.forward(make_input())  # move BatchNorm's running statistics away from zeros and ones
    if isinstance(make_input(), tuple):
        inputs = lambda b: tuple(data(4, seed=i)(b) for i in range(len(make_input())))  # noqa: E731
    else:
        inputs = data(4)
    check_onnx(m, inputs)
