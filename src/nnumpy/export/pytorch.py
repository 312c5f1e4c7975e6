"""Move weights between PyTorch and nnumpy.

``load_torch_state_dict(model, state_dict)`` copies the ``state_dict`` of a
``torch.nn.Sequential`` (torch tensors or NumPy arrays) into the equivalent
nnumpy model; ``to_torch_state_dict(model)`` returns one that PyTorch's
``load_state_dict`` accepts. torch itself is imported only to build tensors
(``as_tensors=True``); tensors coming in are read through ``.detach()``.

How modules are matched: by the order of the modules that hold arrays, not by
index. A torch ``Sequential`` numbers every child (``0`` Linear, ``1`` ReLU,
``2`` Linear...), and the two models need not agree on where the
parameter-free modules are, so the keys are grouped by module prefix
(``"2.weight"`` and ``"2.bias"`` form module ``"2"``) and the n-th such
module is paired with the n-th nnumpy module that holds parameters or
buffers. (A ``state_dict`` lists modules in registration order, which for a
``Sequential``, nested ones included, is the forward order; for a model of your
own, register its layers in forward order.) Each pair must be of the same kind,
told from the names and shapes on the torch side:

=====================================  ====================================
PyTorch (``state_dict`` names)          nnumpy
=====================================  ====================================
Linear (weight 2-D, bias)               Linear (``W``, ``b``)
Conv1d / Conv2d (weight 3-D / 4-D)      Conv1d / Conv2d (``W``, ``b``)
BatchNorm1d/2d (weight, bias,           BatchNorm1d/2d (``weight``, ``bias``,
running_mean, running_var)              ``running_mean``, ``running_var``)
BatchNorm1d/2d affine                   BatchNormalization followed by
                                        ChannelwiseScaling (``moving_*``,
                                        ``gamma``, ``beta``)
BatchNorm1d/2d ``affine=False``         BatchNormalization alone
LayerNorm, GroupNorm, InstanceNorm*,    the same layers, by name: their
PReLU, Embedding, RNN/LSTM/GRU (and     arrays already carry PyTorch's
cells), MultiheadAttention              names (``weight_ih_l0``,
                                        ``in_proj_weight``, ...)
=====================================  ====================================

The last row is a rule, not a list: every layer in ``TORCH_NAMED``, and
every layer whose arrays are all named ``weight`` / ``bias`` /
``running_mean`` / ``running_var`` (ConvTranspose, a layer of yours), pairs
with the torch module of the same position whose array names and shapes are
its own (``register_torch_names(cls)`` adds a class with other PyTorch
names).
MultiheadAttention's ``out_proj`` is a Linear (``out_proj.weight``), so
Transformer layers, stacks and ``Transformer`` itself map key for key: the
positions nnumpy gives (``encoder.layers.0.self_attn.out_proj``) are
PyTorch's, and so are a ``Graph``'s node names when they are chosen so
(``nnumpy.blocks.basic_block_graph`` uses torchvision's).

``num_batches_tracked`` is skipped on the way in and written as 0 on the way
out. Hyper-parameters that are not arrays (eps, stride, padding, the
activations) are not in a ``state_dict``: the two architectures must agree on
them (the seed ``BatchNormalization`` uses ``eps=1e-3``). PyTorch stores the
unbiased running variance and the seed ``BatchNormalization`` the biased one;
evaluate-mode outputs are the same, later training updates differ slightly.

Everything is checked before anything is copied: a count, kind or shape
mismatch raises ValueError naming both sides, and the model is unchanged.
"""

from collections import OrderedDict

import numpy as np

from ..layers.activation import PReLU
from ..layers.attention import MultiheadAttention
from ..layers.conv import Conv1d, Conv2d
from ..layers.embedding import Embedding
from ..layers.layer_norm import GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from ..layers.linear import Linear
from ..layers.normalization import BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
from ..layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["load_torch_state_dict", "to_torch_state_dict", "register_torch_names", "TORCH_NAMED"]

_SKIPPED = ("num_batches_tracked",)

# Layers whose parameters and buffers already carry PyTorch's names: their
# arrays map one to one by name (MultiheadAttention's out_proj is a Linear of
# its own, the next unit). Extend with register_torch_names.
TORCH_NAMED = [
    LayerNorm,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    PReLU,
    Embedding,
    RNN,
    LSTM,
    GRU,
    RNNCell,
    LSTMCell,
    GRUCell,
    MultiheadAttention,
]


def register_torch_names(cls):
    """Declare that ``cls``'s parameters and buffers are named as in its
    PyTorch counterpart, so that its arrays move by name (usable as a class
    decorator; returns ``cls``)."""
    if not isinstance(cls, type):
        raise TypeError(f"register_torch_names: expected a class, got {cls!r}")
    if cls not in TORCH_NAMED:
        TORCH_NAMED.append(cls)
    return cls


_PYTORCH_NAMES = {"weight", "bias", "running_mean", "running_var"}


