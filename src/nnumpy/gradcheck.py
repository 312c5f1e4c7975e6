"""Finite-difference gradient checking for modules and criteria.

Users test their own modules with it, as our tests do with every module:

    >>> import numpy as np, nnumpy
    >>> x = np.random.default_rng(0).normal(size=(3, 4))
    >>> nnumpy.gradcheck(nnumpy.Linear(4, 2), x).ok
    True
"""

import copy

import numpy as np

from ._structure import describe, flatten
from .criteria import Criterion

__all__ = ["gradcheck", "GradcheckError", "GradcheckResult"]


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when an analytic gradient disagrees."""


class GradcheckResult:
    """Outcome of ``gradcheck``.

    Attributes:
        ok: True when every element is within ``atol + rtol * |numeric|``.
        max_error: the largest ``|analytic - numeric|`` over all checked arrays.
        worst: ``(name, index, analytic, numeric)`` of the worst element
            (relative to its tolerance), ``name`` being ``"input"`` or a
            parameter's dotted name.
        checked: names of the arrays that were checked.
        undeclared: dotted names of the module's array attributes that are
            neither declared parameters nor buffers (``Module.undeclared_arrays``)
            and that the output depends on: a weight whose declaration was
            forgotten. Its gradient cannot be checked, optimizers never update
            it and model files do not save it, so any makes ``ok`` False.
        unused: undeclared array attributes the output does not depend on
            (stale scratch arrays), for information; they do not fail the check.
    """

    def __init__(self, ok, max_error, worst, checked, undeclared=(), unused=()):
        self.ok, self.max_error, self.worst, self.checked = ok, max_error, worst, checked
        self.undeclared, self.unused = list(undeclared), list(unused)

    def __repr__(self):
        extra = f", undeclared={self.undeclared}" if self.undeclared else ""
        return f"GradcheckResult(ok={self.ok}, max_error={self.max_error:.3g}, worst={self.worst}{extra})"

    def __bool__(self):
        return self.ok


def _numeric_gradient(f, array, eps):
    """Central differences of scalar ``f()`` w.r.t. every element of ``array`` (modified in place, restored)."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def _as_float64(x):
    """The input in float64: every array of a (nested) tuple converted; a NumPy
    array of integers or booleans (indices, a mask) kept as it is."""
    if isinstance(x, (tuple, list)):
        return tuple(_as_float64(v) for v in x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "biu":
        return x.copy()
    return np.array(x, dtype=np.float64)


def _copy(x):
    return tuple(_copy(v) for v in x) if isinstance(x, (tuple, list)) else x.copy()


def _float_leaves(x, name):
    """``[(name, array)]`` of the float arrays in ``x`` (``input``, ``input[1][0]``, ...)."""
    return [(name + path, a) for path, a in flatten(x) if a.dtype.kind == "f"]


def _part(structure, path):
    """The part of ``structure`` at ``path`` (``"[1][0]"``); None where a None covers it."""
    for index in [int(k) for k in path.strip("[]").split("][")] if path else []:
        if structure is None:
            return None
        if not isinstance(structure, (tuple, list)) or index >= len(structure):
            raise GradcheckError(f"gradcheck: gradInput has structure {describe(structure)}, expected the input's")
        structure = structure[index]
    return structure


def gradcheck(module, input, target=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Compare ``backward`` with central finite differences, in float64.

    For a module, the checked scalar is ``sum(forward(x) * G)`` with a fixed
    random ``G``: its gradient is ``backward(x, G)`` for the input and the
    accumulated parameter gradients for every parameter. For a criterion, the
    scalar is ``forward(x, target)`` and its gradient ``backward(x, target)``;
    a criterion that returns an array of losses (``reduction='none'``) is
    checked on ``sum(loss * G)``, whose gradient is ``backward(x, target, G)``.
    The module is deep-copied and converted to float64; each evaluation starts
    from the same copy, so random layers (Dropout) reuse one mask and running
    statistics do not drift. The caller's module is left untouched.

    Inputs and outputs may be (nested) tuples of arrays: every float array of
    the input is checked (named ``input[0]``, ``input[1][0]``, ...), ``G`` has
    the output's structure, and a None in the analytic gradient counts as
    zeros. Integer arrays (indices) are passed as they are and not checked.

    Args:
        module: a ``Module`` or a ``Criterion``.
        input: the input array or tuple (float parts converted to float64).
        target: the target, for a criterion.
        eps: finite-difference step.
        atol, rtol: an element passes when ``|a - n| <= atol + rtol * |n|``.
        seed: seed of ``G``.
        raise_exception: raise ``GradcheckError`` on failure (default) rather
            than return a result with ``ok=False``.

    Returns:
        A ``GradcheckResult``.
    """
    x = _as_float64(input)
    is_criterion = isinstance(module, Criterion)
    base = copy.deepcopy(module)
    if not is_criterion:
        base.to(np.float64)
        base.unfreeze()  # a frozen copy accumulates no gradient: check the math all the same
    inputs = _float_leaves(x, "input")

    if is_criterion:
        loss = copy.deepcopy(base).forward(_copy(x), target)
        # a loss array (reduction='none'): check sum(loss * G), whose gradient is backward(x, target, G)
        g = np.random.default_rng(seed).normal(size=np.shape(loss)) if np.ndim(loss) else None
        grad_input = copy.deepcopy(base).backward(_copy(x), target, *([] if g is None else [g]))

        def run(m):
            loss = m.forward(x, target)
            return float(loss if g is None else np.sum(loss * g))

    else:
        probe = copy.deepcopy(base)
        out = probe.forward(_copy(x))
        rng = np.random.default_rng(seed)
        g = _random_like(out, rng)
        probe.zeroGradParameters()
        grad_input = probe.backward(_copy(x), g)

        def run(m):
            y = m.forward(x)
            return float(
                sum(np.sum(a * b) for (_, a), (_, b) in zip(flatten(y), flatten(g), strict=True) if b is not None)
            )

    analytic = {}
    for name, array in inputs:
        part = _part(grad_input, name[len("input") :])
        analytic[name] = np.zeros_like(array) if part is None else np.asarray(part, dtype=np.float64)
    numeric = {name: _numeric_gradient(lambda: run(copy.deepcopy(base)), array, eps) for name, array in inputs}
    if not is_criterion:
        analytic.update({name: p for name, p in _named_grads(probe)})
        for name, param in dict(base.named_parameters()).items():
            numeric[name] = _numeric_gradient(lambda: run(copy.deepcopy(base)), param, eps)

    undeclared, unused = ([], []) if is_criterion else _undeclared(base, run, seed)
    ok, max_error, worst, worst_ratio = not undeclared, 0.0, None, -1.0
    for name, num in numeric.items():
        ana = analytic.get(name)
        if ana is None or np.shape(ana) != num.shape:
            raise GradcheckError(
                f"gradcheck: {name}: analytic gradient has shape {np.shape(ana)}, expected {num.shape}"
            )
        err = np.abs(ana - num)
        ratio = err / (atol + rtol * np.abs(num))
        i = np.unravel_index(np.argmax(ratio), ratio.shape) if ratio.size else ()
        max_error = max(max_error, float(err.max()) if err.size else 0.0)
        if ratio.size and ratio[i] > worst_ratio:
            worst_ratio = float(ratio[i])
            worst = (name, tuple(int(k) for k in i), float(ana[i]), float(num[i]))
        ok = ok and not (ratio > 1).any()
    result = GradcheckResult(ok, max_error, worst, list(numeric), undeclared, unused)
    if undeclared and raise_exception:
        raise GradcheckError(
            f"gradcheck failed for {_who(module)}: its output depends on {', '.join(undeclared)}, array "
            "attribute(s) declared neither in _parameters (with a gradient) nor in _buffers: their gradient "
            "is not checked, optimizers do not update them and model files do not save them"
        )
    if not ok and raise_exception:
        name, index, a, n = worst
        raise GradcheckError(
            f"gradcheck failed for {module!r}: d/d{name}{list(index)} analytic {a:.6g} vs numeric {n:.6g} "
            f"(max abs error {max_error:.3g}, atol={atol}, rtol={rtol})"
        )
    return result


def _who(module):
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def _undeclared(base, run, seed):
    """Split ``base.undeclared_arrays()`` into those ``run``'s value depends on
    (each perturbed alone on a fresh copy) and the others."""
    names = base.undeclared_arrays()
    if not names:
        return [], []
    reference = run(copy.deepcopy(base))
    rng = np.random.default_rng(seed + 1)
    depends, unused = [], []
    for name in names:
        m = copy.deepcopy(base)
        prefix, _, attr = name.rpartition(".")
        owner = dict(m.named_modules())[prefix]
        array = getattr(owner, attr)
        object.__setattr__(owner, attr, array + rng.uniform(0.5, 1.5, size=array.shape).astype(array.dtype))
        (depends if run(m) != reference else unused).append(name)
    return depends, unused


def _random_like(out, rng):
    """A random ``G`` with the structure of ``out`` (None for integer parts: no gradient flows there)."""
    if isinstance(out, (tuple, list)):
        return tuple(_random_like(v, rng) for v in out)
    if getattr(out, "dtype", None) is None or out.dtype.kind != "f":
        return None
    return rng.normal(size=out.shape)


def _named_grads(module):
    """``(dotted_name, gradient)`` pairs matching ``named_parameters``."""
    for prefix, m in module.named_modules():
        if m.children():
            continue
        for p, g in m.own_parameter_pairs():
            yield (f"{prefix}.{p}" if prefix else p), getattr(m, g)
