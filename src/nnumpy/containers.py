"""Containers: modules made of other modules, and torch7's table modules.

``Sequential`` chains modules; ``Residual`` adds a shortcut around a body;
``ConcatTable``, ``ParallelTable`` and ``Concat`` run branches side by side;
``CAddTable``, ``CSubTable``, ``CMulTable``, ``JoinTable``, ``SplitTable`` and
``SelectTable`` combine, split and pick the parts of a tuple. The tables are
torch7's (``nn/ConcatTable.lua`` ...), 0-based where torch7 counted from 1,
and a ``dim`` is an axis of the whole array, batch axis included, as in
PyTorch's ``torch.cat(tensors, dim)``. ``nnumpy.Graph`` (graph.py) wires
modules into any DAG.

Tuples: a table's input or output is a tuple of arrays (a list is accepted
too); ``gradOutput`` has the output's structure, ``gradInput`` the input's,
and None in a gradient means zeros (see ``nnumpy._structure``). Containers
pass None on, skip a child whose whole gradient is None, and return None for
an input that no gradient reached.

Shared modules: a module may sit at several places of one container
(``Sequential(m, m)``, tied weights). Each use's forward leaves its own state
for its own backward, and the parameter gradients add up over the uses; the
module counts once in ``parameters()`` and ``state_dict()``.
"""

import numpy as np

from ._checks import check_float_array, shape_probe
from ._structure import add, all_none, describe, fill_none, float_like, is_seq
from .anomaly import NonFiniteError, anomaly_mode, check_finite
from .backend import get_array_module
from .module import Module, unique_modules
from .summary import note_shape

__all__ = [
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
]


def _rethrow(error, where, child):
    """Re-raise ``error`` saying where it happened (``"Sequential child (2)"``)
    and in which child (torch7's ``rethrowErrors``), keeping the exception type."""
    # the class alone when the message already names the layer by its repr
    name = type(child).__name__ if child.children() or str(error).startswith(repr(child)) else repr(child)
    message = f"{where} {name}: {error}"
    try:
        wrapped = type(error)(message)
    except Exception:  # an exception type with an unusual constructor: re-raise it as is
        wrapped = None
    if wrapped is None:
        raise error
    raise wrapped from error


def _child_backward(child, input, gradOutput, need_input_grad):
    """Back-propagate through one child, honouring a user's own ``backward``."""
    if type(child).backward is Module.backward:
        return child.backward_pass(input, gradOutput, need_input_grad)
    if not child._accepts_none_grad:
        gradOutput = fill_none(gradOutput, child.output)
    return child.backward(input, float_like(gradOutput, child.output))


def _trainable(module):
    return bool(module.parameter_pairs())


def _is_shape(x):
    """True for one array's shape (a tuple of ints), False for a structure of shapes."""
    return isinstance(x, (tuple, list)) and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in x)


def _shape_of(x):
    """The shape structure of an input (``(2, 4)``, ``((2, 4), (2, 3))``); None when
    part of it is neither an array nor a structure (nothing to pre-check)."""
    if is_seq(x):
        parts = tuple(_shape_of(v) for v in x)
        return None if any(p is None for p in parts) else parts
    shape = getattr(x, "shape", None)
    return None if shape is None or not hasattr(x, "dtype") else tuple(int(s) for s in shape)


def _probe(shape):
    """Zero-memory arrays of the shapes of ``shape`` (a shape or a structure), for the
    tables' own checks."""
    return shape_probe(shape) if _is_shape(shape) else tuple(_probe(s) for s in shape)


# attributes no use of a shared module restores: its modes and the protocol's bookkeeping
_SHARED_BY_ALL_USES = frozenset(
    {"training", "_frozen", "_init_args", "_kept_for_acc", "skip_input_grad"}
)


def _kept_names(module):
    """What every use of ``module`` shares: its parameters, gradients, buffers and modes."""
    cls = type(module)
    return {n for pair in cls._parameters for n in pair} | set(cls._buffers) | _SHARED_BY_ALL_USES


def _own_arrays(module):
    """ids of the arrays a leaf reports as its parameters and gradients (a seed-dialect
    module may keep them under names it does not declare)."""
    if module.children():
        return set()
    try:
        return {id(a) for a in [*module.getParameters(), *module.getGradParameters()]}
    except Exception:  # a seed-003 module before its first backward has no gradients yet
        return set()


def _copy_state_arrays(module):
    """Rebind every array that ``module``'s last forward left (its state, and any
    buffer it would write again in place) to a copy; returns their names. The
    use that ran before keeps the originals."""
    keep, own = _kept_names(module) | {"gradInput"}, _own_arrays(module)
    names = []
    for name, value in list(module.__dict__.items()):
        if name not in keep and hasattr(value, "shape") and hasattr(value, "copy") and id(value) not in own:
            module.__dict__[name] = value.copy()
            names.append(name)
    return names


