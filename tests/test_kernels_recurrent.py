"""The recurrent kernels (nnumpy.kernels.recurrent) against their plain references,
in float64, over random modes, shapes, directions, lengths, projections and
initial states, with the default sizes and with the smallest ones (set through
the public knob, ``nnumpy.kernels.tuning``), so the recurrence runs split over
the batch on 3 threads."""

import numpy as np
import pytest
from conftest import SMALL_SIZES
from helpers import assert_close

from nnumpy import kernels
from nnumpy.kernels import recurrent as rk


@pytest.fixture(params=["default sizes", "small sizes"])
def sizes(request):
    with kernels.tuning(**(kernels.DEFAULTS | {"threads": 3} if request.param == "default sizes" else SMALL_SIZES)):
        yield request.param


def same(ours, ref, what):
    if ref is None:
        assert ours is None, what
        return
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, what
    assert_close(ours, ref, np.float64, f"fast vs reference: {what}")


MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]


def layer_configs(count=24, seed=0):
    r = np.random.default_rng(seed)
    for k in range(count):
        mode = MODES[k % 4]
        H = int(r.integers(1, 6))
        proj = int(r.integers(1, H)) if mode == "LSTM" and H > 1 and r.integers(0, 2) else 0
        yield {
            "mode": mode,
            "D": int(r.integers(1, 3)),
            "T": int(r.integers(1, 6)),
            "N": int(r.integers(1, 9)),
            "I": int(r.integers(1, 5)),
            "H": H,
            "proj": proj,
            "bias": bool(r.integers(0, 4)),  # mostly with biases
            "lengths": bool(r.integers(0, 2)),
            "grad_out": bool(r.integers(0, 4)),
            "grad_states": bool(r.integers(0, 2)),
        }


CONFIGS = list(layer_configs())


