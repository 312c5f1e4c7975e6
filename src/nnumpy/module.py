"""The Module base class: the Torch7 ``nn`` protocol the seeds define.

``forward(input)`` runs ``updateOutput``; ``backward(input, gradOutput)`` runs
``updateGradInput`` then ``accGradParameters`` and returns ``gradInput``.
Subclasses override only those three methods and declare their parameters once
in ``_parameters`` (pairs of parameter and gradient attribute names) and their
non-trainable state in ``_buffers``; the base class derives everything else from
those declarations: ``getParameters``, ``zeroGradParameters``, ``state_dict``,
freezing, dtype conversion, and what optimizers, MPI and ONNX see.
"""

import inspect
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from ._structure import describe, fill_none, float_like, is_seq, same_structure
from .anomaly import anomaly_mode, check_finite
from .compat import SeedModuleDialect
from .summary import summary

__all__ = ["Module"]


class Module(SeedModuleDialect):
    """Base class of every layer and container.

    Attributes:
        output: the result of the last ``forward``.
        gradInput: the gradient w.r.t. the input from the last ``backward``.
        training: True in training mode (``train()``), False after ``evaluate()``.

    Class attributes a subclass declares:
        _parameters: tuple of ``(parameter_attr, gradient_attr)`` pairs, e.g.
            ``(("W", "gradW"), ("b", "gradb"))``. A parameter set to None (a
            layer built with ``bias=False``) is skipped everywhere.
        _buffers: tuple of attribute names of non-trainable state saved in
            ``state_dict`` (e.g. BatchNorm's running statistics).

    Example:
        >>> import numpy as np
        >>> class Double(Module):
        ...     def updateOutput(self, input):
        ...         self.output = 2 * input
        ...         return self.output
        ...     def updateGradInput(self, input, gradOutput):
        ...         self.gradInput = 2 * gradOutput
        ...         return self.gradInput
        >>> m = Double()
        >>> m.forward(np.ones((1, 2), np.float32)).tolist()
        [[2.0, 2.0]]
        >>> m.backward(np.ones((1, 2), np.float32), np.ones((1, 2), np.float32)).tolist()
        [[2.0, 2.0]]
    """

    _parameters = ()
    _buffers = ()
    # arrays computed from the configuration, neither trained nor saved (PyTorch's non-persistent buffers)
    _constants = ()
    # True for a class whose _parameters lists every name any configuration may have (RNN's
    # per-layer names): a declared parameter it never set is absent rather than an error
    _optional_parameters = False
    _kept_for_acc = None  # (gradOutput, value) that updateGradInput left for accGradParameters
    # None inside a gradOutput means zeros; backward fills them in unless the class handles None itself
    _accepts_none_grad = False

    def __new__(cls, *args, **kwargs):
        # Set the protocol's state here, so user subclasses that forget
        # ``super().__init__()`` still work, and remember the constructor
        # arguments (model files store the architecture as class + arguments).
        self = super().__new__(cls)
        self.output = None
        self.gradInput = None
        self.training = True
        self._frozen = False
        self._init_args = (args, kwargs)
        return self

    def __init__(self):
        pass

    def __setattr__(self, name, value):
        # assigning a declared parameter (``layer.W = W64``) reallocates its gradient to match
        object.__setattr__(self, name, value)
        if name in _PROTOCOL_STATE:  # the hot path: every forward and backward sets these
            return
        grad_name = _pair_index(type(self)).get(name)
        if grad_name is not None:
            _follow(self, grad_name, value)

    # ------------------------------------------------------------------ protocol
    def forward(self, input):
        """Compute ``output`` from ``input`` (runs ``updateOutput``) and return it."""
        output = self.updateOutput(input)
        if output is not None:
            self.output = output
        if anomaly_mode.active:  # nnumpy.detect_anomaly()
            check_finite(self, self.output, "forward")
        return self.output

    def backward(self, input, gradOutput):
        """Back-propagate ``gradOutput`` through the module for the given ``input``.

        Runs ``updateGradInput`` (the gradient w.r.t. the input, returned) and
        then ``accGradParameters`` (parameter gradients are *accumulated*
        with ``+=`` until ``zeroGradParameters``). A frozen module accumulates
        nothing.

        Input and output may be (nested) tuples of arrays: ``gradOutput`` then
        has the output's structure and the result the input's. ``None`` in
        ``gradOutput`` stands for zeros of that part; they are filled in before
        ``updateGradInput`` runs, unless the class sets ``_accepts_none_grad``
        (containers do, and skip a child whose whole gradient is None). The
        gradient for an integer input (indices) is None.
        """
        return self._backward(input, gradOutput, need_input_grad=True)

    def backward_pass(self, input, gradOutput, need_input_grad=True):
        """``backward``, optionally skipping ``updateGradInput``
        (``need_input_grad=False``: ``gradInput`` is None). Containers call it
        on their children when nothing upstream needs the input gradient.

        It runs ``_backward``, which a module made of modules (a container)
        overrides to back-propagate through its children; a layer overrides
        only ``updateGradInput`` and ``accGradParameters``."""
        return self._backward(input, gradOutput, need_input_grad)

    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        if not self._accepts_none_grad:
            gradOutput = fill_none(gradOutput, self.output)
        gradOutput = float_like(gradOutput, self.output)  # an integer gradOutput means its float version
        if need_input_grad:
            grad = self.updateGradInput(input, gradOutput)
            if grad is not None:
                self.gradInput = grad
            if anomaly_mode.active:  # nnumpy.detect_anomaly()
                check_finite(self, self.gradInput, "backward")
        else:
            self.gradInput = None
        if not self._frozen:
            self.accGradParameters(input, gradOutput)
        return self.gradInput

    def _check_backward(self, gradOutput):
        if self.output is None:
            raise RuntimeError(f"{_who(self)}: backward called before forward")
        if is_seq(self.output) or is_seq(gradOutput):
            if not same_structure(self.output, gradOutput):
                raise ValueError(
                    f"{_who(self)}: expected gradOutput of structure {describe(self.output)} (the output's), "
                    f"got {describe(gradOutput)}"
                )
            return
        if gradOutput is None:  # zeros
            return
        out_shape = getattr(self.output, "shape", None)
        if out_shape is not None and getattr(gradOutput, "shape", None) != out_shape:
            got = getattr(gradOutput, "shape", type(gradOutput).__name__)
            raise ValueError(
                f"{_who(self)}: expected gradOutput of shape {tuple(out_shape)} (the output's shape), got {got}"
            )

    def updateOutput(self, input):
        """Compute ``self.output`` from ``input``; store it and return it.

        The default calls the seed-000 hook ``_compute_output(input)``
        (``nnumpy.compat``) and stores its result.
        """
        self.output = self._compute_output(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Compute ``self.gradInput`` (same shape as ``input``); store and return it."""
        self.gradInput = self._compute_input_grad(input, gradOutput)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        """Accumulate parameter gradients; nothing to do for parameter-free modules."""
        self._update_parameters_grad(input, gradOutput)

    def output_shape(self, input_shape):
        """The shape of ``forward``'s output for an input of shape ``input_shape``
        (batch axis included; a tuple of shapes for several inputs, and likewise
        for several outputs), computed from the shape alone: nothing runs,
        nothing changes. Raises the error ``forward`` would raise for that shape
        (naming the module, expected vs got). None when the module cannot tell:
        the default, so a user's layer without it is simply not checked
        (``Sequential``'s shape pre-check and ``summary``'s shape inference stop
        there). Every nnumpy layer and container implements it.

        Example:
            >>> from nnumpy import Linear
            >>> Linear(4, 3).output_shape((10, 4))
            (10, 3)
        """
        return None

    # ------------------------------------------------------------ structure
    def children(self):
        """Direct sub-modules as ``(name, module)`` pairs (empty for a leaf)."""
        return []

    def leaves(self):
        """All leaf modules in forward order (nested containers flattened)."""
        kids = self.children()
        if not kids:
            return [self]
        return _unique(leaf for _, child in kids for leaf in child.leaves())

    def named_modules(self, prefix="", _seen=None):
        """``(dotted_name, module)`` for this module and every descendant; a
        module that appears at several places (shared weights) once, under its
        first name (as PyTorch)."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else str(name), seen)

    def own_parameter_pairs(self):
        """This module's ``(param_attr, grad_attr)`` pairs whose parameter is set
        (not None). A declared parameter that was never assigned (a typo in
        ``_parameters``, or a layer that forgot to create it) raises an
        AttributeError naming the module and the attribute."""
        pairs = []
        for p, g in type(self)._parameters:
            param = getattr(self, p, _MISSING)
            if param is _MISSING and not type(self)._optional_parameters:
                raise AttributeError(
                    f"{_who(self)}: declares parameter {p!r} (with gradient {g!r}) in _parameters, but has no "
                    f"attribute {p!r}; set it in __init__ (None for an absent one, e.g. bias=False)"
                )
            if param is not None and param is not _MISSING:
                pairs.append((p, g))
        return pairs

    def undeclared_arrays(self):
        """Dotted names (``"0.weight"``) of the float array attributes of this
        module and its descendants that are neither declared parameters or
        gradients (``_parameters``) nor buffers (``_buffers``): a weight whose
        declaration was forgotten trains nothing and is not saved.
        ``output``, ``gradInput`` and private names (``_cache``) are not
        counted: keep a layer's scratch arrays under a leading underscore,
        and declare arrays computed from the configuration (a positional
        encoding's table) in ``_constants``.
        ``summary`` prints them as a warning and ``gradcheck`` fails on those
        the output depends on."""
        names = []
        for prefix, module in self.named_modules():
            cls = type(module)
            declared = {n for pair in cls._parameters for n in pair} | set(cls._buffers) | set(cls._constants)
            declared |= {"output", "gradInput"}
            for name, value in vars(module).items():
                if name.startswith("_") or name in declared:
                    continue
                dtype = getattr(value, "dtype", None)
                if isinstance(dtype, np.dtype) and dtype.kind == "f" and getattr(value, "ndim", 0) > 0:
                    names.append(f"{prefix}.{name}" if prefix else name)
        return names

    def own_buffer_names(self):
        """The names of this module's declared buffers (``_buffers``), set or not."""
        return list(type(self)._buffers)

    # ------------------------------------------------------------ parameters
    def getParameters(self):
        """A leaf's parameters as a flat list (``[W, b]``); a container returns
        one list per leaf module (``[[W1, b1], [], [W2, b2]]``).

        A user's leaf module written in another seed dialect is honoured: one
        that overrides ``get_parameters`` (seed 000) or ``parameters`` (seed
        003) instead of declaring ``_parameters``.
        """
        own = _dialect_override(self, ("get_parameters", "parameters"))
        if own is not None:
            return list(own())
        return [getattr(self, p) for p, _ in self.own_parameter_pairs()]

    def getGradParameters(self):
        """The gradients, in the same structure as ``getParameters()``.

        A gradient follows its parameter: assigning ``layer.W = W64`` casts
        ``gradW`` to float64 (values kept), as in the seeds, and a new shape
        makes it zeros of that shape. A gradient whose shape or dtype is not
        its parameter's (one a layer or user wrote) raises a ``ValueError``
        naming the parameter and both; a declared gradient attribute that does
        not exist raises an AttributeError (None means "zeros, created now").
        A seed-003 module that creates its gradients in ``backward``
        (``self.grad_W = ...``) has zero gradients until then.
        """
        own = _dialect_override(self, ("get_parameters_grad", "grad_parameters"))
        if own is not None:
            try:
                grads = list(own())
            except AttributeError:
                if _dialect_override(self, ("get_parameters", "parameters")) is None:
                    raise
                return [np.zeros_like(p) for p in self.getParameters()]  # no backward yet: zeros
            for i, (param, grad) in enumerate(zip(self.getParameters(), grads, strict=False)):
                _check_grad_shape(self, _attr_name(self, param, f"#{i}"), param, grad)
            return grads
        grads = []
        for p, g in self.own_parameter_pairs():
            param, grad = getattr(self, p), getattr(self, g, _MISSING)
            if grad is _MISSING:
                raise AttributeError(
                    f"{_who(self)}: declares gradient {g!r} of parameter {p!r} in _parameters, but has no "
                    f"attribute {g!r}; set it in __init__ (np.zeros_like({p}), or None to create it at first use)"
                )
            if grad is None:  # not created yet: zeros
                grad = np.zeros_like(param)
                object.__setattr__(self, g, grad)
            _check_grad_shape(self, p, param, grad)
            grads.append(grad)
        return grads

    def zeroGradParameters(self):
        """Set every parameter gradient to zero (gradients accumulate until then)."""
        children = self.children()
        for _, child in children:
            child.zeroGradParameters()
        if not children:
            own = _dialect_override(self, ("zero_grad",))
            if own is not None:
                own()
                return
            try:
                grads = self.getGradParameters()
            except AttributeError:
                if _dialect_override(self, ("get_parameters_grad", "grad_parameters")) is None:
                    raise
                grads = []  # a seed-003 module creates its gradients in its first backward
            for grad in grads:
                grad[...] = 0

    def _keep_for_acc(self, gradOutput, value):
        """Leave ``value`` (computed by ``updateGradInput`` on its way, e.g.
        BatchNorm's per-channel sums or a convolution's parameter gradients)
        for the ``accGradParameters`` call with the same ``gradOutput`` that
        follows in the same backward."""
        self._kept_for_acc = (gradOutput, value)

    def _take_kept(self, gradOutput):
        """What ``_keep_for_acc`` left for this very ``gradOutput``, else None; forgets it."""
        kept, self._kept_for_acc = self._kept_for_acc, None
        return kept[1] if kept is not None and kept[0] is gradOutput else None

    def parameter_pairs(self, trainable_only=True):
        """``(parameter, gradient)`` arrays of every leaf, read afresh at each call.

        Optimizers call this at every step, so a module that rebinds
        ``self.gradb = ...`` or a user who assigns ``layer.W = new_array`` is
        honoured. Frozen modules are skipped when ``trainable_only``.
        """
        pairs = []
        for leaf in self.leaves():
            if trainable_only and leaf._frozen:
                continue
            pairs.extend(zip(leaf.getParameters(), leaf.getGradParameters(), strict=True))
        return pairs

    def parameters(self):
        """All parameter arrays as one flat list (PyTorch's ``parameters()``)."""
        return [p for p, _ in self.parameter_pairs(trainable_only=False)]

    def named_parameters(self):
        """``(dotted_name, array)`` for every parameter, e.g. ``("0.W", W)``."""
        for prefix, module in self.named_modules():
            if module.children():
                continue
            for p, _ in module.own_parameter_pairs():
                yield (f"{prefix}.{p}" if prefix else p), getattr(module, p)

    def named_buffers(self):
        """``(dotted_name, array)`` for every buffer that is set."""
        for prefix, module in self.named_modules():
            for b in type(module)._buffers:
                value = getattr(module, b, None)
                if value is not None:
                    yield (f"{prefix}.{b}" if prefix else b), value

    @property
    def num_parameters(self):
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.parameters()))

    # ------------------------------------------------------------ modes
    def train(self, mode=True):
        """Switch this module and its descendants to training mode
        (``train(False)``: evaluation mode); returns self.

        Children are switched through their own ``train()`` / ``eval()``, so a
        user's module that overrides them (seed 003) is honoured.
        """
        self.training = bool(mode)
        for _, child in self.children():
            if mode:
                child.train()
            else:
                child.eval()
        return self

    def evaluate(self):
        """Switch to evaluation mode (BatchNorm uses moving statistics, Dropout is
        the identity); returns self."""
        return Module.train(self, False)

    def eval(self):
        """Alias of ``evaluate`` (PyTorch, seed 003)."""
        own = _dialect_override(self, ("evaluate",))
        return own() if own is not None else self.evaluate()

    @contextmanager
    def preserved_modes(self):
        """Context manager: on exit, this module and every descendant are back
        in the mode (training or evaluate) each had on entry, even after an error.

        Example:
            >>> from nnumpy import Sequential, Dropout
            >>> net = Sequential(Dropout())
            >>> with net.preserved_modes():
            ...     _ = net.evaluate()
            >>> net[0].training
            True
        """
        modes = [(module, module.training) for _, module in self.named_modules()]
        try:
            yield self
        finally:
            for module, training in modes:
                module.training = training

    def freeze(self):
        """Stop training this module's parameters: ``backward`` accumulates no
        gradient for them and optimizers skip them. Returns self."""
        for _, module in self.named_modules():
            module._frozen = True
        return self

    def unfreeze(self):
        """Undo ``freeze``; returns self."""
        for _, module in self.named_modules():
            module._frozen = False
        return self

    @property
    def frozen(self):
        """True after ``freeze()``: no gradient accumulates, optimizers skip the parameters."""
        return self._frozen

    @property
    def init_args(self):
        """``(args, kwargs)`` of the constructor call (model files rebuild architectures from them)."""
        return self._init_args

    # ------------------------------------------------------------ configuration
    # constructor arguments that get_config takes from the constructor call even when an
    # attribute of the same name exists (that attribute then means something else)
    _config_from_init = ()
    # True for a container whose children are exactly the modules of its configuration
    # (Sequential, Residual, Graph): parameter_shapes' default then reports {} for it
    _children_from_config = False

    def get_config(self):
        """The constructor arguments that rebuild this module as it is now, by
        name (Keras's ``get_config``); ``type(m).from_config(m.get_config())``
        is an untrained copy of ``m``. Model files store it.

        The default goes through ``__init__``'s signature: each argument is
        read from the attribute of the same name when the module has one
        holding a plain value (a number, string, None, dtype, Module, or a
        tuple, list or dict of those), so a hyper-parameter changed after
        construction (``dropout.p = 0.1``) is what is stored; otherwise it is
        the value given to the constructor, or its default. Random generators
        are left out (``rng`` given as a seed is kept). A ``*args`` argument
        is a list under its name (a container's current children when there is
        no attribute of that name); ``**kwargs`` entries are merged in.

        A class whose attribute of an argument's name means something else
        lists the argument in ``_config_from_init``; a class whose state the
        arguments cannot describe overrides ``get_config`` (start from
        ``super().get_config()``) and, if needed, ``from_config``.

        Example:
            >>> from nnumpy import Dropout
            >>> d = Dropout(0.5)
            >>> d.p = 0.1
            >>> d.get_config()
            {'p': 0.1, 'rng': None}
        """
        cls = type(self)
        signature = inspect.signature(cls.__init__)
        args, kwargs = self._init_args
        try:
            arguments = signature.bind_partial(None, *args, **kwargs).arguments
        except TypeError:
            arguments = {}
        config = {}
        for name, param in list(signature.parameters.items())[1:]:
            given = arguments.get(name, () if param.kind is param.VAR_POSITIONAL else param.default)
            current = _attribute(self, name) if name not in cls._config_from_init else _MISSING
            if isinstance(current, Module) and given is not None and not isinstance(given, Module):
                current = _MISSING  # a module the constructor made from a setting ("relu", a dropout rate)
            if param.kind is param.VAR_KEYWORD:
                config.update(arguments.get(name, {}))
            elif param.kind is param.VAR_POSITIONAL:
                if isinstance(current, (list, tuple)):
                    config[name] = list(current)
                elif self.children() and all(isinstance(v, Module) for v in given):
                    config[name] = [child for _, child in self.children()]
                else:
                    config[name] = list(given)
            elif current is not _MISSING:
                config[name] = current
            elif given is not param.empty and not isinstance(given, np.random.Generator):
                config[name] = given
        return config

    @classmethod
    def from_config(cls, config):
        """The module ``get_config`` describes: ``cls(**config)``, with a
        ``*args`` argument's list spread out. Keys that are not arguments of
        the constructor raise TypeError (unless it takes ``**kwargs``)."""
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: expected a dict, got {type(config).__name__}")
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        names = {p.name for p in params if p.kind is not p.VAR_KEYWORD}
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
        unknown = sorted(set(config) - names)
        if unknown and not takes_kwargs:
            raise TypeError(f"{cls.__name__}: unknown configuration key(s) {unknown}")
        spread = any(p.kind is p.VAR_POSITIONAL for p in params)
        positional, keywords = [], {k: config[k] for k in unknown}
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                values = config.get(p.name, ())
                if not isinstance(values, (list, tuple)):
                    raise TypeError(f"{cls.__name__}: configuration key {p.name!r} must be a list")
                positional.extend(values)
            elif p.kind is p.POSITIONAL_ONLY or (spread and p.kind is p.POSITIONAL_OR_KEYWORD):
                if p.name in config:
                    positional.append(config[p.name])
                elif p.default is p.empty:
                    raise TypeError(f"{cls.__name__}: configuration key {p.name!r} is missing")
                else:
                    positional.append(p.default)
            elif p.name in config:
                keywords[p.name] = config[p.name]
        return cls(*positional, **keywords)

    @classmethod
    def parameter_shapes(cls, config):
        """The shapes of the arrays that ``cls.from_config(config)`` allocates
        (its parameters and buffers, by ``state_dict`` key relative to the
        module: ``{"W": (3, 4), "b": (3,)}``), computed from ``config`` alone,
        without allocating anything; None when the class cannot tell. Model
        files check these against the file's tensors before building anything
        (a class that returns None is built only after every other check).

        An array the constructor computes that the file does not hold (a
        constant table) is listed as ``"~name"``: it counts against the
        loader's allocation budget but needs no tensor. Modules inside
        ``config`` are given as objects with ``cls`` and ``config`` attributes
        and a ``parameter_shapes()`` method (not built); a module given in the
        configuration reports its own arrays. The default: ``{}`` for a class that
        declares no parameters and no buffers and whose children, if any, are
        the modules of its configuration (``_children_from_config``); None
        otherwise. A class with parameters overrides it.
        """
        if cls._parameters or cls._buffers:
            return None
        if cls.children is not Module.children and not cls._children_from_config:
            return None
        return {}

    def to(self, dtype):
        """Convert parameters, gradients and buffers to ``dtype`` (e.g.
        ``np.float64`` for gradient checks); returns self."""
        dtype = np.dtype(dtype)
        for _, module in self.named_modules():
            names = [n for pair in type(module)._parameters for n in pair] + list(type(module)._buffers)
            for name in names:
                value = getattr(module, name, None)
                if value is not None and hasattr(value, "astype") and value.dtype.kind == "f":
                    setattr(module, name, value.astype(dtype))
        return self

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Parameters and buffers keyed by dotted names (``"3.W"``,
        ``"1.moving_mean"``); the arrays themselves, not copies."""
        state = OrderedDict(self.named_parameters())
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Everything is checked first (missing and unexpected keys when
        ``strict``, shapes always); nothing is changed unless all of it fits.
        Parameters are copied in place, so optimizers keep their references.
        """
        targets = {}
        for prefix, module in self.named_modules():
            names = [p for p, _ in module.own_parameter_pairs()] if not module.children() else []
            names += list(type(module)._buffers)
            for name in names:
                targets[f"{prefix}.{name}" if prefix else name] = (module, name)
        # a buffer not sized yet (BatchNormalization before its first batch) is not in
        # state_dict() either, so it is not missing
        missing = [k for k, (m, n) in targets.items() if k not in state_dict and getattr(m, n, None) is not None]
        unexpected = [k for k in state_dict if k not in targets]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        for key, value in state_dict.items():
            if key not in targets:
                continue
            module, name = targets[key]
            current = getattr(module, name, None)
            shape = tuple(np.shape(value))
            if current is not None and tuple(current.shape) != shape:
                problems.append(f"{key}: expected shape {tuple(current.shape)}, got {shape}")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for key, value in state_dict.items():
            if key not in targets:
                continue
            module, name = targets[key]
            current = getattr(module, name, None)
            value = np.asarray(value)
            if current is None:  # a lazily sized buffer: take the saved array's dtype (no float64 -> float32 loss)
                setattr(module, name, value.copy())
            else:
                current[...] = value

    # ------------------------------------------------------------ conveniences
    def summary(self, input_shape, print_fn=print):
        """Print (and return) a torchinfo-like table: each layer's output shape and
        parameter count, then the totals; ``input_shape`` is one sample's shape, without
        the batch axis. See ``nnumpy.summary.summary``."""
        return summary(self, input_shape, print_fn=print_fn)

    def __call__(self, *inputs, name=None):
        """``m(x)`` is ``m.forward(x)``; ``m(a, b)`` is ``m.forward((a, b))``.

        Called on graph nodes (``nnumpy.Input()`` and the nodes grown from it)
        it computes nothing and returns a new node instead, named ``name``
        (see ``nnumpy.Graph``).
        """
        args = inputs[0] if len(inputs) == 1 and is_seq(inputs[0]) else inputs
        node = next((a for a in args if getattr(a, "_is_graph_node", False)), None)
        if node is not None:  # duck-typed: the core does not import the graph module
            return node.grow(self, inputs, name)
        if name is not None:
            raise TypeError(f"{self!r}: name= is only for building a graph (call the module on nodes)")
        if not inputs:
            raise TypeError(f"{self!r}: expected an input, got none")
        return self.forward(inputs[0] if len(inputs) == 1 else tuple(inputs))

    def extra_repr(self):
        """Text inside the parentheses of ``repr`` (override in subclasses)."""
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


