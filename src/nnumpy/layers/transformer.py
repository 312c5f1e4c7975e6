"""Transformer encoder and decoder layers, their stacks, the full
encoder-decoder and positional encodings (PyTorch's names, arguments,
defaults and children: ``self_attn``, ``linear1``, ``norm1``, ...).

Each layer is a hand-written composite: ``updateOutput`` runs the children
(``MultiheadAttention``, ``Linear``, ``LayerNorm``, ``Dropout``) and the
backward calls their backward in reverse, adding the gradients of the
residual connections. The feed-forward part works on the tokens as a
``(L * N, E)`` matrix, so each ``Linear`` is one matrix product.
"""

import copy
import math

import numpy as np

from .._checks import as_shape, check_float_array, check_positive_int, shape_probe
from .._structure import fill_none, float_like
from ..backend import DEFAULT_DTYPE, resolve_rng
from ..containers import Composite, Container, child_backward
from ..init import normal_, xavier_uniform_
from ..module import Module
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .dropout import Dropout
from .layer_norm import LayerNorm
from .linear import Linear

__all__ = [
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "TransformerDecoderLayer",
    "TransformerDecoder",
    "Transformer",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
]


def _activation(name, activation):
    if isinstance(activation, Module):
        return activation
    if activation == "relu":
        return ReLU()
    if activation == "gelu":
        return GELU()
    raise ValueError(f"{name}: activation must be 'relu', 'gelu' or a Module, got {activation!r}")


def _clone(module):
    """A deep copy of ``module`` whose random generators are the original's
    (so copies draw different dropout masks from one stream, and the default
    generator stays the one ``nnumpy.manual_seed`` controls)."""
    memo = {}
    for _, m in module.named_modules():
        for value in vars(m).values():
            if isinstance(value, np.random.Generator):
                memo[id(value)] = value
    return copy.deepcopy(module, memo)


def _one_setting(module, arg, values):
    """The one value of ``values`` (``{where: value}``), the constructor argument ``arg`` of ``module``."""
    if len(set(values.values())) > 1:
        raise ValueError(f"{type(module).__name__}.get_config: {arg} differs inside it ({values}); the "
                         f"constructor's one {arg!r} cannot describe that: set them alike")  # fmt: skip
    return next(iter(values.values()))


def _reported(module):
    """The parameter shapes a module (or a file's not yet built ``ModuleConfig``) reports, or None."""
    if isinstance(module, Module):
        return type(module).parameter_shapes(module.get_config())
    return module.parameter_shapes()


def _prefixed(prefix, shapes):
    return None if shapes is None else {f"{prefix}.{k}": v for k, v in shapes.items()}


def _layer_shapes(config, decoder):
    """The parameter shapes of a Transformer{Encoder,Decoder}Layer of ``config``."""
    d, ff, bias = config["d_model"], config.get("dim_feedforward", 2048), config.get("bias", True)
    attention = MultiheadAttention.parameter_shapes({"embed_dim": d, "num_heads": config["nhead"], "bias": bias})
    shapes = _prefixed("self_attn", attention)
    if decoder:
        shapes.update(_prefixed("multihead_attn", attention))
    shapes.update(_prefixed("linear1", Linear.parameter_shapes({"n_in": d, "n_out": ff, "bias": bias})))
    shapes.update(_prefixed("linear2", Linear.parameter_shapes({"n_in": ff, "n_out": d, "bias": bias})))
    norm = LayerNorm.parameter_shapes({"normalized_shape": d, "bias": bias})
    for name in ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2"):
        shapes.update(_prefixed(name, norm))
    return shapes


def _stack_shapes(layer, num_layers, norm=None):
    """``layers.<i>.*``: ``num_layers`` copies of ``layer``'s shapes (and ``norm.*`` when given)."""
    if not 0 < num_layers <= 4096:
        raise ValueError(f"num_layers must be in [1, 4096], got {num_layers!r}")
    one = _reported(layer)
    if one is None:
        return None
    shapes = {f"layers.{i}.{k}": v for i in range(num_layers) for k, v in one.items()}
    if norm is not None:
        extra = _reported(norm)
        if extra is None:
            return None
        shapes.update(_prefixed("norm", extra))
    return shapes


def _back(child, input, grad, need=True):
    return child_backward(child, input, grad, need)