def layer_arguments(c, r):
    """The arguments of one layer as nnumpy's RNN layers build them (step order)."""
    mode, D, T, N, I, H = c["mode"], c["D"], c["T"], c["N"], c["I"], c["H"]
    G = rk.GATES[mode]
    P = c["proj"] or H
    b_ih = r.standard_normal((D, G * H)) if c["bias"] else None
    b_hh = r.standard_normal((D, G * H)) if c["bias"] else None
    bias, hidden_bias = (b_ih, b_hh) if mode == "GRU" else (None if b_ih is None else b_ih + b_hh, None)
    mask = None
    if c["lengths"]:
        lengths = r.integers(1, T + 1, size=N)
        valid = (np.arange(T)[:, None] < lengths[None, :])[..., None]
        mask = valid[None] if D == 1 else np.stack([valid, valid[::-1]])
    return (
        mode,
        r.standard_normal((D, T, N, I)),
        r.standard_normal((D, G * H, I)),
        bias,
        r.standard_normal((D, N, P)),
        r.standard_normal((D, N, H)) if mode == "LSTM" else None,
        r.standard_normal((D, G * H, P)),
        hidden_bias,
        r.standard_normal((D, P, H)) if c["proj"] else None,
        mask,
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{c['mode']}{i}" for i, c in enumerate(CONFIGS)])
def test_recurrent_matches_reference(config, sizes):
    r = np.random.default_rng(1)
    args = layer_arguments(config, r)
    mode, x, mask = args[0], args[1], args[-1]
    D, T, N, _ = x.shape
    P, H = args[6].shape[2], args[6].shape[1] // rk.GATES[mode]
    hs_ref, cs_ref, cache_ref = rk.recurrent_forward_reference(*args)
    hs, cs, cache = rk.recurrent_forward(*args)
    same(hs, hs_ref, "hs")
    same(cs, cs_ref, "cs")
    grad_out = r.standard_normal((D, T, N, P)) if config["grad_out"] else None
    if grad_out is not None and mask is not None:
        grad_out *= mask  # the layers hand over zeros at padded steps
    grad_hn = r.standard_normal((D, N, P)) if config["grad_states"] or grad_out is None else None
    grad_cn = r.standard_normal((D, N, H)) if config["grad_states"] and mode == "LSTM" else None
    given = (grad_out, grad_hn, grad_cn)
    copies = [None if g is None else g.copy() for g in given]
    ref = rk.recurrent_backward_reference(cache_ref, *given)
    ours = rk.recurrent_backward(cache, *given)
    for g, g_copy in zip(given, copies, strict=True):
        assert (g is None) == (g_copy is None) and (g is None or np.array_equal(g, g_copy)), "gradients changed"
    for what, a, b in zip(("grad_x", "grad_h0", "grad_c0"), ours[:3], ref[:3], strict=True):
        same(a, b, what)
    assert set(ours[3]) == set(ref[3])
    for name in ref[3]:
        same(ours[3][name], ref[3][name], name)
    # the parts asked for only
    gx, gh0, _, grads = rk.recurrent_backward(cache, *given, need_input_grad=False, need_param_grads=True)
    assert gx is None
    same(gh0, ref[1], "grad_h0 without grad_x")
    gx, _, _, grads = rk.recurrent_backward(cache, *given, need_input_grad=True, need_param_grads=False)
    assert grads is None
    same(gx, ref[0], "grad_x without parameter gradients")


def test_reference_matches_a_hand_written_lstm_step():
    """One LSTM step of the reference against the textbook formulas written out here."""
    r = np.random.default_rng(3)
    N, I, H = 3, 2, 4
    x, h, c = r.standard_normal((N, I)), r.standard_normal((N, H)), r.standard_normal((N, H))
    w_ih, w_hh, b = r.standard_normal((4 * H, I)), r.standard_normal((4 * H, H)), r.standard_normal(4 * H)
    a = x @ w_ih.T + h @ w_hh.T + b
    sig = 1 / (1 + np.exp(-a))
    c_new = sig[:, H : 2 * H] * c + sig[:, :H] * np.tanh(a[:, 2 * H : 3 * H])
    h_new = sig[:, 3 * H :] * np.tanh(c_new)
    hs, cs, _ = rk.recurrent_forward_reference(
        "LSTM", x[None, None], w_ih[None], b[None], h[None], c[None], w_hh[None], None, None, None
    )
    np.testing.assert_allclose(hs[0, 1], h_new, rtol=1e-12)
    np.testing.assert_allclose(cs[0, 1], c_new, rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_reference_backward_is_the_gradient_of_its_forward(mode):
    """The reference's BPTT against central differences of its own forward (float64)."""
    r = np.random.default_rng(4)
    config = {"mode": mode, "D": 2, "T": 3, "N": 2, "I": 2, "H": 3, "proj": 2 if mode == "LSTM" else 0,
              "bias": True, "lengths": True, "grad_out": True, "grad_states": True}
    args = list(layer_arguments(config, r))
    valid = (np.arange(3)[:, None] < np.array([2, 3])[None, :])[..., None]  # sample 0 has 2 steps
    args[-1] = np.stack([valid, valid[::-1]])
    hs, cs, cache = rk.recurrent_forward_reference(*args)
    g_out, g_h = r.standard_normal(hs[:, 1:].shape) * args[-1], r.standard_normal(hs[:, -1].shape)
    g_c = None if cs is None else r.standard_normal(cs[:, -1].shape)

    def loss(*values):
        trial = list(args)
        for index, value in values:
            trial[index] = value
        hs, cs, _ = rk.recurrent_forward_reference(*trial)
        total = (hs[:, 1:] * g_out).sum() + (hs[:, -1] * g_h).sum()
        return total + (0 if cs is None else (cs[:, -1] * g_c).sum())

    gx, gh0, gc0, grads = rk.recurrent_backward_reference(cache, g_out, g_h, g_c)
    checks = [(1, gx), (2, grads["w_ih"]), (4, gh0), (6, grads["w_hh"])]
    if mode == "LSTM":
        checks += [(5, gc0), (8, grads["w_hr"])]
    for index, analytic in checks:
        numeric = np.zeros_like(args[index])
        for pos in np.ndindex(args[index].shape):
            plus, minus = args[index].copy(), args[index].copy()
            plus[pos] += 1e-6
            minus[pos] -= 1e-6
            numeric[pos] = (loss((index, plus)) - loss((index, minus))) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=f"argument {index}")
