"""Parameter initialisers (``nnumpy.init``), in place, like ``torch.nn.init``.

Each takes an array and fills it, returning it; ``rng`` is a seed or a
``numpy.random.Generator`` (default: the one ``nnumpy.manual_seed`` controls).
Fan-in/fan-out follow PyTorch: for ``W`` of shape ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.

Example:
    >>> import numpy as np, nnumpy
    >>> layer = nnumpy.Linear(256, 128)
    >>> _ = nnumpy.init.kaiming_uniform_(layer.W, rng=0)
    >>> _ = nnumpy.init.zeros_(layer.b)
    >>> float(abs(layer.b).max())
    0.0
"""

import math

import numpy as np

from .backend import resolve_rng

__all__ = [
    "calculate_fan",
    "uniform_",
    "normal_",
    "zeros_",
    "ones_",
    "constant_",
    "fan_in_uniform_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "glorot_uniform_",
    "glorot_normal_",
    "he_uniform_",
    "he_normal_",
]


def calculate_fan(array):
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)`` (or ``(n,)``)."""
    shape = np.shape(array)
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(array, values):
    array[...] = values.astype(array.dtype, copy=False)
    return array


def uniform_(array, low=0.0, high=1.0, rng=None):
    """Fill with ``U(low, high)``."""
    return _fill(array, resolve_rng(rng).uniform(low, high, size=np.shape(array)))


def normal_(array, mean=0.0, std=1.0, rng=None):
    """Fill with ``N(mean, std**2)``."""
    return _fill(array, resolve_rng(rng).normal(mean, std, size=np.shape(array)))


def constant_(array, value):
    """Fill with ``value``."""
    array[...] = value
    return array


def zeros_(array):
    """Fill with 0."""
    return constant_(array, 0)


def ones_(array):
    """Fill with 1."""
    return constant_(array, 1)


def fan_in_uniform_(array, fan_in=None, rng=None):
    """The seeds' (and PyTorch layers' default) ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    fan_in = fan_in or calculate_fan(array)[0]
    bound = 1.0 / math.sqrt(fan_in)
    return uniform_(array, -bound, bound, rng)


def xavier_uniform_(array, gain=1.0, rng=None):
    """Glorot: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan(array)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(array, -bound, bound, rng)


def xavier_normal_(array, gain=1.0, rng=None):
    """Glorot: ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan(array)
    return normal_(array, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def _kaiming_std(array, a, mode, nonlinearity):
    fan_in, fan_out = calculate_fan(array)
    fan = fan_in if mode == "fan_in" else fan_out
    gains = {"relu": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0 / (1 + a * a)), "linear": 1.0, "tanh": 5.0 / 3}
    if nonlinearity not in gains:
        raise ValueError(f"kaiming: unknown nonlinearity {nonlinearity!r}; expected one of {sorted(gains)}")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return gains[nonlinearity] / math.sqrt(fan)


def kaiming_uniform_(array, a=0.0, mode="fan_in", nonlinearity="relu", rng=None):
    """He: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``."""
    bound = math.sqrt(3.0) * _kaiming_std(array, a, mode, nonlinearity)
    return uniform_(array, -bound, bound, rng)


def kaiming_normal_(array, a=0.0, mode="fan_in", nonlinearity="relu", rng=None):
    """He: ``N(0, std**2)`` with ``std = gain / sqrt(fan)``."""
    return normal_(array, 0.0, _kaiming_std(array, a, mode, nonlinearity), rng)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
