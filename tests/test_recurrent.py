"""RNN / LSTM / GRU and their cells, what the one table (tests/module_table.py,
whose seeded random configurations give PyTorch parity with packed lengths and
initial states, finite differences and the forward error cases) cannot say:
padded steps change nothing, keyword forms, state_dict names both ways, dtypes
and empty batches, dropout, accumulation, LastStep / pad_sequence, and the
gradient and constructor errors."""

import warnings

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy as nn
from nnumpy import GRU, LSTM, RNN, GRUCell, LastStep, LSTMCell, RNNCell, pad_sequence

KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")


# ---------------------------------------------------------------- building
def draw_config(r, kind):
    """A random network and input: 1-3 layers, either direction, either layout,
    with or without bias, projections for LSTM, lengths, initial states."""
    cfg = {
        "kind": kind,
        "input_size": int(r.integers(1, 5)),
        "hidden_size": int(r.integers(2, 6)),
        "num_layers": int(r.integers(1, 4)),
        "bias": bool(r.random() < 0.75),
        "batch_first": bool(r.random() < 0.5),
        "bidirectional": bool(r.random() < 0.5),
        "proj_size": 0,
        "steps": int(r.integers(1, 6)),
        "batch": int(r.integers(1, 4)),
        "lengths": bool(r.random() < 0.5),
        "h0": bool(r.random() < 0.5),
    }
    if kind == "LSTM" and r.random() < 0.4:
        cfg["proj_size"] = int(r.integers(1, cfg["hidden_size"]))
    return cfg


def make(cfg, **extra):
    kw = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
              bidirectional=cfg["bidirectional"], **extra)
    kind = cfg["kind"]
    if kind.startswith("RNN"):
        return RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=kind[4:].lower(), **kw)
    if kind == "LSTM":
        return LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **kw)
    return GRU(cfg["input_size"], cfg["hidden_size"], **kw)


def torch_twin(module, dtype=torch.float32):
    """The same network in PyTorch, weights copied through the state_dict (names must agree)."""
    kw = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
              bidirectional=module.bidirectional)
    if isinstance(module, RNN):
        ref = torch.nn.RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity, **kw)
    elif isinstance(module, LSTM):
        ref = torch.nn.LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **kw)
    else:
        ref = torch.nn.GRU(module.input_size, module.hidden_size, **kw)
    ref = ref.to(dtype)
    ref.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in module.state_dict().items()})
    return ref


def draw_input(r, cfg, dtype):
    T, N = cfg["steps"], cfg["batch"]
    shape = (N, T, cfg["input_size"]) if cfg["batch_first"] else (T, N, cfg["input_size"])
    x = r.normal(size=shape).astype(dtype)
    D = 2 if cfg["bidirectional"] else 1
    P = cfg["proj_size"] or cfg["hidden_size"]
    hx = None
    if cfg["h0"]:
        h0 = r.normal(size=(cfg["num_layers"] * D, N, P)).astype(dtype)
        hx = (h0, r.normal(size=(cfg["num_layers"] * D, N, cfg["hidden_size"])).astype(dtype)) \
            if cfg["kind"] == "LSTM" else h0
    lengths = r.integers(1, T + 1, size=N) if cfg["lengths"] else None
    return x, hx, lengths


def pack_input(x, hx, lengths):
    if lengths is None:
        return x if hx is None else (x, hx)
    return (x, lengths) if hx is None else (x, hx, lengths)


# ---------------------------------------------------------------- helpers
def _float_leaves(x):
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in _float_leaves(v)]
    return [x] if x is not None and getattr(x, "dtype", None) is not None and x.dtype.kind == "f" else []