class _Uses:
    """The state each use of a shared module leaves for its own backward.

    A module keeps what its backward needs (``output``, a mask, the columns of
    a convolution) in its attributes, so when a container runs one module at
    several places each forward overwrites the state of the use before. For
    every module that more than one slot of the container holds (directly or
    inside), this records the attributes each use's forward left and puts
    them back before that use's backward. Before a further use runs, the
    arrays the module holds are rebound to copies, so a module that reuses a
    buffer of its previous forward in place (BatchNorm's centred input)
    writes into the copy. Parameters, gradients and buffers are shared by all
    uses and never touched, so gradients accumulate over the uses.
    """

    def __init__(self, slots):
        self._records = {}
        self._saved = {}
        self._ran = set()  # modules an earlier slot of this forward ran
        self._copied = {}  # module -> names of arrays rebound to copies
        counts, trees = {}, []
        for slot in slots:
            tree = [m for _, m in slot.named_modules()] if slot.children() else [slot]
            trees.append(tree)
            for m in tree:
                counts[id(m)] = counts.get(id(m), 0) + 1
        shared = len(counts) < sum(map(len, trees))
        self._tracked = [[m for m in tree if counts[id(m)] > 1] if shared else [] for tree in trees]

    def before(self, i):
        if not self._tracked[i]:
            return
        for m in self._tracked[i]:
            if id(m) in self._ran:
                self._copied.setdefault(id(m), set()).update(_copy_state_arrays(m))
        self._records[i] = [(m, dict(m.__dict__)) for m in self._tracked[i]]

    def after(self, i):
        if i in self._records:
            self._records[i] = [(m, old, dict(m.__dict__)) for m, old in self._records[i]]
            self._ran.update(id(m) for m in self._tracked[i])

    def finish(self):
        """Called after the last slot's forward: keep, per use, the attributes
        that any use rebound or that were copied between uses."""
        rebound = {}
        for records in self._records.values():
            for m, old, new in records:
                keep = _kept_names(m)
                names = rebound.setdefault(id(m), set(self._copied.get(id(m), ())))
                names.update(k for k, v in new.items() if k not in keep and (k not in old or old[k] is not v))
        self._saved = {
            i: [(m, {k: new[k] for k in rebound[id(m)] if k in new}) for m, _, new in records]
            for i, records in self._records.items()
        }
        self._records = {}
        self._ran = set()
        self._copied = {}

    def restore(self, i):
        for m, state in self._saved.get(i, ()):
            m.__dict__.update(state)


class _Composite(Module):
    """What every container shares: parameters per leaf, None passed on."""

    _accepts_none_grad = True
    _uses = None

    def leaves(self):
        # an empty container has no leaves (not itself: that recursed forever)
        return unique_modules(leaf for _, child in self.children() for leaf in child.leaves())

    def getParameters(self):
        return [leaf.getParameters() for leaf in self.leaves()]

    def getGradParameters(self):
        return [leaf.getGradParameters() for leaf in self.leaves()]

    def _run(self, i, child, input, where):
        """``child.forward(input)`` as use ``i`` of this container, errors naming ``where``."""
        self._uses.before(i)
        try:
            output = child.forward(input)
            if anomaly_mode.active:  # nnumpy.detect_anomaly(): also a child with its own forward
                check_finite(child, output, "forward")
        except NonFiniteError as error:  # named by its path in the outermost container
            error.set_owner(self)
            raise
        except Exception as error:
            _rethrow(error, where, child)
        self._uses.after(i)
        return output

    def _run_backward(self, i, child, input, gradOutput, need_input_grad, where):
        self._uses.restore(i)
        try:
            grad = _child_backward(child, input, gradOutput, need_input_grad)
            if anomaly_mode.active:
                check_finite(child, grad, "backward")
            return grad
        except NonFiniteError as error:
            error.set_owner(self)
            raise
        except Exception as error:
            _rethrow(error, where, child)

    def _check_shapes(self, input):
        """The shape pre-check: this container's ``output_shape`` before any
        child runs, so a shape error in any child (or between the branches)
        leaves every child untouched (an earlier BatchNorm's running
        statistics). Done once per input shape, mode and list of children; it stops
        at a child that cannot tell."""
        shape = _shape_of(input)
        if shape is None:
            return
        key = (shape, self.training, tuple(id(m) for _, m in self.children()))  # checks differ by mode
        checked = self.__dict__.setdefault("_checked_shapes", set())
        if key in checked:
            return
        self.output_shape(shape)
        if len(checked) >= 64:  # many shapes (variable sequence lengths): forget the old ones
            checked.clear()
        checked.add(key)

    def _child_shape(self, child, shape, where):
        """``child.output_shape(shape)`` with errors named as ``forward`` names them
        (``Sequential child (2) Linear(...)``); None when the child cannot tell."""
        try:
            out = child.output_shape(shape)
        except Exception as error:
            _rethrow(error, where, child)
        note_shape(child, out)
        return out

    def _repr_lines(self):
        extra = [self.extra_repr()] if self.extra_repr() else []
        return extra + [f"({name}): " + repr(m) for name, m in self.children()]

    def __repr__(self):
        lines = self._repr_lines()
        if not lines:
            return f"{type(self).__name__}()"
        return type(self).__name__ + "(\n" + "\n".join("  " + line.replace("\n", "\n  ") for line in lines) + "\n)"


