"""Scaled dot-product attention and multi-head attention (PyTorch's names,
arguments and parameter names).

The kernels work on batched head arrays ``(..., L, E)`` with ``np.matmul``,
so there is no Python loop over the batch or the heads:

    scores = q @ k^T * scale + mask          (..., L, S)
    A      = softmax(scores) over S           rows that are fully masked give 0
    out    = dropout(A) @ v                   (..., L, Ev)

``MultiheadAttention`` projects its inputs, splits the features into heads,
calls the kernel once for all heads and projects the result back.
"""

import math

import numpy as np

from .._checks import as_shape, check_float_array, check_positive_int, check_real, shape_probe
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..containers import unbroadcast  # the gradient of broadcasting: sum over the broadcast axes
from ..init import xavier_normal_, xavier_uniform_
from ..module import Module
from .dropout import keep_mask
from .linear import Linear

__all__ = [
    "MultiheadAttention",
    "causal_mask",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
]


# ---------------------------------------------------------------- kernels
# exp(x) for x below this is flushed to 0: the smallest normal float times 1e8 or so
_EXP_FLOOR = {t: 0.7 * float(np.log(np.finfo(t).tiny)) for t in (np.float16, np.float32, np.float64)}


def causal_mask(L, S=None):
    """Boolean ``(L, S)`` mask, True where query ``i`` may attend key ``j``
    (``j <= i``: the lower triangle, aligned top-left as in PyTorch)."""
    S = L if S is None else S
    return np.tri(L, S, dtype=bool)


def _check_mask(mask, scores_shape, who):
    if not hasattr(mask, "dtype") or not hasattr(mask, "shape"):
        raise TypeError(f"{who}: attn_mask must be a boolean or float array, got {type(mask).__name__}")
    if mask.dtype != bool and mask.dtype.kind != "f":
        raise TypeError(f"{who}: attn_mask must be boolean or floating, got dtype {mask.dtype}")
    try:
        shape = np.broadcast_shapes(tuple(mask.shape), tuple(scores_shape))
    except ValueError:
        shape = None
    if shape != tuple(scores_shape):
        raise ValueError(
            f"{who}: attn_mask of shape {tuple(mask.shape)} does not broadcast to the attention "
            f"scores' shape {tuple(scores_shape)} (..., L, S)"
        )


