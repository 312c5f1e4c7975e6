"""Export nnumpy models to ONNX, the format every inference runtime reads.

``export(model, example_input, path)`` walks the model and asks one converter
per module class for the ONNX nodes that compute the same thing in evaluate
mode (moving statistics, no dropout). The table (``_CONVERTERS``, filled by
``register_converter`` below) holds:

- layers: Linear -> Gemm; Conv1d/Conv2d -> Conv (padding_mode reflect /
  replicate / circular: Pad first); ConvTranspose1d/2d -> ConvTranspose;
  Max/AvgPool -> MaxPool / AveragePool; GlobalAvgPool2d, AdaptiveAvg/MaxPool2d
  -> Global*Pool (output 1), *Pool (an input divisible by the output), else
  MatMul with the averaging matrices / Gather + ReduceMax over the bins;
  BatchNorm* -> BatchNormalization; LayerNorm -> LayerNormalization (opset
  17+, else its formula); GroupNorm, InstanceNorm1d/2d -> their formulas /
  InstanceNormalization; ZeroPad2d / ReflectionPad2d / ReplicationPad2d ->
  Pad; Upsample -> Resize; Flatten, Unflatten -> Flatten, Reshape; Dropout,
  Dropout2d, Identity -> nothing; Embedding -> Gather.
- activations: ReLU, LeakyReLU, ELU, SELU, CELU, SoftPlus, Sigmoid, Tanh,
  Softsign, Hardsigmoid, Hardswish, Mish, GELU (opset 20's Gelu, else the erf
  or tanh formula), SiLU, Tanhshrink, Hardtanh/ReLU6 (Clip), PReLU,
  SoftMax/LogSoftMax(dim).
- recurrent: RNN/LSTM/GRU (and their cells, as one step) -> ONNX's
  RNN/LSTM/GRU, one node per layer (gates reordered: PyTorch's LSTM i,f,g,o
  -> ONNX i,o,f,c; GRU r,z,n -> z,r,h with ``linear_before_reset=1``),
  ``lengths`` -> ``sequence_lens``; LastStep.
- attention: MultiheadAttention -> MatMul / Softmax (masks given as graph
  inputs: boolean -> Where, float -> Add), the Transformer encoder and decoder
  layers, stacks and ``Transformer``, the positional encodings; the models'
  (``nnumpy.models``) CausalTransformerEncoder (future keys masked)
  and Mean; Linear on ``(*, in)`` inputs (MatMul + Add where Gemm is 2-D only).
- containers: Sequential, Residual, ConcatTable, ParallelTable, Concat,
  CAddTable / CSubTable / CMulTable, JoinTable, SplitTable, SelectTable and
  ``Graph`` (its steps in order; several inputs and outputs).

Values between modules are tensor names, or tuples of them where a module
takes or returns a tuple. The first axis of every graph input is dynamic
(``dim_param "N"``; ``dynamic_axes`` names others); the other dimensions are
those of ``example_input``. Unbatched calls export as a batch of one. Your own modules export once you register a
converter for them::

    @nnumpy.onnx.register_converter(Swish)
    def swish(g, module, x, example):
        return g.node("Mul", [x, g.node("Sigmoid", [x])])

A converter receives the graph builder ``g``, the module, the name of its
input tensor (a tuple of names for a tuple input) and an example input (to
read shapes); it adds nodes with ``g.node(op_type, inputs, **attributes)``
and constants with ``g.constant(hint, array)`` and returns the name (or
tuple of names) of its output. A module whose class has no converter uses the
converter of its nearest base class only if it keeps that class's
``updateOutput`` and ``forward`` (same computation). A configuration ONNX
cannot express (an LSTM with ``proj_size``, ...) raises ``ExportError``
naming the module (``g.refuse(module, why)``).

ConvTranspose1d/2d export through ``conv_transpose``, public because any
layer with PyTorch's attributes (``weight``, ``bias``, ``stride``,
``padding``, ``output_padding``, ``dilation``, ``groups``) can register it.

Needs the ``onnx`` package (``pip install nnumpy[onnx]``); running the result
needs a runtime such as ``onnxruntime``.
"""

import contextlib
import math

import numpy as np

from .._structure import is_seq
from .._version import __version__
from ..containers import (
    CAddTable,
    CMulTable,
    Concat,
    ConcatTable,
    CSubTable,
    JoinTable,
    ParallelTable,
    Residual,
    SelectTable,
    Sequential,
    SplitTable,
)
from ..graph import Graph
from ..io import is_several_shapes, load_model, read_metadata
from ..layers.activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    LeakyReLU,
    LogSoftMax,
    Mish,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    SoftMax,
    SoftPlus,
    Softsign,
    Tanh,
    Tanhshrink,
)
from ..layers.adaptive_pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d, averaging_matrix, bin_positions
from ..layers.attention import MultiheadAttention
from ..layers.conv import Conv1d, Conv2d
from ..layers.conv_transpose import ConvTranspose1d, ConvTranspose2d
from ..layers.dropout import Dropout, Dropout2d
from ..layers.embedding import Embedding
from ..layers.layer_norm import GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from ..layers.linear import Linear
from ..layers.normalization import BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
from ..layers.padding import ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from ..layers.pooling import AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d
from ..layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from ..layers.reshape import Flatten, Unflatten
from ..layers.sequence import LastStep, Mean
from ..layers.transformer import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from ..layers.upsample import Upsample
from ..models import CausalTransformerEncoder
from ..module import Module

__all__ = [
    "export",
    "export_file",
    "example_input",
    "register_converter",
    "converter_for",
    "conv_transpose",
    "GraphBuilder",
    "ExportError",
    "MIN_OPSET",
]

MIN_OPSET = 13  # Softmax/LogSoftmax take one axis from opset 13 on (before: flattened to 2-D)

_CONVERTERS = {}


class ExportError(ValueError):
    """A module whose configuration ONNX cannot express (the message says which and why)."""


def _require_onnx():
    try:
        import onnx  # noqa: F401  (the real onnx package: absolute import)
    except ImportError as error:
        raise ImportError(
            "nnumpy.onnx needs the 'onnx' package: pip install nnumpy[onnx] (or pip install onnx)"
        ) from error
    return onnx