class _Container(_Composite):
    """A container holding a list of modules: ``add``, indexing, ``len``, iteration."""

    _children_from_config = True  # its children are the modules it was given (model files)

    def __init__(self, *modules):
        super().__init__()
        self.modules = []
        for module in modules:
            self.add(module)

    def add(self, module):
        """Append ``module``; returns self so calls can be chained."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add: expected a Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    def children(self):
        return list(enumerate(self.modules))

    def _where(self, i):
        return f"{type(self).__name__} branch ({i})"

    def __getitem__(self, index):
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def _require_modules(self):
        if not self.modules:
            raise RuntimeError(f"{type(self).__name__}: has no modules (add some with .add(module))")


class Sequential(_Container):
    """Applies its modules one after another: ``y = m[n-1](...m[1](m[0](x)))``.

    Build it as ``Sequential(m0, m1, ...)`` or ``Sequential()`` then ``.add(m)``.
    Indexing, slicing, ``len`` and iteration work as on a list. Tuples pass
    through: a module may hand a tuple to the next (``ConcatTable`` then
    ``CAddTable``), and the same module may appear twice.

    Backward gives each child the input it saw in forward. When
    ``skip_input_grad`` is True (``fit`` sets it), backward stops at the first
    child with trainable parameters: it computes every parameter gradient but
    not the gradient w.r.t. the network input (returns None), which saves a
    quarter of an MLP's backward FLOPs, as PyTorch does for inputs that do not
    require grad. A child that returns None as its gradInput (an integer
    input) ends the backward there.

    Shape:
        Input: whatever the first module takes. Output: what the last returns.

    Example:
        >>> import numpy as np
        >>> from nnumpy import Sequential, Linear, ReLU
        >>> net = Sequential(Linear(4, 3), ReLU())
        >>> net.add(Linear(3, 2))
        Sequential(
          (0): Linear(4 -> 3)
          (1): ReLU()
          (2): Linear(3 -> 2)
        )
        >>> net.forward(np.zeros((5, 4), np.float32)).shape
        (5, 2)
    """

    def __init__(self, *modules):
        self.skip_input_grad = False
        self._inputs = None
        super().__init__(*modules)

    def add(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.add: expected a Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    @property
    def layers(self):
        """The children as a tuple (seed 003's ``Sequential.layers``); ``modules`` is the list."""
        return tuple(self.modules)

    def _where(self, i):
        return f"Sequential child ({i})"

    def output_shape(self, input_shape):
        """The last module's output shape, each module's from the one before; None
        past a module that cannot tell."""
        shape = input_shape
        for i, child in enumerate(self.modules):
            shape = self._child_shape(child, shape, self._where(i))
            if shape is None:
                return None
        return shape

    def updateOutput(self, input):
        self._check_shapes(input)
        self._uses = _Uses(self.modules)
        inputs = []
        x = input
        for i, child in enumerate(self.modules):
            inputs.append(x)
            x = self._run(i, child, x, self._where(i))
        self._uses.finish()
        self._inputs = inputs
        self.output = x
        return x

    def backward(self, input, gradOutput):
        return self._backward(input, gradOutput, need_input_grad=not self.skip_input_grad)

    def _backward(self, input, gradOutput, need_input_grad):
        if self._inputs is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        stop = 0
        if not need_input_grad:
            # children before the first trainable one need no gradient at all (looked for in order, up to it)
            stop = next((i for i, m in enumerate(self.modules) if _trainable(m)), len(self.modules))
        grad = gradOutput
        for i in range(len(self.modules) - 1, stop - 1, -1):
            if all_none(grad):  # zeros from here on (or an integer input below): nothing to do
                grad = None
                break
            need = need_input_grad or i > stop
            grad = self._run_backward(i, self.modules[i], self._inputs[i], grad, need, self._where(i))
        self.gradInput = grad if need_input_grad else None
        return self.gradInput

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.modules[index])
        return self.modules[index]