def _pair_shape(block, input_shape, names):
    """The pair of shapes ``input_shape``, checked by ``block._pair`` as ``forward`` checks the arrays."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 2 or not all(
        isinstance(s, (tuple, list)) for s in input_shape
    ):
        raise ValueError(f"{block._name()}: expected input ({names[0]}, {names[1]}), got shape {input_shape!r}")
    a, b = (as_shape(block, s) for s in input_shape)
    block._pair((shape_probe(a), shape_probe(b)), names)
    return a, b


class _Block(Composite):
    """What the layers share: keyword calls (masks), a one-line name for
    messages, and one backward pass that runs the children's backward."""

    def __call__(self, *args, **kwargs):
        if not kwargs or "name" in kwargs:  # m(x), m(tgt, memory), or a graph node: the protocol's call
            return Module.__call__(self, *args, **kwargs)
        return self.forward(*args, **kwargs)

    def _call(self, input, options):
        self._options = options
        try:
            return Module.forward(self, input)
        finally:
            del self._options

    def _option(self, name):
        return getattr(self, "_options", {}).get(name)

    def _name(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def _check_tokens(self, x, what, d_model):
        check_float_array(self._name(), x, what)
        if x.ndim not in (2, 3) or x.shape[-1] != d_model:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ValueError(
                f"{self._name()}: expected {what} of shape {layout} or (L, E) with E = {d_model}, got {tuple(x.shape)}"
            )

    def _pair(self, input, names):
        """``input`` as the checked pair ``(a, b)`` of token arrays named ``names``."""
        if not isinstance(input, (tuple, list)) or len(input) != 2:
            raise ValueError(f"{self._name()}: expected input ({names[0]}, {names[1]}), got {type(input).__name__}")
        a, b = input
        self._check_tokens(a, names[0], self.d_model)
        self._check_tokens(b, names[1], self.d_model)
        self._check_batches(a, b, names)
        return a, b

    def _check_batches(self, a, b, names):
        if a.ndim != b.ndim or (a.ndim == 3 and a.shape[0 if self.batch_first else 1]
                                != b.shape[0 if self.batch_first else 1]):
            raise ValueError(
                f"{self._name()}: {names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} must have the same "
                "batch size (and both be batched or unbatched)"
            )

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        grad = self._backprop(float_like(fill_none(gradOutput, self.output), self.output), need_input_grad)
        self.gradInput = grad if need_input_grad else None
        return self.gradInput


class _Layer(_Block):
    """Attention blocks plus the feed-forward block ``linear2(dropout(act(linear1(x))))``."""

    def _build(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
               bias, dtype, rng, n_attn):
        name = type(self).__name__
        self.d_model = check_positive_int(name, "d_model", d_model)
        self.nhead = check_positive_int(name, "nhead", nhead)
        if d_model % nhead:
            raise ValueError(f"{name}: d_model ({d_model}) must be divisible by nhead ({nhead})")
        self.dim_feedforward = check_positive_int(name, "dim_feedforward", dim_feedforward)
        self.batch_first, self.norm_first = bool(batch_first), bool(norm_first)
        act = _activation(name, activation)
        rng = resolve_rng(rng)
        attn = dict(dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype, rng=rng)
        self.self_attn = MultiheadAttention(d_model, nhead, **attn)
        if n_attn == 2:
            self.multihead_attn = MultiheadAttention(d_model, nhead, **attn)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rng=rng)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rng=rng)
        for i in range(1, n_attn + 2):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        for i in range(1, n_attn + 2):
            setattr(self, f"dropout{i}", Dropout(dropout, rng=rng))
        self.activation = act
        self._n_attn = n_attn
        self._saved = None

    def get_config(self):
        """The constructor arguments, with ``dropout`` and ``layer_norm_eps``
        read from the children as they are now (``layer.dropout1.p = 0.2`` on
        every dropout is what a model file stores). Children that disagree
        raise ValueError: one argument cannot describe them."""
        config = super().get_config()
        rates = {n: m.p for n, m in self.children() if isinstance(m, Dropout)}
        rates.update({f"{n}.dropout": m.dropout for n, m in self.children() if isinstance(m, MultiheadAttention)})
        eps = {n: m.eps for n, m in self.children() if isinstance(m, LayerNorm)}
        config["dropout"] = _one_setting(self, "dropout", rates)
        config["layer_norm_eps"] = _one_setting(self, "layer_norm_eps", eps)
        return config

    def children(self):
        names = ["self_attn"] + (["multihead_attn"] if self._n_attn == 2 else []) + ["linear1", "dropout", "linear2"]
        names += [f"norm{i}" for i in range(1, self._n_attn + 2)] + [f"dropout{i}" for i in range(1, self._n_attn + 2)]
        return [(n, getattr(self, n)) for n in names + ["activation"]]

    def _ff(self, x2, last_dropout):
        h = self.activation.forward(self.linear1.forward(x2))
        return last_dropout.forward(self.linear2.forward(self.dropout.forward(h)))

    def _ff_backward(self, x2, g, last_dropout):
        g = _back(last_dropout, self.linear2.output, g)
        g = _back(self.linear2, self.dropout.output, g)
        g = _back(self.dropout, self.activation.output, g)
        g = _back(self.activation, self.linear1.output, g)
        return _back(self.linear1, x2, g)

    def _attend(self, attn, x, memory, dropout, mask, kpm, causal):
        """``dropout(attn(x, memory))`` as tokens ``(T, E)``; memory None: self-attention."""
        if memory is None:
            a = attn.forward(x, attn_mask=mask, key_padding_mask=kpm, is_causal=causal)
        else:
            a = attn.forward(x, memory, memory, attn_mask=mask, key_padding_mask=kpm, is_causal=causal)
        return dropout.forward(a.reshape(-1, self.d_model))

    def _attend_backward(self, attn, x, memory, dropout, g, need=True):
        """Gradient w.r.t. ``x`` as tokens (and ``memory``, when given) of ``_attend``."""
        g = _back(dropout, attn.output.reshape(-1, self.d_model), g).reshape(x.shape)
        if memory is None:
            gx = _back(attn, x, g, need)
            return None if gx is None else gx.reshape(-1, self.d_model)
        gq, gk, gv = _back(attn, (x, memory, memory), g)
        return gq.reshape(-1, self.d_model), gk + gv

    def extra_repr(self):
        text = f"d_model={self.d_model}, nhead={self.nhead}, dim_feedforward={self.dim_feedforward}"
        text += ", norm_first=True" if self.norm_first else ""
        return text + (", batch_first=True" if self.batch_first else "")