def register_converter(cls):
    """Decorator registering ``fn(g, module, x, example) -> output_name`` as the
    ONNX converter of module class ``cls`` (replacing any previous one).

    A container's converter may return ``(output, example_output)`` as a
    list ``[output, example_output]`` to save running the module forward again.
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_converter: expected a Module subclass, got {cls!r}")

    def decorate(fn):
        _CONVERTERS[cls] = fn
        return fn

    return decorate


def converter_for(module):
    """The converter that exports ``module``, or None.

    The class's own converter, else that of the nearest base class whose
    ``updateOutput`` and ``forward`` the class inherits unchanged (a subclass
    whose ``forward`` passes options, e.g. a causal mask, computes something else).
    """
    cls = type(module)
    if cls in _CONVERTERS:
        return _CONVERTERS[cls]
    for base in cls.__mro__[1:]:
        if base in _CONVERTERS:
            same = cls.updateOutput is base.updateOutput and cls.forward is base.forward
            return _CONVERTERS[base] if same else None
    return None


# ---------------------------------------------------------------- nested values
def _leaves(value):
    """The arrays (or names) of a nested tuple, depth first."""
    if is_seq(value):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _rebuild(structure, leaves):
    """``structure`` with its leaves replaced, in order, by ``leaves`` (an iterator)."""
    if is_seq(structure):
        return tuple(_rebuild(v, leaves) for v in structure)
    return next(leaves)


def _map2(fn, a, b):
    """``fn`` on matching leaves of two structures of the same shape."""
    if is_seq(a):
        return tuple(_map2(fn, x, y) for x, y in zip(a, b, strict=True))
    return fn(a, b)


def _batch_of_one(g, module, x, example, axis_of, converter):
    """Export an unbatched call as a batch of one: input leaf ``i`` gets a batch
    axis at ``axis_of(i)`` (None: left alone), ``converter`` runs on the batched
    values, and output leaf ``i`` loses the axis at ``axis_of(i)`` again."""
    names, arrays = _leaves(x), _leaves(example)
    axes = [axis_of(i) for i in range(len(names))]
    names = [n if n is None or a is None else g.unsqueeze(n, [a]) for n, a in zip(names, axes, strict=True)]
    arrays = [e if e is None or a is None else np.expand_dims(e, a) for e, a in zip(arrays, axes, strict=True)]
    y = converter(g, module, _rebuild(x, iter(names)), _rebuild(example, iter(arrays)))
    return _rebuild(y, iter(g.squeeze(n, [axis_of(i)]) for i, n in enumerate(_leaves(y))))


class GraphBuilder:
    """What converters write into: nodes, initialisers, unique tensor names.

    Attributes:
        opset: the target ONNX opset of the default domain.
        dtype: the numpy float dtype of the exported model (inputs, constants).
    """

    def __init__(self, opset, dtype):
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.nodes = []
        self.initializers = []
        self._names = set()
        self._path = []  # positions of the modules being converted, e.g. ["3", "1"]

    def _unique(self, name):
        candidate, k = name, 1
        while candidate in self._names:
            k += 1
            candidate = f"{name}_{k}"
        self._names.add(candidate)
        return candidate

    @property
    def prefix(self):
        return "/" + "/".join(self._path) if self._path else ""

    @property
    def where(self):
        """The position being converted, as messages show it: ``model[1][0]``."""
        return "model" + ("".join(f"[{p}]" for p in self._path) or " (the model itself)")

    def refuse(self, module, why):
        """Raise ``ExportError`` for ``module`` at the current position."""
        raise ExportError(f"nnumpy.onnx.export: {module!r} at {self.where} cannot be exported: {why}")

    def constant(self, hint, array, dtype=None):
        """Add ``array`` as an initialiser (in the model's dtype unless
        ``dtype`` is given) and return its name, e.g. ``"3.W"``."""
        from onnx import numpy_helper

        array = np.array(array, dtype=self.dtype if dtype is None else dtype, order="C")  # 0-d stays 0-d
        base = ".".join(self._path + [hint]) if self._path else hint
        name = self._unique(base)
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def ints(self, hint, values):
        """An int64 constant (shapes, axes, indices)."""
        return self.constant(hint, np.asarray(values, dtype=np.int64), dtype=np.int64)

    def node(self, op_type, inputs, outputs=1, **attributes):
        """Add a node of the default domain; returns its output's name (a list
        of names when ``outputs > 1``). An input ``""`` is an omitted optional one."""
        from onnx import helper

        names = [self._unique(f"{self.prefix}/{op_type}_output") for _ in range(outputs)]
        name = self._unique(f"{self.prefix}/{op_type}")
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name, **attributes))
        return names[0] if outputs == 1 else names

    # small helpers that hide opset differences
    def reduce(self, op_type, x, axes, keepdims=1):
        """``ReduceMean`` / ``ReduceMax`` / ``ReduceSum`` over ``axes`` (axes an
        input from opset 18 on, ReduceSum's from 13)."""
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.node(op_type, [x, self.ints("axes", axes)], keepdims=keepdims)
        return self.node(op_type, [x], axes=list(axes), keepdims=keepdims)

    def reshape(self, x, shape):
        return self.node("Reshape", [x, self.ints("shape", shape)])

    def transpose(self, x, perm):
        return self.node("Transpose", [x], perm=list(perm))

    def squeeze(self, x, axes):
        return self.node("Squeeze", [x, self.ints("axes", axes)])

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", [x, self.ints("axes", axes)])

    def slice(self, x, starts, ends, axes):
        return self.node("Slice", [x, self.ints("starts", starts), self.ints("ends", ends), self.ints("axes", axes)])

    @contextlib.contextmanager
    def within(self, name):
        """Name what is added inside as part of child ``name`` (a block that
        converts its children itself: ``with g.within("linear1"): ...``)."""
        self._path.append(str(name))
        try:
            yield
        finally:
            self._path.pop()

    def convert(self, module, x, example, position=None):
        """Convert ``module`` applied to ``x`` (a tensor name or a tuple of
        them, whose value looks like ``example``); returns ``(output, example_output)``."""
        if position is not None:
            self._path.append(str(position))
        try:
            fn = converter_for(module)
            if fn is None:
                where = "".join(f"[{p}]" for p in self._path) or " (the model itself)"
                raise TypeError(
                    f"nnumpy.onnx.export: no ONNX converter for {type(module).__name__} "
                    f"({module!r}) at model{where}; register one with "
                    f"@nnumpy.onnx.register_converter({type(module).__name__})"
                )
            result = fn(self, module, x, example)
            if isinstance(result, list):  # [output, example_output] from a container
                return tuple(result)
            try:
                return result, module.forward(example)
            except Exception as error:
                try:
                    wrapped = type(error)(f"nnumpy.onnx.export: tracing {self.where} failed: {error}")
                except Exception:  # an exception type with an unusual constructor
                    raise error from None
                raise wrapped from error
        finally:
            if position is not None:
                self._path.pop()


def _model_dtype(model, example_input):
    """The parameters' float dtype if they share one, else the input's (float32 for non-floats)."""
    kinds = {np.dtype(p.dtype) for p in model.parameters() if np.dtype(p.dtype).kind == "f"}
    if len(kinds) == 1:
        return kinds.pop()
    floats = [np.asarray(a).dtype for a in _leaves(example_input) if a is not None]
    floats = [d for d in floats if d.kind == "f"]
    return floats[0] if floats else np.dtype(np.float32)


def _io_names(given, count, default, what):
    """Names of the graph's inputs or outputs: one name, or ``given_i`` for several."""
    if isinstance(given, (list, tuple)):
        if len(given) != count or not all(isinstance(n, str) and n for n in given):
            raise ValueError(f"nnumpy.onnx.export: expected {count} {what} names, got {list(given)!r}")
        return list(given)
    if not isinstance(given, str) or not given:
        raise ValueError(f"nnumpy.onnx.export: {what}_name must be a non-empty string, got {given!r}")
    if count == 1:
        return [given]
    return list(default) if default is not None else [f"{given}_{i}" for i in range(count)]


def export(model, example_input, path=None, opset=18, input_name="input", output_name="output", dtype=None,
           dynamic_axes=None):
    """Export ``model`` (evaluate-mode semantics) to ONNX and return the ``ModelProto``.

    Args:
        model: a Module whose every module has a converter.
        example_input: an array of the input's shape, e.g. ``x[:1]``, or a
            tuple of them for a model taking a tuple (a ``Graph`` with several
            inputs, ``(x, lengths)``, ``(query, key, value, mask)``); each
            array is one graph input. Integer and boolean arrays keep their
            dtype (token ids, lengths, masks); float ones take ``dtype``.
        path: file to write (``.onnx``), or None to only return the model.
        opset: ONNX opset of the default domain, ``>= 13`` (default 18).
        input_name, output_name: names of the graph's input and output; for
            several, a list of names, or a prefix (``input_0``, ``input_1``,
            ...; a ``Graph``'s inputs keep their node names).
        dtype: float dtype of the exported inputs, outputs and weights; None
            (default) keeps the model's (float32 unless converted with ``to``).
            A float64 model exported with ``dtype=np.float32`` runs everywhere
            (onnxruntime's CPU provider has no float64 Conv).
        dynamic_axes: ``{input_name: {axis: dim_name}}`` for inputs whose
            dynamic axes are not just the first (e.g. ``{0: "T", 1: "N"}`` for
            a time-major sequence; ``{}``: all static); default: axis 0 is
            dynamic, ``"N"`` for the first input and ``"N_<name>"`` for the
            others (the same name would tell runtimes the sizes are equal).

    The model is run once on ``example_input`` in evaluate mode to trace
    shapes; every module's ``training`` flag is restored afterwards. Output
    shapes come from ONNX shape inference.

    Raises:
        TypeError: a module has no converter (the message names it and its position).
        ExportError (a ValueError): a module's configuration has no ONNX equivalent.
        ValueError: an unsupported opset or an example input without a batch axis.
        ImportError: the ``onnx`` package is missing.

    Example:
        >>> import numpy as np, nnumpy as nn
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.SoftMax())
        >>> proto = nn.onnx.export(net, np.zeros((1, 4), np.float32))
        >>> [node.op_type for node in proto.graph.node]
        ['Gemm', 'Relu', 'Gemm', 'Softmax']
        >>> proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
        'N'
    """
    onnx = _require_onnx()
    from onnx import helper

    if not isinstance(model, Module):
        raise TypeError(f"nnumpy.onnx.export: expected a Module, got {type(model).__name__}")
    max_opset = onnx.defs.onnx_opset_version()
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= max_opset:
        raise ValueError(f"nnumpy.onnx.export: opset must be an int in [{MIN_OPSET}, {max_opset}], got {opset!r}")
    dtype = _model_dtype(model, example_input) if dtype is None else np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"nnumpy.onnx.export: dtype must be a float dtype, got {dtype}")

    leaves = [None if a is None else _as_input(a, dtype) for a in _leaves(example_input)]
    given = [a for a in leaves if a is not None]
    graph_names = None
    if isinstance(model, Graph) and is_seq(example_input) and len(leaves) == len(example_input):
        graph_names = model.plan()["inputs"]  # a Graph's inputs keep their node names
    in_names = _io_names(input_name, len(given), graph_names, "input")
    names = iter(in_names)
    x = _rebuild(example_input, iter([None if a is None else next(names) for a in leaves]))
    example = _rebuild(example_input, iter(leaves))

    modes = [(m, m.training) for _, m in model.named_modules()]
    model.evaluate()
    try:
        g = GraphBuilder(int(opset), dtype)
        g._names.update(in_names)
        out, out_example = g.convert(model, x, example)
    finally:
        for module, training in modes:
            module.training = training

    out_leaves, out_arrays = _leaves(out), _leaves(out_example)
    out_names = _io_names(output_name, len(out_leaves), None, "output")
    _name_outputs(g, out_leaves, out_names)
    inputs = _input_infos(in_names, given, dtype, dynamic_axes or {})
    outputs = [helper.make_tensor_value_info(n, _elem(a, dtype), None) for n, a in zip(out_names, out_arrays,
                                                                                        strict=True)]
    graph = helper.make_graph(g.nodes, f"nnumpy_{type(model).__name__}", inputs, outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="nnumpy", doc_string=repr(model))
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    proto.producer_version = __version__
    inferred = onnx.shape_inference.infer_shapes(proto)
    for declared, found, a in zip(proto.graph.output, inferred.graph.output, out_arrays, strict=True):
        if found.type.tensor_type.HasField("shape"):
            declared.CopyFrom(found)
        else:  # inference stopped (a shape computed at run time): the traced shape, batch axis dynamic
            dims = ["N", *np.shape(a)[1:]] if np.ndim(a) else []
            declared.CopyFrom(helper.make_tensor_value_info(declared.name, _elem(a, dtype), dims))
    if path is not None:
        onnx.save(proto, str(path))
    return proto


