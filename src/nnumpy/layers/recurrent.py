"""Recurrent layers: RNN, LSTM, GRU and their one-step cells, with explicit
backpropagation through time.

PyTorch's names, gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``), shapes,
parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``)
and initialisation (uniform in ``±1/sqrt(hidden_size)``), so ``state_dict``s
move both ways and outputs match.

Per step ``t`` (``h`` the state, ``c`` LSTM's cell, ``act`` tanh or relu)::

    RNN:  h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
    LSTM: [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh   (sigmoid, sigmoid, tanh, sigmoid)
          c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (or (o * tanh(c_t)) W_hr^T, proj_size > 0)
    GRU:  [r, z] = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z})
          n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn)),   h_t = (1 - z) * n + z * h_{t-1}

The reverse direction runs the same over the time-flipped sequence. Each
layer is one call of ``nnumpy.kernels.recurrent``'s ``recurrent_forward`` /
``recurrent_backward`` (all directions, all steps, backpropagation through
time; the per-step backward formulas are in their references' docstrings,
the speed tricks in the module's).

Variable lengths: a step ``t >= length`` of a sample leaves its state
unchanged (forward direction: the state at ``length - 1`` is carried to the
end; reverse direction: the initial state is carried until ``length - 1``,
where the reverse pass starts). That is exactly what PyTorch's packed
sequences compute; those steps' outputs are 0.
"""

import numpy as np

from .._checks import as_shape, check_float_array, check_positive_int, check_real, shape_probe
from ..backend import DEFAULT_DTYPE, get_array_module, resolve_rng
from ..kernels.recurrent import GATES, recurrent_backward, recurrent_forward
from ..module import Module
from .dropout import keep_mask
from .linear import as_dtype_of

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


