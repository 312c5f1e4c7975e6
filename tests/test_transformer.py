"""Transformer layers, stacks, the encoder-decoder and positional encodings:
PyTorch parity (float32) over randomly drawn configurations (seeded),
gradcheck (float64), state_dict names, dropout, composition, errors."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from test_attention import causal_mask, our_grads, torch_name, torch_state_for

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


def draw_layer(r):
    nhead = int(r.integers(1, 5))
    return dict(
        # at least 4: the gradient of a LayerNorm over 1 or 2 features is zero, leaving rounding noise
        d_model=max(4, nhead * int(r.integers(2, 4))),
        nhead=nhead, dim_feedforward=int(r.integers(1, 12)), dropout=0.0,
        activation=["relu", "gelu"][r.integers(2)], batch_first=bool(r.integers(2)), norm_first=bool(r.integers(2)),
        bias=bool(r.integers(4)), layer_norm_eps=float(r.choice([1e-5, 1e-3])),
    )


def tokens(r, cfg, L, N, dtype=np.float32):
    shape = (N, L, cfg["d_model"]) if cfg["batch_first"] else (L, N, cfg["d_model"])
    return r.normal(size=shape).astype(dtype)


def draw_masks(r, N, L, S, nhead, prefix_mask, prefix_kpm, causal_name):
    """PyTorch-style masks over ``(L, S)`` that leave every query a key (key 0),
    as ``(ours, theirs)`` keyword dicts."""
    ours = {}
    if r.integers(2):
        block = r.random((L, S) if r.integers(2) else (N * nhead, L, S)) < 0.3
        block[..., 0] = False
        ours[prefix_mask] = [block, np.where(block, -np.inf, 0.0).astype(np.float32),
                             r.normal(size=block.shape).astype(np.float32)][r.integers(3)]
    if r.integers(2):
        pad = r.random((N, S)) < 0.3
        pad[:, 0] = False
        ours[prefix_kpm] = pad if r.integers(2) else np.where(pad, -np.inf, 0.0).astype(np.float32)
    theirs = {k: torch.tensor(v) for k, v in ours.items()}
    if causal_name and r.integers(3) == 0:
        ours[causal_name] = True
        causal = torch.tensor(~causal_mask(L, S))  # torch needs the mask itself beside the hint
        am = theirs.get(prefix_mask)
        if am is None:
            theirs[prefix_mask] = causal
        elif am.dtype == torch.bool:
            theirs[prefix_mask] = am | causal
        else:
            theirs[prefix_mask] = am.masked_fill(causal, float("-inf"))
    return ours, theirs


def check_grads(ours, theirs):
    named = dict(theirs.named_parameters())
    for name, g in our_grads(ours).items():
        assert_close(g, named[torch_name(name, theirs)].grad, what=f"grad {name}")


@pytest.mark.parametrize("seed", range(16))
def test_encoder_layer_matches_torch(seed):
    r = np.random.default_rng(seed)
    cfg = draw_layer(r)
    ours = TransformerEncoderLayer(**cfg, rng=seed)
    theirs = torch.nn.TransformerEncoderLayer(**cfg)
    ours.load_state_dict(torch_state_for(ours, theirs))
    L, N = int(r.integers(1, 6)), int(r.integers(1, 4))
    x = tokens(r, cfg, L, N)
    kw, tkw = draw_masks(r, N, L, L, cfg["nhead"], "src_mask", "src_key_padding_mask", "is_causal")
    y = ours(x, **kw) if kw else ours.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    ref = theirs(tx, **tkw)
    assert y.dtype == np.float32
    assert_close(y, ref, what=f"encoder layer {cfg}")
    g = r.normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    gx = ours.backward(x, g)
    (ref * torch.tensor(g)).sum().backward()
    assert_close(gx, tx.grad, what="grad src")
    check_grads(ours, theirs)


@pytest.mark.parametrize("seed", range(16))
def test_decoder_layer_matches_torch(seed):
    r = np.random.default_rng(100 + seed)
    cfg = draw_layer(r)
    ours = TransformerDecoderLayer(**cfg, rng=seed)
    theirs = torch.nn.TransformerDecoderLayer(**cfg)
    ours.load_state_dict(torch_state_for(ours, theirs))
    T, S, N = int(r.integers(1, 6)), int(r.integers(1, 6)), int(r.integers(1, 4))
    tgt, memory = tokens(r, cfg, T, N), tokens(r, cfg, S, N)
    kw, tkw = draw_masks(r, N, T, T, cfg["nhead"], "tgt_mask", "tgt_key_padding_mask", "tgt_is_causal")
    kw2, tkw2 = draw_masks(r, N, T, S, cfg["nhead"], "memory_mask", "memory_key_padding_mask", None)
    kw.update(kw2)
    tkw.update(tkw2)
    y = ours(tgt, memory, **kw)
    tt, tm = torch.tensor(tgt, requires_grad=True), torch.tensor(memory, requires_grad=True)
    ref = theirs(tt, tm, **tkw)
    assert_close(y, ref, what=f"decoder layer {cfg}")
    g = r.normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    g_tgt, g_mem = ours.backward((tgt, memory), g)
    (ref * torch.tensor(g)).sum().backward()
    assert_close(g_tgt, tt.grad, what="grad tgt")
    assert_close(g_mem, tm.grad, what="grad memory")
    check_grads(ours, theirs)


@pytest.mark.parametrize("seed", range(4))
def test_stacks_and_transformer_match_torch(seed):
    r = np.random.default_rng(200 + seed)
    cfg = draw_layer(r)
    n_enc, n_dec = int(r.integers(1, 3)), int(r.integers(1, 3))
    layer_args = {k: cfg[k] for k in ("dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first",
                                      "norm_first", "bias")}
    ours = Transformer(cfg["d_model"], cfg["nhead"], n_enc, n_dec, **layer_args, rng=seed)
    theirs = torch.nn.Transformer(cfg["d_model"], cfg["nhead"], n_enc, n_dec, **layer_args)
    assert list(torch_state_for(ours, theirs)) == list(ours.state_dict())
    ours.load_state_dict(torch_state_for(ours, theirs))
    S, T, N = int(r.integers(1, 6)), int(r.integers(1, 6)), int(r.integers(1, 4))
    src, tgt = tokens(r, cfg, S, N), tokens(r, cfg, T, N)
    mask = Transformer.generate_square_subsequent_mask(T)
    assert np.array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(T).numpy())
    pad = r.random((N, S)) < 0.3
    pad[:, 0] = False
    y = ours(src, tgt, tgt_mask=mask, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    ref = theirs(ts, tt, tgt_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(pad),
                 memory_key_padding_mask=torch.tensor(pad))
    assert_close(y, ref, what="Transformer")
    g = r.normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    g_src, g_tgt = ours.backward((src, tgt), g)
    (ref * torch.tensor(g)).sum().backward()
    assert_close(g_src, ts.grad, what="grad src")
    assert_close(g_tgt, tt.grad, what="grad tgt")
    check_grads(ours, theirs)


def test_encoder_stack_with_norm_and_causal_matches_torch():
    r = np.random.default_rng(3)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
    ours = TransformerEncoder(layer, 3, norm=nn.LayerNorm(8))
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True,
                                                                          norm_first=True), 3,
                                         norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    assert [torch_name(k, theirs) for k in ours.state_dict()] == list(theirs.state_dict())
    ours.load_state_dict(torch_state_for(ours, theirs))
    x = r.normal(size=(2, 5, 8)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ref = theirs(tx, mask=torch.tensor(~causal_mask(5)), is_causal=True)
    y = ours(x, is_causal=True)
    assert_close(y, ref, what="encoder stack")
    g = r.normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    gx = ours.backward(x, g)
    (ref * torch.tensor(g)).sum().backward()
    assert_close(gx, tx.grad, what="grad src")
    check_grads(ours, theirs)


def test_decoder_stack_matches_torch():
    r = np.random.default_rng(4)
    ours = TransformerDecoder(TransformerDecoderLayer(8, 4, 8, dropout=0.0, activation="gelu"), 2, norm=nn.LayerNorm(8))
    theirs = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 4, 8, 0.0, activation="gelu"), 2,
                                         norm=torch.nn.LayerNorm(8))
    ours.load_state_dict(torch_state_for(ours, theirs))
    tgt, memory = r.normal(size=(4, 3, 8)).astype(np.float32), r.normal(size=(6, 3, 8)).astype(np.float32)
    tt, tm = torch.tensor(tgt, requires_grad=True), torch.tensor(memory, requires_grad=True)
    ref = theirs(tt, tm, tgt_mask=torch.tensor(~causal_mask(4)), tgt_is_causal=True)
    y = ours((tgt, memory), tgt_is_causal=True)
    assert_close(y, ref, what="decoder stack")
    g = r.normal(size=y.shape).astype(np.float32)
    ours.zeroGradParameters()
    g_tgt, g_mem = ours.backward((tgt, memory), g)
    (ref * torch.tensor(g)).sum().backward()
    assert_close(g_tgt, tt.grad, what="grad tgt")
    assert_close(g_mem, tm.grad, what="grad memory (summed over the layers)")
    check_grads(ours, theirs)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layers_gradcheck(norm_first, activation):
    r = np.random.default_rng(5)
    enc = TransformerEncoderLayer(4, 2, 6, dropout=0.2, activation=activation, norm_first=norm_first, rng=0)
    dec = TransformerDecoderLayer(4, 2, 6, dropout=0.2, activation=activation, norm_first=norm_first,
                                  batch_first=True, rng=1)
    for m in (enc, dec):
        for _, p in m.named_parameters():  # zero biases and unit norms would hide their gradients
            p[...] = r.normal(size=p.shape) * 0.5 + (1.0 if p.ndim == 1 and p.shape == (4,) else 0.0)
    assert nn.gradcheck(enc, r.normal(size=(3, 2, 4)), atol=1e-6).ok
    assert nn.gradcheck(dec, (r.normal(size=(2, 3, 4)), r.normal(size=(2, 5, 4))), atol=1e-6).ok


def test_transformer_gradcheck():
    r = np.random.default_rng(6)
    model = Transformer(4, 2, 1, 2, 6, dropout=0.0, rng=0)
    for _, p in model.named_parameters():
        p[...] += r.normal(size=p.shape) * 0.3
    assert nn.gradcheck(model, (r.normal(size=(3, 2, 4)), r.normal(size=(2, 2, 4))), atol=1e-6).ok


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