def masked_softmax(scores, allowed=None, additive=None):
    """Softmax over the last axis of ``scores``, in place, with masking.

    ``additive`` (float, broadcastable) is added first; entries where
    ``allowed`` (bool, broadcastable) is False are excluded (-inf). A row with
    no entry left (all excluded or ``-inf``) gives zeros instead of NaN.
    Stable: the row maximum is subtracted before ``exp``, and weights below
    ``exp(-0.7 * 87)`` of the row's largest (float32; ``exp(-0.7 * 708)`` in
    float64) are flushed to exactly zero rather than computed as subnormals,
    which are slow and below the row's resolution anyway.
    """
    xp = get_array_module(scores)
    if additive is not None:
        scores += additive
    if allowed is not None:
        xp.copyto(scores, -np.inf, where=~allowed)
    peak = scores.max(axis=-1, keepdims=True)
    dead = peak == -np.inf  # a fully masked row: exp(-inf - 0) = 0 everywhere
    peak[dead] = 0
    scores -= peak
    xp.copyto(scores, -np.inf, where=scores < _EXP_FLOOR[scores.dtype.type])
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[dead] = 1
    scores /= total
    return scores


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 *, rng=None, return_weights=False):
    """``softmax(query @ key^T * scale + mask) @ value`` (PyTorch's
    ``F.scaled_dot_product_attention``).

    Args:
        query: ``(..., L, E)``; key: ``(..., S, E)``; value: ``(..., S, Ev)``
            (leading axes broadcast).
        attn_mask: None, a boolean array (True: the query *may* attend the
            key, PyTorch's SDPA meaning) or a float array added to the
            scores; broadcastable to ``(..., L, S)``.
        dropout_p: dropout probability on the attention weights (applied
            whenever > 0, as in PyTorch's functional).
        is_causal: also mask keys ``j > i`` (top-left aligned lower
            triangle). PyTorch refuses ``attn_mask`` together with it; here both apply.
        scale: the factor of the scores (default ``1 / sqrt(E)``).
        rng: seed or Generator for the dropout mask.
        return_weights: return ``(out, attn, attn_used)`` instead of ``out``:
            ``attn`` the softmax weights ``(..., L, S)``, ``attn_used`` the
            weights after dropout (``attn`` itself without dropout), what
            ``scaled_dot_product_attention_backward`` needs.

    A query whose keys are all masked attends nothing: its weights and its
    output are zeros (PyTorch's SDPA does the same; its MultiheadAttention
    with ``need_weights=True`` gives NaN), and no gradient flows through it.

    Example:
        >>> import numpy as np
        >>> q = k = v = np.eye(2, dtype=np.float32)[None]
        >>> scaled_dot_product_attention(q, k, v, is_causal=True).round(3).tolist()
        [[[1.0, 0.0], [0.33, 0.67]]]
    """
    xp = get_array_module(query, key, value)
    who = "scaled_dot_product_attention"
    for name, a in (("query", query), ("key", key), ("value", value)):
        check_float_array(who, a, name)
        if a.ndim < 2:
            raise ValueError(f"{who}: expected {name} of shape (..., L, E), got {tuple(a.shape)}")
    if key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"{who}: expected query (..., L, E), key (..., S, E), value (..., S, Ev), got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if not 0.0 <= check_real(who, "dropout_p", dropout_p) <= 1.0:
        raise ValueError(f"{who}: dropout_p must be in [0, 1], got {dropout_p!r}")
    L, S = query.shape[-2], key.shape[-2]
    try:
        lead = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{who}: the leading axes of query {tuple(query.shape)}, key {tuple(key.shape)} and "
            f"value {tuple(value.shape)} do not broadcast"
        ) from None
    if attn_mask is not None:
        _check_mask(attn_mask, (*lead, L, S), who)
    allowed = additive = None
    if attn_mask is not None and attn_mask.dtype == bool:
        allowed = attn_mask
    elif attn_mask is not None:
        additive = attn_mask
    if is_causal:
        tri = causal_mask(L, S)
        allowed = tri if allowed is None else allowed & tri
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = (query * query.dtype.type(scale)) @ xp.swapaxes(key, -1, -2)
    attn = masked_softmax(scores, allowed, additive)
    attn_used = attn
    if dropout_p > 0.0:
        keep = keep_mask(resolve_rng(rng), attn.shape, dropout_p)
        factor = 1.0 / (1.0 - dropout_p) if dropout_p < 1.0 else 0.0
        attn_used = attn * (keep * attn.dtype.type(factor))
    out = attn_used @ value
    return (out, attn, attn_used) if return_weights else out


def scaled_dot_product_attention_backward(grad_out, query, key, value, attn, attn_used=None, scale=None,
                                          grad_attn=None):
    """Gradients ``(dq, dk, dv)`` of ``scaled_dot_product_attention``.

    Args:
        grad_out: ``dL/dout``, ``(..., L, Ev)``.
        query, key, value: the forward's inputs.
        attn, attn_used: the weights ``return_weights=True`` gave
            (``attn_used`` None: no dropout).
        scale: the forward's scale (default ``1 / sqrt(E)``).
        grad_attn: optional ``dL/d attn_used`` from another use of the weights.

    Backward (``A`` the softmax, ``D = A * dropout mask``, ``P = D @ v``):
        ``dv = D^T @ g``; ``dD = g @ v^T (+ grad_attn)``;
        ``dS = D * dD - A * rowsum(D * dD)`` (the softmax's Jacobian, with
        ``A * dA = D * dD`` since ``dA = dD * mask``);
        ``dq = scale * dS @ k``; ``dk = scale * dS^T @ q``.
        Masked entries have ``A = 0``, so no gradient reaches them.
    """
    xp = get_array_module(grad_out, query, key, value)
    attn_used = attn if attn_used is None else attn_used
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    dv = unbroadcast(xp.swapaxes(attn_used, -1, -2) @ grad_out, value.shape)
    d_used = grad_out @ xp.swapaxes(value, -1, -2)
    if grad_attn is not None:
        d_used += grad_attn
    d_used *= attn_used  # D * dD
    d_scores = d_used
    d_scores -= attn * d_used.sum(axis=-1, keepdims=True)
    d_scores *= d_scores.dtype.type(scale)
    dq = unbroadcast(d_scores @ key, query.shape)
    dk = unbroadcast(xp.swapaxes(d_scores, -1, -2) @ query, key.shape)
    return dq, dk, dv


