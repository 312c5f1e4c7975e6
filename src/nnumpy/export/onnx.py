"""Export nnumpy models to ONNX, the format every inference runtime reads.

``export(model, example_input, path)`` walks the model and asks one converter
per module class for the ONNX nodes that compute the same thing in evaluate
mode (moving statistics, no dropout)::

    Linear -> Gemm            Conv1d/Conv2d -> Conv      MaxPool* -> MaxPool
    AvgPool* -> AveragePool   GlobalAvgPool2d -> GlobalAveragePool (+ Flatten)
    BatchNorm1d/2d, BatchNormalization -> BatchNormalization
    ChannelwiseScaling -> Mul + Add              Dropout, Identity -> nothing
    ReLU, LeakyReLU, ELU, SoftPlus, Sigmoid, Tanh, SoftMax, LogSoftMax, Flatten
    Sequential -> its children in order

The batch dimension is dynamic (``dim_param "N"``); the other dimensions are
those of ``example_input``. Your own modules export once you register a
converter for them::

    @nnumpy.onnx.register_converter(Swish)
    def swish(g, module, x, example):
        return g.node("Mul", [x, g.node("Sigmoid", [x])])

A converter receives the graph builder ``g``, the module, the name of its
input tensor and an example input array (to read shapes); it adds nodes with
``g.node(op_type, inputs, **attributes)`` and constants with
``g.constant(hint, array)`` and returns the name of its output tensor. A
module whose class has no converter uses the converter of its nearest base
class only if it keeps that class's ``updateOutput`` (same computation).

Needs the ``onnx`` package (``pip install nnumpy[onnx]``); running the result
needs a runtime such as ``onnxruntime``.
"""

import numpy as np

from .._version import __version__
from ..containers import Sequential
from ..io import load_model, read_metadata
from ..layers.activation import ELU, Identity, LeakyReLU, LogSoftMax, ReLU, Sigmoid, SoftMax, SoftPlus, Tanh
from ..layers.conv import Conv1d, Conv2d
from ..layers.dropout import Dropout
from ..layers.linear import Linear
from ..layers.normalization import BatchNorm1d, BatchNorm2d, BatchNormalization, ChannelwiseScaling
from ..layers.pooling import AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d
from ..layers.reshape import Flatten
from ..module import Module

__all__ = ["export", "export_file", "register_converter", "converter_for", "GraphBuilder", "MIN_OPSET"]

MIN_OPSET = 13  # Softmax/LogSoftmax take one axis from opset 13 on (before: flattened to 2-D)