# ---------------------------------------------------------------- input parsing
def _is_lengths(value):
    """An integer array or a list of Python ints (the ``lengths`` of a padded batch)."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return value.dtype.kind in "iu"
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    )


def _split_input(owner, input):
    """``(x, hx, lengths, form)`` from any accepted input; ``form`` names the
    parts the input had (``("x",)``, ``("x", "hx")``, ``("x", "lengths")``,
    ``("x", "hx", "lengths")``), so the gradient gets the same structure."""
    if not isinstance(input, tuple):
        return input, None, None, ("x",)
    if len(input) == 2:
        x, second = input
        if second is not None and _is_lengths(second):
            return x, None, second, ("x", "lengths")
        return x, second, None, ("x", "hx")
    if len(input) == 3:
        return input[0], input[1], input[2], ("x", "hx", "lengths")
    raise TypeError(
        f"{owner!r}: expected input x, (x, hx), (x, lengths) or (x, hx, lengths), got a tuple of {len(input)}"
    )


def _shape_text(value):
    shape = getattr(value, "shape", None)
    return type(value).__name__ if shape is None else str(tuple(shape))


def _check_state(owner, value, shape, what):
    """A float array of exactly ``shape``."""
    check_float_array(owner, value, what)
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{owner!r}: expected {what} of shape {tuple(shape)}, got {tuple(value.shape)}")


def _check_lengths(owner, lengths, batch, steps):
    """``lengths`` as an int64 array of ``batch`` values in ``[1, steps]``."""
    if not _is_lengths(lengths):
        raise TypeError(f"{owner!r}: expected lengths as an integer array, got {_shape_text(lengths)}")
    values = np.asarray(lengths.get() if hasattr(lengths, "get") else lengths)
    if values.shape != (batch,):
        raise ValueError(f"{owner!r}: expected lengths of shape ({batch},) (one per sample), got {values.shape}")
    if values.size and (values.min() < 1 or values.max() > steps):
        raise ValueError(
            f"{owner!r}: lengths must be in [1, {steps}] (the sequence has {steps} steps), "
            f"got min {int(values.min())}, max {int(values.max())}"
        )
    return values.astype(np.int64)


def _biases(mode, b_ih, b_hh):
    """``(D, GH)`` biases as the kernel takes them: ``(input_bias, hidden_bias)``,
    or None. RNN and LSTM add both biases to the input projection; GRU keeps
    ``b_hh`` apart (its ``n`` gate scales it by ``r``)."""
    if b_ih is None:
        return None, None
    if mode == "GRU":
        return b_ih, b_hh
    return b_ih + b_hh, None


def _parameter_names(num_layers):
    """``(param, grad)`` pairs of an RNN of ``num_layers`` layers in PyTorch's
    state_dict order; names a given network lacks (reverse direction, biases,
    projections) are None on it and skipped by the base class."""
    pairs = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse"):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
                name = f"{kind}_l{layer}{suffix}"
                pairs.append((name, "grad_" + name))
    return tuple(pairs)


def _config_shapes(gates_per_unit, config, layered):
    """The parameter shapes of an RNN/LSTM/GRU (``layered``) or of a cell
    built from ``config``, without building it (model files check them)."""
    hidden, gates = config["hidden_size"], gates_per_unit * config["hidden_size"]
    bias = config.get("bias", True)
    if not layered:
        shapes = {"weight_ih": (gates, config["input_size"]), "weight_hh": (gates, hidden)}
        return {**shapes, "bias_ih": (gates,), "bias_hh": (gates,)} if bias else shapes
    proj = config.get("proj_size", 0)
    num_layers = config.get("num_layers", 1)
    if not 0 < num_layers <= 4096:
        raise ValueError(f"num_layers must be in [1, 4096], got {num_layers!r}")
    suffixes = ("", "_reverse") if config.get("bidirectional", False) else ("",)
    shapes = {}
    for layer in range(num_layers):
        layer_in = config["input_size"] if layer == 0 else (proj or hidden) * len(suffixes)
        for suffix in suffixes:
            shapes[f"weight_ih_l{layer}{suffix}"] = (gates, layer_in)
            shapes[f"weight_hh_l{layer}{suffix}"] = (gates, proj or hidden)
            if bias:
                shapes[f"bias_ih_l{layer}{suffix}"] = shapes[f"bias_hh_l{layer}{suffix}"] = (gates,)
            if proj:
                shapes[f"weight_hr_l{layer}{suffix}"] = (proj, hidden)
    return shapes


class _RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters, input forms, the layer loop, BPTT."""

    mode = None
    _accepts_none_grad = True  # None parts of gradOutput are zeros: _parse_grad skips them
    # The base class reads the parameter declaration from the class; a network
    # deeper than this declares more on its class when built (see __init__).
    _parameters = _parameter_names(4)
    _optional_parameters = True  # the names of every depth and option: those not built are absent

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                 proj_size, return_state, dtype, rng):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_positive_int(name, "input_size", input_size)
        self.hidden_size = check_positive_int(name, "hidden_size", hidden_size)
        self.num_layers = check_positive_int(name, "num_layers", num_layers)
        self.proj_size = check_positive_int(name, "proj_size", proj_size, minimum=0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"{name}: proj_size must be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        self.dropout = check_real(name, "dropout", dropout)
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout!r}")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.return_state = bool(return_state)
        self.rng = resolve_rng(rng)
        if len(type(self)._parameters) < 10 * self.num_layers:
            type(self)._parameters = _parameter_names(self.num_layers)
        gates = GATES[self.mode] * self.hidden_size
        out = self.proj_size or self.hidden_size
        bound = 1.0 / np.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else out * self.num_directions
            for suffix in self._suffixes:
                shapes = {"weight_ih": (gates, layer_in), "weight_hh": (gates, out)}
                if self.bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, self.hidden_size)
                for kind, shape in shapes.items():
                    value = self.rng.uniform(-bound, bound, size=shape).astype(dtype)
                    setattr(self, f"{kind}_l{layer}{suffix}", value)
                    setattr(self, f"grad_{kind}_l{layer}{suffix}", np.zeros_like(value))
        self._cache = None

    @classmethod
    def parameter_shapes(cls, config):
        """Every layer's and direction's weights and biases (see the class docstring)."""
        return _config_shapes(GATES.get(cls.mode, 1), config, layered=True)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    @property
    def _out_size(self):
        return self.proj_size or self.hidden_size

    def _stacked(self, kind, layer, like):
        """The directions' ``kind`` parameter of ``layer`` as one ``(D, ...)`` array in ``like``'s dtype."""
        xp = get_array_module(like)
        arrays = [getattr(self, f"{kind}_l{layer}{s}", None) for s in self._suffixes]
        if arrays[0] is None:
            return None
        return xp.stack([as_dtype_of(a, like) for a in arrays])

    # ------------------------------------------------------------ forward
    def forward(self, input, hx=None, lengths=None):
        """Run the network. ``input`` is ``x``, ``(x, hx)``, ``(x, lengths)`` or
        ``(x, hx, lengths)``; PyTorch's keywords ``forward(x, hx=..., lengths=...)``
        mean the same as the tuple (and ``backward`` then returns the tuple's gradient)."""
        if hx is not None or lengths is not None:
            if isinstance(input, tuple):
                raise TypeError(f"{self!r}: give hx and lengths inside the input tuple or as keywords, not both")
            if lengths is None:
                input = (input, hx)
            elif hx is None and _is_lengths(lengths):
                input = (input, lengths)
            else:
                input = (input, hx, lengths)
        return Module.forward(self, input)

    def _validate(self, input):
        """Everything about the input, checked before any state changes; returns the parsed parts."""
        x, hx, lengths, form = _split_input(self, input)
        check_float_array(self, x)
        layout = "(N, T, {})" if self.batch_first else "(T, N, {})"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            want = layout.format(self.input_size) + f" or unbatched (T, {self.input_size})"
            raise ValueError(f"{self!r}: expected input of shape {want}, got {tuple(x.shape)}")
        unbatched = x.ndim == 2
        if unbatched:
            if lengths is not None:
                raise ValueError(f"{self!r}: lengths need a batched input, got unbatched {tuple(x.shape)}")
            steps, batch = x.shape[0], 1
        else:
            steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        if steps < 1:
            raise ValueError(f"{self!r}: expected at least one time step, got input of shape {tuple(x.shape)}")
        LD = self.num_layers * self.num_directions
        h_shape = (LD, self._out_size) if unbatched else (LD, batch, self._out_size)
        c_shape = (LD, self.hidden_size) if unbatched else (LD, batch, self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{self!r}: expected hx as a pair (h0, c0), got {_shape_text(hx)}")
                h0, c0 = hx
                _check_state(self, h0, h_shape, "h0")
                _check_state(self, c0, c_shape, "c0")
                if c0.dtype != x.dtype:
                    raise TypeError(f"{self!r}: expected c0 of dtype {x.dtype} (the input's), got {c0.dtype}")
            else:
                h0 = hx
                _check_state(self, h0, h_shape, "hx")
            if h0.dtype != x.dtype:
                raise TypeError(f"{self!r}: expected initial states of dtype {x.dtype} (the input's), got {h0.dtype}")
        if lengths is not None:
            lengths = _check_lengths(self, lengths, batch, steps)
        return x, h0, c0, lengths, form, unbatched

    def output_shape(self, input_shape):
        """For an input ``x`` alone: ``output``'s shape ``(N, T, D * out)`` (``(T, N, ...)``
        unless ``batch_first``; ``(T, D * out)`` unbatched), with ``return_state`` paired
        with ``h_n`` (and ``c_n``). None for a tuple input (hx, lengths: their values decide)."""
        if isinstance(input_shape, (tuple, list)) and any(isinstance(s, (tuple, list)) for s in input_shape):
            return None
        shape = as_shape(self, input_shape)
        self._validate(shape_probe(shape))
        D, P = self.num_directions, self._out_size
        LD = self.num_layers * D
        out = (*shape[:-1], D * P)
        if not self.return_state:
            return out
        batch = () if len(shape) == 2 else (shape[0] if self.batch_first else shape[1],)
        h_n, c_n = (LD, *batch, P), (LD, *batch, self.hidden_size)
        return (out, (h_n, c_n) if self.mode == "LSTM" else h_n)

    def updateOutput(self, input):
        x, h0, c0, lengths, form, unbatched = self._validate(input)
        xp = get_array_module(x)
        if unbatched:
            x = x[:, None]
            h0 = None if h0 is None else h0[:, None]
            c0 = None if c0 is None else c0[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        T, N = x.shape[:2]
        D, P, H = self.num_directions, self._out_size, self.hidden_size
        mask = None
        if lengths is not None and lengths.size and lengths.min() < T:
            valid = xp.asarray(np.arange(T)[:, None] < lengths[None, :])[..., None]  # (T, N, 1)
            mask = valid[None] if D == 1 else xp.stack([valid, valid[::-1]])
        h_n = xp.empty((self.num_layers * D, N, P), x.dtype)
        c_n = xp.empty((self.num_layers * D, N, H), x.dtype) if self.mode == "LSTM" else None
        layers, drop_masks = [], []
        inp = x
        for layer in range(self.num_layers):
            drop = None
            if layer > 0 and self.training and self.dropout > 0:
                keep = keep_mask(self.rng, inp.shape, self.dropout)
                drop = keep * inp.dtype.type(1.0 / (1.0 - self.dropout) if self.dropout < 1 else 0.0)
                inp = inp * drop
            drop_masks.append(drop)
            rows = slice(layer * D, (layer + 1) * D)
            steps = inp[None] if D == 1 else xp.stack([inp, inp[::-1]])
            bias, b_hh = _biases(self.mode, self._stacked("bias_ih", layer, x), self._stacked("bias_hh", layer, x))
            hs, cs, cache = recurrent_forward(
                self.mode,
                steps,
                self._stacked("weight_ih", layer, x),
                bias,
                xp.zeros((D, N, P), x.dtype) if h0 is None else h0[rows],
                None if self.mode != "LSTM" else (xp.zeros((D, N, H), x.dtype) if c0 is None else c0[rows]),
                self._stacked("weight_hh", layer, x),
                b_hh,
                self._stacked("weight_hr", layer, x),
                mask,
            )
            layers.append(cache)
            h_n[rows] = hs[:, T]
            if cs is not None:
                c_n[rows] = cs[:, T]
            out = hs[0, 1:] if D == 1 else xp.concatenate([hs[0, 1:], hs[1, 1:][::-1]], axis=-1)
            if mask is not None:
                out = out * mask[0]
            elif D == 1:
                out = out.copy()  # not a view of the cache a caller might change in place
            inp = out
        self._cache = {
            "layers": layers,
            "drop": drop_masks,
            "mask": mask,
            "form": form,
            "unbatched": unbatched,
            "given_h0": h0 is not None,
            "shape": (T, N),
        }
        output = inp[:, 0] if unbatched else (inp.transpose(1, 0, 2) if self.batch_first else inp)
        if self.return_state:
            if unbatched:
                h_n = h_n[:, 0]
                c_n = None if c_n is None else c_n[:, 0]
            output = (output, (h_n, c_n) if self.mode == "LSTM" else h_n)
        self.output = output
        return output

    # ------------------------------------------------------------ backward
    def _parse_grad(self, gradOutput):
        """``(grad_out, grad_hn, grad_cn)`` in time-major batched layout, each possibly None."""
        cache = self._cache
        T, N = cache["shape"]
        D, P, H, L = self.num_directions, self._out_size, self.hidden_size, self.num_layers
        unbatched = cache["unbatched"]
        g_out = gradOutput
        g_h = g_c = None
        if self.return_state:
            if gradOutput is not None:
                if not isinstance(gradOutput, (tuple, list)) or len(gradOutput) != 2:
                    raise TypeError(
                        f"{self!r}: expected gradOutput (grad_output, grad_h_n"
                        + (", grad_c_n)" if self.mode == "LSTM" else ")")
                        + f" (the output's structure), got {_shape_text(gradOutput)}"
                    )
                g_out, g_state = gradOutput
                if self.mode == "LSTM":
                    if g_state is not None:
                        if not isinstance(g_state, (tuple, list)) or len(g_state) != 2:
                            raise TypeError(f"{self!r}: expected the gradient of (h_n, c_n) as a pair, got "
                                            f"{_shape_text(g_state)}")
                        g_h, g_c = g_state
                else:
                    g_h = g_state
        else:
            g_out = gradOutput
        seq_shape = (T, D * P) if unbatched else ((N, T, D * P) if self.batch_first else (T, N, D * P))
        state_shape = (L * D, P) if unbatched else (L * D, N, P)
        cell_shape = (L * D, H) if unbatched else (L * D, N, H)
        for value, shape, what in ((g_out, seq_shape, "gradOutput"), (g_h, state_shape, "the gradient of h_n"),
                                   (g_c, cell_shape, "the gradient of c_n")):
            if value is not None:
                _check_state(self, value, shape, what)
        if unbatched:
            g_out = None if g_out is None else g_out[:, None]
            g_h = None if g_h is None else g_h[:, None]
            g_c = None if g_c is None else g_c[:, None]
        elif self.batch_first and g_out is not None:
            g_out = g_out.transpose(1, 0, 2)
        return g_out, g_h, g_c

    def _bptt(self, gradOutput, need_input_grad, need_param_grads):
        """Backpropagation through every layer; returns ``(gradInput, param_grads)``."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        cache = self._cache
        g_out, g_h, g_c = self._parse_grad(gradOutput)
        xp = get_array_module(cache["layers"][0]["hs"])
        T, N = cache["shape"]
        D, P = self.num_directions, self._out_size
        mask = cache["mask"]
        grad_h0 = [None] * self.num_layers
        grad_c0 = [None] * self.num_layers
        param_grads = {}
        grad = g_out  # gradient of the current layer's output, (T, N, D*P) time-major or None
        for layer in range(self.num_layers - 1, -1, -1):
            rows = slice(layer * D, (layer + 1) * D)
            steps = None
            if grad is not None:
                dtype = cache["layers"][layer]["hs"].dtype
                if D == 1:
                    steps = grad[None].astype(dtype, copy=mask is not None)
                else:
                    steps = xp.stack([grad[..., :P], grad[::-1, :, P:]]).astype(dtype, copy=False)
                if mask is not None:
                    steps *= mask
            need_x = layer > 0 or need_input_grad
            gx, gh0, gc0, grads = recurrent_backward(
                cache["layers"][layer],
                steps,
                None if g_h is None else g_h[rows],
                None if g_c is None else g_c[rows],
                need_input_grad=need_x,
                need_param_grads=need_param_grads,
            )
            grad_h0[layer], grad_c0[layer] = gh0, gc0
            if grads is not None:
                param_grads[layer] = grads
            if need_x:
                grad = gx[0] if D == 1 else gx[0] + gx[1][::-1]
                drop = cache["drop"][layer]
                if drop is not None:
                    grad = grad * drop
        if not need_input_grad:
            return None, param_grads
        gx = grad[:, 0] if cache["unbatched"] else (grad.transpose(1, 0, 2) if self.batch_first else grad)
        parts = {"x": gx, "lengths": None, "hx": None}
        if cache["given_h0"]:
            gh = xp.concatenate(grad_h0)
            gc = xp.concatenate(grad_c0) if self.mode == "LSTM" else None
            if cache["unbatched"]:
                gh = gh[:, 0]
                gc = None if gc is None else gc[:, 0]
            parts["hx"] = (gh, gc) if self.mode == "LSTM" else gh
        form = cache["form"]
        grad_input = parts["x"] if form == ("x",) else tuple(parts[name] for name in form)
        return grad_input, param_grads

    def updateGradInput(self, input, gradOutput):
        grad_input, param_grads = self._bptt(gradOutput, True, not self._frozen)
        self._keep_for_acc(gradOutput, param_grads)
        self.gradInput = grad_input
        return grad_input

    def accGradParameters(self, input, gradOutput):
        param_grads = self._take_kept(gradOutput)
        if param_grads is None:
            _, param_grads = self._bptt(gradOutput, False, True)
        kinds = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh", "weight_hr": "w_hr"}
        for layer, grads in param_grads.items():
            for d, suffix in enumerate(self._suffixes):
                for kind, key in kinds.items():
                    target = getattr(self, f"grad_{kind}_l{layer}{suffix}", None)
                    if target is not None and getattr(self, f"{kind}_l{layer}{suffix}", None) is not None:
                        target += grads[key][d].astype(target.dtype, copy=False)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("proj_size", 0), ("return_state", False)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text


def _layer_doc(summary, extra_args, shape, attributes, example):
    """The docstring of RNN / LSTM / GRU: their own lines around the arguments,
    input forms and backward they share."""
    return f"""{summary}

    Args:
        input_size: features of each step's input ``x_t``.
        hidden_size: features of the hidden state ``h_t`` (``H``).
        num_layers: stacked layers; layer ``l > 0`` takes layer ``l - 1``'s output.
        bias: learn ``bias_ih`` and ``bias_hh`` (default True).
        batch_first: input and output ``(N, T, F)`` instead of ``(T, N, F)``
            (states stay ``(num_layers * D, N, H)``, as in PyTorch).
        dropout: dropout probability on the outputs of every layer but the last,
            in training mode only (masks drawn from ``rng``).
        bidirectional: a second, reverse-time pass per layer; outputs are the
            ``[forward, reverse]`` features concatenated (``D = 2``).{extra_args}
        return_state: return PyTorch's ``(output, h_n)`` instead of ``output``
            (``backward`` then takes the gradients of both; None parts are zeros).
        dtype: parameter dtype (float32 by default).
        rng: seed or ``numpy.random.Generator`` for initialisation and dropout masks.

    Input:
        ``x``, ``(x, hx)``, ``(x, lengths)`` or ``(x, hx, lengths)``, or with
        PyTorch's keywords ``forward(x, hx=None, lengths=None)`` (the same as the
        tuple). ``x (T, N, input_size)`` (``(N, T, input_size)`` with
        ``batch_first``; unbatched ``(T, input_size)`` too); ``hx`` the initial
        states (zeros when omitted or None); ``lengths (N,)`` integers in
        ``[1, T]``: steps ``t >= lengths[n]`` are padding, which changes neither
        the valid outputs nor the final states, in both directions, exactly as
        PyTorch's packed sequences; their outputs are 0.

    Shape:
{shape}

    Attributes:
{attributes}
        All uniform in ``±1/sqrt(hidden_size)`` (PyTorch's init); the gradients
        are ``grad_<name>`` (``grad_weight_ih_l0``), accumulated.

    Backward:
        Backpropagation through time over all steps (per-step formulas in
        ``nnumpy.kernels.recurrent.recurrent_backward_reference``); gradients
        w.r.t. the input, the initial states and every parameter. ``gradOutput``
        has the output's structure, None parts meaning zeros; ``gradInput`` has
        the input's structure, with None for ``lengths`` and for an ``hx`` that
        was not given.

    Example:
{example}
    """


class RNN(_RNNBase):
    __doc__ = _layer_doc(
        "Elman RNN: ``h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)``, act tanh or relu.",
        """
        nonlinearity: ``'tanh'`` (default) or ``'relu'``.""",
        """        ``output (T, N, D * H)``; ``h_n (num_layers * D, N, H)``.""",
        """        weight_ih_l{k}[_reverse]: ``(H, input_size)`` for ``k = 0``, else ``(H, D * H)``;
        weight_hh_l{k}: ``(H, H)``; bias_ih_l{k}, bias_hh_l{k}: ``(H,)``.""",
        """        >>> import numpy as np
        >>> rnn = RNN(3, 5, num_layers=2)
        >>> rnn.forward(np.zeros((7, 4, 3), np.float32)).shape
        (7, 4, 5)""",
    )

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, return_state=False, dtype=DEFAULT_DTYPE, rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         return_state, dtype, rng)


class LSTM(_RNNBase):
    __doc__ = _layer_doc(
        """Long short-term memory, PyTorch's gate order ``i, f, g, o``:
    ``[i, f, g, o] = x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh`` (through sigmoid,
    sigmoid, tanh, sigmoid), ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``, or
    ``h_t = (o * tanh(c_t)) @ W_hr.T`` with ``proj_size > 0``. ``hx`` is the pair
    ``(h0, c0)``; with ``return_state`` the output is ``(output, (h_n, c_n))``.""",
        """
        proj_size: size ``P`` of the projected hidden state (0, the default: none, ``P = H``).""",
        """        ``output (T, N, D * P)``; ``h_n (num_layers * D, N, P)``; ``c_n (num_layers * D, N, H)``.""",
        """        weight_ih_l{k}[_reverse]: ``(4H, input_size)`` for ``k = 0``, else ``(4H, D * P)``;
        weight_hh_l{k}: ``(4H, P)``; bias_ih_l{k}, bias_hh_l{k}: ``(4H,)``;
        weight_hr_l{k}: ``(P, H)`` when ``proj_size > 0``.""",
        """        >>> import numpy as np
        >>> lstm = LSTM(3, 5, batch_first=True, return_state=True)
        >>> out, (h, c) = lstm.forward(np.zeros((4, 7, 3), np.float32))
        >>> out.shape, h.shape, c.shape
        ((4, 7, 5), (1, 4, 5), (1, 4, 5))""",
    )

    mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, *, return_state=False, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
                         return_state, dtype, rng)


class GRU(_RNNBase):
    __doc__ = _layer_doc(
        """Gated recurrent unit, PyTorch's gate order ``r, z, n``:
    ``r = σ(x W_ir^T + b_ir + h W_hr^T + b_hr)``, ``z = σ(x W_iz^T + b_iz + h W_hz^T + b_hz)``,
    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``.""",
        "",
        """        ``output (T, N, D * H)``; ``h_n (num_layers * D, N, H)``.""",
        """        weight_ih_l{k}[_reverse]: ``(3H, input_size)`` for ``k = 0``, else ``(3H, D * H)``;
        weight_hh_l{k}: ``(3H, H)``; bias_ih_l{k}, bias_hh_l{k}: ``(3H,)``.""",
        """        >>> import numpy as np
        >>> gru = GRU(3, 5, bidirectional=True)
        >>> gru.forward(np.zeros((7, 4, 3), np.float32)).shape
        (7, 4, 10)""",
    )

    mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, *, return_state=False, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         return_state, dtype, rng)


# ---------------------------------------------------------------- cells
class _CellBase(Module):
    """One step of RNN/LSTM/GRU: the layer kernels with ``T = 1``, one direction."""

    mode = None
    _accepts_none_grad = True  # a None gradient of h' or c' is zeros, skipped
    _parameters = (
        ("weight_ih", "grad_weight_ih"),
        ("weight_hh", "grad_weight_hh"),
        ("bias_ih", "grad_bias_ih"),
        ("bias_hh", "grad_bias_hh"),
    )

    def __init__(self, input_size, hidden_size, bias, dtype, rng):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_positive_int(name, "input_size", input_size)
        self.hidden_size = check_positive_int(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        rng = resolve_rng(rng)
        gates = GATES[self.mode] * self.hidden_size
        bound = 1.0 / np.sqrt(self.hidden_size)
        shapes = {"weight_ih": (gates, self.input_size), "weight_hh": (gates, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(gates,), bias_hh=(gates,))
        else:
            self.bias_ih = self.bias_hh = self.grad_bias_ih = self.grad_bias_hh = None
        for kind, shape in shapes.items():
            setattr(self, kind, rng.uniform(-bound, bound, size=shape).astype(dtype))
            setattr(self, "grad_" + kind, np.zeros(shape, dtype))
        self._cache = None

    @classmethod
    def parameter_shapes(cls, config):
        """``weight_ih``, ``weight_hh`` and (with ``bias``) ``bias_ih``, ``bias_hh``."""
        return _config_shapes(GATES.get(cls.mode, 1), config, layered=False)

    def forward(self, input, hx=None):
        """``input`` is ``x`` or ``(x, hx)`` (or PyTorch's ``forward(x, hx)``)."""
        if hx is not None:
            if isinstance(input, tuple):
                raise TypeError(f"{self!r}: give hx inside the input tuple or as a keyword, not both")
            input = (input, hx)
        return Module.forward(self, input)

    def output_shape(self, input_shape):
        """For an input ``x`` alone (``(N, input_size)`` or unbatched): ``h``'s shape,
        ``(h, c)``'s for LSTMCell; None for ``(x, hx)``."""
        if isinstance(input_shape, (tuple, list)) and any(isinstance(s, (tuple, list)) for s in input_shape):
            return None
        shape = as_shape(self, input_shape)
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.input_size}) or ({self.input_size},), got {shape}"
            )
        h = (*shape[:-1], self.hidden_size)
        return (h, h) if self.mode == "LSTM" else h

    def updateOutput(self, input):
        given = isinstance(input, tuple)
        if given and len(input) != 2:
            raise TypeError(f"{self!r}: expected input x or (x, hx), got a tuple of {len(input)}")
        x, hx = input if given else (input, None)
        check_float_array(self, x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.input_size}) or ({self.input_size},), "
                f"got {_shape_text(x)}"
            )
        unbatched = x.ndim == 1
        state_shape = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{self!r}: expected hx as a pair (h, c), got {_shape_text(hx)}")
                h0, c0 = hx
                _check_state(self, c0, state_shape, "c")
            else:
                h0 = hx
            _check_state(self, h0, state_shape, "h")
            for state in (h0, c0):
                if state is not None and state.dtype != x.dtype:
                    raise TypeError(f"{self!r}: expected states of dtype {x.dtype} (the input's), got {state.dtype}")
        xp = get_array_module(x)
        xb = x[None] if unbatched else x
        N, H = xb.shape[0], self.hidden_size
        zeros = xp.zeros((1, N, H), x.dtype)
        b_ih = None if self.bias_ih is None else as_dtype_of(self.bias_ih, x)[None]
        b_hh = None if self.bias_hh is None else as_dtype_of(self.bias_hh, x)[None]
        bias, b_hh = _biases(self.mode, b_ih, b_hh)
        hs, cs, cache = recurrent_forward(
            self.mode,
            xb[None, None],
            as_dtype_of(self.weight_ih, x)[None],
            bias,
            zeros if h0 is None else h0.reshape(1, N, H),
            None if self.mode != "LSTM" else (zeros if c0 is None else c0.reshape(1, N, H)),
            as_dtype_of(self.weight_hh, x)[None],
            b_hh,
            None,
            None,
        )
        self._cache = {"kernel": cache, "given": given, "given_h0": h0 is not None, "unbatched": unbatched}
        h = hs[0, 1, 0] if unbatched else hs[0, 1]
        if self.mode == "LSTM":
            output = (h, cs[0, 1, 0] if unbatched else cs[0, 1])
        else:
            output = h
        self.output = output
        return output

    def _bptt(self, gradOutput, need_input_grad, need_param_grads):
        cache = self._cache
        if cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        if self.mode == "LSTM":
            if not isinstance(gradOutput, (tuple, list)) or len(gradOutput) != 2:
                raise TypeError(f"{self!r}: expected gradOutput (grad_h, grad_c) (the output's structure), "
                                f"got {_shape_text(gradOutput)}")
            g_h, g_c = gradOutput
        else:
            g_h, g_c = gradOutput, None
        shape = self.output[0].shape if self.mode == "LSTM" else self.output.shape
        for value, what in ((g_h, "the gradient of h"), (g_c, "the gradient of c")):
            if value is not None:
                _check_state(self, value, shape, what)
        N, H = cache["kernel"]["hs"].shape[2], self.hidden_size
        gx, gh, gc, grads = recurrent_backward(
            cache["kernel"],
            None,
            None if g_h is None else g_h.reshape(1, N, H),
            None if g_c is None else g_c.reshape(1, N, H),
            need_input_grad=need_input_grad,
            need_param_grads=need_param_grads,
        )
        if not need_input_grad:
            return None, grads
        gx = gx[0, 0, 0] if cache["unbatched"] else gx[0, 0]  # (1, 1, N, I) -> (N, I) or (I,)
        if not cache["given"]:
            return gx, grads
        ghx = None
        if cache["given_h0"]:
            ghx = tuple(g[0, 0] if cache["unbatched"] else g[0] for g in (gh, gc) if g is not None)
            ghx = ghx if self.mode == "LSTM" else ghx[0]
        return (gx, ghx), grads

    def updateGradInput(self, input, gradOutput):
        grad_input, grads = self._bptt(gradOutput, True, not self._frozen)
        self._keep_for_acc(gradOutput, grads)
        self.gradInput = grad_input
        return grad_input

    def accGradParameters(self, input, gradOutput):
        grads = self._take_kept(gradOutput)
        if grads is None:
            _, grads = self._bptt(gradOutput, False, True)
        self.grad_weight_ih += grads["w_ih"][0].astype(self.grad_weight_ih.dtype, copy=False)
        self.grad_weight_hh += grads["w_hh"][0].astype(self.grad_weight_hh.dtype, copy=False)
        if self.bias_ih is not None:
            self.grad_bias_ih += grads["b_ih"][0].astype(self.grad_bias_ih.dtype, copy=False)
            self.grad_bias_hh += grads["b_hh"][0].astype(self.grad_bias_hh.dtype, copy=False)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text if self.bias else text + ", bias=False"