def _torch_named(module):
    """In ``TORCH_NAMED``, or every array has one of PyTorch's usual names
    (``weight``, ``bias``, ``running_mean``, ``running_var``: ConvTranspose, ...)."""
    if isinstance(module, tuple(TORCH_NAMED)):
        return True
    names = {p for p, _ in module.own_parameter_pairs()}
    names |= {b for b in module.own_buffer_names() if getattr(module, b, None) is not None}
    return bool(names) and names <= _PYTORCH_NAMES


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor: no torch import needed to read it
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _torch_units(state_dict):
    """``[(prefix, {name: array})]`` in the state_dict's order, one per torch module."""
    units = OrderedDict()
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        if name in _SKIPPED:
            continue
        units.setdefault(prefix, {})[name] = value
    return list(units.items())


def _torch_kind(prefix, arrays):
    if "running_mean" in arrays or "running_var" in arrays:
        return "BatchNorm"
    weight = arrays.get("weight")
    if weight is not None:
        ndim = len(np.shape(weight))
        return {2: "Linear", 3: "Conv1d", 4: "Conv2d"}.get(ndim, f"unknown module (weight of {ndim} dims)")
    return f"unknown module (arrays {sorted(arrays)})"


def _holds_arrays(module):
    buffers = module.own_buffer_names()
    return bool(module.own_parameter_pairs()) or any(getattr(module, b, None) is not None for b in buffers)


def _nnumpy_units(model):
    """``[(position, kind, {torch_name: (module, attr)})]`` for the model's
    modules that hold arrays, in forward order. Raises ValueError for a
    module that has no PyTorch counterpart."""
    named = [(name, m) for name, m in model.named_modules() if not m.children()]
    units, i = [], 0
    while i < len(named):
        position, module = named[i]
        i += 1
        if isinstance(module, BatchNormalization):
            mapping = {"running_mean": (module, "moving_mean"), "running_var": (module, "moving_variance")}
            if i < len(named) and isinstance(named[i][1], ChannelwiseScaling):
                scaling = named[i][1]
                mapping.update(weight=(scaling, "gamma"), bias=(scaling, "beta"))
                i += 1
            units.append((position, "BatchNorm", mapping))
        elif isinstance(module, (BatchNorm1d, BatchNorm2d)):
            mapping = {"running_mean": (module, "running_mean"), "running_var": (module, "running_var")}
            if module.weight is not None:
                mapping.update(weight=(module, "weight"), bias=(module, "bias"))
            units.append((position, "BatchNorm", mapping))
        elif isinstance(module, (Linear, Conv1d, Conv2d)):
            mapping = {"weight": (module, "W")}
            if module.b is not None:
                mapping["bias"] = (module, "b")
            convs = {3: "Conv1d", 4: "Conv2d"}
            kind = "Linear" if isinstance(module, Linear) else convs.get(module.W.ndim, "Conv")
            units.append((position, kind, mapping))
        elif _holds_arrays(module) and _torch_named(module):
            names = [p for p, _ in module.own_parameter_pairs()]
            names += [b for b in module.own_buffer_names() if getattr(module, b, None) is not None]
            units.append((position, f"{type(module).__name__} (by name)", {n: (module, n) for n in names}))
        elif _holds_arrays(module):
            raise ValueError(
                f"nnumpy.interop: {module!r} at model[{position}] has no PyTorch counterpart "
                "(supported: Linear, Conv1d, Conv2d, BatchNorm1d, BatchNorm2d, "
                "BatchNormalization[+ChannelwiseScaling], "
                f"and by name {', '.join(c.__name__ for c in TORCH_NAMED)}; nnumpy.interop.register_torch_names "
                "adds a class whose arrays have PyTorch's names)"
            )
    return units


def _where(position, module, attr):
    return f"nnumpy model[{position}] {module!r}.{attr}"


def _pair_units(model, torch_units, side):
    """Pair torch units with nnumpy units; returns ``(pairs, problems)``."""
    ours = _nnumpy_units(model)
    if len(ours) != len(torch_units):
        raise ValueError(
            f"nnumpy.interop: {side} has {len(torch_units)} modules with arrays "
            f"({', '.join(repr(p) for p, _ in torch_units) or 'none'}) but the nnumpy model has {len(ours)} "
            f"({', '.join(f'{k} at [{p}]' for p, k, _ in ours) or 'none'}); modules are matched in order"
        )
    pairs, problems = [], []
    for (prefix, arrays), (position, kind, mapping) in zip(torch_units, ours, strict=True):
        torch_kind = _torch_kind(prefix, arrays)
        if not kind.endswith("(by name)") and torch_kind != kind:
            problems.append(f"torch module {prefix!r} is a {torch_kind} but nnumpy model[{position}] is a {kind}")
            continue
        if set(arrays) != set(mapping):
            problems.append(
                f"torch module {prefix!r} has {sorted(arrays)} but nnumpy model[{position}] ({kind}) has "
                f"{sorted(mapping)} (bias or affine differs)"
            )
            continue
        pairs.append((prefix, arrays, position, mapping))
    return pairs, problems


