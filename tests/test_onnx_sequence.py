"""ONNX export of the sequence models (issues 17 and 18): RNN/LSTM/GRU as
ONNX's operators (gate order, biases, directions, layers, lengths, states),
Embedding and LastStep, MultiheadAttention with masks as graph inputs, the
Transformer layers, stacks and positional encodings; run in onnxruntime and
compared with nnumpy's forward."""

import numpy as np
import onnx
import onnxruntime  # noqa: F401
import pytest
from helpers import assert_close  # noqa: E402
from onnx_common import check_onnx, run_onnx  # noqa: E402

import nnumpy as nn


def seq(T, F, batch_first=True, seed=0):
    def make(batch):
        shape = (batch, T, F) if batch_first else (T, batch, F)
        return np.random.default_rng(seed).normal(size=shape).astype(np.float32)

    return make


def lengths_of(T):
    return lambda batch: np.maximum(1, T - np.arange(batch) * 2).astype(np.int64)


RECURRENT = [
    ("LSTM", lambda: nn.LSTM(4, 5, batch_first=True)),
    ("LSTM-2-bi", lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM-nobias", lambda: nn.LSTM(4, 3, bias=False, batch_first=True)),
    ("GRU", lambda: nn.GRU(4, 5, batch_first=True)),
    ("GRU-2-bi", lambda: nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True)),
    ("RNN-tanh", lambda: nn.RNN(4, 5, batch_first=True)),
    ("RNN-relu-3-bi", lambda: nn.RNN(4, 3, num_layers=3, nonlinearity="relu", bidirectional=True, batch_first=True)),
]


@pytest.mark.parametrize("name, make", RECURRENT, ids=[r[0] for r in RECURRENT])
def test_recurrent_exports(name, make):
    nn.manual_seed(0)
    check_onnx(make(), seq(6, 4), opsets=(13, 18, 21))


@pytest.mark.parametrize("name, make", RECURRENT, ids=[r[0] for r in RECURRENT])
def test_recurrent_with_lengths_and_states(name, make):
    nn.manual_seed(0)
    model = make()
    model.return_state = True

    def with_lengths(batch):
        return seq(6, 4)(batch), lengths_of(6)(batch)

    check_onnx(model, with_lengths)


def test_lstm_initial_states_time_major():
    nn.manual_seed(0)
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, return_state=True)

    def inputs(batch):
        rng = np.random.default_rng(1)
        h0 = rng.normal(size=(4, batch, 4)).astype(np.float32)
        return seq(5, 3, batch_first=False)(batch), (h0, rng.normal(size=(4, batch, 4)).astype(np.float32))

    axes = {"input_0": {0: "T", 1: "N"}, "input_1": {1: "N"}, "input_2": {1: "N"}}
    proto = check_onnx(model, inputs, dynamic_axes=axes)
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 2


def test_classifier_embedding_lstm_laststep():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Embedding(12, 6), nn.LSTM(6, 5, batch_first=True, bidirectional=True),
                          nn.LastStep(bidirectional=True), nn.Linear(10, 3), nn.LogSoftMax())

    def ids(batch):
        return np.random.default_rng(0).integers(0, 12, size=(batch, 7))

    check_onnx(model, ids, opsets=(13, 18))


def test_laststep_forms():
    nn.manual_seed(0)
    for last in (nn.LastStep(), nn.LastStep(bidirectional=True)):
        check_onnx(last, seq(5, 4))
        check_onnx(nn.LastStep(batch_first=False), seq(5, 4, batch_first=False), dynamic_axes={"input": {1: "N"}})

        def with_lengths(batch, last=last):
            return seq(5, 4)(batch), lengths_of(5)(batch)

        check_onnx(last, with_lengths)
    gru = nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True, return_state=True)
    check_onnx(nn.Sequential(gru, nn.LastStep()), seq(5, 4))
    lstm = nn.LSTM(4, 3, batch_first=True, return_state=True)
    check_onnx(nn.Sequential(lstm, nn.LastStep()), seq(5, 4))