def _as_input(a, dtype):
    """An example input array: floats in the export dtype, ids and masks as they are; needs a batch axis."""
    a = np.asarray(a)
    if a.ndim < 1 or a.shape[0] < 1:
        raise ValueError(
            f"nnumpy.onnx.export: example_input needs a batch axis with at least one sample, got shape {a.shape}"
        )
    return a.astype(dtype) if a.dtype.kind == "f" else a


def _elem(a, dtype):
    """The ONNX element type of a value like ``a`` (floats: the export dtype)."""
    from onnx import helper

    a = np.asarray(a)
    return helper.np_dtype_to_tensor_dtype(dtype if a.dtype.kind == "f" else a.dtype)


def _input_infos(names, arrays, dtype, dynamic_axes):
    """The graph inputs: the example's shapes, axis 0 (or ``dynamic_axes``'s axes) symbolic:
    ``N`` for the first input, ``N_<name>`` for the others (nothing says their axis 0 is the batch)."""
    from onnx import helper

    unknown = sorted(set(dynamic_axes) - set(names))
    if unknown:
        raise ValueError(f"nnumpy.onnx.export: dynamic_axes names {unknown}, which are not inputs; inputs: {names}")
    infos = []
    for i, (name, a) in enumerate(zip(names, arrays, strict=True)):
        dims = list(a.shape)
        default = {0: "N" if i == 0 else f"N_{name}"}  # symbols of their own: a mask's axis 0 is no batch
        for axis, label in dynamic_axes.get(name, default).items():
            if not -len(dims) <= axis < len(dims):
                raise ValueError(f"nnumpy.onnx.export: dynamic_axes[{name!r}] names axis {axis} of an input of "
                                 f"shape {a.shape}")
            dims[axis] = label
        infos.append(helper.make_tensor_value_info(name, _elem(a, dtype), dims))
    return infos


def _name_outputs(g, internal_names, public_names):
    """Give the graph's outputs their public names: the producing node's output
    renamed, or an Identity for an input, a constant or a tensor given twice."""
    from onnx import helper

    produced = {name for node in g.nodes for name in node.output}
    renamed = {}
    for internal, public in zip(internal_names, public_names, strict=True):
        if internal in produced and internal not in renamed and internal_names.count(internal) == 1:
            renamed[internal] = public
        else:
            g.nodes.append(helper.make_node("Identity", [internal], [public], name=f"/Identity_{public}"))
    for node in g.nodes:
        for i, name in enumerate(node.output):
            node.output[i] = renamed.get(name, name)
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)


def example_input(model, input_shape, dtype=None):
    """An example input for ``export`` from a saved ``input_shape`` (no batch
    axis): zeros of one sample, integer ids (int64) when the model starts with
    an ``Embedding``; a ``None`` size (a variable length) becomes 1. Returns
    ``(example, dynamic_axes)`` for ``export(model, example, dynamic_axes=...)``:
    the batch axis and the ``None`` axes are dynamic."""
    sizes = [1 if d is None else int(d) for d in input_shape]
    leaves = model.leaves()
    if leaves and isinstance(leaves[0], Embedding):
        dtype = np.int64
    elif dtype is None:
        dtype = _model_dtype(model, np.zeros(1, np.float32))
    axes = {0: "N", **{i + 1: f"d{i + 1}" for i, d in enumerate(input_shape) if d is None}}
    return np.zeros((1, *sizes), dtype=dtype), {"input": axes}


def export_file(checkpoint_or_model_path, out_path, opset=18):
    """Export a model file or training checkpoint (``nnumpy.save_model`` /
    ``save_checkpoint``) to ONNX at ``out_path``, tracing it with the input
    shape saved in the file (see ``example_input``). Returns the ``ModelProto``.

    Raises ValueError when the file records no input shape (save it with
    ``input_shape=...``, or call ``export`` with an example input).
    """
    input_shape = read_metadata(checkpoint_or_model_path).get("input_shape")
    if input_shape is None:
        raise ValueError(
            f"nnumpy.onnx.export_file: {checkpoint_or_model_path} records no input_shape; save the model with "
            "input_shape=... or call nnumpy.onnx.export(model, example_input, path)"
        )
    if is_several_shapes(input_shape):
        raise ValueError(
            f"nnumpy.onnx.export_file: {checkpoint_or_model_path} is a model with {len(input_shape)} inputs; call "
            "nnumpy.onnx.export(model, (x1, x2, ...), path) with one example array per input"
        )
    model = load_model(checkpoint_or_model_path)
    example, axes = example_input(model, input_shape)
    return export(model, example, out_path, opset=opset, dynamic_axes=axes)


# ---------------------------------------------------------------- containers
# Each returns [output, example_output] (its children were traced on the way).
@register_converter(Sequential)
def _sequential(g, module, x, example):
    for i, child in enumerate(module.modules):
        x, example = g.convert(child, x, example, position=i)
    return [x, example]