class Residual(_Composite):
    """``y = body(x) + shortcut(x)``; the shortcut is the identity by default.

    ResNet's block (He et al., 2016) without its last activation: a basic
    block is ``Sequential(Residual(body, shortcut), ReLU())``. The body and
    the shortcut must give outputs of the same shape (or structure).

    Args:
        body: a Module.
        shortcut: a Module (a 1x1 convolution and BatchNorm where the shape
            changes), or None for ``x`` itself.

    Shape:
        Input: what ``body`` takes. Output: what ``body`` returns.

    Backward: ``gradInput = body.backward(x, g) + shortcut.backward(x, g)``
    (``+ g`` for the identity).

    Example:
        >>> import numpy as np
        >>> from nnumpy import Residual, Sequential, Linear, ReLU
        >>> block = Residual(Sequential(Linear(4, 4), ReLU(), Linear(4, 4)))
        >>> block.forward(np.ones((2, 4), np.float32)).shape
        (2, 4)
    """

    _children_from_config = True

    def __init__(self, body, shortcut=None):
        super().__init__()
        for what, m in (("body", body), ("shortcut", shortcut)):
            if not (isinstance(m, Module) or (what == "shortcut" and m is None)):
                raise TypeError(f"Residual: expected {what} to be a Module, got {type(m).__name__}")
        self.body = body
        self.shortcut = shortcut

    def children(self):
        return [("body", self.body)] + ([("shortcut", self.shortcut)] if self.shortcut is not None else [])

    def updateOutput(self, input):
        self._check_shapes(input)
        self._uses = _Uses([m for _, m in self.children()])
        y = self._run(0, self.body, input, "Residual body")
        s = input if self.shortcut is None else self._run(1, self.shortcut, input, "Residual shortcut")
        self._uses.finish()
        if not _same_shapes(y, s):
            raise ValueError(
                f"Residual: the body's output {describe(y)} and the shortcut's {describe(s)} must have the same shape"
            )
        self.output = add(y, s)
        return self.output

    def output_shape(self, input_shape):
        """The body's output shape, which must be the shortcut's (or the input's)."""
        y = self._child_shape(self.body, input_shape, "Residual body")
        s = input_shape if self.shortcut is None else self._child_shape(self.shortcut, input_shape, "Residual shortcut")
        if y is None or s is None:
            return None
        if y != s:
            raise ValueError(
                f"Residual: the body's output {describe(_probe(y))} and the shortcut's {describe(_probe(s))} "
                "must have the same shape"
            )
        return y

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        if all_none(gradOutput):
            self.gradInput = None
            return None
        grad = self._run_backward(0, self.body, input, gradOutput, need_input_grad, "Residual body")
        if self.shortcut is None:
            g = gradOutput
        else:
            g = self._run_backward(1, self.shortcut, input, gradOutput, need_input_grad, "Residual shortcut")
        self.gradInput = add(grad, g) if need_input_grad else None
        return self.gradInput

    def _repr_lines(self):
        return super()._repr_lines() + (["(shortcut): identity"] if self.shortcut is None else [])


def _same_shapes(a, b):
    if is_seq(a) or is_seq(b):
        return is_seq(a) and is_seq(b) and len(a) == len(b) and all(map(_same_shapes, a, b))
    return getattr(a, "shape", None) == getattr(b, "shape", None)


class ConcatTable(_Container):
    """Applies every module to the same input: ``y = (m[0](x), m[1](x), ...)``.

    torch7's ``ConcatTable``: a tuple out, one entry per module.

    Args:
        *modules: the branches (more with ``.add(m)``).

    Shape:
        Input: what every branch takes. Output: a tuple of the branches' outputs.

    Backward: ``gradInput = sum_i m[i].backward(x, g[i])`` (branches whose
    ``g[i]`` is None are skipped).

    Example:
        >>> import numpy as np
        >>> from nnumpy import ConcatTable, Linear, Identity
        >>> a, b = ConcatTable(Linear(4, 3), Identity()).forward(np.ones((2, 4), np.float32))
        >>> a.shape, b.shape
        ((2, 3), (2, 4))
    """

    def output_shape(self, input_shape):
        """The tuple of the branches' output shapes."""
        self._require_modules()
        shapes = tuple(self._child_shape(m, input_shape, self._where(i)) for i, m in enumerate(self.modules))
        return None if any(s is None for s in shapes) else shapes

    def updateOutput(self, input):
        self._require_modules()
        self._check_shapes(input)
        self._uses = _Uses(self.modules)
        outputs = tuple(self._run(i, m, input, self._where(i)) for i, m in enumerate(self.modules))
        self._uses.finish()
        self.output = outputs
        return outputs

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        grad = None
        if not all_none(gradOutput):
            for i in range(len(self.modules) - 1, -1, -1):
                if not all_none(gradOutput[i]):
                    gi = self._run_backward(i, self.modules[i], input, gradOutput[i], need_input_grad, self._where(i))
                    grad = add(gi, grad) if need_input_grad else None
        self.gradInput = grad
        return grad


