"""Transformer layers, stacks, the encoder-decoder and positional encodings:
what the one table cannot say (its seeded random layers with masks and causal
flags, encoder-decoder models, stacks and finite-difference cases are entries
of tests/module_table.py): state_dict names, the square mask, dropout modes,
composition, training, keyword and constructor errors."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from test_attention import our_grads, torch_name

import nnumpy as nn
from nnumpy.layers.transformer import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for mismatched .*key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
]


def test_skip_input_grad_in_sequential_gives_the_same_parameter_gradients():
    r = np.random.default_rng(7)
    x = r.normal(size=(2, 5, 8)).astype(np.float32)
    g = r.normal(size=(2, 5, 8)).astype(np.float32)
    results = []
    for skip in (False, True):
        for norm_first in (False, True):
            net = nn.Sequential(TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True,
                                                        norm_first=norm_first, rng=0))
            net.skip_input_grad = skip
            net.forward(x)
            net.zeroGradParameters()
            gin = net.backward(x, g)
            assert (gin is None) == skip
            results.append([a.copy() for _, a in our_grads(net).items()])
    for a, b in zip(results[:2], results[2:], strict=True):
        for ga, gb in zip(a, b, strict=True):
            assert np.array_equal(ga, gb)


def test_state_dict_names_follow_torch():
    layer = TransformerDecoderLayer(8, 2, 16, bias=False)
    theirs = torch.nn.TransformerDecoderLayer(8, 2, 16, bias=False)
    assert [torch_name(k, theirs) for k in layer.state_dict()] == list(theirs.state_dict())
    assert layer.num_parameters == sum(p.numel() for p in theirs.parameters())
    names = [n for n, _ in layer.named_modules()]
    assert names[:5] == ["", "self_attn", "self_attn.out_proj", "multihead_attn", "multihead_attn.out_proj"]
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)
    assert list(enc.state_dict())[0] == "layers.0.self_attn.in_proj_weight"
    assert enc.layers[0] is not enc.layers[1]
    assert not np.shares_memory(enc.layers[0].linear1.W, enc.layers[1].linear1.W)
    model, twin = Transformer(8, 2, 2, 1, 16), torch.nn.Transformer(8, 2, 2, 1, 16)
    assert [torch_name(k, twin) for k in model.state_dict()] == list(twin.state_dict())


def test_square_subsequent_mask_is_torch_s():
    for n in (1, 4):
        assert np.array_equal(Transformer.generate_square_subsequent_mask(n),
                              torch.nn.Transformer.generate_square_subsequent_mask(n).numpy())


def test_dropout_modes_seeds_and_copies():
    r = np.random.default_rng(8)
    x = r.normal(size=(6, 2, 8)).astype(np.float32)
    nn.manual_seed(0)
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.5), 2)
    nn.manual_seed(1)
    a = enc.forward(x).copy()
    nn.manual_seed(1)
    assert np.array_equal(enc.forward(x), a)  # the copies follow manual_seed
    masks = [layer.dropout1._mask for layer in enc.layers]
    assert not np.array_equal(masks[0], masks[1])  # ... and draw their own masks
    enc.eval()
    b = enc.forward(x).copy()
    assert np.array_equal(enc.forward(x), b)
    assert all(not m.training for _, m in enc.named_modules())


def test_a_small_classifier_learns():
    """TRF-F in miniature: rows as tokens, learned positions, encoder, mean over steps, Linear."""
    r = np.random.default_rng(9)
    y = r.integers(0, 2, size=64)
    x = r.normal(size=(64, 6, 5)).astype(np.float32) * 0.5
    x[:, :, 0] += np.where(y == 1, 1.0, -1.0)[:, None]  # the class shows in one feature of every row

    class MeanOverSteps(nn.Module):
        def updateOutput(self, input):
            self.output = input.mean(axis=1)
            return self.output

        def updateGradInput(self, input, gradOutput):
            self.gradInput = np.repeat(gradOutput[:, None] / input.shape[1], input.shape[1], axis=1)
            return self.gradInput

    class Tokens(nn.Module):  # Linear on every row of (N, L, F)
        def __init__(self, lin):
            self.lin = lin

        def children(self):
            return [("lin", self.lin)]

        def updateOutput(self, input):
            self.output = self.lin.forward(input.reshape(-1, input.shape[-1])).reshape(*input.shape[:2], -1)
            return self.output

        def backward(self, input, gradOutput):
            g = self.lin.backward(input.reshape(-1, input.shape[-1]), gradOutput.reshape(-1, gradOutput.shape[-1]))
            self.gradInput = g.reshape(input.shape)
            return self.gradInput

    model = nn.Sequential(Tokens(nn.Linear(5, 8, rng=0)), LearnedPositionalEncoding(8, max_len=6, batch_first=True,
                                                                                   rng=0),
                          TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True, rng=0),
                          MeanOverSteps(), nn.Linear(8, 2, rng=0))
    loss = nn.CrossEntropyCriterion()
    opt = nn.Adam(model, lr=1e-2)
    first = None
    for _ in range(30):
        model.zeroGradParameters()
        value = loss.forward(model.forward(x), y)
        first = value if first is None else first
        model.backward(x, loss.backward(model.output, y))
        opt.step()
    assert value < 0.5 * first


def test_positional_encodings():
    pe = SinusoidalPositionalEncoding(6, max_len=10)
    x = np.zeros((7, 2, 6), np.float32)
    y = pe.forward(x)
    pos, i = np.arange(7)[:, None], np.arange(3)[None]
    assert_close(y[:, 1, 0::2], np.sin(pos / 10000 ** (2 * i / 6)), what="sin")
    assert_close(y[:, 0, 1::2], np.cos(pos / 10000 ** (2 * i / 6)), what="cos")
    assert y.dtype == np.float32 and pe.state_dict() == {}
    odd = SinusoidalPositionalEncoding(5, 4, batch_first=True).forward(np.zeros((1, 4, 5)))
    assert odd.shape == (1, 4, 5) and np.isfinite(odd).all()
    assert np.array_equal(pe.backward(x, np.ones_like(x)), np.ones_like(x))

    learned = LearnedPositionalEncoding(4, max_len=5, batch_first=True, dtype=np.float64, rng=0)
    emb = torch.nn.Embedding(5, 4).double()
    learned.load_state_dict({k: v.detach().numpy() for k, v in emb.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    assert_close(learned.forward(x), torch.tensor(x) + emb.weight[:3], what="learned positions")
    assert nn.gradcheck(learned, x).ok
    assert nn.gradcheck(LearnedPositionalEncoding(4, max_len=3, dtype=np.float64, rng=0),
                        np.random.default_rng(1).normal(size=(3, 2, 4))).ok
    unbatched = LearnedPositionalEncoding(4, max_len=3, rng=0)
    assert_close(unbatched.forward(np.zeros((2, 4), np.float32)), unbatched.weight[:2], what="unbatched")
    with pytest.raises(ValueError, match=r"LearnedPositionalEncoding\(4, max_len=3\): sequence length 4 exceeds"):
        unbatched.forward(np.zeros((4, 1, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, L, E\) or \(L, E\) with E = 6"):
        SinusoidalPositionalEncoding(6, batch_first=True).forward(np.zeros((2, 3, 5), np.float32))


def test_model_file_round_trip(tmp_path):
    r = np.random.default_rng(10)
    model = nn.Sequential(SinusoidalPositionalEncoding(8, 16, batch_first=True),
                          TransformerEncoder(TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True),
                                             2, norm=nn.LayerNorm(8)))
    model.eval()
    x = r.normal(size=(2, 5, 8)).astype(np.float32)
    nn.save_model(model, tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz").eval()
    assert_close(loaded.forward(x), model.forward(x), what="reloaded")
    dec = Transformer(8, 2, 1, 1, 16, batch_first=True)
    nn.save_model(dec, tmp_path / "t.npz")
    assert list(nn.load_model(tmp_path / "t.npz").state_dict()) == list(dec.state_dict())


def _modules(module):
    return [m for _, m in module.named_modules()]


def _set_rates(module, p, eps):
    for m in _modules(module):
        if isinstance(m, nn.Dropout):
            m.p = p
        elif isinstance(m, nn.MultiheadAttention):
            m.dropout = p
        elif isinstance(m, nn.LayerNorm):
            m.eps = eps


@pytest.mark.parametrize(
    "make",
    [
        lambda: TransformerEncoderLayer(8, 2, 16),
        lambda: TransformerDecoderLayer(8, 2, 16),
        lambda: TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8)),
        lambda: TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 2),
        lambda: Transformer(8, 2, 1, 2, 16),
    ],
)
def test_rates_changed_after_construction_survive_a_model_file(tmp_path, make):
    """Dropout rates and LayerNorm eps set on the children after construction are what the file holds."""
    model = make()
    _set_rates(model, 0.25, 1e-3)
    nn.save_model(model, tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    rates = {m.p for m in _modules(loaded) if isinstance(m, nn.Dropout)}
    rates |= {m.dropout for m in _modules(loaded) if isinstance(m, nn.MultiheadAttention)}
    assert rates == {0.25}
    assert {m.eps for m in _modules(loaded) if isinstance(m, nn.LayerNorm)} == {1e-3}
    assert loaded.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize(
    "make, change, message",
    [
        (lambda: TransformerEncoderLayer(8, 2, 16), lambda m: setattr(m.dropout1, "p", 0.5), "dropout differs inside"),
        (lambda: TransformerDecoderLayer(8, 2, 16), lambda m: setattr(m.norm3, "eps", 1e-3),
         "layer_norm_eps differs inside"),  # fmt: skip
        (lambda: TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2), lambda m: _set_rates(m.layers[1], 0.0, 1e-5),
         "layers.1's settings differ from layers.0's"),  # fmt: skip
        (lambda: Transformer(8, 2, 1, 1, 16), lambda m: setattr(m.encoder.norm, "eps", 1e-2),
         "Transformer.get_config: layer_norm_eps differs inside"),  # fmt: skip
    ],
)
def test_rates_one_argument_cannot_describe_raise_on_save(tmp_path, make, change, message):
    model = make()
    change(model)
    with pytest.raises(ValueError, match=message):
        nn.save_model(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TransformerEncoderLayer(6, 4), r"TransformerEncoderLayer: d_model \(6\) must be divisible by nhead"),
        (lambda: TransformerEncoderLayer(8, 2, activation="tanh"), "activation must be 'relu', 'gelu' or a Module"),
        (lambda: TransformerEncoderLayer(8, 2, dim_feedforward=0), "dim_feedforward must be an integer >= 1"),
        (lambda: TransformerEncoder(TransformerDecoderLayer(8, 2), 2), "expected a TransformerEncoderLayer"),
        (lambda: TransformerDecoder(TransformerDecoderLayer(8, 2), 0), "num_layers must be an integer >= 1"),
        (lambda: TransformerEncoder(TransformerEncoderLayer(8, 2), 1, norm="ln"), "norm must be a Module or None"),
    ],
)
def test_constructor_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_input_errors_before_any_state_change():
    enc = TransformerEncoderLayer(8, 2, 16, batch_first=True)
    x = np.ones((2, 3, 8), np.float32)
    before = enc.forward(x).copy()
    saved = enc._saved
    for bad, message in [
        (np.ones((2, 3, 7), np.float32), r"TransformerEncoderLayer\(d_model=8, nhead=2, dim_feedforward=16, "
                                         r"batch_first=True\): expected src of shape \(N, L, E\) or \(L, E\) "
                                         r"with E = 8, got \(2, 3, 7\)"),
        (np.ones((2, 3, 8), np.int32), "expected src of a floating dtype"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            enc.forward(bad)
        assert enc._saved is saved and np.array_equal(enc.output, before)
    with pytest.raises(ValueError, match="expected key_padding_mask of shape"):
        enc(x, src_key_padding_mask=np.zeros((3, 2), bool))
    assert enc._saved is saved
    dec = TransformerDecoderLayer(8, 2, 16)
    with pytest.raises(ValueError, match=r"expected input \(tgt, memory\)"):
        dec.forward(np.ones((3, 2, 8), np.float32))
    with pytest.raises(ValueError, match="tgt .* and memory .* must have the same batch size"):
        dec.forward((np.ones((3, 2, 8), np.float32), np.ones((3, 4, 8), np.float32)))
    with pytest.raises(ValueError, match="expected memory of shape"):
        dec.forward((np.ones((3, 2, 8), np.float32), np.ones((3, 2, 4), np.float32)))
    model = Transformer(8, 2, 1, 1, 16)
    with pytest.raises(ValueError, match="src .* and tgt .* must have the same batch size"):
        model.forward((np.ones((3, 2, 8), np.float32), np.ones((3, 1, 8), np.float32)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward((x, x), x)