@register_converter(Residual)
def _residual(g, module, x, example):
    y, y_example = g.convert(module.body, x, example, position="body")
    s, s_example = (x, example) if module.shortcut is None else g.convert(module.shortcut, x, example, "shortcut")
    out = _map2(lambda a, b: g.node("Add", [a, b]), y, s)
    return [out, _map2(np.add, y_example, s_example)]


@register_converter(ConcatTable)
def _concat_table(g, module, x, example):
    results = [g.convert(m, x, example, position=i) for i, m in enumerate(module.modules)]
    return [tuple(r[0] for r in results), tuple(r[1] for r in results)]


@register_converter(ParallelTable)
def _parallel_table(g, module, x, example):
    results = [g.convert(m, x[i], example[i], position=i) for i, m in enumerate(module.modules)]
    return [tuple(r[0] for r in results), tuple(r[1] for r in results)]


@register_converter(Concat)
def _concat(g, module, x, example):
    results = [g.convert(m, x, example, position=i) for i, m in enumerate(module.modules)]
    out = g.node("Concat", [r[0] for r in results], axis=int(module.dim))
    return [out, np.concatenate([r[1] for r in results], axis=module.dim)]


def _chain(op_type):
    """``x[0] op x[1] op ...`` (ONNX broadcasts as NumPy does)."""

    def convert(g, module, x, example):
        out = x[0] if len(x) > 1 else g.node("Identity", [x[0]])
        for name in x[1:]:
            out = g.node(op_type, [out, name])
        return out

    return convert


register_converter(CAddTable)(_chain("Add"))
register_converter(CSubTable)(_chain("Sub"))
register_converter(CMulTable)(_chain("Mul"))


@register_converter(JoinTable)
def _join_table(g, module, x, example):
    return g.node("Concat", list(x), axis=int(module.dim))


@register_converter(SplitTable)
def _split_table(g, module, x, example):
    axis = module.dim % np.ndim(example)
    k = np.shape(example)[axis]
    parts = g.node("Split", [x, g.ints("split", [1] * k)], outputs=k, axis=axis)
    parts = [parts] if k == 1 else parts
    return tuple(g.squeeze(p, [axis]) for p in parts)


@register_converter(SelectTable)
def _select_table(g, module, x, example):
    return x[module.index]  # wiring only


@register_converter(Graph)
def _graph(g, module, x, example):
    plan = module.plan()
    values = list(x) if plan["multi_in"] else [x]
    examples = list(example) if plan["multi_in"] else [example]
    for step_module, parents, packed, name in plan["steps"]:
        if packed:
            args, args_example = tuple(values[p] for p in parents), tuple(examples[p] for p in parents)
        else:
            args, args_example = values[parents[0]], examples[parents[0]]
        y, y_example = g.convert(step_module, args, args_example, position=name)
        values.append(y)
        examples.append(y_example)
    outs = [values[p] for p in plan["outputs"]]
    outs_example = [examples[p] for p in plan["outputs"]]
    if plan["multi_out"]:
        return [tuple(outs), tuple(outs_example)]
    return [outs[0], outs_example[0]]


# ---------------------------------------------------------------- simple layers
@register_converter(Identity)
@register_converter(Dropout)
@register_converter(Dropout2d)
def _identity(g, module, x, example):
    return x  # evaluate mode: nothing to compute


@register_converter(Linear)
def _linear(g, module, x, example):
    if np.ndim(example) != 2:  # Gemm is 2-D only
        return _dense(g, module, x)
    inputs = [x, g.constant("W", module.W)]
    if module.b is not None:
        inputs.append(g.constant("b", module.b))
    return g.node("Gemm", inputs, transB=1)


def _dense(g, linear, x):
    """``x @ W.T + b`` for inputs of any rank (MatMul broadcasts the leading axes)."""
    y = g.node("MatMul", [x, g.constant("W_t", linear.W.T)])
    return y if linear.b is None else g.node("Add", [y, g.constant("b", linear.b)])


def _simple(op_type, **attributes_of):
    def convert(g, module, x, example):
        return g.node(op_type, [x], **{k: f(module) for k, f in attributes_of.items()})

    return convert


register_converter(ReLU)(_simple("Relu"))
register_converter(Sigmoid)(_simple("Sigmoid"))
register_converter(Tanh)(_simple("Tanh"))
register_converter(SoftPlus)(_simple("Softplus"))
register_converter(Softsign)(_simple("Softsign"))
register_converter(LeakyReLU)(_simple("LeakyRelu", alpha=lambda m: float(m.slope)))
register_converter(ELU)(_simple("Elu", alpha=lambda m: float(m.alpha)))
register_converter(CELU)(_simple("Celu", alpha=lambda m: float(m.alpha)))
# PyTorch's constants in full (ONNX's defaults are their float32 roundings)
register_converter(SELU)(_simple("Selu", alpha=lambda m: 1.6732632423543772, gamma=lambda m: 1.0507009873554805))
register_converter(Hardsigmoid)(_simple("HardSigmoid", alpha=lambda m: 1.0 / 6.0, beta=lambda m: 0.5))
register_converter(SoftMax)(_simple("Softmax", axis=lambda m: m.dim))
register_converter(LogSoftMax)(_simple("LogSoftmax", axis=lambda m: m.dim))
register_converter(Flatten)(_simple("Flatten", axis=lambda m: 1))


@register_converter(Hardswish)
def _hardswish(g, module, x, example):
    if g.opset >= 14:
        return g.node("HardSwish", [x])
    return g.node("Mul", [x, g.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)])


@register_converter(SiLU)
def _silu(g, module, x, example):
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


@register_converter(Mish)
def _mish(g, module, x, example):
    if g.opset >= 18:
        return g.node("Mish", [x])
    return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])])


@register_converter(Tanhshrink)
def _tanhshrink(g, module, x, example):
    return g.node("Sub", [x, g.node("Tanh", [x])])


@register_converter(GELU)
def _gelu(g, module, x, example):
    if g.opset >= 20:
        return g.node("Gelu", [x], approximate=module.approximate)
    half_x = g.node("Mul", [x, g.constant("half", 0.5)])
    if module.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.constant("c", 0.044715)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.constant("k", math.sqrt(2.0 / math.pi))])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        t = g.node("Erf", [g.node("Mul", [x, g.constant("inv_sqrt2", 1.0 / math.sqrt(2.0))])])
    return g.node("Mul", [half_x, g.node("Add", [t, g.constant("one", 1.0)])])


@register_converter(Hardtanh)  # ReLU6 is Hardtanh(0, 6)
def _hardtanh(g, module, x, example):
    return g.node("Clip", [x, g.constant("min", module.min_val), g.constant("max", module.max_val)])


@register_converter(PReLU)
def _prelu(g, module, x, example):
    slope = module.weight
    if slope.shape[0] > 1:  # one slope per channel (axis 1)
        slope = slope.reshape(_channel_shape(example, slope.shape[0]))
    return g.node("PRelu", [x, g.constant("weight", slope)])


@register_converter(Unflatten)
def _unflatten(g, module, x, example):
    shape = np.shape(example)
    axis = module.dim % len(shape)
    if axis == 0:
        g.refuse(module, "unflattening the batch axis (axis 0) is not exportable with a dynamic batch")
    # 0 copies the input's size (the dynamic batch); the axes after ``dim`` are static
    return g.reshape(x, [0] * axis + list(module.unflattened_size) + list(shape[axis + 1 :]))


@register_converter(Embedding)
def _embedding(g, module, x, example):
    return g.node("Gather", [g.constant("weight", module.weight), x], axis=0)


def _channel_shape(example, n):
    """Shape of a per-channel constant broadcasting against ``example`` (channel axis 1)."""
    return (n,) + (1,) * (np.ndim(example) - 2)


# ---------------------------------------------------------------- normalization
def _batchnorm_node(g, x, example, mean, var, eps, weight=None, bias=None):
    c = np.shape(example)[1]
    weight = np.ones(c) if weight is None else weight
    bias = np.zeros(c) if bias is None else bias
    names = [g.constant(n, a) for n, a in (("scale", weight), ("B", bias), ("mean", mean), ("var", var))]
    return g.node("BatchNormalization", [x, *names], epsilon=float(eps))