class TransformerEncoderLayer(_Layer):
    """``y = norm2(h + ff(h))``, ``h = norm1(x + sa(x))`` (post-norm), or
    ``h = x + sa(norm1(x))``, ``y = h + ff(norm2(h))`` with ``norm_first``
    (PyTorch's ``nn.TransformerEncoderLayer``). ``sa`` is self-attention
    followed by ``dropout1``, ``ff(x) = dropout2(linear2(dropout(act(linear1(x)))))``.

    ``forward(src)`` composes in ``Sequential``; direct calls take PyTorch's
    keywords ``src_mask``, ``src_key_padding_mask``, ``is_causal`` (see
    ``MultiheadAttention`` for the masks' meaning; ``is_causal`` builds the causal mask).

    Args:
        d_model: model width ``E``; nhead: heads (``E % nhead == 0``).
        dim_feedforward: hidden width of the feed-forward block (2048).
        dropout: dropout probability everywhere (0.1).
        activation: ``'relu'``, ``'gelu'`` or a Module (``GELU('tanh')``).
        layer_norm_eps: LayerNorm's eps (1e-5).
        batch_first: ``(N, L, E)`` instead of ``(L, N, E)``.
        norm_first: pre-norm (LayerNorm before each block) instead of post-norm.
        bias: biases in the linear layers and LayerNorms (True).
        dtype, rng: parameter dtype; seed or Generator (initialisation, dropout).

    Shape:
        src ``(L, N, E)`` (``(N, L, E)`` with batch_first, or ``(L, E)``); output the same.

    Attributes:
        self_attn (MultiheadAttention), linear1 (E -> dim_feedforward), dropout,
        linear2 (dim_feedforward -> E), norm1, norm2 (LayerNorm), dropout1,
        dropout2, activation: PyTorch's children, so ``state_dict`` keys match
        (``self_attn.in_proj_weight``, ``linear1.W``, ``norm1.weight``, ...).

    Backward (post-norm, ``g`` the output gradient, each child's own backward):
        ``g_h = norm2'(g)``, then ``+ ff'(g_h)``; ``g_x = norm1'(g_h)``, then ``+ sa'(g_x)``:
        each residual adds the gradient that flows around the block.

    Example:
        >>> import numpy as np
        >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        >>> layer.forward(np.ones((3, 5, 8), np.float32)).shape
        (3, 5, 8)
    """

    @classmethod
    def parameter_shapes(cls, config):
        """self_attn, linear1, linear2, norm1, norm2, from ``config`` alone."""
        return _layer_shapes(config, decoder=False)

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, dtype, rng, n_attn=1)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """Run the layer; see the class docstring."""
        return self._call(src, dict(mask=src_mask, kpm=src_key_padding_mask, causal=bool(is_causal)))

    def output_shape(self, input_shape):
        """The shape of ``src``; raises what ``forward`` would."""
        shape = as_shape(self, input_shape)
        self._check_tokens(shape_probe(shape), "src", self.d_model)
        return shape

    def updateOutput(self, input):
        self._check_tokens(input, "src", self.d_model)
        mask, kpm, causal = self._option("mask"), self._option("kpm"), bool(self._option("causal"))
        x2 = input.reshape(-1, self.d_model)
        if self.norm_first:
            n1 = self.norm1.forward(x2).reshape(input.shape)
            h = x2 + self._attend(self.self_attn, n1, None, self.dropout1, mask, kpm, causal)
            n2 = self.norm2.forward(h)
            y = h + self._ff(n2, self.dropout2)
            self._saved = (x2, n1, h, n2)
        else:
            h = x2 + self._attend(self.self_attn, input, None, self.dropout1, mask, kpm, causal)
            y1 = self.norm1.forward(h)
            h2 = y1 + self._ff(y1, self.dropout2)
            y = self.norm2.forward(h2)
            self._saved = (input, h, y1, h2)
        self.output = y.reshape(input.shape)
        return self.output

    def _backprop(self, gradOutput, need):
        g = gradOutput.reshape(-1, self.d_model)
        if self.norm_first:
            x2, n1, h, n2 = self._saved
            g_h = g + _back(self.norm2, h, self._ff_backward(n2, g, self.dropout2))
            g_n1 = self._attend_backward(self.self_attn, n1, None, self.dropout1, g_h)
            g_x = _back(self.norm1, x2, g_n1, need)
            return None if not need else (g_h + g_x).reshape(gradOutput.shape)
        src, h, y1, h2 = self._saved
        g_h2 = _back(self.norm2, h2, g)
        g_y1 = g_h2 + self._ff_backward(y1, g_h2, self.dropout2)
        g_h = _back(self.norm1, h, g_y1)
        g_x = self._attend_backward(self.self_attn, src, None, self.dropout1, g_h, need)
        return None if not need else (g_h + g_x).reshape(gradOutput.shape)


