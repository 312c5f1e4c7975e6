"""The one table of every public module (PyTorch's ``ModuleInfo`` style): data
only, no tests. ``tests/test_modules.py`` runs its generic tests over it
(gradcheck in float64 on every configuration, parity with PyTorch in float32
and float64 where PyTorch has the class, dtype kept, state_dict and model-file
round trips, train vs evaluate, error cases) and fails when a public module
has no entry (``PUBLIC``).

An ``Entry`` holds:

- ``make(seed)``: a fresh module, float32 parameters drawn from ``seed``.
- ``inputs``: input specs, one per sample configuration (the first is the one
  the cheaper columns use). A spec is a shape (a float array, values kept 0.1
  away from 0, ReLU's kink), a tuple of specs (a tuple input), ``Ints(shape,
  high)`` (integer indices), ``Const(array)``, or ``Fn(f)`` with ``f(dtype,
  seed)`` giving the input.
- ``torch(module)``: the PyTorch module of the same configuration (None where
  PyTorch has no such class); our arrays are copied into it with
  ``nnumpy.interop.to_torch_state_dict(..., like=)`` and its gradients are
  read back the same way. ``torch_call(tmod, inputs)`` calls it (default
  ``tmod(x)``, ``tmod(*x)`` for a tuple) and returns our output's structure.
- ``errors``: ``(bad input spec, regex)`` pairs; forward must raise a
  ValueError/TypeError whose message starts with the module's class name and
  matches the regex, before any state changes.
- flags: ``random`` (a random mask in training mode: parity and round trips in
  evaluate mode only), ``mode_dependent`` (train and evaluate differ),
  ``torch_state`` (compare buffers with PyTorch's after two training steps),
  ``gradcheck`` (the configurations to check, default all), ``batch_axis``
  (for the batch-of-one test; None where the leaves do not share one).
- ``forward_kwargs``: keywords every forward of the module gets (masks,
  ``need_weights``, ...): ``make`` returns the module with them bound, and
  ``bind`` binds them again to a module loaded from a file. ``torch_call``
  then also gets them, arrays as tensors (float ones in the call's dtype).
- ``torch_fn(module, leaves, x)``: where PyTorch has no such class (torch7's
  containers), the same computation written in PyTorch with ``leaves.p(array)``
  (our parameter as a torch leaf, one per array, so a shared module shares it)
  or ``leaves.linear(m, x)``; outputs, input and parameter gradients are compared.
"""

import functools
import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

import nnumpy as nn
from nnumpy import (
    MSE,
    BCECriterion,
    BCEWithLogitsCriterion,
    ClassNLLCriterion,
    ClassNLLCriterionUnstable,
    CosineEmbeddingCriterion,
    CrossEntropy,
    CrossEntropyCriterion,
    HuberCriterion,
    KLDivCriterion,
    L1Criterion,
    MarginRankingCriterion,
    MSECriterion,
    MSELoss,
    MultiMarginCriterion,
    NLLLoss,
    SmoothL1Criterion,
    layers,
)

tnn = torch.nn


# ------------------------------------------------------------------ input specs
@dataclass(frozen=True)
class Ints:
    shape: tuple
    high: int
    low: int = 0


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class Fn:
    f: Callable


def make_input(spec, dtype=np.float64, seed=0):
    """The input a spec describes, in ``dtype`` for its float parts."""
    if isinstance(spec, Ints):
        return np.random.default_rng(seed).integers(spec.low, spec.high, size=spec.shape)
    if isinstance(spec, Const):
        value = spec.value
        if isinstance(value, np.ndarray):
            return value.astype(dtype) if value.dtype.kind == "f" else value.copy()
        return value
    if isinstance(spec, Fn):
        return spec.f(dtype, seed)
    if spec and isinstance(spec[0], (tuple, Ints, Const, Fn)):
        return tuple(make_input(part, dtype, seed + 7 * i) for i, part in enumerate(spec))
    n = np.random.default_rng(seed).normal(size=spec)
    return (np.sign(n) * (0.1 + np.abs(n))).astype(dtype)


def _distinct(shape):
    def f(dtype, seed):
        r = np.random.default_rng(seed)
        return (r.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 0.05 * np.prod(shape) / 2).astype(dtype)

    return Fn(f)


def _lengths(shape_tnf, lengths):
    """A (sequence, lengths) pair: padded float sequence and integer lengths."""

    def f(dtype, seed):
        return (make_input(shape_tnf, dtype, seed), np.array(lengths))

    return Fn(f)


@dataclass
class Entry:
    name: str
    make: Callable
    inputs: list
    torch: Callable = None
    torch_call: Callable = None
    errors: list = field(default_factory=list)
    random: bool = False
    mode_dependent: bool = False
    torch_state: bool = True
    gradcheck: tuple = None  # indices into inputs; None: all
    repr: str = None
    torch_float64: bool = True  # PyTorch's float64 result is exact (False: it rounds a constant to float32)
    batch_axis: int = 0  # the batch axis of every input and output leaf (None: no such axis for all)
    forward_kwargs: dict = None  # keywords of every forward (masks, flags), also given to torch_call
    torch_fn: Callable = None  # (module, TorchLeaves, torch input) -> the same computation in PyTorch

    def __post_init__(self):
        if self.forward_kwargs:
            make = self.make
            self.make = lambda s: self.bind(make(s))

    def bind(self, module):
        """``module`` whose ``forward`` takes this entry's keywords."""
        if self.forward_kwargs:
            module.forward = functools.partial(type(module).forward, module, **self.forward_kwargs)
        return module

    @property
    def cls(self):
        return type(self.make(0))


# ------------------------------------------------------------------ torch helpers
def _self_attention(t, x):
    return t(x, x, x, need_weights=False)[0]


def _cross_attention(t, x):
    return t(*x, need_weights=False)[0]


def _rnn_out(t, x):
    return t(x)[0]


def _lstm_state(t, x):
    out, (h, c) = t(x)
    return out, (h, c)


def _rnn_state(t, x):
    out, h = t(x)
    return out, h


def _dropout_eval(cls):
    return lambda m: cls(m.p)


def _upsample(m):
    return tnn.Upsample(size=m.size, scale_factor=m.scale_factor, mode=m.mode, align_corners=m.align_corners)


# ------------------------------------------------------------------ containers' samples
def _nested(s):
    return nn.Sequential(
        nn.Linear(4, 5, rng=s),
        nn.ReLU(),
        nn.Sequential(nn.Linear(5, 3, rng=s + 1), nn.Tanh()),
        nn.Sequential(),
        nn.LogSoftMax(),
    )


def _t_nested(m):
    return tnn.Sequential(
        tnn.Linear(4, 5), tnn.ReLU(), tnn.Sequential(tnn.Linear(5, 3), tnn.Tanh()), tnn.Sequential(), tnn.LogSoftmax(1)
    )


def _graph(s):
    x, y = nn.Input(), nn.Input()
    shared = nn.Linear(3, 4, rng=s)
    a, b = shared(x), shared(y)
    h = nn.CAddTable()(nn.Tanh()(a), b)
    out = nn.Linear(4, 2, rng=s + 1)(h)
    return nn.Graph([x, y], [out, nn.CMulTable()(a, b)])


def _graph_one(s):
    x = nn.Input()
    h = nn.ReLU()(nn.Linear(4, 5, rng=s)(x))
    return nn.Graph(x, nn.JoinTable(1)(h, nn.Linear(4, 2, rng=s + 1)(x)))


def _residual(s):
    return nn.Residual(nn.Sequential(nn.Linear(4, 4, rng=s), nn.Tanh()))


def _residual_shortcut(s):
    return nn.Residual(nn.Linear(4, 3, rng=s), shortcut=nn.Linear(4, 3, bias=False, rng=s + 1))


def _encoder_layer(s, **kw):
    return layers.TransformerEncoderLayer(4, 2, 6, dropout=0.0, rng=s, **kw)


def _t_encoder_layer(m, **kw):
    return tnn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, **kw)


def _encoder(s):
    return layers.TransformerEncoder(_encoder_layer(s), 2, norm=layers.LayerNorm(4))


def _decoder_layer(s, **kw):
    return layers.TransformerDecoderLayer(4, 2, 6, dropout=0.0, rng=s, **kw)


def _decoder(s):
    return layers.TransformerDecoder(_decoder_layer(s), 2, norm=layers.LayerNorm(4))


def _transformer(s):
    return layers.Transformer(4, 2, 1, 1, 6, dropout=0.0, rng=s)


def _bn(cls, n, s, **kw):
    m = cls(n, **kw)
    r = np.random.default_rng(s)
    m.weight[...] = r.uniform(0.5, 1.5, n)
    m.bias[...] = r.uniform(-0.5, 0.5, n)
    return m


def _affine(m, s):
    """Random values for every parameter (norms start at ones/zeros: test more than that)."""
    r = np.random.default_rng(s)
    for p, _ in m.own_parameter_pairs():
        value = getattr(m, p)
        value[...] = r.uniform(0.5, 1.5, value.shape)
    return m


A = (3, 4)  # a small batch of features for element-wise layers
A3 = (2, 3, 2)
IMG = (2, 3, 4, 4)
SEQ = (5, 2, 3)  # (T, N, F)


# the kinks of the piecewise activations and a few values on either side
CORNERS = np.array([-6, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 6, -3.0001, 2.9999, 6.0001, -1e-7])


def _scaled(name, count=4):
    """``count`` seeded random shapes of 1 to 4 axes, values scaled by 0.1 to 30 (PyTorch parity)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    specs = []
    for _ in range(count):
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
        scale = float(rng.choice([0.1, 1.0, 4.0, 30.0]))
        specs.append(Fn(lambda dtype, seed, shape=shape, scale=scale: make_input(shape, dtype, seed) * scale))
    return specs


def _act(name, make, torch_make=None, inputs=(A, A3, (1, 5)), scaled=True, **kw):
    """An element-wise activation: the small inputs are gradchecked; random shapes
    and scales and the kinks themselves (``CORNERS``) are compared with PyTorch."""
    inputs = [*inputs, *_scaled(name), Const(CORNERS)] if scaled else list(inputs)
    return Entry(name, make, inputs, torch=torch_make, gradcheck=(0, 1, 2), **kw)


# ------------------------------------------------------------------ random convolutions
def draw_conv(seed, nd=2):
    """A random configuration PyTorch accepts, drawn from ``seed``: strides 1-3,
    padding 0-2 / 'same' / 'valid' / None, dilation 1-2, groups 1/2/4
    (depthwise included), odd, even and rectangular kernels, non-square
    inputs, batch of 1 included. Returns ``(make, input shape)``."""
    r = np.random.default_rng(seed)
    groups = int(r.choice([1, 2, 4]))
    cg = int(r.choice([1, 2, 3]))
    og = int(r.choice([1, 2]))
    kernel = tuple(int(k) for k in r.integers(1, 5, size=nd))
    stride = tuple(int(s) for s in r.integers(1, 4, size=nd))
    dilation = tuple(int(d) for d in r.integers(1, 3, size=nd))
    padding = [0, 1, 2, tuple(int(p) for p in r.integers(0, 3, size=nd)), "same", "valid", None][r.integers(7)]
    if padding == "same":
        stride = (1,) * nd
    bias = bool(r.integers(4))
    cls = nn.Conv2d if nd == 2 else nn.Conv1d
    args = (cg * groups, og * groups, kernel)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    weights = int(r.integers(1 << 30))

    def make(s):
        return cls(*args, **kwargs, rng=weights + s)

    conv = make(0)
    reach = [d * (k - 1) + 1 - lo - hi for k, d, (lo, hi) in zip(kernel, dilation, conv.pads, strict=True)]
    size = tuple(max(m, 1) + int(r.integers(0, 5)) for m in reach)
    batch = int(r.choice([1, 2, 3]))
    return make, (batch, cg * groups, *size)


def torch_conv(conv):
    """The PyTorch convolution of ``conv``'s configuration (uneven padding is 'same')."""
    padding = "same" if any(lo != hi for lo, hi in conv.pads) else tuple(lo for lo, _ in conv.pads)
    cls = tnn.Conv2d if len(conv.kernel_size) == 2 else tnn.Conv1d
    return cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.b is not None,
    )


