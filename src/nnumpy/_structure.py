"""Nested tuples of arrays, as modules take and return them.

A module's input and output may be an array or a (nested) tuple of arrays
(``(out, (h, c))``); lists are accepted wherever a tuple is. ``gradOutput``
has the structure of the output and ``gradInput`` the structure of the input.
``None`` anywhere in a gradient stands for zeros of that part: the protocol
(``Module.backward``) fills it in before a leaf module sees it, containers
pass it on and skip a child whose whole gradient is None, and a module whose
input holds integers (indices) returns None as their gradient.

These helpers are private to the core; layers that take or return tuples may
use them (``from .._structure import add, fill_none``).
"""

from .backend import get_array_module

__all__ = ["add", "all_none", "describe", "fill_none", "flatten", "float_like", "is_seq", "same_structure"]


def is_seq(x):
    """True for a tuple or list (a structure), False for an array or None."""
    return isinstance(x, (tuple, list))


def describe(x):
    """A structure written for error messages: ``(array(8, 4), (array(8, 3), None))``."""
    if is_seq(x):
        inner = ", ".join(describe(v) for v in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    if shape is None:
        return type(x).__name__
    return "array(" + ", ".join(str(int(s)) for s in shape) + ")"


def same_structure(template, x):
    """True when ``x`` has the structure of ``template``: the same nesting and
    lengths, arrays of the same shapes; ``None`` in ``x`` matches anything."""
    if x is None:
        return True
    if is_seq(template):
        return is_seq(x) and len(x) == len(template) and all(map(same_structure, template, x))
    if is_seq(x):
        return False
    shape = getattr(template, "shape", None)
    return shape is None or getattr(x, "shape", None) == shape


def all_none(x):
    """True when ``x`` is None or a structure holding nothing but None."""
    return x is None or (is_seq(x) and all(all_none(v) for v in x))


def fill_none(x, template):
    """``x`` with every None replaced by zeros shaped like ``template``'s part
    (its dtype too); ``x`` itself when it holds no None."""
    if x is None:
        if is_seq(template):
            return tuple(fill_none(None, t) for t in template)
        return None if template is None else _zeros_like(template)
    if not is_seq(x):
        return x
    filled = tuple(fill_none(v, t) for v, t in zip(x, template, strict=True))
    return x if all(a is b for a, b in zip(filled, x, strict=True)) else filled


def float_like(x, template):
    """``x`` with every integer or boolean array converted to the dtype of
    ``template``'s floating part at the same place (an integer ``gradOutput``
    means the same as its float version); ``x`` itself when nothing changes."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind == "f" or x is None:  # the common case: one attribute read
        return x
    if is_seq(x):
        if not is_seq(template) or len(template) != len(x):
            return x
        converted = tuple(float_like(v, t) for v, t in zip(x, template, strict=True))
        return x if all(a is b for a, b in zip(converted, x, strict=True)) else converted
    target = getattr(template, "dtype", None)
    if kind in ("i", "u", "b") and target is not None and target.kind == "f":
        return x.astype(target)
    return x


def _zeros_like(a):
    return get_array_module(a).zeros_like(a)


def add(a, b):
    """``a + b`` part by part; None counts as zeros (``add(None, b)`` is ``b``).
    Always returns new arrays where both sides hold one, never adds in place
    (a gradient may be another module's array)."""
    if a is None:
        return b
    if b is None:
        return a
    if is_seq(a) or is_seq(b):
        if not (is_seq(a) and is_seq(b) and len(a) == len(b)):
            raise ValueError(f"cannot add gradients of structures {describe(a)} and {describe(b)}")
        return tuple(add(x, y) for x, y in zip(a, b, strict=True))
    return a + b


def flatten(x, prefix=""):
    """``[(path, leaf)]`` in order, paths like ``"[1][0]"`` (``""`` for a lone array)."""
    if is_seq(x):
        return [item for i, v in enumerate(x) for item in flatten(v, f"{prefix}[{i}]")]
    return [(prefix, x)]