def test_graph_with_lengths_input():
    """lengths as a graph input reach both the LSTM (sequence_lens) and LastStep."""
    nn.manual_seed(0)
    x, n = nn.Input("x"), nn.Input("lengths")
    h = nn.LSTM(4, 5, batch_first=True, bidirectional=True)(x, n)
    y = nn.Linear(10, 2)(nn.LastStep(bidirectional=True)(h, n))
    net = nn.Graph([x, n], y)

    def inputs(batch):
        return seq(6, 4)(batch), lengths_of(6)(batch)

    proto = check_onnx(net, inputs)
    assert [i.name for i in proto.graph.input] == ["x", "lengths"]


def test_proj_size_refused():
    with pytest.raises(nn.onnx.ExportError, match=r"LSTM.*proj_size has no ONNX equivalent"):
        nn.onnx.export(nn.LSTM(4, 5, proj_size=2), np.zeros((3, 1, 4), np.float32))


# ---------------------------------------------------------------- attention
def tokens(L, E, batch_first=True, seed=0):
    return seq(L, E, batch_first, seed)


def test_multihead_self_attention():
    nn.manual_seed(0)
    for batch_first in (True, False):
        mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        mha.in_proj_bias[...] = np.random.default_rng(0).normal(size=24)
        axes = None if batch_first else {"input": {1: "N"}}
        check_onnx(mha, tokens(5, 8, batch_first), opsets=(13, 18, 21), dynamic_axes=axes)


def test_multihead_cross_attention_kdim_vdim_and_masks():
    nn.manual_seed(0)
    mha = nn.MultiheadAttention(8, 4, kdim=3, vdim=5, batch_first=True)
    rng = np.random.default_rng(1)
    am = rng.random((4, 6)) < 0.3
    am[0] = True  # a query that sees no key: zero weights, as nnumpy

    def inputs(batch):
        kpm = np.zeros((batch, 6), bool)
        kpm[:, -1] = True
        return tokens(4, 8)(batch), tokens(6, 3, seed=1)(batch), tokens(6, 5, seed=2)(batch), kpm, am

    axes = {"input_4": {}}  # attn_mask (L, S) has no batch axis
    check_onnx(mha, inputs, opsets=(13, 18), dynamic_axes=axes)

    additive = rng.normal(size=(4, 6)).astype(np.float32)

    def float_masks(batch):
        q, k, v, kpm, _ = inputs(batch)
        return q, k, v, np.where(kpm, -1e4, 0.0).astype(np.float32), additive

    check_onnx(mha, float_masks, dynamic_axes=axes)


def test_multihead_per_head_mask_in_graph():
    nn.manual_seed(0)
    q, kpm, m = nn.Input("q"), nn.Input("kpm"), nn.Input("mask")
    mha = nn.MultiheadAttention(6, 3)
    net = nn.Graph([q, kpm, m], mha(q, q, q, kpm, m))
    mask = np.triu(np.ones((5, 5), bool), 1)

    def inputs(batch):
        pad = np.zeros((batch, 5), bool)
        pad[1:, 3:] = True
        return tokens(5, 6, batch_first=False)(batch), pad, np.broadcast_to(mask, (batch * 3, 5, 5)).copy()

    check_onnx(net, inputs, dynamic_axes={"q": {1: "N"}, "mask": {0: "NH"}})