_MISSING = object()


def _attribute(module, name):
    """``module``'s attribute ``name`` when it holds a configuration value, else _MISSING."""
    try:
        value = inspect.getattr_static(module, name)
    except AttributeError:
        return _MISSING
    if isinstance(value, property):
        value = getattr(module, name)
    return value if _is_config_value(value) else _MISSING


def _is_config_value(value, depth=0):
    """A value ``get_config`` may read from an attribute: numbers, strings, None,
    dtypes, Modules, and tuples, lists and dicts of those."""
    if depth > 32:
        return False
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.dtype, Module)):
        return True
    if isinstance(value, type):
        return issubclass(value, np.generic)
    if isinstance(value, (list, tuple)):
        return all(_is_config_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_config_value(v, depth + 1) for k, v in value.items())
    return False


def _who(module):
    """The module's repr for an error message; a container's class name instead of its whole tree."""
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def _attr_name(module, array, default):
    """The name of ``module``'s attribute that holds ``array`` (for messages)."""
    return next((k for k, v in vars(module).items() if v is array), default)


def _check_grad_shape(module, name, param, grad):
    """A gradient must have its parameter's shape and dtype: else a ValueError naming both."""
    shape, grad_shape = getattr(param, "shape", None), getattr(grad, "shape", None)
    if shape != grad_shape:
        raise ValueError(
            f"{_who(module)}: the gradient of parameter {name} has shape {grad_shape}, but {name} has shape "
            f"{shape}; a gradient must have its parameter's shape (sum over the batch axis without keepdims)"
        )
    dtype, grad_dtype = getattr(param, "dtype", None), getattr(grad, "dtype", None)
    if dtype != grad_dtype:
        raise ValueError(
            f"{_who(module)}: the gradient of parameter {name} has dtype {grad_dtype}, but {name} has dtype "
            f"{dtype}; a gradient must have its parameter's dtype (assign the parameter, and its gradient follows)"
        )