@register_converter(BatchNorm1d)
@register_converter(BatchNorm2d)
def _batchnorm(g, module, x, example):
    return _batchnorm_node(
        g, x, example, module.running_mean, module.running_var, module.eps, module.weight, module.bias
    )


@register_converter(BatchNormalization)
def _seed_batchnorm(g, module, x, example):
    c = np.shape(example)[1]
    mean = np.zeros(c) if module.moving_mean is None else module.moving_mean
    var = np.ones(c) if module.moving_variance is None else module.moving_variance
    return _batchnorm_node(g, x, example, mean, var, module.EPS)


@register_converter(ChannelwiseScaling)
def _channelwise_scaling(g, module, x, example):
    shape = _channel_shape(example, module.gamma.shape[0])
    scaled = g.node("Mul", [x, g.constant("gamma", module.gamma.reshape(shape))])
    return g.node("Add", [scaled, g.constant("beta", module.beta.reshape(shape))])


def _normalize(g, x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance)."""
    centred = g.node("Sub", [x, g.reduce("ReduceMean", x, axes)])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), axes)
    return g.node("Div", [centred, g.node("Sqrt", [g.node("Add", [var, g.constant("eps", eps)])])])


def _affine(g, y, weight, bias, shape=None):
    if weight is not None:
        y = g.node("Mul", [y, g.constant("weight", weight if shape is None else weight.reshape(shape))])
    if bias is not None:
        y = g.node("Add", [y, g.constant("bias", bias if shape is None else bias.reshape(shape))])
    return y


@register_converter(LayerNorm)
def _layer_norm(g, module, x, example):
    k = len(module.normalized_shape)
    if g.opset >= 17:
        scale = np.ones(module.normalized_shape) if module.weight is None else module.weight
        inputs = [x, g.constant("weight", scale)] + ([] if module.bias is None else [g.constant("bias", module.bias)])
        return g.node("LayerNormalization", inputs, axis=-k, epsilon=float(module.eps))
    axes = list(range(np.ndim(example) - k, np.ndim(example)))
    return _affine(g, _normalize(g, x, axes, module.eps), module.weight, module.bias)


@register_converter(GroupNorm)
def _group_norm(g, module, x, example):
    ndim = np.ndim(example)
    grouped = g.reshape(x, [0, module.num_groups, -1])  # (N, G, C/G * spatial)
    y = g.node("Reshape", [_normalize(g, grouped, [2], module.eps), g.node("Shape", [x])])
    return _affine(g, y, module.weight, module.bias, (module.num_channels,) + (1,) * (ndim - 2))


@register_converter(InstanceNorm1d)
@register_converter(InstanceNorm2d)
def _instance_norm(g, module, x, example):
    if np.ndim(example) == (2 if isinstance(module, InstanceNorm1d) else 3):  # unbatched (C, *)
        return _batch_of_one(g, module, x, example, lambda i: 0, _instance_norm)
    if module.track_running_stats:  # evaluate mode normalizes with the running statistics
        return _batchnorm_node(g, x, example, module.running_mean, module.running_var, module.eps,
                               module.weight, module.bias)
    c = module.num_features
    scale = np.ones(c) if module.weight is None else module.weight
    bias = np.zeros(c) if module.bias is None else module.bias
    return g.node("InstanceNormalization", [x, g.constant("scale", scale), g.constant("B", bias)],
                  epsilon=float(module.eps))


# ---------------------------------------------------------------- convolution and pooling
# Convolution and pooling follow the attribute conventions of layers/conv.py
# and layers/pooling.py (docs/dev/CONVENTIONS.md): tuples per spatial axis,
# ``pads=((begin, end), ...)`` resolved at construction.
def _onnx_pads(pairs):
    """``((b0, e0), (b1, e1))`` -> ONNX's ``[b0, b1, e0, e1]``."""
    pairs = [tuple(int(v) for v in p) for p in pairs]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _tuple(value, n):
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


@register_converter(Conv1d)
@register_converter(Conv2d)
def _conv(g, module, x, example):
    n = module.W.ndim - 2
    pads = _onnx_pads(module.pads)
    mode = getattr(module, "padding_mode", "zeros")
    if mode == "circular" and g.opset < 19:
        g.refuse(module, "padding_mode='circular' (ONNX's Pad has no wrap-around mode before opset 19)")
    if mode != "zeros":  # the input padded first (reflect / edge / wrap), then an unpadded convolution
        x = g.node("Pad", [x, g.ints("pads", [0, 0] + pads[:n] + [0, 0] + pads[n:])],
                   mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])
        pads = [0] * (2 * n)
    inputs = [x, g.constant("W", module.W)]
    if getattr(module, "b", None) is not None:
        inputs.append(g.constant("b", module.b))
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(module.W.shape[2:]),
        strides=list(_tuple(module.stride, n)),
        dilations=list(_tuple(module.dilation, n)),
        pads=pads,
        group=int(module.groups),
    )


@register_converter(ConvTranspose1d)
@register_converter(ConvTranspose2d)
def conv_transpose(g, module, x, example):
    """The converter of ConvTranspose1d/2d, for PyTorch's attributes
    (``weight (C_in, C_out / groups, *k)`` -- or ``W`` as nnumpy's Conv --, ``bias`` / ``b``, ``stride``, ``padding``,
    ``output_padding``, ``dilation``, ``groups``): ONNX's ``ConvTranspose``
    has the same weight layout and meaning. Registered for ConvTranspose1d/2d;
    a layer of yours with these attributes can use it too."""
    if getattr(module, "padding_mode", "zeros") != "zeros":
        g.refuse(module, f"padding_mode={module.padding_mode!r} (only 'zeros' is exported)")
    weight = module.weight if hasattr(module, "weight") else module.W  # PyTorch's name or nnumpy's Conv one
    bias = getattr(module, "bias", None) if hasattr(module, "weight") else getattr(module, "b", None)
    n = weight.ndim - 2
    padding, strides = _tuple(module.padding, n), _tuple(module.stride, n)
    output_padding, pads_end, extra = list(_tuple(module.output_padding, n)), list(padding), [0] * n
    if any(o >= s for o, s in zip(output_padding, strides, strict=True)):
        # PyTorch allows output_padding < dilation too; onnxruntime refuses output_padding >= stride. The same
        # output: end pads reduced by output_padding, and past the end pads, zero rows (+ bias) appended.
        pads_end = [max(p - o, 0) for p, o in zip(padding, output_padding, strict=True)]
        extra = [max(o - p, 0) for p, o in zip(padding, output_padding, strict=True)]
        output_padding = [0] * n
    late_bias = bias is not None and any(extra)
    inputs = [x, g.constant("weight", weight)] + ([] if bias is None or late_bias else [g.constant("bias", bias)])
    y = g.node(
        "ConvTranspose",
        inputs,
        kernel_shape=list(weight.shape[2:]),
        strides=list(strides),
        dilations=list(_tuple(module.dilation, n)),
        pads=list(padding) + pads_end,
        output_padding=output_padding,
        group=int(module.groups),
    )
    if any(extra):
        y = g.node("Pad", [y, g.ints("pads", [0] * (n + 2) + [0, 0] + extra)])
    if late_bias:
        y = g.node("Add", [y, g.constant("bias", np.reshape(bias, (1, -1) + (1,) * n))])
    return y


def _pool_geometry(module, n):
    kernel = _tuple(module.kernel_size, n)
    stride = _tuple(module.stride if module.stride is not None else kernel, n)
    padding = _tuple(getattr(module, "padding", 0), n)
    geometry = {"kernel_shape": list(kernel), "strides": list(stride), "pads": list(padding) * 2}
    if getattr(module, "ceil_mode", False):
        geometry["ceil_mode"] = 1
    return geometry


@register_converter(MaxPool1d)
@register_converter(MaxPool2d)
def _maxpool(g, module, x, example):
    return g.node("MaxPool", [x], **_pool_geometry(module, np.ndim(example) - 2))