@pytest.mark.parametrize("bias_kv, zero_attn", [(True, False), (False, True), (True, True)])
def test_multihead_appended_keys(bias_kv, zero_attn):
    """add_bias_kv / add_zero_attn: positions appended after the projections,
    never masked (a fully masked query still attends them)."""
    nn.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn, batch_first=True)
    check_onnx(mha, tokens(5, 8), opsets=(13, 18))
    q, kpm = nn.Input("q"), nn.Input("kpm")
    net = nn.Graph([q, kpm], mha(q, q, q, kpm))

    def inputs(batch):
        pad = np.zeros((batch, 5), bool)
        pad[0] = True  # every key of sample 0 hidden
        return tokens(5, 8)(batch), pad

    check_onnx(net, inputs)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_classifier(norm_first, activation):
    nn.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=activation, batch_first=True,
                                       norm_first=norm_first)
    model = nn.Sequential(nn.SinusoidalPositionalEncoding(8, batch_first=True),
                          nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)), nn.LastStep(), nn.Linear(8, 3))
    check_onnx(model, tokens(5, 8), opsets=(13, 18, 21))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_and_full(norm_first):
    nn.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=12, norm_first=norm_first)

    def pair(batch):
        return tokens(4, 8, False)(batch), tokens(6, 8, False, seed=1)(batch)

    axes = {"input_0": {1: "N"}, "input_1": {1: "N"}}
    check_onnx(nn.TransformerDecoder(layer, 2), pair, dynamic_axes=axes)
    model = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=12,
                           norm_first=norm_first)
    check_onnx(model, pair, dynamic_axes=axes)


def test_learned_positions_follow_the_length():
    nn.manual_seed(0)
    model = nn.Sequential(nn.LearnedPositionalEncoding(6, max_len=10, batch_first=True), nn.SoftMax(dim=-1))
    proto = nn.onnx.export(model.evaluate(), tokens(4, 6)(1), dynamic_axes={"input": {0: "N", 1: "L"}})
    for L in (3, 7):
        x = tokens(L, 6)(2)
        assert_close(run_onnx(proto, x)[0], model.forward(x), np.float32)


def test_export_file_of_a_character_model(tmp_path):
    """A saved model that starts with an Embedding and records a variable length
    exports with int64 ids and a dynamic time axis."""
    nn.manual_seed(0)
    model = nn.Sequential(nn.Embedding(30, 8), nn.GRU(8, 12, batch_first=True), nn.LastStep(), nn.Linear(12, 30))
    nn.save_model(model, tmp_path / "char.npz", input_shape=(None,))
    proto = nn.onnx.export_file(tmp_path / "char.npz", tmp_path / "char.onnx")
    onnx.checker.check_model(proto, full_check=True)
    ids = np.random.default_rng(0).integers(0, 30, size=(3, 11))
    for steps in (11, 4):
        assert_close(run_onnx(proto, ids[:, :steps])[0], model.evaluate().forward(ids[:, :steps]), np.float32)
    example, axes = nn.onnx.example_input(model, (None,))
    assert example.dtype == np.int64 and example.shape == (1, 1) and axes == {"input": {0: "N", 1: "d1"}}


CELLS = [
    ("LSTMCell", lambda: nn.LSTMCell(4, 5)),
    ("GRUCell", lambda: nn.GRUCell(4, 5)),
    ("RNNCell-relu", lambda: nn.RNNCell(4, 5, nonlinearity="relu")),
    ("GRUCell-nobias", lambda: nn.GRUCell(4, 3, bias=False)),
]


@pytest.mark.parametrize("name, make", CELLS, ids=[c[0] for c in CELLS])
def test_cells_export(name, make):
    nn.manual_seed(0)
    cell = make()

    def x(batch):
        return np.random.default_rng(0).normal(size=(batch, 4)).astype(np.float32)

    def with_state(batch):
        rng = np.random.default_rng(1)
        h = rng.normal(size=(batch, cell.hidden_size)).astype(np.float32)
        return x(batch), ((h, rng.normal(size=h.shape).astype(np.float32)) if name == "LSTMCell" else h)

    check_onnx(cell, x, opsets=(13, 18))
    check_onnx(cell, with_state)


