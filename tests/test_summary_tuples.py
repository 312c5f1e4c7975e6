"""summary and output_shapes of models that take or return tuples (issue 15:
"summary ... handle tuples"): a Graph of two inputs, a tuple-valued child, and
a user's layer without output_shape that returns a tuple (the forward path)."""

import numpy as np

import nnumpy as nn
from nnumpy import ConcatTable, Graph, Input, JoinTable, Linear, Sequential, Tanh
from nnumpy.summary import output_shapes


def two_inputs():
    a, b = Input(), Input()
    return Graph([a, b], [Tanh()(Linear(4, 3, rng=0)(a)), JoinTable(1)(a, b)])


def test_a_graph_of_two_inputs_is_summarised_node_by_node():
    text = two_inputs().summary(((4,), (5,)), print_fn=None)
    assert "Input shape: ((N, 4), (N, 5)), float32" in text
    assert "jointable_0  JoinTable(dim=1)  (N, 9)" in text
    assert output_shapes(two_inputs(), [(4,), (5,)]) == {
        "": ((1, 3), (1, 9)), "linear_0": (1, 3), "tanh_0": (1, 3), "jointable_0": (1, 9),
    }


def test_a_tuple_output_is_shown_as_a_tuple_of_shapes():
    text = Sequential(ConcatTable(Linear(4, 3, rng=0), Tanh())).summary((4,), print_fn=None)
    assert "ConcatTable       ((N, 3), (N, 4))" in text


class Pair(nn.Module):
    """No output_shape: summary falls back to a forward."""

    def updateOutput(self, input):
        self.output = (input, input[:, :2])
        return self.output


def test_the_forward_fallback_records_tuple_outputs():
    assert output_shapes(Sequential(Linear(4, 4, rng=0), Pair()), 4)["1"] == ((1, 4), (1, 2))
    assert np.array_equal(Pair().forward(np.ones((1, 3)))[1], np.ones((1, 2)))