# ------------------------------------------------------------------ random spatial layers
def _upsample_configs(seed, count):
    """Random (constructor kwargs, input shape): every mode, size or scale_factor, align_corners."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        mode = str(rng.choice(["nearest", "linear", "bilinear"]))
        spatial = 1 if mode == "linear" else (2 if mode == "bilinear" else int(rng.integers(1, 3)))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) + tuple(int(d) for d in rng.integers(1, 7, spatial))
        kwargs = {"mode": mode}
        if rng.random() < 0.5:
            size = tuple(int(d) for d in rng.integers(1, 12, spatial))
            kwargs["size"] = size[0] if spatial == 1 and rng.random() < 0.5 else size
        else:
            factors = tuple(float(f) for f in rng.choice([0.5, 0.7, 1.0, 1.5, 2.0, 2.3, 3.0], spatial))
            kwargs["scale_factor"] = factors[0] if rng.random() < 0.5 else factors
            in_sizes = shape[2:]
            factors = factors if isinstance(kwargs["scale_factor"], tuple) else (factors[0],) * spatial
            if any(int(np.floor(s * f)) < 1 for s, f in zip(in_sizes, factors, strict=True)):
                kwargs["scale_factor"] = 2.0
        if mode != "nearest":
            kwargs["align_corners"] = [None, False, True][int(rng.integers(3))]
        out.append((kwargs, shape))
    return out


UPSAMPLE_CONFIGS = _upsample_configs(0, 24)
ADAPTIVE_CONFIGS = [  # input shape, output_size
    ((2, 3, 7, 5), (3, 2)),
    ((2, 3, 5, 5), 5),  # identity bins
    ((1, 2, 10, 9), (4, 4)),  # overlapping bins along W (9 -> 4)
    ((2, 2, 6, 8), (None, 3)),
    ((3, 4, 4), (1, 1)),  # unbatched (C, H, W)
    ((2, 3, 3, 4), (5, 7)),  # more bins than positions: shared positions
    ((1, 1, 13, 1), (4, 1)),
]
PAD_ARGS = [1, (1, 0, 2, 3), (0, 2, 0, 0), (3, 1, 1, 2), 0]
NEGATIVE_ZERO_PADS = [(-1, 2, 0, -2), (-2, -1, -1, -3), (1, -1, -1, 1)]  # crops, as PyTorch
UNFLATTEN_CONFIGS = [(1, (2, 3), (4, 6)), (-1, (2, -1), (3, 2, 8)), (0, (1, 2), (2, 5))]


def _spatial_cases():
    """Upsample over 24 random configurations (every mode and align_corners, sizes
    and scale factors; the first 10 gradchecked), adaptive pooling over sizes that
    do not divide, overlapping and shared bins, and 8 random sizes (parity only),
    every padding layer over every side, ZeroPad2d's cropping, Unflatten's axes."""
    entries = []
    for k, (kwargs, shape) in enumerate(UPSAMPLE_CONFIGS):
        entries.append(
            Entry(
                f"Upsample-random-{k}",
                lambda s, kw=kwargs: layers.Upsample(**kw),
                [shape],
                torch=lambda m, kw=kwargs: tnn.Upsample(**kw),
                gradcheck=None if k < 10 else (),
            )
        )
    rng = np.random.default_rng(7)
    random_sizes = [
        (
            (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 12)), int(rng.integers(1, 12))),
            (int(rng.integers(1, 9)), int(rng.integers(1, 9))),
        )
        for _ in range(8)
    ]
    for name, ours, theirs in (
        ("AdaptiveAvgPool2d", layers.AdaptiveAvgPool2d, tnn.AdaptiveAvgPool2d),
        ("AdaptiveMaxPool2d", layers.AdaptiveMaxPool2d, tnn.AdaptiveMaxPool2d),
    ):
        for k, (shape, size) in enumerate(ADAPTIVE_CONFIGS + random_sizes):
            entries.append(
                Entry(
                    f"{name}-case-{k}",
                    lambda s, c=ours, o=size: c(o),
                    [shape],
                    torch=lambda m, c=theirs, o=size: c(o),
                    gradcheck=None if k < len(ADAPTIVE_CONFIGS) else (),
                )
            )
    for name, ours, theirs in (
        ("ZeroPad2d", layers.ZeroPad2d, tnn.ZeroPad2d),
        ("ReflectionPad2d", layers.ReflectionPad2d, tnn.ReflectionPad2d),
        ("ReplicationPad2d", layers.ReplicationPad2d, tnn.ReplicationPad2d),
    ):
        pads = PAD_ARGS + (NEGATIVE_ZERO_PADS if name == "ZeroPad2d" else [])
        for k, padding in enumerate(pads):
            shapes = [(2, 3, 4, 5), (3, 4, 4)] if padding in PAD_ARGS else [(2, 2, 5, 6)]
            entries.append(
                Entry(
                    f"{name}-case-{k}",
                    lambda s, c=ours, p=padding: c(p),
                    shapes,
                    torch=lambda m, c=theirs, p=padding: c(p),
                )
            )
    for k, (dim, sizes, shape) in enumerate(UNFLATTEN_CONFIGS):
        entries.append(
            Entry(
                f"Unflatten-case-{k}",
                lambda s, d=dim, z=sizes: layers.Unflatten(d, z),
                [shape],
                torch=lambda m, d=dim, z=sizes: tnn.Unflatten(d, z),
                batch_axis=None if dim == 0 else 0,
            )
        )
    return entries


# ------------------------------------------------------------------ random normalisation layers
def _shifted(shape, scale, shift):
    return Fn(lambda dtype, seed: make_input(shape, dtype, seed) * scale + shift)


def _randomised(m, s):
    """Normal random values in every parameter and buffer (the norms start at ones and zeros)."""
    r = np.random.default_rng(s + 1)
    for p, _ in m.own_parameter_pairs():
        getattr(m, p)[...] = r.normal(size=getattr(m, p).shape)
    for b in m.own_buffer_names():
        value = getattr(m, b, None)
        if value is not None:
            value[...] = np.abs(r.normal(size=value.shape)) + 0.5
    return m


LAYER_NORM_CONFIGS = [(4, (3, 4)), ((5,), (2, 3, 5)), ((3, 4), (2, 3, 4)), ((2, 3, 4), (2, 3, 4))]
GROUP_NORM_CONFIGS = [(2, 4, (3, 4)), (1, 3, (2, 3, 5)), (3, 6, (2, 6, 3, 2)), (6, 6, (2, 6, 4))]


def _norm_cases():
    """LayerNorm over normalized shapes of 1-3 axes with and without affine and bias,
    6 random configurations (eps, leading axes); GroupNorm over group counts, with and
    without affine, 6 random configurations; InstanceNorm1d/2d with every affine and
    tracking combination (training then evaluate, unbatched) and 4 random ones each."""
    entries = []
    for k, (shape, input_shape) in enumerate(LAYER_NORM_CONFIGS):
        for affine, bias in ((True, True), (True, False), (False, True)):
            kw = dict(elementwise_affine=affine, bias=bias)
            entries.append(
                Entry(
                    f"LayerNorm-case-{k}-{'affine' if affine else 'plain'}{'' if bias else '-nobias'}",
                    lambda s, a=shape, kw=kw: _randomised(layers.LayerNorm(a, **kw), s),
                    [_shifted(input_shape, 3, 1)],
                    torch=lambda m, a=shape, kw=kw: tnn.LayerNorm(a, **kw),
                    batch_axis=0 if len(input_shape) > len(np.atleast_1d(shape)) else None,
                )
            )
    for seed in range(6):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(1, 4))
        normalized = tuple(int(d) for d in rng.integers(1, 6, size=k))
        lead = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 3))))
        kw = dict(eps=float(rng.choice([1e-5, 1e-3, 0.1])), elementwise_affine=bool(rng.integers(2)))
        kw["bias"] = bool(rng.integers(2))
        arg = normalized if k > 1 or seed % 2 else normalized[0]
        entries.append(
            Entry(
                f"LayerNorm-random-{seed}",
                lambda s, a=arg, kw=kw: _randomised(layers.LayerNorm(a, **kw), s),
                [_shifted(lead + normalized, 5, 2)],
                torch=lambda m, a=normalized, kw=kw: tnn.LayerNorm(a, **kw),
                gradcheck=(),
                batch_axis=0 if lead else None,
            )
        )
    for k, (groups, channels, shape) in enumerate(GROUP_NORM_CONFIGS):
        for affine in (True, False):
            entries.append(
                Entry(
                    f"GroupNorm-case-{k}{'' if affine else '-plain'}",
                    lambda s, g=groups, c=channels, a=affine: _randomised(layers.GroupNorm(g, c, affine=a), s),
                    [_shifted(shape, 2, -1)],  # gradchecked (two values per group: float32 is too coarse)
                )
            )
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        groups = int(rng.integers(1, 4))
        channels = groups * int(rng.integers(1, 4))
        spatial = tuple(int(d) for d in rng.integers(2, 5, size=int(rng.integers(0, 3))))
        channels = channels * 2 if channels == groups and not spatial else channels  # torch: > 1 value per group
        kw = dict(eps=float(rng.choice([1e-5, 1e-2])), affine=bool(rng.integers(2)))
        shape = (int(rng.integers(1, 4)), channels) + spatial
        entries.append(
            Entry(
                f"GroupNorm-random-{seed}",
                lambda s, g=groups, c=channels, kw=kw: _randomised(layers.GroupNorm(g, c, **kw), s),
                [_shifted(shape, 3, 1)],
                torch=lambda m, g=groups, c=channels, kw=kw: tnn.GroupNorm(g, c, **kw),
                gradcheck=(),
            )
        )
    for name, ours, theirs, shape in (
        ("InstanceNorm1d", layers.InstanceNorm1d, tnn.InstanceNorm1d, (3, 4, 5)),
        ("InstanceNorm2d", layers.InstanceNorm2d, tnn.InstanceNorm2d, (2, 4, 3, 5)),
    ):
        for affine, track in ((False, False), (True, False), (True, True), (False, True)):
            kw = dict(affine=affine, track_running_stats=track)
            entries.append(
                Entry(
                    f"{name}-{'affine' if affine else 'plain'}{'-tracked' if track else ''}",
                    lambda s, c=ours, kw=kw, n=shape[1]: _randomised(c(n, **kw), s),
                    [_shifted(shape, 2, 1), _shifted(shape[1:], 2, 1)],
                    torch=lambda m, c=theirs, kw=kw, n=shape[1]: c(n, **kw),
                    mode_dependent=track,
                    batch_axis=None,
                )
            )
        for seed in range(4):
            rng = np.random.default_rng(200 + seed)
            kw = dict(affine=bool(rng.integers(2)), track_running_stats=bool(rng.integers(2)))
            kw.update(momentum=float(rng.choice([0.1, 0.5, 1.0])), eps=float(rng.choice([1e-5, 1e-3])))
            entries.append(
                Entry(
                    f"{name}-random-{seed}",
                    lambda s, c=ours, kw=kw, n=shape[1]: _randomised(c(n, **kw), s),
                    [_shifted(shape, 3, 2), _shifted(shape[1:], 3, 2)],
                    torch=lambda m, c=theirs, kw=kw, n=shape[1]: c(n, **kw),
                    mode_dependent=kw["track_running_stats"],
                    gradcheck=(),
                    batch_axis=None,
                )
            )
    return entries


# ------------------------------------------------------------------ random embeddings
def _embedding_cases():
    """Small random vocabularies (many repeated indices), index shapes of 0-3 axes,
    padding_idx None / 0 / last / -1 (parity only where a row has no gradient by design)."""
    entries = []
    for seed in range(4):
        r = np.random.default_rng(seed)
        vocab, dim = int(r.integers(1, 30)), int(r.integers(1, 6))
        padding_idx = [None, 0, vocab - 1, -1][seed]
        shape = [(7,), (3, 5), (2, 3, 4), ()][seed]
        entries.append(
            Entry(
                f"Embedding-random-{seed}",
                lambda s, v=vocab, d=dim, p=padding_idx, k=seed: layers.Embedding(v, d, padding_idx=p, rng=k + s),
                [Ints(shape, vocab)],
                torch=lambda m, v=vocab, d=dim, p=padding_idx: tnn.Embedding(v, d, padding_idx=p),
                gradcheck=None if padding_idx is None else (),
                batch_axis=0 if shape else None,
            )
        )
    return entries


RNN_KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
_F32 = np.float32
LSTM_INPUT_ERRORS = [  # (bad input, message) for LSTM(3, 4, num_layers=2, return_state=True)
    (np.zeros((5, 2, 4), _F32), r"expected input of shape \(T, N, 3\).*got \(5, 2, 4\)"),
    (np.zeros((5, 2, 3), np.int64), r"floating dtype"),
    ((np.zeros((5, 2, 3), _F32), np.array([6, 1])), r"lengths must be in \[1, 5\].*max 6"),
    ((np.zeros((5, 2, 3), _F32), np.array([0, 1])), r"lengths must be in \[1, 5\].*min 0"),
    ((np.zeros((5, 2, 3), _F32), np.array([1, 1, 1])), r"lengths of shape \(2,\)"),
    ((np.zeros((5, 2, 3), _F32), np.zeros((2, 2, 4), _F32)), r"pair \(h0, c0\)"),
    ((np.zeros((5, 2, 3), _F32), (np.zeros((2, 2, 4), _F32), np.zeros((1, 2, 4), _F32))),
     r"expected c0 of shape \(2, 2, 4\), got \(1, 2, 4\)"),
    ((np.zeros((5, 2, 3), _F32), (np.zeros((2, 3, 4), _F32), np.zeros((2, 2, 4), _F32))),
     r"expected h0 of shape \(2, 2, 4\), got \(2, 3, 4\)"),
    ((np.zeros((5, 2, 3), _F32), (np.zeros((2, 2, 4)), np.zeros((2, 2, 4)))), r"dtype float32"),
    ((np.zeros((5, 3), _F32), np.array([2])), r"lengths need a batched input"),
    ((np.zeros((5, 2, 3), _F32), None, None, None), r"tuple of 4"),
]


def draw_rnn_config(r, kind, small=False):
    """A random recurrent network and input (what test_recurrent drew): 1-3
    layers (2 when small), either direction, either layout, with or without
    bias, projections for LSTM, lengths, initial states, return_state."""
    cfg = {
        "kind": kind,
        "input_size": 2 if small else int(r.integers(1, 5)),
        "hidden_size": 3 if small else int(r.integers(2, 6)),
        "num_layers": int(r.integers(1, 3 if small else 4)),
        "bias": bool(r.random() < 0.75),
        "batch_first": bool(r.random() < 0.5),
        "bidirectional": bool(r.random() < 0.5),
        "proj_size": 0,
        "steps": int(r.integers(2, 5)) if small else int(r.integers(1, 6)),
        "batch": 2 if small else int(r.integers(1, 4)),
        "lengths": bool(r.random() < 0.5),
        "h0": bool(r.random() < 0.5),
        "return_state": bool(r.random() < 0.5),
    }
    if kind == "LSTM" and r.random() < 0.4:
        cfg["proj_size"] = 2 if small else int(r.integers(1, cfg["hidden_size"]))
    return cfg


def _rnn_module(cfg, rng, dropout=0.0):
    kw = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
              bidirectional=cfg["bidirectional"], return_state=cfg["return_state"], dropout=dropout, rng=rng)
    kind = cfg["kind"]
    if kind.startswith("RNN"):
        return layers.RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=kind[4:].lower(), **kw)
    if kind == "LSTM":
        return layers.LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **kw)
    return layers.GRU(cfg["input_size"], cfg["hidden_size"], **kw)


def _t_rnn_module(cfg, dropout=0.0):
    kw = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
              bidirectional=cfg["bidirectional"], dropout=dropout)
    kind = cfg["kind"]
    if kind.startswith("RNN"):
        return tnn.RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=kind[4:].lower(), **kw)
    if kind == "LSTM":
        return tnn.LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **kw)
    return tnn.GRU(cfg["input_size"], cfg["hidden_size"], **kw)


def _rnn_input(cfg, unbatched=False):
    """(x[, hx][, lengths]) as the layer takes it; unbatched: (T, I) and states (L*D, P)."""

    def f(dtype, seed):
        r = np.random.default_rng(seed)
        T, N, D = cfg["steps"], cfg["batch"], 2 if cfg["bidirectional"] else 1
        shape = (N, T, cfg["input_size"]) if cfg["batch_first"] else (T, N, cfg["input_size"])
        x = r.normal(size=shape[1:] if unbatched else shape).astype(dtype)
        parts = [x]
        if cfg["h0"]:
            state_n = () if unbatched else (N,)
            h0 = r.normal(size=(cfg["num_layers"] * D, *state_n, cfg["proj_size"] or cfg["hidden_size"]))
            if cfg["kind"] == "LSTM":
                c0 = r.normal(size=(cfg["num_layers"] * D, *state_n, cfg["hidden_size"]))
                parts.append((h0.astype(dtype), c0.astype(dtype)))
            else:
                parts.append(h0.astype(dtype))
        if cfg["lengths"] and not unbatched:
            parts.append(r.integers(1, T + 1, size=N))
        return parts[0] if len(parts) == 1 else tuple(parts)

    return Fn(f)


def _t_rnn_call(cfg):
    """PyTorch's call for our input: packed when lengths are given (padded back
    to T, zeros at padded steps, as ours), the final states when we return them."""

    def call(t, x):
        parts = list(x) if isinstance(x, tuple) else [x]
        seq, hx, lengths = parts[0], None, None
        if cfg["lengths"] and seq.dim() == 3:
            lengths = parts.pop()
        if len(parts) > 1:
            hx = parts[1]
        if lengths is None:
            out, state = t(seq, hx)
        else:
            packed = tnn.utils.rnn.pack_padded_sequence(seq, lengths, batch_first=cfg["batch_first"],
                                                        enforce_sorted=False)
            out, state = t(packed, hx)
            total = seq.shape[1] if cfg["batch_first"] else seq.shape[0]
            out, _ = tnn.utils.rnn.pad_packed_sequence(out, batch_first=cfg["batch_first"], total_length=total)
        return (out, state) if cfg["return_state"] else out

    return call


def _rnn_cases():
    """Seeded random configurations per kind: three full-size ones (parity),
    two small ones (parity and finite differences, one with dropout between
    layers), one with everything at once per layout, and an unbatched one."""
    entries = []
    for k, kind in enumerate(RNN_KINDS):
        drawn = []
        for seed in range(3):
            r = np.random.default_rng([seed, k])
            drawn.append((f"{kind}-random-{seed}", draw_rnn_config(r, kind), 0.0, False, ()))
        for seed in range(2):
            r = np.random.default_rng([100 + seed, k])
            cfg = draw_rnn_config(r, kind, small=True)
            if seed:  # dropout between two layers
                cfg["num_layers"] = 2
            drawn.append((f"{kind}-small-{seed}", cfg, 0.3 * seed, False, None))
        for batch_first in (True, False):
            r = np.random.default_rng(k)
            cfg = dict(draw_rnn_config(r, kind), num_layers=3, bidirectional=True, batch_first=batch_first,
                       bias=True, lengths=True, h0=True, steps=6, batch=4, hidden_size=5, return_state=True,
                       proj_size=3 if kind == "LSTM" else 0)
            drawn.append((f"{kind}-everything-{'NT' if batch_first else 'TN'}", cfg, 0.0, False, ()))
        r = np.random.default_rng([7, k])
        cfg = dict(draw_rnn_config(r, kind, small=True), num_layers=2, bidirectional=True, h0=True,
                   return_state=True)
        drawn.append((f"{kind}-unbatched", cfg, 0.0, True, None))
        for name, cfg, dropout, unbatched, gradcheck in drawn:
            entries.append(
                Entry(
                    name,
                    lambda s, c=cfg, d=dropout: _rnn_module(c, s, d),
                    [_rnn_input(cfg, unbatched)],
                    torch=lambda m, c=cfg, d=dropout: _t_rnn_module(c, d),
                    torch_call=_t_rnn_call(cfg),
                    random=dropout > 0,
                    mode_dependent=dropout > 0 and cfg["num_layers"] > 1,
                    gradcheck=gradcheck,
                    batch_axis=None if unbatched or cfg["h0"] or cfg["lengths"] or cfg["return_state"]
                    else (0 if cfg["batch_first"] else 1),
                )
            )
    return entries


def draw_mha_case(r):
    """A random MultiheadAttention configuration PyTorch accepts (what
    test_attention drew): heads, kdim/vdim, bias, bias_kv, zero_attn, layout,
    self / shared key-value / three inputs, unbatched, boolean / -inf / float
    key_padding_mask and attn_mask (2-D or per head), is_causal, need_weights
    averaged or not; masks leave every query at least one key."""
    H = int(r.integers(1, 5))
    E = H * int(r.integers(1, 4))
    cfg = dict(
        embed_dim=E, num_heads=H, bias=bool(r.integers(4)), add_bias_kv=bool(r.integers(3) == 0),
        add_zero_attn=bool(r.integers(4) == 0), batch_first=bool(r.integers(2)),
    )
    if r.integers(3) == 0:
        cfg.update(kdim=int(r.integers(1, 6)), vdim=int(r.integers(1, 6)))
    N, L, S = int(r.integers(1, 4)), int(r.integers(1, 5)), int(r.integers(1, 5))
    form = ["self", "kv", "qkv"][r.integers(3)] if "kdim" not in cfg else "qkv"
    if form == "self":
        S = L
    unbatched = r.integers(6) == 0
    kw = {}
    causal = r.integers(4) == 0
    if r.integers(2):
        kind = r.integers(2)
        pad = r.random((N, S)) < 0.3
        pad[:, 0] = False
        kw["key_padding_mask"] = pad if kind == 0 else np.where(pad, -np.inf, r.normal(size=(N, S)))
    if r.integers(2):
        kind = r.integers(3)
        shape = (L, S) if r.integers(2) else (N * H, L, S)
        block = r.random(shape) < 0.3
        block[..., 0] = False
        kw["attn_mask"] = [block, np.where(block, -np.inf, 0.0), r.normal(size=shape)][kind]
    if causal:
        kw["is_causal"] = True
    if r.integers(2):
        kw["need_weights"] = True
        kw["average_attn_weights"] = bool(r.integers(2))
    if unbatched:
        N = 1
        kw = {k: (v[0] if k == "key_padding_mask" else v) for k, v in kw.items()}
        if "attn_mask" in kw and kw["attn_mask"].ndim == 3:
            kw["attn_mask"] = kw["attn_mask"][:H]
    return cfg, form, (N, L, S), bool(unbatched), kw


def _mha_input(cfg, form, sizes, unbatched):
    """x (self-attention), (q, kv, kv) with the key array as the value, or (q, k, v)."""
    N, L, S = sizes
    E, kd, vd = cfg["embed_dim"], cfg.get("kdim") or cfg["embed_dim"], cfg.get("vdim") or cfg["embed_dim"]

    def f(dtype, seed):
        r = np.random.default_rng(seed)

        def arr(n, e):
            shape = (n, e) if unbatched else ((N, n, e) if cfg["batch_first"] else (n, N, e))
            return r.normal(size=shape).astype(dtype)

        q = arr(L, E)
        if form == "self":
            return q
        if form == "kv":
            kv = arr(S, kd)
            return q, kv, kv
        return q, arr(S, kd), arr(S, vd)

    return Fn(f)


def _t_mha_call(t, x, **kw):
    """PyTorch's call for our keywords: need_weights defaults to False here; is_causal
    (a hint in PyTorch) becomes the causal mask merged into attn_mask."""
    q, k, v = (x, x, x) if isinstance(x, torch.Tensor) else x
    kw.setdefault("need_weights", False)
    if kw.get("is_causal"):
        L, S = q.shape[-2 if t.batch_first or q.dim() == 2 else 0], k.shape[-2 if t.batch_first or k.dim() == 2 else 0]
        causal = torch.ones(L, S, dtype=torch.bool).triu(1)
        am = kw.get("attn_mask")
        if am is None:
            kw["attn_mask"] = causal
        elif am.dtype == torch.bool:
            kw["attn_mask"] = am | causal
        else:
            kw["attn_mask"] = am.masked_fill(causal, float("-inf"))
        kw["is_causal"] = False
    out, weights = t(q, k, v, **kw)
    return (out, weights) if kw["need_weights"] else out


def _mha_cases():
    """Seeded random MultiheadAttention configurations: 16 for parity, 8 more
    (half with dropout 0.4) for parity and finite differences."""
    entries = []
    for seed in range(24):
        r = np.random.default_rng(seed if seed < 16 else 500 + seed)
        cfg, form, sizes, unbatched, kw = draw_mha_case(r)
        dropout = 0.4 if seed >= 16 and seed % 2 else 0.0
        entries.append(
            Entry(
                f"MultiheadAttention-random-{seed}",
                lambda s, c=cfg, d=dropout: layers.MultiheadAttention(**c, dropout=d, rng=s),
                [_mha_input(cfg, form, sizes, unbatched)],
                torch=lambda m, c=cfg, d=dropout: tnn.MultiheadAttention(**c, dropout=d),
                torch_call=_t_mha_call,
                forward_kwargs=kw,
                random=dropout > 0,
                mode_dependent=dropout > 0,
                gradcheck=() if seed < 16 else None,
                batch_axis=None,
            )
        )
    return entries


def draw_transformer_layer(r):
    """A random transformer layer configuration (what test_transformer drew)."""
    nhead = int(r.integers(1, 5))
    return dict(
        # at least 4: the gradient of a LayerNorm over 1 or 2 features is zero, leaving rounding noise
        d_model=max(4, nhead * int(r.integers(2, 4))),
        nhead=nhead, dim_feedforward=int(r.integers(1, 12)), dropout=0.0,
        activation=["relu", "gelu"][r.integers(2)], batch_first=bool(r.integers(2)), norm_first=bool(r.integers(2)),
        bias=bool(r.integers(4)), layer_norm_eps=float(r.choice([1e-5, 1e-3])),
    )


def draw_transformer_masks(r, N, L, S, nhead, mask_name, kpm_name, causal_name):
    """Masks over (L, S) that leave every query a key (key 0): boolean, -inf or
    float attention masks (2-D or per head), boolean or -inf padding masks, the causal flag."""
    kw = {}
    if r.integers(2):
        block = r.random((L, S) if r.integers(2) else (N * nhead, L, S)) < 0.3
        block[..., 0] = False
        kw[mask_name] = [block, np.where(block, -np.inf, 0.0), r.normal(size=block.shape)][r.integers(3)]
    if r.integers(2):
        pad = r.random((N, S)) < 0.3
        pad[:, 0] = False
        kw[kpm_name] = pad if r.integers(2) else np.where(pad, -np.inf, 0.0)
    if causal_name and r.integers(3) == 0:
        kw[causal_name] = True
    return kw


def _t_transformer_call(causal=()):
    """PyTorch's call: ``causal`` holds (flag, mask keyword, L) for each causal
    flag; PyTorch needs the mask itself beside the hint, merged into the given mask."""

    def call(t, x, **kw):
        for flag, mask_name, L in causal:
            if kw.pop(flag, False):
                mask = torch.ones(L, L, dtype=torch.bool).triu(1)
                am = kw.get(mask_name)
                if am is not None:
                    mask = am | mask if am.dtype == torch.bool else am.masked_fill(mask, float("-inf"))
                kw[mask_name] = mask
        return t(*x, **kw) if isinstance(x, tuple) else t(x, **kw)

    return call


def _perturbed(m, s):
    """Random parameters (zero biases and unit norms would hide their gradients)."""
    r = np.random.default_rng(s + 3)
    for name, p in m.named_parameters():
        p[...] = r.normal(size=p.shape) * 0.5 + (1.0 if p.ndim == 1 and "norm" in name and "weight" in name else 0.0)
    return m


def _tokens(d_model, batch_first, L, N):
    return (N, L, d_model) if batch_first else (L, N, d_model)


def _transformer_cases():
    """Seeded random encoder and decoder layers with masks (parity), encoder-decoder
    models, stacks with a final norm and causal masks, and small layers with
    dropout and random parameters (finite differences)."""
    entries = []
    for seed in range(8):
        r = np.random.default_rng(seed)
        cfg = draw_transformer_layer(r)
        L, N = int(r.integers(1, 6)), int(r.integers(1, 4))
        kw = draw_transformer_masks(r, N, L, L, cfg["nhead"], "src_mask", "src_key_padding_mask", "is_causal")
        entries.append(Entry(
            f"TransformerEncoderLayer-random-{seed}",
            lambda s, c=cfg: layers.TransformerEncoderLayer(**c, rng=s),
            [_tokens(cfg["d_model"], cfg["batch_first"], L, N)],
            torch=lambda m, c=cfg: tnn.TransformerEncoderLayer(**c),
            torch_call=_t_transformer_call([("is_causal", "src_mask", L)]),
            forward_kwargs=kw, gradcheck=(), batch_axis=None,
        ))
    for seed in range(8):
        r = np.random.default_rng(100 + seed)
        cfg = draw_transformer_layer(r)
        T, S, N = int(r.integers(1, 6)), int(r.integers(1, 6)), int(r.integers(1, 4))
        kw = draw_transformer_masks(r, N, T, T, cfg["nhead"], "tgt_mask", "tgt_key_padding_mask", "tgt_is_causal")
        kw.update(draw_transformer_masks(r, N, T, S, cfg["nhead"], "memory_mask", "memory_key_padding_mask", None))
        entries.append(Entry(
            f"TransformerDecoderLayer-random-{seed}",
            lambda s, c=cfg: layers.TransformerDecoderLayer(**c, rng=s),
            [(_tokens(cfg["d_model"], cfg["batch_first"], T, N), _tokens(cfg["d_model"], cfg["batch_first"], S, N))],
            torch=lambda m, c=cfg: tnn.TransformerDecoderLayer(**c),
            torch_call=_t_transformer_call([("tgt_is_causal", "tgt_mask", T)]),
            forward_kwargs=kw, gradcheck=(), batch_axis=None,
        ))
    for seed in range(3):
        r = np.random.default_rng(200 + seed)
        cfg = draw_transformer_layer(r)
        n_enc, n_dec = int(r.integers(1, 3)), int(r.integers(1, 3))
        args = {k: cfg[k] for k in ("dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first",
                                    "norm_first", "bias")}
        S, T, N = int(r.integers(1, 6)), int(r.integers(1, 6)), int(r.integers(1, 4))
        pad = r.random((N, S)) < 0.3
        pad[:, 0] = False
        kw = dict(tgt_mask=layers.Transformer.generate_square_subsequent_mask(T), src_key_padding_mask=pad,
                  memory_key_padding_mask=pad)
        entries.append(Entry(
            f"Transformer-random-{seed}",
            lambda s, c=cfg, a=args, e=n_enc, d=n_dec: layers.Transformer(c["d_model"], c["nhead"], e, d, **a, rng=s),
            [(_tokens(cfg["d_model"], cfg["batch_first"], S, N), _tokens(cfg["d_model"], cfg["batch_first"], T, N))],
            torch=lambda m, c=cfg, a=args, e=n_enc, d=n_dec: tnn.Transformer(c["d_model"], c["nhead"], e, d, **a),
            torch_call=_t_transformer_call(),
            forward_kwargs=kw, gradcheck=(), batch_axis=None,
        ))
    entries += [
        Entry(
            "TransformerEncoder-norm-causal",
            lambda s: layers.TransformerEncoder(
                layers.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True, rng=s), 3,
                norm=layers.LayerNorm(8)),
            [(2, 5, 8)],
            torch=lambda m: tnn.TransformerEncoder(
                tnn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, norm_first=True), 3,
                norm=tnn.LayerNorm(8), enable_nested_tensor=False),
            torch_call=_t_transformer_call([("is_causal", "mask", 5)]),
            forward_kwargs=dict(is_causal=True), gradcheck=(),
        ),
        Entry(
            "TransformerDecoder-norm-causal-gelu",
            lambda s: layers.TransformerDecoder(
                layers.TransformerDecoderLayer(8, 4, 8, dropout=0.0, activation="gelu", rng=s), 2,
                norm=layers.LayerNorm(8)),
            [((4, 3, 8), (6, 3, 8))],
            torch=lambda m: tnn.TransformerDecoder(tnn.TransformerDecoderLayer(8, 4, 8, 0.0, activation="gelu"), 2,
                                                   norm=tnn.LayerNorm(8)),
            torch_call=_t_transformer_call([("tgt_is_causal", "tgt_mask", 4)]),
            forward_kwargs=dict(tgt_is_causal=True), gradcheck=(), batch_axis=1,
        ),
        Entry(
            "Transformer-perturbed",
            lambda s: _perturbed(layers.Transformer(4, 2, 1, 1, 6, dropout=0.0, rng=s), s),
            [((3, 2, 4), (2, 2, 4))],
            torch=lambda m: tnn.Transformer(4, 2, 1, 1, 6, dropout=0.0),
            batch_axis=1,
        ),
    ]
    for activation in ("relu", "gelu"):
        for norm_first in (False, True):
            tag = f"{activation}{'-normfirst' if norm_first else ''}-dropout"
            kw = dict(dropout=0.2, activation=activation, norm_first=norm_first)
            entries += [
                Entry(
                    f"TransformerEncoderLayer-{tag}",
                    lambda s, k=kw: _perturbed(layers.TransformerEncoderLayer(4, 2, 6, **k, rng=s), s),
                    [(3, 2, 4)],
                    torch=lambda m, k=kw: tnn.TransformerEncoderLayer(4, 2, 6, **k),
                    random=True, mode_dependent=True, batch_axis=1,
                ),
                Entry(
                    f"TransformerDecoderLayer-{tag}",
                    lambda s, k=kw: _perturbed(layers.TransformerDecoderLayer(4, 2, 6, **k, batch_first=True, rng=s),
                                               s),
                    [((2, 3, 4), (2, 5, 4))],
                    torch=lambda m, k=kw: tnn.TransformerDecoderLayer(4, 2, 6, **k, batch_first=True),
                    random=True, mode_dependent=True,
                    gradcheck=None if (activation == "gelu") == norm_first else (),  # two of the four: time
                ),
            ]
    return entries


# ------------------------------------------------------------------ containers against PyTorch functions
# (id, make(seed) -> module, make_input(dtype) -> input, reference(module, TorchLeaves, torch input)): the
# same computation written with our parameters as torch leaves (PyTorch has no such containers)
NC = 3


def arr(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


class TorchLeaves:
    """Our parameters as torch leaves (one leaf per array, so shared modules share it)."""

    def __init__(self):
        self.leaves = {}

    def p(self, a):
        if id(a) not in self.leaves:
            self.leaves[id(a)] = (a, torch.tensor(a, requires_grad=True))
        return self.leaves[id(a)][1]

    def linear(self, m, x):
        return torch.nn.functional.linear(x, self.p(m.W), None if m.b is None else self.p(m.b))


def _x(dtype):
    return arr(NC, 4, dtype=dtype)


def _tanh_mlp(seed):
    return nn.Sequential(nn.Linear(4, 4, rng=seed), nn.Tanh(), nn.Linear(4, 4, rng=seed + 1))


def _ref_tanh_mlp(m, t, x):
    return t.linear(m[2], torch.tanh(t.linear(m[0], x)))


def _shared_seq(seed):
    lin = nn.Linear(4, 4, rng=seed)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh())


def _shared_concat(seed):
    lin = nn.Linear(4, 4, rng=seed)
    return nn.ConcatTable(lin, nn.Sequential(lin, nn.Sigmoid()))


CONTAINER_CASES = [
    (
        "Residual-identity",
        lambda s: nn.Residual(_tanh_mlp(s)),
        _x,
        lambda m, t, x: _ref_tanh_mlp(m.body, t, x) + x,
    ),
    (
        "Residual-shortcut",
        lambda s: nn.Residual(nn.Sequential(nn.Linear(4, 3, rng=s), nn.Tanh()), nn.Linear(4, 3, rng=s + 1)),
        _x,
        lambda m, t, x: torch.tanh(t.linear(m.body[0], x)) + t.linear(m.shortcut, x),
    ),
    (
        "ConcatTable",
        lambda s: nn.ConcatTable(
            nn.Linear(4, 3, rng=s), nn.Tanh(), nn.Sequential(nn.Linear(4, 2, rng=s + 1), nn.Sigmoid())
        ),
        _x,
        lambda m, t, x: (t.linear(m[0], x), torch.tanh(x), torch.sigmoid(t.linear(m[2][0], x))),
    ),
    (
        "ConcatTable-shared",
        _shared_concat,
        _x,
        lambda m, t, x: (t.linear(m[0], x), torch.sigmoid(t.linear(m[0], x))),
    ),
    (
        "ParallelTable",
        lambda s: nn.ParallelTable(nn.Linear(4, 3, rng=s), nn.Tanh()),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 5, seed=1, dtype=d)),
        lambda m, t, x: (t.linear(m[0], x[0]), torch.tanh(x[1])),
    ),
    (
        "ParallelTable-nested",
        lambda s: nn.ParallelTable(nn.ConcatTable(nn.Linear(4, 2, rng=s), nn.Tanh()), nn.Identity()),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 5, seed=1, dtype=d)),
        lambda m, t, x: ((t.linear(m[0][0], x[0]), torch.tanh(x[0])), x[1]),
    ),
    (
        "Concat",
        lambda s: nn.Concat(1, nn.Linear(4, 3, rng=s), nn.Tanh(), nn.Linear(4, 2, rng=s + 1)),
        _x,
        lambda m, t, x: torch.cat([t.linear(m[0], x), torch.tanh(x), t.linear(m[2], x)], 1),
    ),
    (
        "Concat-dim-keyword",
        lambda s: nn.Concat(nn.Linear(4, 2, rng=s), nn.Tanh(), dim=-1),
        _x,
        lambda m, t, x: torch.cat([t.linear(m[0], x), torch.tanh(x)], -1),
    ),
    (
        "Concat-negative-dim",
        lambda s: nn.Concat(-1, nn.Tanh(), nn.Sigmoid()),
        lambda d: arr(NC, 2, 3, dtype=d),
        lambda m, t, x: torch.cat([torch.tanh(x), torch.sigmoid(x)], -1),
    ),
    (
        "CAddTable",
        lambda s: nn.CAddTable(),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 4, seed=1, dtype=d), arr(NC, 4, seed=2, dtype=d)),
        lambda m, t, x: x[0] + x[1] + x[2],
    ),
    (
        "CAddTable-broadcast",
        lambda s: nn.CAddTable(),
        lambda d: (arr(NC, 4, dtype=d), arr(1, 4, seed=1, dtype=d), arr(4, seed=2, dtype=d)),
        lambda m, t, x: x[0] + x[1] + x[2],
    ),
    (
        "CSubTable",
        lambda s: nn.CSubTable(),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 1, seed=1, dtype=d)),
        lambda m, t, x: x[0] - x[1],
    ),
    (
        "CMulTable",
        lambda s: nn.CMulTable(),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 4, seed=1, dtype=d), arr(1, 4, seed=2, dtype=d)),
        lambda m, t, x: x[0] * x[1] * x[2],
    ),
    (
        "JoinTable",
        lambda s: nn.JoinTable(1),
        lambda d: (arr(NC, 3, dtype=d), arr(NC, 2, seed=1, dtype=d)),
        lambda m, t, x: torch.cat(x, 1),
    ),
    (
        "JoinTable-channels",
        lambda s: nn.JoinTable(-3),
        lambda d: (arr(2, 3, 2, 2, dtype=d), arr(2, 1, 2, 2, seed=1, dtype=d)),
        lambda m, t, x: torch.cat(x, 1),
    ),
    ("SplitTable", lambda s: nn.SplitTable(1), lambda d: arr(NC, 3, 2, dtype=d), lambda m, t, x: torch.unbind(x, 1)),
    (
        "SelectTable-nested",
        lambda s: nn.SelectTable(1),
        lambda d: (arr(NC, 4, dtype=d), (arr(NC, 2, seed=1, dtype=d), arr(NC, 3, seed=2, dtype=d))),
        lambda m, t, x: x[1],
    ),
    (
        "SelectTable-negative",
        lambda s: nn.SelectTable(-1),
        lambda d: (arr(NC, 4, dtype=d), arr(NC, 2, seed=1, dtype=d)),
        lambda m, t, x: x[-1],
    ),
    (
        "Sequential-tuples",
        lambda s: nn.Sequential(
            nn.ConcatTable(nn.Linear(4, 3, rng=s), nn.Linear(4, 3, rng=s + 1)), nn.CMulTable(), nn.Tanh()
        ),
        _x,
        lambda m, t, x: torch.tanh(t.linear(m[0][0], x) * t.linear(m[0][1], x)),
    ),
    (
        "Sequential-shared",
        _shared_seq,
        _x,
        lambda m, t, x: torch.tanh(t.linear(m[0], torch.tanh(t.linear(m[0], x)))),
    ),
]


def _container_cases():
    return [
        Entry(
            f"{name}-vs-torch",
            make,
            [Fn(lambda dtype, seed, f=make_input: f(dtype))],
            torch_fn=ref,
            batch_axis=None if name in ("CAddTable-broadcast", "CMulTable") else 0,  # leaves of batch 1 broadcast
        )
        for name, make, make_input, ref in CONTAINER_CASES
    ]


# ------------------------------------------------------------------ random graphs (moved from test_graph)
F_ = 3


def random_dag(seed):
    """A random DAG of Linear (some shared), activations, CAddTable, CMulTable,
    JoinTable and Residual, as (nnumpy Graph, torch function of the inputs)."""
    from nnumpy import CAddTable, CMulTable, Graph, Input, JoinTable, Linear, ReLU, Residual, Sequential, Sigmoid, Tanh

    r = np.random.default_rng(seed)
    n_in = int(r.integers(1, 3))
    inputs = [Input() for _ in range(n_in)]
    nodes = list(inputs)
    ops = []  # (kind, module, parent indices)
    shared = []
    used = set()

    wide = set()  # the joined nodes (2 * F_ wide): only their Linear takes them

    def pick(k):
        # favour recent nodes (depth), allow any (fan-out)
        p = np.array([0.0 if i in wide else i + 1.0 for i in range(len(nodes))])
        chosen = [int(i) for i in r.choice(len(nodes), size=k, p=p / p.sum())]
        used.update(chosen)
        return chosen

    def grow(kind, module, parents):
        ops.append((kind, module, parents))
        args = [nodes[i] for i in parents]
        nodes.append(module(*args))

    for _ in range(int(r.integers(3, 10))):
        kind = ["linear", "act", "add", "mul", "join", "residual"][int(r.integers(6))]
        if kind == "linear":
            if shared and r.random() < 0.5:
                module = shared[int(r.integers(len(shared)))]
            else:
                module = Linear(F_, F_, rng=int(r.integers(1000)))
                shared.append(module)
            grow("linear", module, pick(1))
        elif kind == "act":
            grow("act", [Tanh, Sigmoid, ReLU][int(r.integers(3))](), pick(1))
        elif kind == "add":
            grow("add", CAddTable(), pick(int(r.integers(2, 4))))
        elif kind == "mul":
            grow("mul", CMulTable(), pick(2))
        elif kind == "join":
            grow("join", JoinTable(1), pick(2))
            wide.add(len(nodes) - 1)
            grow("linear", Linear(2 * F_, F_, rng=int(r.integers(1000))), [len(nodes) - 1])
            used.add(len(nodes) - 2)
        else:
            grow("residual", Residual(Sequential(Linear(F_, F_, rng=int(r.integers(1000))), Tanh())), pick(1))
    sinks = [i for i in range(len(nodes)) if i not in used and i >= n_in]
    unused_inputs = [i for i in range(n_in) if i not in used]
    ends = sinks + unused_inputs
    if len(ends) > 1 and r.random() < 0.5:
        outputs = [nodes[i] for i in ends]
        out_ids = ends
    else:
        if len(ends) > 1:
            grow("add", CAddTable(), ends)
            out_ids = [len(nodes) - 1]
        else:
            out_ids = ends
        outputs = [nodes[out_ids[0]]]
    net = Graph(inputs if n_in > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0])

    def reference(t, tx):
        values = list(tx) if n_in > 1 else [tx]
        for kind, m, parents in ops:
            args = [values[i] for i in parents]
            if kind == "linear":
                v = t.linear(m, args[0])
            elif kind == "act":
                v = {Tanh: torch.tanh, Sigmoid: torch.sigmoid, ReLU: torch.relu}[type(m)](args[0])
            elif kind == "add":
                v = sum(args[1:], args[0])
            elif kind == "mul":
                v = args[0] * args[1]
            elif kind == "join":
                v = torch.cat(args, 1)
            else:
                v = args[0] + torch.tanh(t.linear(m.body[0], args[0]))
            values.append(v)
        outs = [values[i] for i in out_ids]
        return tuple(outs) if len(outs) > 1 else outs[0]

    return net, n_in, reference


_DAG_REFERENCES = {}  # id(graph) -> (graph, its torch function): make() builds a new graph each time


def _dag(seed):
    net, _, reference = random_dag(seed)
    _DAG_REFERENCES[id(net)] = (net, reference)
    return net


def _dag_input(n_in):
    def f(dtype, seed):
        xs = tuple(arr(NC, F_, seed=seed + i, dtype=dtype) for i in range(n_in))
        return xs if n_in > 1 else xs[0]

    return Fn(f)


def _dag_cases():
    """30 seeded random DAGs (shared Linear, fan-out, every kind of node, one or
    several inputs and outputs) against the same function in PyTorch; 4 gradchecked."""
    return [
        Entry(
            f"Graph-random-dag-{seed}",
            lambda s, k=seed: _dag(k),
            [_dag_input(random_dag(seed)[1])],
            torch_fn=lambda m, t, x: _DAG_REFERENCES[id(m)][1](t, x),
            gradcheck=None if seed < 4 else (),
        )
        for seed in range(30)
    ]


POOL_CASES_2D = [  # kernel, stride, padding, input shape
    (2, None, 0, (2, 3, 8, 6)),
    (2, None, 0, (1, 2, 7, 9)),  # odd sizes: floor mode drops the last row/column
    (3, 2, 1, (2, 3, 7, 5)),
    (3, 1, 1, (1, 2, 5, 6)),
    ((2, 3), (1, 2), (1, 1), (2, 2, 6, 7)),
    (2, 3, 1, (2, 2, 8, 8)),  # stride > kernel
    ((3, 1), (2, 1), (1, 0), (1, 3, 9, 4)),
]
POOL_CASES_1D = [(2, None, 0), (3, 2, 1), (4, 1, 2), (2, 3, 0)]  # on (2, 3, 11)


def _pool_cases():
    """Max and average pooling (counting the padding or not) over kernel != stride,
    padding, non-square inputs; max pooling on distinct values (no ties)."""
    entries = []
    for k, (kernel, stride, padding, shape) in enumerate(POOL_CASES_2D):
        t_stride = kernel if stride is None else stride
        entries.append(
            Entry(
                f"MaxPool2d-case-{k}",
                lambda s, a=(kernel, stride, padding): nn.MaxPool2d(*a),
                [_distinct(shape)],
                torch=lambda m, a=(kernel, t_stride, padding): tnn.MaxPool2d(*a),
            )
        )
        for include in (True, False):
            entries.append(
                Entry(
                    f"AvgPool2d-case-{k}{'' if include else '-exclude-pad'}",
                    lambda s, a=(kernel, stride, padding), c=include: nn.AvgPool2d(*a, count_include_pad=c),
                    [shape],
                    torch=lambda m, a=(kernel, t_stride, padding), c=include: tnn.AvgPool2d(*a, count_include_pad=c),
                )
            )
    for k, (kernel, stride, padding) in enumerate(POOL_CASES_1D):
        t_stride = kernel if stride is None else stride
        entries += [
            Entry(
                f"MaxPool1d-case-{k}",
                lambda s, a=(kernel, stride, padding): nn.MaxPool1d(*a),
                [_distinct((2, 3, 11))],
                torch=lambda m, a=(kernel, t_stride, padding): tnn.MaxPool1d(*a),
            ),
            Entry(
                f"AvgPool1d-case-{k}",
                lambda s, a=(kernel, stride, padding): nn.AvgPool1d(*a),
                [(2, 3, 11)],
                torch=lambda m, a=(kernel, t_stride, padding): tnn.AvgPool1d(*a),
            ),
        ]
    return entries


CONV_CONFIGS_2D = [draw_conv(seed) for seed in range(40)]
CONV_CONFIGS_1D = [draw_conv(1000 + seed, nd=1) for seed in range(15)]


def _random_convs():
    """One entry per random configuration; every 4th 2-D one (on a batch of one)
    and every 3rd 1-D one are gradchecked too."""
    entries = []
    for nd, configs, every in ((2, CONV_CONFIGS_2D, 4), (1, CONV_CONFIGS_1D, 3)):
        for k, (make, shape) in enumerate(configs):
            checked = k % every == 0
            inputs = [shape, (1, *shape[1:])] if nd == 2 and checked else [shape]
            gradcheck = (len(inputs) - 1,) if checked else ()
            entries.append(Entry(f"Conv{nd}d-random-{k}", make, inputs, torch=torch_conv, gradcheck=gradcheck))
    return entries


# ------------------------------------------------------------------ the table
MODULES = [
    # ---- linear and element-wise
    Entry(
        "Linear",
        lambda s: nn.Linear(4, 3, rng=s),
        [(2, 4), (5, 4), (1, 4)],
        torch=lambda m: tnn.Linear(4, 3),
        errors=[((2, 5), r"expected input of shape \(N, 4\).*got \(2, 5\)")],
        repr="Linear(4 -> 3)",
    ),
    Entry(
        "Linear-nobias",
        lambda s: nn.Linear(4, 3, bias=False, rng=s),
        [(3, 4)],
        torch=lambda m: tnn.Linear(4, 3, bias=False),
        repr="Linear(4 -> 3, bias=False)",
    ),
    Entry(  # float64 parameters, as built (model files keep them float64)
        "Linear-nobias-f64",
        lambda s: nn.Linear(5, 3, bias=False, dtype=np.float64, rng=s),
        [(4, 5)],
        torch=lambda m: tnn.Linear(5, 3, bias=False),
    ),
    _act("ReLU", lambda s: nn.ReLU(), lambda m: tnn.ReLU(), repr="ReLU()"),
    _act("LeakyReLU", lambda s: nn.LeakyReLU(0.1), lambda m: tnn.LeakyReLU(0.1), repr="LeakyReLU(slope=0.1)"),
    _act("ELU", lambda s: nn.ELU(0.7), lambda m: tnn.ELU(0.7), repr="ELU(alpha=0.7)"),
    # (PyTorch's Softplus is linear above 20: compared on moderate inputs only)
    _act("SoftPlus", lambda s: nn.SoftPlus(), lambda m: tnn.Softplus(), repr="SoftPlus()", scaled=False),
    _act("Sigmoid", lambda s: nn.Sigmoid(), lambda m: tnn.Sigmoid(), repr="Sigmoid()"),
    _act("Tanh", lambda s: nn.Tanh(), lambda m: tnn.Tanh(), repr="Tanh()"),
    _act("Identity", lambda s: nn.Identity(), lambda m: tnn.Identity(), repr="Identity()"),
    _act("GELU", lambda s: layers.GELU(), lambda m: tnn.GELU()),
    _act("GELU-tanh", lambda s: layers.GELU(approximate="tanh"), lambda m: tnn.GELU(approximate="tanh")),
    _act("SiLU", lambda s: layers.SiLU(), lambda m: tnn.SiLU()),
    _act("Mish", lambda s: layers.Mish(), lambda m: tnn.Mish()),
    # kinks at +-3: inputs drawn in (-2.9, 2.9) are away from them (and from 0 by 0.1)
    _act("Hardswish", lambda s: layers.Hardswish(), lambda m: tnn.Hardswish()),
    # PyTorch's float64 backward of Hardsigmoid uses a float32 1/6: compared at float32's tolerance
    _act("Hardsigmoid", lambda s: layers.Hardsigmoid(), lambda m: tnn.Hardsigmoid(), torch_float64=False),
    _act("ReLU6", lambda s: layers.ReLU6(), lambda m: tnn.ReLU6()),
    _act("Hardtanh", lambda s: layers.Hardtanh(), lambda m: tnn.Hardtanh()),
    _act("Hardtanh-range", lambda s: layers.Hardtanh(-0.5, 2.0), lambda m: tnn.Hardtanh(-0.5, 2.0)),
    _act("SELU", lambda s: layers.SELU(), lambda m: tnn.SELU()),
    # PyTorch's float64 CELU backward uses a float32 1/alpha (exact for 1 and 0.5 only)
    _act("CELU", lambda s: layers.CELU(), lambda m: tnn.CELU()),
    _act("CELU-alpha", lambda s: layers.CELU(0.5), lambda m: tnn.CELU(0.5)),
    _act("CELU-0.3", lambda s: layers.CELU(0.3), lambda m: tnn.CELU(0.3), torch_float64=False),
    _act("CELU-negative-alpha", lambda s: layers.CELU(-2.0), lambda m: tnn.CELU(-2.0), torch_float64=False),
    _act("Softsign", lambda s: layers.Softsign(), lambda m: tnn.Softsign()),
    _act("Tanhshrink", lambda s: layers.Tanhshrink(), lambda m: tnn.Tanhshrink()),
    Entry(
        "PReLU",
        lambda s: _affine(layers.PReLU(3, init=0.1), s),
        [(4, 3), (2, 3, 5)],
        torch=lambda m: tnn.PReLU(3),
        errors=[((2, 4), r"expected input of shape \(N, 3, \*\)")],
    ),
    _act("PReLU-shared", lambda s: layers.PReLU(), lambda m: tnn.PReLU(), inputs=(A, IMG, (1, 5))),
    Entry(
        "SoftMax",
        lambda s: nn.SoftMax(),
        [(3, 5), (4, 3, 2)],
        torch=lambda m: tnn.Softmax(dim=1),
        errors=[((3,), r"expected input of shape \(N, C, \*\)")],
        repr="SoftMax()",
    ),
    Entry("SoftMax-dim", lambda s: nn.SoftMax(dim=-1), [(2, 3, 4)], torch=lambda m: tnn.Softmax(dim=-1)),
    Entry("LogSoftMax", lambda s: nn.LogSoftMax(), [(3, 5), (4, 3, 2)], torch=lambda m: tnn.LogSoftmax(dim=1)),
    Entry("LogSoftMax-dim", lambda s: nn.LogSoftMax(dim=2), [(2, 3, 4)], torch=lambda m: tnn.LogSoftmax(dim=2)),
    Entry(
        "Dropout",
        lambda s: nn.Dropout(0.3, rng=s),
        [(4, 5), (3, 2, 2)],
        torch=_dropout_eval(tnn.Dropout),
        random=True,
        mode_dependent=True,
        repr="Dropout(p=0.3)",
    ),
    Entry(
        "Dropout2d",
        lambda s: layers.Dropout2d(0.3, rng=s),
        [IMG],
        torch=_dropout_eval(tnn.Dropout2d),
        random=True,
        mode_dependent=True,
        errors=[((2, 3), r"expected input of shape \(N, C, H, W\)")],
    ),
    # ---- shapes
    Entry(
        "Flatten", lambda s: nn.Flatten(), [(2, 3, 4), (3, 2, 2, 2)], torch=lambda m: tnn.Flatten(), repr="Flatten()"
    ),
    Entry(
        "Unflatten",
        lambda s: layers.Unflatten(1, (2, -1)),
        [(2, 6), (3, 4, 5)],
        torch=lambda m: tnn.Unflatten(1, (2, -1)),
        errors=[((2, 5), r"expected axis 1 of size")],
    ),
    Entry(
        "Mean",
        lambda s: layers.Mean((1, 2), keepdim=True),
        [(2, 5, 3)],
        errors=[((2, 4), r"expected input with axis")],
    ),
    Entry("Mean-dim", lambda s: layers.Mean(1), [(2, 5, 3), (3, 4)]),
    # ---- normalisation
    Entry(
        "BatchNormalization",
        lambda s: nn.BatchNormalization(alpha=0.9),
        [(6, 3), (5, 2, 3)],
        mode_dependent=True,
        repr="BatchNormalization(alpha=0.9)",
    ),
    Entry(
        "BatchNormalization-nfeats",
        lambda s: nn.BatchNormalization(0.5, n_feats=3),
        [(6, 3), (3, 3, 2, 2)],
        mode_dependent=True,
    ),
    Entry(
        "ChannelwiseScaling",
        lambda s: nn.ChannelwiseScaling(3, rng=s),
        [(4, 3), (2, 3, 3, 2)],
        errors=[((2, 4), r"expected input of shape \(N, 3\)")],
        repr="ChannelwiseScaling(3)",
    ),
    Entry(
        "BatchNorm1d",
        lambda s: _bn(nn.BatchNorm1d, 3, s, eps=1e-3, momentum=0.3),
        [(5, 3), (4, 3, 6)],
        torch=lambda m: tnn.BatchNorm1d(3, eps=1e-3, momentum=0.3),
        mode_dependent=True,
        errors=[((2, 4), r"expected input of shape \(N, 3\) or \(N, 3, L\)")],
    ),
    Entry(
        "BatchNorm1d-noaffine",
        lambda s: nn.BatchNorm1d(3, affine=False),
        [(5, 3)],
        torch=lambda m: tnn.BatchNorm1d(3, affine=False),
        mode_dependent=True,
    ),
    Entry(
        "BatchNorm2d",
        lambda s: _bn(nn.BatchNorm2d, 2, s, momentum=0.3),
        [(3, 2, 4, 4), (2, 2, 3, 5)],
        torch=lambda m: tnn.BatchNorm2d(2, momentum=0.3),
        mode_dependent=True,
        errors=[((2, 3, 4, 4), r"expected input of shape \(N, 2, H, W\)")],
    ),
    Entry(
        "BatchNorm",  # seed 003's name
        lambda s: _bn(nn.BatchNorm, 3, s),
        [(5, 3)],
        torch=lambda m: tnn.BatchNorm1d(3),
        mode_dependent=True,
    ),
    Entry(
        "LayerNorm",
        lambda s: _affine(layers.LayerNorm((3, 4), eps=1e-3), s),
        [(2, 3, 4), (5, 3, 4)],
        torch=lambda m: tnn.LayerNorm((3, 4), eps=1e-3),
        errors=[((2, 3), r"expected input of shape \(\*, 3, 4\)")],
    ),
    Entry(
        "LayerNorm-nobias",
        lambda s: _affine(layers.LayerNorm(4, bias=False), s),
        [(3, 4)],
        torch=lambda m: tnn.LayerNorm(4, bias=False),
    ),
    Entry(
        "LayerNorm-noaffine",
        lambda s: layers.LayerNorm(4, elementwise_affine=False),
        [(3, 2, 4)],
        torch=lambda m: tnn.LayerNorm(4, elementwise_affine=False),
    ),
    Entry(
        "GroupNorm",
        lambda s: _affine(layers.GroupNorm(2, 4, eps=1e-3), s),
        [(3, 4, 5), (2, 4, 3, 3)],
        torch=lambda m: tnn.GroupNorm(2, 4, eps=1e-3),
        errors=[((2, 3, 5), r"expected input of shape \(N, 4, \*\)")],
    ),
    Entry(
        "InstanceNorm1d",
        lambda s: _affine(layers.InstanceNorm1d(3, affine=True, track_running_stats=True), s),
        [(2, 3, 5)],
        torch=lambda m: tnn.InstanceNorm1d(3, affine=True, track_running_stats=True),
        mode_dependent=True,
    ),
    Entry(
        "InstanceNorm2d",
        lambda s: layers.InstanceNorm2d(3, momentum=0.3),
        [(2, 3, 4, 4), (3, 4, 4)],
        torch=lambda m: tnn.InstanceNorm2d(3, momentum=0.3),
        errors=[((1, 4, 5, 5), r"expected input of shape \(N, 3, H, W\)")],
    ),
    # ---- convolutions and pooling
    Entry(
        "Conv2d",
        lambda s: nn.Conv2d(2, 4, 3, stride=(2, 1), padding=1, rng=s),
        [(2, 2, 7, 6), (1, 2, 5, 5)],
        torch=lambda m: tnn.Conv2d(2, 4, 3, stride=(2, 1), padding=1),
        errors=[((1, 3, 5, 5), r"expected input of shape \(N, 2, H, W\), got \(1, 3, 5, 5\)"), ((3, 5, 5), "expected")],
    ),
    Entry(
        "Conv2d-valid",
        lambda s: nn.Conv2d(3, 4, 5, padding=0, rng=s),
        [(1, 3, 6, 9)],
        torch=torch_conv,
        errors=[((1, 3, 4, 9), r"spatial size \(4, 9\).*smaller than the dilated kernel \(5, 5\)")],
    ),
    Entry(
        "Conv2d-dilated-valid",
        lambda s: nn.Conv2d(3, 2, 3, dilation=3, padding=0, rng=s),
        [(2, 3, 8, 7)],
        torch=torch_conv,
        errors=[((1, 3, 6, 6), r"smaller than the dilated kernel \(7, 7\)")],
    ),
    Entry(
        "Conv1d-valid",
        lambda s: nn.Conv1d(3, 6, 5, padding="valid", rng=s),
        [(2, 3, 7)],
        torch=torch_conv,
        errors=[
            ((2, 3, 4), r"smaller than the dilated kernel \(5,\)"),
            ((2, 3, 4, 4), r"expected input of shape \(N, 3, L\)"),
        ],
    ),
    Entry(
        "Conv2d-groups-dilation",
        lambda s: nn.Conv2d(4, 6, (3, 2), groups=2, dilation=(1, 2), padding=(1, 0), bias=False, rng=s),
        [(2, 4, 5, 6)],
        torch=lambda m: tnn.Conv2d(4, 6, (3, 2), groups=2, dilation=(1, 2), padding=(1, 0), bias=False),
    ),
    Entry(
        "Conv2d-depthwise-same",
        lambda s: nn.Conv2d(3, 3, 3, groups=3, padding="same", rng=s),
        [(2, 3, 5, 4)],
        torch=lambda m: tnn.Conv2d(3, 3, 3, groups=3, padding="same"),
    ),
    Entry(
        "Conv1d",
        lambda s: nn.Conv1d(2, 3, 5, dilation=2, padding=1, rng=s),
        [(2, 2, 12), (1, 2, 9)],
        torch=lambda m: tnn.Conv1d(2, 3, 5, dilation=2, padding=1),
        errors=[((1, 3, 5), r"expected input of shape \(N, 2, L\)")],
    ),
    Entry(
        "Conv1d-stride-groups",
        lambda s: nn.Conv1d(4, 2, 3, stride=2, padding=0, groups=2, rng=s),
        [(3, 4, 9)],
        torch=lambda m: tnn.Conv1d(4, 2, 3, stride=2, groups=2),
    ),
    Entry(
        "Conv2d-padding-modes",
        lambda s: nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="reflect", rng=s),
        [(2, 2, 5, 4)],
        torch=lambda m: tnn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="reflect"),
        errors=[((1, 2, 2, 4), r"padding_mode='reflect' needs padding smaller than the input's spatial size")],
    ),
    Entry(
        "Conv1d-circular",
        lambda s: nn.Conv1d(2, 3, 3, padding=2, padding_mode="circular", rng=s),
        [(2, 2, 5)],
        torch=lambda m: tnn.Conv1d(2, 3, 3, padding=2, padding_mode="circular"),
    ),
    Entry(
        "ConvTranspose2d",
        lambda s: layers.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1, rng=s),
        [(2, 2, 4, 3), (1, 2, 2, 2)],
        torch=lambda m: tnn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1),
        errors=[((2, 3, 4, 4), r"expected input")],
    ),
    Entry(
        "ConvTranspose2d-groups-dilation",
        lambda s: layers.ConvTranspose2d(4, 2, (2, 3), groups=2, dilation=(2, 1), bias=False, rng=s),
        [(2, 4, 3, 3)],
        torch=lambda m: tnn.ConvTranspose2d(4, 2, (2, 3), groups=2, dilation=(2, 1), bias=False),
    ),
    Entry(
        "ConvTranspose1d",
        lambda s: layers.ConvTranspose1d(2, 3, 4, stride=3, padding=1, rng=s),
        [(2, 2, 5)],
        torch=lambda m: tnn.ConvTranspose1d(2, 3, 4, stride=3, padding=1),
        errors=[((2, 3, 5), r"expected input")],
    ),
    Entry(
        "ConvTranspose1d-nobias-dilation",
        lambda s: layers.ConvTranspose1d(2, 3, 4, bias=False, dilation=2, rng=s),
        [(2, 2, 5)],
        torch=lambda m: tnn.ConvTranspose1d(2, 3, 4, bias=False, dilation=2),
    ),
    Entry(
        "MaxPool2d",
        lambda s: nn.MaxPool2d(2),
        [_distinct((2, 3, 6, 6)), _distinct((1, 2, 5, 7))],
        torch=lambda m: tnn.MaxPool2d(2),
        errors=[
            ((3, 5), r"expected input of shape \(N, C, H, W\)"),
            ((3, 4, 4), r"expected input of shape \(N, C, H, W\), got \(3, 4, 4\)"),
        ],
    ),
    Entry(
        "MaxPool2d-overlap-pad",
        lambda s: nn.MaxPool2d(3, stride=2, padding=1),
        [_distinct((2, 2, 7, 6))],
        torch=lambda m: tnn.MaxPool2d(3, stride=2, padding=1),
    ),
    Entry(
        "AvgPool2d",
        lambda s: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        [(2, 3, 7, 7), (1, 2, 5, 6)],
        torch=lambda m: tnn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    ),
    Entry(
        "MaxPool2d-3",
        lambda s: nn.MaxPool2d(3),
        [_distinct((1, 2, 6, 7))],
        torch=lambda m: tnn.MaxPool2d(3),
        errors=[((1, 1, 2, 5), r"spatial size \(2, 5\).*smaller than the kernel \(3, 3\)")],
    ),
    Entry("AvgPool2d-2", lambda s: nn.AvgPool2d(2), [(2, 3, 6, 6)], torch=lambda m: tnn.AvgPool2d(2)),
    Entry(
        "MaxPool2d-ceil",
        lambda s: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        [_distinct((2, 2, 6, 7))],
        torch=lambda m: tnn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    ),
    Entry(
        "AvgPool2d-ceil",
        lambda s: nn.AvgPool2d(2, ceil_mode=True),
        [(2, 3, 5, 7)],
        torch=lambda m: tnn.AvgPool2d(2, ceil_mode=True),
    ),
    Entry(
        "MaxPool1d",
        lambda s: nn.MaxPool1d(3, stride=2, padding=1),
        [_distinct((2, 3, 8))],
        torch=lambda m: tnn.MaxPool1d(3, stride=2, padding=1),
        errors=[((1, 1, 2, 5), r"expected input of shape \(N, C, L\)")],
    ),
    Entry(
        "AvgPool1d",
        lambda s: nn.AvgPool1d(2),
        [(2, 3, 8), (1, 2, 7)],
        torch=lambda m: tnn.AvgPool1d(2),
        errors=[((2, 3), r"expected input of shape \(N, C, L\)")],
    ),
    Entry(
        "GlobalAvgPool2d",
        lambda s: nn.GlobalAvgPool2d(),
        [(2, 3, 5, 5), (1, 2, 3, 4)],
        torch=lambda m: tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten()),
        errors=[((3, 4), r"expected input of shape \(N, C, H, W\)")],
    ),
    Entry(
        "GlobalAvgPool2d-keepdims",
        lambda s: nn.GlobalAvgPool2d(keepdims=True),
        [(2, 3, 5, 5)],
        torch=lambda m: tnn.AdaptiveAvgPool2d(1),
    ),
    Entry(
        "AdaptiveAvgPool2d",
        lambda s: layers.AdaptiveAvgPool2d((3, None)),
        [(2, 3, 7, 5), (1, 2, 5, 4)],
        torch=lambda m: tnn.AdaptiveAvgPool2d((3, None)),
        errors=[((2, 3), r"expected input of shape \(N, C, H, W\)")],
    ),
    Entry(
        "AdaptiveMaxPool2d",
        lambda s: layers.AdaptiveMaxPool2d(2),
        [_distinct((2, 3, 7, 5))],
        torch=lambda m: tnn.AdaptiveMaxPool2d(2),
    ),
    Entry(
        "Upsample",
        lambda s: layers.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=False),
        [(2, 3, 4, 4)],
        torch=_upsample,
        errors=[((2, 3), r"expected input of shape \(N, C, H, W\), got \(2, 3\)")],
    ),
    Entry("Upsample-nearest", lambda s: layers.Upsample(scale_factor=2), [(2, 3, 3, 4), (2, 3, 5)], torch=_upsample),
    Entry("Upsample-linear-size", lambda s: layers.Upsample(size=7, mode="linear"), [(2, 3, 4)], torch=_upsample),
    Entry(
        "Upsample-bilinear-aligned",
        lambda s: layers.Upsample(size=(5, 6), mode="bilinear", align_corners=True),
        [(1, 2, 3, 4)],
        torch=_upsample,
    ),
    Entry(
        "UpsamplingNearest2d",
        lambda s: layers.UpsamplingNearest2d(size=(5, 6)),
        [(2, 3, 4, 4)],
        torch=lambda m: tnn.UpsamplingNearest2d(size=(5, 6)),
    ),
    Entry(
        "UpsamplingBilinear2d",
        lambda s: layers.UpsamplingBilinear2d(scale_factor=2),
        [(2, 3, 4, 4)],
        torch=lambda m: tnn.UpsamplingBilinear2d(scale_factor=2),
    ),
    Entry(
        "ZeroPad2d",
        lambda s: layers.ZeroPad2d((1, -1, 2, 0)),
        [(2, 3, 4, 4), (3, 4, 4)],
        torch=lambda m: tnn.ZeroPad2d((1, -1, 2, 0)),
        errors=[((2, 3), r"expected input of shape \(N, C, H, W\) or \(C, H, W\)")],
    ),
    Entry(
        "ReflectionPad2d",
        lambda s: layers.ReflectionPad2d(2),
        [(2, 3, 4, 4)],
        torch=lambda m: tnn.ReflectionPad2d(2),
        errors=[((1, 1, 2, 2), r"padding must be smaller than the input")],
    ),
    Entry(
        "ReplicationPad2d",
        lambda s: layers.ReplicationPad2d([1, 0, 3, 2]),
        [(2, 3, 4, 4)],
        torch=lambda m: tnn.ReplicationPad2d((1, 0, 3, 2)),
    ),
    # ---- embeddings and recurrent layers
    Entry(
        "Embedding",
        lambda s: layers.Embedding(7, 3, rng=s),
        [Const(np.array([[1, 0, 6], [2, 2, 5]])), Ints((4,), 7)],
        torch=lambda m: tnn.Embedding(7, 3),
        errors=[
            (Const(np.array([[7]])), r"expected indices in \[0, 7\)"),
            (Const(np.ones((2, 2), np.float32)), r"expected integer indices"),
            (Const([1, 2]), r"expected integer indices, got list"),
            (Const(np.array([-1, 3])), r"expected indices in \[0, 7\), got -1"),
        ],
    ),
    Entry(  # no gradient into the padding row, by design: parity with PyTorch instead of gradcheck
        "Embedding-padding",
        lambda s: layers.Embedding(7, 3, padding_idx=0, rng=s),
        [Const(np.array([[1, 0, 6], [2, 0, 5]]))],
        torch=lambda m: tnn.Embedding(7, 3, padding_idx=0),
        gradcheck=(),
    ),
    Entry(
        "RNN",
        lambda s: layers.RNN(3, 4, 2, "relu", rng=s),
        [SEQ, (3, 1, 3)],
        torch=lambda m: tnn.RNN(3, 4, 2, "relu"),
        torch_call=_rnn_out,
        errors=[
            ((5, 2, 4), r"expected input of shape \(T, N, 3\)"),
            (((2, 5, 3), (3, 5, 4)), r"expected hx of shape \(2, 5, 4\), got \(3, 5, 4\)"),
        ],
        batch_axis=1,
    ),
    Entry(
        "RNN-dropout",
        lambda s: layers.RNN(3, 4, 2, batch_first=True, dropout=0.5, rng=s),
        [(2, 4, 3)],
        torch=lambda m: tnn.RNN(3, 4, 2, batch_first=True, dropout=0.5),
        torch_call=_rnn_out,
        random=True,
        mode_dependent=True,
    ),
    Entry(
        "RNN-lengths-state",
        lambda s: layers.RNN(3, 4, return_state=True, rng=s),
        [_lengths(SEQ, [5, 3])],
        batch_axis=None,
    ),
    Entry(
        "LSTM",
        lambda s: layers.LSTM(3, 4, rng=s),
        [SEQ, (1, 3, 3)],
        torch=lambda m: tnn.LSTM(3, 4),
        torch_call=_rnn_out,
        errors=[((5, 2, 4), r"expected input of shape \(T, N, 3\)")],
        batch_axis=1,
    ),
    Entry(
        "LSTM-bidirectional-proj-state",
        lambda s: layers.LSTM(3, 4, bidirectional=True, proj_size=2, bias=False, return_state=True, rng=s),
        [SEQ],
        torch=lambda m: tnn.LSTM(3, 4, bidirectional=True, proj_size=2, bias=False),
        torch_call=_lstm_state,
        batch_axis=1,
    ),
    Entry(
        "LSTM-lengths",
        lambda s: layers.LSTM(3, 4, num_layers=2, batch_first=True, rng=s),
        [_lengths((2, 5, 3), [3, 5])],
        batch_axis=None,
    ),
    Entry(
        "GRU",
        lambda s: layers.GRU(3, 4, num_layers=2, bidirectional=True, rng=s),
        [SEQ],
        torch=lambda m: tnn.GRU(3, 4, num_layers=2, bidirectional=True),
        torch_call=_rnn_out,
        batch_axis=1,
    ),
    Entry(
        "GRU-f64",
        lambda s: layers.GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=s),
        [SEQ],
        torch=lambda m: tnn.GRU(3, 4, num_layers=2, bidirectional=True),
        torch_call=_rnn_out,
        batch_axis=1,
    ),
    Entry(
        "RNN-relu-dropout",
        lambda s: layers.RNN(3, 4, 2, "relu", batch_first=True, dropout=0.5, rng=s),
        [(2, 5, 3)],
        torch=lambda m: tnn.RNN(3, 4, 2, "relu", batch_first=True, dropout=0.5),
        torch_call=_rnn_out,
        random=True,
        mode_dependent=True,
    ),
    Entry(
        "Conv2d-groups-valid",
        lambda s: nn.Conv2d(4, 4, (3, 1), groups=2, padding="valid", bias=False, rng=s),
        [(2, 4, 6, 6)],
        torch=torch_conv,
    ),
    Entry(
        "MultiheadAttention-biaskv-batch-first",
        lambda s: layers.MultiheadAttention(6, 2, add_bias_kv=True, batch_first=True, rng=s),
        [(2, 3, 6)],
        torch=lambda m: tnn.MultiheadAttention(6, 2, add_bias_kv=True, batch_first=True),
        torch_call=_self_attention,
    ),
    Entry(
        "GRU-state",
        lambda s: layers.GRU(3, 4, batch_first=True, return_state=True, rng=s),
        [(2, 4, 3)],
        torch=lambda m: tnn.GRU(3, 4, batch_first=True),
        torch_call=_rnn_state,
        errors=[(((2, 5, 3), (3, 5, 4)), r"expected hx of shape \(1, 2, 4\), got \(3, 5, 4\)")],
        batch_axis=None,
    ),
    Entry(
        "LSTM-2-layers-state",
        lambda s: layers.LSTM(3, 4, num_layers=2, return_state=True, rng=s),
        [SEQ],
        torch=lambda m: tnn.LSTM(3, 4, num_layers=2),
        torch_call=_lstm_state,
        gradcheck=(),  # the random configurations check gradients; this entry holds the input errors
        errors=[(Const(bad), r"LSTM\(3, 4, num_layers=2.*" + match) for bad, match in LSTM_INPUT_ERRORS],
        batch_axis=None,
    ),
    Entry(
        "RNNCell",
        lambda s: layers.RNNCell(3, 4, nonlinearity="relu", rng=s),
        [(2, 3), ((2, 3), (2, 4))],
        torch=lambda m: tnn.RNNCell(3, 4, nonlinearity="relu"),
        errors=[((2, 4), r"expected input of shape \(N, 3\)")],
    ),
    Entry(
        "RNNCell-tanh-nobias",
        lambda s: layers.RNNCell(3, 4, bias=False, rng=s),
        [((2, 3), (2, 4)), (3,)],
        torch=lambda m: tnn.RNNCell(3, 4, bias=False),
    ),
    Entry(
        "LSTMCell",
        lambda s: layers.LSTMCell(3, 4, rng=s),
        [(2, 3), ((2, 3), ((2, 4), (2, 4)))],
        torch=lambda m: tnn.LSTMCell(3, 4),
        errors=[(((2, 3), (2, 4)), r"expected hx as a pair")],
    ),
    Entry(
        "LSTMCell-nobias",
        lambda s: layers.LSTMCell(3, 4, bias=False, rng=s),
        [(2, 3), (3,)],
        torch=lambda m: tnn.LSTMCell(3, 4, bias=False),
    ),
    Entry(
        "GRUCell",
        lambda s: layers.GRUCell(3, 4, rng=s),
        [(2, 3), ((2, 3), (2, 4))],
        torch=lambda m: tnn.GRUCell(3, 4),
        errors=[
            ((2, 5), r"GRUCell\(3, 4\): expected input of shape \(N, 3\)"),
            (((2, 3), (3, 4)), r"expected h of shape \(2, 4\), got \(3, 4\)"),
        ],
    ),
    Entry(
        "GRUCell-nobias",
        lambda s: layers.GRUCell(3, 4, bias=False, rng=s),
        [(2, 3), (3,)],
        torch=lambda m: tnn.GRUCell(3, 4, bias=False),
    ),
    Entry(
        "LastStep",
        lambda s: layers.LastStep(),
        [(2, 5, 3), _lengths((2, 5, 3), [2, 5])],
        errors=[
            ((2, 4), r"expected a sequence of shape \(N, T, F\)"),
            (_lengths((3, 4, 2), [1, 5, 2]), r"lengths of shape \(3,\) in \[1, 4\]"),
            (((3, 4, 6), (1, 3, 4)), r"expected h_n"),
        ],
    ),
    Entry(
        "LastStep-bidirectional-lengths",
        lambda s: layers.LastStep(bidirectional=True),
        [_lengths((3, 4, 6), [4, 1, 2])],
        batch_axis=None,
    ),
    Entry(
        "LastStep-bidirectional",
        lambda s: layers.LastStep(batch_first=False, bidirectional=True),
        [(5, 2, 6)],
        batch_axis=None,  # (T, N, F) in, (N, F) out
    ),
    # ---- attention and transformers (dropout 0 for parity; the dropout path is tested in its family files)
    Entry(
        "MultiheadAttention",
        lambda s: layers.MultiheadAttention(6, 2, rng=s),
        [(3, 2, 6), (4, 6)],
        torch=lambda m: tnn.MultiheadAttention(6, 2),
        torch_call=_self_attention,
        errors=[((3, 2, 5), r"expected query with 6 features")],
        batch_axis=1,
    ),
    Entry(
        "MultiheadAttention-kdim-biaskv",
        lambda s: layers.MultiheadAttention(6, 3, kdim=5, vdim=3, add_bias_kv=True, add_zero_attn=True, rng=s),
        [((3, 2, 6), (4, 2, 5), (4, 2, 3))],
        torch=lambda m: tnn.MultiheadAttention(6, 3, kdim=5, vdim=3, add_bias_kv=True, add_zero_attn=True),
        torch_call=_cross_attention,
        batch_axis=1,
    ),
    Entry(
        "MultiheadAttention-batch-first",
        lambda s: layers.MultiheadAttention(4, 2, batch_first=True, bias=False, rng=s),
        [((2, 3, 4), (2, 5, 4), (2, 5, 4))],
        torch=lambda m: tnn.MultiheadAttention(4, 2, batch_first=True, bias=False),
        torch_call=_cross_attention,
    ),
    Entry(
        "TransformerEncoderLayer",
        lambda s: _encoder_layer(s),
        [(3, 2, 4)],
        torch=_t_encoder_layer,
        errors=[((3, 2, 6), r"expected src of shape \(L, N, E\) or \(L, E\) with E = 4")],
        batch_axis=1,
    ),
    Entry(
        "TransformerEncoderLayer-gelu-normfirst",
        lambda s: _encoder_layer(s, activation="gelu", norm_first=True, batch_first=True),
        [(2, 3, 4)],
        torch=lambda m: _t_encoder_layer(m, activation="gelu", norm_first=True, batch_first=True),
    ),
    Entry(
        "TransformerEncoderLayer-dropout",
        lambda s: layers.TransformerEncoderLayer(4, 2, 6, dropout=0.3, rng=s),
        [(3, 2, 4)],
        random=True,
        mode_dependent=True,
        batch_axis=1,
    ),
    Entry(
        "TransformerEncoder",
        _encoder,
        [(3, 2, 4)],
        torch=lambda m: tnn.TransformerEncoder(
            _t_encoder_layer(m), 2, norm=tnn.LayerNorm(4), enable_nested_tensor=False
        ),
        batch_axis=1,
    ),
    Entry(
        "TransformerDecoderLayer",
        lambda s: _decoder_layer(s, batch_first=True),
        [((2, 3, 4), (2, 4, 4))],
        torch=lambda m: tnn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, batch_first=True),
    ),
    Entry(
        "TransformerDecoder",
        _decoder,
        [((3, 2, 4), (4, 2, 4))],
        torch=lambda m: tnn.TransformerDecoder(
            tnn.TransformerDecoderLayer(4, 2, 6, dropout=0.0), 2, norm=tnn.LayerNorm(4)
        ),
        batch_axis=1,
    ),
    Entry(
        "Transformer",
        _transformer,
        [((3, 2, 4), (2, 2, 4))],
        torch=lambda m: tnn.Transformer(4, 2, 1, 1, 6, dropout=0.0),
        gradcheck=(),  # Transformer-perturbed checks the gradients with random parameters
        batch_axis=1,
    ),
    Entry(
        "SinusoidalPositionalEncoding",
        lambda s: layers.SinusoidalPositionalEncoding(6, 10, batch_first=True),
        [(2, 4, 6), (3, 6)],
        errors=[((2, 11, 6), r"sequence length 11 exceeds max_len=10")],
    ),
    Entry(
        "LearnedPositionalEncoding",
        lambda s: layers.LearnedPositionalEncoding(6, 10, rng=s),
        [(4, 2, 6)],
        errors=[((3, 2, 5), r"expected input of shape \(L, N, E\) or \(L, E\) with E = 6")],
        batch_axis=1,
    ),
    # ---- containers and graphs
    Entry("Sequential", _nested, [(3, 4), (1, 4)], torch=_t_nested),
    Entry("Sequential-empty", lambda s: nn.Sequential(), [(3, 4)], torch=lambda m: tnn.Sequential()),
    Entry("Residual", _residual, [(3, 4)]),
    Entry("Residual-shortcut", _residual_shortcut, [(3, 4)]),
    Entry("ConcatTable", lambda s: nn.ConcatTable(nn.Linear(4, 2, rng=s), nn.Tanh()), [(3, 4)]),
    Entry(
        "ParallelTable",
        lambda s: nn.ParallelTable(nn.Linear(4, 2, rng=s), nn.Sigmoid()),
        [((3, 4), (3, 5))],
    ),
    Entry("Concat", lambda s: nn.Concat(nn.Linear(4, 2, rng=s), nn.Tanh(), dim=1), [(3, 4)]),
    Entry("CAddTable", lambda s: nn.CAddTable(), [((3, 4), (3, 4)), ((2, 3), (2, 3), (2, 3))]),
    Entry("CSubTable", lambda s: nn.CSubTable(), [((3, 4), (3, 4))]),
    Entry("CMulTable", lambda s: nn.CMulTable(), [((3, 4), (3, 4), (3, 4))]),
    Entry("JoinTable", lambda s: nn.JoinTable(1), [((3, 4), (3, 2))]),
    Entry("SplitTable", lambda s: nn.SplitTable(1), [(3, 4)]),
    Entry("SelectTable", lambda s: nn.SelectTable(1), [((3, 4), (3, 2))]),
    Entry("SelectTable-negative", lambda s: nn.SelectTable(-1), [((3, 4), (2, 2), (3, 2))]),
    Entry("Graph", _graph, [((3, 3), (3, 3))]),
    Entry("Graph-one-input", _graph_one, [(3, 4)]),
]

MODULES += _random_convs() + _pool_cases() + _spatial_cases() + _norm_cases()
MODULES += _embedding_cases() + _rnn_cases() + _mha_cases() + _transformer_cases()
MODULES += _container_cases() + _dag_cases()

# the names that need an entry: every public layer, container and Graph
CONTAINERS = [
    "Sequential",
    "Residual",
    "ConcatTable",
    "ParallelTable",
    "Concat",
    "CAddTable",
    "CSubTable",
    "CMulTable",
    "JoinTable",
    "SplitTable",
    "SelectTable",
    "Graph",
]
PUBLIC = sorted(set(layers.__all__) | set(CONTAINERS))


# ================================================================== criteria
# ``Case(name, ours, theirs, data, reduction)``: ``ours()`` builds the criterion,
# ``theirs(x, t)`` computes the same loss in PyTorch, ``data(dtype)`` gives
# ``(input, target)``. Every configuration is compared with PyTorch in float32
# and gradchecked in float64 (a third of the many classification ones).
REDUCTIONS = ("mean", "sum", "none")


def _log_softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _probabilities(shape, r):
    return np.exp(_log_softmax(r.normal(size=shape)))


def _t(a, like=None):
    """``a`` as a tensor (in ``like``'s dtype when given: torch wants weights in the input's)."""
    if a is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if like is None else t.to(like.dtype)


class Case:
    """One configuration: our criterion, the same loss in PyTorch, and the data."""

    def __init__(self, name, ours, theirs, data, reduction):
        self.name, self.ours, self.theirs, self.data, self.reduction = name, ours, theirs, data, reduction

    def __repr__(self):
        return self.name


def _classification_cases():
    """CrossEntropy / ClassNLL / ClassNLLUnstable over shapes, weights, ignore_index,
    label smoothing, probability targets and every reduction."""
    cases = []
    shapes = [(5, 4), (3, 4, 3), (2, 3, 2, 3)]
    for shape, weighted, kind, smoothing, reduction in itertools.product(
        shapes, (False, True), ("labels", "ignore", "probs"), (0.0, 0.2), REDUCTIONS
    ):
        seed = len(cases)
        n, c = shape[:2]

        def data(dtype, seed=seed, shape=shape, kind=kind):
            r = np.random.default_rng(seed)
            x = (3 * r.normal(size=shape)).astype(dtype)
            labels_shape = (shape[0], *shape[2:])
            if kind == "probs":
                t = np.moveaxis(_probabilities((int(np.prod(labels_shape)), shape[1]), r), -1, 0)
                t = np.moveaxis(t.reshape(shape[1], *labels_shape), 0, 1).astype(dtype)
            else:
                t = r.integers(0, shape[1], size=labels_shape)
                if kind == "ignore":
                    t.reshape(-1)[::3] = 1 if seed % 2 else -100  # ignore_index 1 or the default
            return x, t

        ignore = 1 if seed % 2 else -100
        weight = np.random.default_rng(seed + 7).uniform(0.2, 2.0, c) if weighted else None
        kw = {"weight": weight, "ignore_index": ignore if kind == "ignore" else -100, "reduction": reduction}
        tkw = {k: v for k, v in kw.items() if k != "weight"}
        tag = f"{'x'.join(map(str, shape))}-{'w' if weighted else 'nw'}-{kind}-ls{smoothing}-{reduction}"
        cases.append(
            Case(
                f"CrossEntropy-{tag}",
                lambda kw=kw, s=smoothing: CrossEntropyCriterion(**kw, label_smoothing=s),
                lambda x, t, kw=tkw, s=smoothing, w=weight: torch.nn.CrossEntropyLoss(
                    _t(w, x), **kw, label_smoothing=s
                )(x, _t(t, x) if t.dtype.kind == "f" else _t(t)),
                data,
                reduction,
            )
        )
        if smoothing or kind == "probs":
            continue  # PyTorch's NLLLoss has neither

        def log_data(dtype, data=data):
            x, t = data(np.float64)
            return _log_softmax(x).astype(dtype), t

        def prob_data(dtype, data=data):
            x, t = data(np.float64)
            return np.exp(_log_softmax(x)).astype(dtype), t

        cases.append(
            Case(
                f"ClassNLL-{tag}",
                lambda kw=kw: ClassNLLCriterion(**kw),
                lambda x, t, kw=tkw, w=weight: torch.nn.NLLLoss(_t(w, x), **kw)(x, _t(t)),
                log_data,
                reduction,
            )
        )
        cases.append(
            Case(
                f"ClassNLLUnstable-{tag}",
                lambda kw=kw: ClassNLLCriterionUnstable(**kw),
                lambda x, t, kw=tkw, w=weight: torch.nn.NLLLoss(_t(w, x), **kw)(
                    torch.log(x.clamp(1e-15, 1 - 1e-15)), _t(t)
                ),
                prob_data,
                reduction,
            )
        )
    return cases


def _same(shape, scale=1.0):
    def data(dtype, seed=0):
        r = np.random.default_rng(seed + sum(shape))
        return (scale * r.normal(size=shape)).astype(dtype), (scale * r.normal(size=shape)).astype(dtype)

    return data


def _mse_criterion_torch(reduction):
    def loss(x, t):
        sq = ((x - _t(t)) ** 2).reshape(x.shape[0], -1).sum(axis=1)
        return {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]

    return loss


def _regression_cases():
    cases = []
    for reduction, shape in itertools.product(REDUCTIONS, [(4, 3), (3, 2, 4), (6,)]):
        tag = f"{'x'.join(map(str, shape))}-{reduction}"
        kw = {"reduction": reduction}
        cases += [
            Case(
                f"MSECriterion-{tag}",
                lambda kw=kw: MSECriterion(**kw),
                _mse_criterion_torch(reduction),
                _same(shape),
                reduction,
            ),
            Case(
                f"MSELoss-{tag}",
                lambda kw=kw: MSELoss(**kw),
                lambda x, t, kw=kw: torch.nn.MSELoss(**kw)(x, _t(t)),
                _same(shape),
                reduction,
            ),
            Case(
                f"L1-{tag}",
                lambda kw=kw: L1Criterion(**kw),
                lambda x, t, kw=kw: torch.nn.L1Loss(**kw)(x, _t(t)),
                _same(shape),
                reduction,
            ),
        ]
        for beta in (1.0, 0.5, 0.0):
            cases.append(
                Case(
                    f"SmoothL1-beta{beta}-{tag}",
                    lambda kw=kw, beta=beta: SmoothL1Criterion(**kw, beta=beta),
                    lambda x, t, kw=kw, beta=beta: torch.nn.SmoothL1Loss(**kw, beta=beta)(x, _t(t)),
                    _same(shape, 1.5),
                    reduction,
                )
            )
        for delta in (1.0, 0.3, 2.5):
            cases.append(
                Case(
                    f"Huber-delta{delta}-{tag}",
                    lambda kw=kw, delta=delta: HuberCriterion(**kw, delta=delta),
                    lambda x, t, kw=kw, delta=delta: torch.nn.HuberLoss(**kw, delta=delta)(x, _t(t)),
                    _same(shape, 1.5),
                    reduction,
                )
            )
    return cases


def _binary_cases():
    cases = []
    for reduction, shape, weighted in itertools.product(REDUCTIONS, [(5, 3), (2, 3, 4)], (False, True)):
        tag = f"{'x'.join(map(str, shape))}-{'w' if weighted else 'nw'}-{reduction}"
        r = np.random.default_rng(len(cases))
        weight = r.uniform(0.2, 2.0, shape[-1:]) if weighted else None
        pos_weight = r.uniform(0.5, 3.0, shape[-1:]) if weighted else None

        seed = len(cases)

        def probs(dtype, shape=shape, seed=seed):
            r = np.random.default_rng(seed)
            x = 1 / (1 + np.exp(-2 * r.normal(size=shape)))
            return x.astype(dtype), r.uniform(0, 1, shape).astype(dtype)

        def logits(dtype, shape=shape, seed=seed):
            r = np.random.default_rng(seed)
            return (3 * r.normal(size=shape)).astype(dtype), r.uniform(0, 1, shape).astype(dtype)

        cases += [
            Case(
                f"BCE-{tag}",
                lambda w=weight, red=reduction: BCECriterion(w, reduction=red),
                lambda x, t, w=weight, red=reduction: torch.nn.BCELoss(_t(w, x), reduction=red)(x, _t(t)),
                probs,
                reduction,
            ),
            Case(
                f"BCEWithLogits-{tag}",
                lambda w=weight, pw=pos_weight, red=reduction: BCEWithLogitsCriterion(w, reduction=red, pos_weight=pw),
                lambda x, t, w=weight, pw=pos_weight, red=reduction: torch.nn.BCEWithLogitsLoss(
                    _t(w, x), reduction=red, pos_weight=_t(pw, x)
                )(x, _t(t)),
                logits,
                reduction,
            ),
        ]
    return cases


def _kl_cases():
    cases = []
    for reduction, log_target, shape in itertools.product(
        ("mean", "batchmean", "sum", "none"), (False, True), [(4, 5), (2, 3, 4)]
    ):

        def data(dtype, shape=shape, log_target=log_target):
            r = np.random.default_rng(sum(shape))
            x = _log_softmax(r.normal(size=shape))
            t = _probabilities(shape, r)
            t[0, 0] = 0.0  # a zero probability: 0 * log 0 = 0
            if log_target:
                t = _log_softmax(r.normal(size=shape))
            return x.astype(dtype), t.astype(dtype)

        cases.append(
            Case(
                f"KLDiv-{'x'.join(map(str, shape))}-log{log_target}-{reduction}",
                lambda red=reduction, lt=log_target: KLDivCriterion(reduction=red, log_target=lt),
                lambda x, t, red=reduction, lt=log_target: torch.nn.KLDivLoss(reduction=red, log_target=lt)(x, _t(t)),
                data,
                reduction,
            )
        )
    return cases


def _margin_cases():
    cases = []
    for reduction, (p, margin), weighted in itertools.product(
        REDUCTIONS, [(1, 1.0), (2, 1.0), (1, 0.3), (2, 2.0)], (False, True)
    ):
        seed = len(cases)
        weight = np.random.default_rng(seed).uniform(0.2, 2.0, 5) if weighted else None

        def data(dtype, seed=seed):
            r = np.random.default_rng(seed)
            return r.normal(size=(6, 5)).astype(dtype), r.integers(0, 5, 6)

        cases.append(
            Case(
                f"MultiMargin-p{p}-m{margin}-{'w' if weighted else 'nw'}-{reduction}",
                lambda p=p, m=margin, w=weight, red=reduction: MultiMarginCriterion(p, m, w, reduction=red),
                lambda x, t, p=p, m=margin, w=weight, red=reduction: torch.nn.MultiMarginLoss(
                    p, m, _t(w, x), reduction=red
                )(x, _t(t)),
                data,
                reduction,
            )
        )
    for reduction, margin in itertools.product(REDUCTIONS, (0.0, 0.3, -0.2)):
        seed = len(cases)

        def pair(dtype, seed=seed):
            r = np.random.default_rng(seed)
            x1, x2 = r.normal(size=(8, 4)), r.normal(size=(8, 4))
            x2[:2] = x1[:2] + 0.1 * x2[:2]  # similar pairs: cos near 1
            return (x1.astype(dtype), x2.astype(dtype)), np.where(r.uniform(size=8) < 0.5, 1, -1)

        def ranking(dtype, seed=seed):
            r = np.random.default_rng(seed)
            x1, x2 = r.normal(size=7).astype(dtype), r.normal(size=7).astype(dtype)
            return (x1, x2), np.where(r.uniform(size=7) < 0.5, 1, -1)

        cases += [
            Case(
                f"CosineEmbedding-m{margin}-{reduction}",
                lambda m=margin, red=reduction: CosineEmbeddingCriterion(m, reduction=red),
                lambda x, t, m=margin, red=reduction: torch.nn.CosineEmbeddingLoss(m, reduction=red)(*x, _t(t)),
                pair,
                reduction,
            ),
            Case(
                f"MarginRanking-m{margin}-{reduction}",
                lambda m=margin, red=reduction: MarginRankingCriterion(m, reduction=red),
                lambda x, t, m=margin, red=reduction: torch.nn.MarginRankingLoss(m, reduction=red)(*x, _t(t)),
                ranking,
                reduction,
            ),
        ]
    return cases


def _seed_names_cases():
    """The seeds' and PyTorch's other spellings that are classes of their own."""

    def labels_data(dtype, seed=0):
        r = np.random.default_rng(seed)
        return (3 * r.normal(size=(5, 4))).astype(dtype), r.integers(0, 4, 5)

    def log_probs(dtype):
        x, t = labels_data(np.float64)
        return _log_softmax(x).astype(dtype), t

    def probs(dtype):
        x, t = labels_data(np.float64, 1)
        return np.exp(_log_softmax(x)).astype(dtype), t

    return [
        Case("NLLLoss", NLLLoss, lambda x, t: torch.nn.NLLLoss()(x, _t(t)), log_probs, "mean"),
        Case(
            "CrossEntropy-seed003",
            CrossEntropy,
            lambda x, t: torch.nn.NLLLoss()(torch.log(x), _t(t)),
            probs,
            "mean",
        ),
        Case("MSE-seed003", MSE, _mse_criterion_torch("mean"), _same((4, 3)), "mean"),
    ]


CRITERIA = (
    _classification_cases()
    + _regression_cases()
    + _binary_cases()
    + _kl_cases()
    + _margin_cases()
    + _seed_names_cases()
)


def _requires_grad(x):
    if isinstance(x, tuple):
        return tuple(_requires_grad(a) for a in x)
    return _t(x).requires_grad_(True)


def _upstream(loss, reduction, seed=5):
    """A random gradOutput for 'none', None (the default 1) otherwise."""
    if reduction != "none":
        return None
    return np.random.default_rng(seed).normal(size=np.shape(loss))


# (criterion, input, target, exception, pattern): forward and backward raise it,
# before anything is stored
CRITERION_ERRORS = [
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 1]),
        ValueError,
        r"^CrossEntropyCriterion\(\): expected target of shape \(3,\) or \(3, 4\), got \(2,\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((2, 4, 5), np.float32),
        np.zeros((2, 4), int),
        ValueError,
        r"expected target of shape \(2, 5\) or \(2, 4, 5\), got \(2, 4\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros(4, np.float32),
        np.array(1),
        ValueError,
        r"expected input of shape \(N, C\) or \(N, C, d1, \.\.\.\), got \(4,\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 4, 1]),
        ValueError,
        r"label targets must be in \[0, 3\], got values in \[0, 4\]$",
    ),
    (
        CrossEntropyCriterion(ignore_index=7),
        np.zeros((3, 4), np.float32),
        np.array([0, 7, -1]),
        ValueError,
        r"^CrossEntropyCriterion\(ignore_index=7\): label targets must be in \[0, 3\], got values in \[-1, 0\]$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0.0, 1.0, 2.0]),
        TypeError,
        r"label targets must be integers, got dtype float64$",
    ),
    (
        CrossEntropyCriterion(np.ones(3)),
        np.zeros((3, 4), np.float32),
        np.array([0, 1, 2]),
        ValueError,
        r"weight has shape \(3,\), expected \(4,\) for C = 4$",
    ),
    (CrossEntropyCriterion(), np.zeros((3, 4), int), np.array([0, 1, 2]), TypeError, r"floating dtype.*int64"),
    (
        MultiMarginCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 1, 5]),
        ValueError,
        r"^MultiMarginCriterion\(\): label targets must be in \[0, 3\], got values in \[0, 5\]$",
    ),
    (
        MultiMarginCriterion(),
        np.zeros((3, 4, 2), np.float32),
        np.array([0, 1, 2]),
        ValueError,
        r"expected input of shape \(N, C\), got \(3, 4, 2\)$",
    ),
    (
        MSECriterion(),
        np.zeros((3, 4), np.float32),
        np.zeros((3, 5)),
        ValueError,
        r"^MSECriterion\(\): expected target of shape \(3, 4\) \(the input's\), got \(3, 5\)$",
    ),
    (
        HuberCriterion(),
        np.zeros((3, 4), np.float32),
        [0.0] * 4,
        ValueError,
        r"^HuberCriterion\(\): expected target .*got list$",
    ),
    (
        BCECriterion(),
        np.full((2, 2), 1.5, np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"^BCECriterion\(\): expected probabilities in \[0, 1\].*BCEWithLogitsCriterion$",
    ),
    (
        BCECriterion(np.ones(3)),
        np.full((2, 2), 0.5, np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"weight of shape \(3,\) does not broadcast to the input's \(2, 2\)$",
    ),
    (
        BCEWithLogitsCriterion(pos_weight=np.ones(3)),
        np.zeros((2, 2), np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"pos_weight of shape \(3,\) does not broadcast",
    ),
    (KLDivCriterion(), np.zeros((2, 2), np.float32), np.full((2, 2), -0.5), ValueError, r"log_target=True$"),
    (
        CosineEmbeddingCriterion(),
        np.zeros((2, 3), np.float32),
        np.ones(2),
        TypeError,
        r"^CosineEmbeddingCriterion\(\): expected input \(x1, x2\), a pair of arrays, got ndarray$",
    ),
    (CosineEmbeddingCriterion(), (np.zeros((2, 3), np.float32),) * 3, np.ones(2), TypeError, r"a tuple of length 3$"),
    (
        CosineEmbeddingCriterion(),
        (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)),
        np.ones(2),
        ValueError,
        r"x1 and x2 must have the same shape, got \(2, 3\) and \(2, 4\)$",
    ),
    (
        CosineEmbeddingCriterion(),
        (np.ones((2, 3), np.float32),) * 2,
        np.array([1, 0]),
        ValueError,
        r"^CosineEmbeddingCriterion\(\): target values must be 1 or -1$",
    ),
    (
        MarginRankingCriterion(),
        (np.ones(3, np.float32),) * 2,
        np.ones(2),
        ValueError,
        r"^MarginRankingCriterion\(\): expected target of shape \(3,\), got \(2,\)$",
    ),
]


CRITERIA_PUBLIC = sorted(
    name
    for name in nn.__all__
    if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Criterion) and name != "Criterion"
)