_CONVERTERS = {}


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

    A container's converter may return ``(output_name, example_output)`` to
    save running the module forward again.
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
    ``updateOutput`` the class inherits unchanged.
    """
    cls = type(module)
    if cls in _CONVERTERS:
        return _CONVERTERS[cls]
    for base in cls.__mro__[1:]:
        if base in _CONVERTERS:
            return _CONVERTERS[base] if cls.updateOutput is base.updateOutput else None
    return None


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

    def constant(self, hint, array, dtype=None):
        """Add ``array`` as an initialiser (in the model's dtype unless
        ``dtype`` is given) and return its name, e.g. ``"3.W"``."""
        from onnx import numpy_helper

        array = np.ascontiguousarray(np.asarray(array, dtype=self.dtype if dtype is None else dtype))
        base = ".".join(self._path + [hint]) if self._path else hint
        name = self._unique(base)
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def node(self, op_type, inputs, **attributes):
        """Add a node of the default domain and return its (single) output's name."""
        from onnx import helper

        output = self._unique(f"{self.prefix}/{op_type}_output")
        name = self._unique(f"{self.prefix}/{op_type}")
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attributes))
        return output

    def convert(self, module, x, example, position=None):
        """Convert ``module`` applied to tensor ``x`` (whose value looks like
        ``example``); returns ``(output_name, example_output)``."""
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
            if isinstance(result, tuple):
                return result
            try:
                return result, module.forward(example)
            except Exception as error:
                where = "".join(f"[{p}]" for p in self._path) or " (the model itself)"
                try:
                    wrapped = type(error)(f"nnumpy.onnx.export: tracing model{where} failed: {error}")
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
    dtype = np.asarray(example_input).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def export(model, example_input, path=None, opset=18, input_name="input", output_name="output", dtype=None):
    """Export ``model`` (evaluate-mode semantics) to ONNX and return the ``ModelProto``.

    Args:
        model: a Module (usually a ``Sequential``) whose every module has a converter.
        example_input: an array of the input's shape, e.g. ``x[:1]``; its first
            axis is exported as the dynamic batch dimension ``"N"``.
        path: file to write (``.onnx``), or None to only return the model.
        opset: ONNX opset of the default domain, ``>= 13`` (default 18).
        input_name, output_name: names of the graph's input and output.
        dtype: float dtype of the exported input, output and weights; None
            (default) keeps the model's (float32 unless converted with ``to``).
            A float64 model exported with ``dtype=np.float32`` runs everywhere
            (onnxruntime's CPU provider has no float64 Conv).

    The model is run once on ``example_input`` in evaluate mode to trace
    shapes; every module's ``training`` flag is restored afterwards.

    Raises:
        TypeError: a module has no converter (the message names it and its position).
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
    example = np.asarray(example_input, dtype=dtype)
    if example.ndim < 1 or example.shape[0] < 1:
        raise ValueError(
            f"nnumpy.onnx.export: example_input needs a batch axis with at least one sample, got shape {example.shape}"
        )

    modes = [(m, m.training) for _, m in model.named_modules()]
    model.evaluate()
    try:
        g = GraphBuilder(int(opset), dtype)
        g._names.update({input_name, output_name})
        out, out_example = g.convert(model, input_name, example)
    finally:
        for module, training in modes:
            module.training = training

    if out == input_name:  # the model computes the identity
        g.nodes.append(helper.make_node("Identity", [input_name], [output_name], name="/Identity"))
    else:
        for node in g.nodes:
            for i, name in enumerate(node.output):
                if name == out:
                    node.output[i] = output_name
            for i, name in enumerate(node.input):
                if name == out:
                    node.input[i] = output_name
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    out_shape = ["N", *np.shape(out_example)[1:]]
    graph = helper.make_graph(
        g.nodes,
        f"nnumpy_{type(model).__name__}",
        [helper.make_tensor_value_info(input_name, elem, ["N", *example.shape[1:]])],
        [helper.make_tensor_value_info(output_name, elem, out_shape)],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="nnumpy", doc_string=repr(model))
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    proto.producer_version = __version__
    if path is not None:
        onnx.save(proto, str(path))
    return proto


def export_file(checkpoint_or_model_path, out_path, opset=18):
    """Export a model file or training checkpoint (``nnumpy.save_model`` /
    ``save_checkpoint``) to ONNX at ``out_path``, tracing it with the input
    shape saved in the file. Returns the ``ModelProto``.

    Raises ValueError when the file records no input shape (save it with
    ``input_shape=...``, or call ``export`` with an example input).
    """
    input_shape = read_metadata(checkpoint_or_model_path).get("input_shape")
    if input_shape is None:
        raise ValueError(
            f"nnumpy.onnx.export_file: {checkpoint_or_model_path} records no input_shape; save the model with "
            "input_shape=... or call nnumpy.onnx.export(model, example_input, path)"
        )
    model = load_model(checkpoint_or_model_path)
    example = np.zeros((1, *(int(d) for d in input_shape)), dtype=_model_dtype(model, np.zeros(1, np.float32)))
    return export(model, example, out_path, opset=opset)


# ---------------------------------------------------------------- converters
@register_converter(Sequential)
def _sequential(g, module, x, example):
    for i, child in enumerate(module.modules):
        x, example = g.convert(child, x, example, position=i)
    return x, example


@register_converter(Identity)
@register_converter(Dropout)
def _identity(g, module, x, example):
    return x  # evaluate mode: nothing to compute


@register_converter(Linear)
def _linear(g, module, x, example):
    inputs = [x, g.constant("W", module.W)]
    if module.b is not None:
        inputs.append(g.constant("b", module.b))
    return g.node("Gemm", inputs, transB=1)


def _simple(op_type, **attributes_of):
    def convert(g, module, x, example):
        return g.node(op_type, [x], **{k: f(module) for k, f in attributes_of.items()})

    return convert


register_converter(ReLU)(_simple("Relu"))
register_converter(Sigmoid)(_simple("Sigmoid"))
register_converter(Tanh)(_simple("Tanh"))
register_converter(SoftPlus)(_simple("Softplus"))
register_converter(LeakyReLU)(_simple("LeakyRelu", alpha=lambda m: float(m.slope)))
register_converter(ELU)(_simple("Elu", alpha=lambda m: float(m.alpha)))
register_converter(SoftMax)(_simple("Softmax", axis=lambda m: m.dim))
register_converter(LogSoftMax)(_simple("LogSoftmax", axis=lambda m: m.dim))
register_converter(Flatten)(_simple("Flatten", axis=lambda m: 1))


def _channel_shape(example, n):
    """Shape of a per-channel constant broadcasting against ``example`` (channel axis 1)."""
    return (n,) + (1,) * (np.ndim(example) - 2)


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
    inputs = [x, g.constant("W", module.W)]
    if getattr(module, "b", None) is not None:
        inputs.append(g.constant("b", module.b))
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(module.W.shape[2:]),
        strides=list(_tuple(module.stride, n)),
        dilations=list(_tuple(module.dilation, n)),
        pads=_onnx_pads(module.pads),
        group=int(module.groups),
    )


def _pool_geometry(module, n):
    kernel = _tuple(module.kernel_size, n)
    stride = _tuple(module.stride if module.stride is not None else kernel, n)
    padding = _tuple(getattr(module, "padding", 0), n)
    return {"kernel_shape": list(kernel), "strides": list(stride), "pads": list(padding) * 2}


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