@register_converter(AvgPool1d)
@register_converter(AvgPool2d)
def _avgpool(g, module, x, example):
    include = int(bool(getattr(module, "count_include_pad", True)))
    return g.node("AveragePool", [x], count_include_pad=include, **_pool_geometry(module, np.ndim(example) - 2))


@register_converter(GlobalAvgPool2d)
def _global_avgpool(g, module, x, example):
    pooled = g.node("GlobalAveragePool", [x])
    return pooled if getattr(module, "keepdims", False) else g.node("Flatten", [pooled], axis=1)


def _adaptive(global_op, op, uneven):
    """Output 1x1: the global pooling; an input size divisible by the output:
    the plain pooling with kernel = stride = in / out (the same windows); other
    sizes: ``uneven(g, x, (h, w), (oh, ow))``, exact over PyTorch's bins."""

    def convert(g, module, x, example):
        if np.ndim(example) == 3:  # unbatched (C, H, W)
            return _batch_of_one(g, module, x, example, lambda i: 0, convert)
        h, w = np.shape(example)[2:]
        oh, ow = (size if o is None else o for o, size in zip(module.output_size, (h, w), strict=True))
        if (oh, ow) == (1, 1):
            return g.node(global_op, [x])
        if h % oh or w % ow:
            return uneven(g, x, (h, w), (oh, ow))
        kernel = [h // oh, w // ow]
        return g.node(op, [x], kernel_shape=kernel, strides=kernel)

    return convert


def _uneven_average(g, x, sizes, outputs):
    """``A_h @ x @ A_w^T`` with the averaging matrices of the bins (as the layer computes it)."""
    (h, w), (oh, ow) = sizes, outputs
    rows = g.node("MatMul", [g.constant("A_h", averaging_matrix(h, oh, g.dtype)), x])
    return g.node("MatMul", [rows, g.constant("A_w_t", averaging_matrix(w, ow, g.dtype).T)])


def _uneven_max(g, x, sizes, outputs):
    """The bins' positions gathered along H then W (``(out, K)`` each, a short
    bin repeating its last position), each followed by a max over ``K``."""
    (h, w), (oh, ow) = sizes, outputs
    rows = g.node("Gather", [x, g.ints("bins_h", bin_positions(h, oh))], axis=2)  # (N, C, oh, Kh, w)
    rows = g.reduce("ReduceMax", rows, [3], keepdims=0)
    cols = g.node("Gather", [rows, g.ints("bins_w", bin_positions(w, ow))], axis=3)  # (N, C, oh, ow, Kw)
    return g.reduce("ReduceMax", cols, [4], keepdims=0)


register_converter(AdaptiveAvgPool2d)(_adaptive("GlobalAveragePool", "AveragePool", _uneven_average))
register_converter(AdaptiveMaxPool2d)(_adaptive("GlobalMaxPool", "MaxPool", _uneven_max))


@register_converter(ZeroPad2d)
@register_converter(ReflectionPad2d)
@register_converter(ReplicationPad2d)
def _pad(g, module, x, example):
    left, right, top, bottom = module.padding
    lead = [0] * (np.ndim(example) - 2)
    pads = g.ints("pads", lead + [top, left] + lead + [bottom, right])
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}[module.mode]
    return g.node("Pad", [x, pads], mode=mode)


@register_converter(Upsample)
def _upsample(g, module, x, example):
    """Resize: nearest is PyTorch's ``floor(dst * in / out)`` ("asymmetric",
    floor); the linear modes are "align_corners" or "pytorch_half_pixel"."""
    n = np.ndim(example) - 2
    if module.mode == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:  # linear, bilinear
        transform = "align_corners" if module.align_corners else "pytorch_half_pixel"
        attrs = {"mode": "linear", "coordinate_transformation_mode": transform}
    if module.scale_factor is not None:
        scales = _tuple_float(module.scale_factor, n)
        return g.node("Resize", [x, "", g.constant("scales", [1.0, 1.0, *scales], np.float32)], **attrs)
    batch_channels = g.slice(g.node("Shape", [x]), [0], [2], [0])
    sizes = g.node("Concat", [batch_channels, g.ints("size", _tuple(module.size, n))], axis=0)
    return g.node("Resize", [x, "", "", sizes], **attrs)


def _tuple_float(value, n):
    return tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else (float(value),) * n


# ---------------------------------------------------------------- recurrent
# PyTorch stacks the gates' rows as LSTM i,f,g,o / GRU r,z,n; ONNX as i,o,f,c / z,r,h.
_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN_TANH": [0], "RNN_RELU": [0]}


def _onnx_gates(w, mode):
    """The rows of ``w (G * H, ...)`` reordered from PyTorch's gate order to ONNX's."""
    order = _GATE_ORDER[mode]
    return w.reshape(len(order), -1, *w.shape[1:])[order].reshape(w.shape)


def _recurrent_parts(x, example):
    """``(x, hx, lengths)`` names and examples of the forms RNN/LSTM/GRU take."""
    if not is_seq(x):
        return (x, None, None), (example, None, None)
    if len(x) == 3:
        return tuple(x), tuple(example)
    second = example[1]
    if second is not None and not is_seq(second) and np.asarray(second).dtype.kind in "iu":
        return (x[0], None, x[1]), (example[0], None, second)
    return (x[0], x[1], None), (example[0], second, None)


def _recurrent_node(g, module, inp, stacked, seq_lens, h0, c0, directions):
    """One ONNX RNN/LSTM/GRU node over ``inp (T, N, F)``; ``stacked(kind)`` gives
    PyTorch's ``kind`` parameter of every direction as ``(D, ...)``, or None.
    Returns the node's outputs ``[Y (T, D, N, H), Y_h, (Y_c)]``."""
    mode, H = module.mode, module.hidden_size
    op = {"LSTM": "LSTM", "GRU": "GRU"}.get(mode, "RNN")
    attrs = {"hidden_size": H, "direction": "bidirectional" if directions == 2 else "forward"}
    if op == "RNN":
        attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * directions
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))

    def gates(kind):
        return np.stack([_onnx_gates(w, mode) for w in stacked(kind)])

    inputs = [inp, g.constant("W", gates("weight_ih")), g.constant("R", gates("weight_hh"))]
    with_bias = stacked("bias_ih") is not None
    inputs.append(g.constant("B", np.concatenate([gates("bias_ih"), gates("bias_hh")], axis=1)) if with_bias else "")
    inputs += [seq_lens, "" if h0 is None else h0]
    if op == "LSTM":
        inputs.append("" if c0 is None else c0)
    return g.node(op, inputs, outputs=3 if op == "LSTM" else 2, **attrs)


@register_converter(RNN)
@register_converter(LSTM)
@register_converter(GRU)
def _recurrent(g, module, x, example):
    """One ONNX RNN/LSTM/GRU node per layer; a layer's ``Y (T, D, N, H)``
    becomes the next layer's ``(T, N, D * H)`` input."""
    from onnx import TensorProto

    if module.proj_size:
        g.refuse(module, "proj_size has no ONNX equivalent (ONNX's LSTM has no projection)")
    (seq, hx, lengths), (seq_example, _, _) = _recurrent_parts(x, example)
    if np.ndim(seq_example) == 2:  # unbatched (T, F), states (L * D, H): the sequence first, then the states
        batch = 0 if module.batch_first else 1
        return _batch_of_one(g, module, x, example, lambda i: batch if i == 0 else 1, _recurrent)
    D, lstm = module.num_directions, module.mode == "LSTM"
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    seq_lens = "" if lengths is None else g.node("Cast", [lengths], to=TensorProto.INT32)
    inp = g.transpose(seq, [1, 0, 2]) if module.batch_first else seq
    suffixes = ("", "_reverse")[:D]
    finals_h, finals_c = [], []
    for layer in range(module.num_layers):
        with g.within(f"l{layer}"):

            def stacked(kind, layer=layer):
                arrays = [getattr(module, f"{kind}_l{layer}{s}", None) for s in suffixes]
                return None if arrays[0] is None else arrays

            rows = ([layer * D], [(layer + 1) * D], [0])
            h0_l = None if h0 is None else g.slice(h0, *rows)
            c0_l = None if c0 is None else g.slice(c0, *rows)
            outs = _recurrent_node(g, module, inp, stacked, seq_lens, h0_l, c0_l, D)
            finals_h.append(outs[1])
            if lstm:
                finals_c.append(outs[2])
            inp = g.reshape(g.transpose(outs[0], [0, 2, 1, 3]), [0, 0, -1])  # (T, N, D * H)
    output = g.transpose(inp, [1, 0, 2]) if module.batch_first else inp
    if not module.return_state:
        return output
    h_n = finals_h[0] if len(finals_h) == 1 else g.node("Concat", finals_h, axis=0)
    if not lstm:
        return output, h_n
    c_n = finals_c[0] if len(finals_c) == 1 else g.node("Concat", finals_c, axis=0)
    return output, (h_n, c_n)


