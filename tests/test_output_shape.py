"""output_shape on every layer and container, Sequential's shape pre-check, and
summary's shape inference (tests/layer_cases.py has one case per public layer)."""

import inspect

import numpy as np
import pytest
from layer_cases import CASES, NAMES

import nnumpy as nn
import nnumpy.containers
import nnumpy.layers
from nnumpy.summary import output_shapes


def _build(name, seed=0):
    nn.manual_seed(seed)
    return CASES[name][0]()


def _shape(x):
    return tuple(_shape(v) for v in x) if isinstance(x, (tuple, list)) else tuple(x.shape)


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as error:  # noqa: BLE001 (comparing what each raises)
        return (type(error), str(error))


def _public_module_classes():
    classes = []
    for where in (nnumpy.layers, nnumpy.containers):
        for name in where.__all__:
            cls = getattr(where, name)
            if inspect.isclass(cls) and issubclass(cls, nn.Module):
                classes.append(cls)
    return classes + [nn.Graph]


@pytest.mark.parametrize("cls", _public_module_classes(), ids=lambda c: c.__name__)
def test_every_layer_and_container_has_output_shape(cls):
    assert cls.output_shape is not nn.Module.output_shape


@pytest.mark.parametrize("n", [2, 0])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_is_the_forward_output_shape(name, n):
    module = _build(name)
    if n == 0 and name in ("BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNormalization"):
        module.evaluate()  # training mode refuses an empty batch (test_edge_inputs)
    x = CASES[name][1](n)
    state = {k: v.copy() for k, v in module.state_dict().items()}
    predicted = module.output_shape(_shape(x))
    assert all(np.array_equal(state[k], v) for k, v in module.state_dict().items())  # nothing changed
    assert predicted == _shape(module.forward(x))


def _bad_inputs(x):
    """Inputs whose shapes a layer may refuse: the last axis one longer, an axis
    dropped, an axis added (for a pair: the same done to its first array)."""
    if isinstance(x, tuple):
        return [(bad, *x[1:]) for bad in _bad_inputs(x[0])]
    wider = np.concatenate([x, x[..., :1]], axis=-1)
    return [wider, x[..., 0], x[..., None]]


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_raises_what_forward_raises(name):
    for bad in _bad_inputs(CASES[name][1](2)):
        predicted = _outcome(lambda bad=bad: _build(name).output_shape(_shape(bad)))
        if predicted == ("ok", None):
            continue  # cannot tell: forward alone checks
        ran = _outcome(lambda bad=bad: _shape(_build(name).forward(bad)))
        assert predicted == ran, f"{name} on {_shape(bad)}"


def test_a_structure_of_shapes_for_a_one_array_layer_is_a_type_error():
    with pytest.raises(TypeError, match=r"^Linear\(4 -> 3\): expected the shape of one array"):
        nn.Linear(4, 3).output_shape(((2, 4), (2, 4)))


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _configurations():
    return [
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), _x(2, 4, 9, 7)),
        (nn.Conv2d(4, 6, (3, 2), stride=(2, 1), dilation=2), _x(2, 4, 11, 8)),
        (nn.Conv2d(4, 4, 3, padding="same", padding_mode="reflect"), _x(2, 4, 6, 6)),
        (nn.Conv1d(3, 5, 4, stride=3, padding=2, dilation=1), _x(2, 3, 13)),
        (nn.MaxPool2d(3, stride=2, padding=1), _x(2, 3, 7, 5)),
        (nn.MaxPool2d(2, ceil_mode=True), _x(2, 3, 7, 5)),
        (nn.AvgPool2d(3, 2, 1, True), _x(2, 3, 8, 9)),
        (nn.AvgPool1d(3, 2, 1), _x(2, 3, 8)),
        (nn.GlobalAvgPool2d(keepdims=True), _x(2, 3, 4, 4)),
        (nn.Upsample(size=(5, 7), mode="bilinear"), _x(2, 3, 4, 4)),
        (nn.Upsample(scale_factor=1.5, mode="linear"), _x(2, 3, 5)),
        (nn.AdaptiveAvgPool2d((None, 3)), _x(3, 5, 7)),
        (nn.AdaptiveMaxPool2d((2, 3)), _x(2, 3, 5, 7)),
        (nn.ZeroPad2d((1, -1, 2, 0)), _x(2, 3, 4, 4)),
        (nn.ReflectionPad2d((1, 2, 0, 1)), _x(3, 4, 4)),
        (nn.Unflatten(-1, (2, -1)), _x(2, 3, 8)),
        (nn.Mean((1, 2), keepdim=True), _x(2, 3, 4, 5)),
        (nn.Mean(-1), _x(2, 3, 4)),
        (nn.SoftMax(dim=-1), _x(2, 3, 4)),
        (nn.LogSoftMax(), _x(2, 3, 4)),
        (nn.PReLU(3), _x(2, 3, 4)),
        (nn.Embedding(5, 3), np.arange(7) % 5),
        (nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, return_state=True), _x(5, 2, 4)),
        (nn.GRU(4, 6, return_state=True), _x(5, 4)),
        (nn.RNN(4, 6, batch_first=True, bidirectional=True), _x(2, 5, 4)),
        (
            nn.LSTMCell(4, 3),
            _x(
                4,
            ),
        ),
        (nn.LastStep(batch_first=False, bidirectional=True), _x(5, 2, 6)),
        (nn.MultiheadAttention(8, 2, kdim=5, vdim=3), (_x(4, 2, 8), _x(6, 2, 5), _x(6, 2, 3))),
        (nn.MultiheadAttention(8, 2), _x(4, 8)),
        (nn.SinusoidalPositionalEncoding(8), _x(5, 2, 8)),
        (nn.InstanceNorm2d(3), _x(3, 4, 4)),
        (nn.GroupNorm(2, 4), _x(2, 4, 3, 3, 2)),
        (nn.LayerNorm((3, 4)), _x(2, 5, 3, 4)),
        (nn.TransformerEncoderLayer(8, 2, 16, 0.0), _x(5, 2, 8)),
        (nn.Transformer(8, 2, 1, 1, 16, 0.0), (_x(5, 2, 8), _x(3, 2, 8))),
        (nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), _x(2, 3, 4, 5)),
        (
            nn.Flatten(),
            _x(
                3,
            ),
        ),
        (nn.Dropout2d(), _x(2, 3, 4, 4)),
    ]


