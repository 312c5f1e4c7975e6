"""Shape inference and the model summary table (core: no training needed).

``output_shapes(model, input_shape)`` returns every module's output shape,
from the modules' ``output_shape`` (shape inference: nothing is computed);
where a module cannot tell (a user's layer without ``output_shape``), from
one forward of a zero batch in evaluate mode instead. ``summary`` prints them
as a torchinfo-like table with the parameter counts. ``Module.summary()``
calls ``summary``.

Example:
    >>> import nnumpy
    >>> net = nnumpy.Sequential(nnumpy.Linear(4, 3), nnumpy.ReLU())
    >>> output_shapes(net, (4,))["1"]
    (1, 3)
"""

import numpy as np

__all__ = ["summary", "output_shapes", "infer_shapes", "note_shape"]


def _is_structure(shape):
    """True for a structure of shapes (a tuple of shapes), False for one shape."""
    return isinstance(shape, (tuple, list)) and len(shape) > 0 and all(isinstance(s, (tuple, list)) for s in shape)


def _shape_text(shape):
    """``(N, 3)`` for one batched shape; ``((N, 3), (N, 4))`` for a structure of them."""
    if _is_structure(shape):
        return "(" + ", ".join(_shape_text(s) for s in shape) + ")"
    return "(" + ", ".join(["N", *(str(s) for s in shape[1:])]) + ")"


def _sample_shape(shape):
    """One sample's shape as a tuple of ints (``784`` or ``(1, 28, 28)``), or a
    structure of them for a model that takes a tuple (``((4,), (5,))``)."""
    if _is_structure(shape):
        return tuple(_sample_shape(s) for s in shape)
    return tuple(int(s) for s in np.atleast_1d(shape))


def _batch_of_one(shape):
    return tuple(_batch_of_one(s) for s in shape) if _is_structure(shape) else (1, *shape)


def _zeros(shape, dtype):
    return tuple(_zeros(s, dtype) for s in shape) if _is_structure(shape) else np.zeros(shape, dtype=dtype)


def _shape_of(value):
    """The shape (structure) of a forward's output; None for something else."""
    if isinstance(value, (tuple, list)):
        parts = tuple(_shape_of(v) for v in value)
        return None if any(p is None for p in parts) else parts
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


_recording = []  # the open shape recordings of infer_shapes: {id(module): output shape}


def note_shape(module, shape):
    """Record ``shape`` as ``module``'s output shape while ``infer_shapes`` runs
    (containers call it for each child's ``output_shape``); a no-op otherwise."""
    if _recording:
        _recording[-1].setdefault(id(module), shape)


def infer_shapes(model, input_shape):
    """``{id(module): output shape}`` of ``model`` and every module inside it for
    an input of ``input_shape`` (batch axis included), from ``output_shape``
    alone; None when some module cannot tell."""
    _recording.append({})
    try:
        with model.preserved_modes():
            model.evaluate()
            out = model.output_shape(input_shape)
    finally:
        shapes = _recording.pop()
    if out is None:
        return None
    shapes[id(model)] = out
    if any(id(m) not in shapes for _, m in model.named_modules()):
        return None
    return shapes


def _trace(model, input_shape, dtype):
    """``(dtype, {id(module): output shape})`` for a batch of one sample: by shape
    inference where every module reports its ``output_shape``, else from one
    forward of a zero batch in evaluate mode (modes restored)."""
    params = model.parameters()
    dtype = np.dtype(dtype or (params[0].dtype if params else np.float32))
    shapes = infer_shapes(model, _batch_of_one(input_shape))
    if shapes is not None:
        return dtype, shapes
    with model.preserved_modes():
        model.evaluate()
        model.forward(_zeros(_batch_of_one(input_shape), dtype))
    return dtype, {id(m): _shape_of(m.output) for _, m in model.named_modules()}


def output_shapes(model, input_shape, dtype=None):
    """``{dotted_name: output shape}`` of every module of ``model`` for a batch of
    one sample of shape ``input_shape`` (no batch axis); the model itself is
    ``""``. From the modules' ``output_shape``; if one cannot tell, from one
    forward of zeros in evaluate mode (modes are restored). A tuple output has
    a tuple of shapes; a model that takes a tuple takes a tuple of sample
    shapes (``((4,), (5,))``)."""
    input_shape = _sample_shape(input_shape)
    _, shapes = _trace(model, input_shape, dtype)
    return {name: shapes.get(id(m)) for name, m in model.named_modules()}


def summary(model, input_shape, print_fn=print, dtype=None):
    """A torchinfo-like table: every module with its output shape and
    parameter count, then the totals. ``input_shape`` is one sample's shape
    (no batch axis), e.g. ``(784,)`` or ``(1, 28, 28)``, or a tuple of them
    for a model that takes a tuple (a Graph of several inputs). The shapes come from
    ``output_shapes``. Prints the table with
    ``print_fn`` (None: silent) and returns it. Float array attributes that
    are neither declared parameters nor buffers (``Module.undeclared_arrays``:
    a forgotten declaration) are named on a warning line at the end."""
    input_shape = _sample_shape(input_shape)
    dtype, shapes = _trace(model, input_shape, dtype)
    rows = [("Layer (type)", "Output shape", "Param #")]
    modules = [(n, m) for n, m in model.named_modules() if not (m is model and m.children())]
    width = max((len(n.split(".")[-1]) for n, _ in modules), default=1)
    for name, module in modules:
        depth = name.count(".")
        label = "  " * depth + f"{name.split('.')[-1] or '-':<{width}}  {repr(module).splitlines()[0].rstrip('(')}"
        shape = shapes.get(id(module))
        count = sum(int(p.size) for p in module.parameters())
        rows.append((label, _shape_text(shape) if shape is not None else "-", f"{count:,}" if count else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = "=" * (sum(widths) + 4)
    fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
    total = model.num_parameters
    trainable = sum(int(p.size) for p, _ in model.parameter_pairs())
    nbytes = sum(int(p.nbytes) for p in model.parameters())
    lines = [line, fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
    lines += [
        f"Input shape: {_shape_text(_batch_of_one(input_shape))}, {dtype.name}",
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Parameter size: {nbytes / 2**20:.2f} MiB",
        line,
    ]
    undeclared = model.undeclared_arrays()
    if undeclared:  # a weight whose declaration was forgotten: not trained, not saved
        lines += [
            f"Warning: array attributes neither declared parameters nor buffers: {', '.join(undeclared)}",
            line,
        ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