# ---------------------------------------------------------------- variable lengths
@pytest.mark.parametrize("kind", KINDS)
def test_padded_steps_change_nothing(kind):
    """Whatever the padding holds, valid outputs and final states are the same and padded outputs are 0."""
    r = np.random.default_rng(5)
    cfg = dict(draw_config(r, kind), bidirectional=True, num_layers=2, batch_first=True, steps=5, batch=3)
    m = make(cfg, return_state=True, rng=0)
    x, hx, _ = draw_input(r, cfg, np.float32)
    lengths = np.array([5, 2, 1])
    out1, state1 = m.forward(pack_input(x, hx, lengths))
    x2 = x.copy()
    for n, n_len in enumerate(lengths):
        x2[n, n_len:] = 1e3 * r.normal(size=x2[n, n_len:].shape)
    out2, state2 = m.forward(pack_input(x2, hx, lengths))
    np.testing.assert_array_equal(out1, out2)
    for a, b in zip(_float_leaves(state1), _float_leaves(state2), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not out1[1, 2:].any() and not out1[2, 1:].any()
    # the same as running each sample alone on its valid steps
    for n, n_len in enumerate(lengths):
        hx_n = None
        if hx is not None:
            hx_n = tuple(a[:, n : n + 1] for a in hx) if kind == "LSTM" else hx[:, n : n + 1]
        out_n, _ = m.forward(pack_input(x[n : n + 1, :n_len], hx_n, None))
        assert_close(out1[n : n + 1, :n_len], out_n, np.float32, f"sample {n}")


def test_keywords_mean_the_tuple():
    r = np.random.default_rng(0)
    m = LSTM(3, 4, bidirectional=True, return_state=True, rng=0)
    x = r.normal(size=(5, 2, 3)).astype(np.float32)
    hx = (r.normal(size=(2, 2, 4)).astype(np.float32), r.normal(size=(2, 2, 4)).astype(np.float32))
    lengths = np.array([5, 3])
    g = (r.normal(size=(5, 2, 8)).astype(np.float32), None)
    for call, tup in (
        (lambda: m.forward(x, hx=hx, lengths=lengths), (x, hx, lengths)),
        (lambda: m.forward(x, lengths=[5, 3]), (x, [5, 3])),
        (lambda: m.forward(x, hx), (x, hx)),
    ):
        a = call()
        ga = m.backward(tup, g)
        b = m.forward(tup)
        gb = m.backward(tup, g)
        np.testing.assert_array_equal(a[0], b[0])
        assert len(ga) == len(tup) == len(gb)
        np.testing.assert_array_equal(ga[0], gb[0])
    # (x, None): no initial state, and its gradient is None
    m.forward((x, None))
    gx, gh = m.backward((x, None), g)
    assert gx.shape == x.shape and gh is None


# ---------------------------------------------------------------- state, dtype, modes
@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_both_ways(kind):
    r = np.random.default_rng(1)
    cfg = dict(draw_config(r, kind), num_layers=3, bidirectional=True)
    m = make(cfg, rng=0)
    ref = torch_twin(m)  # ours -> torch (load_state_dict is strict on both sides)
    assert list(m.state_dict()) == list(ref.state_dict())
    for p in ref.parameters():
        p.data.normal_()
    m.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})  # torch -> ours
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy())


def test_deep_network_declares_its_parameters():
    m = GRU(2, 3, num_layers=6, bidirectional=True, rng=0)
    names = [n for n, _ in m.named_parameters()]
    assert len(names) == 6 * 2 * 4 and names[-1] == "bias_hh_l5_reverse"
    assert m.num_parameters == sum(p.numel() for p in torch_twin(m).parameters())
    assert len(m.parameter_pairs()) == len(names)


def test_dtype_follows_the_input_and_to():
    m = LSTM(2, 3, proj_size=2, rng=0)
    x64 = np.random.default_rng(0).normal(size=(4, 1, 2))
    assert m.forward(x64).dtype == np.float64
    assert m.backward(x64, np.ones((4, 1, 2))).dtype == np.float64
    assert m.grad_weight_ih_l0.dtype == np.float32
    m.to(np.float64)
    assert m.weight_hr_l0.dtype == np.float64 and m.grad_weight_hr_l0.dtype == np.float64
    assert m.forward(x64.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64))
@pytest.mark.parametrize("batch", (3, 0))
def test_every_dtype_and_an_empty_batch(dtype, batch):
    r = np.random.default_rng(0)
    lengths = np.array([4, 1, 2][:batch], np.int64)
    x = r.normal(size=(4, batch, 3)).astype(dtype)
    for m, inp in ((LSTM(3, 4, bidirectional=True, proj_size=2, return_state=True), (x, lengths)),
                   (GRU(3, 4, num_layers=2, dropout=0.5), (x, lengths)), (RNN(3, 4), x),
                   (LSTMCell(3, 4), x[0]), (GRUCell(3, 4), x[0]), (RNNCell(3, 4), x[0])):
        out = m.forward(inp)
        assert all(leaf.dtype == dtype for leaf in _float_leaves(out)), type(m).__name__
        grad = m.backward(inp, out)
        gx = grad[0] if isinstance(grad, tuple) else grad
        x_in = inp[0] if isinstance(inp, tuple) else inp
        assert gx.dtype == dtype and gx.shape == x_in.shape
        assert all(np.isfinite(g).all() for g in m.grad_parameters())
    step = LastStep(batch_first=False)
    assert step.forward((x, lengths)).shape == (batch, 3)