@pytest.mark.parametrize("case", range(len(_configurations())))
def test_output_shape_over_more_configurations(case):
    """Strides, dilation, groups, padding modes, ceil_mode, sizes, directions, projections,
    states, unbatched inputs, kdim/vdim, sequence-first layouts."""
    module, x = _configurations()[case]
    assert module.output_shape(_shape(x)) == _shape(module.forward(x)), repr(module)


# ------------------------------------------------------------------ containers
def test_containers_and_tables_infer_shapes_through_tuples():
    branch = nn.ConcatTable(nn.Linear(4, 3), nn.Linear(4, 3))
    assert branch.output_shape((5, 4)) == ((5, 3), (5, 3))
    assert nn.Sequential(branch, nn.CAddTable()).output_shape((5, 4)) == (5, 3)
    assert nn.Sequential(branch, nn.JoinTable(1)).output_shape((5, 4)) == (5, 6)
    assert nn.ParallelTable(nn.Linear(4, 2), nn.Tanh()).output_shape(((5, 4), (5, 7))) == ((5, 2), (5, 7))
    assert nn.Concat(1, nn.Linear(4, 2), nn.Linear(4, 5)).output_shape((3, 4)) == (3, 7)
    assert nn.SplitTable(1).output_shape((2, 3, 4)) == ((2, 4),) * 3
    assert nn.SelectTable(-1).output_shape(((2, 4), (2, 9))) == (2, 9)
    assert nn.CSubTable().output_shape(((2, 1), (1, 3))) == (2, 3)
    assert nn.CMulTable().output_shape(((2, 3), (2, 3))) == (2, 3)
    assert nn.Residual(nn.Linear(4, 4)).output_shape((2, 4)) == (2, 4)


def test_a_residual_whose_body_changes_the_shape_is_refused_as_forward_refuses_it():
    block = nn.Residual(nn.Linear(4, 3))
    x = np.ones((2, 4), np.float32)
    assert _outcome(lambda: block.output_shape((2, 4))) == _outcome(lambda: block.forward(x))
    assert _outcome(lambda: block.output_shape((2, 4)))[0] is ValueError


def test_graph_output_shape_several_inputs_and_outputs():
    a, b = nn.Input(), nn.Input()
    h = nn.Linear(4, 3)(a, name="proj")
    s = nn.CAddTable()(h, b)
    net = nn.Graph([a, b], [s, nn.Tanh()(h)])
    assert net.output_shape(((2, 4), (2, 3))) == ((2, 3), (2, 3))
    with pytest.raises(ValueError, match=r"^Graph node 'proj' Linear: Linear\(4 -> 3\): expected input of shape"):
        net.output_shape(((2, 5), (2, 3)))


def test_tables_refuse_as_forward_does():
    for module, shape in [
        (nn.CAddTable(), ((2, 3), (2, 4))),
        (nn.JoinTable(1), ((2, 3), (3, 3))),
        (nn.SelectTable(3), ((2, 3), (2, 4))),
        (nn.SplitTable(3), (2, 3)),
        (nn.CSubTable(), ((2, 3),)),
    ]:
        arrays = tuple(np.zeros(s, np.float32) for s in shape) if isinstance(shape[0], tuple) else np.zeros(shape)
        predicted = _outcome(lambda m=module, s=shape: m.output_shape(s))
        assert predicted == _outcome(lambda m=module, a=arrays: m.forward(a))