class ParallelTable(_Container):
    """Applies module ``i`` to input ``i``: ``y = (m[0](x[0]), m[1](x[1]), ...)``.

    torch7's ``ParallelTable``.

    Args:
        *modules: one module per input.

    Shape:
        Input: a tuple with one entry per module. Output: a tuple of the same length.

    Backward: ``gradInput[i] = m[i].backward(x[i], g[i])``.

    Example:
        >>> import numpy as np
        >>> from nnumpy import ParallelTable, Linear, Tanh
        >>> x = (np.ones((2, 4), np.float32), np.ones((2, 5), np.float32))
        >>> [y.shape for y in ParallelTable(Linear(4, 3), Tanh()).forward(x)]
        [(2, 3), (2, 5)]
    """

    def output_shape(self, input_shape):
        """Branch ``i``'s output shape for input shape ``i``, as a tuple."""
        self._require_modules()
        if _is_shape(input_shape) or len(input_shape) != len(self.modules):
            return None  # forward words the error (it describes the arrays)
        shapes = tuple(self._child_shape(m, s, self._where(i)) for i, (m, s) in enumerate(zip(self.modules, input_shape,
                                                                                           strict=True)))
        return None if any(s is None for s in shapes) else shapes

    def updateOutput(self, input):
        self._require_modules()
        if not is_seq(input):
            raise TypeError(
                f"ParallelTable: expected a tuple of {len(self.modules)} inputs (one per module), got {describe(input)}"
            )
        if len(input) != len(self.modules):
            raise ValueError(
                f"ParallelTable: expected a tuple of {len(self.modules)} inputs (one per module), "
                f"got {len(input)}: {describe(input)}"
            )
        self._check_shapes(input)
        self._uses = _Uses(self.modules)
        outputs = tuple(
            self._run(i, m, x, self._where(i)) for i, (m, x) in enumerate(zip(self.modules, input, strict=True))
        )
        self._uses.finish()
        self.output = outputs
        return outputs

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        grads = [None] * len(self.modules)
        if not all_none(gradOutput):
            for i in range(len(self.modules) - 1, -1, -1):
                if not all_none(gradOutput[i]):
                    m = self.modules[i]
                    grads[i] = self._run_backward(i, m, input[i], gradOutput[i], need_input_grad, self._where(i))
        self.gradInput = tuple(grads) if need_input_grad else None
        return self.gradInput


class Concat(_Container):
    """Runs every branch on the same input and joins the outputs along ``dim``:
    ``y = concatenate([m[0](x), m[1](x), ...], axis=dim)``.

    torch7's ``Concat`` (an Inception block's branches; ``ConcatTable`` then
    ``JoinTable(dim)`` in one module).

    Args:
        dim: the axis to join along, batch axis included (1: channels of
            ``(N, C, H, W)``); negative counts from the end. First, or as the
            keyword ``Concat(*branches, dim=1)``.
        *modules: the branches.

    Shape:
        Input: what every branch takes. Output: the branches' outputs, which
        must agree except along ``dim``, joined along it.

    Backward: ``gradInput = sum_i m[i].backward(x, g[slice_i])``, ``slice_i``
    branch ``i``'s part of ``dim``.

    Example:
        >>> import numpy as np
        >>> from nnumpy import Concat, Linear
        >>> Concat(1, Linear(4, 3), Linear(4, 2)).forward(np.ones((5, 4), np.float32)).shape
        (5, 5)
    """

    def __init__(self, *args, dim=None):
        if dim is None:
            if not args or isinstance(args[0], Module):
                raise TypeError("Concat: the first argument is dim, the axis to join along: Concat(1, branch, ...)")
            dim, args = args[0], args[1:]
        self.dim = _check_dim("Concat", dim)
        super().__init__(*args)
        self._init_args = (tuple(args), {"dim": self.dim})  # model files rebuild it as Concat(*branches, dim=dim)

    def extra_repr(self):
        return f"dim={self.dim}"

    def output_shape(self, input_shape):
        """The branches' output shapes joined along ``dim``."""
        self._require_modules()
        shapes = [self._child_shape(m, input_shape, self._where(i)) for i, m in enumerate(self.modules)]
        if any(s is None or not _is_shape(s) for s in shapes):
            return None
        axis = _join_axis(self, [shape_probe(s) for s in shapes], "branch outputs")
        return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :])

    def updateOutput(self, input):
        self._require_modules()
        self._check_shapes(input)
        self._uses = _Uses(self.modules)
        outputs = [self._run(i, m, input, self._where(i)) for i, m in enumerate(self.modules)]
        self._uses.finish()
        axis = _join_axis(self, outputs, "branch outputs")
        self._sizes = [y.shape[axis] for y in outputs]
        self.output = get_array_module(*outputs).concatenate(outputs, axis=axis)
        return self.output

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        grad = None
        if gradOutput is not None:
            parts = _split(gradOutput, self._sizes, self.dim % gradOutput.ndim)
            for i in range(len(self.modules) - 1, -1, -1):
                gi = self._run_backward(i, self.modules[i], input, parts[i], need_input_grad, self._where(i))
                grad = add(gi, grad) if need_input_grad else None
        self.gradInput = grad
        return grad


