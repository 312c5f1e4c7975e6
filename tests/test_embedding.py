"""Embedding: PyTorch parity (repeated indices, padding_idx, index shapes) and
finite differences are entries of the module table (tests/module_table.py);
here: from_pretrained, the (indices, lengths) pair, the scatter-add kernel
against np.add.at, state_dict both ways, initialisation, errors."""

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy as nn
from nnumpy import Embedding
from nnumpy.layers.embedding import embedding_backward


@pytest.mark.parametrize("vocab, lookups, padding_idx", [(1, 5, None), (7, 0, None), (50, 200, 3), (1000, 64, 0)])
def test_scatter_add_kernel_matches_add_at(vocab, lookups, padding_idx):
    r = np.random.default_rng(vocab)
    idx = r.integers(0, vocab, size=lookups)
    g = r.normal(size=(lookups, 4))
    want = np.ones((vocab, 4))
    keep = idx != padding_idx if padding_idx is not None else np.ones(lookups, bool)
    np.add.at(want, idx[keep], g[keep])
    got = embedding_backward(np.ones((vocab, 4)), idx, g, padding_idx)
    assert_close(got, want, np.float64, "scatter add")


def test_gradients_accumulate_and_frozen_accumulate_nothing():
    m = Embedding(4, 2, rng=0)
    idx, g = np.array([1, 1, 3]), np.ones((3, 2), np.float32)
    m.forward(idx)
    m.backward(idx, g)
    m.backward(idx, g)
    np.testing.assert_array_equal(m.gradWeight, [[0, 0], [4, 4], [0, 0], [2, 2]])
    m.zeroGradParameters()
    m.freeze()
    m.backward(idx, g)
    assert not m.gradWeight.any()


def test_from_pretrained():
    w = np.arange(12, dtype=np.float64).reshape(4, 3)
    emb = Embedding.from_pretrained(w, padding_idx=1)
    assert emb.frozen and emb.weight.dtype == np.float64 and emb.weight is not w
    np.testing.assert_array_equal(emb.forward(np.array([1, 3])), w[[1, 3]])  # the padding row keeps its values
    assert emb.parameter_pairs() == []  # optimizers skip it
    trainable = Embedding.from_pretrained(torch.tensor(w), freeze=False, padding_idx=1)
    trainable.forward(np.array([1, 2]))
    trainable.backward(np.array([1, 2]), np.ones((2, 3)))
    np.testing.assert_array_equal(trainable.gradWeight.sum(axis=1), [0, 0, 3, 0])
    with pytest.raises(ValueError, match=r"from_pretrained: expected a 2-D float array.*got int64 array of shape"):
        Embedding.from_pretrained(np.zeros((3, 2), np.int64))


def test_indices_with_lengths_pass_the_lengths_on():
    m = Embedding(6, 2, rng=0)
    idx, lengths = np.array([[1, 2, 0], [3, 0, 0]]), np.array([3, 1])
    vectors, out_lengths = m.forward((idx, lengths))
    assert out_lengths is lengths and vectors.shape == (2, 3, 2)
    assert m.backward((idx, lengths), (np.ones((2, 3, 2), np.float32), None)) is None
    np.testing.assert_array_equal(m.gradWeight[:, 0], [3, 1, 1, 1, 0, 0])


def test_dtype_and_to():
    m = Embedding(3, 2, dtype=np.float64, rng=0)
    assert m.forward(np.array([0, 1], np.uint8)).dtype == np.float64
    m.to(np.float32)
    assert m.forward(np.array([2])).dtype == np.float32 and m.gradWeight.dtype == np.float32


def test_state_dict_both_ways():
    m = Embedding(5, 3, rng=0)
    ref = torch.nn.Embedding(5, 3)
    ref.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    torch.nn.init.normal_(ref.weight)
    m.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    np.testing.assert_array_equal(m.weight, ref.weight.detach().numpy())


def test_init_like_torch():
    m = Embedding(2000, 50, padding_idx=7, rng=0)
    assert abs(m.weight.std() - 1) < 0.02 and abs(m.weight.mean()) < 0.02  # standard normal
    assert not m.weight[7].any()


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.array([1.0, 2.0]), TypeError, r"expected integer indices, got dtype float64"),
        ([1, 2], TypeError, r"expected integer indices, got list"),
        (np.array([[0, 10]]), ValueError, r"expected indices in \[0, 10\), got 10"),
        (np.array([-1, 3]), ValueError, r"expected indices in \[0, 10\), got -1"),
    ],
)
def test_index_errors_change_nothing(bad, error, match):
    m = Embedding(10, 4, padding_idx=0)
    m.forward(np.array([1, 2]))
    before = m.output
    with pytest.raises(error, match=r"Embedding\(10, 4, padding_idx=0\): " + match):
        m.forward(bad)
    assert m.output is before


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(padding_idx=5), ValueError, r"padding_idx must be in \[-5, 5\)"),
        (dict(padding_idx=-6), ValueError, r"padding_idx must be in \[-5, 5\)"),
        (dict(padding_idx=1.0), TypeError, r"padding_idx must be an integer or None"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Embedding(5, 3, **kwargs)
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 1"):
        Embedding(5, 0)


def test_in_sequential_backward_stops_at_indices():
    net = nn.Sequential(Embedding(8, 4, rng=0), nn.Flatten(), nn.Linear(12, 2, rng=0))
    idx = np.array([[1, 2, 3], [3, 3, 7]])
    y = net.forward(idx)
    assert net.backward(idx, np.ones_like(y)) is None
    assert net[0].gradWeight[3].any() and not net[0].gradWeight[0].any()
    assert repr(net[0]) == "Embedding(8, 4)"