def test_dropout_between_layers_training_only():
    x = np.random.default_rng(0).normal(size=(6, 3, 2)).astype(np.float32)
    m = LSTM(2, 4, num_layers=3, dropout=0.5, rng=0)
    a, b = m.forward(x).copy(), m.forward(x).copy()
    assert not np.array_equal(a, b)  # new masks each training forward
    m.eval()
    c = m.forward(x)
    no_drop = LSTM(2, 4, num_layers=3, rng=0)
    np.testing.assert_array_equal(c, no_drop.forward(x))
    same = [LSTM(2, 4, num_layers=3, dropout=0.5, rng=7).forward(x) for _ in range(2)]
    np.testing.assert_array_equal(*same)  # seeded: reproducible


def test_frozen_accumulates_nothing_but_gives_input_gradients():
    m = GRU(2, 3, rng=0).freeze()
    x = np.ones((3, 1, 2), np.float32)
    m.forward(x)
    gx = m.backward(x, np.ones((3, 1, 3), np.float32))
    assert gx.shape == x.shape and np.abs(gx).sum() > 0
    assert not m.grad_weight_ih_l0.any() and not m.grad_bias_hh_l0.any()


def test_gradients_accumulate_and_skip_input_grad():
    x = np.random.default_rng(0).normal(size=(3, 2, 2)).astype(np.float32)
    g = np.ones((3, 2, 3), np.float32)
    m = RNN(2, 3, rng=0)
    m.forward(x)
    m.backward(x, g)
    once = m.grad_weight_hh_l0.copy()
    m.backward(x, g)
    assert_close(m.grad_weight_hh_l0, 2 * once, np.float32, "accumulated")
    net = nn.Sequential(RNN(2, 3, rng=0), LastStep(batch_first=False))
    net.skip_input_grad = True
    net.forward(x)
    assert net.backward(x, np.ones((2, 3), np.float32)) is None
    assert_close(net[0].grad_weight_ih_l0, _grads_of(RNN(2, 3, rng=0), x), np.float32, "without input grad")


def _grads_of(m, x):
    m.forward(x)
    g = np.zeros((3, 2, 3), np.float32)
    g[-1] = 1
    m.backward(x, g)
    return m.grad_weight_ih_l0


