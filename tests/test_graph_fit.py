"""fit, evaluate and predict with a Graph of several outputs and a pair loss
(issue 15: "inputs and targets may be tuples (ranking and embedding
losses)"): a scorer with tied weights scores both items of each pair, the
Graph returns the pair of scores, MarginRankingCriterion ranks them. Then a
Graph of several inputs, given to DataLoader, fit, evaluate and predict as a
tuple of arrays."""

import numpy as np
import pytest

import nnumpy as nn
import nnumpy.io
from nnumpy import Graph, Input, Linear, MarginRankingCriterion, SelectTable, Sequential, SplitTable, Tanh


def ranking_data(n=96, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 2, 4)).astype(np.float32)  # a pair of items per sample
    w = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    y = np.where(X[:, 0] @ w > X[:, 1] @ w, 1, -1)  # which item ranks higher
    return X, y


def pair_scorer():
    """score(item) = Linear(tanh(Linear(item))), one scorer for both items."""
    scorer = Sequential(Linear(4, 8, rng=0), Tanh(), Linear(8, 1, rng=1), SplitTable(1), SelectTable(0))
    x = Input()
    items = SplitTable(1)(x)
    return Graph(x, [scorer(items[0], name="scorer"), scorer(items[1])])


def test_fit_evaluate_and_predict_a_graph_with_two_outputs_and_a_pair_loss():
    X, y = ranking_data()
    net = pair_scorer()
    crit = MarginRankingCriterion(margin=0.5)
    history = nn.fit(net, crit, "adam", (X, y), epochs=6, batch_size=16, lr=0.02, verbose=False, val_data=(X, y))
    losses = history.to_dict()["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert history.accuracy == history.val_accuracy == []  # no class scores: accuracy means nothing
    assert len(history.val_loss) == 6

    scores = nn.predict(net, X, batch_size=40)  # three batches, the last one short
    assert isinstance(scores, tuple) and [s.shape for s in scores] == [(96,), (96,)]
    whole = net.evaluate().forward(X)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(scores, whole, strict=True))
    assert np.mean(np.sign(scores[0] - scores[1]) == y) > 0.9

    result = nn.evaluate(net, (X, y), crit, batch_size=40, return_predictions=True)
    assert result["accuracy"] is None and isinstance(result["predictions"], tuple)
    assert all(np.array_equal(a, b) for a, b in zip(result["predictions"], scores, strict=True))
    expected = np.mean(np.maximum(0.0, -y * (scores[0].astype(np.float64) - scores[1]) + 0.5))
    assert np.isclose(result["loss"], expected, rtol=1e-5)


# ---------------------------------------------------------------- several inputs
def two_input_data(n=120, seed=1):
    r = np.random.default_rng(seed)
    a, b = r.normal(size=(n, 3)).astype(np.float32), r.normal(size=(n, 5)).astype(np.float32)
    return (a, b), ((a[:, 0] + b[:, 1]) > 0).astype(np.int64)


def two_input_graph():
    """logits = Linear(relu(Linear(a) + Linear(b))): a graph of two inputs."""
    a, b = Input(), Input()
    hidden = nn.CAddTable()(Linear(3, 16, rng=0)(a, name="from_a"), Linear(5, 16, rng=1)(b, name="from_b"))
    return Graph([a, b], Linear(16, 2, rng=2)(nn.ReLU()(hidden), name="head"))


def test_data_loader_batches_several_inputs_in_step():
    (a, b), y = two_input_data(10)
    loader = nn.DataLoader([a, b], y, batch_size=4, shuffle=True, rng=3)
    seen = []
    for xb, yb in loader:
        assert isinstance(xb, tuple) and len(xb) == 2 and len(xb[0]) == len(xb[1]) == len(yb)
        rows = [int(np.flatnonzero((a == row).all(1))[0]) for row in xb[0]]  # which examples came
        np.testing.assert_array_equal(xb[1], b[rows])
        np.testing.assert_array_equal(yb, y[rows])
        seen += rows
    assert sorted(seen) == list(range(10)) and len(loader) == 3
    first, _ = next(iter(nn.DataLoader((a, b), batch_size=4)))  # no shuffle: views of each array
    assert np.shares_memory(first[0], a) and np.shares_memory(first[1], b)