# ---------------------------------------------------------------- tables without parameters
def _check_dim(owner, dim):
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{owner}: dim must be an integer axis, got {dim!r}")
    return dim


def _check_table(owner, input, exactly=None, floats=True):
    """Validate a table module's input: a tuple of (float) arrays, of length ``exactly``."""
    if not is_seq(input):
        raise TypeError(f"{owner!r}: expected a tuple of arrays, got {describe(input)}")
    if exactly is not None and len(input) != exactly:
        raise ValueError(f"{owner!r}: expected a tuple of {exactly} arrays, got {len(input)}: {describe(input)}")
    if not input:
        raise ValueError(f"{owner!r}: expected a tuple of arrays, got an empty one")
    for i, x in enumerate(input):
        if floats:
            check_float_array(owner, x, what=f"input[{i}]")
    dtypes = {x.dtype for x in input}
    if len(dtypes) > 1:
        raise TypeError(f"{owner!r}: expected arrays of one dtype, got {', '.join(str(x.dtype) for x in input)}")


def _broadcast_shape(owner, input):
    try:
        return np.broadcast_shapes(*(x.shape for x in input))  # shapes only: any backend
    except ValueError:
        raise ValueError(
            f"{owner!r}: input shapes {', '.join(str(tuple(x.shape)) for x in input)} do not broadcast together"
        ) from None


def _table_shape(owner, input_shape, exactly=None):
    """A table's output shape: its input shapes checked as ``forward`` checks the arrays, broadcast."""
    if _is_shape(input_shape):
        raise TypeError(f"{owner!r}: expected a tuple of arrays, got {describe(shape_probe(input_shape))}")
    probes = _probe(input_shape)
    _check_table(owner, probes, exactly=exactly)
    return tuple(int(s) for s in _broadcast_shape(owner, probes))


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape`` (the gradient of broadcasting an array of that shape)."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class CAddTable(Module):
    """``y = x[0] + x[1] + ... + x[n-1]`` (torch7's ``CAddTable``).

    The inputs must have one dtype; their shapes may broadcast (NumPy's rules,
    as PyTorch's ``+``), which torch7 did not allow.

    Shape:
        Input: a tuple of arrays. Output: their broadcast shape.

    Backward: ``gradInput[i] = g`` (summed over the axes ``x[i]`` was
    broadcast along); the entries may be the very same array.

    Example:
        >>> import numpy as np
        >>> CAddTable().forward((np.ones(2), np.full(2, 2.0))).tolist()
        [3.0, 3.0]
    """

    def output_shape(self, input_shape):
        """The broadcast shape of the inputs' shapes."""
        return _table_shape(self, input_shape)

    def updateOutput(self, input):
        _check_table(self, input)
        shape = _broadcast_shape(self, input)
        out = input[0] + input[1] if len(input) > 1 else input[0].copy()
        for x in input[2:]:
            if out.shape == shape:
                out += x
            else:
                out = out + x
        self.output = out
        return out

    def updateGradInput(self, input, gradOutput):
        self.gradInput = tuple(_unbroadcast(gradOutput, x.shape) for x in input)
        return self.gradInput


class CSubTable(Module):
    """``y = x[0] - x[1]`` (torch7's ``CSubTable``); shapes may broadcast.

    Shape:
        Input: a tuple of two arrays. Output: their broadcast shape.

    Backward: ``gradInput = (g, -g)`` (summed over broadcast axes).

    Example:
        >>> import numpy as np
        >>> CSubTable().forward((np.ones(2), np.full(2, 3.0))).tolist()
        [-2.0, -2.0]
    """

    def output_shape(self, input_shape):
        """The broadcast shape of the two inputs' shapes."""
        return _table_shape(self, input_shape, exactly=2)

    def updateOutput(self, input):
        _check_table(self, input, exactly=2)
        _broadcast_shape(self, input)
        self.output = input[0] - input[1]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = (_unbroadcast(gradOutput, input[0].shape), _unbroadcast(-gradOutput, input[1].shape))
        return self.gradInput


