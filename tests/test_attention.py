"""scaled_dot_product_attention (PyTorch parity and finite differences over
seeded random cases) and what the one table cannot say about
MultiheadAttention (its seeded random configurations, masks and need_weights
included, are entries of tests/module_table.py with parity and finite
differences): masks in the input tuple, fully masked rows, dropout, names,
accumulation, keyword errors, graphs."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

import nnumpy as nn
from nnumpy.gradcheck import _numeric_gradient  # gradcheck's central differences, for kernels and keywords
from nnumpy.layers.attention import (
    MultiheadAttention,
    causal_mask,
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)

# torch warns when key_padding_mask and attn_mask differ in kind; we test exactly that
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")


# ---------------------------------------------------------------- shared helpers (test_transformer imports them)
def torch_state_for(ours, torch_module):
    """``torch_module``'s state_dict under our names: a Linear's ``weight``/``bias`` are ``W``/``b``."""
    keys = dict(ours.state_dict())
    state = {}
    for key, value in torch_module.state_dict().items():
        if key not in keys:
            prefix, _, name = key.rpartition(".")
            key = f"{prefix}.{ {'weight': 'W', 'bias': 'b'}.get(name, name)}".lstrip(".")
        state[key] = value.detach().numpy()
    return state


def torch_name(key, torch_module):
    """Our parameter name ``key`` as PyTorch spells it."""
    names = dict(torch_module.named_parameters())
    if key in names:
        return key
    prefix, _, name = key.rpartition(".")
    return f"{prefix}.{ {'W': 'weight', 'b': 'bias'}[name]}"


def our_grads(module):
    """Parameter name -> gradient array, in ``named_parameters`` order."""
    grads = {}
    for prefix, m in module.named_modules():
        if not m.children():
            for p, g in m.own_parameter_pairs():
                grads[f"{prefix}.{p}" if prefix else p] = getattr(m, g)
    return grads


def numeric_check(run, arrays, analytic, eps=1e-6, atol=1e-7, rtol=1e-5):
    """Central differences of the scalar ``run()`` w.r.t. each array of ``arrays``
    (name -> array, perturbed in place) against ``analytic`` (name -> gradient)."""
    for name, array in arrays.items():
        numeric = _numeric_gradient(run, array, eps)
        err = np.abs(analytic[name] - numeric)
        assert (err <= atol + rtol * np.abs(numeric)).all(), f"{name}: max error {err.max():.3g}"


def t(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


# ---------------------------------------------------------------- the kernel
def draw_kernel_case(r, dtype):
    lead = [(), (2,), (2, 3)][r.integers(3)]
    L, S, E, Ev = (int(n) for n in r.integers(1, 6, size=4))
    q, k, v = (r.normal(size=(*lead, n, e)).astype(dtype) for n, e in ((L, E), (S, E), (S, Ev)))
    kind = ["none", "bool", "float", "float-inf"][r.integers(4)]
    mask = None
    mask_shape = [(L, S), (*lead, L, S), (1, S)][r.integers(3)]
    if kind == "bool":
        mask = r.random(mask_shape) > 0.3
    elif kind == "float":
        mask = r.normal(size=mask_shape).astype(dtype)
    elif kind == "float-inf":
        mask = np.where(r.random(mask_shape) > 0.3, 0.0, -np.inf).astype(dtype)
    causal = bool(r.integers(2)) and mask is None  # PyTorch refuses both together
    scale = None if r.integers(2) else float(r.uniform(0.1, 2))
    return q, k, v, mask, causal, scale


@pytest.mark.parametrize("seed", range(12))
def test_sdpa_matches_torch(seed):
    r = np.random.default_rng(seed)
    q, k, v, mask, causal, scale = draw_kernel_case(r, np.float32)
    out, attn, used = scaled_dot_product_attention(q, k, v, mask, is_causal=causal, scale=scale,
                                                   return_weights=True)
    tq, tk, tv = t(q, True), t(k, True), t(v, True)
    ref = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=None if mask is None else t(mask),
                                         is_causal=causal, scale=scale)
    assert out.dtype == np.float32
    assert_close(out, ref, what="sdpa output")
    g = r.normal(size=out.shape).astype(np.float32)
    ref.backward(t(g))
    for name, ours, theirs in zip("qkv", scaled_dot_product_attention_backward(g, q, k, v, attn, used, scale),
                                  (tq, tk, tv), strict=True):
        assert_close(ours, theirs.grad, what=f"d{name}")


@pytest.mark.parametrize("seed", range(6))
def test_sdpa_gradcheck(seed):
    r = np.random.default_rng(100 + seed)
    q, k, v, mask, causal, scale = draw_kernel_case(r, np.float64)
    p = [0.0, 0.3][seed % 2]
    g = r.normal(size=(*np.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], v.shape[-1]))
    gw = r.normal(size=g.shape[:-1] + (k.shape[-2],)) if seed % 3 == 0 else None

    def forward():
        return scaled_dot_product_attention(q, k, v, mask, p, causal, scale, rng=7, return_weights=True)

    def run():
        out, _, used = forward()
        return float(np.sum(out * g) + (0.0 if gw is None else np.sum(used * gw)))

    out, attn, used = forward()
    dq, dk, dv = scaled_dot_product_attention_backward(g, q, k, v, attn, used, scale, grad_attn=gw)
    numeric_check(run, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv})


def test_sdpa_broadcast_leading_axes():
    r = np.random.default_rng(3)
    q, k, v = r.normal(size=(2, 3, 4, 5)), r.normal(size=(1, 3, 6, 5)), r.normal(size=(3, 6, 2))
    out, attn, used = scaled_dot_product_attention(q, k, v, return_weights=True)
    g = r.normal(size=out.shape)
    dq, dk, dv = scaled_dot_product_attention_backward(g, q, k, v, attn, used)
    assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)
    numeric_check(lambda: float(np.sum(scaled_dot_product_attention(q, k, v) * g)), {"k": k, "v": v},
                  {"k": dk, "v": dv})


def test_sdpa_fully_masked_rows_are_zero_with_zero_gradient():
    r = np.random.default_rng(0)
    q, k, v = (r.normal(size=(2, 3, 4)) for _ in range(3))
    mask = np.ones((3, 3), bool)
    mask[1] = False
    additive = np.where(mask, 0.0, -np.inf)
    for m in (mask, additive):
        with np.errstate(all="raise"):
            out, attn, used = scaled_dot_product_attention(q, k, v, m, return_weights=True)
            dq, dk, dv = scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, attn, used)
        assert np.all(out[:, 1] == 0) and np.all(attn[:, 1] == 0) and np.all(dq[:, 1] == 0)
        assert np.isfinite(dk).all() and np.isfinite(dv).all()
        ref = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(m))
        assert_close(out, ref, what="fully masked row vs torch")


def test_sdpa_huge_logits_are_stable():
    q = np.array([[[1e4, 0.0], [-1e4, 3e4]]], np.float32)
    k = np.array([[[1e4, 0.0], [0.0, 1e4]], ], np.float32)
    v = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="raise"):
        out, attn, used = scaled_dot_product_attention(q, k, v, return_weights=True)
        scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, attn, used)
    assert_close(out, F.scaled_dot_product_attention(t(q), t(k), t(v)), what="huge logits")
    assert np.all(attn[(attn != 0)] >= np.finfo(np.float32).tiny)  # no subnormal weights


def test_sdpa_dropout_is_seeded_and_scaled():
    r = np.random.default_rng(1)
    q, k, v = (r.normal(size=(4, 8, 8)).astype(np.float32) for _ in range(3))
    a = scaled_dot_product_attention(q, k, v, dropout_p=0.5, rng=3, return_weights=True)
    b = scaled_dot_product_attention(q, k, v, dropout_p=0.5, rng=3, return_weights=True)
    assert np.array_equal(a[0], b[0])
    _, attn, used = a
    kept = used != 0
    assert 0.3 < kept.mean() < 0.7
    assert_close(used[kept], 2 * attn[kept], what="kept weights scaled by 1/(1-p)")
    assert np.all(scaled_dot_product_attention(q, k, v, dropout_p=1.0) == 0)


def test_sdpa_causal_mask_and_errors():
    assert causal_mask(2, 3).tolist() == [[True, False, False], [True, True, False]]
    q = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: attn_mask of shape \(4, 3\)"):
        scaled_dot_product_attention(q, q, q, np.ones((4, 3), bool))
    with pytest.raises(TypeError, match="attn_mask must be boolean or floating"):
        scaled_dot_product_attention(q, q, q, np.ones((3, 3), int))
    with pytest.raises(ValueError, match=r"expected query \(\.\.\., L, E\), key"):
        scaled_dot_product_attention(q, np.zeros((2, 3, 5), np.float32), q)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        scaled_dot_product_attention(q, q, q, dropout_p=1.5)
    with pytest.raises(TypeError, match="expected key to be a float array"):
        scaled_dot_product_attention(q, [[1.0]], q)


# ---------------------------------------------------------------- MultiheadAttention
def test_mha_self_attention_nnumpy_gradcheck_and_sequential():
    r = np.random.default_rng(0)
    m = MultiheadAttention(6, 3, add_bias_kv=True, batch_first=True, dtype=np.float64, rng=0)
    m.in_proj_bias[...] = r.normal(size=m.in_proj_bias.shape)
    assert nn.gradcheck(m, r.normal(size=(2, 4, 6)), atol=1e-7).ok
    net = nn.Sequential(MultiheadAttention(6, 2, batch_first=True, rng=1), nn.Tanh())
    x = r.normal(size=(2, 4, 6)).astype(np.float32)
    assert net.forward(x).shape == (2, 4, 6)
    assert net.backward(x, np.ones((2, 4, 6), np.float32)).shape == x.shape


def test_mha_parameter_free_backward_matches_full_backward():
    """Sequential(skip_input_grad) runs accGradParameters without updateGradInput."""
    r = np.random.default_rng(2)
    x = r.normal(size=(3, 2, 8)).astype(np.float32)
    g = r.normal(size=(3, 2, 8)).astype(np.float32)
    a = MultiheadAttention(8, 2, add_bias_kv=True, rng=0)
    b = copy.deepcopy(a)
    for m, need in ((a, True), (b, False)):
        m.forward(x, key_padding_mask=np.array([[False, True, False], [False, False, False]]))
        m.zeroGradParameters()
        m.backward_pass(x, g, need_input_grad=need)
    assert b.gradInput is None
    for ga, gb in zip(a.getGradParameters(), b.getGradParameters(), strict=True):
        assert np.array_equal(ga, gb)


def test_mha_same_array_as_query_key_value():
    r = np.random.default_rng(4)
    m = MultiheadAttention(4, 2, rng=0)
    x = r.normal(size=(3, 2, 4)).astype(np.float32)
    g = r.normal(size=(3, 2, 4)).astype(np.float32)
    y_self = m.forward(x).copy()
    g_self = m.backward(x, g)
    y_tuple = m.forward((x, x, x))
    dq, dk, dv = m.backward((x, x, x), g)
    assert_close(y_tuple, y_self, what="(x, x, x) vs x")
    assert_close(dq + dk + dv, g_self, what="summed tuple gradient")


def test_mha_masks_in_the_input_tuple():
    r = np.random.default_rng(5)
    m = MultiheadAttention(4, 2, batch_first=True, rng=0)
    q, k = r.normal(size=(2, 3, 4)).astype(np.float32), r.normal(size=(2, 5, 4)).astype(np.float32)
    pad = np.array([[False] * 4 + [True], [False] * 5])
    am = r.normal(size=(3, 5)).astype(np.float32)
    y_kw = m(q, k, k, key_padding_mask=pad, attn_mask=am).copy()
    y_tuple = m.forward((q, k, k, pad, am))
    assert_close(y_tuple, y_kw, what="masks in the tuple")
    grads = m.backward((q, k, k, pad, am), np.ones_like(y_tuple))
    assert len(grads) == 5 and grads[3] is None and grads[4] is None
    y_one = m.forward((q, k, k, None, am))
    assert_close(y_one, m(q, k, k, attn_mask=am), what="None in the tuple")
    with pytest.raises(ValueError, match="both in the input tuple and as a keyword"):
        m.forward((q, k, k, pad), key_padding_mask=pad)


def test_mha_fully_masked_query_gives_bias_and_zero_gradient():
    r = np.random.default_rng(6)
    m = MultiheadAttention(4, 2, rng=0)
    m.out_proj.b[...] = r.normal(size=4)
    x = r.normal(size=(3, 2, 4)).astype(np.float32)
    am = np.zeros((3, 3), bool)
    am[1] = True  # query 1 may attend nothing
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, w = m(x, attn_mask=am, need_weights=True)
        m.zeroGradParameters()
        gx = m.backward(x, (np.ones_like(y), np.ones_like(w)))
    assert_close(y[1], np.broadcast_to(m.out_proj.b, (2, 4)), what="fully masked row = out_proj bias")
    assert np.all(w[:, 1] == 0)
    assert np.isfinite(gx).all() and all(np.isfinite(g).all() for g in m.getGradParameters())


def test_mha_dropout_train_and_eval():
    r = np.random.default_rng(7)
    m = MultiheadAttention(8, 2, dropout=0.5, rng=0)
    x = r.normal(size=(5, 2, 8)).astype(np.float32)
    a, b = m.forward(x).copy(), m.forward(x).copy()
    assert not np.allclose(a, b)
    m.eval()
    a, b = m.forward(x).copy(), m.forward(x).copy()
    assert np.array_equal(a, b)
    theirs = torch.nn.MultiheadAttention(8, 2, dropout=0.5).eval()
    m.load_state_dict(torch_state_for(m, theirs))
    assert_close(m.forward(x), theirs(*[torch.tensor(x)] * 3)[0], what="eval mode ignores dropout")


def test_mha_state_dict_names_dtype_and_repr():
    m = MultiheadAttention(8, 2, add_bias_kv=True, kdim=3, vdim=5)
    theirs = torch.nn.MultiheadAttention(8, 2, add_bias_kv=True, kdim=3, vdim=5)
    assert [torch_name(k, theirs) for k in m.state_dict()] == list(theirs.state_dict())
    assert m.num_parameters == sum(p.numel() for p in theirs.parameters())
    assert all(p.dtype == np.float32 for p in m.parameters())
    state = {k: v.copy() + 1 for k, v in m.state_dict().items()}
    other = MultiheadAttention(8, 2, add_bias_kv=True, kdim=3, vdim=5)
    other.load_state_dict(state)
    for k, v in other.state_dict().items():
        assert np.array_equal(v, state[k])
    m.to(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert repr(m) == "MultiheadAttention(embed_dim=8, num_heads=2, kdim=3, vdim=5, add_bias_kv=True)"
    assert [n for n, _ in m.named_modules()] == ["", "out_proj"]
    m.freeze()
    assert m.parameter_pairs() == [] and m.out_proj.frozen


def test_mha_zero_grad_and_accumulation():
    r = np.random.default_rng(8)
    m = MultiheadAttention(4, 1, rng=0)
    x = r.normal(size=(2, 1, 4)).astype(np.float32)
    m.forward(x)
    m.zeroGradParameters()
    m.backward(x, np.ones((2, 1, 4), np.float32))
    once = [g.copy() for g in m.getGradParameters()]
    m.backward(x, np.ones((2, 1, 4), np.float32))
    for g, g1 in zip(m.getGradParameters(), once, strict=True):
        assert_close(g, 2 * g1, what="gradients accumulate")
    m.zeroGradParameters()
    assert all(np.all(g == 0) for g in m.getGradParameters())


@pytest.mark.parametrize(
    "build, call, message",
    [
        (dict(embed_dim=6, num_heads=4), None, r"MultiheadAttention: embed_dim \(6\) must be divisible by num_heads"),
        (dict(embed_dim=0, num_heads=1), None, "embed_dim must be an integer >= 1"),
        (dict(embed_dim=4, num_heads=2, dropout=2.0), None, "dropout must be a probability"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 5), np.float32)),
         r"expected query with 4 features \(last axis\), got \(3, 2, 5\)"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 4), np.float32)[None, None]),
         "expected query, key, value of 3 dims"),
        (dict(embed_dim=4, num_heads=2, kdim=3, vdim=3), lambda m: m(np.zeros((3, 2, 4), np.float32)),
         "self-attention needs kdim == vdim == embed_dim"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.float32), np.zeros((5, 2, 4), np.float32),
                                                    np.zeros((4, 2, 4), np.float32)), "must agree but for features"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.float32), np.zeros((5, 3, 4), np.float32),
                                                    np.zeros((5, 3, 4), np.float32)), "differ in batch size"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.float32),
                                                    key_padding_mask=np.zeros((3, 2), bool)),
         r"expected key_padding_mask of shape \(2, 3\) \(N, S\), got \(3, 2\)"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.float32), attn_mask=np.zeros((2, 3, 3))),
         r"expected attn_mask of shape \(3, 3\) \(L, S\) or \(4, 3, 3\) \(N \* num_heads, L, S\)"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.float32), attn_mask=np.zeros((3, 3), int)),
         "attn_mask must be a boolean or float array"),
        (dict(embed_dim=4, num_heads=2), lambda m: m(np.zeros((3, 2, 4), np.int64)),
         "expected query of a floating dtype"),
        (dict(embed_dim=4, num_heads=2), lambda m: m.forward((np.zeros((3, 2, 4), np.float32),) * 2),
         r"expected input x or \(query, key, value"),
        (dict(embed_dim=4, num_heads=2), lambda m: m.forward(np.zeros((3, 2, 4), np.float32), np.zeros((3, 2, 4))),
         "give both key and value"),
    ],
)
def test_mha_errors_before_any_state_change(build, call, message):
    if call is None:
        with pytest.raises((ValueError, TypeError), match=message):
            MultiheadAttention(**build)
        return
    m = MultiheadAttention(**build)
    x = np.ones((3, 2, 4), np.float32)
    before = m.forward((x, np.ones((3, 2, m.kdim), np.float32), np.ones((3, 2, m.vdim), np.float32))).copy()
    ctx = m._ctx
    with pytest.raises((ValueError, TypeError), match=message) as info:
        call(m)
    assert str(info.value).startswith("MultiheadAttention(")
    assert m._ctx is ctx and np.array_equal(m.output, before)


def test_mha_backward_errors():
    m = MultiheadAttention(4, 2)
    x = np.ones((3, 2, 4), np.float32)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        m.backward(x, x)
    m.forward(x)
    with pytest.raises(ValueError, match=r"expected gradOutput of shape \(3, 2, 4\)"):
        m.backward(x, np.ones((3, 2, 5), np.float32))
    y, w = m(x, need_weights=True)
    with pytest.raises(ValueError, match=r"expected gradOutput of structure \(array\(3, 2, 4\), array\(2, 3, 3\)\)"):
        m.backward(x, y)
    with pytest.raises(ValueError, match="expected gradOutput of structure"):
        m.backward(x, (y, np.ones((2, 3), np.float32)))
    m.zeroGradParameters()
    assert np.array_equal(m.backward(x, (None, None)), np.zeros_like(x))  # None: zeros
    assert all(np.all(g == 0) for g in m.getGradParameters())


def test_mha_in_a_graph_with_the_mask_as_an_input_and_shared():
    r = np.random.default_rng(9)
    mha = MultiheadAttention(4, 2, batch_first=True, rng=0)
    q, k, pad = nn.Input(), nn.Input(), nn.Input()
    h = mha(q, k, k, pad)                       # the mask arrives as a graph input
    out = nn.Tanh()(nn.CAddTable()(mha(h), q))  # the same module again: self-attention on h
    net = nn.Graph([q, k, pad], out)
    qv, kv = r.normal(size=(2, 3, 4)).astype(np.float32), r.normal(size=(2, 5, 4)).astype(np.float32)
    padv = np.zeros((2, 5), bool)
    padv[0, 3:] = True
    y = net.forward((qv, kv, padv))
    direct = mha(qv, kv, kv, key_padding_mask=padv)
    assert_close(y, np.tanh(mha.forward(direct) + qv), what="graph vs direct calls")
    grads = net.backward((qv, kv, padv), np.ones_like(y))
    assert grads[2] is None and grads[1].shape == kv.shape
    assert list(net.state_dict()) == ["multiheadattention_0." + k for k in mha.state_dict()]
    net64 = copy.deepcopy(net).to(np.float64)
    assert nn.gradcheck(net64, (qv.astype(np.float64), kv.astype(np.float64), padv), atol=1e-6).ok