@pytest.mark.parametrize(
    "x, y, error, message",
    [
        ((np.zeros((4, 2)), np.zeros((5, 2))), None, ValueError, r"different numbers of examples: \[4, 5\]"),
        ((np.zeros((4, 2)), np.zeros((4, 2))), np.zeros(3), ValueError, "4 examples but 3 labels"),
        ((np.zeros((4, 2)), [1, 2, 3, 4]), None, TypeError, r"tuple of arrays, got tuple of \(ndarray, list\)"),
        ((), None, TypeError, "non-empty tuple of arrays"),
        (3.0, None, TypeError, "expected an array of examples"),
    ],
)
def test_data_loader_refuses_inputs_that_do_not_line_up(x, y, error, message):
    with pytest.raises(error, match=message):
        nn.DataLoader(x, y)


def test_fit_evaluate_predict_and_resume_a_graph_with_two_inputs(tmp_path):
    """``fit(model, ..., ((A, B), y))`` trains a two-input graph; the same as a hand-written loop over batches."""
    X, y = two_input_data()
    net = two_input_graph()
    crit = nn.CrossEntropyCriterion()
    history = nn.fit(net, crit, "sgd", (X, y), val_data=(X, y), epochs=6, batch_size=32, lr=0.5, shuffle=False,
                     verbose=False, callbacks=[nn.ModelCheckpoint(tmp_path / "ckpt.npz")])  # fmt: skip
    assert history.loss[-1] < 0.5 * history.loss[0] and len(history.val_accuracy) == 6

    by_hand = two_input_graph()
    opt = nn.SGD(by_hand, lr=0.5)
    for _ in range(6):
        for lo in range(0, 120, 32):
            xb, yb = (X[0][lo : lo + 32], X[1][lo : lo + 32]), y[lo : lo + 32]
            opt.zero_grad()
            out = by_hand.forward(xb)
            crit.forward(out, yb)
            by_hand.backward(xb, crit.backward(out, yb))
            opt.step()
    for (name, p), q in zip(net.named_parameters(), by_hand.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6, err_msg=name)

    scores = nn.predict(net, X, batch_size=50)  # a tuple of inputs, three batches
    np.testing.assert_allclose(scores, net.evaluate().forward(X), rtol=1e-6, atol=1e-6)
    assert nn.predict(net, list(X)).shape == (120, 2)
    assert nn.evaluate(net, (X, y), batch_size=50)["accuracy"] == np.mean(scores.argmax(1) == y)
    ckpt = nn.load_checkpoint(tmp_path / "ckpt.npz")
    assert ckpt.input_shape == ((3,), (5,))
    more = nn.fit(ckpt.model, crit, "sgd", (X, y), epochs=7, batch_size=32, lr=0.5, shuffle=False, verbose=False,
                  resume=tmp_path / "ckpt.npz")  # fmt: skip
    assert len(more.loss) == 7


def test_several_input_shapes_in_model_files(tmp_path):
    net = two_input_graph()
    nn.save_model(net, tmp_path / "m.npz", input_shape=((3,), (5,)))
    assert nnumpy.io.read_metadata(tmp_path / "m.npz")["input_shape"] == [[3], [5]]
    with pytest.raises(ValueError, match="a model with 2 inputs; call nnumpy.onnx.export"):
        nn.onnx.export_file(tmp_path / "m.npz", tmp_path / "m.onnx")


def test_a_list_of_two_batches_is_still_a_loader_not_two_inputs():
    X, y = two_input_data(8)
    net = Sequential(Linear(3, 2, rng=0))
    batches = [(X[0][:4], y[:4]), (X[0][4:], y[4:])]
    history = nn.fit(net, nn.CrossEntropyCriterion(), "sgd", batches, epochs=2, lr=0.1, verbose=False)
    assert len(history.loss) == 2


def test_augment_names_a_batch_of_several_inputs():
    X, y = two_input_data(8)
    with pytest.raises(TypeError, match="expected one batch of images, got a tuple"):
        nn.fit(two_input_graph(), None, "sgd", (X, y), epochs=1, verbose=False, augment=nn.data.Augment(flip=True))