def _pair_index(cls):
    """``{parameter attribute: gradient attribute}`` of a class's declared pairs (cached per class)."""
    index = _PAIR_INDEX.get(cls)
    if index is None or index[0] is not cls._parameters:
        index = _PAIR_INDEX[cls] = (cls._parameters, {p: g for p, g in cls._parameters})
    return index[1]


_PAIR_INDEX = {}
_PROTOCOL_STATE = frozenset({"output", "gradInput", "_kept_for_acc", "training"})


def _follow(module, grad_name, param):
    """After ``module.<param> = param``: its gradient follows the new array. A
    gradient of another shape becomes zeros of the parameter's shape and dtype,
    one of another dtype is cast (values kept); None stays None."""
    grad = module.__dict__.get(grad_name)
    if grad is None or not hasattr(grad, "shape"):
        return
    if param is None:
        object.__setattr__(module, grad_name, None)
    elif not hasattr(param, "shape"):
        return
    elif grad.shape != param.shape:
        object.__setattr__(module, grad_name, np.zeros_like(param))
    elif grad.dtype != param.dtype:
        object.__setattr__(module, grad_name, grad.astype(param.dtype))


def _unique(modules):
    """``modules`` in order, each module once (by identity)."""
    seen, out = set(), []
    for m in modules:
        if id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


def _dialect_override(module, names):
    """The first of ``names`` that ``module``'s class overrides (a user's module
    written in another seed dialect), as a bound method; None if none is."""
    cls = type(module)
    for name in names:
        if getattr(cls, name) is not getattr(Module, name):
            return getattr(module, name)
    return None


# public names of what other core modules use (containers)
unique_modules = _unique
