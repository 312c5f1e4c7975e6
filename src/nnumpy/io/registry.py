"""The class registry: which classes a model file may name.

Loading a model file never executes code: the classes of its architecture
are looked up by name among nnumpy's own public ``Module`` and ``Optimizer``
classes (every layer module is imported here for that) and those the user
registered with ``register_module``.
"""

from .. import containers, graph, layers, optim  # noqa: F401  (define every built-in class looked up below)
from ..module import Module

__all__ = ["register_module", "resolve_class", "registered_name", "builtin_classes", "REGISTERED"]

REGISTERED = {}  # name -> the user classes registered with register_module


def register_module(cls=None, *, name=None):
    """Allow ``load_model`` to rebuild instances of the user class ``cls``.

    Usable as ``register_module(MyLayer)`` or as a decorator (``@register_module``
    or ``@register_module(name="MyLayer")``). Also accepts optimizer classes
    (for ``restore_optimizer``). Returns the class.
    """
    if cls is None:
        return lambda c: register_module(c, name=name)
    if not (isinstance(cls, type) and issubclass(cls, (Module, optim.Optimizer))):
        raise TypeError(f"register_module: expected a Module or Optimizer subclass, got {cls!r}")
    key = name or cls.__name__
    builtin = builtin_classes().get(key)
    if builtin is not None and builtin is not cls:
        raise ValueError(
            f"register_module: the name {key!r} is taken by nnumpy's own {builtin.__module__}.{key}; "
            f"register with another name: register_module({cls.__name__}, name='My{key}')"
        )
    REGISTERED[key] = cls
    return cls


def _subclasses(base):
    found, todo = [], [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def builtin_classes():
    """nnumpy's own public Module and Optimizer classes, by name."""
    classes = {"Module": Module}
    for cls in _subclasses(Module) + _subclasses(optim.Optimizer):
        if cls.__module__.startswith("nnumpy.") and not cls.__name__.startswith("_"):
            classes.setdefault(cls.__name__, cls)
    return classes


def resolve_class(name):
    """The class a model file calls ``name`` (registered first, then built-in), or None."""
    return REGISTERED.get(name) or builtin_classes().get(name)


def registered_name(cls):
    """The name under which ``cls`` is stored in model files, or None when it
    is neither nnumpy's nor registered."""
    for key, registered in REGISTERED.items():
        if registered is cls:
            return key
    if builtin_classes().get(cls.__name__) is cls:
        return cls.__name__
    return None
