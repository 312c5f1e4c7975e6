"""Non-finite values: ``detect_anomaly()`` and the error that names the module.

``nnumpy.detect_anomaly()`` is ``torch.autograd.detect_anomaly`` for the
explicit-backward protocol: while it is active, every module's ``output``
(forward) and ``gradInput`` (backward) is checked, and the first one that
holds a NaN or an infinity raises ``NonFiniteError`` naming the module by its
path in the outermost container that ran it (``Sequential[3] LogSoftMax``,
``Graph.proj Linear``, ``Sequential[1].body[0] Conv2d``) and the phase. The
check covers tuples (every floating array in the structure) and every
container, ``Graph`` included. Outside the context nothing is checked: the
protocol reads one attribute (``anomaly_mode.active``) per call.

BatchNorm-family layers in training mode raise the same ``NonFiniteError``
(always, not only under ``detect_anomaly``) when their batch statistics are
not finite, before the running statistics change.

Example:
    >>> import numpy as np
    >>> import nnumpy
    >>> net = nnumpy.Sequential(nnumpy.Linear(2, 2), nnumpy.Tanh())
    >>> x = np.array([[np.nan, 1.0]], np.float32)
    >>> with nnumpy.detect_anomaly():
    ...     try:
    ...         net.forward(x)
    ...     except nnumpy.NonFiniteError as error:
    ...         print(str(error).split(":")[0])
    Sequential[0] Linear
"""

from contextlib import ContextDecorator

from ._structure import flatten
from .backend import get_array_module

__all__ = ["NonFiniteError", "detect_anomaly", "is_anomaly_enabled", "anomaly_mode", "check_finite",
           "check_statistics"]


class NonFiniteError(FloatingPointError):
    """A module produced (or its batch statistics hold) NaN or infinite values.

    Attributes:
        module: the module that produced them.
        phase: ``"forward"`` (its output), ``"backward"`` (its gradInput) or
            ``"statistics"`` (a BatchNorm's batch statistics).
        path: the module's path in the outermost container that ran it
            (``"Sequential[3]"``), or None when it ran on its own.

    How to fix it: look at the module named and at what feeds it: a learning
    rate too high (the weights blew up: lower it, clip gradients), a log or a
    division of zero in a hand-written layer, or NaN in the data.
    """

    def __init__(self, message, module=None, phase=None, detail=""):
        super().__init__(message)
        self.module = module
        self.phase = phase
        self.detail = detail
        self.path = None

    def set_owner(self, owner):
        """Name the module by its path in ``owner`` (a container that ran it);
        the outermost container to call this wins. Updates the message."""
        if self.module is None or owner is self.module:
            return
        for name, m in owner.named_modules():
            if m is self.module:
                self.path = type(owner).__name__ + "".join(
                    f"[{part}]" if part.isdigit() else f".{part}" for part in name.split(".")
                )
                self.args = (f"{self.path} {type(self.module).__name__}: {self.detail}",)
                return


class _AnomalyMode:
    """How many ``detect_anomaly`` contexts are open (0: no checks)."""

    active = 0


anomaly_mode = _AnomalyMode()


class detect_anomaly(ContextDecorator):  # noqa: N801 (torch's name)
    """Check every module's output and gradInput for NaN and infinities while active.

    ``with nnumpy.detect_anomaly(): loss = ...; net.backward(x, g)``: the
    first module whose output (forward) or gradInput (backward) holds a
    non-finite value raises ``NonFiniteError`` naming it by its path in its
    container (``Sequential[3] LogSoftMax``) and the phase. Works through
    every container, ``Graph`` and tuples; also as a decorator. Costs one
    ``isfinite`` per module output while active, nothing when not.

    Args:
        check_nan: False turns the checks off (as ``torch.autograd.detect_anomaly``).
    """

    def __init__(self, check_nan=True):
        self.check_nan = bool(check_nan)

    def __enter__(self):
        if self.check_nan:
            anomaly_mode.active += 1
        return self

    def __exit__(self, *exc):
        if self.check_nan:
            anomaly_mode.active -= 1
        return False


def is_anomaly_enabled():
    """True while a ``detect_anomaly()`` context is active."""
    return anomaly_mode.active > 0


def _count(a, xp):
    nan = int(xp.isnan(a).sum())
    return nan, int(a.size) - nan - int(xp.isfinite(a).sum())


def check_finite(module, value, phase):
    """Raise ``NonFiniteError`` if a floating array of ``value`` (an array or a
    structure) holds NaN or inf; ``phase`` is "forward" or "backward"."""
    for where, a in flatten(value):
        dtype = getattr(a, "dtype", None)
        if dtype is None or dtype.kind not in "fc":
            continue
        xp = get_array_module(a)
        if bool(xp.isfinite(a).all()):
            continue
        nan, inf = _count(a, xp)
        what = "output" if phase == "forward" else "gradInput"
        detail = (
            f"its {what}{where} in {phase} holds non-finite values ({nan} NaN, {inf} inf of {a.size}; "
            f"shape {tuple(a.shape)}), found by nnumpy.detect_anomaly()"
        )
        name = repr(module).splitlines()[0]
        if name.endswith("("):
            name = type(module).__name__
        raise NonFiniteError(f"{name}: {detail}", module=module, phase=phase, detail=detail)


def check_statistics(module, mean, var):
    """Raise ``NonFiniteError`` naming ``module`` (a BatchNorm) unless its batch
    statistics ``mean`` and ``var`` (one value per channel) are finite; called
    before the running statistics change."""
    xp = get_array_module(mean)
    bad_mean, bad_var = ~xp.isfinite(mean), ~xp.isfinite(var)
    if not (bool(bad_mean.any()) or bool(bad_var.any())):
        return
    channels = [int(c) for c in xp.nonzero(bad_mean | bad_var)[0][:8]]
    more = "" if int((bad_mean | bad_var).sum()) <= 8 else ", ..."
    detail = (
        f"the batch statistics are not finite (channels {channels}{more}); the input holds NaN or inf "
        "values (or overflows the dtype); the running statistics were left unchanged. Check the data and the "
        "layers before (nnumpy.detect_anomaly() names the first one), or lower the learning rate"
    )
    raise NonFiniteError(f"{module!r}: {detail}", module=module, phase="statistics", detail=detail)