@register_converter(RNNCell)
@register_converter(LSTMCell)
@register_converter(GRUCell)
def _cell(g, module, x, example):
    """One step: the layer's operator on a sequence of one step, states ``(1, N, H)``."""
    if np.ndim(_leaves(example)[0]) == 1:  # unbatched (F,), states (H,)
        return _batch_of_one(g, module, x, example, lambda i: 0, _cell)
    (x, hx) = x if is_seq(x) else (x, None)
    lstm = module.mode == "LSTM"
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)

    def stacked(kind):
        w = getattr(module, kind)
        return None if w is None else [w]

    h0, c0 = (None if s is None else g.unsqueeze(s, [0]) for s in (h0, c0))
    outs = _recurrent_node(g, module, g.unsqueeze(x, [0]), stacked, "", h0, c0, 1)
    h = g.squeeze(outs[1], [0])
    return (h, g.squeeze(outs[2], [0])) if lstm else h


@register_converter(LastStep)
def _last_step(g, module, x, example):
    from onnx import TensorProto

    seq, seq_example, extra, extra_example = x, example, None, None
    if is_seq(x):
        (seq, extra), (seq_example, extra_example) = x, example
    F = np.shape(seq_example)[-1]
    if extra is not None and (is_seq(extra_example) or np.asarray(extra_example).dtype.kind == "f"):
        h_n, h_example = (extra[0], extra_example[0]) if is_seq(extra) else (extra, extra_example)
        D = F // np.shape(h_example)[-1]
        last = g.slice(h_n, [-D], [np.iinfo(np.int64).max], [0])  # the last layer's directions (D, N, H)
        return g.reshape(g.transpose(last, [1, 0, 2]), [0, -1])
    axis = 1 if module.batch_first else 0
    if extra is None:
        forward = g.node("Gather", [seq, g.ints("last", -1)], axis=axis)
    else:  # step lengths[n] - 1 of each row
        index = g.node("Sub", [g.node("Cast", [extra], to=TensorProto.INT64), g.ints("one", 1)])
        index = g.unsqueeze(index, [1, 2] if module.batch_first else [0, 2])
        index = g.node("Expand", [index, g.ints("features", [1, 1, F])])
        forward = g.squeeze(g.node("GatherElements", [seq, index], axis=axis), [axis])
    if not module.bidirectional:
        return forward
    half = F // 2
    reverse = g.node("Gather", [seq, g.ints("first", 0)], axis=axis)  # the reverse direction ends at step 0
    halves = [g.slice(forward, [0], [half], [1]), g.slice(reverse, [half], [F], [1])]
    return g.node("Concat", halves, axis=-1)


# ---------------------------------------------------------------- attention
_PROJ_NAMES = ("q_proj_weight", "k_proj_weight", "v_proj_weight")


def _projection(g, mha, x, j):
    """Projection ``j`` (0 query, 1 key, 2 value) of tokens ``x``."""
    E = mha.embed_dim
    w = getattr(mha, _PROJ_NAMES[j]) if mha.in_proj_weight is None else mha.in_proj_weight[j * E : (j + 1) * E]
    y = g.node("MatMul", [x, g.constant("W_t", w.T)])
    if mha.in_proj_bias is not None:
        y = g.node("Add", [y, g.constant("b", mha.in_proj_bias[j * E : (j + 1) * E])])
    return y


def _attention(g, mha, q, k, v, kpm=None, am=None, kpm_example=None, am_example=None, causal=False):
    """MultiheadAttention on tokens in its layout, as MatMul/Softmax: per head
    ``softmax(q k^T / sqrt(d) + mask) v``, heads joined, ``out_proj``. Boolean
    masks (True: ignore) become ``Where(mask, -inf, scores)``, float masks are
    added; ``causal`` hides key ``j > i`` from query ``i``; with a mask, a row
    whose keys are all masked gets zero weights."""
    H, d, E = mha.num_heads, mha.head_dim, mha.embed_dim
    tokens = (lambda t: t) if mha.batch_first else (lambda t: g.transpose(t, [1, 0, 2]))  # to (N, L, E)

    def heads(t, j, perm):
        return g.transpose(g.reshape(_projection(g, mha, tokens(t), j), [0, 0, H, d]), perm)

    qh, kt, vh = heads(q, 0, [0, 2, 1, 3]), heads(k, 1, [0, 2, 3, 1]), heads(v, 2, [0, 2, 1, 3])
    scale = g.constant("scale", 1.0 / math.sqrt(d))
    scores = g.node("Mul", [g.node("MatMul", [qh, kt]), scale])  # (N, H, L, S)
    blocked = None
    for mask, mask_example, shape in ((am, am_example, None), (kpm, kpm_example, "kpm")):
        if mask is None:
            continue
        if shape == "kpm":
            mask = g.unsqueeze(mask, [1, 2])  # (N, S) -> (N, 1, 1, S)
        elif np.ndim(mask_example) == 3:
            mask = g.reshape(mask, [-1, H, *np.shape(mask_example)[1:]])  # (N * H, L, S) -> (N, H, L, S)
        if np.asarray(mask_example).dtype == bool:
            blocked = mask if blocked is None else g.node("Or", [blocked, mask])
        else:
            scores = g.node("Add", [scores, mask])
    if causal:
        future = _future_keys(g, scores)
        blocked = future if blocked is None else g.node("Or", [blocked, future])
    if blocked is not None:
        scores = g.node("Where", [blocked, g.constant("minus_inf", -np.inf), scores])
    extra_k, extra_v = _extra_keys(g, mha, qh)  # add_bias_kv / add_zero_attn: never masked
    if extra_k is not None:
        scores = g.node("Concat", [scores, g.node("Mul", [g.node("MatMul", [qh, extra_k]), scale])], axis=-1)
        vh = g.node("Concat", [vh, extra_v], axis=2)
    if am is None and kpm is None and not causal:
        weights = g.node("Softmax", [scores], axis=-1)
    else:
        weights = _masked_softmax(g, scores, None)
    ctx = g.reshape(g.transpose(g.node("MatMul", [weights, vh]), [0, 2, 1, 3]), [0, 0, E])
    with g.within("out_proj"):
        out = _dense(g, mha.out_proj, ctx)
    return out if mha.batch_first else g.transpose(out, [1, 0, 2])


def _extra_keys(g, mha, qh):
    """The positions MultiheadAttention appends after the projections, as
    ``(keys (N, H, d, n), values (N, H, n, d))``: ``bias_k`` / ``bias_v``,
    then zeros with ``add_zero_attn``; ``(None, None)`` when there are none."""
    H, d = mha.num_heads, mha.head_dim
    keys, values = [], []
    if mha.bias_k is not None:
        keys.append(mha.bias_k.reshape(1, H, d, 1))
        values.append(mha.bias_v.reshape(1, H, 1, d))
    if mha.add_zero_attn:
        keys.append(np.zeros((1, H, d, 1)))
        values.append(np.zeros((1, H, 1, d)))
    if not keys:
        return None, None
    batch = g.node("Concat", [g.slice(g.node("Shape", [qh]), [0], [1], [0]), g.ints("ones", [1, 1, 1])], axis=0)
    k = g.node("Expand", [g.constant("extra_k", np.concatenate(keys, axis=3)), batch])
    v = g.node("Expand", [g.constant("extra_v", np.concatenate(values, axis=2)), batch])
    return k, v


