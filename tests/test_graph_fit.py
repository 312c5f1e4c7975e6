"""fit, evaluate and predict with a Graph of several outputs and a pair loss
(issue 15: "inputs and targets may be tuples (ranking and embedding
losses)"): a scorer with tied weights scores both items of each pair, the
Graph returns the pair of scores, MarginRankingCriterion ranks them."""

import numpy as np

import nnumpy as nn
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