def _shape_problems(pairs):
    problems = []
    for prefix, arrays, position, mapping in pairs:
        for name, value in arrays.items():
            module, attr = mapping[name]
            current = getattr(module, attr, None)
            shape = tuple(np.shape(value))
            if current is not None and tuple(current.shape) != shape:
                key = f"{prefix}.{name}" if prefix else name
                ours = tuple(current.shape)
                problems.append(f"torch {key} has shape {shape} but {_where(position, module, attr)} has shape {ours}")
    return problems


def load_torch_state_dict(model, state_dict):
    """Copy a PyTorch ``state_dict`` into the nnumpy ``model`` in place.

    Args:
        model: the nnumpy model of the same architecture (same parametrised
            layers in the same order, same hyper-parameters).
        state_dict: ``torch_model.state_dict()``: a mapping of names to torch
            tensors or NumPy arrays.

    Returns the model. Raises ValueError (naming both sides) when the modules
    do not pair up or a shape differs; nothing is modified then. Values are
    cast to the dtype of the array they replace.

    Example:
        >>> import numpy as np, nnumpy as nn
        >>> state = {"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2),   # torch: Linear, ReLU, Linear
        ...          "2.weight": np.ones((1, 2)), "2.bias": np.ones(1)}
        >>> net = load_torch_state_dict(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)), state)
        >>> net.forward(np.ones((1, 3), np.float32)).tolist()
        [[7.0]]
        >>> list(to_torch_state_dict(net))
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """
    units = [(p, {n: _to_numpy(v) for n, v in arrays.items()}) for p, arrays in _torch_units(state_dict)]
    pairs, problems = _pair_units(model, units, "the torch state_dict")
    problems += _shape_problems(pairs)
    if problems:
        raise ValueError("nnumpy.interop.load_torch_state_dict: " + "; ".join(problems))
    for _, arrays, _, mapping in pairs:
        for name, value in arrays.items():
            module, attr = mapping[name]
            current = getattr(module, attr, None)
            if current is None:  # a seed BatchNormalization not sized yet
                setattr(module, attr, value.astype(np.float32, copy=True))
            else:
                current[...] = value
    return model


def to_torch_state_dict(model, as_tensors=False, like=None):
    """The nnumpy ``model``'s arrays under PyTorch's names.

    Args:
        model: an nnumpy model.
        as_tensors: return torch tensors (imports torch) instead of NumPy arrays.
        like: optional torch module or ``state_dict`` of the target model:
            its key prefixes are used (paired in order, checked as in
            ``load_torch_state_dict``). Without it, a module's key prefix is
            its nnumpy position (``"3.weight"``), which is the torch
            Sequential's when both have the same children in the same order.

    Returns an ``OrderedDict`` of copies, ready for ``torch_model.load_state_dict``.
    BatchNorm units get ``num_batches_tracked`` (0, or ``like``'s value).
    """
    units = _nnumpy_units(model)
    prefixes = [position for position, _, _ in units]
    tracked = {}
    if like is not None:
        reference = like.state_dict() if hasattr(like, "state_dict") else like
        pairs, problems = _pair_units(model, _torch_units(reference), "the torch model")
        problems += _shape_problems(pairs)
        if problems:
            raise ValueError("nnumpy.interop.to_torch_state_dict: " + "; ".join(problems))
        prefixes = [prefix for prefix, _, _, _ in pairs]
        tracked = {
            k.rpartition(".")[0]: _to_numpy(v) for k, v in reference.items() if k.endswith("num_batches_tracked")
        }
    out = OrderedDict()
    for prefix, (_, kind, mapping) in zip(prefixes, units, strict=True):
        names = list(mapping) if kind.endswith("(by name)") else ["weight", "bias", "running_mean", "running_var"]
        for name in names:
            if name in mapping:
                module, attr = mapping[name]
                value = getattr(module, attr, None)
                if value is None:
                    raise ValueError(
                        f"nnumpy.interop.to_torch_state_dict: {module!r}.{attr} is not set yet "
                        "(build BatchNormalization with n_feats=..., or run a forward first)"
                    )
                out[f"{prefix}.{name}" if prefix else name] = np.array(value, copy=True, order="C")
        if kind == "BatchNorm" or "running_mean" in mapping:  # PyTorch's norms count their batches
            key = f"{prefix}.num_batches_tracked" if prefix else "num_batches_tracked"
            out[key] = np.array(tracked.get(prefix, 0), dtype=np.int64)
    if as_tensors:
        try:
            import torch
        except ImportError as error:
            raise ImportError("to_torch_state_dict(as_tensors=True) needs PyTorch: pip install torch") from error
        out = OrderedDict((k, torch.from_numpy(v)) for k, v in out.items())
    return out