def _future_keys(g, scores):
    """``(L, S)`` boolean: key ``j`` comes after query ``i`` (``j > i``), for the
    lengths of ``scores (N, H, L, S)`` at run time."""
    shape = g.node("Shape", [scores])

    def positions(axis):
        size = g.squeeze(g.slice(shape, [axis], [axis + 1], [0]), [0])
        return g.node("Range", [g.ints("zero", 0), size, g.ints("one", 1)])

    return g.node("Greater", [g.unsqueeze(positions(3), [0]), g.unsqueeze(positions(2), [1])])


def _masked_softmax(g, scores, blocked):
    """Softmax over the last axis where ``blocked`` entries (and -inf scores)
    get weight 0 and a row with nothing left gets zeros (not NaN)."""
    if blocked is not None:
        scores = g.node("Where", [blocked, g.constant("minus_inf", -np.inf), scores])
    top = g.reduce("ReduceMax", scores, [-1])
    top = g.node("Where", [g.node("IsInf", [top], detect_positive=0), g.constant("zero", 0.0), top])
    e = g.node("Exp", [g.node("Sub", [scores, top])])
    total = g.reduce("ReduceSum", e, [-1])
    total = g.node("Where", [g.node("Equal", [total, g.constant("zero", 0.0)]), g.constant("one", 1.0), total])
    return g.node("Div", [e, total])


@register_converter(MultiheadAttention)
def _multihead_attention(g, module, x, example):
    if not is_seq(x):
        x, example = (x, x, x), (example, example, example)
    if np.ndim(example[0]) == 2:  # unbatched (L, E): query, key, value get a batch axis, key_padding_mask too
        batch = 0 if module.batch_first else 1
        return _batch_of_one(g, module, x, example, lambda i: batch if i < 3 else (0 if i == 3 else None),
                             _multihead_attention)
    q, k, v, *masks = x
    masks_example = list(example[3:]) + [None] * (2 - len(masks))
    masks += [None] * (2 - len(masks))
    return _attention(g, module, q, k, v, masks[0], masks[1], masks_example[0], masks_example[1])


def _norm(g, norm, x, example, name):
    with g.within(name):
        return _layer_norm(g, norm, x, example)


def _feed_forward(g, layer, x, example):
    """``linear2(act(linear1(x)))`` (dropout is the identity)."""
    with g.within("linear1"):
        h = _dense(g, layer.linear1, x)
    hidden = np.zeros(np.shape(example)[:-1] + (layer.dim_feedforward,), g.dtype)
    h, _ = g.convert(layer.activation, h, hidden, position="activation")
    with g.within("linear2"):
        return _dense(g, layer.linear2, h)


@register_converter(TransformerEncoderLayer)
def _encoder_layer(g, module, x, example, causal=False):
    if np.ndim(example) == 2:  # unbatched (L, E)
        def batched(g, module, x, example):
            return _encoder_layer(g, module, x, example, causal)

        return _batch_of_one(g, module, x, example, lambda i: 0 if module.batch_first else 1, batched)

    def sa(t):
        with g.within("self_attn"):
            return _attention(g, module.self_attn, t, t, t, causal=causal)

    def add(a, b):
        return g.node("Add", [a, b])

    if module.norm_first:  # h = x + sa(norm1(x)); y = h + ff(norm2(h))
        h = add(x, sa(_norm(g, module.norm1, x, example, "norm1")))
        return add(h, _feed_forward(g, module, _norm(g, module.norm2, h, example, "norm2"), example))
    h = _norm(g, module.norm1, add(x, sa(x)), example, "norm1")  # h = norm1(x + sa(x)); y = norm2(h + ff(h))
    return _norm(g, module.norm2, add(h, _feed_forward(g, module, h, example)), example, "norm2")


@register_converter(TransformerDecoderLayer)
def _decoder_layer(g, module, x, example):
    (t, memory), (t_example, _) = x, example
    if np.ndim(t_example) == 2:  # unbatched (L, E) target and memory
        return _batch_of_one(g, module, x, example, lambda i: 0 if module.batch_first else 1, _decoder_layer)

    def attend(name, attn, a, b):
        with g.within(name):
            return _attention(g, attn, a, b, b)

    def norm(i, h):
        return _norm(g, getattr(module, f"norm{i}"), h, t_example, f"norm{i}")

    def add(a, b):
        return g.node("Add", [a, b])

    def sa(h):
        return attend("self_attn", module.self_attn, h, h)

    def ca(h):
        return attend("multihead_attn", module.multihead_attn, h, memory)

    def ff(h):
        return _feed_forward(g, module, h, t_example)

    if module.norm_first:  # h1 = t + sa(norm1(t)); h2 = h1 + ca(norm2(h1)); y = h2 + ff(norm3(h2))
        h1 = add(t, sa(norm(1, t)))
        h2 = add(h1, ca(norm(2, h1)))
        return add(h2, ff(norm(3, h2)))
    h1 = norm(1, add(t, sa(t)))  # post-norm: h1 = norm1(t + sa(t)); h2 = norm2(h1 + ca(h1)); y = norm3(h2 + ff(h2))
    h2 = norm(2, add(h1, ca(h1)))
    return norm(3, add(h2, ff(h2)))


@register_converter(TransformerEncoder)
def _encoder(g, module, x, example, causal=False):
    for i, layer in enumerate(module.layers.modules):
        if causal:  # the layer's own converter, told to mask the future
            if type(layer) is not TransformerEncoderLayer:
                g.refuse(module, f"a causal stack of {type(layer).__name__} layers")
            with g.within(f"layers.{i}"):
                x, example = _encoder_layer(g, layer, x, example, causal=True), layer.forward(example, is_causal=True)
        else:
            x, example = g.convert(layer, x, example, position=f"layers.{i}")
    return x if module.norm is None else g.convert(module.norm, x, example, position="norm")[0]


@register_converter(CausalTransformerEncoder)
def _causal_encoder(g, module, x, example):
    """``models.CausalTransformerEncoder``: the stack with every self-attention causal."""
    return _encoder(g, module, x, example, causal=True)


@register_converter(Mean)
def _mean(g, module, x, example):
    dims = module.dim if isinstance(module.dim, tuple) else (module.dim,)
    axes = sorted(d % np.ndim(example) for d in dims)
    return g.reduce("ReduceMean", x, axes, keepdims=int(module.keepdim))


@register_converter(TransformerDecoder)
def _decoder(g, module, x, example):
    (t, memory), (t_example, memory_example) = x, example
    for i, layer in enumerate(module.layers.modules):
        t, t_example = g.convert(layer, (t, memory), (t_example, memory_example), position=f"layers.{i}")
    return t if module.norm is None else g.convert(module.norm, t, t_example, position="norm")[0]


@register_converter(Transformer)
def _transformer(g, module, x, example):
    (src, tgt), (src_example, tgt_example) = x, example
    memory, memory_example = g.convert(module.encoder, src, src_example, position="encoder")
    return g.convert(module.decoder, (tgt, memory), (tgt_example, memory_example), position="decoder")[0]


@register_converter(SinusoidalPositionalEncoding)
@register_converter(LearnedPositionalEncoding)
def _positional_encoding(g, module, x, example):
    """``x + table[:L]``, ``L`` read from the input (any length up to ``max_len``)."""
    table = module.pe if isinstance(module, SinusoidalPositionalEncoding) else module.weight
    ndim = np.ndim(example)
    axis = 1 if module.batch_first and ndim == 3 else 0
    length = g.slice(g.node("Shape", [x]), [axis], [axis + 1], [0])
    rows = g.node("Slice", [g.constant("table", table), g.ints("start", [0]), length, g.ints("axes", [0])])
    if ndim == 3 and not module.batch_first:
        rows = g.unsqueeze(rows, [1])  # (L, 1, E) against (L, N, E)
    return g.node("Add", [x, rows])