class CMulTable(Module):
    """``y = x[0] * x[1] * ... * x[n-1]``, element-wise (torch7's ``CMulTable``);
    shapes may broadcast.

    Shape:
        Input: a tuple of arrays. Output: their broadcast shape.

    Backward: ``gradInput[i] = g * prod_{j != i} x[j]`` (summed over
    broadcast axes); computed from the other factors, so zeros in the input
    are fine.

    Example:
        >>> import numpy as np
        >>> CMulTable().forward((np.full(2, 2.0), np.full(2, 3.0))).tolist()
        [6.0, 6.0]
    """

    def output_shape(self, input_shape):
        """The broadcast shape of the inputs' shapes."""
        return _table_shape(self, input_shape)

    def updateOutput(self, input):
        _check_table(self, input)
        _broadcast_shape(self, input)
        out = input[0] * input[1] if len(input) > 1 else input[0].copy()
        for x in input[2:]:
            out = out * x
        self.output = out
        return out

    def updateGradInput(self, input, gradOutput):
        grads = []
        for i, x in enumerate(input):
            g = gradOutput
            for j, other in enumerate(input):
                if j != i:
                    g = g * other
            grads.append(_unbroadcast(g, x.shape))
        self.gradInput = tuple(grads)
        return self.gradInput


def _join_axis(owner, arrays, what):
    """The axis ``owner.dim`` of ``arrays``, checked: same rank, dtype and shape except along it."""
    ndim = arrays[0].ndim
    name = owner if isinstance(owner, str) else f"{type(owner).__name__}(dim={owner.dim})"
    shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
    if any(a.ndim != ndim for a in arrays) or not -ndim <= owner.dim < ndim:
        raise ValueError(f"{name}: {what} must have one rank with an axis {owner.dim}, got shapes {shapes}")
    axis = owner.dim % ndim
    rest = {a.shape[:axis] + a.shape[axis + 1 :] for a in arrays}
    if len(rest) > 1:
        raise ValueError(f"{name}: {what} must have the same shape except along dim {owner.dim}, got {shapes}")
    if len({a.dtype for a in arrays}) > 1:
        raise TypeError(f"{name}: {what} must have one dtype, got {', '.join(str(a.dtype) for a in arrays)}")
    return axis


def _split(array, sizes, axis):
    """Views of ``array`` along ``axis``, of the given sizes."""
    parts, start = [], 0
    index = [slice(None)] * array.ndim
    for size in sizes:
        index[axis] = slice(start, start + size)
        parts.append(array[tuple(index)])
        start += size
    return parts


class JoinTable(Module):
    """``y = concatenate(x, axis=dim)`` (torch7's ``JoinTable``, PyTorch's ``torch.cat``).

    Args:
        dim: the axis, batch axis included (1: the channels of
            ``(N, C, H, W)``, a U-Net skip); negative counts from the end.
            torch7 counted from 1 and without the batch axis.

    Shape:
        Input: a tuple of arrays of one rank and dtype that agree except
        along ``dim``. Output: the same with the sizes along ``dim`` summed.

    Backward: ``gradInput[i]`` is input ``i``'s part of ``g`` along ``dim`` (a view).

    Example:
        >>> import numpy as np
        >>> JoinTable(1).forward((np.ones((2, 3)), np.ones((2, 1)))).shape
        (2, 4)
    """

    def __init__(self, dim):
        super().__init__()
        self.dim = _check_dim("JoinTable", dim)

    def output_shape(self, input_shape):
        """The inputs' shapes joined along ``dim``."""
        if _is_shape(input_shape):
            raise TypeError(f"{self!r}: expected a tuple of arrays, got {describe(shape_probe(input_shape))}")
        probes = _probe(input_shape)
        _check_table(self, probes)
        axis = _join_axis(self, list(probes), "inputs")
        first = tuple(probes[0].shape)
        return (*first[:axis], sum(p.shape[axis] for p in probes), *first[axis + 1 :])

    def updateOutput(self, input):
        _check_table(self, input)
        axis = _join_axis(self, list(input), "inputs")
        self.output = get_array_module(*input).concatenate(list(input), axis=axis)
        return self.output

    def updateGradInput(self, input, gradOutput):
        axis = self.dim % gradOutput.ndim
        self.gradInput = tuple(_split(gradOutput, [x.shape[axis] for x in input], axis))
        return self.gradInput

    def extra_repr(self):
        return f"dim={self.dim}"