# ---------------------------------------------------------------- the module
class MultiheadAttention(Module):
    """``y = concat(head_1, ..., head_h) @ W_o^T + b_o`` with
    ``head_i = attention(q W_qi^T, k W_ki^T, v W_vi^T)`` (PyTorch's
    ``nn.MultiheadAttention``).

    ``forward(x)`` is self-attention (so it composes in ``Sequential``);
    ``forward((query, key, value))`` or ``forward(query, key, value)`` is the
    general form. Direct calls take PyTorch's keywords (masks are remembered
    for the backward of that call):

    - ``key_padding_mask``: ``(N, S)``, boolean (True: ignore that key) or
      float (added to the scores).
    - ``attn_mask``: ``(L, S)`` or ``(N * num_heads, L, S)``, boolean (True:
      *not* allowed to attend, PyTorch's MultiheadAttention meaning) or float
      (added).
    - ``is_causal``: mask keys after each query. PyTorch takes it only as a
      hint that ``attn_mask`` is causal (and needs ``attn_mask``); here it
      builds the causal mask, and combines with ``attn_mask`` if given.
    - ``need_weights`` (default False here, True in PyTorch): output
      ``(attn_output, attn_weights)``; ``average_attn_weights`` (True):
      weights averaged over heads ``(N, L, S)``, else ``(N, num_heads, L, S)``.
      The weights are those after dropout, as PyTorch returns them.

    A tuple input may also carry the masks, for graphs: ``(query, key, value,
    key_padding_mask, attn_mask)`` (the last two optional, None allowed); its
    gradient has None in the masks' places.

    A query whose keys are all masked attends nothing: its attention is zero
    and its output is ``out_proj.b`` (PyTorch's fast path does the same; its
    slow path gives NaN), its gradient zero.

    Args:
        embed_dim: model width ``E``, divisible by ``num_heads``.
        num_heads: number of heads ``h`` (head width ``E / h``).
        dropout: dropout probability on the attention weights (training mode).
        bias: learn ``in_proj_bias`` and ``out_proj.b`` (True).
        add_bias_kv: learn ``bias_k`` and ``bias_v``, appended to the keys
            and values as one more position.
        add_zero_attn: append one more position of zeros to keys and values.
        kdim, vdim: feature sizes of key and value (default ``embed_dim``).
        batch_first: inputs and output are ``(N, L, E)`` instead of ``(L, N, E)``.
        dtype: parameter dtype (float32). rng: seed or Generator (initialisation, dropout).

    Shape:
        query ``(L, N, E)``, key ``(S, N, kdim)``, value ``(S, N, vdim)``
        (``(N, L, E)``... with ``batch_first``; or unbatched ``(L, E)``...);
        output like query. ``S`` grows by one with ``add_bias_kv`` and by one
        with ``add_zero_attn`` in the weights.

    Attributes:
        in_proj_weight: ``(3E, E)`` xavier-uniform, when ``kdim == vdim == E``;
        otherwise ``q_proj_weight (E, E)``, ``k_proj_weight (E, kdim)``,
        ``v_proj_weight (E, vdim)``, each xavier-uniform.
        in_proj_bias: ``(3E,)`` zeros (None without bias).
        bias_k, bias_v: ``(1, 1, E)`` xavier-normal (None without add_bias_kv).
        out_proj: a ``Linear(E, E)`` holding ``W`` and ``b`` (``b`` zeros). As in
        PyTorch it only holds the parameters (``state_dict`` key ``out_proj.W``);
        this module computes with them, and is one leaf of the protocol.
        grad_<name>: the gradients, same shapes, accumulated.

    Backward (per head, see ``scaled_dot_product_attention_backward``; ``c``
    the concatenated heads, ``g`` the output gradient):
        ``dc = g @ W_o``, ``gradW_o += g^T c``, ``gradb_o += sum(g)``;
        ``dq, dk, dv`` from the kernel; ``grad_in_proj_weight += [dq; dk; dv]^T x``,
        ``grad_in_proj_bias += sum([dq, dk, dv])``; ``dx = [dq, dk, dv] @ W_in``
        (for self-attention the three gradients are summed).

    Example:
        >>> import numpy as np
        >>> mha = MultiheadAttention(8, 2, batch_first=True)
        >>> x = np.ones((3, 5, 8), np.float32)
        >>> mha.forward(x).shape
        (3, 5, 8)
        >>> out, w = mha(x, need_weights=True)
        >>> w.shape
        (3, 5, 5)
    """

    _parameters = (
        ("in_proj_weight", "grad_in_proj_weight"),
        ("q_proj_weight", "grad_q_proj_weight"),
        ("k_proj_weight", "grad_k_proj_weight"),
        ("v_proj_weight", "grad_v_proj_weight"),
        ("in_proj_bias", "grad_in_proj_bias"),
        ("bias_k", "grad_bias_k"),
        ("bias_v", "grad_bias_v"),
    )
    _accepts_none_grad = True  # a None gradient of the weights is skipped, not filled with zeros

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        name = "MultiheadAttention"
        self.embed_dim = check_positive_int(name, "embed_dim", embed_dim)
        self.num_heads = check_positive_int(name, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else check_positive_int(name, "kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_positive_int(name, "vdim", vdim)
        if not 0.0 <= check_real(name, "dropout", dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        rng = self.rng = resolve_rng(rng)
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = xavier_uniform_(np.empty((3 * E, E), dtype), rng=rng)
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.in_proj_weight = None
            self.q_proj_weight = xavier_uniform_(np.empty((E, E), dtype), rng=rng)
            self.k_proj_weight = xavier_uniform_(np.empty((E, self.kdim), dtype), rng=rng)
            self.v_proj_weight = xavier_uniform_(np.empty((E, self.vdim), dtype), rng=rng)
        self.in_proj_bias = np.zeros(3 * E, dtype) if bias else None
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, rng=rng)
        if bias:
            self.out_proj.b[...] = 0
        if add_bias_kv:
            self.bias_k = xavier_normal_(np.empty((1, 1, E), dtype), rng=rng)
            self.bias_v = xavier_normal_(np.empty((1, 1, E), dtype), rng=rng)
        else:
            self.bias_k = self.bias_v = None
        for p, g in self.own_parameter_pairs():
            setattr(self, g, np.zeros_like(getattr(self, p)))
        self._ctx = None

    @classmethod
    def parameter_shapes(cls, config):
        """The projections (packed ``in_proj_weight`` when ``kdim`` and ``vdim``
        are ``embed_dim``), biases and ``out_proj``, from ``config`` alone."""
        E = config["embed_dim"]
        kdim, vdim = config.get("kdim") or E, config.get("vdim") or E
        bias = config.get("bias", True)
        if kdim == E and vdim == E:
            shapes = {"in_proj_weight": (3 * E, E)}
        else:
            shapes = {"q_proj_weight": (E, E), "k_proj_weight": (E, kdim), "v_proj_weight": (E, vdim)}
        if bias:
            shapes["in_proj_bias"] = (3 * E,)
        if config.get("add_bias_kv", False):
            shapes["bias_k"] = shapes["bias_v"] = (1, 1, E)
        shapes["out_proj.W"] = (E, E)
        if bias:
            shapes["out_proj.b"] = (E,)
        return shapes

    # ------------------------------------------------------------ structure
    # out_proj holds parameters only: this module is one leaf of the protocol
    # (its backward computes everything), but names and state_dict keys list
    # out_proj as PyTorch does.
    def named_modules(self, prefix="", _seen=None):
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        if id(self.out_proj) not in seen:
            seen.add(id(self.out_proj))
            yield (f"{prefix}.out_proj" if prefix else "out_proj"), self.out_proj

    def train(self, mode=True):
        self.out_proj.training = bool(mode)
        return Module.train(self, mode)

    def evaluate(self):
        return self.train(False)

    def getParameters(self):
        return Module.getParameters(self) + self.out_proj.getParameters()

    def getGradParameters(self):
        return Module.getGradParameters(self) + self.out_proj.getGradParameters()

    def _proj_weight(self, i, grad=False):
        """Weight (or its gradient) of projection ``i`` (0 query, 1 key, 2 value)."""
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.grad_in_proj_weight if grad else self.in_proj_weight
            return w[i * E:(i + 1) * E]
        name = ("q_proj_weight", "k_proj_weight", "v_proj_weight")[i]
        return getattr(self, "grad_" + name if grad else name)

    # ------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        if not kwargs or "name" in kwargs:  # m(x), m(q, k, v), or a graph node: the protocol's call
            return Module.__call__(self, *args, **kwargs)
        return self.forward(*args, **kwargs)

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """Run the attention; see the class docstring for the arguments."""
        if key is None and value is None:
            input = query
        elif key is None or value is None:
            raise TypeError(f"{self!r}: give both key and value, or neither (self-attention)")
        else:
            input = (query, key, value)
        self._options = dict(key_padding_mask=key_padding_mask, need_weights=bool(need_weights),
                             attn_mask=attn_mask, average_attn_weights=bool(average_attn_weights),
                             is_causal=bool(is_causal))
        try:
            return Module.forward(self, input)
        finally:
            del self._options

    def _unpack(self, input):
        """``(query, key, value, key_padding_mask, attn_mask, tuple_length)``; length 0: a single array."""
        opts = getattr(self, "_options", {})
        kpm, am = opts.get("key_padding_mask"), opts.get("attn_mask")
        if isinstance(input, (tuple, list)):
            if not 3 <= len(input) <= 5:
                raise ValueError(
                    f"{self!r}: expected input x or (query, key, value[, key_padding_mask[, attn_mask]]), "
                    f"got a tuple of {len(input)}"
                )
            q, k, v, *masks = input
            masks += [None] * (2 - len(masks))
            if (masks[0] is not None and kpm is not None) or (masks[1] is not None and am is not None):
                raise ValueError(f"{self!r}: a mask came both in the input tuple and as a keyword")
            kpm = masks[0] if masks[0] is not None else kpm
            am = masks[1] if masks[1] is not None else am
            return q, k, v, kpm, am, len(input)
        return input, input, input, kpm, am, 0

    def _check(self, q, k, v, kpm, am, n_tuple):
        E, names = self.embed_dim, ("query", "key", "value")
        for name, a in zip(names, (q, k, v), strict=True):
            check_float_array(self, a, name)
        ndim = q.ndim
        if ndim not in (2, 3) or k.ndim != ndim or v.ndim != ndim:
            raise ValueError(
                f"{self!r}: expected query, key, value of 3 dims ({'N, L' if self.batch_first else 'L, N'}, E) "
                f"or 2 (L, E), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
            )
        if n_tuple == 0 and not self._qkv_same_embed_dim:
            raise ValueError(f"{self!r}: self-attention needs kdim == vdim == embed_dim; pass (query, key, value)")
        for name, a, d in zip(names, (q, k, v), (E, self.kdim, self.vdim), strict=True):
            if a.shape[-1] != d:
                raise ValueError(f"{self!r}: expected {name} with {d} features (last axis), got {tuple(a.shape)}")
        batched = ndim == 3
        seq_axis = 1 if (self.batch_first and batched) else 0
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"{self!r}: key {tuple(k.shape)} and value {tuple(v.shape)} must agree but for features")
        if batched and q.shape[1 - seq_axis] != k.shape[1 - seq_axis]:
            raise ValueError(f"{self!r}: query {tuple(q.shape)} and key {tuple(k.shape)} differ in batch size")
        L, S = q.shape[seq_axis], k.shape[seq_axis]
        N = q.shape[1 - seq_axis] if batched else None
        if kpm is not None:
            want = (N, S) if batched else (S,)
            if not hasattr(kpm, "dtype") or (kpm.dtype != bool and kpm.dtype.kind != "f"):
                raise TypeError(f"{self!r}: key_padding_mask must be a boolean or float array, got "
                                f"{getattr(kpm, 'dtype', type(kpm).__name__)}")
            if tuple(kpm.shape) != want:
                raise ValueError(f"{self!r}: expected key_padding_mask of shape {want} (N, S), got {tuple(kpm.shape)}")
        if am is not None:
            if not hasattr(am, "dtype") or (am.dtype != bool and am.dtype.kind != "f"):
                raise TypeError(f"{self!r}: attn_mask must be a boolean or float array, got "
                                f"{getattr(am, 'dtype', type(am).__name__)}")
            heads = (N if batched else 1) * self.num_heads
            if tuple(am.shape) not in ((L, S), (heads, L, S)):
                raise ValueError(
                    f"{self!r}: expected attn_mask of shape {(L, S)} (L, S) or {(heads, L, S)} "
                    f"(N * num_heads, L, S), got {tuple(am.shape)}"
                )

    def _heads(self, y, j, n):
        """Projection ``j`` of ``y`` (tokens in the input layout, ``n`` projections side by side)
        as ``(N, H, L, d)``."""
        A, B = y.shape[:2]
        y = y.reshape(A, B, n, self.num_heads, self.head_dim)[:, :, j]
        return y.transpose(0, 2, 1, 3) if self.batch_first else y.transpose(1, 2, 0, 3)

    def _tokens(self, h):
        """``(N, H, L, d)`` back to ``(L, N, H, d)`` / ``(N, L, H, d)`` (a view)."""
        return h.transpose(0, 2, 1, 3) if self.batch_first else h.transpose(2, 0, 1, 3)

    def _squeeze(self, a, unbatched):
        """Drop the batch axis of one that an unbatched input was given."""
        if not unbatched:
            return a
        return a[0] if self.batch_first else a[:, 0]

    def _masks(self, kpm, am, is_causal, N, L, S, dtype):
        """The kernel's masks for ``(N, H, L, S')``: ``(allowed, additive)``."""
        xp = np  # masks are host arrays (boolean or float) the caller made
        H = self.num_heads
        allowed = additive = None

        def add(mask, shape):
            nonlocal allowed, additive
            mask = mask.reshape(shape)
            if mask.dtype == bool:
                allowed = ~mask if allowed is None else allowed & ~mask
            else:
                mask = mask.astype(dtype, copy=False)
                additive = mask if additive is None else additive + mask

        if am is not None:
            add(am, (1, 1, L, S) if am.ndim == 2 else (N, H, L, S))
        if kpm is not None:
            add(kpm, (N, 1, 1, S))
        if is_causal:
            tri = causal_mask(L, S)
            allowed = tri if allowed is None else allowed & tri
        extra = (self.bias_k is not None) + self.add_zero_attn
        if extra:  # the appended positions are never masked
            if allowed is not None:
                allowed = xp.concatenate([allowed, xp.ones((*allowed.shape[:-1], extra), bool)], axis=-1)
            if additive is not None:
                additive = xp.concatenate([additive, xp.zeros((*additive.shape[:-1], extra), dtype)], axis=-1)
        if allowed is not None and additive is not None:  # one float mask
            additive = xp.where(allowed, additive, dtype.type(-np.inf))
            allowed = None
        return allowed, additive

    def output_shape(self, input_shape):
        """The query's shape (``x`` or ``(query, key, value)`` shapes); None with masks in
        the tuple (their values matter). Raises what ``forward`` would."""
        if isinstance(input_shape, (tuple, list)) and input_shape and isinstance(input_shape[0], (tuple, list)):
            if len(input_shape) != 3:
                return None
            q, k, v = (shape_probe(as_shape(self, s)) for s in input_shape)
            self._check(q, k, v, None, None, 3)
            return tuple(q.shape[:-1]) + (self.embed_dim,)
        x = shape_probe(as_shape(self, input_shape))
        self._check(x, x, x, None, None, 0)
        return tuple(x.shape)

    def updateOutput(self, input):
        q_in, k_in, v_in, kpm, am, n_tuple = self._unpack(input)
        self._check(q_in, k_in, v_in, kpm, am, n_tuple)
        opts = getattr(self, "_options", {})
        xp = get_array_module(q_in)
        dtype = q_in.dtype
        unbatched = q_in.ndim == 2
        if unbatched:  # add a batch axis of one
            axis = 0 if self.batch_first else 1
            expanded = {id(a): xp.expand_dims(a, axis) for a in (q_in, k_in, v_in)}  # shared inputs stay shared
            q_in, k_in, v_in = (expanded[id(a)] for a in (q_in, k_in, v_in))
            kpm = None if kpm is None else kpm[None]
        sources = (q_in, k_in, v_in)
        # projections sharing an input (self-attention, key is value) are one product
        groups = []
        for j, x in enumerate(sources):
            if groups and groups[-1][0] is x and self._qkv_same_embed_dim:
                groups[-1][1].append(j)
            else:
                groups.append((x, [j]))
        heads = [None] * 3
        saved = []
        for x, js in groups:
            x2 = x.reshape(-1, x.shape[-1])
            rows = slice(js[0] * self.embed_dim, (js[-1] + 1) * self.embed_dim)
            w = self.in_proj_weight[rows] if len(js) > 1 else self._proj_weight(js[0])  # fused: consecutive rows
            y = x2 @ w.astype(dtype, copy=False).T
            if self.in_proj_bias is not None:
                y += self.in_proj_bias[rows].astype(dtype, copy=False)
            y = y.reshape(*x.shape[:2], y.shape[-1])  # not -1: an empty batch has nothing to infer it from
            for i, j in enumerate(js):
                heads[j] = self._heads(y, i, len(js))
            saved.append((x2, js, x.shape))
        q, k, v = heads
        N, H, L, d = q.shape
        S = k.shape[2]
        if self.bias_k is not None:
            bk = xp.broadcast_to(self.bias_k.astype(dtype, copy=False).reshape(1, H, 1, d), (N, H, 1, d))
            bv = xp.broadcast_to(self.bias_v.astype(dtype, copy=False).reshape(1, H, 1, d), (N, H, 1, d))
            k, v = xp.concatenate([k, bk], axis=2), xp.concatenate([v, bv], axis=2)
        if self.add_zero_attn:
            zeros = xp.zeros((N, H, 1, d), dtype)
            k, v = xp.concatenate([k, zeros], axis=2), xp.concatenate([v, zeros], axis=2)
        allowed, additive = self._masks(kpm, am, opts.get("is_causal", False), N, L, S, dtype)
        mask = additive if additive is not None else allowed  # a boolean mask in SDPA's meaning: True = may attend
        p = self.dropout if self.training else 0.0
        ctx, attn, attn_used = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, rng=self.rng,
                                                            return_weights=True)
        ctx2 = self._tokens(ctx).reshape(-1, self.embed_dim)
        out = ctx2 @ self.out_proj.W.astype(dtype, copy=False).T
        if self.out_proj.b is not None:
            out += self.out_proj.b.astype(dtype, copy=False)
        out = self._squeeze(out.reshape(q_in.shape[:2] + (self.embed_dim,)), unbatched)
        need_weights = opts.get("need_weights", False)
        average = opts.get("average_attn_weights", True)
        self._ctx = dict(q=q, k=k, v=v, attn=attn, attn_used=attn_used, ctx2=ctx2, saved=saved, n_tuple=n_tuple,
                         unbatched=unbatched, need_weights=need_weights, average=average, S=S)
        if need_weights:
            weights = attn_used.mean(axis=1) if average else attn_used
            self.output = (out, weights[0] if unbatched else weights)
        else:
            self.output = out
        return self.output

    # ------------------------------------------------------------ backward
    def _grads(self, gradOutput):
        """``(g2, dys)``: the output gradient as tokens ``(T, E)`` and, per projection group,
        the gradient of its projected tokens ``(T, n * E)``."""
        c = self._ctx
        g_out, g_w = (gradOutput if c["need_weights"] and gradOutput is not None else (gradOutput, None))
        out = self.output[0] if c["need_weights"] else self.output
        xp = get_array_module(out)
        dtype = c["ctx2"].dtype
        if g_out is None:  # None means zeros
            g_out = xp.zeros_like(out)
        if c["unbatched"]:
            g_out = xp.expand_dims(g_out, 0 if self.batch_first else 1)
        g2 = g_out.reshape(-1, self.embed_dim)
        d_ctx = g2 @ self.out_proj.W.astype(dtype, copy=False)
        N, H, L, d = c["q"].shape
        A, B = (N, L) if self.batch_first else (L, N)
        d_ctx = d_ctx.reshape(A, B, H, d)
        d_ctx = d_ctx.transpose(0, 2, 1, 3) if self.batch_first else d_ctx.transpose(1, 2, 0, 3)
        grad_attn = None
        if g_w is not None:
            g_w = g_w[None] if c["unbatched"] else g_w
            grad_attn = xp.broadcast_to(g_w[:, None] / dtype.type(H), c["attn"].shape) if c["average"] else g_w
            grad_attn = grad_attn.astype(dtype, copy=True)
        dq, dk, dv = scaled_dot_product_attention_backward(d_ctx, c["q"], c["k"], c["v"], c["attn"], c["attn_used"],
                                                           grad_attn=grad_attn)
        S = c["S"]
        extra = {}
        if self.bias_k is not None:
            extra["bias_k"] = dk[:, :, S].sum(axis=0).reshape(1, 1, -1)
            extra["bias_v"] = dv[:, :, S].sum(axis=0).reshape(1, 1, -1)
        dheads = (dq, dk[:, :, :S], dv[:, :, :S])
        dys = []
        for x2, js, shape in c["saved"]:
            dy = xp.empty((*shape[:2], len(js), H, d), dtype)
            for i, j in enumerate(js):
                dy[:, :, i] = self._tokens(dheads[j])
            dys.append(dy.reshape(x2.shape[0], len(js) * H * d))
        return g2, dys, extra

    def updateGradInput(self, input, gradOutput):
        c = self._ctx
        g2, dys, extra = grads = self._grads(gradOutput)
        self._keep_for_acc(gradOutput, grads)
        dtype = c["ctx2"].dtype
        per_input = [None] * 3
        E = self.embed_dim
        for (_, js, shape), dy in zip(c["saved"], dys, strict=True):
            if c["n_tuple"] == 0:  # self-attention: one gradient, the three summed
                w = self.in_proj_weight.astype(dtype, copy=False)
                self.gradInput = self._squeeze((dy @ w).reshape(shape), c["unbatched"])
                return self.gradInput
            for i, j in enumerate(js):
                w = self._proj_weight(j).astype(dtype, copy=False)
                gx = (dy[:, i * E:(i + 1) * E] @ w).reshape(shape[:2] + (w.shape[1],))
                per_input[j] = self._squeeze(gx, c["unbatched"])
        self.gradInput = tuple(per_input) + (None,) * (c["n_tuple"] - 3)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        c = self._ctx
        kept = self._take_kept(gradOutput)
        g2, dys, extra = kept if kept is not None else self._grads(gradOutput)
        E = self.embed_dim
        for (x2, js, _), dy in zip(c["saved"], dys, strict=True):
            rows = slice(js[0] * E, (js[-1] + 1) * E)
            if len(js) > 1:  # projections sharing an input: one product for their rows of in_proj_weight
                self.grad_in_proj_weight[rows] += dy.T @ x2
            else:
                self._proj_weight(js[0], grad=True)[...] += dy.T @ x2
            if self.in_proj_bias is not None:
                self.grad_in_proj_bias[rows] += dy.sum(axis=0)
        if self.bias_k is not None:
            self.grad_bias_k += extra["bias_k"]
            self.grad_bias_v += extra["bias_v"]
        self.out_proj.gradW += g2.T @ c["ctx2"]
        if self.out_proj.b is not None:
            self.out_proj.gradb += g2.sum(axis=0)

    def extra_repr(self):
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.bias_k is not None:
            text += ", add_bias_kv=True"
        if self.add_zero_attn:
            text += ", add_zero_attn=True"
        if self.in_proj_bias is None:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        return text
