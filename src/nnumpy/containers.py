"""Containers: modules made of other modules."""

from .module import Module

__all__ = ["Sequential"]


def _rethrow(error, index, child):
    """Re-raise ``error`` with the failing child's position and class (torch7's
    ``rethrowErrors``), keeping the exception type."""
    # the class alone when the message already names the layer by its repr
    name = type(child).__name__ if child.children() or str(error).startswith(repr(child)) else repr(child)
    message = f"Sequential child ({index}) {name}: {error}"
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
    return child.backward(input, gradOutput)


class Sequential(Module):
    """Applies its modules one after another: ``y = m[n-1](...m[1](m[0](x)))``.

    Build it as ``Sequential(m0, m1, ...)`` or ``Sequential()`` then ``.add(m)``.
    Indexing, slicing, ``len`` and iteration work as on a list.

    Backward gives each child the input it saw in forward. When
    ``skip_input_grad`` is True (``fit`` sets it), backward stops at the first
    child with trainable parameters: it computes every parameter gradient but
    not the gradient w.r.t. the network input (returns None), which saves a
    quarter of an MLP's backward FLOPs, as PyTorch does for inputs that do not
    require grad.

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
        super().__init__()
        self.modules = []
        self.skip_input_grad = False
        self._inputs = None
        for module in modules:
            self.add(module)

    def add(self, module):
        """Append ``module``; returns self so calls can be chained."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.add: expected a Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    def children(self):
        return list(enumerate(self.modules))

    def leaves(self):
        # an empty Sequential has no leaves (not itself: that recursed forever)
        return [leaf for child in self.modules for leaf in child.leaves()]

    def getParameters(self):
        return [leaf.getParameters() for leaf in self.leaves()]

    def getGradParameters(self):
        return [leaf.getGradParameters() for leaf in self.leaves()]

    def updateOutput(self, input):
        inputs = []
        x = input
        for i, child in enumerate(self.modules):
            inputs.append(x)
            try:
                x = child.forward(x)
            except Exception as error:
                _rethrow(error, i, child)
        self._inputs = inputs
        self.output = x
        return x

    def backward(self, input, gradOutput):
        return self.backward_pass(input, gradOutput, need_input_grad=not self.skip_input_grad)

    def backward_pass(self, input, gradOutput, need_input_grad=True):
        if self._inputs is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        stop = 0
        if not need_input_grad:
            # children before the first trainable one need no gradient at all
            trainable = [i for i, m in enumerate(self.modules) if m.parameter_pairs()]
            stop = trainable[0] if trainable else len(self.modules)
        grad = gradOutput
        for i in range(len(self.modules) - 1, stop - 1, -1):
            child = self.modules[i]
            need = need_input_grad or i > stop
            try:
                grad = _child_backward(child, self._inputs[i], grad, need)
            except Exception as error:
                _rethrow(error, i, child)
        self.gradInput = grad if need_input_grad else None
        return self.gradInput

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.modules[index])
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def __repr__(self):
        lines = [f"  ({i}): " + repr(m).replace("\n", "\n  ") for i, m in enumerate(self.modules)]
        return type(self).__name__ + "(\n" + "\n".join(lines) + "\n)" if lines else f"{type(self).__name__}()"