class SplitTable(Module):
    """Splits ``x`` along ``dim`` into a tuple of its slices, that axis removed:
    ``y[i] = x.take(i, axis=dim)`` (torch7's ``SplitTable``, PyTorch's ``torch.unbind``).

    Args:
        dim: the axis, batch axis included (1: the time steps of ``(N, T, F)``);
            negative counts from the end.

    Shape:
        Input: an array with ``K`` entries along ``dim``. Output: a tuple of
        ``K`` arrays (views) without that axis.

    Backward: ``gradInput = stack(g, axis=dim)`` (a None entry stacks zeros);
    None for an integer input.

    Example:
        >>> import numpy as np
        >>> [y.shape for y in SplitTable(1).forward(np.ones((2, 3, 4)))]
        [(2, 4), (2, 4), (2, 4)]
    """

    _accepts_none_grad = True

    def __init__(self, dim):
        super().__init__()
        self.dim = _check_dim("SplitTable", dim)

    def output_shape(self, input_shape):
        """A tuple of ``K`` shapes without axis ``dim`` (``K`` its size)."""
        if not _is_shape(input_shape):
            raise TypeError(f"{self!r}: expected an array, got {describe(_probe(input_shape))}")
        shape = tuple(int(s) for s in input_shape)
        if not -len(shape) <= self.dim < len(shape):
            raise ValueError(f"{self!r}: expected an input with an axis {self.dim}, got shape {shape}")
        axis = self.dim % len(shape)
        return tuple(shape[:axis] + shape[axis + 1 :] for _ in range(shape[axis]))

    def updateOutput(self, input):
        shape = getattr(input, "shape", None)
        if shape is None or is_seq(input):
            raise TypeError(f"{self!r}: expected an array, got {describe(input)}")
        if not -len(shape) <= self.dim < len(shape):
            raise ValueError(f"{self!r}: expected an input with an axis {self.dim}, got shape {tuple(shape)}")
        axis = self.dim % len(shape)
        self.output = tuple(input[(slice(None),) * axis + (i,)] for i in range(shape[axis]))
        return self.output

    def updateGradInput(self, input, gradOutput):
        if input.dtype.kind != "f" or all_none(gradOutput):
            self.gradInput = None
            return None
        xp = get_array_module(input)
        parts = [xp.zeros_like(y) if g is None else g for g, y in zip(gradOutput, self.output, strict=True)]
        self.gradInput = xp.stack(parts, axis=self.dim % input.ndim)
        return self.gradInput

    def extra_repr(self):
        return f"dim={self.dim}"


class SelectTable(Module):
    """``y = x[index]``: one entry of a tuple (torch7's ``SelectTable``, 0-based;
    negative counts from the end).

    Args:
        index: the entry to pick.

    Shape:
        Input: a tuple. Output: its entry ``index`` (an array or a tuple).

    Backward: ``gradInput`` has the input's structure with ``g`` at
    ``index`` and None (zeros) elsewhere; torch7 filled zero arrays.

    Example:
        >>> import numpy as np
        >>> SelectTable(-1).forward((np.zeros(2), np.ones(3))).shape
        (3,)
    """

    _accepts_none_grad = True

    def __init__(self, index):
        super().__init__()
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"SelectTable: index must be an integer, got {index!r}")
        self.index = index

    def output_shape(self, input_shape):
        """The shape of entry ``index``."""
        if _is_shape(input_shape):
            raise TypeError(f"{self!r}: expected a tuple, got {describe(shape_probe(input_shape))}")
        if not -len(input_shape) <= self.index < len(input_shape):
            raise ValueError(
                f"{self!r}: expected a tuple of more than {self._least()} entries, got {describe(_probe(input_shape))}"
            )
        return input_shape[self.index]

    def updateOutput(self, input):
        if not is_seq(input):
            raise TypeError(f"{self!r}: expected a tuple, got {describe(input)}")
        if not -len(input) <= self.index < len(input):
            raise ValueError(f"{self!r}: expected a tuple of more than {self._least()} entries, got {describe(input)}")
        self.output = input[self.index]
        return self.output

    def _least(self):
        return self.index if self.index >= 0 else -self.index - 1

    def updateGradInput(self, input, gradOutput):
        grads = [None] * len(input)
        grads[self.index] = gradOutput
        self.gradInput = tuple(grads)
        return self.gradInput

    def extra_repr(self):
        return f"{self.index}"


# public names of what graph.py and the layers built of other modules (transformer.py, attention.py) use
Composite = _Composite
Container = _Container
Uses = _Uses
trainable = _trainable
child_backward = _child_backward
unbroadcast = _unbroadcast
is_shape = _is_shape