class RNNCell(_CellBase):
    """One Elman step: ``h' = act(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)``.

    Args:
        input_size, hidden_size, bias, nonlinearity ('tanh' or 'relu'): as PyTorch.
        dtype: parameter dtype (float32 by default); rng: seed or Generator for initialisation.

    Shape:
        Input ``x (N, input_size)`` or ``(x, h)`` with ``h (N, hidden_size)`` (zeros
        when omitted); unbatched ``(input_size,)`` too. Output ``h' (N, hidden_size)``.

    Attributes:
        weight_ih ``(hidden_size, input_size)``, weight_hh ``(hidden_size, hidden_size)``,
        bias_ih, bias_hh ``(hidden_size,)``, uniform in ``±1/sqrt(hidden_size)``; gradients ``grad_<name>``.

    Backward: ``da = dh' * act'``, ``dx = da @ W_ih``, ``dh = da @ W_hh``,
    ``dW_ih += da^T x``, ``dW_hh += da^T h``, ``db_ih = db_hh += sum(da)``.

    Example:
        >>> import numpy as np
        >>> RNNCell(3, 5).forward(np.zeros((4, 3), np.float32)).shape
        (4, 5)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, dtype=DEFAULT_DTYPE, rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, dtype, rng)


class LSTMCell(_CellBase):
    """One LSTM step (gates ``i, f, g, o``): ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    Args:
        input_size, hidden_size, bias: as PyTorch.
        dtype: parameter dtype (float32 by default); rng: seed or Generator for initialisation.

    Shape:
        Input ``x (N, input_size)`` or ``(x, (h, c))`` with ``h, c (N, hidden_size)``
        (zeros when omitted); unbatched too. Output the pair ``(h', c')``; backward
        takes ``(grad_h', grad_c')`` (either may be None).

    Attributes:
        weight_ih ``(4 * hidden_size, input_size)``, weight_hh ``(4 * hidden_size, hidden_size)``,
        bias_ih, bias_hh ``(4 * hidden_size,)``, uniform in ``±1/sqrt(hidden_size)``.

    Backward: as one step of ``LSTM`` (see ``nnumpy.kernels.recurrent.recurrent_backward_reference``).

    Example:
        >>> import numpy as np
        >>> h, c = LSTMCell(3, 5).forward(np.zeros((4, 3), np.float32))
        >>> h.shape, c.shape
        ((4, 5), (4, 5))
    """

    mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__(input_size, hidden_size, bias, dtype, rng)


class GRUCell(_CellBase):
    """One GRU step (gates ``r, z, n``): ``h' = (1 - z) * n + z * h``.

    Args:
        input_size, hidden_size, bias: as PyTorch.
        dtype: parameter dtype (float32 by default); rng: seed or Generator for initialisation.

    Shape:
        Input ``x (N, input_size)`` or ``(x, h)``; output ``h' (N, hidden_size)``.

    Attributes:
        weight_ih ``(3 * hidden_size, input_size)``, weight_hh ``(3 * hidden_size, hidden_size)``,
        bias_ih, bias_hh ``(3 * hidden_size,)``, uniform in ``±1/sqrt(hidden_size)``.

    Backward: as one step of ``GRU`` (see ``nnumpy.kernels.recurrent.recurrent_backward_reference``).

    Example:
        >>> import numpy as np
        >>> GRUCell(3, 5).forward(np.zeros((4, 3), np.float32)).shape
        (4, 5)
    """

    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__(input_size, hidden_size, bias, dtype, rng)
