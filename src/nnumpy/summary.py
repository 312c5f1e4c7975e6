"""Shape inference and the model summary table (core: no training needed).

``output_shapes(model, input_shape)`` runs one forward of a zero batch in
evaluate mode and returns every module's output shape; ``summary`` prints
them as a torchinfo-like table with the parameter counts. ``Module.summary()``
calls ``summary``.

Example:
    >>> import nnumpy
    >>> net = nnumpy.Sequential(nnumpy.Linear(4, 3), nnumpy.ReLU())
    >>> output_shapes(net, (4,))["1"]
    (1, 3)
"""

import numpy as np

__all__ = ["summary", "output_shapes"]


def _shape_text(shape):
    return "(" + ", ".join(["N", *(str(s) for s in shape[1:])]) + ")"


def _trace(model, input_shape, dtype):
    """One forward of a zero batch of one sample in evaluate mode (modes restored)."""
    params = model.parameters()
    dtype = np.dtype(dtype or (params[0].dtype if params else np.float32))
    with model.preserved_modes():
        model.evaluate()
        model.forward(np.zeros((1, *input_shape), dtype=dtype))
    return dtype


def output_shapes(model, input_shape, dtype=None):
    """``{dotted_name: output shape}`` of every module of ``model`` for a batch of
    one sample of shape ``input_shape`` (no batch axis), from one forward of
    zeros in evaluate mode (modes are restored); the model itself is ``""``."""
    input_shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    _trace(model, input_shape, dtype)
    return {name: getattr(m.output, "shape", None) for name, m in model.named_modules()}


def summary(model, input_shape, print_fn=print, dtype=None):
    """A torchinfo-like table: every module with its output shape and
    parameter count, then the totals. ``input_shape`` is one sample's shape
    (no batch axis), e.g. ``(784,)`` or ``(1, 28, 28)``. Runs one forward of
    a zero batch in evaluate mode (modes are restored). Prints the table with
    ``print_fn`` (None: silent) and returns it. Float array attributes that
    are neither declared parameters nor buffers (``Module.undeclared_arrays``:
    a forgotten declaration) are named on a warning line at the end."""
    input_shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    dtype = _trace(model, input_shape, dtype)
    rows = [("Layer (type)", "Output shape", "Param #")]
    modules = [(n, m) for n, m in model.named_modules() if not (m is model and m.children())]
    width = max((len(n.split(".")[-1]) for n, _ in modules), default=1)
    for name, module in modules:
        depth = name.count(".")
        label = "  " * depth + f"{name.split('.')[-1] or '-':<{width}}  {repr(module).splitlines()[0].rstrip('(')}"
        shape = getattr(module.output, "shape", None)
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
        f"Input shape: {_shape_text((None, *input_shape))}, {dtype.name}",
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
