"""The recurrent kernels split the batch over nnumpy's threads (each piece runs
every time step on its own samples): the split run computes what the one-thread
run computes, for every mode, with lengths, both directions, projections."""

import numpy as np
import pytest

import nnumpy as nn
from nnumpy.parallel import split_count


def _run(net, x, lengths, threads):
    net.zero_grad()
    with nn.num_threads(threads):
        out = net.forward((x, lengths))
        g = np.random.default_rng(1).standard_normal(out[0].shape).astype(x.dtype)
        gh = np.random.default_rng(2).standard_normal(out[1][0].shape if isinstance(out[1], tuple)
                                                      else out[1].shape).astype(x.dtype)
        state_grad = (gh, None) if isinstance(out[1], tuple) else gh
        gx = net.backward((x, lengths), (g, state_grad))
    grads = {name: grad.copy() for name, grad in zip(*_names_and_grads(net), strict=True)}
    return out, gx, grads


def _names_and_grads(net):
    names, grads = [], []
    for name, _ in net.named_parameters():
        names.append(name)
        grads.append(getattr(net, "grad_" + name))
    return names, grads


@pytest.mark.parametrize(
    "cls, kwargs",
    [(nn.LSTM, {}), (nn.LSTM, {"bidirectional": True, "proj_size": 8}), (nn.GRU, {"bidirectional": True}),
     (nn.RNN, {"nonlinearity": "relu"}), (nn.RNN, {})],
)
def test_split_batch_matches_one_thread(cls, kwargs):
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[cls]
    T, N, I, H = 8, 600, 5, 192 // gates  # pre-activations of 3.7 MB: two pieces of nnumpy's split
    net = cls(I, H, num_layers=2, batch_first=True, return_state=True, rng=0, **kwargs)
    r = np.random.default_rng(0)
    x = r.standard_normal((N, T, I)).astype(np.float32)
    lengths = r.integers(1, T + 1, N)
    acts = np.empty((2 if kwargs.get("bidirectional") else 1, T, N, gates * H), np.float32)
    with nn.num_threads(2):
        assert split_count(N, acts) == 2  # the test runs the split path
    out1, gx1, g1 = _run(net, x, lengths, 1)
    out2, gx2, g2 = _run(net, x, lengths, 2)
    np.testing.assert_allclose(out2[0], out1[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx2[0], gx1[0], rtol=1e-5, atol=1e-6)
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], rtol=1e-4, atol=1e-4, err_msg=name)