class TransformerDecoderLayer(_Layer):
    """Self-attention, cross-attention on ``memory``, feed-forward, each with a
    residual and a LayerNorm (PyTorch's ``nn.TransformerDecoderLayer``):
    post-norm ``x = norm1(x + sa(x))``, ``x = norm2(x + ca(x, m))``,
    ``y = norm3(x + ff(x))``; with ``norm_first`` ``x = x + sa(norm1(x))``,
    ``x = x + ca(norm2(x), m)``, ``y = x + ff(norm3(x))``.

    The input is the tuple ``(tgt, memory)`` (``forward(tgt, memory)`` also
    works); backward returns ``(grad_tgt, grad_memory)``. Direct calls take
    PyTorch's keywords ``tgt_mask``, ``memory_mask``, ``tgt_key_padding_mask``,
    ``memory_key_padding_mask``, ``tgt_is_causal``, ``memory_is_causal``.

    Args: as ``TransformerEncoderLayer``.

    Shape:
        tgt ``(T, N, E)``, memory ``(S, N, E)`` (batch first with ``batch_first``);
        output like tgt.

    Attributes:
        self_attn, multihead_attn (MultiheadAttention), linear1, dropout,
        linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3, activation.

    Backward: as the encoder layer's, block by block in reverse; the memory's
    gradient is the cross-attention's key plus value gradients.

    Example:
        >>> import numpy as np
        >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16)
        >>> tgt, memory = np.ones((4, 2, 8), np.float32), np.ones((6, 2, 8), np.float32)
        >>> layer.forward((tgt, memory)).shape
        (4, 2, 8)
        >>> [g.shape for g in layer.backward((tgt, memory), np.ones((4, 2, 8), np.float32))]
        [(4, 2, 8), (6, 2, 8)]
    """

    @classmethod
    def parameter_shapes(cls, config):
        """self_attn, multihead_attn, linear1, linear2, norm1-3, from ``config`` alone."""
        return _layer_shapes(config, decoder=True)

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, dtype, rng, n_attn=2)

    def forward(self, tgt, memory=None, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        """Run the layer on ``(tgt, memory)``; see the class docstring."""
        input = tgt if memory is None else (tgt, memory)
        return self._call(input, dict(tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_kpm=tgt_key_padding_mask,
                                      memory_kpm=memory_key_padding_mask, tgt_causal=bool(tgt_is_causal),
                                      memory_causal=bool(memory_is_causal)))

    def output_shape(self, input_shape):
        """The shape of ``tgt`` for the input ``(tgt, memory)``."""
        return _pair_shape(self, input_shape, ("tgt", "memory"))[0]

    def updateOutput(self, input):
        tgt, memory = self._pair(input, ("tgt", "memory"))
        o = self._option
        sa = (o("tgt_mask"), o("tgt_kpm"), bool(o("tgt_causal")))
        ca = (o("memory_mask"), o("memory_kpm"), bool(o("memory_causal")))
        t2, shape = tgt.reshape(-1, self.d_model), tgt.shape
        if self.norm_first:
            n1 = self.norm1.forward(t2).reshape(shape)
            h1 = t2 + self._attend(self.self_attn, n1, None, self.dropout1, *sa)
            n2 = self.norm2.forward(h1).reshape(shape)
            h2 = h1 + self._attend(self.multihead_attn, n2, memory, self.dropout2, *ca)
            n3 = self.norm3.forward(h2)
            y = h2 + self._ff(n3, self.dropout3)
            self._saved = (t2, n1, h1, n2, h2, n3, memory)
        else:
            h1 = t2 + self._attend(self.self_attn, tgt, None, self.dropout1, *sa)
            y1 = self.norm1.forward(h1)
            h2 = y1 + self._attend(self.multihead_attn, y1.reshape(shape), memory, self.dropout2, *ca)
            y2 = self.norm2.forward(h2)
            h3 = y2 + self._ff(y2, self.dropout3)
            y = self.norm3.forward(h3)
            self._saved = (tgt, h1, y1, h2, y2, h3, memory)
        self.output = y.reshape(shape)
        return self.output

    def _backprop(self, gradOutput, need):
        g = gradOutput.reshape(-1, self.d_model)
        shape = gradOutput.shape
        if self.norm_first:
            t2, n1, h1, n2, h2, n3, memory = self._saved
            g_h2 = g + _back(self.norm3, h2, self._ff_backward(n3, g, self.dropout3))
            g_n2, g_mem = self._attend_backward(self.multihead_attn, n2, memory, self.dropout2, g_h2)
            g_h1 = g_h2 + _back(self.norm2, h1, g_n2)
            g_n1 = self._attend_backward(self.self_attn, n1, None, self.dropout1, g_h1)
            g_t = g_h1 + _back(self.norm1, t2, g_n1)
        else:
            tgt, h1, y1, h2, y2, h3, memory = self._saved
            g_h3 = _back(self.norm3, h3, g)
            g_y2 = g_h3 + self._ff_backward(y2, g_h3, self.dropout3)
            g_h2 = _back(self.norm2, h2, g_y2)
            g_q, g_mem = self._attend_backward(self.multihead_attn, y1.reshape(shape), memory, self.dropout2, g_h2)
            g_h1 = _back(self.norm1, h1, g_h2 + g_q)
            g_t = g_h1 + self._attend_backward(self.self_attn, tgt, None, self.dropout1, g_h1)
        return g_t.reshape(shape), g_mem


class LayerStack(Container):
    """The numbered layers of a stack (PyTorch's ``ModuleList`` named ``layers``)."""


class _Stack(_Block):
    def _build(self, layer, num_layers, norm, kind):
        name = type(self).__name__
        if not isinstance(layer, kind):
            raise TypeError(f"{name}: expected a {kind.__name__}, got {type(layer).__name__}")
        check_positive_int(name, "num_layers", num_layers)
        if norm is not None and not isinstance(norm, Module):
            raise TypeError(f"{name}: norm must be a Module or None, got {type(norm).__name__}")
        self.layers = LayerStack(*[_clone(layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.batch_first = layer.batch_first
        self.d_model = layer.d_model

    def get_config(self):
        """The constructor arguments, the layer to copy having the settings of
        ``layers.0`` as it is now; layers whose settings differ raise
        ValueError (one layer argument cannot describe them)."""
        config = super().get_config()
        arg = next(k for k in config if k.endswith("_layer"))
        first = self.layers[0].get_config()
        for i, layer in enumerate(self.layers):
            if layer.get_config() != first:
                raise ValueError(f"{type(self).__name__}.get_config: layers.{i}'s settings differ from layers.0's "
                                 f"({layer.get_config()} vs {first}); one {arg!r} cannot describe them")  # fmt: skip
        if config[arg].get_config() != first:  # changed since construction: a copy outside the tree
            config[arg] = _clone(self.layers[0])
        return config

    def children(self):
        return [("layers", self.layers)] + ([("norm", self.norm)] if self.norm is not None else [])

    def output_shape(self, input_shape):
        """The shape of ``src`` (encoder) or of ``tgt`` for ``(tgt, memory)`` (decoder):
        every layer and the norm keep it."""
        if isinstance(input_shape, (tuple, list)) and input_shape and isinstance(input_shape[0], (tuple, list)):
            return _pair_shape(self, input_shape, ("tgt", "memory"))[0]
        return self.layers[0].output_shape(input_shape)

    def extra_repr(self):
        return f"num_layers={self.num_layers}"


class TransformerEncoder(_Stack):
    """``num_layers`` copies of ``encoder_layer`` one after another, then
    ``norm`` if given (PyTorch's ``nn.TransformerEncoder``).

    The layers are deep copies (``layers.0``, ``layers.1``, ... in
    ``state_dict``), sharing the original's random generator. Direct calls
    take ``mask``, ``src_key_padding_mask``, ``is_causal`` (passed to every layer).

    Args:
        encoder_layer: a ``TransformerEncoderLayer`` to copy.
        num_layers: how many copies.
        norm: optional final module (a ``LayerNorm(d_model)``).

    Shape: as the layer's.

    Backward: the layers' backward in reverse order (after ``norm``'s).

    Example:
        >>> import numpy as np
        >>> enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), num_layers=2)
        >>> enc.forward(np.ones((5, 3, 8), np.float32)).shape
        (5, 3, 8)
    """

    @classmethod
    def parameter_shapes(cls, config):
        """``num_layers`` copies of ``encoder_layer`` (``norm`` reports its own)."""
        return _stack_shapes(config["encoder_layer"], config["num_layers"])

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self._build(encoder_layer, num_layers, norm, TransformerEncoderLayer)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """Run the stack; see the class docstring."""
        return self._call(src, dict(mask=mask, kpm=src_key_padding_mask, causal=bool(is_causal)))

    def updateOutput(self, input):
        self._input = x = input
        for layer in self.layers:
            x = layer.forward(x, src_mask=self._option("mask"), src_key_padding_mask=self._option("kpm"),
                              is_causal=bool(self._option("causal")))
        self._last = x
        self.output = self.norm.forward(x) if self.norm is not None else x
        return self.output

    def _backprop(self, gradOutput, need):
        g = _back(self.norm, self._last, gradOutput) if self.norm is not None else gradOutput
        layers = list(self.layers)
        for i in range(len(layers) - 1, -1, -1):
            g = _back(layers[i], layers[i - 1].output if i else self._input, g, need or i > 0)
        return g


class TransformerDecoder(_Stack):
    """``num_layers`` copies of ``decoder_layer`` on ``(tgt, memory)``, then
    ``norm`` if given (PyTorch's ``nn.TransformerDecoder``). Every layer
    attends to the same ``memory``; its gradient sums over the layers.

    Direct calls take ``tgt_mask``, ``memory_mask``, ``tgt_key_padding_mask``,
    ``memory_key_padding_mask``, ``tgt_is_causal``, ``memory_is_causal``.

    Shape: as the layer's; backward returns ``(grad_tgt, grad_memory)``.

    Example:
        >>> import numpy as np
        >>> dec = TransformerDecoder(TransformerDecoderLayer(8, 2, 16), num_layers=2)
        >>> dec.forward((np.ones((4, 2, 8), np.float32), np.ones((6, 2, 8), np.float32))).shape
        (4, 2, 8)
    """

    @classmethod
    def parameter_shapes(cls, config):
        """``num_layers`` copies of ``decoder_layer`` (``norm`` reports its own)."""
        return _stack_shapes(config["decoder_layer"], config["num_layers"])

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self._build(decoder_layer, num_layers, norm, TransformerDecoderLayer)

    def forward(self, tgt, memory=None, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        """Run the stack on ``(tgt, memory)``; see the class docstring."""
        input = tgt if memory is None else (tgt, memory)
        options = dict(tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                       memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                       memory_is_causal=bool(memory_is_causal))
        return self._call(input, options)

    def updateOutput(self, input):
        tgt, memory = self._pair(input, ("tgt", "memory"))
        options = getattr(self, "_options", {})
        self._input = (tgt, memory)
        x = tgt
        for layer in self.layers:
            x = layer.forward(x, memory, **options)
        self._last = x
        self.output = self.norm.forward(x) if self.norm is not None else x
        return self.output

    def _backprop(self, gradOutput, need):
        g = _back(self.norm, self._last, gradOutput) if self.norm is not None else gradOutput
        layers = list(self.layers)
        tgt, memory = self._input
        g_mem = None
        for i in range(len(layers) - 1, -1, -1):
            g, gm = _back(layers[i], (layers[i - 1].output if i else tgt, memory), g)
            g_mem = gm if g_mem is None else g_mem + gm
        return g, g_mem


class Transformer(_Block):
    """The encoder-decoder of "Attention Is All You Need" (PyTorch's
    ``nn.Transformer``): ``memory = encoder(src)``, ``y = decoder(tgt, memory)``,
    each stack ending in a LayerNorm.

    The input is ``(src, tgt)`` (``forward(src, tgt)`` also works); backward
    returns ``(grad_src, grad_tgt)``. Direct calls take PyTorch's keywords
    ``src_mask``, ``tgt_mask``, ``memory_mask``, ``src_key_padding_mask``,
    ``tgt_key_padding_mask``, ``memory_key_padding_mask``, ``src_is_causal``,
    ``tgt_is_causal``, ``memory_is_causal``. There is no embedding or output
    layer (as in PyTorch): compose them around it.

    Args:
        d_model (512), nhead (8), num_encoder_layers (6), num_decoder_layers
        (6), dim_feedforward (2048), dropout (0.1), activation ('relu'),
        custom_encoder, custom_decoder (modules to use instead),
        layer_norm_eps (1e-5), batch_first, norm_first, bias: PyTorch's.
        dtype, rng: parameter dtype; seed or Generator.

    Attributes:
        encoder (TransformerEncoder with norm), decoder (TransformerDecoder with
        norm). Every parameter of two or more dimensions is initialised
        xavier-uniform, as PyTorch's ``_reset_parameters`` does.

    Shape:
        src ``(S, N, E)``, tgt ``(T, N, E)`` (batch first with ``batch_first``);
        output ``(T, N, E)``.

    Backward: the decoder's backward gives the tgt gradient and the memory's,
    which the encoder's backward turns into the src gradient.

    Example:
        >>> import numpy as np
        >>> model = Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
        >>> src, tgt = np.ones((6, 2, 8), np.float32), np.ones((4, 2, 8), np.float32)
        >>> model.forward((src, tgt), tgt_mask=Transformer.generate_square_subsequent_mask(4)).shape
        (4, 2, 8)
    """

    @classmethod
    def parameter_shapes(cls, config):
        """The encoder and decoder stacks it builds (custom ones report their own)."""
        d, bias = config.get("d_model", 512), config.get("bias", True)
        layer = {"d_model": d, "nhead": config.get("nhead", 8), "bias": bias,
                 "dim_feedforward": config.get("dim_feedforward", 2048)}
        norm = {"normalized_shape": d, "bias": bias}
        shapes = {}
        for part, decoder in (("encoder", False), ("decoder", True)):
            if config.get(f"custom_{part}") is None:
                n = config.get(f"num_{part}_layers", 6)
                if not 0 < n <= 4096:
                    raise ValueError(f"num_{part}_layers must be in [1, 4096], got {n!r}")
                one = _layer_shapes(layer, decoder)
                shapes.update({f"{part}.layers.{i}.{k}": v for i in range(n) for k, v in one.items()})
                shapes.update(_prefixed(f"{part}.norm", LayerNorm.parameter_shapes(norm)))
        return shapes

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        rng = resolve_rng(rng)
        layer = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                     activation=activation, layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                     norm_first=norm_first, bias=bias, dtype=dtype, rng=rng)
        norm = dict(eps=layer_norm_eps, bias=bias, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(**layer), num_encoder_layers,
                                              LayerNorm(d_model, **norm))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(**layer), num_decoder_layers,
                                              LayerNorm(d_model, **norm))
        for _, p in self.named_parameters():
            if p.ndim > 1:
                xavier_uniform_(p, rng=rng)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)

    def get_config(self):
        """The constructor arguments, with ``dropout`` and ``layer_norm_eps``
        read from the stacks it built as they are now; stacks that disagree
        raise ValueError (one argument cannot describe them)."""
        config = super().get_config()
        seen = {"dropout": {}, "layer_norm_eps": {}}
        for part in ("encoder", "decoder"):
            if config.get(f"custom_{part}") is None:
                stack = getattr(self, part)
                layer = stack.get_config()[f"{part}_layer"].get_config()
                seen["dropout"][f"{part}.layers"] = layer["dropout"]
                seen["layer_norm_eps"][f"{part}.layers"] = layer["layer_norm_eps"]
                seen["layer_norm_eps"][f"{part}.norm"] = stack.norm.eps
        for arg, values in seen.items():
            if values:
                config[arg] = _one_setting(self, arg, values)
        return config

    def children(self):
        return [("encoder", self.encoder), ("decoder", self.decoder)]

    @staticmethod
    def generate_square_subsequent_mask(sz, dtype=DEFAULT_DTYPE):
        """``(sz, sz)`` float mask: 0 on and below the diagonal, ``-inf`` above (PyTorch's)."""
        return np.triu(np.full((sz, sz), -np.inf, dtype=dtype), k=1)

    def forward(self, src, tgt=None, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        """Run the model on ``(src, tgt)``; see the class docstring."""
        input = src if tgt is None else (src, tgt)
        return self._call(input, dict(src_mask=src_mask, tgt_mask=tgt_mask, memory_mask=memory_mask,
                                      src_kpm=src_key_padding_mask, tgt_kpm=tgt_key_padding_mask,
                                      memory_kpm=memory_key_padding_mask, src_causal=src_is_causal,
                                      tgt_causal=tgt_is_causal, memory_causal=memory_is_causal))

    def output_shape(self, input_shape):
        """The shape of ``tgt`` for the input ``(src, tgt)``."""
        return _pair_shape(self, input_shape, ("src", "tgt"))[1]

    def updateOutput(self, input):
        src, tgt = self._pair(input, ("src", "tgt"))
        o = self._option
        memory = self.encoder.forward(src, mask=o("src_mask"), src_key_padding_mask=o("src_kpm"),
                                      is_causal=o("src_causal"))
        self._memory = memory
        self.output = self.decoder.forward(tgt, memory, tgt_mask=o("tgt_mask"), memory_mask=o("memory_mask"),
                                           tgt_key_padding_mask=o("tgt_kpm"), memory_key_padding_mask=o("memory_kpm"),
                                           tgt_is_causal=o("tgt_causal"), memory_is_causal=bool(o("memory_causal")))
        self._input = (src, tgt)
        return self.output

    def _backprop(self, gradOutput, need):
        src, tgt = self._input
        g_tgt, g_mem = _back(self.decoder, (tgt, self._memory), gradOutput)
        g_src = _back(self.encoder, src, g_mem, need)
        return g_src, g_tgt

    def extra_repr(self):
        return f"d_model={self.d_model}, nhead={self.nhead}"


# ---------------------------------------------------------------- positional encodings
class _PositionalEncoding(Module):
    def _check(self, x):
        check_float_array(self, x)
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ValueError(f"{self!r}: expected input of shape {layout} or (L, E) with E = {self.d_model}, "
                             f"got {tuple(x.shape)}")
        L = x.shape[1] if self.batch_first and x.ndim == 3 else x.shape[0]
        if L > self.max_len:
            raise ValueError(f"{self!r}: sequence length {L} exceeds max_len={self.max_len}")
        return L

    def output_shape(self, input_shape):
        """The input's shape; raises what ``forward`` would."""
        shape = as_shape(self, input_shape)
        self._check(shape_probe(shape))
        return shape

    def _table(self, table, L, x):
        """``table[:L]`` shaped to broadcast against ``x``."""
        t = table[:L].astype(x.dtype, copy=False)
        return t if x.ndim == 2 else (t[None] if self.batch_first else t[:, None])

    def updateOutput(self, input):
        L = self._check(input)
        self.output = input + self._table(self._positions(), L, input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput
        return gradOutput

    def extra_repr(self):
        return f"{self.d_model}, max_len={self.max_len}" + (", batch_first=True" if self.batch_first else "")


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """``y = x + PE[:L]`` with the fixed ``PE[p, 2i] = sin(p / 10000^(2i/E))``,
    ``PE[p, 2i+1] = cos(p / 10000^(2i/E))`` ("Attention Is All You Need"; the
    PyTorch tutorial's ``PositionalEncoding`` without its dropout: add a ``Dropout``).

    PE is a constant computed at construction, neither a parameter nor in
    ``state_dict``.

    Args:
        d_model: feature size ``E``.
        max_len: the longest sequence (5000).
        batch_first: input ``(N, L, E)`` instead of ``(L, N, E)``.

    Shape:
        ``(L, N, E)``, ``(N, L, E)`` with batch_first, or ``(L, E)``; output the same.

    Backward: ``gradInput = gradOutput``.

    Example:
        >>> import numpy as np
        >>> pe = SinusoidalPositionalEncoding(4, max_len=10, batch_first=True)
        >>> pe.forward(np.zeros((1, 2, 4), np.float32))[0].round(3).tolist()
        [[0.0, 1.0, 0.0, 1.0], [0.841, 0.54, 0.01, 1.0]]
    """

    @classmethod
    def parameter_shapes(cls, config):
        """No state; its constant table ``pe`` (``(max_len, d_model)``, not saved) counts."""
        return {"~pe": (config.get("max_len", 5000), config["d_model"])}

    _constants = ("pe",)  # computed from d_model and max_len: not trained, not saved

    def __init__(self, d_model, max_len=5000, batch_first=False):
        super().__init__()
        self.d_model = check_positive_int("SinusoidalPositionalEncoding", "d_model", d_model)
        self.max_len = check_positive_int("SinusoidalPositionalEncoding", "max_len", max_len)
        self.batch_first = bool(batch_first)
        position = np.arange(max_len, dtype=np.float64)[:, None]
        div = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(position * div)
        pe[:, 1::2] = np.cos(position * div[: d_model // 2])
        self.pe = pe  # float64; cast to the input's dtype when added

    def _positions(self):
        return self.pe


class LearnedPositionalEncoding(_PositionalEncoding):
    """``y = x + weight[:L]`` with a learnt ``weight`` of shape ``(max_len, E)``
    (BERT's and ViT's position embeddings; the same as adding
    ``torch.nn.Embedding(max_len, E).weight[:L]``, so ``state_dict`` is that Embedding's).

    Args:
        d_model: feature size ``E``.
        max_len: the longest sequence (512).
        batch_first: input ``(N, L, E)`` instead of ``(L, N, E)``.
        std: initialisation ``N(0, std^2)`` (0.02, BERT's; PyTorch's Embedding uses 1).
        dtype, rng: parameter dtype; seed or Generator.

    Shape:
        ``(L, N, E)``, ``(N, L, E)`` with batch_first, or ``(L, E)``; output the same.

    Attributes:
        weight: ``(max_len, E)``; gradWeight, accumulated.

    Backward: ``gradInput = g``; ``gradWeight[:L] += g`` summed over the batch.

    Example:
        >>> import numpy as np
        >>> pos = LearnedPositionalEncoding(8, max_len=28, batch_first=True)
        >>> pos.forward(np.zeros((2, 28, 8), np.float32)).shape
        (2, 28, 8)
    """

    @classmethod
    def parameter_shapes(cls, config):
        """``weight``: ``(max_len, d_model)``."""
        return {"weight": (config.get("max_len", 512), config["d_model"])}

    _parameters = (("weight", "gradWeight"),)

    def __init__(self, d_model, max_len=512, batch_first=False, std=0.02, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.d_model = check_positive_int("LearnedPositionalEncoding", "d_model", d_model)
        self.max_len = check_positive_int("LearnedPositionalEncoding", "max_len", max_len)
        self.batch_first = bool(batch_first)
        self.weight = normal_(np.empty((max_len, d_model), dtype), 0.0, std, rng=rng)
        self.gradWeight = np.zeros_like(self.weight)

    def _positions(self):
        return self.weight

    def accGradParameters(self, input, gradOutput):
        L = gradOutput.shape[1] if self.batch_first and gradOutput.ndim == 3 else gradOutput.shape[0]
        g = gradOutput if gradOutput.ndim == 2 else gradOutput.sum(axis=0 if self.batch_first else 1)
        self.gradWeight[:L] += g