# ---------------------------------------------------------------- the reference models
def test_causal_attention_and_the_reference_sequence_models():
    """LSTM-F, TRF-F and the character models of nnumpy.models run in
    onnxruntime; the causal Transformer's future stays hidden at any length."""
    from nnumpy.models import CausalTransformerEncoder, char_lstm, char_transformer, lstm_f, trf_f

    nn.manual_seed(0)
    check_onnx(lstm_f(rng=0), seq(28, 28), batches=(2,))
    check_onnx(trf_f(rng=0), seq(28, 28), batches=(2,), opsets=(13, 18))

    def ids(steps):
        return lambda batch: np.random.default_rng(0).integers(0, 20, size=(batch, steps))

    check_onnx(char_lstm(20, 8, 16, num_layers=2, rng=0), ids(9))
    model = char_transformer(20, d_model=16, nhead=2, num_layers=2, dim_feedforward=24, max_len=12, rng=0)
    proto = check_onnx(model, ids(9), opsets=(13, 18), dynamic_axes={"input": {0: "N", 1: "T"}})
    for steps in (3, 12):  # other lengths through the same file: the mask follows the length
        x = ids(steps)(2)
        assert_close(run_onnx(proto, x)[0], model.evaluate().forward(x), np.float32)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    causal = CausalTransformerEncoder(layer, 1)
    plain = nn.TransformerEncoder(layer, 1)
    x = seq(5, 8)(1)
    assert not np.allclose(causal.forward(x), plain.forward(x), atol=1e-4)  # the test can tell them apart
    check_onnx(causal, seq(5, 8))


def test_subclass_with_its_own_forward_gets_no_base_converter():
    class AlwaysCausal(nn.TransformerEncoderLayer):
        def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=True):
            return super().forward(src, is_causal=True)

    with pytest.raises(TypeError, match="no ONNX converter for AlwaysCausal"):
        nn.onnx.export(AlwaysCausal(8, 2, 16, batch_first=True), np.zeros((1, 3, 8), np.float32))


# ---------------------------------------------------------------- unbatched inputs: a batch of one inside
def one(*shape, seed=0):
    """An unbatched input: the same array whatever check_onnx's batch size (its first axis is not a batch)."""
    return lambda batch: np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_unbatched_recurrent_cells_and_attention():
    nn.manual_seed(0)
    for batch_first in (False, True):
        lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, return_state=True)
        check_onnx(lstm, one(5, 3), batches=(1,))

        def with_state(batch):
            return one(5, 3)(batch), (one(4, 4, seed=1)(batch), one(4, 4, seed=2)(batch))

        check_onnx(lstm, with_state, batches=(1,))
        check_onnx(nn.GRU(3, 4, batch_first=batch_first), one(6, 3), batches=(1,))
        mha = nn.MultiheadAttention(6, 2, batch_first=batch_first)
        check_onnx(mha, one(4, 6), batches=(1,))

        def qkv_mask(batch):
            return one(4, 6)(batch), one(5, 6, seed=1)(batch), one(5, 6, seed=2)(batch), np.arange(5) > 2

        check_onnx(mha, qkv_mask, batches=(1,))
        layer = nn.TransformerEncoderLayer(6, 2, 8, dropout=0.0, batch_first=batch_first)
        check_onnx(layer, one(4, 6), batches=(1,))
        decoder = nn.TransformerDecoderLayer(6, 2, 8, dropout=0.0, batch_first=batch_first, norm_first=True)
        check_onnx(decoder, lambda b: (one(4, 6)(b), one(3, 6, seed=1)(b)), batches=(1,))
    check_onnx(nn.LSTMCell(3, 4), one(3), batches=(1,))
    check_onnx(nn.GRUCell(3, 4), lambda b: (one(3)(b), one(4, seed=1)(b)), batches=(1,))
    check_onnx(nn.InstanceNorm1d(3, affine=True), one(3, 7), batches=(1,))
    check_onnx(nn.AdaptiveMaxPool2d((2, 3)), one(2, 5, 7), batches=(1,))