def test_no_floating_point_warnings_on_huge_inputs():
    x = np.full((4, 2, 3), 1e4, np.float32)
    x[:, 1] = -1e4
    for m in (LSTM(3, 4, rng=0), GRU(3, 4, rng=0), RNN(3, 4, rng=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                out = m.forward(x)
                m.backward(x, np.ones_like(out))
        assert np.isfinite(out).all() and np.isfinite(m.grad_weight_ih_l0).all()


def test_model_file_round_trip(tmp_path):
    net = nn.Sequential(nn.Embedding(12, 4, padding_idx=0, rng=0),
                        LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True, proj_size=3,
                             return_state=True, rng=0),
                        LastStep(), nn.Linear(6, 3, rng=0))
    x = np.random.default_rng(0).integers(0, 12, size=(3, 7))
    y = net.forward((x, np.array([7, 4, 1])))
    nn.save_model(net, tmp_path / "m.npz")
    np.testing.assert_array_equal(nn.load_model(tmp_path / "m.npz").forward((x, np.array([7, 4, 1]))), y)


# ---------------------------------------------------------------- LastStep, Sequential, pad_sequence
@pytest.mark.parametrize("batch_first", (True, False))
@pytest.mark.parametrize("bidirectional", (True, False))
def test_last_step_is_h_n(batch_first, bidirectional):
    r = np.random.default_rng(2)
    m = LSTM(3, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional, return_state=True, rng=0)
    x = r.normal(size=(3, 5, 3) if batch_first else (5, 3, 3)).astype(np.float32)
    lengths = np.array([5, 2, 4])
    out, (h_n, _) = m.forward((x, lengths))
    D = 2 if bidirectional else 1
    want = np.concatenate(list(h_n[-D:]), axis=-1)
    for form in ((out, lengths), (out, (h_n, _))):
        step = LastStep(batch_first=batch_first, bidirectional=bidirectional)
        np.testing.assert_array_equal(step.forward(form), want)
    np.testing.assert_array_equal(LastStep().forward((out, h_n)), want)  # from h_n: no arguments needed
    # gradient: through the sequence form and through the state form the same
    g = r.normal(size=want.shape).astype(np.float32)
    seq_net = nn.Sequential(LSTM(3, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional,
                                 return_state=False, rng=0), LastStep(batch_first, bidirectional))
    state_net = nn.Sequential(LSTM(3, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional,
                                   return_state=True, rng=0), LastStep())
    full = (x, r.integers(5, 6, size=3))  # all full length: both forms read the same steps
    seq_net.forward(full)
    state_net.forward(full)
    assert_close(seq_net.backward(full, g)[0], state_net.backward(full, g)[0], np.float32, "grad x")
    for name, _ in seq_net[0].named_parameters():
        assert_close(getattr(seq_net[0], "grad_" + name), getattr(state_net[0], "grad_" + name), np.float32, name)


def test_sequential_classifier_trains():
    """Sequential(LSTM, LastStep, Linear) on rows of images, as the guide builds it: the loss falls."""
    r = np.random.default_rng(0)
    x = r.normal(size=(32, 8, 8)).astype(np.float32)
    labels = (x[:, :, :4].sum(axis=(1, 2)) > 0).astype(np.int64)
    net = nn.Sequential(LSTM(8, 16, batch_first=True, rng=0), LastStep(), nn.Linear(16, 2, rng=0))
    loss = nn.CrossEntropyCriterion()
    opt = nn.Adam(net, lr=0.02)
    first = None
    for _ in range(30):
        opt.zero_grad()
        value = loss.forward(net.forward(x), labels)
        net.backward(x, loss.backward(net.output, labels))
        opt.step()
        first = value if first is None else first
    assert value < 0.5 * first


def test_embedding_lstm_sequential_with_lengths():
    """Token ids and lengths through Embedding -> LSTM -> LastStep -> Linear in a Sequential,
    against the same computation in PyTorch."""
    r = np.random.default_rng(0)
    seqs = [r.integers(1, 20, size=n) for n in (6, 3, 1, 4)]
    ids, lengths = pad_sequence(seqs, batch_first=True), np.array([len(s) for s in seqs])
    net = nn.Sequential(nn.Embedding(20, 5, padding_idx=0, rng=0),
                        LSTM(5, 7, batch_first=True, bidirectional=True, return_state=True, rng=0),
                        LastStep(), nn.Linear(14, 3, rng=0))
    y = net.forward((ids, lengths))
    g = r.normal(size=y.shape).astype(np.float32)
    assert net.backward((ids, lengths), g) is None
    emb = torch.nn.Embedding(20, 5, padding_idx=0)
    emb.weight.data = torch.tensor(net[0].weight)
    lstm = torch_twin(net[1])
    lin = torch.nn.Linear(14, 3)
    lin.weight.data, lin.bias.data = torch.tensor(net[3].W), torch.tensor(net[3].b)
    packed = torch.nn.utils.rnn.pack_padded_sequence(emb(torch.tensor(ids)), torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    t_y = lin(torch.cat([h_n[-2], h_n[-1]], dim=-1))
    assert_close(y, t_y, np.float32, "output")
    (t_y * torch.tensor(g)).sum().backward()
    assert_close(net[0].gradWeight, emb.weight.grad, np.float32, "embedding grad")
    assert_close(net[1].grad_weight_hh_l0_reverse, lstm.weight_hh_l0_reverse.grad, np.float32, "lstm grad")


def test_shared_lstm_in_a_graph_with_lengths_as_an_input():
    """A siamese pair: one Embedding and one LSTM used on two padded batches, lengths
    as Graph inputs, |h_a - h_b| classified; against PyTorch, parameter gradients
    summed over both uses."""
    r = np.random.default_rng(4)
    a, b, la, lb = (nn.Input(name=n) for n in ("a", "b", "len_a", "len_b"))
    emb = nn.Embedding(15, 4, rng=0)
    lstm = LSTM(4, 6, batch_first=True, return_state=True, rng=0)
    head = nn.Linear(6, 2, rng=0)
    ha = LastStep()(lstm(emb(a), la))
    hb = LastStep()(lstm(emb(b), lb))
    y = head(nn.CSubTable()(ha, hb))
    net = nn.Graph([a, b, la, lb], y)
    ids_a, ids_b = r.integers(0, 15, size=(3, 5)), r.integers(0, 15, size=(3, 4))
    len_a, len_b = np.array([5, 2, 3]), np.array([1, 4, 4])
    out = net.forward((ids_a, ids_b, len_a, len_b))
    g = r.normal(size=out.shape).astype(np.float32)
    assert net.backward((ids_a, ids_b, len_a, len_b), g) == (None, None, None, None)

    t_emb = torch.nn.Embedding(15, 4)
    t_emb.weight.data = torch.tensor(emb.weight)
    t_lstm = torch_twin(lstm)
    t_head = torch.nn.Linear(6, 2)
    t_head.weight.data, t_head.bias.data = torch.tensor(head.W), torch.tensor(head.b)

    def last(ids, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(t_emb(torch.tensor(ids)), torch.tensor(lengths),
                                                         batch_first=True, enforce_sorted=False)
        return t_lstm(packed)[1][0][-1]

    t_out = t_head(last(ids_a, len_a) - last(ids_b, len_b))
    assert_close(out, t_out, np.float32, "output")
    (t_out * torch.tensor(g)).sum().backward()
    assert_close(emb.gradWeight, t_emb.weight.grad, np.float32, "embedding grad")
    for name, p in t_lstm.named_parameters():
        assert_close(getattr(lstm, "grad_" + name), p.grad, np.float32, f"grad {name}")


def test_pad_sequence_matches_torch():
    r = np.random.default_rng(0)
    seqs = [r.normal(size=(n, 2)).astype(np.float32) for n in (3, 1, 4)]
    for batch_first in (True, False):
        for side in ("right", "left"):
            ours = pad_sequence(seqs, batch_first=batch_first, padding_value=-1.0, padding_side=side)
            ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first,
                                                  padding_value=-1.0, padding_side=side)
            np.testing.assert_array_equal(ours, ref.numpy())
    assert pad_sequence([np.array([1, 2]), np.array([3])]).dtype.kind == "i"
    with pytest.raises(ValueError, match=r"sequence 1 has \(2, 3\)"):
        pad_sequence([np.zeros((2, 2)), np.zeros((2, 3))])


# ---------------------------------------------------------------- errors
def test_gradient_errors():
    m = GRU(3, 4, return_state=True, rng=0)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        m.backward(x, (np.zeros((5, 2, 4), np.float32), None))
    m.forward(x)
    with pytest.raises((TypeError, ValueError), match=r"GRU\(3, 4"):
        m.backward(x, np.zeros((5, 2, 4), np.float32))  # the output is (output, h_n)
    with pytest.raises(ValueError, match=r"GRU\(3, 4.*"):
        m.backward(x, (np.zeros((5, 2, 5), np.float32), None))
    with pytest.raises(ValueError, match=r"GRU\(3, 4.*"):
        m.backward(x, (None, np.zeros((2, 2, 4), np.float32)))
    cell = LSTMCell(3, 4)
    cell.forward(np.zeros((2, 3), np.float32))
    with pytest.raises((TypeError, ValueError), match=r"LSTMCell\(3, 4\)"):
        cell.backward(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("make_bad, match", [
    (lambda: LSTM(3, 4, proj_size=4), "proj_size must be smaller than hidden_size"),
    (lambda: RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity must be 'tanh' or 'relu'"),
    (lambda: GRU(3, 0), "hidden_size must be an integer >= 1"),
    (lambda: LSTM(3, 4, num_layers=0), "num_layers must be an integer >= 1"),
    (lambda: GRU(3, 4, dropout=1.5), r"dropout must be a probability in \[0, 1\]"),
    (lambda: RNNCell(3, 4, nonlinearity="gelu"), "nonlinearity must be 'tanh' or 'relu'"),
])
def test_constructor_errors(make_bad, match):
    with pytest.raises(ValueError, match=match):
        make_bad()


def test_repr():
    assert repr(LSTM(28, 128, batch_first=True)) == "LSTM(28, 128, batch_first=True)"
    assert repr(RNN(2, 3, 2, "relu", bias=False)) == "RNN(2, 3, num_layers=2, nonlinearity='relu', bias=False)"
    assert repr(GRUCell(2, 3, bias=False)) == "GRUCell(2, 3, bias=False)"
    assert repr(LastStep(batch_first=False)) == "LastStep(batch_first=False)"