# ------------------------------------------------------------------ Sequential's pre-check
def test_a_shape_error_in_a_later_child_leaves_every_child_untouched():
    """Today BatchNorm had already updated its running statistics when Linear refused the shape."""
    bn = nn.BatchNorm1d(4)
    net = nn.Sequential(nn.Linear(4, 4, rng=0), bn, nn.ReLU(), nn.Linear(5, 3, rng=1))
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    with pytest.raises(ValueError) as info:
        net.forward(x)
    message = str(info.value)
    assert message.startswith("Sequential child (3) Linear: Linear(5 -> 3): expected input of shape (N, 5)")
    assert message == "Sequential child (3) Linear: " + _outcome(lambda: net[3].forward(x))[1]  # forward's own
    assert np.array_equal(bn.running_mean, np.zeros(4, np.float32))
    assert np.array_equal(bn.running_var, np.ones(4, np.float32))
    assert all(m.output is None for m in net)


def test_nested_sequential_errors_are_worded_as_forward_words_them():
    inner = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))
    net = nn.Sequential(nn.BatchNorm1d(4), inner)
    with pytest.raises(ValueError, match=r"^Sequential child \(1\) Sequential: Sequential child \(1\) Linear: "):
        net.forward(np.ones((3, 4), np.float32))
    assert np.array_equal(net[0].running_mean, np.zeros(4, np.float32))


def test_the_check_runs_once_per_input_shape(monkeypatch):
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    calls = []
    original = nn.Linear.output_shape

    def counting(self, shape):
        calls.append(shape)
        return original(self, shape)

    monkeypatch.setattr(nn.Linear, "output_shape", counting)
    for _ in range(3):
        net.forward(np.ones((2, 4), np.float32))
    assert calls == [(2, 4)]
    net.forward(np.ones((5, 4), np.float32))  # a new batch size: checked once more
    assert calls == [(2, 4), (5, 4)]
    net.add(nn.Linear(3, 2))  # other children: checked again (both Linears)
    net.forward(np.ones((5, 4), np.float32))
    assert calls[2:] == [(5, 4), (5, 3)]


def test_the_check_stops_at_a_user_layer_without_output_shape():
    class Double(nn.Module):
        def updateOutput(self, input):
            self.output = np.concatenate([input, input], axis=1)
            return self.output

        def updateGradInput(self, input, gradOutput):
            self.gradInput = gradOutput[:, : input.shape[1]] + gradOutput[:, input.shape[1] :]
            return self.gradInput

    net = nn.Sequential(nn.Linear(4, 4), Double(), nn.Linear(8, 2))
    assert net.output_shape((3, 4)) is None
    assert net.forward(np.ones((3, 4), np.float32)).shape == (3, 2)
    bn = nn.BatchNorm1d(4)
    broken = nn.Sequential(bn, Double(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Linear\(5 -> 2\): expected input of shape \(N, 5\)"):
        broken.forward(np.ones((3, 4), np.float32))  # past the user layer only forward checks (documented)


def test_training_results_are_unchanged_by_the_check():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 1, 6, 6)).astype(np.float32)
    conv = nn.Conv2d(1, 2, 3, padding=0, rng=0)
    net = nn.Sequential(conv, nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3, rng=1))
    y = net.forward(x)
    assert y.shape == (8, 3) == net.output_shape(x.shape)


# ------------------------------------------------------------------ summary
def test_summary_infers_shapes_without_running_forward(monkeypatch):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

    def refuse(self, input):
        raise AssertionError("summary ran a forward")

    monkeypatch.setattr(nn.Conv2d, "updateOutput", refuse)
    shapes = output_shapes(net, (1, 8, 8))
    assert shapes == {"": (1, 3), "0": (1, 2, 8, 8), "1": (1, 2, 4, 4), "2": (1, 32), "3": (1, 3)}
    assert "(N, 2, 4, 4)" in net.summary((1, 8, 8), print_fn=None)


def test_summary_of_an_integer_input_model_needs_no_forward():
    net = nn.Sequential(nn.Embedding(10, 4), nn.Mean(1), nn.Linear(4, 2))
    assert output_shapes(net, (7,))["1"] == (1, 4)


def test_summary_falls_back_to_a_forward_for_a_user_layer():
    class Half(nn.Module):
        def updateOutput(self, input):
            self.output = input[:, : input.shape[1] // 2]
            return self.output

    net = nn.Sequential(nn.Linear(4, 6), Half())
    assert output_shapes(net, (4,)) == {"": (1, 3), "0": (1, 6), "1": (1, 3)}
